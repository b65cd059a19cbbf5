"""Measuring floating-point error: exact references in mpmath, errors in units in the last place.

Used in "Floating point", and by ``benchmarks/accuracy.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import mpmath
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DIGITS",
    "bce_grad_condition",
    "bce_hard_points",
    "bce_hard_points_float32",
    "bce_references",
    "distillation_condition",
    "exact_bce",
    "exact_bce_grad",
    "exact_distillation",
    "exact_focal",
    "exact_focal_grad",
    "exact_log_softmax",
    "exact_logit",
    "exact_logsumexp",
    "exact_sigmoid",
    "exact_soft_cap",
    "exact_softmax_cross_entropy",
    "exact_softplus",
    "exact_z_loss",
    "focal_condition",
    "soft_cap_condition",
    "softmax_cross_entropy_condition",
    "ulp_error",
    "ulps",
    "z_loss_condition",
    "z_loss_hard_rows",
]

#: Working precision of the exact references, in significant decimal digits (or the caller's
#: mpmath precision, if higher: mpmath.diff differentiates them at raised precision).
DIGITS = 50


def _digits() -> int:
    return max(DIGITS, mpmath.mp.dps)


def _mp(x: object) -> mpmath.mpf:
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def _point(u: object, p: object) -> tuple[mpmath.mpf, mpmath.mpf]:
    """A finite logit and a target in [0, 1], as mpf, or a ValueError naming the argument."""
    u, p = _mp(u), _mp(p)
    if not mpmath.isfinite(u):
        raise ValueError(f"u must be a finite logit, got {u}")
    if not 0 <= p <= 1:  # False for NaN too
        raise ValueError(f"p must lie in [0, 1], got {p}")
    return u, p


def exact_bce(u: float, p: float, weight: float = 1.0, pos_weight: float = 1.0) -> mpmath.mpf:
    r"""Binary cross-entropy at 50 digits: :math:`p\log(1+e^{-u}) + (1-p)\log(1+e^{u})`.

    Used in "Floating point".

    ``log1p`` keeps the tiny values that :math:`\log(1 + x)` at 50 digits would round to 0.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_bce
    >>> mpmath.nstr(exact_bce(40.0, 0.999), 22)
    '0.04000000000000003977549'
    """
    with mpmath.workdps(_digits()):
        u, p = _point(u, p)
        w, pw = _mp(weight), _mp(pos_weight)
        positive, negative = mpmath.log1p(mpmath.exp(-u)), mpmath.log1p(mpmath.exp(u))
        return +(w * (pw * p * positive + (1 - p) * negative))


def exact_bce_grad(
    u: float, p: float, weight: float = 1.0, pos_weight: float = 1.0
) -> mpmath.mpf:
    r""":math:`\sigma(u) - p` at 50 digits, written as :math:`((1-p) - p e^{-u}) / (1 + e^{-u})`.

    Used in "Floating point".

    That form does not cancel to 0 where :math:`\sigma(u) - 1` is below :math:`10^{-50}`.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_bce_grad
    >>> mpmath.nstr(exact_bce_grad(700.0, 1.0), 15)
    '-9.85967654375977e-305'
    """
    with mpmath.workdps(_digits()):
        u, p = _point(u, p)
        w, pw = _mp(weight), _mp(pos_weight)
        if pw == 1:
            # Below u = -700, e^-u exceeds 1e304 and the quotient below would divide two huge
            # numbers; e^u / (1 + e^u) - p keeps every intermediate below 1 instead. (Both forms
            # are exact to 50 digits on either side; the threshold only keeps them tidy.)
            if u < -700:
                e = mpmath.exp(u)
                return +(w * (e / (1 + e) - p))
            if abs(u) < 1:
                # (1 - p) - p e^-u = (1 - 2p) + p (1 - e^-u): with expm1, so that a gradient
                # of a tiny logit (u/4 at p = 1/2) is not lost below 10^-50.
                return +(w * (((1 - 2 * p) - p * mpmath.expm1(-u)) / (2 + mpmath.expm1(-u))))
            e = mpmath.exp(-u)
            return +(w * (((1 - p) - p * e) / (1 + e)))
        # w[(1 - p) sigma(u) - pw p sigma(-u)], each sigma in the form that does not overflow.
        e = mpmath.exp(-abs(u))
        small, large = e / (1 + e), 1 / (1 + e)
        up, down = (large, small) if u >= 0 else (small, large)
        return +(w * ((1 - p) * up - pw * p * down))


def bce_grad_condition(u: float, p: float) -> float:
    r"""Relative condition number of :math:`\sigma(u) - p` with respect to :math:`u`.

    Used in "Floating point".

    .. math::

        \kappa = \left| \frac{u\,\sigma'(u)}{\sigma(u) - p} \right|

    A relative change :math:`\delta` in :math:`u` changes the gradient by about
    :math:`\kappa\delta`; an error of about :math:`\kappa` units in the last place is inherent
    in the data. Returns 0 where the gradient is exactly 0.

    References
    ----------
    .. [1] N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
       section 1.6.

    Examples
    --------
    >>> from lossgrad.accuracy import bce_grad_condition
    >>> round(bce_grad_condition(2.0, 0.5), 3)
    0.551
    """
    with mpmath.workdps(_digits()):
        u = _mp(u)
        grad = exact_bce_grad(u, p)
        if grad == 0:
            return 0.0
        e = mpmath.exp(-abs(u))
        return float(abs(u * e / (1 + e) ** 2 / grad))


def bce_references(u: ArrayLike, p: ArrayLike) -> tuple[list, list, NDArray]:
    """Exact losses, exact gradients and the gradient's condition numbers at many points.

    Used in "Floating point". ``u`` and ``p`` are flattened after broadcasting;
    the references are evaluated at the floating-point values themselves, so the rounding of
    the inputs is not counted as error.

    Returns
    -------
    (list of mpmath.mpf, list of mpmath.mpf, ndarray)
        :func:`exact_bce`, :func:`exact_bce_grad` and :func:`bce_grad_condition` at each point.

    Examples
    --------
    >>> from lossgrad.accuracy import bce_references
    >>> loss, grad, kappa = bce_references([0.0, 2.0], 0.5)
    >>> [float(g) for g in grad], [round(float(k), 3) for k in kappa]
    ([0.0, 0.3807970779778824], [0.0, 0.551])
    """
    u, p = (np.ravel(x).astype(np.float64) for x in np.broadcast_arrays(u, p))
    loss = [exact_bce(a, b) for a, b in zip(u, p, strict=True)]
    grad = [exact_bce_grad(a, b) for a, b in zip(u, p, strict=True)]
    kappa = np.array([bce_grad_condition(a, b) for a, b in zip(u, p, strict=True)])
    return loss, grad, kappa


def ulp_error(computed: ArrayLike, exact: Iterable, dtype: type = np.float64) -> NDArray:
    """Error of each computed value in units in the last place of the exact value, in ``dtype``.

    Used in "Floating point".

    A non-finite computed value has error ``inf``; so does a non-zero value where the exact one
    rounds to 0.

    Examples
    --------
    >>> import mpmath
    >>> import numpy as np
    >>> from lossgrad.accuracy import ulp_error
    >>> ulp_error([1.0 + 2**-52], [mpmath.mpf(1)])
    array([1.])
    """
    exact = list(exact)
    values = np.asarray(computed, dtype=np.float64).ravel()
    out = np.empty(len(exact))
    # The caller's mpmath precision may be low; the difference needs the references' precision.
    with mpmath.workdps(_digits()):
        for n, (c, x) in enumerate(zip(values, exact, strict=True)):
            out[n] = _ulps_one(c, x, dtype)
    return out


def _ulps_one(c: float, x: mpmath.mpf, dtype: type) -> float:
    if not math.isfinite(c):
        return math.inf
    rounded = dtype(float(x))
    if rounded == 0:
        # The exact value rounds to 0: measure in units of the smallest subnormal.
        smallest = float(np.spacing(dtype(0)))
        return 0.0 if c == 0 else (math.inf if x == 0 else abs(c) / smallest)
    return float(abs(mpmath.mpf(c) - x) / float(np.spacing(np.abs(rounded))))


# The remaining references: one oracle, independent of lossgrad's kernels, for the tests and the
# benchmarks (issue 8).


def ulps(computed: float, exact: mpmath.mpf, dtype: type = np.float64) -> float:
    """:func:`ulp_error` of a single value.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import ulps
    >>> ulps(0.0, mpmath.mpf(0)), ulps(1e-300, mpmath.mpf(0))
    (0.0, inf)
    """
    return float(ulp_error([computed], [exact], dtype)[0])


def exact_sigmoid(x: float) -> mpmath.mpf:
    """:math:`1 / (1 + e^{-x})` at 50 digits.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_sigmoid
    >>> float(exact_sigmoid(-40.0))
    4.248354255291589e-18
    """
    with mpmath.workdps(_digits()):
        return +(1 / (1 + mpmath.exp(-_mp(x))))


def exact_softplus(x: float) -> mpmath.mpf:
    """:math:`\\log(1 + e^{x})` at 50 digits.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_softplus
    >>> float(exact_softplus(-50.0))
    1.9287498479639178e-22
    """
    with mpmath.workdps(_digits()):
        return +mpmath.log1p(mpmath.exp(_mp(x)))


def exact_logit(q: float) -> mpmath.mpf:
    """:math:`\\log(q / (1 - q))` at 50 digits.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_logit
    >>> float(exact_logit(0.5 + 2**-40))
    3.637978807091713e-12
    """
    with mpmath.workdps(_digits()):
        q = _mp(q)
        return +mpmath.log(q / (1 - q))


def exact_logsumexp(row: Iterable[float]) -> mpmath.mpf:
    """:math:`\\log \\sum_k e^{z_k}` at 50 digits.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_logsumexp
    >>> float(exact_logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        top = max(range(len(z)), key=lambda k: z[k])
        # log1p of the other terms, around the largest: at 50 digits log(1 + e^-300) is 0.
        others = mpmath.fsum(mpmath.exp(v - z[top]) for k, v in enumerate(z) if k != top)
        return +(z[top] + mpmath.log1p(others))


def exact_log_softmax(row: Iterable[float]) -> list[mpmath.mpf]:
    """:math:`z_k - \\operatorname{logsumexp}(z)` at 50 digits, as (z_k - max) - log1p(others).

    Written around the largest logit, so that a small log-probability next to a large logit is
    not lost in rounding the log-sum-exp.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_log_softmax
    >>> [float(v) for v in exact_log_softmax([100.0, 3.0])]
    [-7.47197233734299e-43, -97.0]
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        top = max(range(len(z)), key=lambda k: z[k])
        others = mpmath.fsum(mpmath.exp(v - z[top]) for k, v in enumerate(z) if k != top)
        tail = mpmath.log1p(others)
        return [+((v - z[top]) - tail) for v in z]


def exact_softmax_cross_entropy(
    row: Iterable[float], target: int | Iterable[float]
) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
    """Softmax cross-entropy of one row and its gradient at 50 digits.

    ``target`` is a class index or the effective target weights :math:`t_k` (after smoothing
    and class weights). The loss is :math:`\\sum_k t_k (\\operatorname{logsumexp}(z) - z_k)` and
    the gradient :math:`(\\sum_k t_k) s - t`, with the entry at a class of probability near 1
    written as minus the other classes' mass, which does not cancel.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_softmax_cross_entropy
    >>> loss, grad = exact_softmax_cross_entropy([40.0, 0.0, 0.0], 0)
    >>> float(loss), float(grad[0])
    (8.496708510583178e-18, -8.496708510583178e-18)
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        if isinstance(target, int | np.integer):
            t = [mpmath.mpf(k == target) for k in range(len(z))]
        else:
            t = [_mp(v) for v in target]
        top = max(range(len(z)), key=lambda k: z[k])
        e = [mpmath.exp(v - z[top]) for v in z]
        others = mpmath.fsum(e[k] for k in range(len(z)) if k != top)
        total = 1 + others
        lse_minus_top = mpmath.log1p(others)
        loss = mpmath.fsum(
            tk * (lse_minus_top + (z[top] - zk)) for tk, zk in zip(t, z, strict=True)
        )
        mass = mpmath.fsum(t)
        grad = []
        for k in range(len(z)):
            if k == top:
                # mass·s* - t* = (mass - t*) - mass·(1 - s*), 1 - s* = others / total.
                grad.append((mass - t[k]) - mass * others / total)
            else:
                grad.append(mass * e[k] / total - t[k])
        return +loss, [+g for g in grad]


def softmax_cross_entropy_condition(
    row: Iterable[float], target: int | Iterable[float]
) -> tuple[float, list[float]]:
    r"""Relative condition numbers of softmax cross-entropy and of each gradient entry.

    :math:`\kappa = \sum_j |z_j \, \partial f / \partial z_j| / |f|`: an error of about
    :math:`\kappa` ULPs is inherent in the data (Higham, section 1.6). ``target`` is as for
    :func:`exact_softmax_cross_entropy`. For the gradient entry :math:`g_i = M s_i - t_i`
    (:math:`M = \sum_k t_k`), :math:`\partial g_i / \partial z_j = M s_i([i = j] - s_j)`,
    written without the subtraction :math:`1 - s_i`, which 50 digits cannot resolve when
    :math:`s_i \approx 1`. Returns ``(kappa_loss, [kappa_grad_i])``, 0 where the value is 0.

    Examples
    --------
    >>> from lossgrad.accuracy import softmax_cross_entropy_condition
    >>> kappa_loss, kappa_grad = softmax_cross_entropy_condition([1.0, 0.0], 0)
    >>> round(kappa_loss, 4), [round(k, 4) for k in kappa_grad]
    (0.8585, [0.7311, 0.7311])
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        if isinstance(target, int | np.integer):
            mass = mpmath.mpf(1)
        else:
            target = [_mp(v) for v in target]
            mass = mpmath.fsum(target)
        loss, grad = exact_softmax_cross_entropy(z, target)
        top = max(range(len(z)), key=lambda k: z[k])
        e = [mpmath.exp(v - z[top]) for v in z]
        others = mpmath.fsum(e[k] for k in range(len(z)) if k != top)
        total = 1 + others
        s = [v / total for v in e]
        absz = [abs(v) for v in z]
        loss_slope = mpmath.fsum(a * abs(g) for a, g in zip(absz, grad, strict=True))
        kappa_loss = float(loss_slope / loss) if loss else 0.0
        weighted = mpmath.fsum(a * sk for a, sk in zip(absz, s, strict=True))
        others_weighted = mpmath.fsum(absz[k] * s[k] for k in range(len(z)) if k != top)
        kappa_grad = []
        for i in range(len(z)):
            # sum_j |z_j| M s_i |[i = j] - s_j| = M s_i (|z_i| (1 - s_i) + sum_{j != i} |z_j| s_j)
            mass_i = others / total if i == top else 1 - s[i]
            weighted_i = others_weighted if i == top else weighted - absz[i] * s[i]
            slope = mass * s[i] * (absz[i] * mass_i + weighted_i)
            kappa_grad.append(float(slope / abs(grad[i])) if grad[i] else 0.0)
        return kappa_loss, kappa_grad


def bce_hard_points(n: int, seed: int = 0) -> tuple[NDArray, NDArray]:
    """``n`` logits and targets (``n`` a multiple of 5) where binary cross-entropy's roundings
    line up.

    Used in "Floating point". Five equal groups, chosen where the error bound's pieces are
    largest: :math:`u \\in (1, 1.1)`, :math:`p \\in (0.48, \\tfrac12)` (rounded :math:`1 - p`
    and :math:`\\sigma(-u)` both near their largest amplification); :math:`u \\in (1, 1.3)` with
    :math:`p` from :math:`10^{-16.5}` to :math:`10^{-8}` below :math:`\\tfrac12`;
    :math:`|u|` within :math:`10^{-12}` to :math:`10^{-2}` of 1, where the gradient switches to
    its central form, with :math:`p \\in (0, \\tfrac12)`; :math:`|u| \\in (1.2, 1.32)` with
    :math:`p` just below :math:`\\tfrac12` (the loss's largest errors); and
    :math:`u \\in (-1.1, -0.9)`, :math:`p \\in (0.05, 0.1)`, where a rounded
    :math:`\\tfrac12 - p` is amplified most.

    Examples
    --------
    >>> from lossgrad.accuracy import bce_hard_points
    >>> u, p = bce_hard_points(10)
    >>> u.shape, bool(p.min() > 0 and p.max() < 0.5)
    ((10,), True)
    """
    rng = np.random.default_rng(seed)
    m = n // 5

    def signs() -> NDArray:
        return rng.choice([-1.0, 1.0], m)

    groups = [
        (rng.uniform(1.0, 1.1, m), rng.uniform(0.48, 0.5, m)),
        (rng.uniform(1.0, 1.3, m), 0.5 - 10 ** rng.uniform(-16.5, -8, m)),
        (signs() * (1 + signs() * 10 ** rng.uniform(-12, -2, m)), rng.uniform(0, 0.5, m)),
        (signs() * rng.uniform(1.2, 1.32, m), 0.5 - 10 ** rng.uniform(-14, -6, m)),
        (-rng.uniform(0.9, 1.1, m), rng.uniform(0.05, 0.1, m)),
    ]
    u, p = (np.concatenate(part) for part in zip(*groups, strict=True))
    return u, p


def bce_hard_points_float32(n: int, seed: int = 0) -> tuple[NDArray, NDArray]:
    r"""``n`` float32 logits and targets (``n`` a multiple of 5) where the float32 gradient's
    roundings line up.

    Used in "Floating point". The float32 gradient switches from its central to its outer form
    at :math:`|u| = 1.25`. Five equal groups around that switch: :math:`|u| \in (1.25, 1.45)`,
    :math:`|u| \in (1, 1.25)`, :math:`|u|` within :math:`10^{-7}` to :math:`10^{-2}` of 1.25 and
    :math:`|u| \in (0.5, 1)`, each with :math:`p` a few float32 ULPs below :math:`\tfrac12`
    (where a rounded :math:`1 - p` counts most; mirrored to :math:`1 - p` for negative logits) or
    uniform; and :math:`u \in (-1.25, -1)` with :math:`p` near :math:`\sigma(u) < \tfrac14`,
    where the central form's rounded :math:`\tfrac12 - p` meets a small gradient.

    Examples
    --------
    >>> from lossgrad.accuracy import bce_hard_points_float32
    >>> u, p = bce_hard_points_float32(10)
    >>> u.dtype, u.shape, bool(p.min() >= 0 and p.max() <= 1)
    (dtype('float32'), (10,), True)
    """
    if n % 5:
        raise ValueError(f"n must be a multiple of 5, got {n}")
    rng = np.random.default_rng(seed)
    m = n // 5
    magnitudes = [
        rng.uniform(1.25, 1.45, m),
        rng.uniform(1.0, 1.25, m),
        1.25 + rng.choice([-1.0, 1.0], m) * 10 ** rng.uniform(-7, -2, m),
        rng.uniform(0.5, 1.0, m),
    ]
    u = np.concatenate(magnitudes) * rng.choice([-1.0, 1.0], 4 * m)
    below_half = 0.5 - rng.integers(1, 400, 4 * m) * 2.0**-25
    p = np.where(rng.uniform(size=4 * m) < 0.5, below_half, rng.uniform(0, 1, 4 * m))
    p = np.where(u < 0, 1 - p, p)
    near_u = -rng.uniform(1.0, 1.25, m)
    shift = rng.choice([-1.0, 1.0], m) * 10 ** rng.uniform(-7, -2, m)
    near_p = (1 + shift) / (1 + np.exp(-near_u))
    u, p = np.concatenate([u, near_u]), np.concatenate([p, near_p])
    return u.astype(np.float32), p.astype(np.float32)


def exact_focal(u: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0) -> mpmath.mpf:
    r"""Sigmoid focal loss at 50 digits, from its definition.

    Used by the focal loss's tests and ``benchmarks/accuracy.py``.

    .. math::

        \alpha_t\,(1 - p_t)^\gamma\,\bigl(y \log(1 + e^{-u}) + (1 - y)\log(1 + e^{u})\bigr),
        \quad 1 - p_t = \frac{(1 - y) + y e^{-u}}{1 + e^{-u}}

    (:math:`1 - p_t` written over one denominator, which does not cancel; the denominator in
    the form that does not overflow for :math:`u < 0`). ``alpha=None`` means no weighting.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_focal
    >>> mpmath.nstr(exact_focal(40.0, 1.0), 6)
    '1.91691e-53'
    """
    with mpmath.workdps(_digits()):
        u, y = _point(u, y)
        e = mpmath.exp(-abs(u))
        large, small = 1 / (1 + e), e / (1 + e)  # sigma(|u|), sigma(-|u|)
        up, down = (large, small) if u >= 0 else (small, large)  # sigma(u), sigma(-u)
        m = (1 - y) * up + y * down
        ce = y * mpmath.log1p(mpmath.exp(-u)) + (1 - y) * mpmath.log1p(mpmath.exp(u))
        weight = 1 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
        return +(weight * m ** _mp(gamma) * ce)


def exact_focal_grad(
    u: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0, order: int = 1
) -> mpmath.mpf:
    r"""The derivative of :func:`exact_focal` with respect to :math:`u`, by ``mpmath.diff``.

    Used by the focal loss's tests and ``benchmarks/accuracy.py``. Numerical differentiation
    at raised precision: it does not use the derivative's formula, so it checks that formula
    too. ``order=2`` gives the second derivative (for the gradient's condition number).

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_focal_grad
    >>> mpmath.nstr(exact_focal_grad(0.0, 1.0, alpha=None, gamma=0.0), 10)
    '-0.5'
    """
    with mpmath.workdps(_digits()):
        u, y = _point(u, y)
        return +mpmath.diff(lambda t: exact_focal(t, y, alpha, gamma), u, order)


def focal_condition(
    u: float, y: float, alpha: float | None = 0.25, gamma: float = 2.0, order: int = 0
) -> float:
    r"""Relative condition number of the focal loss (``order=0``) or its derivative (``1``).

    Used by the focal loss's tests and ``benchmarks/accuracy.py``.
    :math:`\kappa = |u f'(u) / f(u)|` for :math:`f` the loss or its derivative; 0 where
    :math:`f(u) = 0`.

    Examples
    --------
    >>> from lossgrad.accuracy import focal_condition
    >>> round(focal_condition(2.0, 1.0, gamma=0.0), 3)
    1.878
    """
    with mpmath.workdps(_digits()):
        f = exact_focal(u, y, alpha, gamma) if order == 0 else exact_focal_grad(
            u, y, alpha, gamma, order
        )
        if f == 0:
            return 0.0
        return float(abs(_mp(u) * exact_focal_grad(u, y, alpha, gamma, order + 1) / f))


def exact_distillation(
    student: Iterable[float], teacher: Iterable[float], temperature: float
) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
    r"""Distillation loss :math:`T^2 \operatorname{KL}(q \,\Vert\, p)` of one row and its
    gradient :math:`T(p - q)` in the student's logits, to at least 20 significant digits.

    :math:`p = \operatorname{softmax}(z/T)`, :math:`q = \operatorname{softmax}(t/T)`. With
    :math:`a = (t - z)/T` shifted so that :math:`a_j = 0` at the student's likeliest class and
    :math:`r_k = a_k - \operatorname{log1p}(\sum_m p_m \operatorname{expm1}(a_m))
    = \log(q_k/p_k)`, the divergence is :math:`\sum_k p_k \psi(r_k)`,
    :math:`\psi(r) = 1 + (r - 1)e^r = \sum_{n \ge 2} (n - 1) r^n/n! \ge 0` (a sum of
    non-negative terms, the series used for :math:`|r| < 1/2`), and
    :math:`p_k - q_k = -p_k \operatorname{expm1}(r_k)`. Evaluated at 50 digits (or the caller's
    mpmath precision, if higher) beyond the integer digits of the largest :math:`|x|/T`, then
    at twice as many until two evaluations agree to 20 digits. Used in "Distillation at a
    temperature" and by the tests of :mod:`lossgrad.distillation`.

    Raises
    ------
    TypeError
        If ``temperature`` or a logit is not a real number (``bool`` included).
    ValueError
        If ``temperature`` is not positive and finite, a logit is not finite, the rows are
        empty or of different lengths.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_distillation
    >>> loss, grad = exact_distillation([0.0, 0.0], [1.0, -1.0], 2.0)
    >>> round(float(loss), 12), [round(float(g), 12) for g in grad]
    (0.443776286687, [-0.46211715726, 0.46211715726])
    >>> print(f"{float(exact_distillation([1e-30, 0.0], [0.0, 0.0], 1.0)[0]):.6g}")
    1.25e-61
    """
    import numbers

    def real(value: object, name: str) -> mpmath.mpf:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real | mpmath.mpf):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        x = value if isinstance(value, mpmath.mpf | int) else float(value)
        x = mpmath.mpf(x)
        if not mpmath.isfinite(x):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return x

    temp = real(temperature, "temperature")
    if not temp > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    z = [real(v, "student logit") for v in student]
    t = [real(v, "teacher logit") for v in teacher]
    if len(z) != len(t):
        raise ValueError(f"teacher has {len(t)} logits, student {len(z)}; they must match")
    if not z:
        raise ValueError("student and teacher need at least one logit each")

    def evaluate(dps: int) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
        with mpmath.workdps(dps):
            top = max(range(len(z)), key=lambda k: z[k])
            shifted = [(v - z[top]) / temp for v in z]
            tail = mpmath.log1p(mpmath.fsum(mpmath.exp(v) for k, v in enumerate(shifted)
                                            if k != top))
            log_p = [v - tail for v in shifted]
            p = [mpmath.exp(v) for v in log_p]
            a = [((tk - zk) - (t[top] - z[top])) / temp for zk, tk in zip(z, t, strict=True)]

            def excess(pk: mpmath.mpf, lp: mpmath.mpf, x: mpmath.mpf) -> mpmath.mpf:
                # p_k expm1(x) = p_k e^x - p_k, the product in logs where e^x may overflow
                return pk * mpmath.expm1(x) if abs(x) < 1 else mpmath.exp(lp + x) - pk

            terms = (excess(pk, lp, ak) for pk, lp, ak in zip(p, log_p, a, strict=True))
            shift = mpmath.log1p(mpmath.fsum(terms))
            kl, grad = [], []
            for pk, lp, ak in zip(p, log_p, a, strict=True):
                r = ak - shift
                if abs(r) < 0.5:
                    term, psi, n = r, mpmath.mpf(0), 1
                    while True:
                        n += 1
                        term = term * r / n
                        psi += (n - 1) * term
                        if abs(term) * n <= mpmath.eps * abs(psi):
                            break
                    kl.append(pk * psi)
                else:  # p_k psi(r_k) = p_k + (r_k - 1) q_k
                    kl.append(pk + (r - 1) * mpmath.exp(lp + r))
                grad.append(-temp * excess(pk, lp, r))
            return temp * temp * mpmath.fsum(kl), grad

    def close(x: mpmath.mpf, y: mpmath.mpf) -> bool:
        return x == y or abs(x - y) <= mpmath.mpf(10) ** -20 * max(abs(x), abs(y))

    # Digits enough for the integer part of every logit / T, beyond the 50.
    largest = max(abs(v) for v in z + t) / temp
    dps = _digits() + (int(mpmath.log10(largest)) + 1 if largest > 1 else 0)
    loss, grad = evaluate(dps)
    while True:
        dps *= 2
        if dps > 20000:
            raise ValueError("exact_distillation: no agreement at 20000 digits")
        loss2, grad2 = evaluate(dps)
        if close(loss, loss2) and all(close(a, b) for a, b in zip(grad, grad2, strict=True)):
            return loss2, grad2
        loss, grad = loss2, grad2


def distillation_condition(
    student: Iterable[float], teacher: Iterable[float], temperature: float
) -> tuple[float, list[float]]:
    r"""Relative condition numbers of the distillation loss and of each gradient entry.

    With respect to the student's and the teacher's logits together:
    :math:`\kappa = \sum_j \bigl(|z_j\, \partial f / \partial z_j|
    + |t_j\, \partial f / \partial t_j|\bigr) / |f|`, where for the loss
    :math:`\partial L / \partial z_j = T(p_j - q_j)` and
    :math:`\partial L / \partial t_j = T q_j (r_j - \operatorname{KL})`,
    :math:`r = \log q - \log p`; for the gradient entry :math:`g_j = T(p_j - q_j)`,
    :math:`\partial g_j / \partial z_i = p_j(\delta_{ij} - p_i)` and
    :math:`\partial g_j / \partial t_i = -q_j(\delta_{ij} - q_i)`. 0 where the value is 0.
    The loss and gradient from :func:`exact_distillation` (same input checks), :math:`r_j` as
    :math:`\operatorname{log1p}(-g_j/(T p_j))` where that is below 1/2 in size.
    Used in "Distillation at a temperature" and by the tests of :mod:`lossgrad.distillation`.

    Examples
    --------
    >>> from lossgrad.accuracy import distillation_condition
    >>> kappa_loss, kappa_grad = distillation_condition([0.0, 0.0], [1.0, -1.0], 2.0)
    >>> round(kappa_loss, 4), [round(k, 4) for k in kappa_grad]
    (1.7722, [0.8509, 0.8509])
    """
    loss, grad = exact_distillation(student, teacher, temperature)
    with mpmath.workdps(_digits()):
        temp = mpmath.mpf(temperature)
        z = [mpmath.mpf(v) for v in student]
        t = [mpmath.mpf(v) for v in teacher]
        log_p = exact_log_softmax([v / temp for v in z])
        log_q = exact_log_softmax([v / temp for v in t])
        p, q = [mpmath.exp(v) for v in log_p], [mpmath.exp(v) for v in log_q]
        ratio = [-g / (temp * pj) for g, pj in zip(grad, p, strict=True)]  # q/p - 1
        r = [mpmath.log1p(x) if abs(x) < 0.5 else lq - lp
             for x, lq, lp in zip(ratio, log_q, log_p, strict=True)]
        kl = loss / (temp * temp)
        slope = mpmath.fsum(abs(zj * gj) for zj, gj in zip(z, grad, strict=True)) + mpmath.fsum(
            abs(tj * temp * qj * (rj - kl)) for tj, qj, rj in zip(t, q, r, strict=True)
        )
        kappa_loss = float(slope / loss) if loss else 0.0
        # 1 - p_j as the sum of the others: where p_j rounds to 1 at this precision (a logit
        # hundreds of T above the rest), 1 - p_j would be 0 and drop the largest term.
        rest_p = [mpmath.fsum(p[:j] + p[j + 1 :]) for j in range(len(p))]
        rest_q = [mpmath.fsum(q[:j] + q[j + 1 :]) for j in range(len(q))]
        kappa_grad = []
        for j, g in enumerate(grad):
            slope_j = mpmath.fsum(
                abs(z[i]) * p[j] * (rest_p[j] if i == j else p[i])
                + abs(t[i]) * q[j] * (rest_q[j] if i == j else q[i])
                for i in range(len(z))
            )
            kappa_grad.append(float(slope_j / abs(g)) if g else 0.0)
        return kappa_loss, kappa_grad


def exact_z_loss(
    row: Iterable[float], coefficient: float = 1e-4
) -> tuple[mpmath.mpf, list[mpmath.mpf]]:
    r"""z-loss :math:`\lambda \log^2 Z` of one row and its gradient :math:`2\lambda \log Z\, s`,
    at 50 digits, with :math:`\log Z` from :func:`exact_logsumexp`.

    Used by the stability terms' tests and ``benchmarks/accuracy.py``.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_z_loss
    >>> loss, grad = exact_z_loss([0.0, 0.0], coefficient=1.0)
    >>> round(float(loss), 12), [round(float(g), 12) for g in grad]
    (0.480453013918, [0.69314718056, 0.69314718056])
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        lam = _mp(coefficient)
        log_z = exact_logsumexp(z)
        return +(lam * log_z**2), [+(2 * lam * log_z * sk) for sk in _exact_softmax(z)]


def _exact_softmax(z: list[mpmath.mpf]) -> list[mpmath.mpf]:
    """Softmax around the largest logit: ``exp(z_k - logsumexp(z))`` would need as many
    digits as the logits have before the point."""
    top = max(z)
    e = [mpmath.exp(v - top) for v in z]
    total = mpmath.fsum(e)
    return [v / total for v in e]


def z_loss_condition(row: Iterable[float]) -> tuple[float, list[float]]:
    r"""Relative condition numbers of z-loss and of each gradient entry, as for
    :func:`softmax_cross_entropy_condition`: :math:`\sum_j |z_j\,\partial f/\partial z_j| / |f|`.

    With :math:`L = \log Z`: :math:`\partial (L^2)/\partial z_j = 2 L s_j`, so the loss's is
    :math:`2 \sum_j |z_j| s_j / |L|`; and :math:`\partial (L s_i)/\partial z_j =
    s_i s_j + L s_i([i = j] - s_j)`. The coefficient does not enter. 0 where the value is 0.

    Examples
    --------
    >>> from lossgrad.accuracy import z_loss_condition
    >>> kappa_loss, kappa_grad = z_loss_condition([1.0, 1.0])
    >>> round(kappa_loss, 4), [round(k, 4) for k in kappa_grad]
    (1.1812, [1.0, 1.0])
    """
    with mpmath.workdps(_digits()):
        z = [_mp(v) for v in row]
        log_z = exact_logsumexp(z)
        s = _exact_softmax(z)
        absz = [abs(v) for v in z]
        weighted = mpmath.fsum(a * sk for a, sk in zip(absz, s, strict=True))
        kappa_loss = float(2 * weighted / abs(log_z)) if log_z else 0.0
        kappa_grad = []
        for i in range(len(z)):
            slope = mpmath.fsum(
                absz[j] * abs(s[i] * s[j] + log_z * s[i] * ((i == j) - s[j]))
                for j in range(len(z))
            )
            value = abs(log_z * s[i])
            kappa_grad.append(float(slope / value) if value else 0.0)
        return kappa_loss, kappa_grad


def z_loss_hard_rows(n: int, classes: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``n`` rows of logits of four kinds, in turn, where z-loss is hard to compute: moderate
    (N(0, 3^2)), log Z near 0 (where z-loss drives it), wide (U(-50, 50)), and one logit 20 to
    700 above the others. Used by the stability terms' tests and ``benchmarks/accuracy.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.accuracy import exact_logsumexp, z_loss_hard_rows
    >>> rows = z_loss_hard_rows(4, 3, np.random.default_rng(0))
    >>> rows.shape, abs(float(exact_logsumexp(rows[1]))) < 1e-14
    ((4, 3), True)
    """
    rows = []
    for i in range(n):
        z = rng.normal(0.0, 3.0, classes)
        if i % 4 == 1:
            z -= np.log(np.sum(np.exp(z)))
        elif i % 4 == 2:
            z = rng.uniform(-50.0, 50.0, classes)
        elif i % 4 == 3:
            z = np.concatenate([[0.0], -rng.uniform(20.0, 700.0, classes - 1)])
        rows.append(z)
    return np.array(rows)


def exact_soft_cap(z: float, cap: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`c \tanh(z/c)` and its derivative :math:`\operatorname{sech}^2(z/c)` at 50 digits.

    Used by the stability terms' tests and ``benchmarks/accuracy.py``.

    Examples
    --------
    >>> from lossgrad.accuracy import exact_soft_cap
    >>> value, slope = exact_soft_cap(600.0, 30.0)
    >>> float(value), float(slope)
    (30.0, 1.6993417021166355e-17)
    """
    with mpmath.workdps(_digits()):
        x = _mp(z) / _mp(cap)
        return +(_mp(cap) * mpmath.tanh(x)), +(mpmath.sech(x) ** 2)


def soft_cap_condition(z: float, cap: float) -> tuple[float, float]:
    r"""Relative condition numbers :math:`|z f'(z)/f(z)|` of :math:`c \tanh(z/c)` and of
    :math:`\operatorname{sech}^2(z/c)` with respect to :math:`z`: with :math:`x = z/c`,
    :math:`x \operatorname{sech}^2 x / \tanh x \le 1` (1 at :math:`z = 0`) and
    :math:`2 |x \tanh x|`.

    Examples
    --------
    >>> from lossgrad.accuracy import soft_cap_condition
    >>> [round(k, 4) for k in soft_cap_condition(30.0, 30.0)]
    [0.5514, 1.5232]
    """
    with mpmath.workdps(_digits()):
        x = _mp(z) / _mp(cap)
        kappa_value = float(x * mpmath.sech(x) ** 2 / mpmath.tanh(x)) if x else 1.0
        return kappa_value, float(abs(2 * x * mpmath.tanh(x)))
