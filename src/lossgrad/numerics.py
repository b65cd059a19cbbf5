"""Element-wise functions of logits, and the softmax family, over numpy arrays.

Every function takes floating-point arrays (float32 or float64) and returns an array of the
same floating type. None of them overflows, divides by zero or returns NaN for finite input:
each formula below is chosen so that every intermediate quantity is bounded, and the comment
beside it says why. The losses built on them are in :mod:`lossgrad.losses`; the derivations in
chapters 2 ("The logistic sigmoid") and 4 ("Softmax and its Jacobian").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
]



def _float_array(x: ArrayLike, name: str) -> NDArray[np.floating]:
    """``x`` as a floating-point array, or a TypeError naming the argument."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {a.dtype}; "
            f"convert it first, e.g. np.asarray({name}, dtype=np.float64)"
        )
    return a


def _probabilities(x: ArrayLike, name: str) -> NDArray[np.floating]:
    """``x`` as a floating-point array with every non-NaN entry in [0, 1]."""
    a = _float_array(x, name)
    # NaN compares False both ways, so it passes here and propagates to the result.
    outside = (a < 0) | (a > 1)
    if np.any(outside):
        bad = a[outside].flat[0]
        raise ValueError(f"{name} must lie in [0, 1]; found {bad!r}")
    return a


