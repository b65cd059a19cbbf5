r"""Cross-entropy of a linear last layer over a large vocabulary, without storing the logits.

A language model's last layer maps :math:`N` hidden states :math:`H` (:math:`N \times d`) to
logits :math:`Z = H W^\top` over a vocabulary of :math:`V` tokens (:math:`W` is
:math:`V \times d`). With :math:`S = \operatorname{softmax}(Z)` row by row and one-hot targets
:math:`Y`, the mean cross-entropy's gradients are

.. math::

    \frac{\partial L}{\partial H} = \frac{1}{N}(S - Y)\,W, \qquad
    \frac{\partial L}{\partial W} = \frac{1}{N}(S - Y)^\top H,

so everything the gradient needs is the softmax, which can be formed a piece at a time once
each row's log-sum-exp is known. The functions here hold the logits a tile at a time, by
default a tile of :math:`2^{22}` (at least one row of the whole vocabulary, or one column of
all the rows), in one of two ways:

- **One pass over chunks of rows**, where at least 64 rows of the whole vocabulary fit in a tile,
  or all the rows that count if there are fewer (as Liger Kernel's fused linear cross-entropy
  goes, Hsu et al., 2024): a chunk's logits are formed once, :math:`S - T` is formed from them
  in a second buffer of the same size, and multiplied into both gradients. That is three matrix
  products, as in the direct computation.
- **Two passes over blocks of vocabulary columns**, all rows at once, for a vocabulary too large
  for that: a forward pass keeps a running maximum and a rescaled running sum per row (the
  online log-sum-exp of Milakov and Gimelshein, 2018), and a backward pass recomputes each
  block's logits and adds its share to both gradients (as Cut Cross-Entropy does, Wijmans et
  al., 2025). That is four matrix products. Gradient filtering always takes this way.

The memory is :math:`O(\text{tile})` instead of :math:`O(N V)`; ``benchmarks/vocabulary.py``
measures both against the direct computation. Rows whose target is ``ignore_index`` are left
out before any product.

How it is computed. Each row's log-sum-exp is kept as :math:`m + \operatorname{log1p}(r)`, with
:math:`m` the largest logit so far and :math:`r` the sum of the other terms
:math:`e^{z_k - m}`, so that a confident row's loss :math:`(m - z_y) + \operatorname{log1p}(r)`
keeps its digits, and the gradient at a target that is the row's largest logit is formed as
:math:`-r/(1 + r)`, not as :math:`s_y - 1`. Per-row quantities (:math:`m`, :math:`r`, the
target's logit, sums) are float64; the element-wise work on a block and the matrix products run
in the inputs' type (a float32 block is rounded to float32 for its products in any case), and a
float32 ``d_hidden`` is added up in float64 over blocks of columns (the vocabulary blocks, or
1024 columns at a time in one pass); ``d_weight`` is added up over chunks of rows in the inputs'
type (a float64 copy would take twice its :math:`V \times d` entries' memory, and :math:`V` is
the large dimension). Derived in "Cross-entropy at vocabulary scale".
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.blocks import Loss, Reduction
from lossgrad.summation import CompensatedSum

__all__ = [
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "linear_cross_entropy_skipped_fraction",
]

#: The default block: this many float64 logits per block (N x B), 32 MiB, whatever V.
_BLOCK_ELEMENTS = 2**22
#: Rows per tile when gradient filtering decides which (rows, block) tiles to skip.
_FILTER_ROWS = 256
#: The fewest rows of the whole vocabulary worth a chunk of the one-pass computation: with
#: fewer, one pass took longer than two (it reads W and re-writes all of d_weight once per
#: chunk); one timing run at N = 4096, d = 512, float32, on a 2-core machine: one pass 0.9x
#: the time of two at 64 rows a chunk, 1.1x at 32, 1.5x at 16.
_MIN_CHUNK_ROWS = 64
#: Vocabulary columns per product in the one-pass computation's gradient products (their
#: temporaries are this many rows of d_weight).
_PRODUCT_COLUMNS = 1024
_FLOAT64_MAX = float(np.finfo(np.float64).max)


class _Inputs(NamedTuple):
    """The validated operands, with the ignored rows left out (they take no part at all)."""

    h: NDArray[np.floating]  # (n, d): the rows that count
    w: NDArray[np.floating]  # (V, d)
    y: NDArray[np.intp]  # (n,) their target classes
    rows: NDArray[np.intp] | None  # (n,) where they sit among all N rows; None: all of them
    total_rows: int  # N
    eps: float  # label smoothing
    block: int  # vocabulary columns per block; V: one pass over chunks of rows
    chunk: int  # rows per chunk (all n rows in the two-pass computation)
    passes: int  # 1: chunks of rows over the whole vocabulary; 2: vocabulary blocks
    divisor: float  # what "mean" divides by (1 for the others)


class _RowStats(NamedTuple):
    """What the forward pass keeps: n numbers of each kind, float64."""

    top: NDArray[np.float64]  # the largest logit m
    arg: NDArray[np.intp]  # its index (the first, among equal ones)
    others: NDArray[np.float64]  # r: the other terms e^(z_k - m), added up
    target: NDArray[np.float64]  # the target's logit z_y
    mean: NDArray[np.float64] | None  # the mean of the logits (label smoothing only)


def _inputs(
    hidden: ArrayLike, weight: ArrayLike, targets: ArrayLike, ignore_index: object,
    label_smoothing: object, reduction: str, block_size: object, one_pass: bool = True,
) -> _Inputs:
    h = validation.float_array(hidden, "hidden")
    w = validation.float_array(weight, "weight")
    if h.ndim != 2 or w.ndim != 2:
        raise ValueError(
            f"hidden must be (N, d) and weight (V, d); got shapes {h.shape} and {w.shape}"
        )
    if h.dtype != w.dtype:
        raise TypeError(f"hidden and weight must have one float type; got {h.dtype} and {w.dtype}")
    if h.shape[1] != w.shape[1]:
        raise ValueError(
            f"hidden (N, d) and weight (V, d) need the same d; got {h.shape} and {w.shape}"
        )
    n, vocabulary = h.shape[0], w.shape[0]
    if vocabulary == 0:
        raise ValueError("weight has no rows: the vocabulary is empty")
    if isinstance(targets, np.ma.MaskedArray):
        raise TypeError("targets is a masked array; pass ignore_index for the rows to leave out")
    y = np.asarray(targets)
    if y.size == 0 and y.dtype.kind == "f":
        y = y.astype(np.intp)  # an empty list: no targets, whatever type NumPy gives it
    if y.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices; got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), one per row of hidden; got {y.shape}")
    ignored = validation.ignore_index(ignore_index)
    rows = None
    if ignored is not None:
        keep = y != ignored
        if not keep.all():
            rows = np.flatnonzero(keep)
            h, y = h[rows], y[rows]
    if y.size and not (y.min() >= 0 and y.max() < vocabulary):
        bad = y[(y < 0) | (y >= vocabulary)][0]
        raise ValueError(
            f"targets must lie in [0, {vocabulary}) (or be ignore_index={ignored}); got {bad}"
        )
    # Non-finite rows that count would make every gradient NaN; ignored rows do not count.
    validation.finite(h, "hidden")
    validation.finite(w, "weight")
    eps = validation.label_smoothing(label_smoothing)
    reduction = validation.reduction(reduction)
    if reduction == "mean" and y.size == 0:
        if n == 0:
            raise ValueError('hidden has no rows, so reduction="mean" is undefined')
        raise ValueError(
            f'every target is ignore_index ({ignored}), so reduction="mean" has no rows to average'
        )
    if block_size is not None:
        if isinstance(block_size, bool | np.bool_) or not isinstance(block_size, numbers.Integral):
            raise TypeError(f"block_size must be a positive integer or None, got {block_size!r}")
        if block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size}")
    # One pass multiplies by the whole of W for each chunk: a W that NumPy cannot hand to the
    # BLAS as it is would be copied whole each time, so it takes two passes (a block at a time).
    passes, block, chunk = _plan(y.size, vocabulary, block_size, one_pass and _blas_ready(w))
    divisor = float(y.size) if reduction == "mean" else 1.0
    return _Inputs(h, w, y.astype(np.intp), rows, n, eps, block, chunk, passes, divisor)


def _blas_ready(a: NDArray) -> bool:
    """Whether NumPy's matrix product can use the 2-d array ``a`` (and ``a.T``) without a copy:
    one unit stride, the other positive and covering the unit-stride axis."""
    item = a.itemsize
    (rows, columns), (row_step, column_step) = a.shape, a.strides
    return (a.flags.c_contiguous or a.flags.f_contiguous
            or (column_step == item and row_step >= columns * item)
            or (row_step == item and column_step >= rows * item))


def _plan(
    n: int, vocabulary: int, block_size: int | None, one_pass: bool
) -> tuple[int, int, int]:
    """(passes, columns, rows) of a tile of logits: one pass over chunks of rows of the whole
    vocabulary (three products), or two passes over vocabulary blocks, all rows at once (four).
    ``one_pass=False`` (gradient filtering) asks for two passes whatever the sizes."""
    whole_rows = max(1, _BLOCK_ELEMENTS // vocabulary)  # rows of the whole vocabulary that fit
    if block_size is None:
        if one_pass and whole_rows >= min(n, _MIN_CHUNK_ROWS):
            return 1, vocabulary, min(max(1, n), whole_rows)
        block = max(1, _BLOCK_ELEMENTS // max(1, n))
    else:
        block = int(block_size)
    if block >= vocabulary and one_pass:
        return 1, vocabulary, min(max(1, n), whole_rows)
    return 2, min(block, vocabulary), max(1, n)


def _blocks(vocabulary: int, block: int):
    return ((start, min(vocabulary, start + block)) for start in range(0, vocabulary, block))


def _work(x: _Inputs) -> tuple[NDArray, NDArray]:
    """Buffers for one tile's logits and its element-wise work (both in the inputs' type:
    float32 work is rounded to float32 for the products anyway), made once per call."""
    size = min(x.chunk, x.h.shape[0]) * x.block
    return np.empty(size, x.h.dtype), np.empty(size, x.h.dtype)


def _chunks(x: _Inputs):
    """(the rows' slice, the inputs restricted to them), a chunk of rows at a time."""
    n = x.h.shape[0]
    for first in range(0, n, x.chunk):
        part = slice(first, min(n, first + x.chunk))
        yield part, x._replace(h=x.h[part], y=x.y[part])


def _logits(x: _Inputs, start: int, stop: int, z_work: NDArray) -> NDArray:
    """The block's logits H W_b^T, (n, B), in the inputs' type."""
    z = z_work[: x.h.shape[0] * (stop - start)].reshape(x.h.shape[0], stop - start)
    return np.matmul(x.h, x.w[start:stop].T, out=z)


def _forward(x: _Inputs, z_work: NDArray, e_work: NDArray) -> tuple[_RowStats, NDArray]:
    """One pass over vocabulary blocks: each row's maximum, the other terms' sum, z_y; and
    the last block's logits (all of them, when the block is the whole vocabulary)."""
    n = x.h.shape[0]
    rows = np.arange(n)
    top = np.full(n, -np.inf)
    arg = np.zeros(n, np.intp)
    others = np.zeros(n)
    target = np.zeros(n)
    mean = np.zeros(n) if x.eps else None
    vocabulary = x.w.shape[0]
    for start, stop in _blocks(x.w.shape[0], x.block):
        z = _logits(x, start, stop, z_work)
        block_arg = np.argmax(z, axis=1)
        block_top = z[rows, block_arg].astype(np.float64)
        # Finite inputs whose products overflow: any logit, not only a row's largest (a
        # target's or, with smoothing, the sum of a row's logits would be infinite).
        lowest = z.min() if z.size else 0.0
        if not (np.all(np.isfinite(block_top)) and np.isfinite(lowest)):
            advice = "pass float64 or scale them down" if z.dtype == np.float32 else (
                "scale them down")
            raise ValueError(
                f"the logits hidden @ weight.T overflow {z.dtype} (one of them is "
                f"{z.flat[np.argmin(np.isfinite(z))]}); {advice}"
            )
        new_top = np.maximum(top, block_top)
        rises = block_top > top
        # e^(z - m') for the block, the block's own maximum left out where it becomes m'
        # (exact in float32 too: m' is one of the block's logits or above them all).
        e = np.subtract(z, new_top.astype(z.dtype)[:, None],
                        out=e_work[: z.size].reshape(z.shape))
        np.exp(e, out=e)
        e[rows[rises], block_arg[rises]] = 0.0
        # The old terms rescaled to the new maximum; the old maximum joins the others.
        scale = np.exp(top - new_top)
        others *= scale
        others += np.where(rises, scale, 0.0)
        others += e.sum(axis=1, dtype=np.float64)
        top = new_top
        arg = np.where(rises, block_arg + start, arg)
        inside = (x.y >= start) & (x.y < stop)
        target[inside] = z[rows[inside], x.y[inside] - start]
        if mean is not None:
            # The block's share of the mean, as its sum over V; for float64 logits near the top
            # of the range the sum itself could overflow, so they are divided first.
            largest = max(-float(lowest), float(block_top.max(initial=0.0)))
            if largest * (stop - start) < _FLOAT64_MAX:
                mean += z.sum(axis=1, dtype=np.float64) / vocabulary
            else:
                mean += (z / np.float64(vocabulary)).sum(axis=1)
    return _RowStats(top, arg, others, target, mean), z


def _row_losses(x: _Inputs, r: _RowStats) -> NDArray[np.float64]:
    r"""(m - z_y) + log1p(r), and with smoothing eps: (1 - eps)(that) + eps (lse - mean z)."""
    tail = np.log1p(r.others)
    loss = (r.top - r.target) + tail
    if x.eps:
        spread = (r.top - r.mean) + tail
        loss = (1.0 - x.eps) * loss + x.eps * spread
    return loss


def _reduce(
    x: _Inputs, losses: NDArray[np.float64], reduction: str, dtype: np.dtype
) -> Loss:
    if reduction == "none":
        out = np.zeros(x.total_rows, dtype)
        if x.rows is None:
            out[:] = losses
        else:
            out[x.rows] = losses
        return out
    total = CompensatedSum(max(1, losses.size))
    total.add(losses)
    value = total.value(x.divisor if reduction == "mean" else None)
    with np.errstate(over="ignore"):
        return dtype.type(value)


def _block_gradient(
    x: _Inputs, r: _RowStats, z: NDArray, start: int, stop: int, work: NDArray,
    exponentials: bool = False,
) -> NDArray:
    r""":math:`(S - T)/N` for one block, in the inputs' type (:math:`N` the divisor).
    ``exponentials``: ``work`` already holds :math:`e^{z - m}` with each row's largest entry
    set to 0, as the forward pass leaves it when the block is the whole vocabulary."""
    rows = np.arange(z.shape[0])
    vocabulary = x.w.shape[0]
    dtype = z.dtype
    if exponentials:
        g = work
        g[rows, r.arg] = 1.0  # e^(m - m)
    else:
        g = np.subtract(z, r.top.astype(dtype)[:, None], out=work)
        np.exp(g, out=g)
    g *= (1.0 / (x.divisor * (1.0 + r.others))).astype(dtype)[:, None]
    if x.eps:
        g -= dtype.type(x.eps / (vocabulary * x.divisor))
    inside = (x.y >= start) & (x.y < stop)
    hit = rows[inside]
    columns = x.y[hit] - start
    g[hit, columns] -= dtype.type((1.0 - x.eps) / x.divisor)
    # Where the target is the row's largest logit, s_y - t_y = (1 - t_y) - r/(1 + r): the
    # subtraction above, of t_y from s_y near 1, cancels.
    at_top = x.y[hit] == r.arg[hit]
    if at_top.any():
        rest = r.others[hit[at_top]]
        spread = x.eps - x.eps / vocabulary
        g[hit[at_top], columns[at_top]] = (spread - rest / (1.0 + rest)) / x.divisor
    return g


def _gradient_blocks(x: _Inputs, stats: _RowStats):
    """The backward pass's blocks: (start, stop, W_b, (S - T)_b / N), each block's logits
    recomputed into one reused buffer."""
    z_work, g_work = _work(x)
    for start, stop in _blocks(x.w.shape[0], x.block):
        z = _logits(x, start, stop, z_work)
        g = _block_gradient(x, stats, z, start, stop, g_work[: z.size].reshape(z.shape))
        yield start, stop, x.w[start:stop], g


def _tiles_to_skip(g: NDArray, x: _Inputs, start: int, stop: int, threshold: float) -> list[slice]:
    """The row tiles of a block whose entries other than the targets' are all below
    ``threshold`` in units of 1/N (each row's weight in the loss)."""
    n = g.shape[0]
    size = np.abs(g)
    inside = np.flatnonzero((x.y >= start) & (x.y < stop))
    size[inside, x.y[inside] - start] = 0.0  # the targets' entries are added one by one
    largest = np.max(size, axis=1, initial=0.0) * x.divisor
    skipped = []
    for first in range(0, n, _FILTER_ROWS):
        tile = slice(first, min(n, first + _FILTER_ROWS))
        if largest[tile].max(initial=0.0) < threshold:
            skipped.append(tile)
    return skipped


def _add_targets_only(
    g: NDArray, x: _Inputs, start: int, stop: int, tile: slice, d_hidden: NDArray,
    d_weight: NDArray,
) -> None:
    """A skipped tile's target entries s_y - t_y, each a rank-one update of both gradients."""
    rows = np.arange(tile.start, tile.stop)
    rows = rows[(x.y[rows] >= start) & (x.y[rows] < stop)]
    if rows.size == 0:
        return
    columns = x.y[rows] - start
    values = g[rows, columns][:, None]
    d_hidden[rows] += values * x.w[start:stop][columns]
    np.add.at(d_weight, x.y[rows], (values * x.h[rows]).astype(d_weight.dtype))


def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike,
    *,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    block_size: int | None = None,
) -> Loss:
    r"""Softmax cross-entropy of the logits :math:`H W^\top`, computed a tile of logits at a
    time, without storing them.

    .. math::

        \ell_i = \operatorname{logsumexp}(z_i) - z_{i y_i}, \qquad z_i = W h_i,

    with label smoothing :math:`\varepsilon`:
    :math:`(1 - \varepsilon)\ell_i + \varepsilon\,(\operatorname{logsumexp}(z_i) -
    \tfrac1V \sum_k z_{ik})`, as PyTorch's ``cross_entropy`` defines it.

    Used in "Cross-entropy at vocabulary scale".

    Parameters
    ----------
    hidden : array_like of float, shape (N, d)
        The hidden states :math:`H`.
    weight : array_like of float, shape (V, d)
        The output layer :math:`W`, one row per token; the same float type as ``hidden``.
    targets : array_like of int, shape (N,)
        Target token indices in :math:`[0, V)`, or ``ignore_index`` for rows that do not count
        (padding).
    ignore_index : int or None, default -100
        Rows with this target get loss 0 and gradient 0 and do not count in the mean.
    label_smoothing : float, default 0
        :math:`\varepsilon \in [0, 1]`.
    reduction : {"none", "mean", "sum"}, default "mean"
        Row losses, their mean over the rows that count, or their sum.
    block_size : int or None
        Vocabulary columns per block of the two-pass computation. By default, one pass over
        chunks of rows where at least 64 rows of the whole vocabulary fit in :math:`2^{22}`
        logits (or all the rows that count, if there are fewer), and otherwise two passes over
        blocks of as many columns as make :math:`2^{22}` logits with all those rows. A
        ``block_size`` of :math:`V` or more also means one pass (chunks of as many rows as fit
        in :math:`2^{22}` logits, at least one); a smaller one, two passes over blocks of that
        many columns (a ``block_size`` of :math:`V` or more at a large :math:`V` can thus mean
        chunks of fewer than 64 rows, which measured slower than two passes). With
        ``filter_threshold``, or a ``weight`` that NumPy's matrix product would copy (a stride
        other than the item size on both axes, or a negative one), always two passes.

    Returns
    -------
    ndarray or numpy scalar
        In the inputs' float type: shape (N,) for ``"none"``, else a NumPy scalar (the exact sum
        of the row losses rounded once, divided by the count for ``"mean"``). A loss beyond the
        float range is ``inf``, its correct rounding.

    Raises
    ------
    TypeError
        If ``hidden`` or ``weight`` is not a float32 or float64 array or they differ in type,
        ``targets`` is not an integer array, or an option has the wrong type.
    ValueError
        If the shapes do not fit, an entry of ``hidden`` or ``weight`` that counts is not
        finite, a target is out of range, ``label_smoothing`` is outside [0, 1], ``reduction``
        is unknown, ``"mean"`` has no row to average, or a logit of ``hidden @ weight.T``
        overflows the float type.

    References
    ----------
    .. [1] M. Milakov and N. Gimelshein, Online normalizer calculation for softmax,
       arXiv:1805.02867, 2018.
    .. [2] E. Wijmans, B. Huval, A. Hertzberg, V. Koltun and P. Krähenbühl, Cut your losses in
       large-vocabulary language models, *ICLR*, 2025.

    Examples
    --------
    The same loss as the logits' softmax cross-entropy, here in blocks of 2 tokens:

    >>> import numpy as np
    >>> from lossgrad import softmax_cross_entropy
    >>> from lossgrad.vocabulary import linear_cross_entropy
    >>> rng = np.random.default_rng(0)
    >>> h, w, y = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), np.array([0, 4, 2])
    >>> blocked = linear_cross_entropy(h, w, y, block_size=2)
    >>> bool(np.isclose(blocked, softmax_cross_entropy(h @ w.T, y), rtol=1e-14))
    True
    """
    x = _inputs(hidden, weight, targets, ignore_index, label_smoothing, reduction, block_size)
    losses = np.empty(x.h.shape[0])
    z_work, e_work = _work(x)
    with np.errstate(under="ignore", over="ignore"):
        for part, rows in _chunks(x):
            losses[part] = _row_losses(rows, _forward(rows, z_work, e_work)[0])
        return _reduce(x, losses, reduction, x.h.dtype)


