r"""Sigmoid focal loss in logit space, and its gradient, accurate and fast.

Focal loss (Lin et al., 2017) scales binary cross-entropy by :math:`(1 - p_t)^\gamma`, where
:math:`p_t` is the probability the model gives the target, so that well-classified examples
weigh less. The options follow torchvision's ``sigmoid_focal_loss`` (``alpha``, ``gamma``; soft
targets as its formula implies); the reduction follows the rest of lossgrad (default
``"mean"``, where torchvision's is ``"none"``).

How it is computed. The common formula (torchvision's) rounds :math:`p = \sigma(u)`, forms
:math:`1 - p_t` by subtraction, which cancels where the prediction is confident and correct,
and its gradient, written out as people do by hand, raises :math:`1 - p_t` to the power
:math:`\gamma - 1`, which is infinite there for :math:`\gamma < 1`. Here every factor is formed
in logit space from :math:`e^{-|u|}`, as a sum of non-negative terms:

.. math::

    1 - p_t = (1 - y)\,\sigma(u) + y\,\sigma(-u), \qquad
    \mathrm{ce} = |u|\,c + \log\bigl(1 + e^{-|u|}\bigr),

with :math:`c = 1 - y` where :math:`u \ge 0` and :math:`c = y` where :math:`u < 0`; the
gradient's :math:`(1 - p_t)^{\gamma - 1}` enters only through the ratio
:math:`(1 - p_t)' / (1 - p_t)`, which is bounded. The work is done in float64, a block at a
time (:mod:`lossgrad.blocks`); a float32 result is the float64 one rounded once.
``benchmarks/accuracy.py`` and ``benchmarks/speed.py`` measure both claims.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.blocks import BLOCK, Loss, LossReduction, Reduction, Scratch, element_blocks

__all__ = ["sigmoid_focal_loss", "sigmoid_focal_loss_and_grad", "sigmoid_focal_loss_grad"]

#: Where |u| is at most this, sigma(u) - y is formed as tanh(u/2)/2 + (1/2 - y): sigma(u) is
#: then a neighbour of 1/2, and the difference of two such numbers would lose its digits (the
#: same choice as the binary cross-entropy's gradient; see "Floating point").
_CENTRAL = 1.0
#: The smallest normal float64, which stands in for a 1 - p_t that underflowed to 0.
_TINY = np.finfo(np.float64).tiny
#: The sign bit of a float64, as an int64: OR-ing it in gives -|u|, AND-ing it out the sign.
_SIGN_BIT = np.int64(-(2**63))
#: The smallest block (elements), for small inputs.
_MIN_BLOCK = 2048
#: The work arrays' bytes per element of a block (measured with tracemalloc).
_BYTES_PER_LANE = 190


def _alpha(value: object) -> float | None:
    """torchvision's rule: a negative ``alpha`` (or None) switches the weighting off."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"alpha must be a real number in [0, 1] or None, got {value!r}")
    alpha = float(value)
    if alpha < 0:
        return None
    if not alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1] (or be negative or None), got {value!r}")
    return alpha


def _gamma(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"gamma must be a non-negative real number, got {value!r}")
    gamma = float(value)
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a non-negative, finite number, got {value!r}")
    return gamma


def _alpha_t_positive(y: NDArray[np.float64], alpha: float | None) -> NDArray[np.bool_]:
    """Where :math:`\\alpha_t = \\alpha y + (1 - \\alpha)(1 - y)` is positive, for y in [0, 1]."""
    if alpha is None:
        return np.ones(y.shape, np.bool_)
    return ((alpha > 0.0) & (y > 0.0)) | ((alpha < 1.0) & (y < 1.0))


