"""Cross-entropy losses in logit space and their gradients, accurate and fast.

Two losses, each with its gradient and a fused function that returns both:
binary cross-entropy of targets against :math:`\\sigma(\\text{logits})` (chapter 3) and softmax
cross-entropy (chapter 5). Options and their meanings follow PyTorch's ``BCEWithLogitsLoss``
and ``cross_entropy``, so that results can be cross-checked.

How they are computed. Each formula is a sum of non-negative terms, or a difference whose terms
are both accurate (the comments say which), so that the only error left is the one inherent in
the data. Inputs are processed in blocks of a few thousand elements (``np.nditer`` with
buffering), in float64 whatever the input type: a float32 result is then rounded once from a
float64 value, and no temporary array is ever larger than a block, which keeps both memory and
time below those of the naive formulas. ``benchmarks/accuracy.py`` and ``benchmarks/speed.py``
measure both claims.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad.numerics import _float_array, _logits_along_classes, _probabilities

__all__ = [
    "bce_with_logits",
    "bce_with_logits_and_grad",
    "bce_with_logits_grad",
    "softmax_cross_entropy",
    "softmax_cross_entropy_and_grad",
    "softmax_cross_entropy_grad",
]

Reduction = Literal["none", "mean", "sum"]
_REDUCTIONS = ("none", "mean", "sum")
#: Elements per block: large enough to amortise numpy's per-call cost, small enough that a
#: block's temporaries stay in cache.
_BLOCK = 16384
#: Elements per block of rows for softmax cross-entropy, whose per-block work has more calls.
_CE_BLOCK = 32768


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _nonnegative(x: ArrayLike | None, name: str) -> NDArray[np.floating] | None:
    if x is None:
        return None
    a = _float_array(x, name)
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative; found {a[a < 0].flat[0]!r}")
    return a


def _fits(x: NDArray | None, shape: tuple[int, ...], name: str, into: str) -> None:
    """``x`` must broadcast to ``shape`` without enlarging it."""
    if x is None:
        return
    try:
        grown = np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {x.shape} do not broadcast to {into} {shape}"
        ) from None
    if grown != shape:
        raise ValueError(f"{name} of shape {x.shape} would enlarge {into} of shape {shape}")


# Binary cross-entropy.


def _bce_block(
    u: NDArray, p: NDArray, w: NDArray | None, pw: NDArray | None, loss: bool, grad: bool
) -> tuple[NDArray | None, NDArray | None]:
    """Element-wise loss and gradient for one block, in float64.

    Written without branches where possible (np.where costs as much as an exponential here);
    every quantity below is accurate on its own, as the comments say.
    """
    a = np.abs(u)
    e = np.negative(a)
    np.exp(e, out=e)  # never overflows: the argument is at most 0
    value = slope = None
    if loss and pw is None and w is None:
        # The common case, with the same operations as below done in place (no temporaries).
        value = np.maximum(u, 0.0)
        down = np.subtract(a, value)  # max(-u, 0) = |u| - max(u, 0), exactly
        np.multiply(down, p, out=down)
        np.multiply(value, 1 - p, out=value)
        value += down
        np.log1p(e, out=down)
        value += down
        loss = False
    if loss:
        # p·softplus(-u) + (1-p)·softplus(u) with softplus(±u) = max(±u, 0) + log1p(e^-|u|):
        # non-negative terms, so nothing cancels (softplus(u) - p·u would, for p near 1 and
        # u >> 0). max(-u, 0) = |u| - max(u, 0) exactly.
        up = np.maximum(u, 0.0)
        down = a - up
        weight_p = p if pw is None else pw * p
        value = (1 - p) * up
        value += weight_p * down
        tail = np.log1p(e)
        value += tail if pw is None else (weight_p + (1 - p)) * tail
        if w is not None:
            value *= w
    if grad:
        small = np.add(e, 1.0)
        np.divide(e, small, out=small)  # sigma(-|u|), accurate down to the subnormal range
        if pw is None:
            # sigma(u) - p from two accurate terms: for u > 0, (1 - p) - sigma(-u) (sigma(u) - 1
            # would round to 0 when u >> 0); for u < 0, sigma(u) - p. [u > 0] - p is exact
            # where it matters (Sterbenz's lemma).
            slope = np.subtract(u > 0, p)
            np.copysign(small, u, out=small)
            slope -= small
            # Near 0, both forms subtract numbers close to 1/2 and lose a small gradient when
            # p = 1/2; there sigma(u) - 1/2 = tanh(u/2)/2 keeps it. (Computed for the whole
            # block and copied where needed: cheaper than gathering the few elements.)
            central = np.multiply(u, 0.5)
            np.tanh(central, out=central)
            central *= 0.5
            central += 0.5 - p
            np.copyto(slope, central, where=a <= 1)
        else:
            # (1-p)·sigma(u) - pw·p·sigma(-u); near 0 written with t = sigma(u) - 1/2 = tanh(u/2)/2.
            weight_p = pw * p
            large = 1 / (1 + e)
            positive = u > 0
            up, down = np.where(positive, large, small), np.where(positive, small, large)
            slope = (1 - p) * up - weight_p * down
            t = 0.5 * np.tanh(0.5 * u)
            central = 0.5 * ((1 - p) - weight_p) + t * ((1 - p) + weight_p)
            np.copyto(slope, central, where=a <= 1)
        if w is not None:
            slope *= w
    return value, slope


def _bce(
    logits: ArrayLike,
    targets: ArrayLike,
    weight: ArrayLike | None,
    pos_weight: ArrayLike | None,
    reduction: str,
    loss: bool,
    grad: bool,
) -> tuple[NDArray | None, NDArray | None]:
    _check_reduction(reduction)
    u = _float_array(logits, "logits")
    p = _probabilities(targets, "targets")
    w = _nonnegative(weight, "weight")
    pw = _nonnegative(pos_weight, "pos_weight")
    for x, name in ((p, "targets"), (w, "weight"), (pw, "pos_weight")):
        _fits(x, u.shape, name, "logits")
    if reduction == "mean" and u.size == 0:
        raise ValueError('logits is empty, so reduction="mean" is undefined')
    dtype = np.result_type(*(x for x in (u, p, w, pw) if x is not None))
    inputs = [x for x in (u, p, w, pw) if x is not None]
    loss_out = np.empty(u.shape, dtype) if loss and reduction == "none" else None
    grad_out = np.empty(u.shape, dtype) if grad else None
    outputs = [x for x in (loss_out, grad_out) if x is not None]
    blocks_total = []
    it = np.nditer(
        inputs + outputs,
        flags=["external_loop", "buffered", "zerosize_ok"],
        op_flags=[["readonly"]] * len(inputs) + [["writeonly"]] * len(outputs),
        op_dtypes=[np.float64] * (len(inputs) + len(outputs)),
        casting="same_kind",
        buffersize=_BLOCK,
    )
    with it:
        for ops in it:
            blocks = iter(ops)
            ub, qb = next(blocks), next(blocks)
            wb = next(blocks) if w is not None else None
            pwb = next(blocks) if pw is not None else None
            value, slope = _bce_block(ub, qb, wb, pwb, loss, grad)
            out = blocks  # the outputs follow the inputs
            if loss_out is not None:
                next(out)[...] = value
            elif loss:
                blocks_total.append(math.fsum(value))
            if grad_out is not None:
                next(out)[...] = slope
    total = None
    if loss:
        if loss_out is not None:
            total = loss_out
        else:
            # fsum over block sums: the reduction adds no error of its own beyond one rounding.
            s = math.fsum(blocks_total)
            total = dtype.type(s / u.size if reduction == "mean" else s)
    if grad_out is not None and reduction == "mean":
        grad_out /= dtype.type(u.size)
    return total, grad_out


def bce_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Binary cross-entropy of targets against :math:`\sigma(\text{logits})`.

    For a logit :math:`u`, a target probability :math:`p \in [0, 1]`, a weight :math:`w` and a
    positive-class weight :math:`w_+`,

    .. math::

        \ell(u) &= -w\,\bigl[w_+\, p \log\sigma(u) + (1-p)\log\bigl(1-\sigma(u)\bigr)\bigr] \\
               &= w\,\bigl[w_+\, p \operatorname{softplus}(-u)
                  + (1-p)\operatorname{softplus}(u)\bigr].

    The second form is a sum of non-negative terms, each computed accurately, so the loss is
    accurate to a few units in the last place for every :math:`u` and :math:`p`. The common
    form :math:`\max(u, 0) - pu + \log(1 + e^{-|u|})` cancels when :math:`p` is near 1 and
    :math:`u \gg 0`. Derived in chapter 3, "The gradient of binary cross-entropy".

    Parameters
    ----------
    logits : array_like of float
        The sigmoid's inputs :math:`u`.
    targets : array_like of float
        Target probabilities :math:`p \in [0, 1]` (soft labels allowed), broadcastable to
        ``logits``.
    weight : array_like of float, optional
        Non-negative weight of each element, broadcastable to ``logits`` (PyTorch's ``weight``).
    pos_weight : array_like of float, optional
        Non-negative weight of the positive term, broadcastable to ``logits``; along the last
        axis it weighs each class of a multi-label problem (PyTorch's ``pos_weight``).
    reduction : {"none", "mean", "sum"}, default "mean"
        The element-wise losses, their mean over all elements, or their sum.

    Returns
    -------
    ndarray
        The loss in nats; the dtype of the inputs (float32 only if every input is float32).

    Raises
    ------
    TypeError
        If an input is not a floating-point array.
    ValueError
        If a target lies outside [0, 1], a weight is negative, shapes do not match,
        ``reduction`` is unknown, or ``reduction="mean"`` meets an empty input.

    See Also
    --------
    bce_with_logits_grad : its gradient with respect to the logits.
    bce_with_logits_and_grad : both, in one pass.

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

    The common stable formula cancels at :math:`p = 0.999`, :math:`u = 40` and keeps only 13
    correct digits; the exact value is :math:`0.0400000000000000398`:

    >>> u, p = np.array([40.0]), np.array([0.999])
    >>> float((np.maximum(u, 0) - p * u + np.log1p(np.exp(-np.abs(u))))[0])
    0.039999999999999154
    >>> float(bce_with_logits(u, p, reduction="none")[0])
    0.04000000000000004
    """
    return _bce(logits, targets, weight, pos_weight, reduction, loss=True, grad=False)[0]


