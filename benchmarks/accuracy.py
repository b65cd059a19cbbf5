"""Accuracy of lossgrad's losses, gradients and reductions, in ULPs of the exact value.

Usage: python benchmarks/accuracy.py        (about a minute)

Exact values come from lossgrad.accuracy (mpmath at 50 significant digits, independent of
lossgrad's kernels), evaluated at the floating-point inputs themselves (so input rounding is not
counted as error). Errors are in units in the last place of the exact value in the input's
dtype (lossgrad.accuracy.ulp_error). For gradients, kappa is the relative condition number of
the gradient with respect to the logits; an error of about kappa ULPs is inherent in the data
and no method can do better. The binary methods compared are those of the figure in
"Floating point" (lossgrad.figures.BCE_METHODS), plus scipy.special.

The last sections measure the reductions ("sum" and "mean") against the exact sum of the exact
element-wise losses, and against the exact sum of lossgrad's own element-wise losses (which
isolates what the reduction adds), next to numpy's sum of the same losses.
"""

from __future__ import annotations

import math
import sys
import warnings

import mpmath
import numpy as np
from scipy import special

import lossgrad as lg
from lossgrad.accuracy import (
    DIGITS,
    bce_references,
    exact_bce,
    exact_softmax_cross_entropy,
    softmax_cross_entropy_condition,
    ulp_error,
)
from lossgrad.figures import BCE_METHODS

mpmath.mp.dps = DIGITS  # sums and quotients of the references keep their digits
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


