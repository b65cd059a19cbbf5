"""Element-wise functions of logits, and the softmax family, over numpy arrays.

Every function takes floating-point arrays (float32 or float64; :mod:`lossgrad.validation`
states what else is refused and why) and returns the same floating type, as an ndarray, or as a
NumPy scalar for a 0-dimensional result. None of them overflows, divides by zero or returns NaN
for finite input: each formula below is chosen so that every intermediate quantity is bounded,
and the comment beside it says why. Infinite input gives the mathematical limit, without a
warning. The softmax family works along ``axis`` (the last, by default). The losses built on
them are in :mod:`lossgrad.losses`; the derivations in "The logistic sigmoid" and "Softmax and
its Jacobian".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation

__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softplus",
]

Result = NDArray[np.floating] | np.floating


def sigmoid(x: ArrayLike) -> Result:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1/(1+e^{-x})`, without overflow.

    .. math::

        \sigma(x) = \begin{cases} 1/(1+e^{-x}) & x \ge 0 \\ e^{x}/(1+e^{x}) & x < 0 \end{cases}

    Both branches evaluate :math:`e^{-|x|} \le 1`, so nothing overflows, and for
    :math:`x \ll 0` the result keeps full relative accuracy down to the subnormal range.
    The two forms are shown equal in "The logistic sigmoid".

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
    x = validation.float_array(x, "x")
    e = np.exp(-np.abs(x))
    return validation.result(np.where(x >= 0, 1 / (1 + e), e / (1 + e)))


def softplus(x: ArrayLike) -> Result:
    r"""Softplus, :math:`\operatorname{softplus}(x) = \log(1 + e^{x})`, without overflow.

    Its reflection, softplus(-x) = softplus(x) - x, is derived in "The logistic sigmoid".

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
    x = validation.float_array(x, "x")
    return validation.result(np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))


