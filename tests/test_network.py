"""The two-layer network's backpropagation against independent oracles, and its errors.

Oracles: central differences of the network's own loss (lossgrad.gradcheck), the complex step of
a reference loss written here from the definition (lossgrad's losses refuse complex input by
design, so the complex step needs a loss of its own, built from analytic operations only), and
a per-example chain rule written with loops.
"""

import numpy as np
import pytest

from lossgrad.gradcheck import check_gradient
from lossgrad.network import (
    PARAMETER_NAMES,
    two_layer_forward,
    two_layer_gradient_descent,
    two_layer_init,
    two_layer_loss,
    two_layer_loss_and_grad,
    two_layer_predict,
)


def reference_loss(params, features, targets, activation="tanh", l2=0.0):
    """The mean cross-entropy plus penalty, from the definition, for real or complex parameters.

    Analytic in every parameter, so the complex step applies: the log-sum-exp is shifted by the
    maximum of the real parts (a constant as far as the tiny imaginary step is concerned; the
    shift cancels exactly in exact arithmetic), and squares are written w * w, not abs(w) ** 2
    (abs would drop the imaginary part). ReLU is a * [Re a > 0], analytic away from its kink.
    """
    w1, b1, w2, b2 = (params[key] for key in PARAMETER_NAMES)
    pre = features @ w1.T + b1
    hidden = np.tanh(pre) if activation == "tanh" else pre * (pre.real > 0)
    z = hidden @ w2.T + b2
    y = np.eye(z.shape[1])[targets] if np.issubdtype(targets.dtype, np.integer) else targets
    shift = np.max(z.real, axis=1, keepdims=True)
    lse = shift[:, 0] + np.log(np.sum(np.exp(z - shift), axis=1))
    return np.mean(lse - np.sum(y * z, axis=1)) + l2 / 2 * (np.sum(w1 * w1) + np.sum(w2 * w2))


def problem(seed=0, n=7, d=4, h=5, k=3, activation="tanh", soft=False):
    rng = np.random.default_rng(seed)
    params = two_layer_init(d, h, k, rng=rng, activation=activation)
    params["b1"] = rng.normal(scale=0.3, size=h)
    params["b2"] = rng.normal(scale=0.3, size=k)
    features = rng.normal(size=(n, d))
    targets = rng.dirichlet(np.ones(k), size=n) if soft else rng.integers(0, k, size=n)
    return params, features, targets


def with_block(params, key, value):
    return {**params, key: value}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_backprop_matches_central_differences_and_the_complex_step(activation, soft, l2):
    params, x, t = problem(activation=activation, soft=soft)
    loss, grads = two_layer_loss_and_grad(params, x, t, activation=activation, l2=l2)
    assert loss == pytest.approx(reference_loss(params, x, t, activation, l2), rel=1e-13)
    for key in PARAMETER_NAMES:
        central = check_gradient(
            lambda v, key=key: two_layer_loss(with_block(params, key, v), x, t,
                                              activation=activation, l2=l2),
            grads[key], params[key])
        complex_ = check_gradient(
            lambda v, key=key: reference_loss(with_block(params, key, v), x, t, activation, l2),
            grads[key], params[key], method="complex")
        assert central < 1e-6, (key, central)
        assert complex_ < 1e-12, (key, complex_)


def test_backprop_matches_a_per_example_chain_rule_written_with_loops():
    params, x, t = problem(seed=3)
    _, grads = two_layer_loss_and_grad(params, x, t)
    n, k = x.shape[0], params["W2"].shape[0]
    expected = {key: np.zeros_like(value) for key, value in params.items()}
    for row, label in zip(x, t, strict=True):
        a = params["W1"] @ row + params["b1"]
        h = np.tanh(a)
        z = params["W2"] @ h + params["b2"]
        s = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
        delta2 = (s - np.eye(k)[label]) / n
        delta1 = (params["W2"].T @ delta2) * (1 - h**2)
        expected["W2"] += np.outer(delta2, h)
        expected["b2"] += delta2
        expected["W1"] += np.outer(delta1, row)
        expected["b1"] += delta1
    for key in PARAMETER_NAMES:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-12, atol=1e-15)


def test_a_planted_bug_is_caught():
    # The check can fail: a gradient missing its 1/N is off by a factor N.
    params, x, t = problem()
    _, grads = two_layer_loss_and_grad(params, x, t)
    wrong = grads["W1"] * x.shape[0]
    reported = check_gradient(lambda v: two_layer_loss(with_block(params, "W1", v), x, t),
                              wrong, params["W1"])
    assert reported == pytest.approx(1 - 1 / x.shape[0], rel=1e-6)


def test_relu_derivative_is_zero_at_the_kink_and_the_bias_gradients_sum_the_deltas():
    params = {"W1": np.zeros((2, 3)), "b1": np.zeros(2), "W2": np.ones((2, 2)),
              "b2": np.zeros(2)}
    _, grads = two_layer_loss_and_grad(params, np.ones((4, 3)), np.array([0, 1, 0, 0]),
                                       activation="relu")
    assert np.all(grads["W1"] == 0) and np.all(grads["b1"] == 0)
    # Equal logits: s = (1/2, 1/2); the mean of s - y over the rows.
    np.testing.assert_allclose(grads["b2"], [0.5 - 0.75, 0.5 - 0.25])


def test_class_indices_and_one_hot_probabilities_agree():
    params, x, t = problem(seed=5)
    loss_i, grads_i = two_layer_loss_and_grad(params, x, t, l2=0.1)
    loss_p, grads_p = two_layer_loss_and_grad(params, x, np.eye(3)[t], l2=0.1)
    assert loss_i == pytest.approx(loss_p, rel=1e-14)
    for key in PARAMETER_NAMES:
        np.testing.assert_allclose(grads_i[key], grads_p[key], rtol=1e-13, atol=1e-16)