def linear_cross_entropy_and_grad(
    hidden: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike,
    *,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    block_size: int | None = None,
    filter_threshold: float | None = None,
) -> tuple[Loss, NDArray[np.floating], NDArray[np.floating]]:
    r""":func:`linear_cross_entropy` and its gradients with respect to ``hidden`` and
    ``weight``, a tile of logits at a time.

    .. math::

        \frac{\partial L}{\partial H} = (S - T)\,W / N, \qquad
        \frac{\partial L}{\partial W} = (S - T)^\top H / N,

    :math:`T` the (smoothed) one-hot targets, :math:`N` the number of rows that count
    (1 for ``"sum"``; for ``"none"`` the gradients are those of the sum). In one pass over
    chunks of rows, each chunk's logits are formed once and its :math:`S - T` multiplied into
    both gradients; in two passes over vocabulary blocks, the first finds each row's
    log-sum-exp and the second recomputes each block's logits and adds its :math:`(S - T)`
    block's products to both gradients (``block_size`` and ``filter_threshold`` say which).

    Used in "Cross-entropy at vocabulary scale".

    Parameters
    ----------
    hidden, weight, targets, ignore_index, label_smoothing, reduction, block_size
        As for :func:`linear_cross_entropy`.
    filter_threshold : float or None, default None
        Gradient filtering (Wijmans et al., 2025), off by default: a tile of 256 rows of a
        block is left out of both products when every entry of its :math:`S - T` other than the
        targets' is below this (in units of the row's weight in the loss); the targets' entries
        are then added one by one. What is left out is an error in the gradients:
        :func:`linear_cross_entropy_skipped_fraction` reports how much is skipped. Filtering
        works on vocabulary blocks, so with a threshold the computation takes two passes.

    Returns
    -------
    loss : ndarray or numpy scalar
        As :func:`linear_cross_entropy` returns it; with ``filter_threshold``, from the
        two-pass computation, whose rounding may differ from the default's in the last bits.
    d_hidden : ndarray, shape (N, d)
        :math:`\partial L / \partial H`, in the inputs' float type.
    d_weight : ndarray, shape (V, d)
        :math:`\partial L / \partial W`, in the inputs' float type.

    Raises
    ------
    TypeError
        As for :func:`linear_cross_entropy`; or ``filter_threshold`` is not a real number.
    ValueError
        As for :func:`linear_cross_entropy`; or ``filter_threshold`` is negative or not finite.

    References
    ----------
    .. [1] E. Wijmans, B. Huval, A. Hertzberg, V. Koltun and P. Krähenbühl, Cut your losses in
       large-vocabulary language models, *ICLR*, 2025.
    .. [2] P.-L. Hsu et al., Liger Kernel: efficient Triton kernels for LLM training,
       arXiv:2410.10989, 2024.

    Examples
    --------
    Against the gradients formed from the whole logit matrix:

    >>> import numpy as np
    >>> from lossgrad import softmax, softmax_cross_entropy
    >>> from lossgrad.vocabulary import linear_cross_entropy_and_grad
    >>> rng = np.random.default_rng(1)
    >>> h, w, y = rng.normal(size=(3, 4)), rng.normal(size=(6, 4)), np.array([5, 0, 3])
    >>> loss, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=4)
    >>> g = (softmax(h @ w.T) - np.eye(6)[y]) / 3
    >>> bool(np.allclose(dh, g @ w, rtol=1e-13)), bool(np.allclose(dw, g.T @ h, rtol=1e-13))
    (True, True)
    """
    threshold = _threshold(filter_threshold)
    x = _inputs(hidden, weight, targets, ignore_index, label_smoothing, reduction, block_size,
                one_pass=threshold is None)
    dtype = x.h.dtype
    with np.errstate(under="ignore", over="ignore"):
        # float32 d_hidden adds a product per block of columns: in float64, then rounded once.
        d_hidden = np.zeros(x.h.shape, np.float64 if dtype == np.float32 else dtype)
        d_weight = np.empty(x.w.shape, dtype)
        if x.passes == 1:
            loss = _one_pass(x, reduction, d_hidden, d_weight)
        else:
            loss = _two_passes(x, reduction, threshold, d_hidden, d_weight)
    if x.rows is not None:
        full = np.zeros((x.total_rows, x.h.shape[1]), dtype)
        full[x.rows] = d_hidden
        return loss, full, d_weight
    return loss, d_hidden.astype(dtype, copy=False), d_weight


