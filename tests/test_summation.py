"""The reductions: lossgrad.summation against exact rational sums, and the losses' "sum" and
"mean" against mpmath (issue 8, section 1: the reduction may not trade accuracy for speed)."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import exact_bce, exact_softmax_cross_entropy, ulps
from lossgrad.summation import CompensatedSum, accurate_sum


def within_bound(computed: float, exact: Fraction) -> bool:
    """Half an ULP of the exact value plus 1e-26 of it: the bound lossgrad.summation states."""
    slack = Fraction(math.ulp(float(exact))) / 2 + exact * Fraction(1, 10**26)
    return abs(Fraction(computed) - exact) <= slack


@pytest.mark.parametrize("seed", range(5))
def test_many_values_per_lane_over_a_wide_range_are_summed_to_half_an_ulp(seed):
    rng = np.random.default_rng(seed)
    # 2^15 values through 64 lanes: 512 values per lane, magnitudes from 1e-20 to 1e20.
    x = 10.0 ** rng.uniform(-20, 20, size=2**15) * rng.uniform(size=2**15)
    total = CompensatedSum(64)
    for start in range(0, x.size, 64):
        total.add(x[start : start + 64])
    exact = sum(map(Fraction, x.tolist()))
    assert within_bound(total.value(), exact)
    assert within_bound(total.value(divisor=x.size), exact / x.size)
    # The plain float sum is off by many ULPs here; the accurate one is not.
    assert ulps(accurate_sum(x, lanes=64), mpmath.mpf(exact.numerator) / exact.denominator) <= 0.5


def test_a_small_term_after_a_large_one_is_kept():
    x = np.array([1.0] + [2.0**-60] * 1000)
    assert accurate_sum(x) == float(1 + Fraction(1000, 2**60))
    assert sum(x.tolist()) == 1.0  # one addition at a time loses every small term


def test_overflow_of_the_sum_gives_inf_and_a_finite_mean():
    total = CompensatedSum(4)
    total.add(np.array([1.5e308, 1.5e308, 1.0, 0.0]))
    assert total.value() == math.inf
    assert total.value(divisor=4) == float((Fraction(1.5e308) * 2 + 1) / 4)


def test_nan_and_inf_come_through():
    assert math.isnan(accurate_sum(np.array([1.0, np.nan, 2.0])))
    assert accurate_sum(np.array([1.0, np.inf])) == math.inf


def test_empty_and_too_large_blocks():
    assert accurate_sum(np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="lanes"):
        CompensatedSum(2).add(np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduced_bce_is_within_one_ulp_of_the_exact_sum_of_exact_losses(dtype):
    rng = np.random.default_rng(3)
    n = 3000
    u = (4 * rng.standard_normal(n)).astype(dtype)
    p = rng.uniform(size=n).astype(dtype)
    exact = mpmath.fsum(exact_bce(a, b) for a, b in zip(u.tolist(), p.tolist(), strict=True))
    assert ulps(lg.bce_with_logits(u, p, reduction="sum"), exact, dtype) <= 1
    assert ulps(lg.bce_with_logits(u, p), exact / n, dtype) <= 1


def test_reduced_softmax_cross_entropy_is_within_one_ulp_of_the_exact_sum():
    rng = np.random.default_rng(4)
    z = 3 * rng.standard_normal((300, 10))
    t = rng.integers(0, 10, size=300)
    exact = mpmath.fsum(
        exact_softmax_cross_entropy(row, int(k))[0] for row, k in zip(z, t, strict=True)
    )
    assert ulps(lg.softmax_cross_entropy(z, t, reduction="sum"), exact) <= 1
    assert ulps(lg.softmax_cross_entropy(z, t), exact / 300) <= 1


def test_neumaiers_example_is_exact_lane_by_lane():
    # One lane, so this is Neumaier's compensated sum itself: 1 + 1e100 + 1 - 1e100 = 2, where
    # Kahan's variant and one-at-a-time addition give 0.
    total = CompensatedSum(1)
    for value in (1.0, 1e100, 1.0, -1e100):
        total.add(np.array([value]))
    assert total.value() == 2.0
