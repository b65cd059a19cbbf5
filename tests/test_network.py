"""The two-layer network's backpropagation against independent oracles, and its errors.

Oracles: central differences of the network's own loss (lossgrad.gradcheck), the complex step of
a reference loss written here from the definition (lossgrad's losses refuse complex input by
design, so the complex step needs a loss of its own, built from analytic operations only), and
a per-example chain rule written with loops.
"""

import warnings
from fractions import Fraction
from types import MappingProxyType

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


def tiny_network_gradient_by_sympy(params, features, labels, activation):
    """The gradient of a tiny network's loss, differentiated symbolically by sympy."""
    import sympy as sp

    symbols = {key: sp.Matrix(*np.atleast_2d(value).shape,
                              lambda i, j, key=key: sp.Symbol(f"{key}_{i}_{j}"))
               for key, value in params.items()}
    phi = sp.tanh if activation == "tanh" else (lambda a: sp.Max(a, 0))
    loss = 0
    for row, label in zip(features, labels, strict=True):
        a = symbols["W1"] * sp.Matrix(row) + symbols["b1"].T
        h = a.applyfunc(phi)
        z = symbols["W2"] * h + symbols["b2"].T
        loss += sp.log(sum(sp.exp(zk) for zk in z)) - z[int(label)]
    loss = loss / len(labels)
    values = {symbol: float(np.atleast_2d(params[key])[symbol_index])
              for key, matrix in symbols.items()
              for symbol_index, symbol in np.ndenumerate(np.array(matrix.tolist(), dtype=object))}
    return {key: np.array([[float(sp.diff(loss, s).subs(values)) for s in line]
                           for line in matrix.tolist()]).reshape(params[key].shape)
            for key, matrix in symbols.items()}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_backprop_matches_sympy_on_a_tiny_network(activation):
    rng = np.random.default_rng(11)
    params = {"W1": rng.normal(size=(2, 2)), "b1": rng.normal(size=2),
              "W2": rng.normal(size=(2, 2)), "b2": rng.normal(size=2)}
    features, labels = rng.normal(size=(3, 2)), np.array([0, 1, 1])
    _, grads = two_layer_loss_and_grad(params, features, labels, activation=activation)
    expected = tiny_network_gradient_by_sympy(params, features, labels, activation)
    for key in PARAMETER_NAMES:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("n", "d", "h", "k"), [(1, 3, 2, 2), (5, 1, 1, 4), (9, 2, 6, 1)])
def test_backprop_matches_central_differences_at_random_points_and_shapes(seed, n, d, h, k):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.normal(size=(h, d)), "b1": rng.normal(size=h),
              "W2": rng.normal(size=(k, h)), "b2": rng.normal(size=k)}
    x, t = rng.normal(size=(n, d)) * 2, rng.dirichlet(np.ones(k), size=n)
    _, grads = two_layer_loss_and_grad(params, x, t, l2=0.05)
    for key in PARAMETER_NAMES:
        error = check_gradient(
            lambda v, key=key: two_layer_loss(with_block(params, key, v), x, t, l2=0.05),
            grads[key], params[key])
        assert error < 1e-6, (key, error)


def test_an_overflow_at_the_starting_point_is_blamed_on_the_input_not_the_step_size():
    # Only the last row overflows, and the first mini-batch does not contain it.
    params, x, t = problem(activation="relu")
    x[-1] = 1e308
    with pytest.raises(ValueError, match="standardise the features"):
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1, batch_size=2,
                                   rng=np.random.default_rng(0), activation="relu")


def test_no_function_modifies_its_arguments():
    params, x, t = problem(soft=True)
    saved = ({key: value.copy() for key, value in params.items()}, x.copy(), t.copy())
    two_layer_forward(params, x)
    two_layer_predict(params, x)
    two_layer_loss(params, x, t, l2=0.1)
    _, grads = two_layer_loss_and_grad(params, x, t, l2=0.1)
    run = two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=2, batch_size=3, rng=0)
    assert list(params) == list(saved[0])
    for key in PARAMETER_NAMES:
        np.testing.assert_array_equal(params[key], saved[0][key])
        assert not np.shares_memory(grads[key], params[key])
        assert not any(np.shares_memory(step[key], params[key]) for step in run.history)
    np.testing.assert_array_equal(x, saved[1])
    np.testing.assert_array_equal(t, saved[2])


def test_a_seed_and_a_generator_of_that_seed_train_identically():
    params, x, t = problem(n=20)
    runs = [two_layer_gradient_descent(params, x, t, step_size=0.3, epochs=4, batch_size=6,
                                       rng=rng) for rng in (9, np.random.default_rng(9))]
    for before, after in zip(runs[0].history, runs[1].history, strict=True):
        for key in PARAMETER_NAMES:
            np.testing.assert_array_equal(before[key], after[key])
    other = two_layer_gradient_descent(params, x, t, step_size=0.3, epochs=4, batch_size=6, rng=10)
    assert not np.array_equal(other.params["W1"], runs[0].params["W1"])


# Found by a second review: each test below failed on the module as first written. -------------