def _one_pass(x: _Inputs, reduction: str, d_hidden: NDArray, d_weight: NDArray) -> Loss:
    """Chunks of rows over the whole vocabulary: each chunk's logits formed once, its S - T
    formed from the forward pass's exponentials, and its products (three in all, as in the
    unblocked computation)."""
    vocabulary = x.w.shape[0]
    losses = np.empty(x.h.shape[0])
    z_work, g_work = _work(x)
    part_work = np.empty(min(vocabulary, _PRODUCT_COLUMNS) * x.w.shape[1], x.h.dtype)
    for number, (part, rows) in enumerate(_chunks(x)):
        stats, z = _forward(rows, z_work, g_work)
        losses[part] = _row_losses(rows, stats)
        # The forward pass's exponentials, e^(z - m) for the whole row, are reused.
        g = _block_gradient(rows, stats, z, 0, vocabulary, g_work[: z.size].reshape(z.shape),
                            exponentials=True)
        if d_hidden.dtype == g.dtype:
            np.matmul(g, x.w, out=d_hidden[part])
        for start, stop in _blocks(vocabulary, _PRODUCT_COLUMNS):
            if d_hidden.dtype != g.dtype:
                d_hidden[part] += g[:, start:stop] @ x.w[start:stop]
            if number == 0:
                np.matmul(g[:, start:stop].T, rows.h, out=d_weight[start:stop])
            else:
                dw = part_work[: (stop - start) * x.w.shape[1]].reshape(stop - start, -1)
                d_weight[start:stop] += np.matmul(g[:, start:stop].T, rows.h, out=dw)
    if x.h.shape[0] == 0:
        d_weight[:] = 0.0
    return _reduce(x, losses, reduction, x.h.dtype)


