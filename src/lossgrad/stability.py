r"""Two terms that keep a large model's logits in range: z-loss and logit soft-capping.

**z-loss** (Chowdhery et al., 2022) adds :math:`\lambda \log^2 Z` to each row's loss, with
:math:`Z = \sum_k e^{z_k}` the softmax's normaliser, so that training keeps :math:`\log Z` near
0. Its gradient is :math:`2\lambda \log Z\,\operatorname{softmax}(z)`.

**Soft-capping** (Gemma Team, 2024) passes each logit through :math:`c \tanh(z / c)`, which is
close to :math:`z` for :math:`|z| \ll c` and never leaves :math:`(-c, c)`; by the chain rule a
loss's gradient with respect to the raw logits is its gradient with respect to the capped ones
times :math:`\operatorname{sech}^2(z / c) = 1 - \tanh^2(z / c)`.

How they are computed. :math:`\log Z` is formed as :math:`m + \operatorname{log1p}(\sum_{k \ne
k^\ast} e^{z_k - m})` with :math:`m = z_{k^\ast}` the largest logit, as
:func:`lossgrad.logsumexp` does, a block of rows at a time in float64, so that it neither
overflows nor loses the other classes' contribution when :math:`\log Z` is near 0, which is
where z-loss drives it. The usual derivative of the cap, :math:`1 - \tanh^2(z/c)`, cancels to
0 once :math:`\tanh` rounds to 1 (from :math:`|z/c| \approx 19` in float64 and 9 in float32);
here it is :math:`1 / \cosh^2(z/c)`, a product of accurate factors, whose result underflows
only where the true value does. z-loss is computed in float64 and a float32 result rounded once
(within 1 ULP where well conditioned). Soft-capping is computed in the logits' own type: in
float64 the float32 functions would take 1.4 to 5 times as long as numpy's float32 ``tanh``
formula, so a float32 result carries float32 roundings (a few ULP times :math:`\max(1, \kappa)`,
measured by the benchmark) rather than one.
``benchmarks/accuracy.py`` and ``benchmarks/speed.py`` measure both claims. Derived in "Keeping
large models stable".
"""

from __future__ import annotations

import numbers

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
    row_blocking,
)

__all__ = ["soft_cap", "soft_cap_grad", "z_loss", "z_loss_and_grad", "z_loss_grad"]

#: The largest block of rows, in float64 elements. Measured by benchmarks/speed.py on float32
#: rows of 1000 classes: 2^16 elements 1.0 times the usual formula's time, 2^18 0.94 (numpy's
#: cost per call is then spread over more rows); beyond, the gain is within the noise.
_ROWS_BLOCK = 4 * BLOCK


def _coefficient(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"coefficient must be a non-negative real number, got {value!r} "
            f"({type(value).__name__})"
        )
    coefficient = float(value)
    if not (np.isfinite(coefficient) and coefficient >= 0):
        raise ValueError(f"coefficient must be a non-negative, finite number, got {value!r}")
    return coefficient


def _cap(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"cap must be a positive real number, got {value!r} ({type(value).__name__})"
        )
    cap = float(value)
    if not (np.isfinite(cap) and cap > 0):
        raise ValueError(f"cap must be a positive, finite number, got {value!r}")
    return cap


def _z_kernel(
    z: NDArray[np.floating],
    coefficient: float,
    loss: NDArray[np.float64] | None,
    grad: NDArray[np.floating] | None,
    scratch: Scratch,
    divisor: float,
) -> None:
    r"""Fill ``loss`` (:math:`\lambda \log^2 Z` per row) and ``grad`` for one block of rows."""
    n, k = z.shape
    rows = np.arange(n)
    top = np.argmax(z, axis=1)  # the first NaN, if a row has one
    m = z[rows, top].astype(np.float64)
    if not np.all(np.isfinite(m)):
        bad = int(np.flatnonzero(~np.isfinite(m))[0])
        raise ValueError(
            "logits must be finite, or -inf for a masked class with at least one finite logit "
            f"in the row; a row's largest logit is {z[bad, top[bad]]!r}"
        )
    # z - m <= 0: every exponential is at most 1 and the largest exactly 1, left out of the sum
    # so that log1p keeps the other classes' contribution when log Z is near 0.
    e = scratch("e", n * k).reshape(n, k)
    if z.dtype != np.float64:
        np.copyto(e, z)  # then a float64 subtraction: numpy's mixed-type one is slower
        z = e
    np.subtract(z, m[:, None], out=e)
    np.exp(e, out=e)
    e[rows, top] = 0.0
    others = e.sum(axis=1)
    log_z = np.log1p(others)
    log_z += m
    scaled = np.multiply(log_z, coefficient)  # lambda log Z, then times log Z: no overflow
    if loss is not None:
        np.multiply(scaled, log_z, out=loss)
    if grad is not None:
        e[rows, top] = 1.0
        # 2 lambda log Z e^(z - m) / sum_k e^(z_k - m), divided for "mean" before rounding.
        factor = log_z / (others + 1.0)
        factor *= 2.0 * coefficient / divisor
        if np.all(np.isfinite(factor)):
            np.multiply(e, factor[:, None], out=grad)
        else:
            # 2 lambda log Z beyond the float range: log Z s first, which is at most log Z,
            # so that a probability that underflowed gives 0, not 0 times inf.
            e *= (log_z / (others + 1.0))[:, None]
            np.multiply(e, 2.0 * coefficient / divisor, out=grad)