def sigmoid(x: ArrayLike) -> NDArray[np.floating]:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1/(1+e^{-x})`, without overflow.

    .. math::

        \sigma(x) = \begin{cases} 1/(1+e^{-x}) & x \ge 0 \\ e^{x}/(1+e^{x}) & x < 0 \end{cases}

    Both branches evaluate :math:`e^{-|x|} \le 1`, so nothing overflows, and for
    :math:`x \ll 0` the result keeps full relative accuracy down to the subnormal range.
    The two forms are shown equal in chapter 2, "The logistic sigmoid".

    Parameters
    ----------
    x : array_like of float
        Logits.

    Returns
    -------
    ndarray
        :math:`\sigma(x)`, same shape and dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import sigmoid
    >>> sigmoid(np.array([-740.0, -40.0, 0.0, 40.0]))
    array([4.19955799e-322, 4.24835426e-018, 5.00000000e-001, 1.00000000e+000])
    """
    x = _float_array(x, "x")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x: ArrayLike) -> NDArray[np.floating]:
    r"""Softplus, :math:`\operatorname{softplus}(x) = \log(1 + e^{x})`, without overflow.

    Its reflection, softplus(-x) = softplus(x) - x, is derived in chapter 2, "The logistic sigmoid".

    .. math::

        \operatorname{softplus}(x) = \max(x, 0) + \log\bigl(1 + e^{-|x|}\bigr)

    The exponential's argument is never positive, and ``log1p`` keeps the small second term
    accurate, so the result is accurate for :math:`x \ll 0` (where it is
    :math:`\approx e^{x}`) as well as for :math:`x \gg 0` (where it is :math:`\approx x`).

    Parameters
    ----------
    x : array_like of float
        Logits.

    Returns
    -------
    ndarray
        :math:`\operatorname{softplus}(x) > 0`, same shape and dtype as ``x``.

    References
    ----------
    .. [1] I. Goodfellow, Y. Bengio and A. Courville, *Deep Learning*, MIT Press, 2016,
       section 3.10.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softplus
    >>> softplus(np.array([-50.0, 0.0, 50.0, 1e308]))
    array([1.92874985e-022, 6.93147181e-001, 5.00000000e+001, 1.00000000e+308])
    """
    x = _float_array(x, "x")
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_sigmoid(x: ArrayLike) -> NDArray[np.floating]:
    r"""Logarithm of the sigmoid, :math:`\log\sigma(x) = -\operatorname{softplus}(-x)`.

    Derived in chapter 2, "The logistic sigmoid".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import log_sigmoid
    >>> log_sigmoid(np.array([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    return -softplus(-_float_array(x, "x"))


def logit(q: ArrayLike) -> NDArray[np.floating]:
    r"""Inverse of the sigmoid, :math:`\operatorname{logit}(q) = \log\frac{q}{1-q}`.

    Computed as :math:`\log q - \operatorname{log1p}(-q)`, which keeps full accuracy for
    :math:`q` near 0 and near 1. The end points map to :math:`\mp\infty` without a warning.
    Derived in chapter 2, "The logistic sigmoid".

    Parameters
    ----------
    q : array_like of float
        Probabilities in [0, 1].

    Raises
    ------
    ValueError
        If an entry of ``q`` lies outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import logit
    >>> logit(np.array([0.0, 0.5, 0.9, 1.0]))
    array([      -inf, 0.        , 2.19722458,        inf])
    """
    q = _probabilities(q, "q")
    with np.errstate(divide="ignore"):
        return np.log(q) - np.log1p(-q)


# The softmax family (chapter 4). Classes lie along the last axis.


def _logits_along_classes(logits: ArrayLike) -> NDArray[np.floating]:
    z = _float_array(logits, "logits")
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"logits need a non-empty class axis (the last); got shape {z.shape}")
    return z


def _shifted(z: NDArray[np.floating]) -> tuple[NDArray, NDArray, NDArray]:
    """The row maxima, exp(z - max), and the sum of exp(z - max) over all but one maximum.

    Leaving one maximum's term (exactly 1) out of the sum lets ``log1p`` keep the small
    contribution of the other classes when one logit dominates.
    """
    top = np.max(z, axis=-1, keepdims=True)
    # z - top can only overflow towards -inf (logits 1e308 apart), where exp gives exactly 0.
    with np.errstate(over="ignore"):
        e = np.exp(z - top)
    first = np.argmax(z, axis=-1)[..., None]
    mask = np.ones_like(e, dtype=bool)
    np.put_along_axis(mask, first, False, axis=-1)
    others = np.sum(e, axis=-1, keepdims=True, where=mask)
    return top, e, others


def logsumexp(logits: ArrayLike) -> NDArray[np.floating]:
    r"""Log-sum-exp over the last axis, :math:`\log \sum_k e^{z_k}`, without overflow.

    .. math::

        \operatorname{logsumexp}(z) = m + \operatorname{log1p}\Bigl(\sum_{k \ne k^\ast}
        e^{z_k - m}\Bigr), \qquad m = z_{k^\ast} = \max_k z_k

    Every exponential has a non-positive argument, and ``log1p`` keeps the other classes'
    contribution when one logit dominates. Derived in chapter 4, "Softmax and its Jacobian".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import logsumexp
    >>> logsumexp(np.array([1000.0, 0.0, -40.0]))
    array(1000.)
    >>> float(logsumexp(np.array([0.0, -40.0])))
    4.248354255291589e-18
    """
    z = _logits_along_classes(logits)
    top, _, others = _shifted(z)
    return (top + np.log1p(others))[..., 0]


def log_softmax(logits: ArrayLike) -> NDArray[np.floating]:
    r"""Logarithm of the softmax over the last axis, :math:`z_i - \operatorname{logsumexp}(z)`.

    Derived in chapter 4, "Softmax and its Jacobian".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import log_softmax
    >>> log_softmax(np.array([30.0, 0.0]))
    array([-9.35762297e-14, -3.00000000e+01])
    """
    z = _logits_along_classes(logits)
    top, _, others = _shifted(z)
    # A gap beyond the float range is a log-probability below -1.8e308: -inf is its rounding.
    with np.errstate(over="ignore"):
        return (z - top) - np.log1p(others)


def softmax(logits: ArrayLike) -> NDArray[np.floating]:
    r"""Softmax over the last axis, :math:`s_i = e^{z_i} / \sum_k e^{z_k}`, without overflow.

    Computed as :math:`e^{z_i - m} / \sum_k e^{z_k - m}` with :math:`m = \max_k z_k`, which
    leaves the result unchanged (chapter 4 proves the shift invariance) and keeps every
    exponential at most 1.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax
    >>> softmax(np.array([1000.0, 1000.0, 0.0]))
    array([0.5, 0.5, 0. ])
    """
    z = _logits_along_classes(logits)
    _, e, others = _shifted(z)
    return e / (1 + others)
