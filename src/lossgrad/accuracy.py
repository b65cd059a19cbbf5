"""Measuring floating-point error: exact references in mpmath, errors in units in the last place.

Used in chapter 8, "Floating point", and by ``benchmarks/accuracy.py``.
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
    "bce_references",
    "exact_bce",
    "exact_bce_grad",
    "ulp_error",
]

#: Working precision of the exact references, in significant decimal digits.
DIGITS = 50


def _mp(x: object) -> mpmath.mpf:
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def exact_bce(u: float, p: float) -> mpmath.mpf:
    r"""Binary cross-entropy at 50 digits: :math:`p\log(1+e^{-u}) + (1-p)\log(1+e^{u})`.

    Used in chapter 8, "Floating point".

    ``log1p`` keeps the tiny values that :math:`\log(1 + x)` at 50 digits would round to 0.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_bce
    >>> mpmath.nstr(exact_bce(40.0, 0.999), 22)
    '0.04000000000000003977549'
    """
    with mpmath.workdps(DIGITS):
        u, p = _mp(u), _mp(p)
        return +(p * mpmath.log1p(mpmath.exp(-u)) + (1 - p) * mpmath.log1p(mpmath.exp(u)))


def exact_bce_grad(u: float, p: float) -> mpmath.mpf:
    r""":math:`\sigma(u) - p` at 50 digits, written as :math:`((1-p) - p e^{-u}) / (1 + e^{-u})`.

    Used in chapter 8, "Floating point".

    That form does not cancel to 0 where :math:`\sigma(u) - 1` is below :math:`10^{-50}`.

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.accuracy import exact_bce_grad
    >>> mpmath.nstr(exact_bce_grad(700.0, 1.0), 15)
    '-9.85967654375977e-305'
    """
    with mpmath.workdps(DIGITS):
        u, p = _mp(u), _mp(p)
        if u < -700:
            e = mpmath.exp(u)
            return +(e / (1 + e) - p)
        e = mpmath.exp(-u)
        return +(((1 - p) - p * e) / (1 + e))


def bce_grad_condition(u: float, p: float) -> float:
    r"""Relative condition number of :math:`\sigma(u) - p` with respect to :math:`u`.

    Used in chapter 8, "Floating point".

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
    with mpmath.workdps(DIGITS):
        u = _mp(u)
        grad = exact_bce_grad(u, p)
        if grad == 0:
            return 0.0
        e = mpmath.exp(-abs(u))
        return float(abs(u * e / (1 + e) ** 2 / grad))


def bce_references(u: ArrayLike, p: ArrayLike) -> tuple[list, list, NDArray]:
    """Exact losses, exact gradients and the gradient's condition numbers at many points.

    Used in chapter 8, "Floating point". ``u`` and ``p`` are flattened after broadcasting;
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

    Used in chapter 8, "Floating point".

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
    with mpmath.workdps(DIGITS):
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