def _z_loss(
    logits: ArrayLike, coefficient: object, reduction: str, axis: object, *, loss: bool,
    grad: bool,
) -> tuple[Loss | None, NDArray[np.floating] | None]:
    reduction = validation.reduction(reduction)
    coefficient = _coefficient(coefficient)
    z = validation.float_array(logits, "logits")
    axis = validation.class_axis(z.shape, axis)
    rows = Rows(z, axis)
    if rows.count == 0 and reduction == "mean":
        raise ValueError('logits has no rows, so reduction="mean" is undefined')
    divisor = float(rows.count) if reduction == "mean" else 1.0
    # Work arrays: 8 bytes per element, and some 12 float64 or int64 numbers per row (the
    # row's maximum, its index, sums, the loss).
    outputs = z.nbytes * (grad + (loss and reduction == "none") / rows.classes)
    step, lanes, scratch = row_blocking(rows.count, rows.classes, z.nbytes + outputs, 8, 96,
                                        _ROWS_BLOCK)
    losses = None
    if loss:
        work = [Scratch(lanes)(name, lanes) for name in ("sum0", "sum1", "sum2")]
        losses = LossReduction(reduction, rows.lead, z.dtype, lanes, work)
    loss_rows = None if losses is None or losses.out is None else losses.out.reshape(-1)
    grad_out = np.empty((rows.count, rows.classes), z.dtype) if grad else None
    # exp underflows to 0 or a subnormal, the correct result; a loss beyond the float range
    # rounds to inf, its correct rounding.
    with np.errstate(under="ignore", over="ignore"):
        for start in range(0, rows.count, step):
            stop = min(rows.count, start + step)
            loss_block = None if losses is None else Scratch(lanes)("loss", stop - start)
            grad_block = None if grad_out is None else grad_out[start:stop]
            _z_kernel(rows.block(start, stop), coefficient, loss_block, grad_block, scratch,
                      divisor)
            if loss_rows is not None:
                loss_rows[start:stop] = loss_block
            elif losses is not None:
                losses.add(loss_block)
    if grad_out is not None:
        grad_out = validation.result(np.moveaxis(grad_out.reshape(rows.moved.shape), -1, axis))
    return (losses.result(divisor) if losses else None), grad_out


_Z_MATH = r"""
    .. math::

        \ell(z) = \lambda \log^2 Z, \qquad Z = \sum_{k=1}^{K} e^{z_k}, \qquad
        \frac{\partial \ell}{\partial z_i} = 2 \lambda \log Z \; \frac{e^{z_i}}{Z}."""

_Z_PARAMETERS = r"""
    Parameters
    ----------
    logits : array_like of float
        Logits with classes along ``axis``. ``-inf`` masks a class (its :math:`e^{z_k}` is 0);
        each row needs a finite largest logit.
    coefficient : float, default 1e-4
        :math:`\lambda \ge 0`; PaLM's value is the default.
    reduction : {"none", "mean", "sum"}, default "mean"
        The row-wise terms, their mean over rows, or their sum.
    axis : int, default -1
        The class axis."""

_Z_RAISES = r"""
    Raises
    ------
    TypeError
        If ``logits`` is not a float32 or float64 array, or ``coefficient`` or ``axis`` is not
        a number of the right kind.
    ValueError
        If a row's largest logit is NaN or infinite (a row of ``-inf`` included),
        ``coefficient`` is negative or not finite, the class axis is empty or out of range,
        ``reduction`` is unknown, or ``reduction="mean"`` meets no rows."""

