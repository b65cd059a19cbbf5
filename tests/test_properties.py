"""Property tests: random inputs (hypothesis) against independent oracles in mpmath.

Each expected value comes from a defining formula evaluated at 40 digits, or from an identity
the book proves, never from the function under test.
"""

import math

import mpmath
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lossgrad as lg

settings.register_profile(
    "lossgrad", max_examples=150, deadline=None, derandomize=True, database=None
)
settings.load_profile("lossgrad")

logits = st.floats(-500, 500, allow_nan=False, allow_subnormal=False)
probabilities = st.floats(0, 1, allow_nan=False)
weights = st.floats(0, 10, allow_nan=False)


def _mp(x):
    # Keep an mpf as it is: mpmath.diff evaluates at points that float() would round away.
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(float(x))


def exact_bce(u, p, w=1, pw=1):
    # -w[pw p log sigma(u) + (1-p) log(1 - sigma(u))], with -log sigma(±u) = log(1 + e^∓u)
    # evaluated directly: at 40 digits, log sigma(u) - u would cancel for u << 0.
    u, p, w, pw = (_mp(x) for x in (u, p, w, pw))
    return w * (pw * p * mpmath.log1p(mpmath.exp(-u)) + (1 - p) * mpmath.log1p(mpmath.exp(u)))


def close(computed, exact, ulps=4, kappa=1.0):
    """Within ulps·max(1, kappa) units in the last place of the exact value (float64)."""
    exact_f = float(exact)
    tolerance = ulps * max(1.0, kappa) * math.ulp(abs(exact_f)) if exact_f else 5e-324
    return abs(mpmath.mpf(float(computed)) - exact) <= tolerance


# The hard corners, tried every run: tails where sigma(u) - 1 rounds to 0, and tiny gradients
# near u = 0 with p = 1/2.
@example(40.0, 1.0)
@example(300.0, 1.0)
@example(-40.0, 0.0)
@example(1e-10, 0.5)
@example(-3e-9, 0.5)
@given(logits, probabilities)
def test_bce_gradient_is_the_derivative_of_the_exact_loss(u, p):
    exact = mpmath.diff(lambda x: exact_bce(x, p), mpmath.mpf(u))
    sig = 1 / (1 + mpmath.exp(-mpmath.mpf(u)))
    kappa = float(abs(u * sig * (1 - sig) / exact)) if exact else 1.0
    computed = lg.bce_with_logits_grad(np.array([u]), np.array([p]), reduction="none")[0]
    assert close(computed, exact, ulps=4, kappa=kappa), (u, p, computed, exact)


@example(40.0, 0.999)
@example(-745.0, 0.0)
@given(logits, probabilities)
def test_bce_loss_within_two_ulp_of_the_exact_loss(u, p):
    computed = lg.bce_with_logits(np.array([u]), np.array([p]), reduction="none")[0]
    assert close(computed, exact_bce(u, p), ulps=2)


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
    assert close(loss, exact_bce(u, p, w, pw), ulps=6)
    grad = lg.bce_with_logits_grad(*args, **options)[0]
    exact = mpmath.diff(lambda x: exact_bce(x, p, w, pw), mpmath.mpf(u))
    # Condition number of w[(1-p) s - pw p (1-s)] with respect to u.
    s = 1 / (1 + mpmath.exp(-mpmath.mpf(u)))
    slope = abs(w * ((1 - p) + pw * p) * s * (1 - s) * u)
    kappa = float(slope / abs(exact)) if exact else 1.0
    assert close(grad, exact, ulps=8, kappa=kappa), (u, p, w, pw, grad, exact)


rows = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-60, 60, allow_nan=False), min_size=k, max_size=k),
        st.integers(0, k - 1),
        st.floats(0, 1, allow_nan=False),
    )
)


def exact_softmax_ce_grad(z, target, smoothing=0.0):
    z = [mpmath.mpf(v) for v in z]
    k = len(z)
    y = [(1 - mpmath.mpf(smoothing)) * (i == target) + mpmath.mpf(smoothing) / k for i in range(k)]
    m = max(z)
    e = [mpmath.exp(v - m) for v in z]
    total = mpmath.fsum(e)
    loss = mpmath.fsum(y[i] * (mpmath.log(total) - (z[i] - m)) for i in range(k))
    grad = [e[i] / total - y[i] for i in range(k)]
    return loss, grad


@given(rows)
def test_softmax_cross_entropy_and_gradient_against_mpmath(row):
    z, target, smoothing = row
    loss, grad = lg.softmax_cross_entropy_and_grad(
        np.array([z]), np.array([target]), label_smoothing=smoothing, reduction="none"
    )
    exact_loss, exact_grad = exact_softmax_ce_grad(z, target, smoothing)
    scale = max(1.0, max(abs(v) for v in z))  # the condition number grows with |z|
    assert close(loss[0], exact_loss, ulps=8, kappa=scale)
    for computed, exact in zip(grad[0], exact_grad, strict=True):
        # An absolute floor: a gradient entry is a difference of probabilities of size <= 1.
        assert abs(float(computed) - float(exact)) <= 16 * scale * 2**-53 * max(
            abs(float(exact)), 2**-30
        ) or close(computed, exact, ulps=8, kappa=scale)


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


def _ulp32(value: float) -> float:
    return float(np.spacing(np.float32(abs(value)))) if value else float(np.spacing(np.float32(0)))


@example(40.0, 1.0)
@example(1e-6, 0.5)
@given(
    st.floats(-80, 80, width=32, allow_nan=False, allow_subnormal=False),
    st.floats(0, 1, width=32, allow_nan=False),
)
def test_float32_results_within_one_ulp_of_float32(u, p):
    u32, p32 = np.array([u], dtype=np.float32), np.array([p], dtype=np.float32)
    loss, grad = lg.bce_with_logits_and_grad(u32, p32, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    exact_loss = exact_bce(float(u32[0]), float(p32[0]))
    e = mpmath.exp(-mpmath.mpf(float(u32[0])))
    exact_grad = ((1 - mpmath.mpf(float(p32[0]))) - mpmath.mpf(float(p32[0])) * e) / (1 + e)
    assert abs(mpmath.mpf(float(loss[0])) - exact_loss) <= _ulp32(float(exact_loss))
    assert abs(mpmath.mpf(float(grad[0])) - exact_grad) <= _ulp32(float(exact_grad))
