"""Softmax, log-sum-exp and softmax cross-entropy against mpmath (lossgrad.accuracy)."""

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import (
    exact_log_softmax,
    exact_logsumexp,
    exact_softmax_cross_entropy,
    ulps,
)

ROWS = {
    "small": [0.3, -1.2, 2.0],
    "wide": [100.0, -250.0, 3.0],
    "offset": [1000.0, 1001.0, 999.5],
    "dominant 10": [10.0, 0.0, 0.0],
    "dominant 30": [30.0, 0.0, 0.0],
    "dominant 40": [40.0, -1.0, 0.5],
}



@pytest.mark.parametrize("name", ROWS)
def test_logsumexp_log_softmax_softmax_against_mpmath(name):
    row = ROWS[name]
    z = np.array(row)
    assert ulps(float(lg.logsumexp(z)), exact_logsumexp(row)) <= 2
    log_s = exact_log_softmax(row)
    for computed, value in zip(lg.log_softmax(z), log_s, strict=True):
        assert ulps(float(computed), value) <= 4, name
    for computed, value in zip(lg.softmax(z), log_s, strict=True):
        assert ulps(float(computed), mpmath.exp(value)) <= 4, name


@pytest.mark.parametrize("name", ROWS)
def test_cross_entropy_and_gradient_with_the_first_class_as_target(name):
    row = ROWS[name]
    z = np.array([row])
    exact_loss, exact_grad = exact_softmax_cross_entropy(row, 0)
    loss = float(lg.softmax_cross_entropy(z, np.array([0])))
    assert ulps(loss, exact_loss) <= 4, name
    grad = lg.softmax_cross_entropy_grad(z, np.array([0]))[0]
    for computed, value in zip(grad, exact_grad, strict=True):
        assert ulps(float(computed), value) <= 4, name


def test_binary_cross_entropy_is_softmax_cross_entropy_with_two_logits():
    u = np.linspace(-40, 40, 161)
    for p in (0.0, 0.2, 0.5, 1.0):
        pair = np.stack([u, np.zeros_like(u)], axis=-1)
        targets = np.stack([np.full_like(u, p), np.full_like(u, 1 - p)], axis=-1)
        binary = lg.bce_with_logits(u, np.full_like(u, p), reduction="none")
        softmax = lg.softmax_cross_entropy(pair, targets, reduction="none")
        np.testing.assert_allclose(softmax, binary, rtol=4e-15, atol=1e-300)
        gradient = lg.softmax_cross_entropy_grad(pair, targets, reduction="none")
        binary_gradient = lg.bce_with_logits_grad(u, np.full_like(u, p), reduction="none")
        np.testing.assert_allclose(gradient[:, 0], binary_gradient, rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(gradient[:, 1], -binary_gradient, rtol=1e-13, atol=1e-16)


def test_invariant_to_adding_a_constant_to_every_logit():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 5))
    y = rng.dirichlet(np.ones(5), size=50)
    for shift in (-700.0, 3.25, 700.0):
        np.testing.assert_allclose(
            lg.softmax_cross_entropy(z + shift, y, reduction="none"),
            lg.softmax_cross_entropy(z, y, reduction="none"),
            rtol=1e-12,
        )


def test_gradient_matches_central_differences_for_every_reduction():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3.0, size=(4, 3))
    y = rng.dirichlet(np.ones(3), size=4)
    for reduction in ("sum", "mean"):
        grad = lg.softmax_cross_entropy_grad(z, y, reduction=reduction, label_smoothing=0.1)
        step = 1e-6
        for index in np.ndindex(z.shape):
            e = np.zeros_like(z)
            e[index] = step
            loss = [
                float(lg.softmax_cross_entropy(z + d, y, reduction=reduction, label_smoothing=0.1))
                for d in (e, -e)
            ]
            assert grad[index] == pytest.approx((loss[0] - loss[1]) / (2 * step), rel=1e-6)


def test_label_smoothing_matches_its_defining_formula_in_mpmath():
    z, target, eps = [2.0, -1.0, 0.5], 1, 0.2
    smoothed = [(1 - mpmath.mpf(eps)) * (k == target) + mpmath.mpf(eps) / 3 for k in range(3)]
    exact, _ = exact_softmax_cross_entropy(z, smoothed)
    computed = lg.softmax_cross_entropy(np.array([z]), np.array([target]), label_smoothing=eps)
    assert ulps(float(computed), exact) <= 4


def test_class_indices_equal_one_hot_probabilities():
    z = np.array([[1.0, 2.0, 3.0], [0.0, -5.0, 5.0]])
    one_hot = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        lg.softmax_cross_entropy(z, np.array([1, 0]), reduction="none"),
        lg.softmax_cross_entropy(z, one_hot, reduction="none"),
    )


def test_extreme_logits_are_finite_without_warnings():
    z = np.array([[1e308, -1e308, 0.0], [-1e308, -1e308, -1e308]])
    for f in (lg.softmax, lg.logsumexp):
        assert np.all(np.isfinite(f(z)))
    assert np.all(np.isfinite(lg.softmax_cross_entropy_grad(z, np.array([0, 2]))))
    # log s_2 = -2e308 exactly, beyond the float range: -inf is its correct rounding.
    assert lg.log_softmax(z)[0, 1] == -np.inf


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: lg.softmax(np.array([1, 2])), TypeError, "logits"),
        (lambda: lg.softmax(np.zeros((2, 0))), ValueError, "class axis"),
        (lambda: lg.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, "0..2"),
        (lambda: lg.softmax_cross_entropy(np.zeros((2, 3)), np.array([0])), ValueError, "shape"),
        (lambda: lg.softmax_cross_entropy(np.zeros((1, 2)), np.array([[0.5, 1.5]])), ValueError,
         r"\[0, 1\]"),
        (lambda: lg.softmax_cross_entropy(np.zeros((1, 2)), np.array([0]), label_smoothing=2.0),
         ValueError, "label_smoothing"),
        (lambda: lg.softmax_cross_entropy(np.zeros((0, 2)), np.zeros(0, dtype=int)), ValueError,
         "no rows"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_nan_stays_in_its_row():
    z = np.array([[1.0, np.nan, 0.0], [1.0, 2.0, 3.0]])
    loss, grad = lg.softmax_cross_entropy_and_grad(z, np.array([0, 1]), reduction="none")
    assert np.isnan(loss[0]) and np.all(np.isnan(grad[0]))
    assert np.isfinite(loss[1]) and np.all(np.isfinite(grad[1]))
