"""Every input gets a clear answer: the edge cases of issue 8, section 2, one test each.

Each test failed on the code before that issue was fixed (the docstring of each says what it
did then). Expected values come from IEEE rules, mathematical limits or mpmath, never from the
function under test.
"""

import math

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import bce_grad_condition, exact_bce, exact_bce_grad
from lossgrad.gradcheck import central_difference, check_gradient, complex_step

# Finite input that overflows the reduction.


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_sum_beyond_the_float_range_is_inf_and_the_mean_is_finite(dtype):
    # Was: OverflowError from math.fsum (float64); inf for the mean too.
    big = np.finfo(dtype).max / 2 * 1.5  # two of these exceed the largest float
    u = np.array([big, big], dtype=dtype)
    p = np.zeros(2, dtype=dtype)
    total = lg.bce_with_logits(u, p, reduction="sum")
    mean = lg.bce_with_logits(u, p)
    assert total == np.inf and type(total) is dtype
    assert mean == big and type(mean) is dtype


def test_softmax_sum_beyond_the_float_range_is_inf_and_the_mean_is_finite():
    z = np.array([[1e308, 0.0], [1e308, 0.0]])
    t = np.array([1, 1])  # each row's loss is 1e308 exactly (log1p of 0, plus the gap)
    assert lg.softmax_cross_entropy(z, t, reduction="sum") == np.inf
    assert lg.softmax_cross_entropy(z, t) == 1e308


def test_a_sum_of_huge_and_tiny_losses_is_the_exact_sum_rounded_once():
    # 1e308 and many losses of 2^-30: the huge one sends its block to the scaled lanes.
    u = np.concatenate([[1e308], np.full(3, -20.0)])
    p = np.zeros(4)
    exact = sum(exact_bce(float(a), 0.0) for a in u)
    assert lg.bce_with_logits(u, p, reduction="sum") == float(exact)


# Types that would be computed in float64 and returned in another precision, or a mask dropped.


