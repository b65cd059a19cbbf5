"""lossgrad.regression against independent oracles: finite differences, sympy, scikit-learn."""

import dataclasses

import numpy as np
import pytest
import sympy as sp
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression

from lossgrad.gradcheck import check_gradient
from lossgrad.regression import (
    RegressionFit,
    add_intercept,
    fit_logistic_regression,
    fit_softmax_regression,
    logistic_regression_grad,
    logistic_regression_hessian,
    logistic_regression_loss,
    softmax_regression_grad,
    softmax_regression_hessian,
    softmax_regression_loss,
)

RNG_SEED = 20261130


def binary_problem(n=7, d=4, seed=RNG_SEED):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.uniform(size=n)  # soft labels: the formulas hold for any p in [0, 1]
    w = rng.normal(size=d)
    l2 = rng.uniform(0, 0.5, size=d)
    return w, x, y, l2


def softmax_problem(n=8, d=3, k=3, seed=RNG_SEED, labels=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    t = rng.integers(0, k, size=n) if labels else rng.dirichlet(np.ones(k), size=n)
    w = rng.normal(size=(k, d))
    l2 = rng.uniform(0, 0.5, size=d)
    return w, x, t, l2


def hessian_by_differences(grad, w):
    """Each row of the Hessian as the central-difference gradient of one gradient entry."""
    flat = w.ravel()
    rows = []
    for i in range(flat.size):
        def entry(v, i=i):
            return float(grad(v.reshape(w.shape)).ravel()[i])
        rows.append(entry)
    return flat, rows


# Gradients and Hessians against finite differences -------------------------------------------


def test_logistic_gradient_matches_central_differences_of_the_loss():
    w, x, y, l2 = binary_problem()
    g = logistic_regression_grad(w, x, y, l2=l2)
    assert check_gradient(lambda v: logistic_regression_loss(v, x, y, l2=l2), g, w) < 1e-8


def test_logistic_hessian_matches_central_differences_of_the_gradient():
    w, x, y, l2 = binary_problem()
    h = logistic_regression_hessian(w, x, y, l2=l2)
    flat, rows = hessian_by_differences(lambda v: logistic_regression_grad(v, x, y, l2=l2), w)
    for i, entry in enumerate(rows):
        assert check_gradient(entry, h[i], flat) < 1e-7


@pytest.mark.parametrize("labels", [True, False])
def test_softmax_gradient_matches_central_differences_of_the_loss(labels):
    w, x, t, l2 = softmax_problem(labels=labels)
    g = softmax_regression_grad(w, x, t, l2=l2)
    assert g.shape == w.shape
    assert check_gradient(lambda v: softmax_regression_loss(v, x, t, l2=l2), g, w) < 1e-8


@pytest.mark.parametrize("labels", [True, False])
def test_softmax_hessian_matches_central_differences_of_the_gradient(labels):
    w, x, t, l2 = softmax_problem(labels=labels)
    h = softmax_regression_hessian(w, x, t, l2=l2)
    assert h.shape == (w.size, w.size)
    flat, rows = hessian_by_differences(lambda v: softmax_regression_grad(v, x, t, l2=l2), w)
    for i, entry in enumerate(rows):
        assert check_gradient(entry, h[i], flat) < 1e-7


def test_hessians_are_symmetric_and_positive_semidefinite_without_a_penalty():
    w, x, y, _ = binary_problem()
    h = logistic_regression_hessian(w, x, y)
    assert np.array_equal(h, h.T) and np.linalg.eigvalsh(h).min() >= -1e-15
    w, x, t, _ = softmax_problem()
    h = softmax_regression_hessian(w, x, t)
    eig = np.linalg.eigvalsh(h)
    assert np.array_equal(h, h.T) and eig.min() >= -1e-14 * eig.max()
    # Singular along a common shift of the rows of W: (1, ..., 1) kron v for every v.
    shift = np.kron(np.ones(w.shape[0]), np.arange(1.0, w.shape[1] + 1))
    assert np.linalg.norm(h @ shift) <= 1e-14 * eig.max() * np.linalg.norm(shift)


def test_the_quarter_bound_holds_for_the_logistic_hessian():
    w, x, y, l2 = binary_problem(d=5)
    h = logistic_regression_hessian(20 * w, x, y, l2=l2)
    bound = x.T @ x / (4 * len(x)) + np.diag(l2)
    assert np.linalg.eigvalsh(bound - h).min() >= -1e-14


# Sympy: the same derivatives from the scalar loss, symbolically --------------------------------


def test_logistic_gradient_and_hessian_agree_with_sympy_for_d_2():
    w1, w2 = sp.symbols("w1 w2", real=True)
    x = [[sp.Rational(1, 2), -2], [3, sp.Rational(1, 3)], [-1, 1]]
    y = [1, 0, sp.Rational(1, 4)]
    lam = sp.Rational(1, 10)
    loss = sum(sp.log(1 + sp.exp(a * w1 + b * w2)) - t * (a * w1 + b * w2)
               for (a, b), t in zip(x, y, strict=True)) / 3 + lam / 2 * (w1**2 + w2**2)
    grad = [sp.diff(loss, v) for v in (w1, w2)]
    hess = sp.hessian(loss, (w1, w2))
    at = {w1: sp.Rational(3, 10), w2: sp.Rational(-7, 10)}
    xf, yf, wf = (np.array(v, dtype=float) for v in (x, y, [at[w1], at[w2]]))
    assert logistic_regression_loss(wf, xf, yf, l2=0.1) == pytest.approx(
        float(loss.subs(at).evalf(30)), rel=1e-14)
    assert np.allclose(logistic_regression_grad(wf, xf, yf, l2=0.1),
                       [float(g.subs(at).evalf(30)) for g in grad], rtol=1e-13, atol=0)
    assert np.allclose(logistic_regression_hessian(wf, xf, yf, l2=0.1),
                       np.array(hess.subs(at).evalf(30), dtype=float), rtol=1e-13, atol=0)


def test_the_symbolic_gradient_is_the_chain_rule_of_sigma_minus_p():
    a, b, w1, w2, p = sp.symbols("a b w1 w2 p", real=True)
    u = a * w1 + b * w2
    loss = sp.log(1 + sp.exp(u)) - p * u
    sigma = 1 / (1 + sp.exp(-u))
    for v, xv in ((w1, a), (w2, b)):
        assert sp.simplify(sp.diff(loss, v) - (sigma - p) * xv) == 0
        for v2, xv2 in ((w1, a), (w2, b)):
            assert sp.simplify(sp.diff(loss, v, v2) - sigma * (1 - sigma) * xv * xv2) == 0


def test_softmax_gradient_and_hessian_agree_with_sympy_for_k_3_d_2():
    w = sp.Matrix(3, 2, sp.symbols("w0:6", real=True))
    x = [[1, sp.Rational(-1, 2)], [sp.Rational(2, 3), 2], [-1, 1], [0, 1]]
    labels = [0, 2, 1, 2]
    loss = 0
    for row, k in zip(x, labels, strict=True):
        z = w * sp.Matrix(row)
        loss += sp.log(sum(sp.exp(zk) for zk in z)) - z[k]
    lam = sp.Rational(1, 5)
    loss = loss / 4 + lam / 2 * sum(v**2 for v in w)
    flat = list(w)  # row-major, as W.ravel()
    at = dict(zip(flat, [sp.Rational(v, 10) for v in (3, -2, 5, 1, -4, 7)], strict=True))
    wf = np.array([float(at[v]) for v in flat]).reshape(3, 2)
    xf, tf = np.array(x, dtype=float), np.array(labels)
    assert np.allclose(softmax_regression_grad(wf, xf, tf, l2=0.2).ravel(),
                       [float(sp.diff(loss, v).subs(at).evalf(30)) for v in flat],
                       rtol=1e-13, atol=1e-16)
    assert np.allclose(softmax_regression_hessian(wf, xf, tf, l2=0.2),
                       np.array(sp.hessian(loss, flat).subs(at).evalf(30), dtype=float),
                       rtol=1e-12, atol=1e-16)


# Fits against scikit-learn ------------------------------------------------------------------


def relative_difference(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def breast_cancer():
    features, labels = load_breast_cancer(return_X_y=True)
    standardised = (features - features.mean(axis=0)) / features.std(axis=0)
    return standardised, labels


def test_newton_fit_agrees_with_scikit_learn_on_breast_cancer(breast_cancer):
    z, labels = breast_cancer
    x = add_intercept(z)
    n, d = x.shape
    l2 = np.r_[np.full(d - 1, 1 / n), 0.0]  # C = 1: lambda = 1/(C N), intercept unpenalised
    fit = fit_logistic_regression(x, labels.astype(float), l2=l2)
    assert fit.converged and fit.grad_norms[-1] <= 1e-10
    assert np.all(np.diff(fit.losses) <= 0)
    reference = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    reference.fit(z, labels)
    sk = np.r_[reference.coef_.ravel(), reference.intercept_]
    assert relative_difference(fit.weights, sk) <= 1e-6
    # and the objective: scikit-learn's weights are no better than ours
    y = labels.astype(float)
    assert logistic_regression_loss(fit.weights, x, y, l2=l2) <= (
        logistic_regression_loss(sk, x, y, l2=l2) + 1e-15)


def test_gradient_descent_approaches_the_newton_fit(breast_cancer):
    z, labels = breast_cancer
    x, y = add_intercept(z), labels.astype(float)
    l2 = np.r_[np.full(x.shape[1] - 1, 0.05), 0.0]
    newton = fit_logistic_regression(x, y, l2=l2)
    descent = fit_logistic_regression(x, y, l2=l2, method="gradient-descent", tol=1e-6)
    assert descent.converged
    assert np.all(np.diff(descent.losses) <= 0)  # the step 1/L never increases the loss
    assert descent.losses[-1] - newton.losses[-1] < 1e-10
    assert relative_difference(descent.weights, newton.weights) < 1e-4


def test_softmax_fit_agrees_with_scikit_learn_multinomial_on_iris():
    features, labels = load_iris(return_X_y=True)
    z = (features - features.mean(axis=0)) / features.std(axis=0)
    x = add_intercept(z)
    n, d = x.shape
    l2 = np.r_[np.full(d - 1, 1 / n), 0.0]
    fit = fit_softmax_regression(x, labels, l2=l2)
    assert fit.converged and fit.weights.shape == (3, d)
    reference = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    reference.fit(z, labels)
    sk = np.c_[reference.coef_, reference.intercept_]
    # The intercepts are unpenalised, so both are determined only up to a common shift.
    ours = fit.weights - np.r_[np.zeros(d - 1), fit.weights[:, -1].mean()]
    theirs = sk - np.r_[np.zeros(d - 1), sk[:, -1].mean()]
    assert relative_difference(ours, theirs) <= 1e-6


def test_softmax_gradient_descent_converges_to_the_newton_fit():
    _, x, t, _ = softmax_problem(n=30, d=3, k=3)
    newton = fit_softmax_regression(x, t, l2=0.1)
    descent = fit_softmax_regression(x, t, l2=0.1, method="gradient-descent", tol=1e-9)
    assert newton.converged and descent.converged
    assert relative_difference(descent.weights, newton.weights) < 1e-7


def test_probability_targets_that_are_one_hot_fit_as_labels_do():
    _, x, t, _ = softmax_problem(n=20)
    by_labels = fit_softmax_regression(x, t, l2=0.1)
    by_probabilities = fit_softmax_regression(x, np.eye(3)[t], l2=0.1)
    assert np.allclose(by_labels.weights, by_probabilities.weights, rtol=1e-12, atol=1e-14)


# Separable data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(RNG_SEED)
    points = rng.normal(size=(40, 2))
    side = np.sign(points[:, 0] - points[:, 1])
    points += 0.3 * side[:, None] * np.array([1.0, -1.0])
    return add_intercept(points), (side > 0).astype(float)


def test_newton_on_separable_data_stops_at_max_iter_unconverged(separable):
    x, y = separable
    fit = fit_logistic_regression(x, y, max_iter=60)
    assert not fit.converged and fit.iterations == 60
    assert np.all(np.isfinite(fit.weights)) and np.all(np.diff(fit.losses) < 0)
    assert fit.losses[-1] < 1e-20
    # the weights keep growing: the norm along the iterations increases
    norms = [np.linalg.norm(fit_logistic_regression(x, y, max_iter=k).weights)
             for k in (10, 20, 40, 60)]
    assert np.all(np.diff(norms) > 0)


def test_newton_on_separable_data_stops_when_the_loss_underflows(separable):
    x, y = separable
    fit = fit_logistic_regression(x, y, max_iter=100_000)
    assert not fit.converged and fit.iterations < 100_000
    assert fit.losses[-1] < np.finfo(float).tiny and np.all(np.isfinite(fit.weights))


def test_gradient_descent_on_separable_data_does_not_converge(separable):
    x, y = separable
    fit = fit_logistic_regression(x, y, method="gradient-descent", max_iter=2000)
    assert not fit.converged and fit.iterations == 2000
    assert np.all(np.diff(fit.losses) < 0)


def test_a_penalty_restores_a_minimiser_on_separable_data(separable):
    x, y = separable
    fit = fit_logistic_regression(x, y, l2=1e-3)
    assert fit.converged
    assert np.linalg.norm(logistic_regression_grad(fit.weights, x, y, l2=1e-3)) <= 1e-10


# Behaviour and the result ------------------------------------------------------------------


def test_add_intercept_appends_ones():
    x = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(add_intercept(x), np.c_[x, np.ones(3)])


def test_a_scalar_penalty_is_the_same_as_a_full_array():
    w, x, y, _ = binary_problem()
    assert logistic_regression_loss(w, x, y, l2=0.3) == logistic_regression_loss(
        w, x, y, l2=np.full(w.shape, 0.3))
    assert np.array_equal(logistic_regression_hessian(w, x, y, l2=0.3),
                          logistic_regression_hessian(w, x, y, l2=np.full(w.shape, 0.3)))


def test_float32_input_is_computed_in_float64():
    w, x, y, l2 = binary_problem()
    g32 = logistic_regression_grad(w.astype(np.float32), x.astype(np.float32),
                                   y.astype(np.float32), l2=l2.astype(np.float32))
    assert g32.dtype == np.float64


def test_the_fit_result_is_frozen():
    fit = fit_logistic_regression(np.array([[1.0], [-1.0]]), np.array([0.75, 0.25]))
    assert isinstance(fit, RegressionFit) and fit.converged
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.converged = False
    with pytest.raises(ValueError, match="read-only"):
        fit.weights[0] = 1.0
    assert len(fit.losses) == len(fit.grad_norms) == fit.iterations + 1


def test_confident_predictions_keep_their_tiny_loss_and_gradient():
    # logits of +-40: the naive sigma(u) - y rounds to 0 at u = 40; lossgrad's kernels do not
    x, y = np.array([[40.0], [-40.0]]), np.array([1.0, 0.0])
    tail = 1 / (1 + np.exp(40.0))  # sigma(-40), accurate
    assert logistic_regression_loss(np.array([1.0]), x, y) == pytest.approx(np.log1p(tail),
                                                                             rel=1e-15)
    assert logistic_regression_grad(np.array([1.0]), x, y)[0] == pytest.approx(-40 * tail,
                                                                               rel=1e-14)


# Bad input -----------------------------------------------------------------------------------

W, X, Y, _ = binary_problem()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((W, X[0], Y), {}, ValueError, "features must be a 2-D"),
        ((W, X[:0], Y[:0]), {}, ValueError, "features must have at least one row"),
        ((W, np.where(X > 1, np.nan, X), Y), {}, ValueError, "features must be finite"),
        ((W, X.astype(int), Y), {}, TypeError, "features must be a floating-point"),
        ((W[:-1], X, Y), {}, ValueError, "weights must have shape"),
        ((np.full_like(W, np.inf), X, Y), {}, ValueError, "weights must be finite"),
        ((W, X, Y[:-1]), {}, ValueError, "targets must have shape"),
        ((W, X, Y + 1), {}, ValueError, r"targets must lie in \[0, 1\]"),
        ((W, X, np.full_like(Y, np.nan)), {}, ValueError, "targets must be finite"),
        ((W, X, (Y > 0.5).astype(int)), {}, TypeError, "targets must be a floating-point"),
        ((W, X, Y), {"l2": -1.0}, ValueError, "l2 must be non-negative"),
        ((W, X, Y), {"l2": np.inf}, ValueError, "l2 must be finite"),
        ((W, X, Y), {"l2": np.ones(3)}, ValueError, "l2 of shape"),
        ((W, X, Y), {"l2": True}, TypeError, "l2 must be"),
        ((W, X, Y), {"l2": "0.1"}, TypeError, "l2 must be a floating-point"),
    ],
)
@pytest.mark.parametrize(
    "function", [logistic_regression_loss, logistic_regression_grad, logistic_regression_hessian])