def test_forward_and_predict():
    params, x, _ = problem()
    forward = two_layer_forward(params, x)
    np.testing.assert_allclose(forward.hidden, np.tanh(forward.pre_activation))
    np.testing.assert_array_equal(two_layer_predict(params, x), forward.logits.argmax(axis=1))
    relu = two_layer_forward(params, x, activation="relu")
    np.testing.assert_array_equal(relu.hidden, np.maximum(relu.pre_activation, 0))


def test_init_is_reproducible_and_scaled():
    a = two_layer_init(64, 200, 10, rng=1)
    b = two_layer_init(64, 200, 10, rng=np.random.default_rng(1))
    for key in PARAMETER_NAMES:
        np.testing.assert_array_equal(a[key], b[key])
    assert abs(a["W1"].std() * np.sqrt(64) - 1) < 0.05
    relu = two_layer_init(64, 200, 10, rng=1, activation="relu")
    assert abs(relu["W1"].std() * np.sqrt(64 / 2) - 1) < 0.05
    assert np.all(a["b1"] == 0) and np.all(a["b2"] == 0)


def test_gradient_descent_lowers_the_loss_and_is_reproducible():
    params, x, t = problem(n=30)
    full = two_layer_gradient_descent(params, x, t, step_size=0.5, epochs=20)
    losses = [two_layer_loss(p, x, t) for p in full.history]
    assert len(full.history) == 21 and np.all(np.diff(losses) < 0)
    mini = [two_layer_gradient_descent(params, x, t, step_size=0.2, epochs=5, batch_size=8,
                                       rng=4) for _ in range(2)]
    for key in PARAMETER_NAMES:
        np.testing.assert_array_equal(mini[0].params[key], mini[1].params[key])
    assert two_layer_loss(mini[0].params, x, t) < losses[0]
    # The starting point is not modified.
    np.testing.assert_array_equal(full.history[0]["W1"], params["W1"])


def test_finite_input_gives_finite_output_even_for_huge_logits():
    params, x, t = problem()
    params["W2"] = params["W2"] * 1e6
    loss, grads = two_layer_loss_and_grad(params, x * 1e3, t)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda p, x, t: ({**p, "W3": p["W1"]}, x, t), ValueError, "exactly the keys"),
        (lambda p, x, t: ([p], x, t), TypeError, "params must be a dict"),
        (lambda p, x, t: ({**p, "b1": p["b1"][:-1]}, x, t), ValueError, r'params\["b1"\]'),
        (lambda p, x, t: ({**p, "W2": p["W2"].T}, x, t), ValueError, r'params\["W2"\]'),
        (lambda p, x, t: ({**p, "W1": p["W1"].astype(int)}, x, t), TypeError, r'params\["W1"\]'),
        (lambda p, x, t: (p, x[:, :-1], t), ValueError, "features has 3 columns"),
        (lambda p, x, t: (p, x[0], t), ValueError, "features must be 2-dimensional"),
        (lambda p, x, t: (p, np.where(x > 1, np.nan, x), t), ValueError, "features must be finite"),
        (lambda p, x, t: (p, x.astype(int), t), TypeError, "features"),
        (lambda p, x, t: (p, x, t[:-1]), ValueError, r"targets of class indices must have shape"),
        (lambda p, x, t: (p, x, t + 3), ValueError, r"class indices in 0\.\.2"),
        (lambda p, x, t: (p, x, t - 5), ValueError, r"class indices in 0\.\.2"),
        (lambda p, x, t: (p, x, t > 0), TypeError, "targets"),
        (lambda p, x, t: (p, x, np.full((7, 3), 0.5)), ValueError, "summing to 1"),
        (lambda p, x, t: (p, x, np.eye(4)[t]), ValueError, r"must have shape \(7, 3\)"),
    ],
)
def test_bad_input_is_refused_by_name(change, error, match):
    params, x, t = change(*problem())
    with pytest.raises(error, match=match):
        two_layer_loss_and_grad(params, x, t)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"activation": "sigmoid"}, ValueError, "activation must be one of"),
        ({"l2": -1.0}, ValueError, "l2 must be finite and non-negative"),
        ({"l2": np.inf}, ValueError, "l2 must be finite"),
        ({"l2": "0.1"}, TypeError, "l2 must be a real number"),
    ],
)
def test_bad_options_are_refused_by_name(options, error, match):
    params, x, t = problem()
    with pytest.raises(error, match=match):
        two_layer_loss_and_grad(params, x, t, **options)


def test_bad_training_and_init_settings_are_refused_by_name():
    params, x, t = problem()
    with pytest.raises(ValueError, match="step_size must be positive"):
        two_layer_gradient_descent(params, x, t, step_size=0.0, epochs=1)
    with pytest.raises(TypeError, match="epochs must be a whole number"):
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1.5)
    with pytest.raises(TypeError, match="rng is required"):
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1, batch_size=0, rng=0)
    with pytest.raises(TypeError, match="rng must be"):
        two_layer_init(2, 2, 2, rng=None)
    with pytest.raises(ValueError, match="n_hidden must be at least 1"):
        two_layer_init(2, 0, 2, rng=0)


def test_overflow_of_finite_input_is_an_error_not_nan():
    params, x, t = problem(activation="relu")
    params["W1"] = params["W1"] * 1e300
    with pytest.raises(ValueError, match="overflow"):
        two_layer_loss_and_grad(params, x * 1e10, t, activation="relu")