@pytest.mark.parametrize(
    "call",
    [
        lambda x: lg.bce_with_logits(x, np.zeros(x.shape, x.dtype)),
        lambda x: lg.bce_with_logits_grad(x, np.zeros(x.shape, x.dtype)),
        lambda x: lg.bce_with_logits(np.zeros(x.shape), x),
        lambda x: lg.bce_with_logits(np.zeros(x.shape), np.zeros(x.shape), weight=x),
        lambda x: lg.softmax_cross_entropy(x.reshape(-1, 2), np.zeros(x.size // 2, dtype=int)),
        lg.sigmoid,
        lg.softplus,
        lg.log_sigmoid,
        lg.logit,
        lg.softmax,
        lg.log_softmax,
        lg.logsumexp,
    ],
)
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_float16_and_longdouble_are_refused_by_name(call, dtype):
    # Was: accepted; float16's mean divisor overflowed, longdouble came back claiming digits.
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        call(np.zeros(4, dtype=dtype))


def test_the_float16_mean_gradient_of_70000_zeros_is_refused_rather_than_zero():
    # Was: 0.0, because 70 000 overflows float16 (the right value is 1/(2·70 000) = 7.15e-6).
    with pytest.raises(TypeError, match="float16"):
        lg.bce_with_logits_grad(np.zeros(70_000, np.float16), np.zeros(70_000, np.float16))


@pytest.mark.parametrize(
    "call",
    [
        lambda m: lg.bce_with_logits(m, np.zeros(3)),
        lambda m: lg.bce_with_logits(np.zeros(3), m),
        lambda m: lg.bce_with_logits(np.zeros(3), np.zeros(3), weight=m),
        lambda m: lg.softmax_cross_entropy(m[None], np.array([0])),
        lg.sigmoid,
        lg.softmax,
    ],
)
def test_masked_arrays_are_refused_rather_than_their_mask_ignored(call):
    masked = np.ma.masked_array([0.5, 0.25, 0.75], mask=[False, True, False])
    with pytest.raises(TypeError, match="masked"):
        call(masked)


# label_smoothing must be a real number.


@pytest.mark.parametrize("value", [None, "0.1", 0.1 + 0j, np.array([0.1]), True, np.True_])
def test_label_smoothing_of_the_wrong_type_is_a_type_error_naming_it(value):
    # Was: "'<=' not supported between 'float' and 'NoneType'", or accepted (array, True).
    with pytest.raises(TypeError, match="label_smoothing"):
        lg.softmax_cross_entropy(np.zeros((1, 2)), np.array([0]), label_smoothing=value)


@pytest.mark.parametrize("value", [0, 1, np.float32(0.25), 0.5])
def test_label_smoothing_accepts_real_numbers(value):
    loss = lg.softmax_cross_entropy(np.zeros((1, 2)), np.array([0]), label_smoothing=value)
    assert loss == pytest.approx(math.log(2))


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_label_smoothing_outside_zero_one_is_a_value_error(value):
    with pytest.raises(ValueError, match="label_smoothing"):
        lg.softmax_cross_entropy(np.zeros((1, 2)), np.array([0]), label_smoothing=value)


# Weights must be finite.


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_a_non_finite_binary_weight_is_a_value_error_naming_it(name, bad):
    # Was: accepted, and the loss was NaN.
    w = np.array([1.0, bad])
    with pytest.raises(ValueError, match=name):
        lg.bce_with_logits(np.zeros(2), np.full(2, 0.5), **{name: w})


def test_a_nan_class_weight_is_refused_even_on_a_class_no_row_targets():
    # Was: every row's loss became NaN, though no row targets class 2.
    w = np.array([1.0, 1.0, np.nan])
    with pytest.raises(ValueError, match="weight"):
        lg.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=w, reduction="none")


# Infinite logits give the mathematical limits, without a warning (pytest turns warnings into
# errors), never NaN.


@pytest.mark.parametrize(
    ("u", "p", "loss", "grad"),
    [
        (np.inf, 1.0, 0.0, 0.0),
        (-np.inf, 0.0, 0.0, 0.0),
        (np.inf, 0.25, np.inf, 0.75),
        (-np.inf, 0.25, np.inf, -0.25),
    ],
)
def test_bce_at_infinite_logits_is_the_limit(u, p, loss, grad):
    # Was: NaN with a RuntimeWarning for the first two.
    value, slope = lg.bce_with_logits_and_grad(np.array([u]), np.array([p]), reduction="none")
    assert value[0] == loss and slope[0] == grad


def test_bce_at_infinite_logits_with_weights_is_the_limit():
    u = np.array([np.inf, np.inf, -np.inf, -np.inf])
    p = np.array([0.5, 0.5, 0.5, 1.0])
    w = np.array([0.0, 2.0, 1.0, 1.0])
    pw = np.array([1.0, 1.0, 0.0, 3.0])
    loss, grad = lg.bce_with_logits_and_grad(u, p, weight=w, pos_weight=pw, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, np.inf, 0.0, np.inf])
    # w (1 - p) at +inf, -w pw p at -inf.
    np.testing.assert_array_equal(grad, [0.0, 1.0, 0.0, -3.0])


def test_softmax_family_at_infinite_logits_is_the_limit():
    # Was: NaN with a RuntimeWarning.
    np.testing.assert_array_equal(lg.softmax(np.array([np.inf, 0.5])), [1.0, 0.0])
    np.testing.assert_array_equal(lg.log_softmax(np.array([np.inf, 0.5])), [0.0, -np.inf])
    np.testing.assert_array_equal(lg.softmax(np.array([np.inf, np.inf, 0.0])), [0.5, 0.5, 0.0])
    assert lg.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert lg.logsumexp(np.array([np.inf, 0.0])) == np.inf
    np.testing.assert_array_equal(lg.softmax(np.full(4, -np.inf)), np.full(4, 0.25))