_Z_REFERENCES = r"""
    References
    ----------
    .. [1] A. Chowdhery et al., PaLM: Scaling language modeling with pathways, *Journal of
       Machine Learning Research* 24(240), 2023 (arXiv:2204.02311, 2022), section 5."""


def _with_z_sections(function):
    """Fill the sections that the three z-loss functions share into ``function``'s docstring."""
    function.__doc__ = function.__doc__.format(
        math=_Z_MATH, parameters=_Z_PARAMETERS, raises=_Z_RAISES, references=_Z_REFERENCES
    )
    return function


@_with_z_sections
def z_loss(
    logits: ArrayLike, *, coefficient: float = 1e-4, reduction: Reduction = "mean",
    axis: int = -1,
) -> Loss:
    r"""z-loss, :math:`\lambda \log^2 Z` per row of logits.

    Used in "Keeping large models stable".
    {math}

    It is added to the cross-entropy so that :math:`\log Z` stays near 0, which PaLM found to
    make training more stable.
    {parameters}

    Returns
    -------
    ndarray or numpy scalar
        In the logits' float type: an array of the logits' shape without the class axis for
        ``"none"``, a NumPy scalar otherwise (``"sum"`` the exact sum of the row terms rounded
        once, ``"mean"`` that sum divided by the number of rows).
    {raises}
    {references}

    Examples
    --------
    Where :math:`\log Z` is near 0, the usual ``log(sum(exp(z)))`` keeps only the digits of
    the sum, which lie above 1:

    >>> import numpy as np
    >>> from lossgrad.stability import z_loss
    >>> z = np.array([0.0, -40.0])
    >>> 1e-4 * np.log(np.sum(np.exp(z))) ** 2
    np.float64(0.0)
    >>> z_loss(z, reduction="none")
    np.float64(1.804851387845415e-39)
    """
    return _z_loss(logits, coefficient, reduction, axis, loss=True, grad=False)[0]


@_with_z_sections
def z_loss_grad(
    logits: ArrayLike, *, coefficient: float = 1e-4, reduction: Reduction = "mean",
    axis: int = -1,
) -> NDArray[np.floating]:
    r"""Gradient of :func:`z_loss` with respect to the logits.

    Used in "Keeping large models stable".
    {math}

    The gradient's entries sum to :math:`2\lambda \log Z` in each row: it lowers every logit
    where :math:`\log Z > 0` and raises every one where :math:`\log Z < 0`.
    {parameters}

    Returns
    -------
    ndarray
        The gradient, of the logits' shape and float type; for ``"mean"`` divided by the number
        of rows.
    {raises}
    {references}

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.stability import z_loss_grad
    >>> z_loss_grad(np.array([[1000.0, 1000.0]]), coefficient=0.5)
    array([[500.34657359, 500.34657359]])
    """
    return _z_loss(logits, coefficient, reduction, axis, loss=False, grad=True)[1]


@_with_z_sections
def z_loss_and_grad(
    logits: ArrayLike, *, coefficient: float = 1e-4, reduction: Reduction = "mean",
    axis: int = -1,
) -> tuple[Loss, NDArray[np.floating]]:
    r""":func:`z_loss` and :func:`z_loss_grad` in one pass.

    Used in "Keeping large models stable".
    {math}
    {parameters}

    Returns
    -------
    loss : ndarray or numpy scalar
        As :func:`z_loss` returns it.
    grad : ndarray
        As :func:`z_loss_grad` returns it.
    {raises}
    {references}

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.stability import z_loss_and_grad
    >>> loss, grad = z_loss_and_grad(np.log(np.array([[1.0, 1.0], [3.0, 1.0]])), coefficient=1.0)
    >>> round(float(loss), 12), grad.round(6)
    (1.201132534796, array([[0.346574, 0.346574],
           [1.039721, 0.346574]]))
    """
    return _z_loss(logits, coefficient, reduction, axis, loss=True, grad=True)


