"""The blocked evaluation that every loss of lossgrad shares.

A loss is computed a block of elements (or rows) at a time, so that no temporary is larger than
a block and the block's work arrays stay in the caches: :func:`element_blocks` hands out the
operands block by block, :class:`Scratch` keeps the work arrays between calls, and
:class:`LossReduction` takes the per-element losses to what the loss function returns (the
output array, or an accurate sum); :class:`Rows` reads an array with a class axis as blocks of
rows. Used by :mod:`lossgrad.losses` and :mod:`lossgrad.focal`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lossgrad import validation
from lossgrad.summation import CompensatedSum

__all__ = [
    "BLOCK",
    "NDITER_BLOCK",
    "Loss",
    "LossReduction",
    "Reduction",
    "Rows",
    "Scratch",
    "element_blocks",
    "fresh",
    "row_blocking",
]

Reduction = Literal["none", "mean", "sum"]
#: What a loss returns: an ndarray for ``reduction="none"``, or a NumPy scalar of the result's
#: float type (``np.float64`` or ``np.float32``) when the result is 0-dimensional, which it
#: always is for ``"mean"`` and ``"sum"``.
Loss = NDArray[np.floating] | np.floating

#: Elements per block: large enough to amortise numpy's cost per call (about a microsecond,
#: and a block takes some twenty calls), small enough that the block's float64 work arrays
#: (512 KiB each) mostly stay in the caches. Measured on the speed benchmark's machine (1 MiB
#: level-2 cache): 2^16 fastest, 2^15 5-10 % slower, 2^17 50 % slower in float64. Work in
#: float32 takes blocks of the same size in bytes, twice as many elements (measured: 2^17
#: 5 % faster than 2^16, 2^15 15 % slower).
BLOCK = 65536

#: Elements per buffer when operands are broadcast (np.nditer), by work type: measured, 2^15
#: float32 elements are about twice as fast as 2^16 or 2^17; float64 is best at 2^16.
NDITER_BLOCK = {np.dtype(np.float64): 65536, np.dtype(np.float32): 32768}


class LossReduction:
    """Where the per-element (or per-row) losses go, and what the loss function returns.

    For ``"none"`` they are written to ``out``; for ``"sum"`` and ``"mean"`` they are added by a
    :class:`~lossgrad.summation.CompensatedSum`, so that the result is the exact sum of the
    float64 losses rounded once (then divided by ``divisor``, for ``"mean"``, with one more
    rounding of the quotient only).
    """

    def __init__(
        self, kind: str, shape: tuple[int, ...], dtype: np.dtype, lanes: int, work: list
    ) -> None:
        """``work``: three float64 arrays of ``lanes`` values, free between blocks."""
        self.kind = kind
        self.dtype = dtype
        self.out = np.empty(shape, dtype) if kind == "none" else None
        self.total = CompensatedSum(lanes, work) if kind != "none" else None

    def add(self, values: NDArray[np.float64]) -> None:
        self.total.add(values)

    def result(self, divisor: float) -> Loss:
        if self.out is not None:
            return validation.result(self.out)
        value = self.total.value(divisor if self.kind == "mean" else None)
        with np.errstate(over="ignore"):  # a float32 sum beyond 3.4e38 rounds to inf
            return self.dtype.type(value)


class Scratch:
    """Work arrays of at least one block's length, made on first use and kept per thread.

    Reusing them spares each call the operating system's cost of mapping and zeroing fresh
    pages, which for a call on a few blocks exceeds the computation. They take at most a few
    MiB per thread.
    """

    _kept = threading.local()

    def __init__(self, size: int) -> None:
        self._size = size

    def __call__(self, name: str, n: int, dtype: type = np.float64) -> NDArray:
        kept = self._kept.__dict__
        key = (name, np.dtype(dtype).char)
        array = kept.get(key)
        if array is None or array.size < self._size:
            array = kept[key] = np.empty(self._size, dtype)
        return array[:n]


def fresh(name: str, n: int, dtype: type = np.float64) -> NDArray:
    """A work array for this call only, called as a :class:`Scratch` is (which keeps its
    arrays): for blocks too large to keep between calls."""
    return np.empty(n, dtype)


def row_blocking(
    count: int, classes: int, io_bytes: int, element_bytes: float, row_bytes: float,
    largest: int, smallest: int = 8192,
) -> tuple[int, int, Scratch | Callable[..., NDArray]]:
    """Rows per block, the block's rows when there are fewer, and where its work arrays come from.

    A block holds between ``smallest`` and ``largest`` elements (at least one row), and as many
    as keep its work arrays (``element_bytes`` per element and ``row_bytes`` per row) within
    7.5 % of ``io_bytes``, the inputs' and outputs' memory. Work arrays are kept between calls
    (:class:`Scratch`) up to ``largest`` elements; a single row longer than that gets its own
    (:func:`fresh`), freed with the call. Used by :mod:`lossgrad.stability` and
    :mod:`lossgrad.distillation`.
    """
    budget = int(0.075 * io_bytes / (element_bytes + row_bytes / classes))
    step = max(1, max(smallest, min(largest, budget)) // classes)
    lanes = max(1, min(step, count))
    return step, lanes, (Scratch(lanes * classes) if classes <= largest else fresh)


def element_blocks(
    inputs: list[NDArray | None],
    outputs: list[NDArray | None],
    shape: tuple[int, ...],
    scratch: Scratch,
    work: np.dtype,
    block_size: int = BLOCK,
) -> Iterator[tuple[list[NDArray | None], list[NDArray | None]]]:
    """The operands a block at a time as arrays of type ``work``, and blocks for the outputs.

    A block holds ``block_size`` elements of float64 work, or as many bytes of another type.
    ``None`` stays ``None``. Each output block is written back to its array (rounded to its
    type, if that differs from ``work``) when the loop asks for the next block. Operands of the
    logits' shape in C order are sliced (and converted, if their type is not ``work``); any
    other broadcast goes through ``np.nditer``.
    """
    present_in = [x for x in inputs if x is not None]
    present_out = [x for x in outputs if x is not None]
    size = int(np.prod(shape))
    lanes = max(1, min(block_size * 8 // work.itemsize, size))

    def place(items, blocks):
        blocks = iter(blocks)
        return [None if x is None else next(blocks) for x in items]

    if all(x.shape == shape and x.flags.c_contiguous for x in present_in + present_out):
        flat_in = [x.reshape(-1) for x in present_in]
        flat_out = [x.reshape(-1) for x in present_out]
        buffers = [
            None if x.dtype == work else scratch(f"convert{i}", lanes, work)
            for i, x in enumerate(flat_in + flat_out)
        ]
        for start in range(0, size, lanes):
            stop = min(size, start + lanes)
            blocks = []
            for x, buffer in zip(flat_in + flat_out, buffers, strict=True):
                if buffer is None:
                    blocks.append(x[start:stop])
                else:
                    blocks.append(buffer[: stop - start])
            for x, block in zip(flat_in, blocks, strict=False):
                if x.dtype != work:
                    np.copyto(block, x[start:stop])
            yield place(inputs, blocks[: len(flat_in)]), place(outputs, blocks[len(flat_in) :])
            for x, block in zip(flat_out, blocks[len(flat_in) :], strict=True):
                if x.dtype != work:
                    np.copyto(x[start:stop], block, casting="same_kind")
        return
    it = np.nditer(
        present_in + present_out,
        flags=["external_loop", "buffered", "zerosize_ok"],
        op_flags=[["readonly"]] * len(present_in) + [["writeonly"]] * len(present_out),
        op_dtypes=[work] * (len(present_in) + len(present_out)),
        casting="same_kind",
        buffersize=min(lanes, NDITER_BLOCK[work]),
    )
    with it:
        for ops in it:
            yield place(inputs, ops[: len(present_in)]), place(outputs, ops[len(present_in) :])


class Rows:
    """An array whose class axis is moved last, read as blocks of rows of classes.

    A C-contiguous layout gives views; any other (a class axis other than the last, or a
    strided array) gives each block as a copy, so that the whole array is never copied.
    """

    def __init__(self, x: NDArray, axis: int) -> None:
        self.moved = np.moveaxis(x, axis, -1)
        self.lead = self.moved.shape[:-1]
        self.classes = self.moved.shape[-1]
        self.count = int(np.prod(self.lead))
        contiguous = self.moved.flags.c_contiguous
        self.flat = self.moved.reshape(self.count, self.classes) if contiguous else None

    def block(self, start: int, stop: int) -> NDArray:
        if self.flat is not None:
            return self.flat[start:stop]
        if not self.lead:  # one strided row (start, stop = 0, 1): no leading axes to index
            return np.ascontiguousarray(self.moved)[None, :]
        return self.moved[np.unravel_index(np.arange(start, stop), self.lead)]