def test_softmax_cross_entropy_at_infinite_logits_is_the_limit():
    z = np.array([[np.inf, 0.5, -1.0], [0.0, -np.inf, 1.0], [np.inf, 0.0, 0.0]])
    t = np.array([0, 1, 1])
    loss, grad = lg.softmax_cross_entropy_and_grad(z, t, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, np.inf, np.inf])
    np.testing.assert_array_equal(grad[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grad[2], [1.0, -1.0, 0.0])
    # Smoothing puts mass on a class at -inf: infinite loss; probability targets with a zero
    # there: finite.
    assert lg.softmax_cross_entropy(z[1:2], t[1:2] * 0, label_smoothing=0.1) == np.inf
    y = np.array([[0.0, 0.0, 1.0]])
    assert lg.softmax_cross_entropy(z[1:2], y) == pytest.approx(math.log1p(math.exp(-1.0)))


# logit near 1/2.


def test_logit_is_within_one_ulp_near_one_half_and_everywhere():
    # Was: up to ~400 ULP near 1/2 (log q - log1p(-q) subtracts two numbers near -log 2).
    q = np.concatenate([
        0.5 + np.ldexp(1.0, -np.arange(2, 53)),
        0.5 - np.ldexp(1.0, -np.arange(2, 54)),
        np.linspace(0.001, 0.999, 499),
        [1e-300, 1e-20, 0.2499999, 0.25, 0.2500001, 1 - 2.0**-53, 1 - 2.0**-30],
    ])
    computed = lg.logit(q)
    for c, x in zip(computed, q, strict=True):
        exact = mpmath.log(mpmath.mpf(x) / (1 - mpmath.mpf(x)))
        assert abs(mpmath.mpf(float(c)) - exact) <= math.ulp(float(exact)), x


# One rule for return types.


def test_zero_dimensional_results_are_numpy_scalars_of_the_input_type():
    # Was: sigmoid(0.5) a 0-d array, softplus(0.5) a NumPy scalar, logsumexp a 0-d array.
    for f in (lg.sigmoid, lg.softplus, lg.log_sigmoid, lg.logit):
        assert type(f(0.5)) is np.float64, f
        assert type(f(np.float32(0.5))) is np.float32, f
    assert type(lg.logsumexp(np.array([1.0, 2.0]))) is np.float64
    u, p = np.array([0.5, 2.0], np.float32), np.array([0.5, 1.0], np.float32)
    for reduction in ("mean", "sum"):
        assert type(lg.bce_with_logits(u, p, reduction=reduction)) is np.float32
        assert type(lg.softmax_cross_entropy(u[None], np.array([0]), reduction=reduction)) is (
            np.float32
        )
    assert isinstance(lg.bce_with_logits(u, p, reduction="none"), np.ndarray)
    assert isinstance(lg.bce_with_logits_grad(u, p), np.ndarray)


# The checking tools refuse what they cannot check.


def test_check_gradient_refuses_a_gradient_of_the_wrong_shape():
    # Was: broadcast silently, and compared one number with every coordinate.
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        check_gradient(lambda v: float(np.sum(v**2)), np.array([1.0]), x)


@pytest.mark.parametrize("step", [0.0, -1e-6, np.nan, np.inf, 1e-30])
def test_central_difference_refuses_a_step_that_does_not_move_x(step):
    # Was: NaN with a RuntimeWarning for step=0.
    with pytest.raises(ValueError, match="step"):
        central_difference(np.sin, np.array([1.0]), step=step)


def test_complex_step_and_central_difference_still_work():
    estimate = central_difference(np.sin, np.array([1.0]), step=1e-5)
    assert estimate[0] == pytest.approx(math.cos(1.0), rel=1e-9)
    assert complex_step(np.sin, np.array([1.0]))[0] == pytest.approx(math.cos(1.0), rel=1e-15)


@pytest.mark.parametrize("f", [exact_bce, exact_bce_grad, bce_grad_condition])
@pytest.mark.parametrize(
    ("u", "p", "name"),
    [(mpmath.mpf("inf"), 0.5, "u"), (float("nan"), 0.5, "u"), (1.0, 1.5, "p"), (1.0, -0.5, "p")],
)
def test_exact_references_refuse_what_they_cannot_evaluate(f, u, p, name):
    # Was: accepted mpf(inf) and targets outside [0, 1], returning NaN or a meaningless number.
    with pytest.raises(ValueError, match=f"^{name} "):
        f(u, p)


def test_underflow_is_not_an_error_even_where_the_caller_raises_on_it():
    # e^{-|u|} underflows for |u| > 745; 0 or a subnormal is the correct rounding, and the
    # results are finite and right.
    with np.errstate(all="raise"):
        loss, grad = lg.bce_with_logits_and_grad(
            np.array([1000.0, -1000.0, 800.0]), np.array([1.0, 0.0, 0.3]), reduction="none"
        )
        ce = lg.softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([0]))
    assert loss.tolist() == [0.0, 0.0, 560.0]
    assert grad.tolist() == [0.0, 0.0, 0.7]
    assert ce == 0.0


