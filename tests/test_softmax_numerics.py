"""Softmax, log-sum-exp and softmax cross-entropy against mpmath (lossgrad.accuracy)."""

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import (
    exact_log_softmax,
    exact_logsumexp,
    exact_softmax_cross_entropy,
    softmax_cross_entropy_condition,
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


# Found by a tester of the float32 softmax (the first three fail on the code before the fix).


def _kappa(z_row, t, exact_grad):
    """Condition numbers of each gradient entry with respect to the logits and the targets."""
    _, kappa_z = softmax_cross_entropy_condition(z_row, t)
    mass = mpmath.fsum(t)
    kappa = []
    for kz, ti, gi in zip(kappa_z, t, exact_grad, strict=True):
        s = (gi + ti) / mass
        kappa_t = float((s * (mass - ti) + ti * (1 - s)) / abs(gi)) if gi else 0.0
        kappa.append(kz + kappa_t)
    return np.array(kappa)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_soft_targets_next_to_a_large_one_are_added_up_accurately(dtype):
    # Many tiny targets and one of 1/2 away from the largest logit: a dot product in the working
    # type rounded the tiny ones away (hundreds of max(1, kappa) ULP at K = 5,000).
    classes = 5_000
    z = (0.01 * np.random.default_rng(5).normal(size=(1, classes))).astype(dtype)
    y = np.full((1, classes), 0.49 * np.spacing(dtype(0.5)), dtype)
    y[0, 2507] = 0.5
    loss, grad = lg.softmax_cross_entropy_and_grad(z, y, reduction="none")
    t = [mpmath.mpf(float(v)) for v in y[0]]
    exact_loss, exact_grad = exact_softmax_cross_entropy(z[0].tolist(), t)
    kappa_loss, _ = softmax_cross_entropy_condition(z[0].tolist(), t)
    bound = 8 if dtype == np.float64 else 16
    assert ulps(float(loss[0]), exact_loss, dtype) <= bound * max(1.0, kappa_loss + 1)
    errors = np.array([ulps(float(g), e, dtype) for g, e in zip(grad[0], exact_grad, strict=True)])
    assert np.all(errors <= bound * np.maximum(1.0, _kappa(z[0].tolist(), t, exact_grad)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_of_the_fused_call_equals_the_loss_alone(dtype):
    rng = np.random.default_rng(7)
    z = rng.normal(size=(200, 30)).astype(dtype)
    y = rng.dirichlet(np.full(30, 0.3), size=200).astype(dtype)
    for eps in (0.0, 0.1):
        alone = lg.softmax_cross_entropy(z, y, label_smoothing=eps, reduction="none")
        fused, _ = lg.softmax_cross_entropy_and_grad(z, y, label_smoothing=eps, reduction="none")
        assert np.array_equal(alone, fused)


def test_a_large_weight_does_not_scale_up_a_subnormal_float32_exponential():
    # e^-104 is subnormal in float32; times a class weight of 1e9 it is a normal 6.8e-37.
    z = np.array([[0.0, -104.0, 5.0]], np.float32)
    w = np.array([1.0, 1.0, 1e9], np.float32)
    grad = lg.softmax_cross_entropy_grad(z, np.array([2]), weight=w, reduction="none")[0]
    _, exact = exact_softmax_cross_entropy(z[0].tolist(), [0.0, 0.0, 1e9])
    assert abs(mpmath.mpf(float(grad[1])) / exact[1] - 1) < 1e-6


def test_the_reviewers_float32_point_is_within_the_float32_bound():
    # A largest logit that does not dominate: z - m rounds in float32, which kappa does not see.
    rng = np.random.default_rng(112)
    z = rng.uniform(-0.001, 0.001, (1, 2_000)).astype(np.float32)
    z[0, 0] = np.float32(8.035497665405273)
    w = np.ones(2_000, np.float32)
    w[0] = np.float32(3.2349186)
    grad = lg.softmax_cross_entropy_grad(z, np.array([0]), weight=w, reduction="none")[0]
    t = [0.0] * 2_000
    t[0] = float(w[0])
    _, exact = exact_softmax_cross_entropy(z[0].tolist(), t)
    errors = np.array([ulps(float(g), e, np.float32) for g, e in zip(grad, exact, strict=True)])
    assert np.all(errors <= 16 * np.maximum(1.0, _kappa(z[0].tolist(), t, exact)))


def test_masked_probability_targets_are_refused_by_name():
    y = np.ma.masked_array([[0.2, 0.3, 0.5]], mask=[[0, 0, 1]])
    with pytest.raises(TypeError, match="targets"):
        lg.softmax_cross_entropy(np.zeros((1, 3)), y)


def test_a_float32_rows_result_does_not_depend_on_the_rows_around_it():
    # A row with logits 100 apart goes through float64; its neighbours stay in float32.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 50)).astype(np.float32)
    t = rng.integers(0, 50, 200)
    far = np.zeros((1, 50), np.float32)
    far[0, 0] = 100
    alone = lg.softmax_cross_entropy_and_grad(z, t, reduction="none")
    together = lg.softmax_cross_entropy_and_grad(np.vstack([z, far]), np.append(t, 3),
                                                 reduction="none")
    assert np.array_equal(alone[0], together[0][:200])
    assert np.array_equal(alone[1], together[1][:200])
