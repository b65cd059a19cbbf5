r"""Cross-entropy losses in logit space and their gradients, accurate and fast.

Two losses, each with its gradient and a fused function that returns both: binary cross-entropy
of targets against :math:`\sigma(\text{logits})` (derived in "The gradient of binary
cross-entropy with respect to the logit") and softmax cross-entropy (derived in "The gradient of
softmax cross-entropy"). Options and their meanings follow PyTorch's ``BCEWithLogitsLoss`` and
``cross_entropy``, so that results can be cross-checked; the package docstring states the
vocabulary.

How they are computed. Each function checks its arguments (:mod:`lossgrad.validation`), then
runs one kernel over blocks of the data: a few thousand elements (binary) or rows (softmax) at a
time, so that no temporary is larger than a block. The binary loss is computed in float64
whatever the input type (a float32 loss is the float64 one rounded once). The binary gradient and
softmax cross-entropy are computed in the result's type (the softmax's sums of targets in
float64): in float64 arithmetic a float32 result would take longer than the naive float32
formula. The docstrings state the error bounds, in terms of the condition number. Each kernel
writes every formula once, as a sum of non-negative terms or a difference of two accurate terms
(the comments say which).
The per-element (or per-row) losses then go to one reduction: the output array for
``reduction="none"``, or an accurate sum (:mod:`lossgrad.summation`) for ``"sum"`` and
``"mean"``, which returns the exact sum of the computed losses rounded once.
``benchmarks/accuracy.py`` and ``benchmarks/speed.py`` measure both claims.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.blocks import (
    BLOCK,
    Loss,
    LossReduction,
    Reduction,
    Rows,
    Scratch,
    element_blocks,
)
from lossgrad.summation import CompensatedSum

__all__ = [
    "bce_with_logits",
    "bce_with_logits_and_grad",
    "bce_with_logits_grad",
    "softmax_cross_entropy",
    "softmax_cross_entropy_and_grad",
    "softmax_cross_entropy_grad",
]

#: Elements per block of softmax rows (a row is never split, so a block holds at least one).
#: Fewer calls per row matter more there: 2^17 measured fastest, 2^15 15 % slower.
_ROWS_BLOCK = 131072


# Binary cross-entropy.

#: Beyond |u| = 1 the gradient's outer forms, (1 - p) - sigma(-|u|) and sigma(-|u|) - p, are
#: accurate: sigma(-|u|) <= 0.27 carries an absolute error near 2^-54, within a small multiple
#: of max(1, kappa) ULP of the result, kappa being the gradient's condition number (see
#: "Floating point"). Nearer 0, sigma(u) is a neighbour of 1/2 and loses the small difference
#: sigma(u) - 1/2 = tanh(u/2)/2, which the kernel computes there instead. In float32 the
#: central region reaches 1.25: just beyond 1, with p just below 1/2, the rounding of 1 - p
#: (exact in float32 only for p >= 1/2) and numpy's float32 exp (off by up to 2.5 ULP) add up to
#: 5 max(1, kappa) ULP at the float32 search of "Floating point", against 3.1 for the central
#: form there.
_CENTRAL = {np.dtype(np.float64): 1.0, np.dtype(np.float32): 1.25}
#: The sign bit of each float type, as the integer of the same width: OR-ing it in gives -|u|,
#: AND-ing it out gives the sign alone. One vectorised integer operation each, where
#: np.copysign and np.where would cost a branch per element that random signs mispredict.
_SIGN_BIT = {
    np.dtype(np.float64): np.int64(-(2**63)),
    np.dtype(np.float32): np.int32(-(2**31)),
}


class _BceOperands(NamedTuple):
    """One block of the binary operands, float64 and of equal length."""

    u: NDArray[np.float64]  # logits
    p: NDArray[np.float64]  # targets
    w: NDArray[np.float64] | None  # weight
    pw: NDArray[np.float64] | None  # pos_weight


def _bce_kernel(
    b: _BceOperands,
    loss: NDArray[np.float64] | None,
    grad: NDArray[np.float64] | None,
    scratch: Scratch,
    divisor: float,
) -> None:
    r"""Fill ``loss`` and ``grad`` (when given) for one block, in the operands' float type.

    With :math:`P = w_+ p` (the positive term's weight; :math:`p` without ``pos_weight``),
    :math:`q = 1 - p`, :math:`c = q + P` (1 without ``pos_weight``) and :math:`k = q` where
    :math:`u \ge 0`, :math:`-P` where :math:`u < 0`:

    .. math::

        \ell = w\,\bigl[u k + c \log(1 + e^{-|u|})\bigr], \qquad
        \ell' = w\,\bigl[k - \operatorname{sign}(u)\, c\, \sigma(-|u|)\bigr],

    both from terms that are each accurate: the loss's two are non-negative, so nothing cancels
    (the usual :math:`\operatorname{softplus}(u) - pu` would, for :math:`p` near 1 and
    :math:`u \gg 0`); the gradient's are exact (:math:`k`, by Sterbenz's lemma, where it
    matters) and accurate to the subnormal range (:math:`\sigma(-|u|)`), where the usual
    :math:`\sigma(u) - p` rounds :math:`\sigma(u)` to 1 for :math:`u \gg 0`. Where
    :math:`|u| \le 1` (``_CENTRAL``; 1.25 in float32) the gradient takes its central form
    :math:`(q - P)/2 + c \tanh(u/2)/2`. The gradient is divided by ``divisor``.
    """
    u, p, w, pw = b
    n, work = len(u), u.dtype
    sign_bit = _SIGN_BIT[work]
    bits = sign_bit.dtype
    e = scratch("e", n, work)
    np.bitwise_or(u.view(bits), sign_bit, out=e.view(bits))  # -|u|
    # Which of the two rare cases occur (written so that a NaN, which makes max and min NaN,
    # sends the block down the careful path).
    near = None
    if grad is not None:
        near = np.greater_equal(e, -_CENTRAL[work], out=scratch("near", n, np.bool_))
    infinite = loss is not None and not e.min() > -np.inf
    np.exp(e, out=e)  # e^-|u| <= 1: never overflows
    # (u = -0 counts as positive here but has a negative sign bit below; the central form,
    # which always covers 0, overrides the outer one there.)
    k = scratch("k", n, work)
    if pw is None:
        # k = [u >= 0] - p: the indicator written straight as a float (a bool operand of the
        # subtraction would be converted element by element, at twice the cost), then 1 - p or
        # -p, rounded once.
        np.greater_equal(u, 0.0, out=k)
        np.subtract(k, p, out=k)
        big_p, c = p, None
    else:
        positive = np.greater_equal(u, 0.0, out=scratch("positive", n, np.bool_))
        big_p = np.multiply(pw, p, out=scratch("P", n, work))
        q = np.subtract(1.0, p, out=scratch("q", n, work))
        c = np.add(q, big_p, out=scratch("c", n, work))
        # k = q·[u >= 0] - P·[u < 0]: one product is 0, so the difference is exact.
        np.multiply(q, positive, out=k)
        np.logical_not(positive, out=positive)
        k -= np.multiply(big_p, positive, out=scratch("s", n, work))
    if loss is not None:
        np.multiply(u, k, out=loss)
        tail = np.log1p(e, out=scratch("s", n, work))
        if c is not None:
            tail *= c
        loss += tail
        if w is not None:
            loss *= w
        if infinite:
            _bce_loss_at_infinite_logits(loss, u, p, big_p, w)
    if grad is not None:
        s = np.add(e, 1.0, out=scratch("s", n, work))
        sign = scratch("sign", n, work).view(bits)
        np.bitwise_and(u.view(bits), sign_bit, out=sign)
        np.bitwise_or(e.view(bits), sign, out=e.view(bits))  # sign(u)·e^-|u|
        np.divide(e, s, out=e)  # sign(u)·sigma(-|u|)
        out = grad
        if c is not None:
            e *= c
        np.subtract(k, e, out=out)
        centre = np.flatnonzero(near)
        if centre.size:
            # sigma(u) - 1/2 = tanh(u/2)/2, on the elements near 0 only (gathering them costs
            # less than a tanh over the whole block).
            half = work.type(0.5)
            t = np.tanh(half * u[centre])
            t *= half
            if c is None:
                t += half - p[centre]  # exact for p >= 1/4
            else:
                # (q - P)/2 cancels near a minimum: formed in float64, where P = w+·p is exact
                # for float32 operands and q = 1 - p too for p >= 2^-30 (in float32 the gradient
                # at u = 0 could come out 0 or of the wrong sign), and rounded once with the rest.
                pc = p[centre].astype(np.float64)
                difference = (1.0 - pc) - pw[centre].astype(np.float64) * pc
                t = t * c[centre].astype(np.float64) + 0.5 * difference
            out[centre] = t
        if w is not None:
            out *= w
        if divisor != 1.0:
            out /= work.type(divisor)


def _bce_loss_at_infinite_logits(loss, u, p, big_p, w) -> None:
    """The loss's limits where a logit is ±inf: 0 where its coefficient is 0, inf elsewhere.

    The kernel's u·k is then 0·inf, NaN; the limit of (1 - p)·softplus(u) as u -> inf is 0
    when p = 1 (and a zero weight makes any term 0), inf otherwise.
    """
    infinite = np.isinf(u)
    coefficient = np.where(u > 0, 1.0 - p, big_p)[infinite]
    if w is not None:
        coefficient = coefficient * w[infinite]
    limit = np.where(coefficient > 0, np.inf, np.where(coefficient == 0, 0.0, np.nan))
    loss[infinite] = limit


def _bce(
    logits: ArrayLike,
    targets: ArrayLike,
    weight: ArrayLike | None,
    pos_weight: ArrayLike | None,
    reduction: str,
    *,
    loss: bool,
    grad: bool,
) -> tuple[Loss | None, NDArray[np.floating] | None]:
    reduction = validation.reduction(reduction)
    u = validation.float_array(logits, "logits")
    p = validation.float_array(targets, "targets")  # their range is checked block by block
    w = validation.weights(weight, "weight")
    pw = validation.weights(pos_weight, "pos_weight")
    for x, name in ((p, "targets"), (w, "weight"), (pw, "pos_weight")):
        validation.fits(x, u.shape, name, "logits")
    if reduction == "mean" and u.size == 0:
        raise ValueError('logits is empty, so reduction="mean" is undefined')
    dtype = np.result_type(*(x for x in (u, p, w, pw) if x is not None))
    lanes = max(1, min(BLOCK, u.size))
    scratch = Scratch(lanes)
    divisor = float(u.size) if reduction == "mean" else 1.0
    losses = grad_out = None
    # The loss is computed in float64 whatever the input type: the reduction adds float64
    # values, and a float32 loss is then the float64 one rounded once. The gradient is computed
    # in the result's type: in float64 arithmetic a float32 gradient would take longer than the
    # naive float32 formula ("Floating point" states what float32 costs in accuracy). So a
    # float32 call that wants both makes two passes over the data.
    passes = []
    if loss:
        # The kernel's e, k and s are free between blocks: the reduction borrows them.
        work = [scratch(name, lanes) for name in ("e", "k", "s")]
        losses = LossReduction(reduction, u.shape, dtype, lanes, work)
    if grad:
        grad_out = np.empty(u.shape, dtype)
    if grad and dtype == np.float64:
        passes.append((np.dtype(np.float64), losses, grad_out))
    else:
        if loss:
            passes.append((np.dtype(np.float64), losses, None))
        if grad:
            passes.append((dtype, None, grad_out))
    # A loss beyond the float range (a huge logit times a huge weight) is inf, its correct
    # rounding; so is a float32 result beyond 3.4e38. Invalid operations come only from
    # infinite logits (0·inf), which the kernel repairs. Underflow (e^{-|u|} for |u| > 745)
    # rounds to 0 or a subnormal, the correct result, even where a caller raises on it.
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for work_type, reduce_to, grad_to in passes:
            if work_type != np.float64:  # float32 work takes blocks twice as long
                scratch = Scratch(max(1, min(BLOCK * 8 // work_type.itemsize, u.size)))
            blocks = element_blocks(
                [u, p, w, pw], [reduce_to.out if reduce_to else None, grad_to], u.shape,
                scratch, work_type,
            )
            for (ub, pb, wb, pwb), (loss_block, grad_block) in blocks:
                validation.in_unit_interval(pb, "targets")
                if reduce_to is not None and loss_block is None:
                    loss_block = scratch("loss", len(ub))
                _bce_kernel(_BceOperands(ub, pb, wb, pwb), loss_block, grad_block, scratch,
                            divisor)
                if reduce_to is not None and reduce_to.out is None:
                    reduce_to.add(loss_block)
    if grad_out is not None:
        grad_out = validation.result(grad_out)
    return (losses.result(divisor) if losses else None), grad_out


def bce_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> Loss:
    r"""Binary cross-entropy of targets against :math:`\sigma(\text{logits})`.

    For a logit :math:`u`, a target probability :math:`p \in [0, 1]`, a weight :math:`w` and a
    positive-class weight :math:`w_+`,

    .. math::

        \ell(u) &= -w\,\bigl[w_+\, p \log\sigma(u) + (1-p)\log\bigl(1-\sigma(u)\bigr)\bigr] \\
               &= w\,\bigl[w_+\, p \operatorname{softplus}(-u)
                  + (1-p)\operatorname{softplus}(u)\bigr].

    The second form is a sum of non-negative terms, each computed accurately, so nothing cancels
    and no condition number enters: in float64 without weights the loss was within 3 units in the
    last place of the exact value at every point measured in "Floating point" (a measured bound,
    not a proof).
    The common form :math:`\max(u, 0) - pu + \log(1 + e^{-|u|})` cancels when :math:`p` is
    near 1 and :math:`u \gg 0`. Derived in "The gradient of binary cross-entropy with respect
    to the logit"; measured in "Floating point".

    Parameters
    ----------
    logits : array_like of float
        The sigmoid's inputs :math:`u`. An infinite logit gives the loss's limit: 0 where the
        term it drives has zero weight (:math:`u = +\infty` with :math:`p = 1`), ``inf``
        elsewhere.
    targets : array_like of float
        Target probabilities :math:`p \in [0, 1]` (soft labels allowed), broadcastable to
        ``logits``.
    weight : array_like of float, optional
        Finite, non-negative weight of each element, broadcastable to ``logits`` (PyTorch's
        ``weight``).
    pos_weight : array_like of float, optional
        Finite, non-negative weight of the positive term, broadcastable to ``logits``; along the
        last axis it weighs each class of a multi-label problem (PyTorch's ``pos_weight``).
    reduction : {"none", "mean", "sum"}, default "mean"
        The element-wise losses, their mean over all elements, or their sum.

    Returns
    -------
    ndarray or numpy scalar
        The loss in nats, in the inputs' float type (float32 only if every input is float32):
        an array of ``logits``' shape for ``"none"``, a NumPy scalar otherwise. ``"sum"`` is
        the exact sum of the element-wise losses rounded once (``inf`` only if that sum
        exceeds the float range), and ``"mean"`` that sum divided by the number of elements.

    Raises
    ------
    TypeError
        If an input is not a float32 or float64 array (float16, longdouble and masked arrays
        are refused).
    ValueError
        If a target lies outside [0, 1], a weight is negative or not finite, shapes do not
        match, ``reduction`` is unknown, or ``reduction="mean"`` meets an empty input.

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

    The sum of two finite losses of :math:`10^{308}` exceeds the float range; their mean does
    not:

    >>> bce_with_logits(np.array([1e308, 1e308]), np.array([0.0, 0.0]))
    np.float64(1e+308)
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

    which is :math:`\sigma(u) - p` without weights (derived in "The gradient of binary
    cross-entropy with respect to the logit"). It is the gradient of exactly what
    :func:`bce_with_logits` returns with the same options: for ``"mean"``, divided by the
    number of elements. At an infinite logit it is the limit, :math:`w(1 - p)` at
    :math:`+\infty` and :math:`-w w_+ p` at :math:`-\infty`.

    Each region uses a form whose two terms are both accurate, so the error left is theirs,
    amplified by the subtraction in proportion to the condition number :math:`\kappa` of
    :math:`\sigma(u) - p` with respect to the logit: in float64, within
    :math:`5\max(1, \kappa)` ULP at every point measured in "Floating point" (a measured bound,
    not a proof).

    .. math::

        \sigma(u) - p = \begin{cases}
            \tfrac12\tanh(u/2) + (\tfrac12 - p) & |u| \le 1, \\
            (1 - p) - \sigma(-u) & u > 1, \\
            \sigma(-|u|) - p & u < -1.
        \end{cases}

    Near :math:`u = 0`, :math:`\sigma(u)` rounds to a neighbour of :math:`\tfrac12` and loses
    a small gradient when :math:`p = \tfrac12`; :math:`\tanh` keeps it. For :math:`u \gg 0`,
    :math:`\sigma(u) - 1` rounds to 0 while :math:`\sigma(-u)` keeps its full relative accuracy.
    :math:`\tfrac12 - p` and :math:`1 - p` are exact where they matter (Sterbenz's lemma). A
    float32 gradient is computed in float32 arithmetic with the same forms (the central one up to
    :math:`|u| = 1.25`; with ``pos_weight``, its cancelling
    :math:`1 - p - w_+ p` in float64): without weights, within :math:`5\max(1, \kappa)`
    float32 ULP at every point measured in "Floating point" (measured, not proved; with
    ``pos_weight`` it has not been measured there).

    These bounds are for the element-wise gradient (``"none"`` or ``"sum"``, no ``weight``).
    For ``"mean"`` it is then divided by the number of elements, and a ``weight`` multiplies
    it: one more rounding each, after which a bound of :math:`c\max(1, \kappa)` ULP becomes
    :math:`(2c + \tfrac12)\max(1, \kappa)` for either, :math:`(2c + \tfrac32)\max(1, \kappa)`
    for both (an ULP of the result may be half as large, relative to it, as an ULP of the
    operand; "Floating point" shows a case).

    Parameters
    ----------
    logits, targets, weight, pos_weight, reduction
        As for :func:`bce_with_logits`.

    Returns
    -------
    ndarray
        Same shape as ``logits``, in the inputs' float type.

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
) -> tuple[Loss, NDArray[np.floating]]:
    """:func:`bce_with_logits` and :func:`bce_with_logits_grad` in one pass over the data.

    The two share :math:`e^{-|u|}`, so this is faster than calling both. Derived in "The
    gradient of binary cross-entropy with respect to the logit"; measured in "Floating point".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import bce_with_logits_and_grad
    >>> loss, grad = bce_with_logits_and_grad(np.array([0.0, 2.0]), np.array([0.5, 1.0]))
    >>> round(float(loss), 6), grad.round(6)
    (0.410038, array([ 0.      , -0.059601]))
    """
    return _bce(logits, targets, weight, pos_weight, reduction, loss=True, grad=True)


# Softmax cross-entropy.


class _RowTargets(NamedTuple):
    r"""One block's effective targets :math:`t = a\,e_{\text{index}} + \text{keep}\cdot
    \text{spread} + y`, in float64 (``None``: the term is absent, or ``a`` is 1)."""

    index: NDArray[np.intp] | None  # (n,) class indices (ignored rows hold 0)
    a: NDArray[np.float64] | None  # (n,) weight of the index target
    spread: NDArray[np.float64] | None  # (K,) label smoothing's mass on each class
    keep: NDArray[np.float64] | None  # (n,) 1 for rows that count, 0 for ignored ones
    y: NDArray[np.floating] | None  # (n, K) weighted probability targets


def _softmax_kernel(
    z: NDArray,
    t: _RowTargets,
    loss: NDArray[np.float64] | None,
    grad: NDArray | None,
    scratch: Scratch,
    divisor: float,
    work: np.dtype,
) -> None:
    r"""Fill ``loss`` (per row, float64) and ``grad`` (any float type) for a block of rows.

    ``d`` and :math:`e^d` are computed in ``work`` (float32 for float32 results: in float64 the
    exponentials alone would cost about what the naive float32 formula does in all), and so is
    the pairwise row sum of the exponentials; sums of targets and everything else per row are
    float64.

    With :math:`m` the row maximum at :math:`k^\ast`, :math:`d = z - m \le 0`, and
    :math:`o = \sum_{k \ne k^\ast} e^{d_k}` (one maximum's term, exactly 1, left out):

    loss :math:`= (\sum_k t_k)\operatorname{log1p}(o) + \sum_k t_k (-d_k)`, a sum of
    non-negative terms (``log1p`` keeps a confident prediction's small loss, which
    :math:`\log\sum_k e^{d_k}` would round to 0), and gradient
    :math:`(\sum_k t_k)\, s - t` with :math:`s = e^{d} / (1 + o)`, except at :math:`k^\ast`
    (see :func:`_slope_at_top`).
    """
    n, classes = z.shape
    rows = np.arange(n)
    top = np.argmax(z, axis=1)
    m = z[rows, top].astype(work)
    d = scratch("d", n * classes, work).reshape(n, classes)
    np.subtract(z, m[:, None], out=d)  # overflows only towards -inf (logits 1e308 apart)
    if work == np.float32 and not d.min() >= _EXP32_NORMAL:
        # Below -87.3, float32's exp is subnormal and keeps few digits, which a weight or a
        # target mass above 1 would scale up into the result: rows with logits more than 87
        # apart (or a NaN) go through float64, the others stay in float32, so that a row's
        # result does not depend on the rows around it.
        _split_rows(z, t, loss, grad, scratch, divisor, ~(d.min(axis=1) >= _EXP32_NORMAL))
        return
    if not np.all(np.isfinite(m)):
        _shift_infinite_maxima(d, z, m)
    # mass = sum_k t_k, and below = sum_k t_k (-d_k) >= 0 term by term, before d becomes e^d.
    mass = np.zeros(n)
    below = np.zeros(n) if loss is not None else None
    if t.index is not None:
        mass += 1.0 if t.a is None else t.a
        if below is not None:
            d_index = d[rows, t.index]
            below -= d_index if t.a is None else t.a * d_index
    if t.spread is not None:
        keep = 1.0 if t.keep is None else t.keep
        mass += keep * t.spread.sum()
        if below is not None:
            # sum_k spread_k (-d_k), added pairwise in float64: for one spread on every class
            # (no class weights) as that spread times the sum of -d, without the products.
            if t.spread[0] == t.spread.min() == t.spread.max():
                below -= keep * (t.spread[0] * d.sum(axis=1, dtype=np.float64))
            else:
                product = np.multiply(d, t.spread, out=scratch("g", n * classes, work).reshape(
                    n, classes), casting="same_kind")
                below -= keep * product.sum(axis=1, dtype=np.float64)
    if t.y is not None:
        # Sums of targets in float64, pairwise: a dot product accumulates in a few lanes of the
        # working type, where a large target rounds the tiny ones after it away.
        mass += t.y.sum(axis=1, dtype=np.float64)
        if grad is not None:
            # The gradient at the maximum needs the other classes' target mass on its own, added
            # directly: sum(y) - y* would cancel it away when y* is near 1.
            y_top = t.y[rows, top].astype(np.float64)
            others_only = scratch("others", n * classes, t.y.dtype).reshape(n, classes)
            np.copyto(others_only, t.y)
            others_only[rows, top] = 0
            y_rest = others_only.sum(axis=1, dtype=np.float64)
        if below is not None:  # each product >= 0, rounded once, then added as above
            product = np.multiply(t.y, d, out=scratch("g", n * classes, work).reshape(
                n, classes), casting="same_kind")
            below -= product.sum(axis=1, dtype=np.float64)
    e = np.exp(d, out=d)
    e[rows, top] = 0.0
    # Sums of non-negative terms, pairwise along each row, in the work type: float64
    # accumulation of float32 terms would cost as much as the exponentials.
    others = e.sum(axis=1).astype(np.float64)
    total = 1 + others
    if loss is not None:
        np.log1p(others, out=loss)
        if t.index is None or t.a is not None or t.spread is not None:
            loss *= mass
        loss += below
        if not np.isfinite(loss).all():
            _repair_rows(loss, z, t)
    if grad is not None:
        inverse = 1 / total
        plain = t.a is None and t.spread is None and t.y is None
        # (sum t)·s - t in float64; written straight into the output for one-hot targets and no
        # divisor, else into a work array that is divided (for "mean") into the output last,
        # so that the result is rounded to its type once.
        if plain and divisor == 1.0:
            slope = np.multiply(e, inverse.astype(work)[:, None], out=grad, casting="same_kind")
        else:
            slope = scratch("g", n * classes, work).reshape(n, classes)
            scale = inverse if plain else mass * inverse
            np.multiply(e, scale.astype(work)[:, None], out=slope)
            if t.spread is not None:
                # (In the work type: a float64 row against float32 probabilities would be
                # converted element by element.)
                spread = t.spread.astype(work)
                if t.keep is not None:
                    spread = t.keep[:, None].astype(work) * spread
                slope -= spread
            if t.y is not None:
                if t.index is None and divisor == 1.0:
                    # Probability targets: the subtraction itself writes the output.
                    slope = np.subtract(slope, t.y, out=grad, casting="same_kind")
                else:
                    np.subtract(slope, t.y, out=slope, casting="same_kind")
        # The index target's entry and the maximum's, from float64 values. At the maximum the
        # other classes' target mass is added up directly, not as sum(t) - t*, which cancels.
        t_top = np.zeros(n)
        rest = np.zeros(n)
        if t.index is not None:
            # From e, with the target's whole weight subtracted once.
            a = 1.0 if t.a is None else t.a
            t_index = a
            if t.spread is not None:
                t_index = a + (1.0 if t.keep is None else t.keep) * t.spread[t.index]
            scale = inverse if plain else mass * inverse
            slope[rows, t.index] = e[rows, t.index] * scale - t_index
            at_top = t.index == top
            t_top += np.where(at_top, a, 0.0)
            rest += np.where(at_top, 0.0, a)
        if t.spread is not None:
            keep = 1.0 if t.keep is None else t.keep
            t_top += keep * t.spread[top]
            rest += keep * (t.spread.sum() - t.spread[top])
        if t.y is not None:
            t_top += y_top
            rest += y_rest
        # The maximum, last (it may be the target).
        slope[rows, top] = _slope_at_top(mass, rest, t_top, others, total)
        if t.keep is not None:
            slope[t.keep == 0] = 0.0
        if slope is not grad:
            np.divide(slope, divisor, out=grad, casting="same_kind")


#: A d above which float32's e^d is a normal number, with a margin (e^-87.34 is float32's
#: smallest normal).
_EXP32_NORMAL = -87.0


def _split_rows(z, t: _RowTargets, loss, grad, scratch: Scratch, divisor: float, wide) -> None:
    """Run the softmax kernel on the rows marked ``wide`` in float64, on the others in float32."""
    for rows, work in ((~wide, np.dtype(np.float32)), (wide, np.dtype(np.float64))):
        picked = np.flatnonzero(rows)
        if not picked.size:
            continue
        per_row = [None if x is None or x is t.spread else x[picked] for x in t]
        part = _RowTargets(*per_row[:2], t.spread, *per_row[3:])
        part_loss = None if loss is None else np.empty(picked.size)
        part_grad = None if grad is None else np.empty((picked.size, z.shape[1]), grad.dtype)
        _softmax_kernel(z[picked], part, part_loss, part_grad, scratch, divisor, work)
        if loss is not None:
            loss[picked] = part_loss
        if grad is not None:
            grad[picked] = part_grad


def _slope_at_top(mass, rest, t_top: NDArray, others: NDArray, total: NDArray) -> NDArray:
    """The gradient (sum t)·s* - t* at each row's largest logit, where s* = 1 / total.

    When that logit dominates (s* >= 1/2, others <= 1), s* rounds towards 1 and the direct form
    loses 1 - s*; it is then written with the other classes' probability, others / total, and
    their target mass ``rest`` = sum t - t*: (sum t)·s* - t* = rest - (sum t)·others/total.
    When it does not dominate, that form would cancel instead, and the direct one is accurate.
    """
    dominant = rest - mass * (others / total)
    direct = mass / total - t_top
    return np.where(others <= 1, dominant, direct)


def _shift_infinite_maxima(d: NDArray, z: NDArray, m: NDArray) -> None:
    """Rows whose maximum is ±inf: the entries equal to it shift to 0, not to inf - inf.

    That gives the limits: ``[inf, 0.5]`` has softmax ``[1, 0]`` and loss 0 at the first class;
    a row of ``-inf`` is uniform (every entry the same, however they tend to -inf).
    """
    rows = ~np.isfinite(m) & ~np.isnan(m)
    d[rows] = np.where(z[rows] == m[rows, None], 0.0, d[rows])


def _repair_rows(loss: NDArray, z: NDArray, t: _RowTargets) -> None:
    """Recompute, one row at a time, rows whose loss came out NaN or wrongly infinite.

    NaN: a zero target on a class whose logit is -inf (or 1e308 below the maximum) gave
    0·(-inf); it contributes nothing. Infinite although every logit is finite: z - m overflowed
    (logits more than 1.8e308 apart) under a small target weight, whose product with the true
    difference may well be finite; the row is recomputed from (z - m)/2 = z/2 - m/2, which
    cannot overflow, and doubled at the end (inf only if the loss itself exceeds the range).
    NaN logits still give NaN.
    """
    classes = z.shape[1]
    finite_rows = np.isfinite(z).all(axis=1)
    suspect = np.isnan(loss) | (np.isinf(loss) & finite_rows)
    for row in np.flatnonzero(suspect):
        zr = z[row].astype(np.float64)
        target = np.zeros(classes)
        if t.index is not None:
            target[t.index[row]] += 1.0 if t.a is None else t.a[row]
        if t.spread is not None:
            target += (1.0 if t.keep is None else t.keep[row]) * t.spread
        if t.y is not None:
            target += t.y[row]
        top = int(np.argmax(zr))
        half = zr / 2 - zr[top] / 2  # (z - m)/2, exact but for subnormal logits
        if not np.isfinite(zr[top]):
            half = np.where(zr == zr[top], 0.0, half)
        e = np.exp(2 * half)
        e[top] = 0.0
        spread_term = target * np.log1p(e.sum())
        gap_term = target * -half
        gap_term[target == 0] = 0.0
        loss[row] = spread_term.sum() + 2 * gap_term.sum()


class _Targets(NamedTuple):
    """Validated softmax targets, flattened to rows: class indices or probability rows."""

    index: NDArray[np.intp] | None  # (rows,) class indices, ignored rows set to 0
    keep: NDArray[np.float64] | None  # (rows,) 1 for rows that count, 0 for ignored; None: all
    y: Rows | None  # probability rows


def _softmax_targets(
    targets: ArrayLike, rows: Rows, shape: tuple[int, ...], axis: int, ignored: int | None
) -> _Targets:
    """Tell index targets from probability targets by dtype, and check them."""
    if isinstance(targets, np.ma.MaskedArray):
        raise TypeError("targets is a masked array; lossgrad would drop its mask (pass "
                        "targets.filled(...) or select the rows to keep)")
    raw = np.asarray(targets)
    if np.issubdtype(raw.dtype, np.bool_):
        raise TypeError(
            "targets must be integer class indices or floating-point probabilities, got bool"
        )
    if not np.issubdtype(raw.dtype, np.integer):
        y = validation.probabilities(raw, "targets")
        if y.shape != shape:
            raise ValueError(
                f"probability targets need the shape of logits, {shape}; got {y.shape}"
            )
        return _Targets(None, None, Rows(y, axis))
    if raw.shape != rows.lead:
        raise ValueError(
            f"class-index targets need shape {rows.lead} (logits without the class axis), "
            f"got {raw.shape}"
        )
    flat = raw.reshape(rows.count)
    if np.issubdtype(raw.dtype, np.unsignedinteger) and flat.size:
        # Checked before the conversion to intp, which would wrap 2**64 - 100 to -100.
        too_big = (flat >= rows.classes) & (flat != ignored if ignored is not None else True)
        if np.any(too_big):
            raise ValueError(
                f"class-index targets must lie in 0..{rows.classes - 1} (or equal ignore_index, "
                f"{ignored}); found {flat[too_big][0]}"
            )
    index = flat.astype(np.intp, copy=False)
    counted = np.ones(rows.count, dtype=bool) if ignored is None else index != ignored
    bad = counted & ((index < 0) | (index >= rows.classes))
    if np.any(bad):
        raise ValueError(
            f"class-index targets must lie in 0..{rows.classes - 1} (or equal ignore_index, "
            f"{ignored}); found {index[bad][0]}"
        )
    if counted.all():
        return _Targets(index, None, None)
    return _Targets(np.where(counted, index, 0), counted.astype(np.float64), None)


def _softmax_divisor(
    t: _Targets, class_weight: NDArray | None, count: int, ignored: int | None
) -> float:
    """What "mean" divides by: the rows that count or, as PyTorch does for class indices with a
    class weight, their target classes' total weight (added accurately)."""
    if t.index is not None and class_weight is not None:
        target_weight = class_weight[t.index]
        if t.keep is not None:
            target_weight *= t.keep
        total = CompensatedSum(min(BLOCK, count))
        for start in range(0, count, BLOCK):
            total.add(target_weight[start : start + BLOCK])
        divisor = total.value()
    else:
        divisor = float(count if t.keep is None else np.count_nonzero(t.keep))
    if divisor == 0.0:
        if t.keep is not None and not t.keep.any():
            raise ValueError(
                f'every target is ignore_index ({ignored}), so reduction="mean" has no rows to '
                f"average"
            )
        raise ValueError('the targets\' weights sum to zero, so reduction="mean" is undefined')
    return divisor


def _row_targets(
    t: _Targets, start: int, stop: int, eps: float, class_weight: NDArray | None, spread,
    work: np.dtype,
) -> _RowTargets:
    """One block's effective targets t = w[(1 - eps) y + eps/K], in the kernel's terms.

    Scaled probability targets are formed in the work type: a float32 result subtracts them from
    float32 probabilities, and their rounding is part of the targets' condition number.
    """
    if t.index is None:
        y = t.y.block(start, stop)
        if eps or class_weight is not None:
            y = np.multiply(y, 1.0 - eps, dtype=work)
            if class_weight is not None:
                y *= class_weight.astype(work)
        return _RowTargets(None, None, spread, None, y)
    index = t.index[start:stop]
    keep = None if t.keep is None else t.keep[start:stop]
    a = None  # one-hot targets of weight 1: the kernel's fastest case
    if eps or class_weight is not None or keep is not None:
        a = np.full(stop - start, 1.0 - eps)
        if class_weight is not None:
            a *= class_weight[index]
        if keep is not None:
            a *= keep
    return _RowTargets(index, a, spread, keep, None)


def _softmax_ce(
    logits: ArrayLike,
    targets: ArrayLike,
    weight: ArrayLike | None,
    label_smoothing: object,
    reduction: str,
    axis: object,
    ignore_index: object,
    *,
    loss: bool,
    grad: bool,
) -> tuple[Loss | None, NDArray[np.floating] | None]:
    reduction = validation.reduction(reduction)
    eps = validation.label_smoothing(label_smoothing)
    ignored = validation.ignore_index(ignore_index)
    z = validation.float_array(logits, "logits")
    axis = validation.class_axis(z.shape, axis)
    rows = Rows(z, axis)
    classes = rows.classes
    w = validation.weights(weight, "weight")
    if w is not None and w.shape != (classes,):
        raise ValueError(f"weight needs one entry per class, shape ({classes},); got {w.shape}")
    t = _softmax_targets(targets, rows, z.shape, axis, ignored)
    if rows.count == 0 and reduction == "mean":
        raise ValueError('logits has no rows, so reduction="mean" is undefined')
    # Class indices do not take part in the result's type; probabilities and weights do.
    dtype = np.result_type(z, *(x for x in (None if t.y is None else t.y.moved, w)
                                if x is not None))
    class_weight = None if w is None else w.astype(np.float64)
    divisor = 1.0
    if reduction == "mean":
        divisor = _softmax_divisor(t, class_weight, rows.count, ignored)
    wide = dtype == np.float64  # a float32 gradient is divided after its rounding, as in _bce
    spread = None  # label smoothing's mass on each class, w·eps/K
    if eps:
        spread = np.full(classes, eps / classes) if w is None else class_weight * (eps / classes)
    step = max(1, _ROWS_BLOCK // classes)
    lanes = max(1, min(step, rows.count))
    scratch = Scratch(lanes * classes)
    work = [Scratch(lanes)(name, lanes) for name in ("sum0", "sum1", "sum2")]
    losses = LossReduction(reduction, rows.lead, dtype, lanes, work) if loss else None
    # Row losses go straight into a float64 "none" output, else through a float64 buffer.
    loss_rows = losses.out.reshape(rows.count) if losses and losses.out is not None else None
    direct = loss_rows is not None and loss_rows.dtype == np.float64
    grad_out = np.empty((rows.count, classes), dtype) if grad else None
    # Overflow gives inf, the correct rounding of a result beyond the float range; invalid
    # operations come only from infinite logits (inf - inf, 0·inf), which the kernel repairs;
    # underflow in exp rounds to 0 or a subnormal, the correct result.
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for start in range(0, rows.count, step):
            stop = min(rows.count, start + step)
            block = _row_targets(t, start, stop, eps, class_weight, spread, dtype)
            loss_block = None
            if losses is not None:
                loss_block = loss_rows[start:stop] if direct else scratch("loss", stop - start)
            grad_block = grad_out[start:stop] if grad_out is not None else None
            _softmax_kernel(rows.block(start, stop), block, loss_block, grad_block, scratch,
                            divisor if wide else 1.0, dtype)
            if grad_block is not None and not wide and divisor != 1.0:
                grad_block /= dtype.type(divisor)
            if loss_block is None:
                continue
            if block.keep is not None:
                loss_block[block.keep == 0] = 0.0
            if loss_rows is None:
                losses.add(loss_block)
            elif not direct:
                loss_rows[start:stop] = loss_block
    if grad_out is not None:
        grad_out = np.moveaxis(grad_out.reshape(rows.moved.shape), -1, axis)
        grad_out = validation.result(grad_out)
    return (losses.result(divisor) if losses else None), grad_out


def softmax_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    axis: int = -1,
    ignore_index: int | None = -100,
) -> Loss:
    r"""Cross-entropy of targets against the softmax of logits, over the class axis.

    .. math::

        L(z) = -\sum_k t_k \log s_k(z) = \Bigl(\sum_k t_k\Bigr)\operatorname{logsumexp}(z)
        - \sum_k t_k z_k,

    with effective targets :math:`t_k = w_k\bigl[(1-\varepsilon)\,y_k + \varepsilon/K\bigr]`.
    Computed as :math:`(\sum_k t_k)\operatorname{log1p}(\textstyle\sum_{j \ne k^\ast}
    e^{z_j - m}) + \sum_k t_k (m - z_k)`, a sum of non-negative terms with
    :math:`m = z_{k^\ast}` the largest logit; ``log1p`` keeps the loss of a confident, correct
    prediction, which :math:`\log\sum_k e^{z_k - m}` would round to 0. Derived in "The gradient
    of softmax cross-entropy".

    Accuracy, measured, not proved: the loss and every gradient entry within
    :math:`8\max(1, \kappa)` ULP of the exact value in float64, and within
    :math:`16\max(1, \kappa)` in float32, where :math:`z - m` and its exponentials are computed
    in float32 and the exponentials added pairwise in float32 (sums of targets, and everything
    else per row, in float64; rows whose logits lie more than 87 apart go through float64).
    :math:`\kappa` is the condition number with respect to the logits and the targets together
    (an error of about :math:`\kappa` ULP is inherent in the data). ``benchmarks/accuracy.py``
    measures at most 3.2 on its cases; a search by a reviewer found 13.3 in float32, at a row
    whose largest logit does not dominate, where the rounding of :math:`z - m` is not covered by
    :math:`\kappa`. For ``"mean"`` a bound :math:`c` becomes
    :math:`2c + \tfrac12` (one more rounding).

    Parameters
    ----------
    logits : array_like of float, shape (..., K, ...)
        Logits, classes along ``axis``. Infinite logits give the loss's limit: 0 for a target
        class at the only ``+inf``, ``inf`` for a target at ``-inf``; entries equal to an
        infinite maximum share its probability equally.
    targets : array_like
        Integer class indices in 0..K-1, of the shape of ``logits`` without the class axis, or
        probabilities of the shape of ``logits`` (soft labels allowed). The dtype decides which.
    weight : array_like of float, shape (K,), optional
        Finite, non-negative weight of each class (PyTorch's ``weight``).
    label_smoothing : float, default 0
        :math:`\varepsilon \in [0, 1]`: the targets become
        :math:`(1-\varepsilon)\,y + \varepsilon/K`.
    reduction : {"none", "mean", "sum"}, default "mean"
        Over the rows. As in PyTorch, the mean with class-index targets and a ``weight`` divides
        by the total weight of the rows' target classes; otherwise by the number of rows.
        Ignored rows count in neither.
    axis : int, default -1
        The class axis (PyTorch's ``dim=1`` is ``axis=1`` here).
    ignore_index : int or None, default -100
        A class-index target to ignore (PyTorch's default, used for padding): its rows have zero
        loss and zero gradient and are left out of the mean. ``None`` ignores nothing. Has no
        effect on probability targets.

    Returns
    -------
    ndarray or numpy scalar
        The loss in nats: an array of the shape of ``logits`` without the class axis for
        ``"none"``, a NumPy scalar of the result's float type otherwise (the exact sum of the
        row losses rounded once, divided for ``"mean"``).

    Raises
    ------
    TypeError
        If ``logits`` (or a probability target, or ``weight``) is not a float32 or float64
        array, or ``label_smoothing``, ``axis`` or ``ignore_index`` has the wrong type.
    ValueError
        If shapes do not match, a probability lies outside [0, 1], a class index is out of
        range, a weight is negative or not finite, ``label_smoothing`` lies outside [0, 1], or
        ``reduction="mean"`` meets no rows, only ignored rows, or zero total weight.

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

    Rows whose target is ``ignore_index`` count for nothing:

    >>> softmax_cross_entropy(np.zeros((3, 2)), np.array([0, -100, 1]))
    np.float64(0.6931471805599453)
    """
    return _softmax_ce(
        logits, targets, weight, label_smoothing, reduction, axis, ignore_index,
        loss=True, grad=False,
    )[0]


def softmax_cross_entropy_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    axis: int = -1,
    ignore_index: int | None = -100,
) -> NDArray[np.floating]:
    r"""Gradient of :func:`softmax_cross_entropy` with respect to the logits.

    .. math::

        \frac{\partial L}{\partial z} = \Bigl(\sum_k t_k\Bigr) s - t,

    which is :math:`s - y` for targets that sum to 1 and no weights or smoothing (derived in
    "The gradient of softmax cross-entropy"). It is the gradient of exactly what
    :func:`softmax_cross_entropy` returns with the same options. At the largest logit,
    :math:`s_{k^\ast}` rounds to 1 when that logit dominates and :math:`s_{k^\ast} - 1` would
    round to 0; the gradient there is computed from the other classes' total,
    :math:`1 - s_{k^\ast} = \sum_{k \ne k^\ast} e^{z_k - m} / \sum_k e^{z_k - m}`.

    Parameters
    ----------
    logits, targets, weight, label_smoothing, reduction, axis, ignore_index
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

    Classes along the first axis, as PyTorch's ``dim=1`` puts them for a batch of one:

    >>> softmax_cross_entropy_grad(np.array([[30.0], [0.0], [0.0]]), np.array([0]), axis=0)
    array([[-1.87152459e-13],
           [ 9.35762297e-14],
           [ 9.35762297e-14]])
    """
    return _softmax_ce(
        logits, targets, weight, label_smoothing, reduction, axis, ignore_index,
        loss=False, grad=True,
    )[1]


def softmax_cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    axis: int = -1,
    ignore_index: int | None = -100,
) -> tuple[Loss, NDArray[np.floating]]:
    """:func:`softmax_cross_entropy` and its gradient in one pass over the data.

    Derived in "The gradient of softmax cross-entropy".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy_and_grad
    >>> loss, grad = softmax_cross_entropy_and_grad(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6), grad
    (0.693147, array([[ 0.5, -0.5]]))
    """
    return _softmax_ce(
        logits, targets, weight, label_smoothing, reduction, axis, ignore_index,
        loss=True, grad=True,
    )
