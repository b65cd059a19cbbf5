"""Sigmoid focal loss: against mpmath (the loss from its definition, the gradient by mpmath.diff),
torchvision's formula where it is accurate, the mathematical limits, and bad input.
"""

import warnings

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import exact_focal, exact_focal_grad, focal_condition, ulps
from lossgrad.focal import sigmoid_focal_loss, sigmoid_focal_loss_and_grad, sigmoid_focal_loss_grad
from lossgrad.gradcheck import central_difference


def _points(n: int, hard: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = np.concatenate([rng.normal(0, 3, n), rng.uniform(-40, 40, n), rng.uniform(-1, 1, n),
                        rng.choice([-1, 1], n) * 10 ** rng.uniform(-8, 2.8, n)])
    y = rng.integers(0, 2, u.size).astype(float) if hard else rng.random(u.size)
    return u, y


def _bound(gamma: float) -> float:
    """The issue's bar: 8 max(1, kappa) ULP for gamma <= 2, 2(2 + gamma) max(1, kappa) above."""
    return 8.0 if gamma <= 2 else 2 * (2 + gamma)


@pytest.mark.parametrize("hard", [True, False], ids=["hard", "soft"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("alpha", [0.25, None])
def test_loss_and_gradient_are_within_the_bound_of_mpmath(hard, gamma, alpha):
    u, y = _points(12, hard, seed=int(10 * gamma) + hard)
    loss, grad = sigmoid_focal_loss_and_grad(u, y, alpha=alpha, gamma=gamma, reduction="none")
    for i in range(u.size):
        exact_loss = exact_focal(u[i], y[i], alpha, gamma)
        exact_grad = exact_focal_grad(u[i], y[i], alpha, gamma)
        kappa_loss = max(1.0, focal_condition(u[i], y[i], alpha, gamma, order=0))
        kappa_grad = max(1.0, focal_condition(u[i], y[i], alpha, gamma, order=1))
        where = f"u={u[i]!r}, y={y[i]!r}"
        assert ulps(loss[i], exact_loss) <= _bound(gamma) * kappa_loss, where
        assert ulps(grad[i], exact_grad) <= _bound(gamma) * kappa_grad, where


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_float32_is_the_float64_result_rounded_once(gamma):
    u, y = _points(10, hard=True, seed=3)
    u, y = u.astype(np.float32), y.astype(np.float32)
    loss, grad = sigmoid_focal_loss_and_grad(u, y, gamma=gamma, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    for i in range(u.size):
        # Where the float64 result is accurate, rounding it once is within 1 float32 ULP.
        assert ulps(loss[i], exact_focal(u[i], y[i], 0.25, gamma), np.float32) <= 1
        assert ulps(grad[i], exact_focal_grad(u[i], y[i], 0.25, gamma), np.float32) <= 1


def test_gamma_0_without_alpha_is_binary_cross_entropy():
    u, y = _points(50, hard=False, seed=5)
    loss, grad = sigmoid_focal_loss_and_grad(u, y, alpha=None, gamma=0.0, reduction="none")
    np.testing.assert_allclose(loss, lg.bce_with_logits(u, y, reduction="none"), rtol=4e-16)
    # Both gradients are accurate to a few ULP times the condition number, which is large
    # only where the gradient is near 0.
    np.testing.assert_allclose(grad, lg.bce_with_logits_grad(u, y, reduction="none"),
                               rtol=1e-14, atol=1e-300)


def test_agrees_with_torchvisions_formula_where_that_formula_is_accurate():
    rng = np.random.default_rng(7)
    u, y = rng.uniform(-4, 4, 1000), rng.random(1000)
    p = 1 / (1 + np.exp(-u))
    ce = np.logaddexp(0, u) - y * u
    p_t = p * y + (1 - p) * (1 - y)
    common = (0.25 * y + 0.75 * (1 - y)) * ce * (1 - p_t) ** 2
    np.testing.assert_allclose(sigmoid_focal_loss(u, y, reduction="none"), common, rtol=1e-12)


def test_gradient_agrees_with_central_differences():
    u, y = np.linspace(-6, 6, 41), np.full(41, 0.8)
    for gamma in (0.5, 2.0):
        numeric = central_difference(
            lambda t, g=gamma: sigmoid_focal_loss(t, y, gamma=g, reduction="none"), u
        )
        np.testing.assert_allclose(
            sigmoid_focal_loss_grad(u, y, gamma=gamma, reduction="none"), numeric,
            rtol=1e-8, atol=1e-10,
        )


def test_reductions_are_the_exact_sum_rounded_once_and_the_mean():
    u, y = _points(25, hard=False, seed=9)
    exact = mpmath.fsum(exact_focal(a, b) for a, b in zip(u, y, strict=True))
    total = sigmoid_focal_loss(u, y, reduction="sum")
    assert ulps(total, exact) <= 1
    assert sigmoid_focal_loss(u, y) == pytest.approx(float(exact) / u.size, rel=3e-16)
    np.testing.assert_array_equal(
        sigmoid_focal_loss_grad(u, y), sigmoid_focal_loss_grad(u, y, reduction="none") / u.size
    )


def test_negative_alpha_switches_the_weighting_off_as_in_torchvision():
    u, y = _points(5, hard=True, seed=2)
    np.testing.assert_array_equal(sigmoid_focal_loss(u, y, alpha=-1, reduction="none"),
                                  sigmoid_focal_loss(u, y, alpha=None, reduction="none"))


def test_infinite_logits_give_the_limits_without_a_warning():
    u = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = sigmoid_focal_loss_and_grad(u, y, gamma=0.5, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, np.inf, np.inf, np.inf])
    # Certain and wrong: the gradient tends to alpha_t (1 - 0)^gamma (±1); at y = 1/2 the
    # weight tends to 1/2 and sigma(u) - y to 1/2.
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    np.testing.assert_allclose(grad, [0.0, 0.0, 0.75, -0.25, alpha_t[4] * 0.5**0.5 * 0.5])


@pytest.mark.parametrize("gamma", [0.0, 0.3, 2.0, 5.0])
def test_finite_extremes_give_finite_results_without_a_warning(gamma):
    big = [1e308, -1e308, 800.0, -800.0, 745.0, -745.0, 1e-300, -1e-300, 0.0, -0.0]
    u = np.repeat(big, 4)
    y = np.tile([0.0, 1.0, 0.5, 1e-300], len(big))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction in ("none", "sum", "mean"):
            loss, grad = sigmoid_focal_loss_and_grad(u, y, gamma=gamma, reduction=reduction)
            assert np.all(np.isfinite(loss)) or reduction == "sum"
            assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"alpha": "0.25"}, TypeError, "alpha"),
        ({"alpha": True}, TypeError, "alpha"),
        ({"alpha": np.nan}, ValueError, "alpha"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"gamma": np.inf}, ValueError, "gamma"),
        ({"gamma": np.nan}, ValueError, "gamma"),
        ({"gamma": None}, TypeError, "gamma"),
        ({"gamma": True}, TypeError, "gamma"),
        ({"reduction": "avg"}, ValueError, "reduction"),
    ],
)
def test_bad_options_are_refused_by_name(kwargs, error, name):
    for f in (sigmoid_focal_loss, sigmoid_focal_loss_grad, sigmoid_focal_loss_and_grad):
        with pytest.raises(error, match=name):
            f(np.zeros(3), np.ones(3), **kwargs)