def test_bad_binary_input_is_refused_by_name(function, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(*args, **kwargs)


SW, SX, ST, _ = softmax_problem()


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((SW[0], SX, ST), ValueError, r"weights must have shape \(K, 3\)"),
        ((SW[:, :2], SX, ST), ValueError, r"weights must have shape \(K, 3\)"),
        ((SW, SX, ST[:-1]), ValueError, "class-label targets must have shape"),
        ((SW, SX, ST + 3), ValueError, r"class labels in 0..2; found"),
        ((SW, SX, ST - 1), ValueError, r"class labels in 0..2; found -1"),
        ((SW, SX, np.eye(4)[ST % 4]), ValueError, "probability targets must have shape"),
        ((SW, SX, 2 * np.eye(3)[ST]), ValueError, r"targets must lie in \[0, 1\]"),
        ((SW, SX, ST > 0), TypeError, "targets must be a floating-point"),
        ((SW * np.nan, SX, ST), ValueError, "weights must be finite"),
        ((SW, SX * np.inf, ST), ValueError, "features must be finite"),
    ],
)
@pytest.mark.parametrize(
    "function", [softmax_regression_loss, softmax_regression_grad, softmax_regression_hessian])
def test_bad_softmax_input_is_refused_by_name(function, args, error, match):
    with pytest.raises(error, match=match):
        function(*args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "lbfgs"}, ValueError, "method must be one of"),
        ({"tol": 0.0}, ValueError, "tol must be positive"),
        ({"tol": "1e-8"}, TypeError, "tol must be"),
        ({"max_iter": -1}, ValueError, "max_iter must be non-negative"),
        ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
        ({"step": 0.1}, ValueError, "step is an option of method='gradient-descent'"),
        ({"method": "gradient-descent", "step": -0.1}, ValueError, "step must be positive"),
        ({"l2": -0.1}, ValueError, "l2 must be non-negative"),
    ],
)
@pytest.mark.parametrize("labels", [True, False])
def test_bad_fit_options_are_refused_by_name(kwargs, error, match, labels):
    with pytest.raises(error, match=match):
        if labels:
            fit_softmax_regression(SX, ST, **kwargs)
        else:
            fit_logistic_regression(X, Y, **kwargs)


