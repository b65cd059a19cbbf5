"""lossgrad's numerical functions against an independent oracle: mpmath (lossgrad.accuracy)."""

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import (
    bce_grad_condition,
    exact_bce,
    exact_bce_grad,
    exact_logit,
    exact_sigmoid,
    exact_softplus,
    ulps,
)
from lossgrad.gradcheck import central_difference

# Logits from 1e-8 to 700 in magnitude on both signs, and 0.
MAGNITUDES = [0.0, 1e-8, 1e-4, 0.1, 0.5, 1.0, 1.5, 3.0, 10.0, 20.0, 36.0, 40.0, 100.0, 700.0]
LOGITS = sorted({s * m for m in MAGNITUDES for s in (1.0, -1.0)})
TARGETS = [0.0, 1.0, 0.5, 0.3, 0.999, 0.25, 0.01]


@pytest.mark.parametrize("x", LOGITS)
def test_sigmoid_softplus_log_sigmoid_within_2_ulp(x):
    assert ulps(float(lg.sigmoid(np.float64(x))), exact_sigmoid(x)) <= 2
    assert ulps(float(lg.softplus(np.float64(x))), exact_softplus(x)) <= 2
    assert ulps(float(lg.log_sigmoid(np.float64(x))), -exact_softplus(-x)) <= 2


@pytest.mark.parametrize("q", [1e-300, 1e-10, 0.1, 0.3, 0.5, 0.7, 0.999, 1 - 2**-52])
def test_logit_within_2_ulp(q):
    assert ulps(float(lg.logit(np.float64(q))), exact_logit(q)) <= 1


@pytest.mark.parametrize("p", TARGETS)
def test_bce_loss_within_2_ulp_everywhere(p):
    u = np.array(LOGITS)
    computed = lg.bce_with_logits(u, np.full_like(u, p), reduction="none")
    errors = [ulps(float(c), exact_bce(x, p)) for c, x in zip(computed, u, strict=True)]
    assert max(errors) <= 2, dict(zip(LOGITS, errors, strict=True))


@pytest.mark.parametrize("p", TARGETS)
def test_bce_gradient_within_condition_number_bound(p):
    u = np.array(LOGITS)
    computed = lg.bce_with_logits_grad(u, np.full_like(u, p), reduction="none")
    for c, x in zip(computed, u, strict=True):
        exact = exact_bce_grad(x, p)
        if exact == 0:
            assert c == 0
            continue
        assert ulps(float(c), exact) <= max(2, 2 * bce_grad_condition(x, p)), (x, p)


def test_gradient_right_in_the_tails_and_near_zero():
    # sigma(40) - 1 rounds to 0 in the naive formula; the true value is -sigma(-40).
    g = lg.bce_with_logits_grad(np.array([40.0, 1e-10]), np.array([1.0, 0.5]), reduction="none")
    assert ulps(float(g[0]), exact_bce_grad(40, 1)) <= 1
    assert ulps(float(g[1]), exact_bce_grad(1e-10, 0.5)) <= 1


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_gradient_matches_central_differences(p):
    u = np.linspace(-25, 25, 501)
    target = np.full_like(u, p)
    estimate = central_difference(lambda x: lg.bce_with_logits(x, target, reduction="none"), u)
    analytic = lg.bce_with_logits_grad(u, target, reduction="none")
    np.testing.assert_allclose(analytic, estimate, atol=1e-8)


def test_reductions_and_their_gradients():
    u = np.array([-2.0, 0.5, 3.0, 8.0])
    p = np.array([0.0, 1.0, 0.25, 0.9])
    exact = mpmath.fsum(exact_bce(a, b) for a, b in zip(u, p, strict=True))
    assert ulps(lg.bce_with_logits(u, p, reduction="sum"), exact) <= 1
    assert ulps(lg.bce_with_logits(u, p), exact / 4) <= 1
    for reduction in ("sum", "mean"):
        loss = lambda x, r=reduction: float(lg.bce_with_logits(x, p, reduction=r))  # noqa: E731
        step = 1e-6
        for i in range(4):
            e = np.zeros(4)
            e[i] = step
            estimate = (loss(u + e) - loss(u - e)) / (2 * step)
            grad = lg.bce_with_logits_grad(u, p, reduction=reduction)
            assert grad[i] == pytest.approx(estimate, rel=1e-7), (reduction, i)


def test_float32_in_float32_out():
    u = np.linspace(-50, 50, 101, dtype=np.float32)
    p = np.full_like(u, 0.3)
    for f in (lg.bce_with_logits, lg.bce_with_logits_grad):
        assert f(u, p, reduction="none").dtype == np.float32
    assert lg.sigmoid(u).dtype == np.float32


def test_extreme_finite_inputs_give_finite_results_without_warnings():
    # filterwarnings = error in pyproject.toml turns any floating-point warning into a failure.
    u = np.array([-1e308, -1e4, -745.0, 0.0, 745.0, 1e4, 1e308])
    for p in (0.0, 0.5, 1.0):
        t = np.full_like(u, p)
        for result in (
            lg.bce_with_logits(u, t, reduction="none"),
            lg.bce_with_logits_grad(u, t, reduction="none"),
            lg.sigmoid(u),
            lg.softplus(u),
            lg.log_sigmoid(u),
        ):
            assert np.all(np.isfinite(result))


def test_nan_propagates_only_where_it_is():
    g = lg.bce_with_logits_grad(np.array([np.nan, 1.0]), np.array([0.5, 0.5]), reduction="none")
    assert np.isnan(g[0]) and np.isfinite(g[1])


zeros = np.zeros  # keeps the table below within the line length


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: lg.bce_with_logits(np.array([1, 2]), np.array([0.0, 1.0])), TypeError, "logits"),
        (lambda: lg.bce_with_logits(np.array([1.0]), np.array([1])), TypeError, "targets"),
        (lambda: lg.bce_with_logits(zeros(2), np.array([0.5, 1.5])), ValueError, r"in \[0, 1\]"),
        (lambda: lg.bce_with_logits(np.zeros(2), np.array([-0.1, 0.5])), ValueError, "targets"),
        (lambda: lg.bce_with_logits(np.zeros(3), np.zeros(2)), ValueError, "do not broadcast"),
        (lambda: lg.bce_with_logits(np.zeros(3), np.zeros((2, 3))), ValueError, "enlarge"),
        (lambda: lg.bce_with_logits(np.zeros(0), np.zeros(0)), ValueError, "empty"),
        (lambda: lg.bce_with_logits_grad(np.zeros(0), np.zeros(0)), ValueError, "empty"),
        (lambda: lg.bce_with_logits(zeros(2), zeros(2), reduction="x"), ValueError, "reduction"),
        (lambda: lg.sigmoid(np.array(["a"], dtype=object)), TypeError, "x must be"),
        (lambda: lg.logit(np.array([1.5])), ValueError, "q must lie"),
    ],
)
def test_bad_input_raises_a_clear_error_naming_the_argument(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_empty_input_is_fine_without_a_mean():
    assert lg.bce_with_logits(np.zeros(0), np.zeros(0), reduction="sum") == 0.0
    assert lg.bce_with_logits_grad(np.zeros(0), np.zeros(0), reduction="none").shape == (0,)