def _two_passes(
    x: _Inputs, reduction: str, threshold: float | None, d_hidden: NDArray, d_weight: NDArray
) -> Loss:
    """A forward pass over vocabulary blocks for each row's log-sum-exp, then a backward pass
    that recomputes each block's logits (four products)."""
    z_work, e_work = _work(x)
    stats = _forward(x, z_work, e_work)[0]
    del z_work, e_work
    loss = _reduce(x, _row_losses(x, stats), reduction, x.h.dtype)
    for start, stop, wb, g in _gradient_blocks(x, stats):
        skipped = [] if threshold is None else _tiles_to_skip(g, x, start, stop, threshold)
        if not skipped:
            d_hidden += g @ wb
            np.matmul(g.T, x.h, out=d_weight[start:stop])
            continue
        d_weight[start:stop] = 0.0
        for first in range(0, g.shape[0], _FILTER_ROWS):
            tile = slice(first, min(g.shape[0], first + _FILTER_ROWS))
            if tile in skipped:
                _add_targets_only(g, x, start, stop, tile, d_hidden, d_weight)
                continue
            d_hidden[tile] += g[tile] @ wb
            d_weight[start:stop] += g[tile].T @ x.h[tile]
    return loss


def _threshold(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"filter_threshold must be a real number or None, got {value!r}")
    threshold = float(value)
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"filter_threshold must be a non-negative, finite number, got {value!r}")
    return threshold