def _focal_kernel(
    u: NDArray[np.float64],
    y: NDArray[np.float64],
    alpha: float | None,
    gamma: float,
    loss: NDArray[np.float64] | None,
    grad: NDArray[np.float64] | None,
    scratch: Scratch,
    divisor: float,
) -> None:
    r"""Fill ``loss`` and ``grad`` (when given) for one float64 block.

    .. math::

        \ell = \alpha_t\, m^\gamma\, \mathrm{ce}, \qquad
        \ell' = \alpha_t\, m^\gamma \Bigl[\gamma\, \frac{m'}{m}\, \mathrm{ce}
            + \sigma(u) - y\Bigr], \qquad
        \frac{m'}{m} = \frac{(1 - 2y)\,\sigma(u)\,\sigma(-u)}{m},

    with :math:`m = 1 - p_t` and :math:`\alpha_t = \alpha y + (1 - \alpha)(1 - y)`.
    """
    n = len(u)
    na = scratch("na", n)
    np.bitwise_or(u.view(np.int64), _SIGN_BIT, out=na.view(np.int64))  # -|u|
    # Logits beyond 700 in size: sigma(-|u|) may underflow, and 1 - p_t with it, or be infinite.
    extreme = not na.min() >= -700.0  # (also true for NaN, which then goes its own way)
    e = np.exp(na, out=scratch("e", n))  # e^-|u| <= 1: never overflows
    # c = 1 - y where u >= 0, y where u < 0: the coefficient of sigma(|u|) in 1 - p_t and of
    # |u| in ce; d = 1 - c that of sigma(-|u|). (1 - 2y is exact for y >= 1/4; below, c and d
    # are within an ulp or so of 1 - y and y.)
    r = np.multiply(y, -2.0, out=scratch("r", n))
    r += 1.0
    c = np.greater_equal(u, 0.0, out=scratch("c", n))
    c *= r
    c += y
    d = np.subtract(1.0, c, out=scratch("d", n))
    small = np.add(e, 1.0, out=scratch("small", n))
    big = np.divide(1.0, small, out=scratch("big", n))  # sigma(|u|)
    np.divide(e, small, out=small)  # sigma(-|u|), by a quotient: e times big rounds once more
    m = np.multiply(c, big, out=scratch("m", n))
    m += np.multiply(d, small, out=d)  # 1 - p_t: a sum of two non-negative terms
    ce = np.multiply(na, c, out=scratch("ce", n))  # -|u| c
    if extreme:
        ce[np.isinf(na) & (c == 0)] = 0.0  # the limit of |u| c with c = 0
    np.subtract(np.log1p(e, out=e), ce, out=ce)  # two non-negative terms; e is free from here
    weight = None  # None stands for 1
    if gamma == 1.0:
        weight = scratch("weight", n)
        np.copyto(weight, m)
    elif gamma == 2.0:
        weight = np.square(m, out=scratch("weight", n))
    elif gamma != 0.0:
        weight = np.power(m, gamma, out=scratch("weight", n))
    if alpha is not None:
        # alpha y + (1 - alpha)(1 - y), written with one product of y.
        alpha_t = np.multiply(y, 2.0 * alpha - 1.0, out=d)  # d is free from here
        alpha_t += 1.0 - alpha
        weight = alpha_t if weight is None else np.multiply(weight, alpha_t, out=weight)
    if loss is not None:
        if weight is None:
            np.copyto(loss, ce)
        else:
            np.multiply(weight, ce, out=loss)
        if extreme:
            # An infinite logit with c > 0 (certain, and wrong by at least c): ce is infinite
            # while 1 - p_t tends to c, so the loss tends to inf, or is 0 where alpha_t = 0
            # (the loss is then 0 at every logit). The product above would give 0·inf = NaN
            # where c^gamma underflows, or where alpha_t = 0.
            wrong = np.flatnonzero(np.isinf(na) & (c > 0.0))
            if wrong.size:
                loss[wrong] = np.where(_alpha_t_positive(y[wrong], alpha), np.inf, 0.0)
    if grad is None:
        return
    # sigma(u) - y = ±(c - sigma(-|u|)), minus for u < 0: exact in c where it matters.
    g = np.subtract(c, small, out=grad)
    sign = e.view(np.int64)  # e is free
    np.bitwise_and(u.view(np.int64), _SIGN_BIT, out=sign)
    np.bitwise_xor(g.view(np.int64), sign, out=g.view(np.int64))
    # Near u = 0 with a soft target, sigma(u) is a neighbour of 1/2 and the difference loses
    # its digits: there tanh(u/2)/2 + (1/2 - y). (A hard target is 1/4 or more away.)
    centre = np.flatnonzero(np.greater_equal(na, -_CENTRAL, out=scratch("near", n, np.bool_)))
    if centre.size:
        yc = y[centre]
        soft = np.flatnonzero((yc > 0.0) & (yc < 1.0))
        if soft.size:
            centre = centre[soft]
            g[centre] = 0.5 * np.tanh(0.5 * u[centre]) + (0.5 - yc[soft])
    if gamma != 0.0:
        # gamma ce (1 - 2y) sigma(u) sigma(-u) / (1 - p_t): the ratio (1 - p_t)' / (1 - p_t)
        # is bounded even where 1 - p_t underflows (sigma(-|u|) then does too, and the term's
        # limit is 0).
        term = np.multiply(big, small, out=big)
        term *= r
        if extreme:
            np.maximum(m, _TINY, out=m)
        term /= m
        term *= ce
        if extreme:
            term[np.isinf(na)] = 0.0  # its limit: ce grows like |u|, the ratio falls like e^-|u|
        if gamma != 1.0:
            term *= gamma
        g += term
    if weight is not None:
        g *= weight
    if divisor != 1.0:
        g /= divisor