def test_no_iterations_returns_the_start():
    fit = fit_logistic_regression(X, Y, max_iter=0)
    assert fit.iterations == 0 and not fit.converged and np.array_equal(fit.weights, np.zeros(4))
    assert fit.losses[0] == logistic_regression_loss(np.zeros(4), X, Y) == pytest.approx(
        np.log(2), rel=1e-15)


# Found by probing: edges and bad input -------------------------------------------------------


def _no_warning():
    import warnings

    manager = warnings.catch_warnings()
    manager.__enter__()
    warnings.simplefilter("error")
    return manager


@pytest.mark.parametrize(
    "function", [softmax_regression_loss, softmax_regression_grad, softmax_regression_hessian])
def test_masked_class_labels_are_refused_not_unmasked(function):
    labels = np.ma.masked_array(ST, mask=np.arange(ST.size) == 0)
    with pytest.raises(TypeError, match="targets is a masked array"):
        function(SW, SX, labels)
    with pytest.raises(TypeError, match="targets is a masked array"):
        fit_softmax_regression(SX, labels)


def test_float_targets_of_shape_n_are_told_to_be_integer_labels():
    with pytest.raises(ValueError, match="class labels must be an integer array"):
        softmax_regression_loss(SW, SX, ST.astype(float))


@pytest.mark.parametrize("method", ["newton", "gradient-descent"])
@pytest.mark.parametrize("targets", [np.zeros(8, int), np.zeros((8, 3)), np.ones((8, 1))],
                         ids=["one class", "all-zero probabilities", "K = 1 probabilities"])