def linear_cross_entropy_skipped_fraction(
    hidden: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike,
    filter_threshold: float,
    *,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    block_size: int | None = None,
) -> float:
    r"""The fraction of (256-row tile, block) pairs that gradient filtering at
    ``filter_threshold`` leaves out of :func:`linear_cross_entropy_and_grad`'s products.

    Used in "Cross-entropy at vocabulary scale", to report what filtering skips. Tiles are
    counted over the rows that count (those whose target is not ``ignore_index``).

    Parameters
    ----------
    hidden, weight, targets, ignore_index, label_smoothing, block_size
        As for :func:`linear_cross_entropy`.
    filter_threshold : float
        As for :func:`linear_cross_entropy_and_grad`.

    Returns
    -------
    float
        Skipped tiles over all tiles, in [0, 1].

    Raises
    ------
    TypeError, ValueError
        As for :func:`linear_cross_entropy_and_grad`; ``filter_threshold`` may not be None.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.vocabulary import linear_cross_entropy_skipped_fraction
    >>> rng = np.random.default_rng(2)
    >>> h, w = rng.normal(size=(512, 8)), 3 * rng.normal(size=(64, 8))
    >>> y = np.argmax(h @ w.T, axis=1)
    >>> linear_cross_entropy_skipped_fraction(h, w, y, 1e-3, block_size=8)
    0.0
    """
    x = _inputs(hidden, weight, targets, ignore_index, label_smoothing, "sum", block_size,
                one_pass=False)
    threshold = _threshold(filter_threshold)
    if threshold is None:
        raise TypeError("filter_threshold must be a real number")
    n = x.h.shape[0]
    tiles_per_block = -(-n // _FILTER_ROWS)
    skipped = total = 0
    with np.errstate(under="ignore", over="ignore"):
        stats = _forward(x, *_work(x))[0]
        for start, stop, _, g in _gradient_blocks(x, stats):
            total += tiles_per_block
            skipped += len(_tiles_to_skip(g, x, start, stop, threshold))
    return skipped / total if total else 0.0
