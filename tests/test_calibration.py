"""Reliability curves and the expected calibration error: against scikit-learn's
``calibration_curve`` and a plain loop over the bins, at the bin edges, and for bad input."""

from fractions import Fraction

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from lossgrad.calibration import MAX_BINS, expected_calibration_error, reliability_curve


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.beta(0.7, 2.0, n)
    return q, (rng.random(n) < q**1.3).astype(float)


@pytest.mark.parametrize("bins", [1, 3, 10, 25])
def test_curve_agrees_with_scikit_learn(bins):
    q, y = _sample(5000, bins)
    curve = reliability_curve(q, y, bins=bins)
    observed, predicted = calibration_curve(y, q, n_bins=bins, strategy="uniform")
    np.testing.assert_allclose(curve.mean_predicted, predicted, rtol=1e-13)
    np.testing.assert_allclose(curve.observed_frequency, observed, rtol=1e-13)
    assert curve.counts.sum() == q.size
    np.testing.assert_array_equal(curve.edges, np.linspace(0, 1, bins + 1))


def _ece_by_loop(q, y, bins):
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for b in range(bins):
        inside = (q >= edges[b]) & ((q < edges[b + 1]) if b < bins - 1 else (q <= 1))
        if inside.any():
            total += inside.sum() * abs(q[inside].mean() - y[inside].mean())
    return total / q.size


@pytest.mark.parametrize("bins", [1, 5, 10, 30])
def test_ece_agrees_with_a_loop_over_the_bins(bins):
    q, y = _sample(3000, 100 + bins)
    assert expected_calibration_error(q, y, bins=bins) == pytest.approx(
        _ece_by_loop(q, y, bins), rel=1e-12, abs=1e-15)


def test_edges_go_to_the_bin_they_open_and_one_to_the_last():
    bins = 10
    edges = np.linspace(0, 1, bins + 1)
    curve = reliability_curve(edges, np.zeros_like(edges), bins=bins)
    # Each edge opens its own bin; 1 closes the last one, which thus holds 0.9 and 1.
    np.testing.assert_array_equal(curve.counts, [1] * (bins - 1) + [2])
    np.testing.assert_allclose(curve.mean_predicted[:-1], edges[:-2])
    assert curve.mean_predicted[-1] == pytest.approx((edges[-2] + 1) / 2)


def _exact_bins(q, bins):
    # The bin of each float64, comparing exact rationals with the float edges of linspace.
    inner = [Fraction(float(e)) for e in np.linspace(0, 1, bins + 1)[1:-1]]
    return [sum(Fraction(float(v)) >= e for e in inner) for v in q]


def test_decimals_at_edges_go_where_their_exact_values_lie():
    # 0.3, 0.6 and 0.7 are stored a little below 3/10, 6/10 and 7/10, but 0.3 * 10 and
    # 0.7 * 10 round to 3 and 7, and linspace's edges 0.3, 0.6, 0.7 are a little above them.
    q = np.array([0.3, 0.6, 0.7])
    assert _exact_bins(q, 10) == [2, 5, 6]
    assert [min(int(Fraction(v) * 10), 9) for v in q] == [2, 5, 6]  # floor(10 q), exactly
    # With a partner well inside each of the bins 2, 5, 6, each decimal must share its bin.
    paired = np.array([0.25, 0.3, 0.55, 0.6, 0.65, 0.7])
    labels = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    curve = reliability_curve(paired, labels, bins=10)
    observed, predicted = calibration_curve(labels, paired, n_bins=10, strategy="uniform")
    np.testing.assert_array_equal(curve.counts, [2, 2, 2])
    np.testing.assert_allclose(curve.mean_predicted, predicted, rtol=1e-15)
    np.testing.assert_allclose(curve.observed_frequency, observed, rtol=1e-15)


@pytest.mark.parametrize("bins", [3, 7, 10, 49, 100])
def test_points_at_and_next_to_every_edge_match_exact_comparisons_with_the_edges(bins):
    edges = np.linspace(0, 1, bins + 1)
    ratios = np.arange(bins + 1) / bins
    near = np.concatenate([edges, ratios, np.round(ratios, 2)])
    q = np.concatenate([near, np.nextafter(near, 0), np.nextafter(near, 1)])
    q = np.unique(np.clip(q, 0, 1))
    expected = np.bincount(_exact_bins(q, bins), minlength=bins)
    curve = reliability_curve(q, np.zeros_like(q), bins=bins)
    np.testing.assert_array_equal(curve.counts, expected[expected > 0])


def test_calibrated_by_construction_and_a_constant_shift():
    q = np.repeat([0.1, 0.5, 0.85], 20)
    y = np.concatenate([np.r_[np.ones(2), np.zeros(18)], np.r_[np.ones(10), np.zeros(10)],
                        np.r_[np.ones(17), np.zeros(3)]])
    assert expected_calibration_error(q, y) == pytest.approx(0.0, abs=1e-15)
    assert expected_calibration_error(q - 0.05, y) == pytest.approx(0.05, rel=1e-12)


def test_float32_input_and_empty_bins():
    curve = reliability_curve(np.array([0.05, 0.95], dtype=np.float32),
                              np.array([0.0, 1.0], dtype=np.float32), bins=10)
    assert curve.counts.tolist() == [1, 1]
    assert curve.mean_predicted.dtype == np.float64


@pytest.mark.parametrize(
    ("q", "y", "bins", "error", "name"),
    [
        (np.array([0.2, 1.2]), np.array([0.0, 1.0]), 10, ValueError, "probabilities"),
        (np.array([0.2, 0.5]), np.array([0.0, 2.0]), 10, ValueError, "labels"),
        (np.array([0.2, np.nan]), np.array([0.0, 1.0]), 10, ValueError, "probabilities"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0, 1.0]), 10, ValueError, "labels"),
        (np.zeros((2, 2)), np.zeros((2, 2)), 10, ValueError, "probabilities"),
        (np.array([]), np.array([]), 10, ValueError, "probabilities"),
        (np.array([0.2, 0.5]), np.array([0, 1]), 10, TypeError, "labels"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), 0, ValueError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), 2.0, TypeError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), True, TypeError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), MAX_BINS + 1, ValueError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), 2**40, ValueError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), np.int64(2**40), ValueError, "bins"),
        (np.array([0.2, 0.5]), np.array([0.0, 1.0]), 2**70, ValueError, "bins"),
    ],
)
def test_bad_input_names_the_argument(q, y, bins, error, name):
    for function in (reliability_curve, expected_calibration_error):
        with pytest.raises(error, match=name):
            function(q, y, bins=bins)


def test_the_largest_bin_count_is_accepted():
    curve = reliability_curve(np.array([0.2, 0.5]), np.array([0.0, 1.0]), bins=MAX_BINS)
    assert curve.counts.tolist() == [1, 1]
    assert curve.edges.size == MAX_BINS + 1