#: The figure's methods, and scipy.special's functions next to them.
METHODS = {
    **BCE_METHODS,
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
        loss_exact, grad_exact, kappa = bce_references(u_all, p_all)
        print(f"### {dtype.__name__} ({len(u_all)} points: |u| from 1e-8 to 1e3, both signs, "
              f"and 0; p in {TARGETS})\n")
        print("| method | quantity | region | max ULP | median ULP | max ULP / max(1, kappa) |")
        print("|---|---|---|---:|---:|---:|")
        worst = {}
        for name, (loss_f, grad_f) in METHODS.items():
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
    """Exact loss and gradient, and their condition numbers (lossgrad.accuracy)."""
    loss, grad = exact_softmax_cross_entropy(row.tolist(), int(target))
    kappa_loss, kappa_grad = softmax_cross_entropy_condition(row.tolist(), int(target))
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


def _effective_targets(target, classes: int, eps: float) -> list:
    """The effective targets (1 - eps) y + eps/K in mpmath, from the float targets given."""
    eps = mpmath.mpf(eps)
    if isinstance(target, int | np.integer):
        return [eps / classes + (1 - eps if k == target else 0) for k in range(classes)]
    return [(1 - eps) * mpmath.mpf(float(v)) + eps / classes for v in target]


def _target_condition(t: list, grad: list) -> list:
    """Condition number of each gradient entry g_i = M s_i - t_i with respect to the targets.

    sum_k |t_k dg_i/dt_k| / |g_i| = (s_i (M - t_i) + t_i (1 - s_i)) / |g_i|, with M = sum_k t_k
    and s_i = (g_i + t_i) / M. (The loss, a sum of non-negative t_k (lse - z_k), has 1.)
    """
    mass = mpmath.fsum(t)
    out = []
    for ti, gi in zip(t, grad, strict=True):
        s = (gi + ti) / mass
        out.append(float((s * (mass - ti) + ti * (1 - s)) / abs(gi)) if gi else 0.0)
    return out


def softmax_options_report() -> float:
    """Label smoothing, probability targets and class weights, float64 and float32.

    Errors relative to max(1, kappa), kappa the condition number with respect to the logits and
    the targets together (the targets are data too: a soft target next to the softmax, or
    logits near 0, leave an error that no method avoids). Returns the largest ratio.
    """
    print("## Softmax cross-entropy with label smoothing, probability targets and class weights: "
          "lossgrad's error in ULPs / max(1, kappa)\n")
    print("kappa: condition number with respect to the logits and the (effective) targets; "
          "probability targets ~ Dirichlet(0.3) unless said.\n")
    print("| dtype | K | logits | targets | loss | gradient |")
    print("|---|---:|---|---|---:|---:|")
    rng = np.random.default_rng(3)
    worst = 0.0
    for dtype in (np.float64, np.float32):
        for classes, rows in ((3, 30), (1000, 4)):
            for label, scale, lift in (("N(0,1)", 1, 0), ("N(0,100^2)", 100, 0),
                                       ("N(0,1), one +30", 1, 30), ("N(0,0.01^2)", 0.01, 0)):
                z = scale * rng.normal(size=(rows, classes))
                if lift:
                    z[np.arange(rows), rng.integers(0, classes, rows)] += lift
                z = z.astype(dtype)
                index = rng.integers(0, classes, rows)
                y = rng.dirichlet(np.full(classes, 0.3), size=rows).astype(dtype)
                weight = rng.uniform(0.1, 10, classes).astype(dtype)
                for name, given, eps, w in (("index, smoothing 0.1", index, 0.1, None),
                                            ("index, class weights", index, 0.0, weight),
                                            ("probabilities", y, 0.0, None),
                                            ("probabilities, smoothing 0.1", y, 0.1, None)):
                    worst = max(worst, _options_row(dtype, classes, label, name, z, given, eps, w))
        # One-hot-ish soft labels over many classes, the large one not at the largest logit.
        classes = 50_000
        z = rng.normal(size=(1, classes)).astype(dtype)
        y = rng.uniform(0, 1e-6, (1, classes)).astype(dtype)
        y[0, np.argmin(z[0])] = 1 - 1e-6 * classes / 2
        worst = max(worst, _options_row(dtype, classes, "N(0,1)", "0.975 on one class, tiny "
                                        "elsewhere", z, y, 0.0, None))
    print(f"\nLargest: {worst:.3g} max(1, kappa) ULP (the softmax functions' docstrings state "
          f"{SOFTMAX_BOUND}).\n")
    return worst


def _options_row(dtype, classes, label, name, z, given, eps, weight) -> float:
    loss = lg.softmax_cross_entropy(z, given, weight=weight, label_smoothing=eps, reduction="none")
    grad = lg.softmax_cross_entropy_grad(z, given, weight=weight, label_smoothing=eps,
                                         reduction="none")
    loss_ratio = grad_ratio = 0.0
    for r in range(len(z)):
        t = _effective_targets(given[r], classes, eps)
        if weight is not None:
            t = [mpmath.mpf(float(wk)) * tk for wk, tk in zip(weight, t, strict=True)]
        exact_loss, exact_grad = exact_softmax_cross_entropy(z[r].tolist(), t)
        kappa_loss, kappa_grad = softmax_cross_entropy_condition(z[r].tolist(), t)
        kappa_t = _target_condition(t, exact_grad)
        loss_ratio = max(loss_ratio, ulps([float(loss[r])], [exact_loss], dtype)[0]
                         / max(1.0, kappa_loss + 1.0))
        errors = ulps(grad[r].tolist(), exact_grad, dtype)
        grad_ratio = max(grad_ratio, float(np.max(
            errors / np.maximum(1.0, np.add(kappa_grad, kappa_t)))))
    print(f"| {np.dtype(dtype).name} | {classes} | {label} | {name} | {loss_ratio:.3g} | "
          f"{grad_ratio:.3g} |")
    return max(loss_ratio, grad_ratio)


#: The bounds the softmax cross-entropy docstrings state, float64 and float32 (measured here and
#: in softmax_report, not proved).
SOFTMAX_BOUND = "8 (float64) and 16 (float32)"


# The reductions ------------------------------------------------------------------------------


def _exact_sum(values: np.ndarray) -> mpmath.mpf:
    """The exact sum of float64 values, as two floats (fsum and its remainder) in mpmath."""
    values = np.asarray(values, dtype=np.float64).ravel()
    high = math.fsum(values)
    low = math.fsum(np.concatenate([values, [-high]]))
    with mpmath.workdps(40):
        return mpmath.mpf(high) + mpmath.mpf(low)


def _binary_inputs(rng, n: int, dtype: type) -> tuple:
    # The speed benchmark's distribution: logits ~ N(0, 4^2), soft targets ~ U(0, 1).
    return (4.0 * rng.standard_normal(n)).astype(dtype), rng.uniform(size=n).astype(dtype)


def _softmax_inputs(rng, rows: int, dtype: type) -> tuple:
    return (3.0 * rng.standard_normal((rows, 1000))).astype(dtype), rng.integers(0, 1000, rows)


def reduction_report(binary_size: int = 10**7, softmax_rows: int = 10**4) -> None:
    print("## The reductions: error of \"sum\" and \"mean\" in ULPs\n")
    print("lossgrad's reduction is the exact sum of its float64 element-wise losses, rounded once "
          "(lossgrad.summation); next to it, numpy's np.sum / np.mean of lossgrad's own "
          "element-wise losses (reduction=\"none\"), in the losses' dtype.\n")
    rng = np.random.default_rng(8)
    print("### Against mpmath: the exact sum of the exact losses\n")
    print("| loss | dtype | size | reduction | lossgrad ULP | numpy on lossgrad's losses ULP |")
    print("|---|---|---:|---|---:|---:|")
    for dtype in (np.float64, np.float32):
        u, p = _binary_inputs(rng, 20_000, dtype)
        exact = mpmath.fsum(exact_bce(a, b) for a, b in zip(u.tolist(), p.tolist(), strict=True))
        per_element = lg.bce_with_logits(u, p, reduction="none")
        _reduction_rows("binary", dtype, f"{u.size:,}", exact, u.size,
                        lambda r, u=u, p=p: lg.bce_with_logits(u, p, reduction=r), per_element)
        z, t = _softmax_inputs(rng, 100, dtype)
        exact = mpmath.fsum(exact_softmax_cross_entropy(row.tolist(), int(k))[0]
                            for row, k in zip(z, t, strict=True))
        per_row = lg.softmax_cross_entropy(z, t, reduction="none")
        _reduction_rows("softmax", dtype, "100 x 1000", exact, len(t),
                        lambda r, z=z, t=t: lg.softmax_cross_entropy(z, t, reduction=r), per_row)
    print()
    print("### At the speed benchmark's size: against the exact sum of lossgrad's float64 "
          "element-wise losses (what the reduction itself adds)\n")
    print("| loss | dtype | size | reduction | lossgrad ULP | numpy on lossgrad's losses ULP |")
    print("|---|---|---:|---|---:|---:|")
    for dtype in (np.float64, np.float32):
        u, p = _binary_inputs(rng, binary_size, dtype)
        wide = lg.bce_with_logits(u.astype(np.float64), p.astype(np.float64), reduction="none")
        _reduction_rows("binary", dtype, f"{u.size:.0e}", _exact_sum(wide), u.size,
                        lambda r, u=u, p=p: lg.bce_with_logits(u, p, reduction=r),
                        lg.bce_with_logits(u, p, reduction="none"))
        z, t = _softmax_inputs(rng, softmax_rows, dtype)
        wide = lg.softmax_cross_entropy(z.astype(np.float64), t, reduction="none")
        _reduction_rows("softmax", dtype, f"{softmax_rows} x 1000", _exact_sum(wide), len(t),
                        lambda r, z=z, t=t: lg.softmax_cross_entropy(z, t, reduction=r),
                        lg.softmax_cross_entropy(z, t, reduction="none"))
    print()


def _reduction_rows(loss, dtype, size, exact_sum, count, reduced, per_element) -> None:
    with mpmath.workdps(DIGITS):
        for reduction, exact, numpy_value in (
            ("sum", exact_sum, np.sum(per_element)),
            ("mean", exact_sum / count, np.mean(per_element)),
        ):
            ours = ulps([float(reduced(reduction))], [exact], dtype)[0]
            theirs = ulps([float(numpy_value)], [exact], dtype)[0]
            print(f"| {loss} | {np.dtype(dtype).name} | {size} | {reduction} | {ours:.3g} | "
                  f"{theirs:.3g} |")


def extremes_report() -> None:
    print("## Extreme inputs: any NaN, a non-finite result from finite input, or a warning?\n")
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
            # Infinite logits: the limits (inf where the loss diverges), never NaN.
            infinite = np.array([-np.inf, np.inf])
            for p in (0.0, 0.5, 1.0):
                loss, grad = lg.bce_with_logits_and_grad(infinite, np.full(2, p), reduction="none")
                if np.any(np.isnan(loss)) or np.any(np.isnan(grad)):
                    problems.append(f"bce_with_logits_and_grad at ±inf, p={p}: NaN")
            rows = np.array([[np.inf, 0.5, -1.0], [-np.inf, -np.inf, -np.inf]])
            loss, grad = lg.softmax_cross_entropy_and_grad(rows, np.array([0, 1]), reduction="none")
            if np.any(np.isnan(loss)) or np.any(np.isnan(grad)):
                problems.append("softmax_cross_entropy_and_grad with infinite logits: NaN")
    print("none" if not problems else "\n".join(f"- {p}" for p in problems))
    print()


# Sigmoid focal loss ---------------------------------------------------------------------------


def common_focal(u, y, alpha, gamma):
    """torchvision's formula in NumPy, and its gradient as written by hand."""
    p = special.expit(u)
    ce = np.logaddexp(0, u) - y * u
    m = 1 - (p * y + (1 - p) * (1 - y))
    weight = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    slope = (1 - 2 * y) * p * (1 - p)
    grad = weight * (gamma * m ** (gamma - 1) * slope * ce + m**gamma * (p - y))
    return weight * ce * m**gamma, grad


def focal_report(points: int = 150) -> None:
    print("## Sigmoid focal loss: largest error in ULPs / max(1, kappa)\n")
    print("kappa: the condition number of the loss, or of the gradient, with respect to the "
          "logit (from mpmath); the exact gradient by mpmath.diff of the exact loss. Logits "
          "~ N(0, 3^2), U(-40, 40), U(-1, 1) and ±10^U(-8, 2.8); alpha = 0.25. The issue's bar: "
          "8 for gamma <= 2, 2(2 + gamma) above. 'common': torchvision's formula in NumPy "
          "(inf: a non-finite result).\n")
    print("| targets | gamma | lossgrad loss | lossgrad gradient | common loss | common gradient |")
    print("|---|---:|---:|---:|---:|---:|")
    from lossgrad.accuracy import exact_focal, exact_focal_grad, focal_condition
    from lossgrad.focal import sigmoid_focal_loss_and_grad

    rng = np.random.default_rng(11)
    n = points // 4
    u = np.concatenate([rng.normal(0, 3, n), rng.uniform(-40, 40, n), rng.uniform(-1, 1, n),
                        rng.choice([-1, 1], n) * 10 ** rng.uniform(-8, 2.8, n)])
    for hard in (True, False):
        y = rng.integers(0, 2, u.size).astype(float) if hard else rng.random(u.size)
        for gamma in (0.0, 0.5, 1.0, 2.0, 3.5, 5.0):
            loss, grad = sigmoid_focal_loss_and_grad(u, y, gamma=gamma, reduction="none")
            common_loss, common_grad = common_focal(u, y, 0.25, gamma)
            exact_loss = [exact_focal(a, b, 0.25, gamma) for a, b in zip(u, y, strict=True)]
            exact_grad = [exact_focal_grad(a, b, 0.25, gamma) for a, b in zip(u, y, strict=True)]
            k_loss = np.array([max(1, focal_condition(a, b, 0.25, gamma, 0)) for a, b in
                               zip(u, y, strict=True)])
            k_grad = np.array([max(1, focal_condition(a, b, 0.25, gamma, 1)) for a, b in
                               zip(u, y, strict=True)])
            cells = [
                np.max(ulps(x, exact, np.float64) / k)
                for x, exact, k in ((loss, exact_loss, k_loss), (grad, exact_grad, k_grad),
                                    (common_loss, exact_loss, k_loss),
                                    (common_grad, exact_grad, k_grad))
            ]
            print(f"| {'hard' if hard else 'soft'} | {gamma:g} | "
                  + " | ".join(f"{c:.3g}" for c in cells) + " |")
    print()


# z-loss and soft-capping -----------------------------------------------------------------------


def common_z_loss(z, coefficient):
    """The max-shifted log-sum-exp, as usually written, and its gradient."""
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    total = np.sum(e, axis=-1, keepdims=True)
    log_z = m + np.log(total)
    return coefficient * log_z[..., 0] ** 2, 2 * coefficient * log_z * (e / total)


def distillation_report(rows: int = 40) -> None:
    from lossgrad.accuracy import distillation_condition, exact_distillation
    from lossgrad.distillation import distillation_loss_and_grad

    print("## Distillation: largest error in ULPs / max(1, kappa)\n")
    print(f"{rows} rows per case, 10 classes: teacher t ~ N(0, 3^2); student z = t + delta "
          "N(0, 1) (near: delta = 1e-6; far: delta = 3). kappa: the condition number with "
          "respect to both logits. 'common': T^2 sum q (log_softmax(t/T) - log_softmax(z/T)) "
          "and T (softmax(z/T) - softmax(t/T)) (scipy.special).\n")
    print("| type | student | T | lossgrad loss | lossgrad gradient | common loss | "
          "common gradient |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(13)
    for label, delta in (("near", 1e-6), ("far", 3.0)):
        t64 = rng.normal(0.0, 3.0, (rows, 10))
        z64 = t64 + delta * rng.normal(0.0, 1.0, (rows, 10))
        for temperature in (1.0, 4.0):
            for dtype in (np.float64, np.float32):
                z, t = z64.astype(dtype), t64.astype(dtype)
                loss, grad = distillation_loss_and_grad(z, t, temperature=temperature,
                                                        reduction="none")
                log_q = special.log_softmax(t / dtype(temperature), axis=-1)
                log_p = special.log_softmax(z / dtype(temperature), axis=-1)
                common_loss = temperature**2 * np.sum(np.exp(log_q) * (log_q - log_p), axis=-1)
                common_grad = temperature * (np.exp(log_p) - np.exp(log_q))
                exact = [exact_distillation(a.astype(np.float64), b.astype(np.float64),
                                            temperature) for a, b in zip(z, t, strict=True)]
                kappa = [distillation_condition(a.astype(np.float64), b.astype(np.float64),
                                                temperature) for a, b in zip(z, t, strict=True)]
                k_loss = np.array([max(1.0, k[0]) for k in kappa])
                k_grad = np.array([max(1.0, v) for k in kappa for v in k[1]])
                exact_loss = [e[0] for e in exact]
                exact_grad = [v for e in exact for v in e[1]]
                cells = [
                    np.max(ulps(loss, exact_loss, dtype) / k_loss),
                    np.max(ulps(grad.ravel(), exact_grad, dtype) / k_grad),
                    np.max(ulps(common_loss, exact_loss, dtype) / k_loss),
                    np.max(ulps(common_grad.ravel(), exact_grad, dtype) / k_grad),
                ]
                print(f"| {np.dtype(dtype).name} | {label} | {temperature:g} | "
                      + " | ".join(f"{c:.3g}" for c in cells) + " |")
    print()


def _against_the_forms(rng, family: str):
    """One row built against one of lossgrad.distillation's forms: (student, teacher, T)."""
    size, temperature = int(rng.integers(2, 51)), float(10 ** rng.uniform(-2, 4))
    if family == "a class near the far switch":  # b_k from 2.5 to 6 (the switch is 5)
        t = rng.normal(0, 3, size)
        z = t + rng.normal(0, 1, size) * 10 ** rng.uniform(-8, -1)
        z[-1] = t[-1] - rng.uniform(2.5, 6.0) * temperature
    elif family == "p on one class":
        t = rng.normal(0, 1, size) * temperature * rng.uniform(0, 1)
        z = t + rng.normal(0, 1, size) * 10 ** rng.uniform(-8, 0) * temperature
        z[0] += rng.uniform(5, 40) * temperature
        t[0] += rng.uniform(5, 40) * temperature * rng.integers(0, 2)
    elif family == "logits small beside T":  # sum p |r| a few times the KL: the series switch
        t = rng.normal(0, 1, size) * 10 ** rng.uniform(-3, 0.5) * temperature
        z = t + rng.normal(0, 1, size) * rng.uniform(0.05, 0.6) * temperature
    elif family == "one class the teacher makes negligible":  # the centre
        t = rng.normal(0, 1, size) * temperature * 10 ** rng.uniform(-2, 0.5)
        z = t + rng.normal(0, 1, size) * 10 ** rng.uniform(-9, -1) * temperature
        t[-1] = t.max() - 10 ** rng.uniform(0.5, 3) * temperature
        z[-1] += rng.normal() * temperature * rng.uniform(0, 3)
    else:  # "one class the student makes negligible": the far form, the teacher's side
        t = rng.normal(0, 1, size) * temperature * 10 ** rng.uniform(-2, 0.5)
        z = t + rng.normal(0, 1, size) * 10 ** rng.uniform(-9, -1) * temperature
        z[-1] = z.max() - 10 ** rng.uniform(0.5, 3) * temperature
    return z, t, temperature


AGAINST_THE_FORMS = ("a class near the far switch", "p on one class", "logits small beside T",
                     "one class the teacher makes negligible",
                     "one class the student makes negligible")


def distillation_forms_report(rows: int = 200) -> None:
    from lossgrad.accuracy import distillation_condition, exact_distillation
    from lossgrad.distillation import distillation_loss_and_grad

    print("## Distillation, rows built against the forms: largest error in ULPs / "
          "max(1, kappa)\n")
    print(f"{rows} seeded rows per family, float64, K from 2 to 50, T log-uniform in "
          "[10^-2, 10^4]; each family aims at one of lossgrad.distillation's forms or switches. "
          "'common' as above.\n")
    print("| family | lossgrad loss | lossgrad gradient | common loss | common gradient |")
    print("|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(2015)
    for family in AGAINST_THE_FORMS:
        worst = np.zeros(4)
        for _ in range(rows):
            z, t, temperature = _against_the_forms(rng, family)
            loss, grad = distillation_loss_and_grad(z, t, temperature=temperature,
                                                    reduction="none")
            with np.errstate(all="ignore"):
                log_q = special.log_softmax(t / temperature)
                log_p = special.log_softmax(z / temperature)
                common_loss = temperature**2 * np.sum(np.exp(log_q) * (log_q - log_p))
                common_grad = temperature * (np.exp(log_p) - np.exp(log_q))
            exact_loss, exact_grad = exact_distillation(z, t, temperature)
            kappa, kappa_grad = distillation_condition(z, t, temperature)
            k_grad = np.maximum(1.0, np.array(kappa_grad))
            errors = [ulps(np.array([loss]), [exact_loss], np.float64)[0] / max(1.0, kappa),
                      np.max(ulps(grad, exact_grad, np.float64) / k_grad),
                      ulps(np.array([common_loss]), [exact_loss], np.float64)[0]
                      / max(1.0, kappa),
                      np.max(ulps(common_grad, exact_grad, np.float64) / k_grad)]
            worst = np.fmax(worst, errors)
        print(f"| {family} | " + " | ".join(f"{c:.3g}" for c in worst) + " |")
    print()


def stability_report(rows: int = 40) -> None:
    from lossgrad.accuracy import (
        exact_soft_cap,
        exact_z_loss,
        soft_cap_condition,
        z_loss_condition,
        z_loss_hard_rows,
    )
    from lossgrad.stability import soft_cap, soft_cap_grad, z_loss_and_grad

    print("## z-loss: largest error in ULPs / max(1, kappa)\n")
    print(f"{rows} rows per size: moderate (N(0, 3^2)), log Z near 0, U(-50, 50), one logit 20-700 "
          "above the others; coefficient 1e-4. kappa: the condition number of the row's loss, "
          "or of each gradient entry, with respect to the logits. 'common': the max-shifted "
          "log(sum(exp)) as usually written.\n")
    print("| type | classes | lossgrad loss | lossgrad gradient | common loss | common gradient |")
    print("|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(12)
    for classes in (2, 10, 50):
        z64 = z_loss_hard_rows(rows, classes, rng)
        for dtype in (np.float64, np.float32):
            z = z64.astype(dtype)
            loss, grad = z_loss_and_grad(z, reduction="none")
            common_loss, common_grad = common_z_loss(z, dtype(1e-4))
            exact = [exact_z_loss(row.astype(np.float64)) for row in z]
            kappa = [z_loss_condition(row.astype(np.float64)) for row in z]
            k_loss = np.array([max(1.0, k[0]) for k in kappa])
            k_grad = np.array([[max(1.0, v) for v in k[1]] for k in kappa])
            exact_loss = [e[0] for e in exact]
            exact_grad = [v for e in exact for v in e[1]]
            cells = [
                np.max(ulps(loss, exact_loss, dtype) / k_loss),
                np.max(ulps(grad.ravel(), exact_grad, dtype) / k_grad.ravel()),
                np.max(ulps(common_loss, exact_loss, dtype) / k_loss),
                np.max(ulps(common_grad.ravel(), exact_grad, dtype) / k_grad.ravel()),
            ]
            print(f"| {np.dtype(dtype).name} | {classes} | "
                  + " | ".join(f"{c:.3g}" for c in cells) + " |")
    print()
    print("## Soft-capping: largest error in ULPs / max(1, kappa)\n")
    print("Logits ~ N(0, 30^2), U(-3000, 3000) and ±10^U(-10, 3), 200 of each; cap 30. kappa: "
          "the condition number of c tanh(z/c), or of its derivative, with respect to z. "
          "'common': c*tanh(z/c) and 1 - tanh(z/c)**2 (inf: 0 where the derivative is not).\n")
    print("| type | lossgrad soft_cap | lossgrad soft_cap_grad | common value | common slope |")
    print("|---|---:|---:|---:|---:|")
    u64 = np.concatenate([rng.normal(0.0, 30.0, 200), rng.uniform(-3000.0, 3000.0, 200),
                          rng.choice([-1, 1], 200) * 10 ** rng.uniform(-10.0, 3.0, 200)])
    for dtype in (np.float64, np.float32):
        u = u64.astype(dtype)
        c = dtype(30.0)
        exact = [exact_soft_cap(float(x), 30.0) for x in u]
        kappa = np.array([[max(1.0, k) for k in soft_cap_condition(float(x), 30.0)] for x in u])
        cells = []
        for computed, which in ((soft_cap(u, 30.0), 0), (soft_cap_grad(u, 30.0), 1),
                                (c * np.tanh(u / c), 0), (1 - np.tanh(u / c) ** 2, 1)):
            cells.append(np.max(ulps(computed, [e[which] for e in exact], dtype)
                                / kappa[:, which]))
        print(f"| {np.dtype(dtype).name} | " + " | ".join(f"{c:.3g}" for c in cells) + " |")
    print()


if __name__ == "__main__":
    print(f"numpy {np.__version__}, scipy {sys.modules['scipy'].__version__}, "
          f"mpmath {mpmath.__version__}; references at {DIGITS} digits\n")
    bce_report()
    softmax_report()
    softmax_options_report()
    reduction_report()
    extremes_report()
    focal_report()
    distillation_report()
    distillation_forms_report()
    stability_report()