def _focal(
    logits: ArrayLike,
    targets: ArrayLike,
    alpha: object,
    gamma: object,
    reduction: str,
    *,
    loss: bool,
    grad: bool,
) -> tuple[Loss | None, NDArray[np.floating] | None]:
    reduction = validation.reduction(reduction)
    alpha = _alpha(alpha)
    gamma = _gamma(gamma)
    u = validation.float_array(logits, "logits")
    y = validation.float_array(targets, "targets")  # their range is checked block by block
    validation.fits(y, u.shape, "targets", "logits")
    if reduction == "mean" and u.size == 0:
        raise ValueError('logits is empty, so reduction="mean" is undefined')
    dtype = np.result_type(u, y)
    # At most half the binary losses' block, and small enough that the work arrays (about
    # twenty float64 arrays of a block each, with the conversions and the sum: some 190 bytes
    # per element of the block) take at most 7.5 % of the memory of the inputs and outputs:
    # at a fixed block they took 30-70 % for a call on a million logits. Measured by
    # benchmarks/speed.py; below 2048 elements a block costs more in numpy's time per call
    # than it saves.
    outputs = u.size * dtype.itemsize * (grad + (loss and reduction == "none"))
    budget = int(0.075 * (u.nbytes + y.nbytes + outputs) / _BYTES_PER_LANE)
    block_size = max(_MIN_BLOCK, min(BLOCK // 2, budget))
    lanes = max(1, min(block_size, u.size))
    scratch = Scratch(lanes)
    divisor = float(u.size) if reduction == "mean" else 1.0
    losses = None
    if loss:
        work = [scratch(name, lanes) for name in ("sum0", "sum1", "sum2")]
        losses = LossReduction(reduction, u.shape, dtype, lanes, work)
    grad_out = np.empty(u.shape, dtype) if grad else None
    # Underflow (e^-|u| beyond |u| = 745, and products of small factors) rounds to 0 or a
    # subnormal, the correct result; an infinite logit's 0·inf is repaired in the kernel.
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        blocks = element_blocks(
            [u, y], [losses.out if losses else None, grad_out], u.shape, scratch,
            np.dtype(np.float64), block_size,
        )
        for (ub, yb), (loss_block, grad_block) in blocks:
            validation.in_unit_interval(yb, "targets")
            if losses is not None and loss_block is None:
                loss_block = scratch("loss", len(ub))
            _focal_kernel(ub, yb, alpha, gamma, loss_block, grad_block, scratch, divisor)
            if losses is not None and losses.out is None:
                losses.add(loss_block)
    if grad_out is not None:
        grad_out = validation.result(grad_out)
    return (losses.result(divisor) if losses else None), grad_out


_MATH = r"""
    .. math::

        \ell(u, y) = -\alpha_t\,(1 - p_t)^\gamma \log p_t,

    .. math::

        p_t = y\,\sigma(u) + (1 - y)\,\sigma(-u), \qquad
        \alpha_t = \alpha y + (1 - \alpha)(1 - y),

    where :math:`-\log p_t` is read, for soft targets, as binary cross-entropy
    :math:`\log(1 + e^u) - yu` (as torchvision computes it); for :math:`y \in \{0, 1\}` the two
    agree. :math:`\gamma = 0` without ``alpha`` is binary cross-entropy."""

_PARAMETERS = r"""
    Parameters
    ----------
    logits : array_like of float
        The sigmoid's inputs :math:`u`. An infinite logit gives the loss's limit (0 where the
        prediction is certain and right, ``inf`` where it is certain and wrong, soft targets
        included, unless :math:`\alpha_t = 0`, which makes the loss 0 at every logit).
    targets : array_like of float
        Target probabilities :math:`y \in [0, 1]` (soft labels allowed), broadcastable to
        ``logits``.
    alpha : float or None, default 0.25
        The weight :math:`\alpha \in [0, 1]` of the positive term; ``None`` or a negative
        number switches the weighting off (:math:`\alpha_t = 1`), as in torchvision.
    gamma : float, default 2
        The focusing exponent :math:`\gamma \ge 0`.
    reduction : {"none", "mean", "sum"}, default "mean"
        The element-wise losses, their mean over all elements, or their sum."""

_RAISES = r"""
    Raises
    ------
    TypeError
        If an input is not a float32 or float64 array, or ``alpha`` or ``gamma`` is not a real
        number.
    ValueError
        If a target lies outside [0, 1], ``alpha`` exceeds 1, ``gamma`` is negative or not
        finite, shapes do not match, ``reduction`` is unknown, or ``reduction="mean"`` meets an
        empty input."""

_REFERENCES = r"""
    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollár, Focal loss for dense object
       detection, *ICCV*, 2017, https://doi.org/10.1109/ICCV.2017.324."""


def _with_shared_sections(function):
    """Fill the sections that the three functions share into ``function``'s docstring."""
    function.__doc__ = function.__doc__.format(
        math=_MATH, parameters=_PARAMETERS, raises=_RAISES, references=_REFERENCES
    )
    return function


@_with_shared_sections
def sigmoid_focal_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
) -> Loss:
    r"""Sigmoid focal loss of targets against :math:`\sigma(\text{{logits}})`.

    Used in "Focal loss".
    {math}

    Every factor is formed in logit space without cancellation (see the module docstring);
    ``benchmarks/accuracy.py`` measures the error against mpmath, in units in the last place
    times :math:`\max(1, \kappa)`, :math:`\kappa` being the loss's condition number with
    respect to the logit.
    {parameters}

    Returns
    -------
    ndarray or numpy scalar
        The loss in nats, in the inputs' float type: an array of ``logits``' shape for
        ``"none"``, a NumPy scalar otherwise (``"sum"`` the exact sum of the element-wise losses
        rounded once, ``"mean"`` that sum divided by the number of elements).
    {raises}
    {references}

    Examples
    --------
    A confident, correct prediction: the common formula's :math:`1 - p_t` cancels to 0.

    >>> import numpy as np
    >>> from lossgrad.focal import sigmoid_focal_loss
    >>> u, y = np.array([40.0]), np.array([1.0])
    >>> p = 1 / (1 + np.exp(-u))
    >>> ce = np.maximum(u, 0) - y * u + np.log1p(np.exp(-np.abs(u)))  # accurate
    >>> 0.25 * ce * (1 - p) ** 2
    array([0.])
    >>> sigmoid_focal_loss(u, y, reduction="none")
    array([1.91691202e-53])
    """
    return _focal(logits, targets, alpha, gamma, reduction, loss=True, grad=False)[0]


@_with_shared_sections
def sigmoid_focal_loss_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
) -> NDArray[np.floating]:
    r"""Gradient of :func:`sigmoid_focal_loss` with respect to the logits.

    Used in "Focal loss".
    {math}

    With :math:`m = 1 - p_t`, the derivative (the chain rule on the product, with
    :math:`m' = (1 - 2y)\,\sigma(u)\,\sigma(-u)`) is

    .. math::

        \frac{{\partial \ell}}{{\partial u}} = \alpha_t\, m^\gamma \Bigl[
            \gamma\, \frac{{(1 - 2y)\,\sigma(u)\,\sigma(-u)}}{{m}}\,
            \bigl(\log(1 + e^u) - yu\bigr) + \sigma(u) - y \Bigr],

    :math:`\alpha_t (\sigma(u) - y)` at :math:`\gamma = 0`, the binary cross-entropy's
    gradient. Written so, it never forms :math:`m^{{\gamma - 1}}`, which the usual hand-written
    gradient does: for :math:`\gamma < 1` that is infinite where the prediction is certain
    and right, and the gradient NaN.
    {parameters}

    Returns
    -------
    ndarray
        The gradient, of ``logits``' shape and the inputs' float type; for ``"mean"`` divided
        by the number of elements.
    {raises}
    {references}

    Examples
    --------
    The hand-written gradient at :math:`\gamma = \tfrac12` where the prediction is certain
    and right: :math:`0^{{-1/2}} \cdot 0`.

    >>> import numpy as np
    >>> from lossgrad.focal import sigmoid_focal_loss_grad
    >>> u, y, gamma = np.array([40.0]), np.array([1.0]), 0.5
    >>> p = 1 / (1 + np.exp(-u))
    >>> m, ce = 1 - (p * y + (1 - p) * (1 - y)), np.logaddexp(0, u) - y * u
    >>> with np.errstate(divide="ignore", invalid="ignore"):
    ...     -gamma * m ** (gamma - 1) * (2 * y - 1) * p * (1 - p) * ce + m**gamma * (p - y)
    array([nan])
    >>> sigmoid_focal_loss_grad(u, y, alpha=None, gamma=gamma, reduction="none")
    array([-1.31347661e-26])
    """
    return _focal(logits, targets, alpha, gamma, reduction, loss=False, grad=True)[1]


@_with_shared_sections
def sigmoid_focal_loss_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
) -> tuple[Loss, NDArray[np.floating]]:
    r""":func:`sigmoid_focal_loss` and :func:`sigmoid_focal_loss_grad` in one pass.

    Used in "Focal loss".
    {math}
    {parameters}

    Returns
    -------
    loss : ndarray or numpy scalar
        As :func:`sigmoid_focal_loss` returns it.
    grad : ndarray
        As :func:`sigmoid_focal_loss_grad` returns it.
    {raises}
    {references}

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.focal import sigmoid_focal_loss_and_grad
    >>> loss, grad = sigmoid_focal_loss_and_grad(np.array([0.0, 2.0]), np.array([1.0, 0.0]))
    >>> round(float(loss), 6), grad.round(6)
    (0.64044, array([-0.037286,  0.403768]))
    """
    return _focal(logits, targets, alpha, gamma, reduction, loss=True, grad=True)