def test_huge_finite_weights_never_give_nan_inf_or_a_warning():
    # With l2 = 0 the penalty was 0 * inf = NaN once the weights' squares overflowed.
    params, x, t = problem()
    huge = {key: value * 1e200 for key, value in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, _ = two_layer_loss_and_grad(huge, x, t)
        assert np.isfinite(loss) and loss == two_layer_loss(huge, x, t)
        # A penalty that is finite although the squared norm alone is not: with W2 = 0 the
        # logits are b2 alone, so the penalty is the whole difference between the losses.
        flat = {**params, "W1": params["W1"] * 1e160, "W2": np.zeros_like(params["W2"])}
        penalty = two_layer_loss(flat, x, t, l2=1e-300) - two_layer_loss(flat, x, t)
        assert penalty == pytest.approx(0.5 * np.sum(params["W1"] ** 2) * 1e20, rel=1e-12)
        # A penalty beyond the float range is an error, not inf.
        with pytest.raises(ValueError, match="overflow"):
            two_layer_loss(huge, x, t, l2=1.0)
        with pytest.raises(ValueError, match="overflow"):
            two_layer_loss(params, x, t, l2=1e308)


def test_diverging_gradient_descent_is_an_error_naming_step_size_without_warnings():
    params, x, t = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Once the parameters overflow, the error says why (not "features are too large").
        for options in ({"step_size": 1e300, "l2": 1.0, "epochs": 10},
                        {"step_size": 1e10, "activation": "relu", "epochs": 50}):
            with pytest.raises(ValueError, match=r"diverged in epoch .* step_size"):
                two_layer_gradient_descent(params, x, t, **options)
        # A step that saturates tanh without overflowing still gives finite parameters.
        run = two_layer_gradient_descent(params, x, t, step_size=1e300, epochs=10)
        assert np.isfinite(two_layer_loss(run.params, x, t))


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda p, x, t: (p, x, np.ma.masked_array(t, mask=t == 0)), TypeError, "targets"),
        (lambda p, x, t: (p, x, np.ma.masked_array(np.eye(3)[t], mask=np.eye(3)[t] == 0)),
         TypeError, "targets"),
        (lambda p, x, t: (p, x, t.astype(float)), ValueError, "integer"),
        (lambda p, x, t: (p, [[1.0, 2.0, 3.0, 4.0], [1.0]], t[:2]), ValueError, "features"),
        (lambda p, x, t: (p, x, [[1.0, 0.0, 0.0], [1.0]]), ValueError, "targets"),
        (lambda p, x, t: ({**p, "W1": [[1.0] * 4, [1.0]]}, x, t), ValueError, r'params\["W1"\]'),
        (lambda p, x, t: ({**p, 1: 0.0}, x, t), ValueError, "exactly the keys"),
        (lambda p, x, t: ({**p, "W2": np.zeros((0, 5)), "b2": np.zeros(0)}, x, np.zeros((7, 0))),
         ValueError, r'params\["W2"\]'),
        (lambda p, x, t: ({**p, "W1": np.zeros((0, 4)), "b1": np.zeros(0),
                           "W2": np.zeros((3, 0))}, x, t), ValueError, r'params\["W1"\]'),
        (lambda p, x, t: ({**p, "W1": np.zeros((5, 0))}, np.zeros((7, 0)), t),
         ValueError, r'params\["W1"\]'),
    ],
)
def test_more_bad_input_is_refused_by_name(change, error, match):
    params, x, t = change(*problem())
    with pytest.raises(error, match=match):
        two_layer_loss_and_grad(params, x, t)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"activation": np.array(["tanh", "relu"])}, TypeError, "activation must be a string"),
        ({"l2": Fraction(-1, 10)}, ValueError, "l2 must be finite and non-negative"),
    ],
)
def test_more_bad_options_are_refused_by_name(options, error, match):
    params, x, t = problem()
    with pytest.raises(error, match=match):
        two_layer_loss_and_grad(params, x, t, **options)


def test_seeds_and_fractions_are_checked_by_name():
    params, x, t = problem()
    with pytest.raises(ValueError, match="rng"):
        two_layer_init(2, 2, 2, rng=-1)
    with pytest.raises(ValueError, match="rng"):
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1, batch_size=2, rng=-1)
    with pytest.raises(TypeError, match="rng must be"):  # checked even when not needed
        two_layer_gradient_descent(params, x, t, step_size=0.1, epochs=1, rng="a")
    with pytest.raises(ValueError, match="step_size must be positive"):
        two_layer_gradient_descent(params, x, t, step_size=Fraction(-1, 10), epochs=1)
    assert two_layer_loss(params, x, t, l2=Fraction(1, 10)) == two_layer_loss(params, x, t, l2=0.1)


def test_float32_probability_targets_summing_to_one_in_float32_are_accepted():
    params, x, _ = problem()
    t32 = np.random.default_rng(1).dirichlet(np.ones(3), size=7).astype(np.float32)
    assert not np.allclose(t32.astype(np.float64).sum(axis=1), 1, rtol=0, atol=1e-9)
    z = two_layer_forward(params, x).logits
    log_s = z - z.max(axis=1, keepdims=True)
    log_s -= np.log(np.sum(np.exp(log_s), axis=1, keepdims=True))
    cross_entropy = np.mean(-np.sum(t32.astype(np.float64) * log_s, axis=1))
    assert two_layer_loss(params, x, t32) == pytest.approx(cross_entropy, rel=1e-13)
    with pytest.raises(ValueError, match="summing to 1"):
        two_layer_loss(params, x, (t32 * 1.001).astype(np.float32))


def test_params_may_be_any_mapping():
    params, x, t = problem()
    assert two_layer_loss(MappingProxyType(params), x, t) == two_layer_loss(params, x, t)


def test_a_loss_beyond_the_float_range_is_an_error_not_inf():
    params = {"W1": np.eye(2), "b1": np.zeros(2), "W2": np.array([[1.7e308, 0], [-1.7e308, 0]]),
              "b2": np.zeros(2)}
    with pytest.raises(ValueError, match="loss overflows"):
        two_layer_loss(params, np.array([[10.0, 0.0]]), np.array([1]))