def test_a_constant_loss_is_minimised_at_the_start_and_says_so(method, targets):
    # With one class (or all-zero targets) the loss is 0 for every W: W = 0 is a minimiser.
    fit = fit_softmax_regression(SX, targets, method=method)
    assert fit.converged and fit.iterations == 0 and not np.any(fit.weights)
    fit = fit_softmax_regression(SX, targets, method=method, l2=0.5)
    assert fit.converged and fit.iterations == 0


@pytest.mark.parametrize("method", ["newton", "gradient-descent"])
def test_a_huge_label_is_refused_before_any_memory_is_taken(method):
    labels = ST.copy()
    labels[0] = 2**40  # K = 2^40 + 1 classes: terabytes of weights
    with pytest.raises(ValueError, match="K = 1099511627777 classes"):
        fit_softmax_regression(SX, labels, method=method)


def test_newtons_hessian_of_too_many_weights_is_refused_but_gradient_descent_runs():
    labels = ST.copy()
    labels[0] = 5000  # K d = 15003 weights: a Hessian of 2.3e8 numbers
    with pytest.raises(ValueError, match="Hessian"):
        fit_softmax_regression(SX, labels)
    fit = fit_softmax_regression(SX, labels, method="gradient-descent", max_iter=2)
    assert fit.weights.shape == (5001, 3)