def _soft_cap(logits: ArrayLike, cap: object, *, derivative: bool) -> NDArray[np.floating]:
    cap = _cap(cap)
    z = validation.float_array(logits, "logits")
    out = np.empty(z.shape, z.dtype)
    scratch = Scratch(min(BLOCK, max(1, z.size)))
    # Computed in the logits' type: float32 work in float64 would cost four times the usual
    # float32 formula (float64 tanh and cosh are that much slower than numpy's float32 ones).
    info = np.finfo(z.dtype)
    if not float(info.tiny) <= cap <= float(info.max):
        raise ValueError(
            f"cap must be a normal {z.dtype} number for {z.dtype} logits "
            f"(between {info.tiny:.3g} and {info.max:.3g}); got {cap!r}"
        )
    c = z.dtype.type(cap)
    # Below this |z|, c tanh(z/c) is z to within rounding (z^3/(3c^2) is under half an ulp of
    # z), and z/c might be subnormal and lose digits: the result is z itself.
    linear = c * np.sqrt(info.eps)
    # cosh overflows to inf beyond |z/c| = 710 (89 in float32), where sech is below the
    # smallest subnormal or its square is: 0 is the correct rounding. Infinite logits give the
    # limits (+-c, 0).
    with np.errstate(over="ignore", under="ignore"):
        for (zb,), (ob,) in element_blocks([z], [out], z.shape, scratch, z.dtype):
            np.divide(zb, c, out=ob)
            if derivative:
                np.cosh(ob, out=ob)
                np.divide(1, ob, out=ob)
                np.square(ob, out=ob)
            else:
                np.tanh(ob, out=ob)
                ob *= c
                small = np.less(np.abs(zb), linear)
                if small.any():
                    np.copyto(ob, zb, where=small)
    return validation.result(out)


_CAP_SECTIONS = r"""    Raises
    ------
    TypeError
        If ``logits`` is not a float32 or float64 array, or ``cap`` is not a real number.
    ValueError
        If ``cap`` is not a positive normal number of the logits' float type.

    References
    ----------
    .. [1] Gemma Team, Gemma 2: Improving open language models at a practical size,
       arXiv:2408.00118, 2024.
"""


def _with_cap_sections(function):
    """Fill the Raises and References sections that the two soft-capping functions share."""
    function.__doc__ = function.__doc__.replace("    <cap sections>\n", _CAP_SECTIONS)
    return function


@_with_cap_sections
def soft_cap(logits: ArrayLike, cap: float) -> NDArray[np.floating]:
    r"""Logit soft-capping, :math:`c \tanh(z / c)`, element-wise.

    .. math::

        \operatorname{cap}_c(z) = c \tanh\Bigl(\frac{z}{c}\Bigr) \in (-c, c), \qquad
        \operatorname{cap}_c(z) = z - \frac{z^3}{3c^2} + O(z^5).

    Used in "Keeping large models stable". Computed in the logits' float type.

    Parameters
    ----------
    logits : array_like of float
        The raw logits :math:`z`; ``±inf`` gives ``±cap``.
    cap : float
        The cap :math:`c > 0` (Gemma 2 uses 30 for its final logits, 50 for attention logits).

    Returns
    -------
    ndarray or numpy scalar
        The capped logits, of the logits' shape and float type (a NumPy scalar for a
        0-dimensional input).

    <cap sections>

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.stability import soft_cap
    >>> soft_cap(np.array([1.0, 30.0, 1e6]), cap=30.0)
    array([ 0.99962979, 22.84782468, 30.        ])
    """
    return _soft_cap(logits, cap, derivative=False)


@_with_cap_sections
def soft_cap_grad(logits: ArrayLike, cap: float) -> NDArray[np.floating]:
    r"""The derivative of :func:`soft_cap`, :math:`\operatorname{sech}^2(z / c)`, element-wise.

    .. math::

        \frac{d}{dz}\, c \tanh\Bigl(\frac{z}{c}\Bigr) = \operatorname{sech}^2\Bigl(\frac{z}{c}\Bigr)
        = \frac{1}{\cosh^2(z / c)} = 1 - \tanh^2\Bigl(\frac{z}{c}\Bigr).

    The chain rule makes a loss's gradient with respect to the raw logits this times its
    gradient with respect to the capped ones. Used in "Keeping large models stable". Computed as
    :math:`1/\cosh^2`: the usual :math:`1 - \tanh^2` cancels to 0 where :math:`\tanh` rounds to
    ±1 though the derivative is still a normal number (down to about 1e-308).

    Parameters
    ----------
    logits : array_like of float
        The raw logits :math:`z`; ``±inf`` gives 0.
    cap : float
        The cap :math:`c > 0`.

    Returns
    -------
    ndarray or numpy scalar
        :math:`\operatorname{sech}^2(z/c)`, of the logits' shape and float type.

    <cap sections>

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.stability import soft_cap_grad
    >>> z, c = np.array([0.0, 600.0, 3000.0]), 30.0
    >>> 1 - np.tanh(z / c) ** 2
    array([1., 0., 0.])
    >>> soft_cap_grad(z, cap=c)
    array([1.00000000e+00, 1.69934170e-17, 5.53558611e-87])
    """
    return _soft_cap(logits, cap, derivative=True)
