r"""Accurate sums of many floats, a block at a time: the reductions of :mod:`lossgrad.losses`.

:class:`CompensatedSum` adds blocks of float64 values into ``lanes`` running sums, each with a
running compensation, by Knuth's error-free transformation TwoSum applied lane by lane with
vectorised numpy operations (seven per element, no Python loop over elements):

.. math::

    t = s + x, \qquad b = t - s, \qquad e = \bigl(s - (t - b)\bigr) + (x - b),

which gives :math:`s + x = t + e` exactly. Each lane is then Neumaier's compensated sum of the
values that went through it (Ogita, Rump and Oishi's Sum2). At the end the lanes are folded
in halves by the same TwoSum down to one sum and one compensation, whose exact sum is rounded
once (``math.fsum``; for a mean, divided as a rational number first). For non-negative values
(losses are), the result is within :math:`\tfrac12` ULP :math:`+\ (\gamma_m^2 + 16u^2) S`
of the exact sum :math:`S` of the values added, where :math:`u = 2^{-53}`, :math:`m` is the
number of values per lane and :math:`\gamma_m = m u / (1 - m u)`: with :math:`10^7` values over
32768 lanes the second term is below :math:`10^{-26} S`, far below one ULP. That is the
guarantee: the sum of the values given, accurately rounded (correctly rounded but where the
exact sum lies within :math:`10^{-26}` of a tie).

Finite values whose sum exceeds the float range give ``inf`` for the sum (its correct rounding)
and still a finite mean: a block holding a value above :math:`2^{960}` is added scaled by
:math:`2^{-512}` into a second set of lanes, so no lane overflows. NaN and ``inf`` values give
NaN and ``inf``.

References
----------
.. [1] N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002,
   section 4.3 (compensated summation).
.. [2] T. Ogita, S. M. Rump and S. Oishi, "Accurate sum and dot product", *SIAM Journal on
   Scientific Computing* 26(6), 1955-1988, 2005 (algorithm Sum2 and its error bound).
   https://doi.org/10.1137/030601818
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

__all__ = ["CompensatedSum", "accurate_sum"]

# A block whose values are all below 2^960 cannot overflow a lane: a lane receives at most one
# value per block, and even 2^63 values of 2^960 sum to less than 2^1024.
_LARGE = 2.0**960
# Blocks with larger values are added scaled by 2^-512, exactly (values below 2^-562 lose bits
# there, but they sit next to a value above 2^960, so the sum cannot see them).
_SCALE = 2.0**-512


class _Lanes:
    """Running sums and compensations, one pair per lane."""

    def __init__(self, lanes: int) -> None:
        self.sum = np.zeros(lanes)
        self.compensation = np.zeros(lanes)
        self.used = 0

    def add(self, x: NDArray[np.float64], work: list[NDArray[np.float64]]) -> None:
        n = len(x)
        s, c = self.sum[:n], self.compensation[:n]
        t, b, v = (w[:n] for w in work)
        np.add(s, x, out=t)
        np.subtract(t, s, out=b)  # b: the part of x that reached t
        np.subtract(t, b, out=v)
        np.subtract(s, v, out=v)  # s - (t - b): the part of s that did not
        np.subtract(x, b, out=b)  # x - b: the part of x that did not
        v += b
        c += v
        s[...] = t
        self.used = max(self.used, n)

    def parts(self) -> list[float]:
        """A few floats whose exact sum is the lanes' (see :func:`_fold`)."""
        return _fold(self.sum[: self.used].copy(), self.compensation[: self.used].copy())


def _fold(sums: NDArray[np.float64], compensations: NDArray[np.float64]) -> list[float]:
    """Fold the lanes in halves until one is left: [its sum, its compensation].

    Each fold adds the upper half's sums to the lower half's by TwoSum, exactly, and the
    rounding error with both halves' compensations, which are at most ``u`` times the sums:
    the rounding there is of order ``u**2`` times the total, inside the module's bound.
    """
    n = len(sums)
    while n > 1:
        half = n // 2
        top = slice(n - half, n)  # the upper half; the middle lane of an odd n stays put
        a, b = sums[:half], sums[top]
        t = a + b
        v = t - a
        error = (a - (t - v)) + (b - v)
        compensations[:half] += compensations[top]
        compensations[:half] += error
        sums[:half] = t
        n -= half
    return [float(sums[0]), float(compensations[0])] if n else []


