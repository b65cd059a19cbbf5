"""Property tests: random inputs (hypothesis) against the independent oracle, lossgrad.accuracy.

Each expected value comes from a defining formula evaluated in mpmath, or from an identity the
book proves, never from the function under test. Tolerances are stated in ULPs times the
condition number kappa of the quantity (an error of about kappa ULPs is inherent in the data).
The hypothesis profile is set in conftest.py.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

import lossgrad as lg
from lossgrad.accuracy import (
    bce_grad_condition,
    exact_bce,
    exact_bce_grad,
    exact_softmax_cross_entropy,
    softmax_cross_entropy_condition,
    ulps,
)

logits = st.floats(-500, 500, allow_nan=False, allow_subnormal=False)
probabilities = st.floats(0, 1, allow_nan=False)
weights = st.floats(0, 10, allow_nan=False)

# The float64 bounds stated in "Floating point" (measured there, not proved): the gradient within
# C_GRAD max(1, kappa) ULP, kappa the condition number with respect to the logit, and the loss
# within LOSS_ULP ULP. A float32 loss is the float64 one rounded once: half a float32 ULP more, and
# a float64 ULP is 2^-29 of a float32 ULP. A float32 gradient is computed in float32 arithmetic:
# within C_GRAD_32 max(1, kappa) float32 ULP (also measured there).
C_GRAD, LOSS_ULP, C_GRAD_32 = 5, 3, 5


def bce_condition(u, p, w=1.0, pw=1.0) -> float:
    """Relative condition number of the binary gradient w[(1-p)s - pw p (1-s)] in u."""
    u = mpmath.mpf(u)
    s = 1 / (1 + mpmath.exp(-u))
    exact = exact_bce_grad(u, p, w, pw)
    slope = abs(w * ((1 - p) + pw * p) * s * (1 - s) * u)
    return float(slope / abs(exact)) if exact else 1.0


# The hard corners, tried every run: tails where sigma(u) - 1 rounds to 0, and tiny gradients
# near u = 0 with p = 1/2.
@example(40.0, 1.0)
@example(300.0, 1.0)
@example(-40.0, 0.0)
@example(1e-10, 0.5)
@example(-3e-9, 0.5)
@example(1.8927629026514224e-206, 0.5)  # the gradient u/4, far below 10^-50
# Where a rounded 1 - p and the error of sigma(-u) line up (over 4 max(1, kappa) ULP).
@example(1.034, 0.49999999999999994)
@example(1.0325583726953715, 0.4999999999988927)
@given(logits, probabilities)
def test_bce_gradient_is_the_derivative_of_the_exact_loss(u, p):
    exact = exact_bce_grad(u, p)
    if abs(u) > 1e-6 and abs(exact) > 1e-30:
        # The oracle is the derivative of the loss (where a difference quotient resolves it).
        derivative = mpmath.diff(lambda x: exact_bce(x, p), mpmath.mpf(u))
        assert abs(derivative - exact) <= 1e-20 * abs(exact), (u, p, derivative, exact)
    computed = lg.bce_with_logits_grad(np.array([u]), np.array([p]), reduction="none")[0]
    bound = C_GRAD * max(1.0, bce_condition(u, p))
    assert ulps(computed, exact) <= bound, (u, p, computed, exact)


@example(40.0, 0.999)
@example(-745.0, 0.0)
@example(1.2585140231390608, 0.4999999999830416)  # over 2 ULP
@given(logits, probabilities)
def test_bce_loss_within_the_stated_bound_of_the_exact_loss(u, p):
    computed = lg.bce_with_logits(np.array([u]), np.array([p]), reduction="none")[0]
    assert ulps(computed, exact_bce(u, p)) <= LOSS_ULP


@given(logits, st.integers(0, 2**20).map(lambda n: n / 2**20))
def test_bce_is_symmetric_under_swapping_the_classes(u, p):
    # p on a grid of 2^-20, so that 1 - p is exact and both sides see the same inputs.
    one = lg.bce_with_logits(np.array([u]), np.array([p]), reduction="none")[0]
    other = lg.bce_with_logits(np.array([-u]), np.array([1 - p]), reduction="none")[0]
    # Each is within 2 ulps of the same exact value.
    assert math.isclose(one, other, rel_tol=4 * 2**-52, abs_tol=1e-300)


@given(logits, probabilities)
def test_bce_is_softmax_cross_entropy_of_two_logits(u, p):
    binary = lg.bce_with_logits(np.array([u]), np.array([p]), reduction="none")[0]
    softmax = lg.softmax_cross_entropy(
        np.array([[u, 0.0]]), np.array([[p, 1 - p]]), reduction="none"
    )[0]
    assert math.isclose(binary, softmax, rel_tol=8e-16, abs_tol=1e-300)


@given(logits, st.floats(0.001, 0.999))
def test_bce_is_at_least_the_entropy_of_the_target(u, p):
    entropy = -(p * math.log(p) + (1 - p) * math.log1p(-p))
    loss = lg.bce_with_logits(np.array([u]), np.array([p]), reduction="none")[0]
    assert loss >= entropy * (1 - 1e-15)


@given(logits, probabilities, weights, weights)
def test_weight_and_pos_weight_match_their_definition(u, p, w, pw):
    args = (np.array([u]), np.array([p]))
    options = {"weight": np.array([w]), "pos_weight": np.array([pw]), "reduction": "none"}
    loss = lg.bce_with_logits(*args, **options)[0]
    assert ulps(loss, exact_bce(u, p, w, pw)) <= 6
    grad = lg.bce_with_logits_grad(*args, **options)[0]
    exact = mpmath.diff(lambda x: exact_bce(x, p, w, pw), mpmath.mpf(u))
    assert ulps(grad, exact) <= 8 * max(1.0, bce_condition(u, p, w, pw)), (u, p, w, pw, grad)


rows = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-60, 60, allow_nan=False), min_size=k, max_size=k),
        st.integers(0, k - 1),
        st.floats(0, 1, allow_nan=False),
    )
)


def smoothed_targets(k, target, smoothing):
    eps = mpmath.mpf(smoothing)
    return [(1 - eps) * (i == target) + eps / k for i in range(k)]


@given(rows)
def test_softmax_cross_entropy_and_gradient_against_mpmath(row):
    z, target, smoothing = row
    loss, grad = lg.softmax_cross_entropy_and_grad(
        np.array([z]), np.array([target]), label_smoothing=smoothing, reduction="none"
    )
    t = smoothed_targets(len(z), target, smoothing)
    exact_loss, exact_grad = exact_softmax_cross_entropy(z, t)
    kappa_loss, kappa_grad = softmax_cross_entropy_condition(z, t)
    assert ulps(loss[0], exact_loss) <= 8 * max(1.0, kappa_loss)
    # Every entry relative to itself, with no absolute floor: a kernel that flushed a tiny
    # probability to 0 would be infinitely many ULPs off. The smoothed targets eps/K are
    # rounded in float64 too, so their condition (|t_i| + sum(t) s_i) / |g_i| counts as well.
    s = [float(g) + float(ti) for g, ti in zip(exact_grad, t, strict=True)]  # (sum t)·s_i
    for computed, exact, kappa, ti, si in zip(grad[0], exact_grad, kappa_grad, t, s, strict=True):
        kappa_t = (abs(float(ti)) + abs(si)) / abs(float(exact)) if exact else 0.0
        assert ulps(computed, exact) <= 8 * max(1.0, kappa + kappa_t), (computed, exact, kappa)


@example(([-60.0, 0.0, 60.0], 0, 0.0))
@given(rows)
def test_tiny_probabilities_are_kept_in_the_gradient(row):
    # A gradient entry e^{-120} next to the target: relative accuracy, not an absolute floor.
    z, target, _ = row
    grad = lg.softmax_cross_entropy_grad(np.array([z]), np.array([target]), reduction="none")[0]
    _, exact_grad = exact_softmax_cross_entropy(z, target)
    for computed, exact in zip(grad, exact_grad, strict=True):
        if exact != 0:
            assert computed != 0 and np.sign(computed) == np.sign(float(exact))


@given(
    st.lists(st.integers(-400, 400), min_size=2, max_size=8),
    st.integers(-10**6, 10**6),
    st.data(),
)
def test_softmax_cross_entropy_is_exactly_invariant_to_a_common_shift(values, shift, data):
    # Logits on a grid of 1/8 and an integer shift: z + c is exact, so the result must be too.
    z = np.array(values, dtype=np.float64) / 8
    target = data.draw(st.integers(0, len(values) - 1))
    t = np.array([target])
    assert np.array_equal(
        lg.softmax_cross_entropy_and_grad(z[None], t, reduction="none")[1],
        lg.softmax_cross_entropy_and_grad((z + shift)[None], t, reduction="none")[1],
    )
    assert lg.softmax_cross_entropy(z[None], t) == lg.softmax_cross_entropy((z + shift)[None], t)


@given(rows)
def test_softmax_cross_entropy_is_at_least_the_entropy_of_the_target(row):
    z, target, smoothing = row
    k = len(z)
    y = np.full(k, smoothing / k)
    y[target] += 1 - smoothing
    entropy = -sum(v * math.log(v) for v in y if v > 0)
    loss = lg.softmax_cross_entropy(np.array([z]), y[None], reduction="none")[0]
    assert loss >= entropy - 1e-14 * max(1.0, entropy)


def test_class_weight_and_mean_follow_pytorch():
    # PyTorch: with class-index targets, the weighted mean divides by the targets' total weight.
    z = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    t = np.array([0, 2])
    w = np.array([0.5, 2.0, 3.0])
    per_row = [float(w[c] * (mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row)) - row[c]))
               for row, c in zip(z.tolist(), t.tolist(), strict=True)]
    expected = sum(per_row) / (w[0] + w[2])
    assert math.isclose(lg.softmax_cross_entropy(z, t, weight=w), expected, rel_tol=1e-15)
    assert math.isclose(
        lg.softmax_cross_entropy(z, t, weight=w, reduction="sum"), sum(per_row), rel_tol=1e-15
    )


@example(40.0, 1.0)
@example(1e-6, 0.5)
# Near a minimum: kappa about 8e12, the gradient thousands of float32 ULPs off, within the bound.
@example(float(np.float32(-1.8944587)), float(np.float32(0.13073693)))
# The largest float32 errors measured in "Floating point" and by a reviewer, near the switch at
# |u| = 1.25 (a rounded 1/2 - p for p < 1/4).
@example(float(np.float32(-1.1251277)), float(np.float32(0.18429302)))
@example(float(np.float32(1.0261612)), float(np.float32(0.49791637)))
@example(float(np.float32(-1.0991976)), float(np.float32(0.21864031)))
@example(float(np.float32(-1.1030346)), float(np.float32(0.2491722)))
@given(
    st.floats(-80, 80, width=32, allow_nan=False, allow_subnormal=False),
    st.floats(0, 1, width=32, allow_nan=False),
)
def test_float32_results_within_the_stated_bound(u, p):
    u32, p32 = np.array([u], dtype=np.float32), np.array([p], dtype=np.float32)
    loss, grad = lg.bce_with_logits_and_grad(u32, p32, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    exact_loss = exact_bce(float(u32[0]), float(p32[0]))
    exact_grad = exact_bce_grad(float(u32[0]), float(p32[0]))
    kappa = bce_grad_condition(float(u32[0]), float(p32[0]))
    assert ulps(float(loss[0]), exact_loss, np.float32) <= 0.5 + LOSS_ULP * 2.0**-29
    grad_bound = C_GRAD_32 * max(1.0, kappa)
    assert ulps(float(grad[0]), exact_grad, np.float32) <= grad_bound, (u, p, kappa)


# Issue 8, section 2: the property tests widened to the inputs that used to go wrong.

any_logit = st.floats(allow_nan=False)  # every finite float, and ±inf


@example(np.inf, 1.0)
@example(-np.inf, 0.0)
@example(1.7e308, 0.0)
@given(any_logit, probabilities)
def test_bce_of_any_logit_is_never_nan_and_finite_for_finite_logits(u, p):
    loss, grad = lg.bce_with_logits_and_grad(np.array([u]), np.array([p]), reduction="none")
    assert not np.isnan(loss[0]) and not np.isnan(grad[0])
    assert -1 <= grad[0] <= 1
    if math.isfinite(u):
        assert math.isfinite(loss[0])
    else:
        # The limit: 0 if the term the infinite logit drives has zero weight, inf otherwise.
        weight = (1 - p) if u > 0 else p
        assert loss[0] == (math.inf if weight > 0 else 0.0)
        assert grad[0] == ((1 - p) if u > 0 else -p)


def within_half_ulp(computed: float, exact: Fraction) -> bool:
    """Within half an ULP of the exact value, plus 1e-26 of it (the reduction's stated bound)."""
    rounded = float(exact)
    if math.isinf(rounded):
        return computed == rounded
    slack = Fraction(math.ulp(rounded)) / 2 + exact * Fraction(1, 10**26)
    return abs(Fraction(float(computed)) - exact) <= slack


@example([0.0, 4.421258128499177e307, 1.0610111224654594e308, 1.480532277601449e308])
@given(st.lists(st.floats(0, 1.7e308), min_size=1, max_size=40))
def test_the_mean_of_any_finite_losses_is_finite_and_the_exact_mean_rounded(magnitudes):
    # Losses of u >= 0 with p = 0 are u + log1p(e^-u); the reduction adds them accurately, then
    # rounds once (the sum may overflow to inf; the mean may not). The example's exact mean
    # lies 2^-1020 of itself from a tie.
    u = np.array(magnitudes)
    p = np.zeros_like(u)
    per_element = lg.bce_with_logits(u, p, reduction="none")
    exact = sum(Fraction(float(v)) for v in per_element)
    mean = lg.bce_with_logits(u, p)
    assert math.isfinite(mean) and within_half_ulp(mean, exact / len(u))
    total = lg.bce_with_logits(u, p, reduction="sum")
    if exact < Fraction(np.finfo(np.float64).max):
        assert within_half_ulp(total, exact)
    else:
        assert total == math.inf


special_logits = st.one_of(st.floats(-50, 50), st.sampled_from([np.inf, -np.inf, 1e308, -1e308]))


@given(st.lists(special_logits, min_size=2, max_size=8), st.data())
def test_softmax_family_of_rows_with_infinities_is_never_nan(row, data):
    z = np.array(row)
    s = lg.softmax(z)
    assert not np.any(np.isnan(s)) and math.isclose(np.sum(s), 1.0, rel_tol=1e-14)
    assert not np.isnan(lg.logsumexp(z))
    assert not np.any(np.isnan(lg.log_softmax(z)))
    target = data.draw(st.integers(0, len(row) - 1))
    loss, grad = lg.softmax_cross_entropy_and_grad(z[None], np.array([target]), reduction="none")
    assert not np.isnan(loss[0]) and not np.any(np.isnan(grad))


@given(
    st.one_of(
        st.none(), st.text(max_size=3), st.complex_numbers(), st.booleans(),
        st.floats(), st.integers(-3, 3), st.lists(st.floats(0, 1), max_size=2),
    )
)
def test_label_smoothing_is_a_real_number_in_zero_one_or_a_clear_error(value):
    call = lambda: lg.softmax_cross_entropy(  # noqa: E731
        np.zeros((1, 3)), np.array([0]), label_smoothing=value
    )
    real = isinstance(value, int | float) and not isinstance(value, bool)
    if real and 0 <= value <= 1:
        assert math.isfinite(call())
    else:
        with np.testing.assert_raises_regex((TypeError, ValueError), "label_smoothing"):
            call()


@given(
    st.sampled_from([np.float16, np.longdouble, np.int64, np.bool_, np.complex128]),
    st.sampled_from(["logits", "targets", "weight", "pos_weight"]),
)
def test_inputs_of_any_type_but_float32_and_float64_are_refused_by_name(dtype, name):
    arguments = {"logits": np.zeros(3), "targets": np.zeros(3)}
    arguments[name] = np.zeros(3, dtype=dtype)
    positional = (arguments.pop("logits"), arguments.pop("targets"))
    with np.testing.assert_raises_regex(TypeError, name):
        lg.bce_with_logits(*positional, **arguments)