def log_sigmoid(x: ArrayLike) -> Result:
    r"""Logarithm of the sigmoid, :math:`\log\sigma(x) = -\operatorname{softplus}(-x)`.

    Derived in "The logistic sigmoid".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import log_sigmoid
    >>> log_sigmoid(np.array([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    return validation.result(-np.asarray(softplus(-validation.float_array(x, "x"))))


def logit(q: ArrayLike) -> Result:
    r"""Inverse of the sigmoid, :math:`\operatorname{logit}(q) = \log\frac{q}{1-q}`.

    .. math::

        \operatorname{logit}(q) = \begin{cases}
            2\operatorname{artanh}(2q - 1) & q \ge \tfrac14, \\
            \log\bigl(q / (1 - q)\bigr) & q < \tfrac14.
        \end{cases}

    For :math:`q \ge \tfrac14`, :math:`2q - 1` is exact (Sterbenz's lemma), so the only
    rounding is the one of :math:`\operatorname{artanh}`, and the result keeps full accuracy near
    :math:`q = \tfrac12`, where :math:`\log q - \operatorname{log1p}(-q)` subtracts two numbers
    close to :math:`-\log 2` and loses hundreds of ULPs. Below :math:`\tfrac14` the quotient is
    rounded twice and the logarithm of a number below :math:`\tfrac13` is well conditioned. The
    end points map to :math:`\mp\infty` without a warning. Derived in "The logistic sigmoid".

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

    Near :math:`\tfrac12` the difference of logarithms keeps only a few digits of
    :math:`\operatorname{logit}(0.5 + 2^{-40}) = 3.6379788070917 \times 10^{-12}`:

    >>> q = np.array([0.5 + 2.0**-40])
    >>> float((np.log(q) - np.log1p(-q))[0]), float(logit(q)[0])
    (3.637978807091713e-12, 3.637978807091713e-12)
    """
    q = validation.probabilities(q, "q")
    with np.errstate(divide="ignore", invalid="ignore"):
        central = 2 * np.arctanh(2 * q - 1)
        low = np.log(q / (1 - q))
    return validation.result(np.where(q < 0.25, low, central))


# The softmax family ("Softmax and its Jacobian"), along any class axis.


def _shifted(z: NDArray[np.floating], axis: int) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """The maxima, z - max, exp(z - max), and the sum of exp(z - max) over all but one maximum.

    Leaving one maximum's term (exactly 1) out of the sum lets ``log1p`` keep the small
    contribution of the other classes when one logit dominates. Where the maximum is infinite,
    the entries equal to it shift to 0 rather than to inf - inf, which gives the limits.
    """
    top = np.max(z, axis=axis, keepdims=True)
    # z - top can only overflow towards -inf (logits 1e308 apart), where exp gives exactly 0;
    # inf - inf is repaired just below.
    with np.errstate(over="ignore", invalid="ignore"):
        d = z - top
    if not np.all(np.isfinite(top) | np.isnan(top)):
        d = np.where(z == top, 0.0, d).astype(z.dtype, copy=False)
    e = np.exp(d)
    first = np.argmax(z, axis=axis, keepdims=True)
    mask = np.ones_like(e, dtype=bool)
    np.put_along_axis(mask, first, False, axis=axis)
    others = np.sum(e, axis=axis, keepdims=True, where=mask)
    return top, d, e, others


def logsumexp(logits: ArrayLike, *, axis: int = -1) -> Result:
    r"""Log-sum-exp along ``axis``, :math:`\log \sum_k e^{z_k}`, without overflow.

    .. math::

        \operatorname{logsumexp}(z) = m + \operatorname{log1p}\Bigl(\sum_{k \ne k^\ast}
        e^{z_k - m}\Bigr), \qquad m = z_{k^\ast} = \max_k z_k

    Every exponential has a non-positive argument, and ``log1p`` keeps the other classes'
    contribution when one logit dominates. A row of ``-inf`` gives ``-inf`` (the logarithm of
    0) and a ``+inf`` gives ``+inf``. Derived in "Softmax and its Jacobian".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import logsumexp
    >>> logsumexp(np.array([1000.0, 0.0, -40.0]))
    np.float64(1000.0)
    >>> float(logsumexp(np.array([0.0, -40.0])))
    4.248354255291589e-18
    >>> logsumexp(np.array([[0.0, 0.0], [1.0, 1.0]]), axis=0)
    array([1.31326169, 1.31326169])
    """
    z = validation.float_array(logits, "logits")
    axis = validation.class_axis(z.shape, axis)
    top, _, _, others = _shifted(z, axis)
    return validation.result(np.squeeze(top + np.log1p(others), axis=axis))


def log_softmax(logits: ArrayLike, *, axis: int = -1) -> NDArray[np.floating]:
    r"""Logarithm of the softmax along ``axis``, :math:`z_i - \operatorname{logsumexp}(z)`.

    Derived in "Softmax and its Jacobian".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import log_softmax
    >>> log_softmax(np.array([30.0, 0.0]))
    array([-9.35762297e-14, -3.00000000e+01])
    >>> log_softmax(np.array([np.inf, 0.5]))
    array([  0., -inf])
    """
    z = validation.float_array(logits, "logits")
    axis = validation.class_axis(z.shape, axis)
    _, d, _, others = _shifted(z, axis)
    # A gap beyond the float range is a log-probability below -1.8e308: -inf is its rounding.
    with np.errstate(over="ignore"):
        return d - np.log1p(others)


def softmax(logits: ArrayLike, *, axis: int = -1) -> NDArray[np.floating]:
    r"""Softmax along ``axis``, :math:`s_i = e^{z_i} / \sum_k e^{z_k}`, without overflow.

    Computed as :math:`e^{z_i - m} / \sum_k e^{z_k - m}` with :math:`m = \max_k z_k`, which
    leaves the result unchanged ("Softmax and its Jacobian" proves the shift invariance) and
    keeps every exponential at most 1. Entries equal to an infinite maximum share its
    probability equally: ``softmax([inf, 0.5])`` is ``[1, 0]``, a row of ``-inf`` is uniform.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax
    >>> softmax(np.array([1000.0, 1000.0, 0.0]))
    array([0.5, 0.5, 0. ])
    >>> softmax(np.array([[1.0, 0.0], [1.0, 0.0]]), axis=0)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    z = validation.float_array(logits, "logits")
    axis = validation.class_axis(z.shape, axis)
    _, _, e, others = _shifted(z, axis)
    return e / (1 + others)