class CompensatedSum:
    """An accurate running sum of non-negative float64 blocks of at most ``lanes`` values.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.summation import CompensatedSum
    >>> total = CompensatedSum(4)
    >>> total.add(np.array([1.0, 1e-16, 1e-16, 1e-16]))
    >>> total.add(np.array([1e-16, 1e-16, 1e-16]))
    >>> total.value(), sum([1.0] + [1e-16] * 6)
    (1.0000000000000007, 1.0)
    >>> total.value(divisor=7), total.value() / 7
    (0.14285714285714293, 0.14285714285714296)
    """

    def __init__(self, lanes: int, work: list[NDArray[np.float64]] | None = None) -> None:
        """``work``: three float64 arrays of at least ``lanes`` values to use as temporaries
        (a caller with arrays free between blocks can lend them and save the memory)."""
        lanes = max(1, int(lanes))
        self._normal = _Lanes(lanes)
        self._large: _Lanes | None = None
        self._work = work if work is not None else [np.empty(lanes) for _ in range(3)]
        self._lanes = lanes

    def add(self, x: NDArray[np.float64]) -> None:
        """Add a block of at most ``lanes`` float64 values."""
        n = len(x)
        if n == 0:
            return
        if n > self._lanes:
            raise ValueError(f"a block of {n} values does not fit {self._lanes} lanes")
        # max is NaN if x holds a NaN, and the comparison is then False: such a block goes to
        # the scaled lanes, which carry NaN and inf through (inf - inf there is NaN, quietly).
        if x.max() <= _LARGE:
            self._normal.add(x, self._work)
            return
        if self._large is None:
            self._large = _Lanes(self._lanes)
        with np.errstate(invalid="ignore"):
            self._large.add(x * _SCALE, self._work)

    def value(self, divisor: float | None = None) -> float:
        """The sum, or the sum divided by ``divisor``, as a float64, accurately rounded.

        The lanes and their compensations hold the sum of the values added up to the error
        bound of the module docstring (exactly, while no lane has received two values); their
        exact sum, divided by ``divisor`` if given, is then rounded once.
        """
        normal = self._normal.parts()
        if self._large is None:
            return _divide(normal, divisor, 1.0)
        if not np.all(np.isfinite(self._large.sum)):
            # NaN or inf among the values: TwoSum's compensations are then NaN; the sums say
            # which it is.
            total = float(np.sum(self._large.sum))
            return total if divisor is None else total / divisor
        # Work at the scale of the large lanes; the normal lanes are negligible beside them
        # but added anyway.
        large = self._large.parts()
        return _divide(large + [v * _SCALE for v in normal], divisor, 1 / _SCALE)


def _divide(parts: list[float], divisor: float | None, scale: float) -> float:
    """``sum(parts) * scale / divisor``, rounded once (``scale`` is a power of 2).

    The exact sum of ``parts`` is written as a few floats (``math.fsum`` of the remainder, until
    it is 0), whose rational sum is then divided and rounded: correct rounding even where the
    quotient lies near a tie.
    """
    terms: list[float] = []
    while True:
        try:
            remainder = math.fsum([*parts, *(-t for t in terms)])
        except OverflowError:  # only if the lanes' own sum leaves the float range
            return math.inf
        if remainder == 0 or not math.isfinite(remainder):
            terms.append(remainder)
            break
        terms.append(remainder)
    if divisor is None:
        return terms[0] * scale
    exact = sum(map(Fraction, terms)) / Fraction(divisor)
    return float(exact) * scale


def accurate_sum(x: NDArray[np.float64], lanes: int = 16384) -> float:
    """The accurately rounded sum of non-negative float64 values (see :class:`CompensatedSum`).

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.summation import accurate_sum
    >>> accurate_sum(np.array([1e308, 1e308]))
    inf
    >>> sum([0.1] * 10), accurate_sum(np.full(10, 0.1))
    (0.9999999999999999, 1.0)
    """
    x = np.ravel(np.asarray(x, dtype=np.float64))
    total = CompensatedSum(min(lanes, max(1, x.size)))
    for start in range(0, x.size, lanes):
        total.add(x[start : start + lanes])
    return total.value()
