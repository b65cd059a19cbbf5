"""Accuracy of lossgrad's losses and gradients, in ULPs of the exact value, against mpmath.

Usage: python benchmarks/accuracy.py        (about half a minute)

Exact values come from mpmath at 50 significant digits, evaluated at the floating-point inputs
themselves (so input rounding is not counted as error). Errors are in units in the last place of
the exact value in the input's dtype. For gradients, kappa is the relative condition number of
the gradient with respect to the logits; an error of about kappa ULPs is inherent in the data and
no method can do better. Compared in the same run: a naive NumPy formula, the common "stable"
formula, and scipy.special.
"""

from __future__ import annotations

import sys
import warnings

import mpmath
import numpy as np
from scipy import special

import lossgrad as lg
from lossgrad.accuracy import bce_grad_condition, exact_bce, exact_bce_grad, ulp_error

mpmath.mp.dps = 50
warnings.simplefilter("ignore")  # the naive formulas overflow; that is what is being measured


def ulps(computed: np.ndarray, exact: list, dtype: type) -> np.ndarray:
    return ulp_error(computed, exact, dtype)


# Binary cross-entropy -------------------------------------------------------------------------

MAGNITUDES = np.logspace(-8, 3, 111)
LOGITS = np.concatenate([-MAGNITUDES[::-1], [0.0], MAGNITUDES])
TARGETS = [0.0, 1.0, 0.5, 0.3, 0.999]
REGIONS = {
    "|u| <= 1": lambda u: np.abs(u) <= 1,
    "1 < |u| <= 30": lambda u: (np.abs(u) > 1) & (np.abs(u) <= 30),
    "|u| > 30": lambda u: np.abs(u) > 30,
}


def exact_bce_all(u: float, p: float) -> tuple:
    """Exact loss, exact gradient and the gradient's condition number (lossgrad.accuracy)."""
    return exact_bce(u, p), exact_bce_grad(u, p), bce_grad_condition(u, p)


BCE_METHODS = {
    "lossgrad": (
        lambda u, p: lg.bce_with_logits(u, p, reduction="none"),
        lambda u, p: lg.bce_with_logits_grad(u, p, reduction="none"),
    ),
    "naive numpy": (
        lambda u, p: np.logaddexp(0, u) - p * u,
        lambda u, p: 1 / (1 + np.exp(-u)) - p,
    ),
    "common stable": (
        lambda u, p: np.maximum(u, 0) - u * p + np.log1p(np.exp(-np.abs(u))),
        lambda u, p: special.expit(u) - p,
    ),
    "scipy.special": (
        lambda u, p: -(p * special.log_expit(u) + (1 - p) * special.log_expit(-u)),
        lambda u, p: special.expit(u) - p,
    ),
}


def bce_report() -> None:
    print("## Binary cross-entropy: error in ULPs of the exact value\n")
    for dtype in (np.float64, np.float32):
        u_all = np.repeat(LOGITS.astype(dtype), len(TARGETS))
        p_all = np.tile(np.array(TARGETS, dtype=dtype), len(LOGITS))
        exact = [exact_bce_all(float(u), float(p)) for u, p in zip(u_all, p_all, strict=True)]
        loss_exact = [x[0] for x in exact]
        grad_exact = [x[1] for x in exact]
        kappa = np.array([x[2] for x in exact])
        print(f"### {dtype.__name__} ({len(u_all)} points: |u| from 1e-8 to 1e3, both signs, "
              f"and 0; p in {TARGETS})\n")
        print("| method | quantity | region | max ULP | median ULP | max ULP / max(1, kappa) |")
        print("|---|---|---|---:|---:|---:|")
        worst = {}
        for name, (loss_f, grad_f) in BCE_METHODS.items():
            loss_err = ulps(loss_f(u_all, p_all), loss_exact, dtype)
            grad_err = ulps(grad_f(u_all, p_all), grad_exact, dtype)
            for quantity, err in (("loss", loss_err), ("gradient", grad_err)):
                scale = np.maximum(1.0, kappa) if quantity == "gradient" else np.ones_like(kappa)
                for region, select in REGIONS.items():
                    m = select(u_all.astype(np.float64))
                    print(f"| {name} | {quantity} | {region} | {np.max(err[m]):.3g} | "
                          f"{np.median(err[m]):.3g} | {np.max(err[m] / scale[m]):.3g} |")
                k = int(np.argmax(err / scale))
                worst[(name, quantity)] = (float(u_all[k]), float(p_all[k]), err[k], kappa[k])
        print("\nWorst point of each method (error relative to max(1, kappa)):\n")
        for (name, quantity), (u, p, e, k) in worst.items():
            print(f"- {name}, {quantity}: u = {u:.6g}, p = {p:g}: {e:.3g} ULP, kappa = {k:.3g}")
        print()