@pytest.mark.parametrize("method", ["newton", "gradient-descent"])
@pytest.mark.parametrize("softmax", [False, True])
def test_features_too_large_for_the_hessian_are_refused_by_name(method, softmax):
    manager = _no_warning()
    try:
        with pytest.raises(ValueError, match="features are too large"):
            if softmax:
                fit_softmax_regression(SX * 1e200, ST, method=method)
            else:
                fit_logistic_regression(X * 1e200, Y, method=method)
        with pytest.raises(ValueError, match="features are too large"):
            if softmax:
                softmax_regression_hessian(SW * 1e-300, SX * 1e160, ST)
            else:
                logistic_regression_hessian(W * 1e-300, X * 1e155, Y)
    finally:
        manager.__exit__(None, None, None)


def test_a_hessian_entry_near_the_largest_float_is_not_overflowed_by_symmetrising():
    a = 1.5 * 2.0**512
    manager = _no_warning()
    try:
        h = logistic_regression_hessian(np.zeros(2), np.array([[a, a]]), np.array([1.0]))
    finally:
        manager.__exit__(None, None, None)
    np.testing.assert_array_equal(h, np.full((2, 2), 0.5625 * 2.0**1023 * 2))


def test_overflowing_logits_and_penalty_give_the_limits_without_a_warning():
    manager = _no_warning()
    try:
        # logits of 3e600: a certain, right prediction, loss 0
        assert logistic_regression_loss(np.full(3, 1e300), np.full((2, 3), 1e300),
                                        np.ones(2)) == 0.0
        # a penalty of (1/2) 1e614: beyond the floats, inf
        assert logistic_regression_loss(W * 1e307, X, Y, l2=1.0) == np.inf
    finally:
        manager.__exit__(None, None, None)