@pytest.mark.parametrize(
    ("logits", "targets", "error", "name"),
    [
        (np.zeros(3), np.array([0.0, 1.5, 0.5]), ValueError, "targets"),
        (np.zeros(3), np.array([0.0, -0.5, 0.5]), ValueError, "targets"),
        (np.zeros(3), np.zeros(4), ValueError, "targets"),
        (np.zeros(3), np.zeros((2, 3)), ValueError, "targets"),
        (np.zeros(3, np.float16), np.zeros(3), TypeError, "logits"),
        (np.zeros(3, int), np.zeros(3), TypeError, "logits"),
        (np.zeros(0), np.zeros(0), ValueError, "empty"),
    ],
)
def test_bad_arrays_are_refused_by_name(logits, targets, error, name):
    with pytest.raises(error, match=name):
        sigmoid_focal_loss(logits, targets)


def test_targets_broadcast_and_nan_stays_in_its_element():
    u = np.array([[0.0, np.nan], [1.0, 2.0]])
    loss, grad = sigmoid_focal_loss_and_grad(u, np.array([1.0, 0.0]), reduction="none")
    assert np.isnan(loss[0, 1]) and np.isnan(grad[0, 1])
    assert np.all(np.isfinite(loss[[0, 1, 1], [0, 0, 1]]))


@pytest.mark.parametrize("gamma", [0.0, 2.0, 50.0])
def test_infinite_logits_with_soft_targets_or_a_zero_alpha_t_give_the_limit_not_nan(gamma):
    # Certain and wrong by y (or 1 - y) > 0: 1 - p_t tends to that, ce to inf, the loss to inf,
    # even where (1 - p_t)^gamma underflows; alpha_t = 0 makes the loss 0 at every logit.
    u = np.array([np.inf, -np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1 - 2**-53, 1e-300, 1e-300, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = sigmoid_focal_loss(u, y, alpha=None, gamma=gamma, reduction="none")
        np.testing.assert_array_equal(loss, [np.inf] * 5)
        zero_alpha_t = sigmoid_focal_loss(u[3:], y[3:], alpha=1.0, gamma=gamma, reduction="none")
        np.testing.assert_array_equal(zero_alpha_t, [0.0, np.inf])
        assert sigmoid_focal_loss(u[3:4], y[3:4], alpha=1.0, gamma=gamma, reduction="sum") == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_peak_memory_at_a_million_logits_is_within_a_tenth_of_inputs_and_outputs(dtype):
    import threading
    import tracemalloc

    rng = np.random.default_rng(11)
    u = (4 * rng.standard_normal(10**6)).astype(dtype)
    y = rng.integers(0, 2, 10**6).astype(dtype)
    inputs = u.nbytes + y.nbytes
    calls = ((sigmoid_focal_loss, "mean"), (sigmoid_focal_loss_and_grad, "none"))
    for function, reduction in calls:
        result = {}

        def run(f=function, r=reduction, into=result):
            into["out"] = f(u, y, reduction=r)

        tracemalloc.start()
        worker = threading.Thread(target=run)  # a fresh thread: its work arrays are counted
        worker.start()
        worker.join()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out = result["out"] if isinstance(result["out"], tuple) else (result["out"],)
        outputs = sum(np.asarray(x).nbytes for x in out)
        assert (inputs + peak) / (inputs + outputs) <= 1.10, (function.__name__, reduction)