# Softmax cross-entropy ------------------------------------------------------------------------


def softmax_cases(rng: np.random.Generator) -> dict:
    cases = {}
    for classes, rows in ((3, 40), (1000, 6)):
        normal = rng.normal(size=(rows, classes))
        target = rng.integers(0, classes, size=rows)
        cases[f"K={classes}, N(0,1)"] = (normal, target)
        cases[f"K={classes}, N(0,100^2)"] = (100 * rng.normal(size=(rows, classes)), target)
        cases[f"K={classes}, N(0,1)+1000"] = (normal + 1000, target)
        for lift in (10, 30):
            z = rng.normal(size=(rows, classes))
            top = rng.integers(0, classes, size=rows)
            z[np.arange(rows), top] += lift
            cases[f"K={classes}, dominant +{lift}"] = (z, top)
    return cases


def exact_softmax_ce(row: np.ndarray, target: int) -> tuple:
    z = [mpmath.mpf(float(v)) for v in row]
    top = max(range(len(z)), key=lambda k: z[k])
    e = [mpmath.exp(v - z[top]) for v in z]
    # log1p of the other classes' total: at 50 digits, log(1 + e^-300) would be exactly 0.
    others = mpmath.fsum(e[k] for k in range(len(z)) if k != top)
    total = 1 + others
    loss = mpmath.log1p(others) + (z[top] - z[target])
    s = [v / total for v in e]
    grad = [s[k] for k in range(len(z))]
    grad[target] = -mpmath.fsum(e[k] for k in range(len(z)) if k != target) / total
    absz = [abs(v) for v in z]
    kappa_loss = float(mpmath.fsum(a * abs(g) for a, g in zip(absz, grad, strict=True)) / loss)
    # kappa_i = sum_j |z_j| |dg_i/dz_j| / |g_i| = s_i sum_{j != i} s_j (|z_i| + |z_j|) / |g_i|,
    # written without the subtraction 1 - s_i, which 50 digits cannot resolve when s_i ~ 1.
    weight = mpmath.fsum(s)
    weighted = mpmath.fsum(a * sk for a, sk in zip(absz, s, strict=True))
    others_mass = others / total
    others_weighted = mpmath.fsum(absz[k] * s[k] for k in range(len(z)) if k != top)
    kappa_grad = []
    for i in range(len(z)):
        mass_i = others_mass if i == top else weight - s[i]
        weighted_i = others_weighted if i == top else weighted - absz[i] * s[i]
        value = s[i] * (absz[i] * mass_i + weighted_i) / abs(grad[i]) if grad[i] != 0 else 0
        kappa_grad.append(float(value))
    return loss, grad, kappa_loss, kappa_grad