@pytest.mark.parametrize("softmax", [False, True])
def test_a_step_too_large_stops_unconverged_before_the_objective_overflows(softmax):
    manager = _no_warning()
    try:
        if softmax:
            fit = fit_softmax_regression(SX, ST, l2=0.1, method="gradient-descent", step=1e3,
                                         max_iter=10_000)
        else:
            fit = fit_logistic_regression(X, Y, l2=0.1, method="gradient-descent", step=100.0,
                                          max_iter=10_000)
    finally:
        manager.__exit__(None, None, None)
    assert not fit.converged and fit.iterations < 10_000
    assert np.all(np.isfinite(fit.losses)) and np.all(np.isfinite(fit.weights))


@pytest.mark.parametrize("softmax", [False, True])
def test_newtons_method_does_not_take_the_svd_of_the_features(monkeypatch, softmax):
    # ||X||_2 (an SVD) is only needed for gradient descent's default step; on the
    # breast-cancer data it took most of the Newton fit's time.
    def refuse(*args, **kwargs):
        raise AssertionError("np.linalg.norm called")

    monkeypatch.setattr(np.linalg, "norm", refuse)
    fit = fit_softmax_regression(SX, ST, l2=0.1) if softmax else fit_logistic_regression(
        X, Y, l2=0.1)
    assert fit.converged
