"""Checking the arguments of lossgrad's numerical functions, with one set of messages.

Every public function of :mod:`lossgrad.numerics` and :mod:`lossgrad.losses` checks its
arguments here before computing anything, so that bad input raises a ``TypeError`` or
``ValueError`` naming the argument instead of returning NaN, a wrong dtype or a silently
broadcast result. The rules, stated once:

- Floating-point arguments are float32 or float64 arrays (or Python floats, or anything
  ``np.asarray`` turns into one). Integer and boolean arrays are refused; so are float16 and
  ``longdouble``, which lossgrad would compute in float64 and return in a type whose range or
  precision does not match (float16 overflows where float64 does not; ``longdouble`` would claim
  digits that were never computed); and masked arrays, whose mask ``np.asarray`` would drop
  without a word.
- Probabilities lie in [0, 1]; NaN is let through and stays in its own result.
- Weights are finite and non-negative: a NaN or infinite weight would spread NaN to results
  it has no business touching.
- Options are checked for their type as well as their value (``True`` is not a smoothing).

And one rule for results (:func:`result`): a result with at least one dimension is an
ndarray; a 0-dimensional one (a reduced loss, or any function of a scalar) is a NumPy scalar of
the result's float type, as NumPy's own ufuncs and reductions return.

Nothing here depends on the rest of lossgrad.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FLOAT_TYPES",
    "REDUCTIONS",
    "class_axis",
    "finite",
    "fits",
    "float_array",
    "ignore_index",
    "in_unit_interval",
    "label_smoothing",
    "probabilities",
    "reduction",
    "result",
    "weights",
]

#: The floating-point types lossgrad accepts and returns.
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: The reductions every loss offers; "mean" is the default.
REDUCTIONS = ("none", "mean", "sum")


def float_array(x: ArrayLike, name: str) -> NDArray[np.floating]:
    """``x`` as a float32 or float64 array, or a ``TypeError`` naming the argument.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.validation import float_array
    >>> float_array([0.5, 2.0], "logits").dtype
    dtype('float64')
    >>> float_array(np.zeros(2, dtype=np.float16), "logits")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: logits has dtype float16; lossgrad computes in float64 and returns float32 ...
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array, and lossgrad would ignore its mask; pass the values "
            f"to keep ({name}.compressed()), fill the masked ones ({name}.filled(...)), or "
            f"give them a weight of 0"
        )
    try:
        a = np.asarray(x)
    except ValueError as error:  # a ragged nested list, for one
        raise ValueError(f"{name} is not an array of numbers: {error}") from None
    if a.dtype in FLOAT_TYPES:
        return a
    if np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"{name} has dtype {a.dtype}; lossgrad computes in float64 and returns float32 or "
            f"float64 only: convert it first, e.g. np.asarray({name}, dtype=np.float64)"
        )
    raise TypeError(
        f"{name} must be a floating-point array (float32 or float64), got dtype {a.dtype}; "
        f"convert it first, e.g. np.asarray({name}, dtype=np.float64)"
    )


def probabilities(x: ArrayLike, name: str) -> NDArray[np.floating]:
    """``x`` as a float array with every entry in [0, 1] (NaN is let through).

    Examples
    --------
    >>> from lossgrad.validation import probabilities
    >>> probabilities([0.0, 1.5], "targets")
    Traceback (most recent call last):
    ...
    ValueError: targets must lie in [0, 1]; found 1.5
    """
    a = float_array(x, name)
    in_unit_interval(a, name)
    return a


#: For each float type, the unsigned integer type of its width and the bit pattern of 1.0.
_UNIT_BITS = {
    np.dtype(np.float64): (np.uint64, np.float64(1.0).view(np.uint64)),
    np.dtype(np.float32): (np.uint32, np.float32(1.0).view(np.uint32)),
}


def in_unit_interval(a: NDArray[np.floating], name: str) -> None:
    """Check that every entry of the float array ``a`` lies in [0, 1] (NaN is let through).

    The losses call this a block at a time, on data already in the cache.
    """
    # One vectorised reduction settles the common case: read as unsigned integers of the same
    # width, the floats in [+0, 1] are exactly those at most 1's bit pattern (a negative float
    # has the top bit set; NaN and numbers above 1 have larger patterns). Otherwise (-0.0, NaN,
    # or a real error), the element-wise test decides: NaN compares False both ways, so it
    # passes, and propagates to its own result.
    if not a.size or (a.flags.c_contiguous and a.dtype in _UNIT_BITS
                      and a.view(_UNIT_BITS[a.dtype][0]).max() <= _UNIT_BITS[a.dtype][1]):
        return
    if not (a.min() >= 0 and a.max() <= 1):
        outside = (a < 0) | (a > 1)
        if np.any(outside):
            raise ValueError(f"{name} must lie in [0, 1]; found {a[outside].flat[0].item()!r}")