def softmax_methods() -> dict:
    def naive_loss(z, t):
        s = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        return -np.log(s[np.arange(len(t)), t])

    def naive_grad(z, t):
        s = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        s[np.arange(len(t)), t] -= 1
        return s

    def stable_loss(z, t):
        shifted = z - z.max(axis=-1, keepdims=True)
        return np.log(np.exp(shifted).sum(axis=-1)) - shifted[np.arange(len(t)), t]

    def stable_grad(z, t):
        shifted = z - z.max(axis=-1, keepdims=True)
        s = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
        s[np.arange(len(t)), t] -= 1
        return s

    def scipy_loss(z, t):
        return -special.log_softmax(z, axis=-1)[np.arange(len(t)), t]

    def scipy_grad(z, t):
        s = special.softmax(z, axis=-1)
        s[np.arange(len(t)), t] -= 1
        return s

    return {
        "lossgrad": (
            lambda z, t: lg.softmax_cross_entropy(z, t, reduction="none"),
            lambda z, t: lg.softmax_cross_entropy_grad(z, t, reduction="none"),
        ),
        "naive numpy": (naive_loss, naive_grad),
        "common stable": (stable_loss, stable_grad),
        "scipy.special": (scipy_loss, scipy_grad),
    }


def softmax_report() -> None:
    print("## Softmax cross-entropy: error in ULPs, relative to kappa\n")
    rng = np.random.default_rng(0)
    cases = softmax_cases(rng)
    methods = softmax_methods()
    for dtype in (np.float64, np.float32):
        print(f"### {dtype.__name__}\n")
        print("| case | method | loss: max ULP / max(1, kappa) | loss: max ULP | "
              "gradient: max ULP / max(1, kappa) | gradient: median ULP |")
        print("|---|---|---:|---:|---:|---:|")
        for case, (z64, target) in cases.items():
            z = z64.astype(dtype)
            exact = [exact_softmax_ce(row, int(t)) for row, t in zip(z, target, strict=True)]
            loss_exact = [x[0] for x in exact]
            kappa_loss = np.maximum(1.0, [x[2] for x in exact])
            grad_exact = [g for x in exact for g in x[1]]
            kappa_grad = np.maximum(1.0, [k for x in exact for k in x[3]])
            for name, (loss_f, grad_f) in methods.items():
                loss_err = ulps(loss_f(z, target), loss_exact, dtype)
                grad_err = ulps(np.ravel(grad_f(z, target)), grad_exact, dtype)
                print(f"| {case} | {name} | {np.max(loss_err / kappa_loss):.3g} | "
                      f"{np.max(loss_err):.3g} | {np.max(grad_err / kappa_grad):.3g} | "
                      f"{np.median(grad_err):.3g} |")
        print()


def extremes_report() -> None:
    print("## Extreme inputs: any NaN, inf, overflow, invalid operation or division by zero?\n")
    u = np.array([-1e308, -1e300, -745.2, -745.0, -40.0, 0.0, 40.0, 745.0, 1e300, 1e308])
    problems = []
    # Underflow to a subnormal or to 0 is the correctly rounded result here, and numpy does not
    # warn of it by default; overflow, invalid operations and division by zero would be errors.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            for p in (0.0, 0.5, 1.0):
                t = np.full_like(u, p)
                for f in (lg.bce_with_logits, lg.bce_with_logits_grad):
                    try:
                        r = f(u, t, reduction="none")
                        if not np.all(np.isfinite(r)):
                            problems.append(f"{f.__name__}(p={p}) not finite")
                    except (FloatingPointError, RuntimeWarning) as error:
                        problems.append(f"{f.__name__}(p={p}): {error}")
            z = np.array([[1e308, -1e308, 0.0], [-1e308, -1e308, -1e308], [700.0, 0.0, -700.0]])
            for f in (lg.softmax_cross_entropy_grad,):
                try:
                    if not np.all(np.isfinite(f(z, np.array([0, 2, 1]), reduction="none"))):
                        problems.append(f"{f.__name__} not finite")
                except (FloatingPointError, RuntimeWarning) as error:
                    problems.append(f"{f.__name__}: {error}")
    print("none" if not problems else "\n".join(f"- {p}" for p in problems))
    print()


if __name__ == "__main__":
    print(f"numpy {np.__version__}, scipy {sys.modules['scipy'].__version__}, "
          f"mpmath {mpmath.__version__} at {mpmath.mp.dps} digits\n")
    bce_report()
    softmax_report()
    extremes_report()