def test_an_unsigned_class_index_too_large_is_an_error_not_wrapped_into_ignore_index():
    # 2**64 - 100 as intp is -100, PyTorch's default ignore_index.
    with pytest.raises(ValueError, match=r"class-index targets must lie in 0\.\.1"):
        lg.softmax_cross_entropy(np.zeros((2, 2)), np.array([0, 2**64 - 100], dtype=np.uint64))
    assert lg.softmax_cross_entropy(
        np.zeros((2, 2)), np.array([0, 1], dtype=np.uint8), reduction="sum"
    ) == pytest.approx(2 * math.log(2))


@pytest.mark.parametrize(
    ("logits", "targets", "smoothing"),
    [
        ([1e308, -1e308], [0.9, 0.1], 0.0),
        ([1.7e308, -1.7e308], [0.5, 0.5], 0.0),
        ([1e308, -1e308, 0.0], 0, 0.1),
        ([-1.5e308, 1.5e308, 3.0], 1, 0.3),
    ],
)
def test_softmax_loss_of_logits_beyond_the_range_apart_is_finite_when_it_is(
    logits, targets, smoothing
):
    # Logits more than 1.8e308 apart: z - max(z) overflows, but a small target weight times
    # the true gap is finite. Oracle: sum_k t_k (lse - z_k) in mpmath, from the definition.
    z = np.array([logits])
    k = len(logits)
    if isinstance(targets, int):
        t = [smoothing / k + (1 - smoothing if j == targets else 0.0) for j in range(k)]
        given = np.array([targets])
    else:
        t, given = targets, np.array([targets])
    with mpmath.workdps(60):
        lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(x)) for x in logits))
        exact = mpmath.fsum(
            mpmath.mpf(tk) * (lse - mpmath.mpf(x)) for tk, x in zip(t, logits, strict=True)
        )
    loss = lg.softmax_cross_entropy(z, given, label_smoothing=smoothing, reduction="none")[0]
    assert np.isfinite(loss)
    assert abs(mpmath.mpf(float(loss)) / exact - 1) < 1e-14


@pytest.mark.parametrize(
    ("u", "p", "pos_weight"),
    [
        (0.0, 0.77450264, 0.2911512),  # (1 - p - w+ p)/2 = -1.65e-9, not 0
        (-1.1189823e-06, 0.46206006, 1.1642193),
        (3.0, 0.3, 2.5),
        (-40.0, 0.999, 0.5),
    ],
)
def test_float32_gradient_with_pos_weight_keeps_the_cancelling_combination(u, p, pos_weight):
    # In float32, 1 - p - w+ p loses everything where it nearly cancels (a minimum near u = 0);
    # lossgrad forms it in float64. Oracle: the definition w[(1 - p) s - w+ p (1 - s)] in mpmath.
    u32, p32, w32 = (np.array([x], np.float32) for x in (u, p, pos_weight))
    grad = lg.bce_with_logits_grad(u32, p32, pos_weight=w32, reduction="none")
    exact = exact_bce_grad(float(u32[0]), float(p32[0]), 1.0, float(w32[0]))
    assert grad.dtype == np.float32
    assert abs(mpmath.mpf(float(grad[0])) - exact) <= 8 * abs(exact) * 2.0**-24
