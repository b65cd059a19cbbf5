"""Floating-point losses and gradients in logit space, over numpy arrays.

Every function takes floating-point arrays (float32 or float64) and returns an array of the
same floating type. None of them overflows, divides by zero or returns NaN for finite input:
each formula below is chosen so that every intermediate quantity is bounded, and the comment
beside it says why. The derivations are in chapter 3, "The gradient of binary cross-entropy".
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bce_with_logits",
    "bce_with_logits_grad",
    "log_sigmoid",
    "logit",
    "sigmoid",
    "softplus",
]

Reduction = Literal["none", "mean", "sum"]
_REDUCTIONS = ("none", "mean", "sum")


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


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _logits_and_targets(
    logits: ArrayLike, targets: ArrayLike, reduction: str
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    _check_reduction(reduction)
    u = _float_array(logits, "logits")
    p = _probabilities(targets, "targets")
    try:
        shape = np.broadcast_shapes(u.shape, p.shape)
    except ValueError:
        raise ValueError(
            f"targets of shape {p.shape} do not broadcast to logits of shape {u.shape}"
        ) from None
    if shape != u.shape:
        raise ValueError(
            f"targets of shape {p.shape} would enlarge logits of shape {u.shape}; "
            "each logit needs one target"
        )
    if reduction == "mean" and u.size == 0:
        raise ValueError('logits is empty, so reduction="mean" is undefined')
    dtype = np.result_type(u, p)
    return u.astype(dtype, copy=False), np.broadcast_to(p, u.shape).astype(dtype, copy=False)


def _reduce(values: NDArray[np.floating], reduction: str) -> NDArray[np.floating]:
    if reduction == "sum":
        return values.sum(dtype=values.dtype)
    if reduction == "mean":
        return values.mean(dtype=values.dtype)
    return values


def bce_with_logits(
    logits: ArrayLike, targets: ArrayLike, *, reduction: Reduction = "mean"
) -> NDArray[np.floating]:
    r"""Binary cross-entropy of targets against :math:`\sigma(\text{logits})`.

    For a logit :math:`u` and a target probability :math:`p \in [0, 1]`,

    .. math::

        L(u) = -p\log\sigma(u) - (1-p)\log\bigl(1-\sigma(u)\bigr)
             = p\,\operatorname{softplus}(-u) + (1-p)\,\operatorname{softplus}(u).

    The second form is a sum of two non-negative terms, each accurate, so the sum is accurate
    to a few units in the last place for every :math:`u` and :math:`p`; the common form
    :math:`\operatorname{softplus}(u) - pu` cancels when both terms are large.

    Parameters
    ----------
    logits : array_like of float
        The sigmoid's inputs :math:`u`.
    targets : array_like of float
        Target probabilities :math:`p` in [0, 1] (soft labels allowed), broadcastable to
        ``logits``.
    reduction : {"none", "mean", "sum"}, default "mean"
        As in PyTorch's ``BCEWithLogitsLoss``: the element-wise losses, their mean or their sum.

    Returns
    -------
    ndarray
        The loss, in nats.

    Raises
    ------
    TypeError
        If ``logits`` or ``targets`` is not a floating-point array.
    ValueError
        If a target lies outside [0, 1], the shapes do not match, ``reduction`` is unknown, or
        ``reduction="mean"`` is asked of an empty input.

    See Also
    --------
    bce_with_logits_grad : its gradient with respect to the logits.

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006,
       section 4.3.2.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import bce_with_logits
    >>> bce_with_logits(np.array([0.0, 2.0, -40.0]), np.array([0.5, 1.0, 0.0]), reduction="none")
    array([6.93147181e-01, 1.26928011e-01, 4.24835426e-18])
    """
    u, p = _logits_and_targets(logits, targets, reduction)
    return _reduce(p * softplus(-u) + (1 - p) * softplus(u), reduction)


def bce_with_logits_grad(
    logits: ArrayLike, targets: ArrayLike, *, reduction: Reduction = "mean"
) -> NDArray[np.floating]:
    r"""Gradient of :func:`bce_with_logits` with respect to the logits: :math:`\sigma(u) - p`.

    Returns the gradient of exactly what :func:`bce_with_logits` returns with the same
    ``reduction``: element-wise :math:`\sigma(u_i) - p_i` for ``"none"`` and ``"sum"``, and that
    divided by the number of elements for ``"mean"``. Derived in chapter 3.

    Each region uses a form whose two terms are both accurate, so that the only error left is
    the one inherent in subtracting them:

    .. math::

        \sigma(u) - p = \begin{cases}
            \tfrac12\tanh(u/2) + (\tfrac12 - p) & |u| \le 1, \\
            (1 - p) - \sigma(-u) & u > 1, \\
            \sigma(u) - p & u < -1.
        \end{cases}

    Near :math:`u = 0`, :math:`\sigma(u)` rounds to a neighbour of :math:`\tfrac12` and loses
    the small gradient when :math:`p = \tfrac12`; :math:`\tanh` keeps it. For :math:`u \gg 0`,
    :math:`\sigma(u)` rounds to 1 and :math:`\sigma(u) - 1` to 0, while :math:`\sigma(-u)` keeps
    its full relative accuracy. The subtractions :math:`\tfrac12 - p` and :math:`1 - p` are
    exact in the ranges where they matter (Sterbenz's lemma).

    Parameters
    ----------
    logits, targets, reduction
        As for :func:`bce_with_logits`.

    Returns
    -------
    ndarray
        Same shape as ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import bce_with_logits_grad
    >>> bce_with_logits_grad(np.array([1e-10, 40.0]), np.array([0.5, 1.0]), reduction="none")
    array([ 2.50000000e-11, -4.24835426e-18])
    """
    u, p = _logits_and_targets(logits, targets, reduction)
    half = u.dtype.type(0.5)
    central = half * np.tanh(half * u) + (half - p)
    upper = (1 - p) - sigmoid(-u)
    lower = sigmoid(u) - p
    grad = np.where(np.abs(u) <= 1, central, np.where(u > 1, upper, lower))
    if reduction == "mean":
        grad = grad / u.dtype.type(u.size)
    return grad


# Softmax cross-entropy (chapters 4 to 6). Classes lie along the last axis.


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


def _class_targets(
    targets: ArrayLike, z: NDArray[np.floating], label_smoothing: float
) -> NDArray[np.floating]:
    """Targets as probability rows: integer class indices become one-hot rows."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    t = np.asarray(targets)
    classes = z.shape[-1]
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != z.shape[:-1]:
            raise ValueError(
                f"class-index targets need shape {z.shape[:-1]} (logits without the class axis), "
                f"got {t.shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= classes):
            raise ValueError(f"class-index targets must lie in 0..{classes - 1}")
        y = np.zeros_like(z)
        np.put_along_axis(y, t[..., None], 1.0, axis=-1)
    else:
        y = _probabilities(t, "targets")
        if y.shape != z.shape:
            raise ValueError(
                f"probability targets need the shape of logits, {z.shape}; got {y.shape}"
            )
        y = y.astype(np.result_type(z, y), copy=False)
    if label_smoothing:
        y = (1 - label_smoothing) * y + label_smoothing / classes
    return y


def softmax_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Cross-entropy of targets against the softmax of logits, over the last axis.

    .. math::

        L(z) = -\sum_k y_k \log s_k(z) = \Bigl(\sum_k y_k\Bigr)\operatorname{logsumexp}(z)
        - \sum_k y_k z_k

    Parameters
    ----------
    logits : array_like of float, shape (..., K)
        Logits, classes along the last axis.
    targets : array_like
        Either probabilities of the same shape as ``logits`` (soft labels allowed), or integer
        class indices in 0..K-1 of shape ``logits.shape[:-1]``.
    label_smoothing : float, default 0
        :math:`\varepsilon`: the targets become :math:`(1-\varepsilon)\,y + \varepsilon/K`, as in
        PyTorch's ``cross_entropy``.
    reduction : {"none", "mean", "sum"}, default "mean"
        Over the rows (every axis but the last), as in PyTorch.

    Returns
    -------
    ndarray
        The loss in nats: shape ``logits.shape[:-1]`` for ``"none"``, a scalar otherwise.

    Raises
    ------
    TypeError
        If ``logits`` is not a floating-point array.
    ValueError
        If shapes do not match, a probability lies outside [0, 1], a class index is out of
        range, ``label_smoothing`` lies outside [0, 1], or ``reduction="mean"`` meets no rows.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy
    >>> float(softmax_cross_entropy(np.array([[30.0, 0.0, 0.0]]), np.array([0])))
    1.8715245937678598e-13
    """
    _check_reduction(reduction)
    z = _logits_along_classes(logits)
    y = _class_targets(targets, z, label_smoothing)
    if reduction == "mean" and z[..., 0].size == 0:
        raise ValueError('logits has no rows, so reduction="mean" is undefined')
    # -sum y log s with an accurate log_softmax: every term is non-negative, so nothing cancels.
    losses = -np.sum(y * log_softmax(z), axis=-1)
    return _reduce(losses, reduction)


def softmax_cross_entropy_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Gradient of :func:`softmax_cross_entropy` with respect to the logits.

    .. math::

        \frac{\partial L}{\partial z} = \Bigl(\sum_k y_k\Bigr) s - y,

    which is :math:`s - y` when each target row sums to 1 (derived in chapter 5). For
    ``"mean"`` it is divided by the number of rows. At the largest logit, :math:`s_{k^\ast}`
    rounds to 1 when that logit dominates, and :math:`s_{k^\ast} - 1` would round to 0; the
    gradient there is computed from the other classes' total instead,
    :math:`1 - s_{k^\ast} = \sum_{k \ne k^\ast} e^{z_k - m} / \sum_k e^{z_k - m}`.

    Parameters
    ----------
    logits, targets, label_smoothing, reduction
        As for :func:`softmax_cross_entropy`.

    Returns
    -------
    ndarray
        Same shape as ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy_grad
    >>> softmax_cross_entropy_grad(np.array([[30.0, 0.0, 0.0]]), np.array([0]))
    array([[-1.87152459e-13,  9.35762297e-14,  9.35762297e-14]])
    """
    _check_reduction(reduction)
    z = _logits_along_classes(logits)
    y = _class_targets(targets, z, label_smoothing)
    rows = z[..., 0].size
    if reduction == "mean" and rows == 0:
        raise ValueError('logits has no rows, so reduction="mean" is undefined')
    _, e, others = _shifted(z)
    total = 1 + others
    mass = np.sum(y, axis=-1, keepdims=True)
    grad = mass * (e / total) - y
    first = np.argmax(z, axis=-1)[..., None]
    y_top = np.take_along_axis(y, first, axis=-1)
    # (sum y) s* - y* = (sum y - y*) - (sum y)(1 - s*), with 1 - s* = others / total.
    top = (mass - y_top) - mass * (others / total)
    np.put_along_axis(grad, first, top, axis=-1)
    if reduction == "mean":
        grad = grad / z.dtype.type(rows)
    return grad