def bce_with_logits_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Gradient of :func:`bce_with_logits` with respect to the logits.

    .. math::

        \frac{\partial \ell}{\partial u}
        = w\,\bigl[(1 - p)\,\sigma(u) - w_+\, p\, \sigma(-u)\bigr],

    which is :math:`\sigma(u) - p` without weights (chapter 3). It is the gradient of exactly
    what :func:`bce_with_logits` returns with the same options: for ``"mean"``, divided by the
    number of elements.

    Each region uses a form whose two terms are both accurate, so the only error left is the one
    inherent in subtracting them (bounded by the relative condition number of
    :math:`\sigma(u) - p`):

    .. math::

        \sigma(u) - p = \begin{cases}
            \tfrac12\tanh(u/2) + (\tfrac12 - p) & |u| \le 1, \\
            (1 - p) - \sigma(-u) & u > 1, \\
            \sigma(-|u|) - p & u < -1.
        \end{cases}

    Near :math:`u = 0`, :math:`\sigma(u)` rounds to a neighbour of :math:`\tfrac12` and loses
    a small gradient when :math:`p = \tfrac12`; :math:`\tanh` keeps it. For :math:`u \gg 0`,
    :math:`\sigma(u) - 1` rounds to 0 while :math:`\sigma(-u)` keeps its full relative accuracy.
    :math:`\tfrac12 - p` and :math:`1 - p` are exact where they matter (Sterbenz's lemma).

    Parameters
    ----------
    logits, targets, weight, pos_weight, reduction
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

    The naive formula keeps 7 correct digits of the first and returns 0 for the second:

    >>> 1 / (1 + np.exp(-np.array([1e-10, 40.0]))) - np.array([0.5, 1.0])
    array([2.50000021e-11, 0.00000000e+00])
    """
    return _bce(logits, targets, weight, pos_weight, reduction, loss=False, grad=True)[1]


def bce_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """:func:`bce_with_logits` and :func:`bce_with_logits_grad` in one pass over the data.

    Derived in chapter 3, "The gradient of binary cross-entropy"; its accuracy is measured in
    chapter 8, "Floating point".

    The two share :math:`e^{-|u|}`, so this is faster than calling both.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import bce_with_logits_and_grad
    >>> loss, grad = bce_with_logits_and_grad(np.array([0.0, 2.0]), np.array([0.5, 1.0]))
    >>> round(float(loss), 6), grad.round(6)
    (0.410038, array([ 0.      , -0.059601]))
    """
    return _bce(logits, targets, weight, pos_weight, reduction, loss=True, grad=True)


# Softmax cross-entropy. Classes lie along the last axis.


def _ce_targets(
    targets: ArrayLike, shape: tuple[int, ...], label_smoothing: float
) -> tuple[NDArray, bool]:
    """Validated targets: integer class indices (returned as such) or probability rows."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    t = np.asarray(targets)
    classes = shape[-1]
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != shape[:-1]:
            raise ValueError(
                f"class-index targets need shape {shape[:-1]} (logits without the class axis), "
                f"got {t.shape}"
            )
        if t.size and (t.min() < 0 or t.max() >= classes):
            raise ValueError(f"class-index targets must lie in 0..{classes - 1}")
        return t, True
    y = _probabilities(t, "targets")
    if y.shape != shape:
        raise ValueError(f"probability targets need the shape of logits, {shape}; got {y.shape}")
    return y, False


def _ce_rows(
    z: NDArray, t: NDArray, loss: bool, grad: bool
) -> tuple[NDArray | None, NDArray | None]:
    """Loss per row and gradient for a block of rows, in float64.

    ``t`` is the matrix of effective targets t >= 0 (class-index targets without weights or
    smoothing take the faster :func:`_ce_rows_indices`).

    With m the row maximum, d = z - m <= 0 and ``others`` the sum of e^d over every class but
    one maximum (whose term is exactly 1):

    loss = sum_k t_k (log1p(others) - d_k), a sum of non-negative terms, and
    grad = (sum t) s - t, with s = e^d / (1 + others), and at that maximum, when it dominates,
    (sum t - t*) - (sum t)·others/(1 + others): 1 - s* from the other classes' mass, which
    does not round to 0.
    """
    rows = np.arange(z.shape[0])
    top = np.argmax(z, axis=-1)
    # z - m can only overflow towards -inf (logits 1e308 apart), where exp gives exactly 0.
    with np.errstate(over="ignore"):
        d = z - z[rows, top][:, None]
    e = np.exp(d)
    e[rows, top] = 0.0
    others = e.sum(axis=-1)
    total = 1 + others
    value = slope = None
    if loss:
        with np.errstate(invalid="ignore"):
            terms = t * (np.log1p(others)[:, None] - d)
        # 0 · inf where a zero target meets a logit 1e308 below the maximum: that term is 0.
        terms[t == 0] = 0.0
        value = terms.sum(axis=-1)
    if grad:
        slope = e * (1 / total)[:, None]
        mass = t.sum(axis=-1)
        t_top = t[rows, top]
        slope *= mass[:, None]
        slope -= t
        slope[rows, top] = _slope_at_top(mass, t_top, others, total)
    return value, slope


def _slope_at_top(mass, t_top: NDArray, others: NDArray, total: NDArray) -> NDArray:
    """The gradient (sum t)·s* - t* at each row's largest logit, where s* = 1 / total.

    When that logit dominates (s* >= 1/2, others <= 1), s* rounds towards 1 and the direct form
    loses 1 - s*; the other classes' mass keeps it. When it does not dominate, that form would
    cancel instead, and the direct one is accurate.
    """
    dominant = (mass - t_top) - mass * (others / total)
    direct = mass / total - t_top
    return np.where(others <= 1, dominant, direct)


def _ce_rows_indices(
    block: NDArray, t: NDArray, loss: bool, grad_out: NDArray | None
) -> NDArray | None:
    """:func:`_ce_rows` for class-index targets, in place in ``block`` (a float64 copy).

    The gradient is written straight into ``grad_out`` (a slice of the output, any float type);
    the two entries of each row that need care, the target's and the maximum's, are computed in
    float64 and written last.
    """
    rows = np.arange(block.shape[0])
    top = np.argmax(block, axis=-1)
    # z - m can only overflow towards -inf (logits 1e308 apart), where exp gives exactly 0.
    with np.errstate(over="ignore"):
        np.subtract(block, block[rows, top][:, None], out=block)
    d_target = block[rows, t]
    np.exp(block, out=block)
    block[rows, top] = 0.0
    others = block.sum(axis=-1)
    total = 1 + others
    value = np.log1p(others) - d_target if loss else None
    if grad_out is not None:
        inverse = 1 / total
        target_slope = block[rows, t] * inverse - 1.0
        np.multiply(block, inverse[:, None], out=grad_out, casting="same_kind")
        grad_out[rows, t] = target_slope
        # The maximum, last (it may be the target).
        t_top = (t == top).astype(np.float64)
        grad_out[rows, top] = _slope_at_top(1.0, t_top, others, total)
    return value


def _softmax_ce(
    logits: ArrayLike,
    targets: ArrayLike,
    weight: ArrayLike | None,
    label_smoothing: float,
    reduction: str,
    loss: bool,
    grad: bool,
) -> tuple[NDArray | None, NDArray | None]:
    _check_reduction(reduction)
    z = _logits_along_classes(logits)
    t, indices = _ce_targets(targets, z.shape, label_smoothing)
    classes = z.shape[-1]
    w = _nonnegative(weight, "weight")
    if w is not None and w.shape != (classes,):
        raise ValueError(f"weight needs one entry per class, shape ({classes},); got {w.shape}")
    rows = z[..., 0].size
    if reduction == "mean" and rows == 0:
        raise ValueError('logits has no rows, so reduction="mean" is undefined')
    dtype = np.result_type(z, *([] if indices else [t]), *([] if w is None else [w]))
    flat_z = z.reshape(rows, classes)
    flat_t = t.reshape(rows) if indices else t.reshape(rows, classes)
    class_weight = np.ones(classes) if w is None else w.astype(np.float64)
    # PyTorch divides a weighted mean over class-index targets by the targets' total weight.
    if reduction == "mean":
        divisor = float(class_weight[flat_t].sum()) if indices and w is not None else float(rows)
        if divisor == 0.0:
            raise ValueError('the targets\' weights sum to zero, so reduction="mean" is undefined')
    loss_rows = np.empty(rows, dtype) if loss else None
    grad_out = np.empty((rows, classes), dtype) if grad else None
    step = max(1, _CE_BLOCK // classes)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        if indices and not label_smoothing and w is None:
            # One-hot targets, the common case: no target matrix, work in place.
            block = np.array(flat_z[start:stop], dtype=np.float64)
            value = _ce_rows_indices(
                block,
                flat_t[start:stop].astype(np.intp, copy=False),
                loss,
                grad_out[start:stop] if grad else None,
            )
            if loss:
                loss_rows[start:stop] = value
            continue
        zb = flat_z[start:stop].astype(np.float64, copy=False)
        if indices:
            tb = np.zeros_like(zb)
            tb[np.arange(stop - start), flat_t[start:stop]] = 1.0
        else:
            tb = flat_t[start:stop].astype(np.float64, copy=False)
        if label_smoothing:
            tb = (1 - label_smoothing) * tb + label_smoothing / classes
        if w is not None:
            tb = tb * class_weight
        value, slope = _ce_rows(zb, tb, loss, grad)
        if loss:
            loss_rows[start:stop] = value
        if grad:
            grad_out[start:stop] = slope
    total = None
    if loss:
        if reduction == "none":
            total = loss_rows.reshape(z.shape[:-1])
        else:
            s = math.fsum(loss_rows.astype(np.float64))
            total = dtype.type(s / divisor if reduction == "mean" else s)
    if grad:
        grad_out = grad_out.reshape(z.shape)
        if reduction == "mean":
            grad_out /= dtype.type(divisor)
    return total, grad_out


def softmax_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Cross-entropy of targets against the softmax of logits, over the last axis.

    .. math::

        L(z) = -\sum_k t_k \log s_k(z) = \Bigl(\sum_k t_k\Bigr)\operatorname{logsumexp}(z)
        - \sum_k t_k z_k,

    with effective targets :math:`t_k = w_k\bigl[(1-\varepsilon)\,y_k + \varepsilon/K\bigr]`.
    Computed as :math:`\sum_k t_k\bigl(\operatorname{log1p}(\textstyle\sum_{j \ne k^\ast}
    e^{z_j - m}) - (z_k - m)\bigr)`, a sum of non-negative terms with :math:`m = z_{k^\ast}` the
    largest logit; ``log1p`` keeps the loss of a confident, correct prediction, which
    :math:`\log\sum_k e^{z_k - m}` would round to 0. Derived in chapter 5.

    Parameters
    ----------
    logits : array_like of float, shape (..., K)
        Logits, classes along the last axis.
    targets : array_like
        Probabilities of the same shape as ``logits`` (soft labels allowed), or integer class
        indices in 0..K-1 of shape ``logits.shape[:-1]``.
    weight : array_like of float, shape (K,), optional
        Non-negative weight of each class (PyTorch's ``weight``).
    label_smoothing : float, default 0
        :math:`\varepsilon \in [0, 1]`: the targets become
        :math:`(1-\varepsilon)\,y + \varepsilon/K`.
    reduction : {"none", "mean", "sum"}, default "mean"
        Over the rows. As in PyTorch, the mean with class-index targets and a ``weight`` divides by
        the total weight of the rows' target classes; otherwise by the number of rows.

    Returns
    -------
    ndarray
        The loss in nats: shape ``logits.shape[:-1]`` for ``"none"``, a scalar otherwise.

    Raises
    ------
    TypeError
        If ``logits`` (or a probability target, or ``weight``) is not a floating-point array.
    ValueError
        If shapes do not match, a probability lies outside [0, 1], a class index is out of
        range, a weight is negative, ``label_smoothing`` lies outside [0, 1], or
        ``reduction="mean"`` meets no rows or zero total weight.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy
    >>> float(softmax_cross_entropy(np.array([[40.0, 0.0, 0.0]]), np.array([0])))
    8.496708510583178e-18

    The usual formula, the log of the sum, rounds that loss (exactly
    :math:`\log(1 + 2e^{-40}) = 8.4967085105831780 \times 10^{-18}`) to zero:

    >>> z = np.array([40.0, 0.0, 0.0])
    >>> float(np.log(np.sum(np.exp(z - z.max()))) - (z[0] - z.max()))
    0.0
    """
    return _softmax_ce(logits, targets, weight, label_smoothing, reduction, True, False)[0]


def softmax_cross_entropy_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Gradient of :func:`softmax_cross_entropy` with respect to the logits.

    .. math::

        \frac{\partial L}{\partial z} = \Bigl(\sum_k t_k\Bigr) s - t,

    which is :math:`s - y` for targets that sum to 1 and no weights or smoothing (derived in
    chapter 5). It is the gradient of exactly what :func:`softmax_cross_entropy` returns with
    the same options. At the largest logit, :math:`s_{k^\ast}` rounds to 1 when that logit
    dominates and :math:`s_{k^\ast} - 1` would round to 0; the gradient there is computed from
    the other classes' total, :math:`1 - s_{k^\ast} = \sum_{k \ne k^\ast} e^{z_k - m} / \sum_k
    e^{z_k - m}`.

    Parameters
    ----------
    logits, targets, weight, label_smoothing, reduction
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
    return _softmax_ce(logits, targets, weight, label_smoothing, reduction, False, True)[1]


def softmax_cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """:func:`softmax_cross_entropy` and its gradient in one pass over the data.

    Derived in chapter 5, "The gradient of softmax cross-entropy".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy_and_grad
    >>> loss, grad = softmax_cross_entropy_and_grad(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6), grad
    (0.693147, array([[ 0.5, -0.5]]))
    """
    return _softmax_ce(logits, targets, weight, label_smoothing, reduction, True, True)