def finite(a: NDArray, name: str) -> None:
    """Every entry of the array ``a`` must be finite; the error names ``name`` and the first
    entry that is not.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.validation import finite
    >>> finite(np.array([1.0, -np.inf]), "features")
    Traceback (most recent call last):
    ...
    ValueError: features must be finite; found -inf
    """
    if a.size == 0:
        return
    if a.dtype.kind == "f" and np.isfinite(a.min()) and np.isfinite(a.max()):
        return  # no boolean array of a's size: a NaN or infinity reaches the min or the max
    ok = np.isfinite(a)
    if not np.all(ok):
        raise ValueError(f"{name} must be finite; found {a[~ok].flat[0].item()!r}")


def weights(x: ArrayLike | None, name: str) -> NDArray[np.floating] | None:
    """``x`` as a float array of finite, non-negative weights; ``None`` stays ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.validation import weights
    >>> weights(np.array([1.0, np.nan]), "pos_weight")
    Traceback (most recent call last):
    ...
    ValueError: pos_weight must be finite; found nan
    """
    if x is None:
        return None
    a = float_array(x, name)
    if a.size and a.min() >= 0 and a.max() < np.inf:  # the common case, in two reductions
        return a
    finite(a, name)
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative; found {a[a < 0].flat[0].item()!r}")
    return a


def fits(x: NDArray | None, shape: tuple[int, ...], name: str, into: str) -> None:
    """``x`` must broadcast to ``shape`` without enlarging it (``into`` names that shape).

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.validation import fits
    >>> fits(np.zeros(3), (2, 3), "weight", "logits")
    >>> fits(np.zeros((2, 3)), (3,), "weight", "logits")
    Traceback (most recent call last):
    ...
    ValueError: weight of shape (2, 3) would enlarge logits of shape (3,)
    """
    if x is None:
        return
    try:
        grown = np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {x.shape} do not broadcast to {into} {shape}") from None
    if grown != shape:
        raise ValueError(f"{name} of shape {x.shape} would enlarge {into} of shape {shape}")


def reduction(value: object) -> str:
    """One of :data:`REDUCTIONS`, or an error that lists them."""
    if not isinstance(value, str) or value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {value!r}")
    return value


def label_smoothing(value: object) -> float:
    """A real number in [0, 1], as a float.

    Examples
    --------
    >>> from lossgrad.validation import label_smoothing
    >>> label_smoothing(0)
    0.0
    >>> label_smoothing(True)
    Traceback (most recent call last):
    ...
    TypeError: label_smoothing must be a real number in [0, 1], got True (bool)
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"label_smoothing must be a real number in [0, 1], got {value!r} "
            f"({type(value).__name__})"
        )
    eps = float(value)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {value!r}")
    return eps


def ignore_index(value: object) -> int | None:
    """An integer class index to ignore, or ``None`` for none.

    Examples
    --------
    >>> from lossgrad.validation import ignore_index
    >>> ignore_index(-100)
    -100
    >>> ignore_index(1.5)
    Traceback (most recent call last):
    ...
    TypeError: ignore_index must be an integer or None, got 1.5 (float)
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"ignore_index must be an integer or None, got {value!r} ({type(value).__name__})"
        )
    return int(value)


def class_axis(shape: tuple[int, ...], axis: object, name: str = "logits") -> int:
    """The class axis as a non-negative index into ``shape``, which must have classes.

    Examples
    --------
    >>> from lossgrad.validation import class_axis
    >>> class_axis((4, 3), -1)
    1
    >>> class_axis((4, 0), -1)
    Traceback (most recent call last):
    ...
    ValueError: logits need a non-empty class axis (axis=-1); got shape (4, 0)
    """
    if isinstance(axis, bool | np.bool_) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r} ({type(axis).__name__})")
    ndim = len(shape)
    if ndim == 0:
        raise ValueError(f"{name} need a class axis (axis={axis}); got a 0-dimensional array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for {name} of shape {shape}")
    index = int(axis) % ndim
    if shape[index] == 0:
        raise ValueError(f"{name} need a non-empty class axis (axis={axis}); got shape {shape}")
    return index


def result(x: NDArray[np.floating]) -> NDArray[np.floating] | np.floating:
    """The one rule for results: a NumPy scalar if ``x`` is 0-dimensional, else ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.validation import result
    >>> result(np.array(0.5)), result(np.array([0.5]))
    (np.float64(0.5), array([0.5]))
    """
    return x[()] if x.ndim == 0 else x
