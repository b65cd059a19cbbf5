"""z-loss and logit soft-capping: against mpmath (lossgrad.accuracy's 50-digit references),
central differences, the usual formulas where they are accurate, the limits, and bad input.
"""

import warnings

import mpmath
import numpy as np
import pytest

from lossgrad.accuracy import (
    exact_soft_cap,
    exact_z_loss,
    soft_cap_condition,
    ulps,
    z_loss_condition,
    z_loss_hard_rows,
)
from lossgrad.gradcheck import central_difference
from lossgrad.stability import soft_cap, soft_cap_grad, z_loss, z_loss_and_grad, z_loss_grad

#: The bar for float64, in ULP times max(1, kappa) (the variants' bar in the issue).
BOUND = 8.0


@pytest.mark.parametrize("classes", [1, 2, 3, 10, 64])
def test_z_loss_and_gradient_are_within_the_bound_of_mpmath(classes):
    z = z_loss_hard_rows(16, classes, np.random.default_rng(classes))
    loss, grad = z_loss_and_grad(z, coefficient=1e-4, reduction="none")
    for i, row in enumerate(z):
        exact_loss, exact_grad = exact_z_loss(row, 1e-4)
        kappa_loss, kappa_grad = z_loss_condition(row)
        assert ulps(loss[i], exact_loss) <= BOUND * max(1.0, kappa_loss), row
        for k in range(classes):
            assert ulps(grad[i, k], exact_grad[k]) <= BOUND * max(1.0, kappa_grad[k]), (row, k)


def test_float32_z_loss_is_within_1_ulp_where_well_conditioned():
    z = z_loss_hard_rows(40, 5, np.random.default_rng(7)).astype(np.float32)
    loss, grad = z_loss_and_grad(z, reduction="none")
    assert loss.dtype == grad.dtype == np.float32
    checked = 0
    for i, row in enumerate(z.astype(np.float64)):
        exact_loss, exact_grad = exact_z_loss(row)
        kappa_loss, kappa_grad = z_loss_condition(row)
        # Well conditioned: the float64 result's error (8 kappa float64 ULP) is then far below
        # a float32 ULP, and rounding it once gives at most 1.
        if kappa_loss <= 1e3:
            assert ulps(loss[i], exact_loss, np.float32) <= 1, row
            checked += 1
        for k in range(5):
            if kappa_grad[k] <= 1e3:
                assert ulps(grad[i, k], exact_grad[k], np.float32) <= 1, (row, k)
    assert checked >= 10


def test_z_loss_where_log_z_is_near_0_keeps_its_digits():
    # log Z = log1p(e^-40): the usual log(sum(exp(z))) rounds the sum to 1 and returns 0.
    z = np.array([0.0, -40.0])
    with mpmath.workdps(50):
        exact = mpmath.log1p(mpmath.exp(-40)) ** 2
    assert np.log(np.sum(np.exp(z))) == 0.0
    assert ulps(z_loss(z, coefficient=1.0, reduction="none"), exact) <= 2


def test_z_loss_gradient_matches_central_differences():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.0, (3, 4))
    grad = z_loss_grad(z, coefficient=0.1, reduction="sum")
    numeric = np.empty_like(z)
    for index in np.ndindex(z.shape):
        # One coordinate at a time: central_difference is for element-wise functions.
        def along(x, index=index):
            moved = np.repeat(z[None], x.size, axis=0)
            moved[(slice(None), *index)] = x
            return np.array([z_loss(m, coefficient=0.1, reduction="sum") for m in moved])

        numeric[index] = central_difference(along, np.array([z[index]]))[0]
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-10)


def test_reductions_and_axis():
    rng = np.random.default_rng(4)
    z = rng.normal(0.0, 5.0, (6, 7))
    rows = z_loss(z, reduction="none")
    with mpmath.workdps(50):
        exact_sum = mpmath.fsum(exact_z_loss(row)[0] for row in z)
    assert ulps(z_loss(z, reduction="sum"), exact_sum) <= 1
    assert z_loss(z) == pytest.approx(float(exact_sum) / 6, rel=1e-15)
    np.testing.assert_allclose(z_loss_grad(z, reduction="none") / 6, z_loss_grad(z), rtol=1e-15)
    # The class axis: the same rows read down columns.
    np.testing.assert_array_equal(z_loss(z.T, axis=0, reduction="none"), rows)
    np.testing.assert_array_equal(
        z_loss_grad(z.T, axis=0, reduction="none"), z_loss_grad(z, reduction="none").T
    )
    # A batch of sequences: rows over the two leading axes.
    batch = z.reshape(2, 3, 7)
    np.testing.assert_array_equal(z_loss(batch, reduction="none"), rows.reshape(2, 3))


def test_masked_classes_and_extreme_logits_give_no_warning():
    z = np.array([[-np.inf, 0.0, 1.0], [1e308, 1e308, -1e308], [-1e308, -1e308, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = z_loss_and_grad(z, coefficient=1e-4, reduction="none")
    assert grad[0, 0] == 0.0
    assert ulps(loss[0], exact_z_loss([0.0, 1.0])[0]) <= 2
    assert loss[1] == np.inf and loss[2] == np.inf  # the exact values exceed 1.8e308
    assert np.all(np.isfinite(grad[1:]))
    assert ulps(grad[1, 0], exact_z_loss([1e308, 1e308, -1e308])[1][0]) <= 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_cap_and_its_derivative_are_within_the_bound_of_mpmath(dtype):
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.normal(0.0, 30.0, 60), rng.uniform(-3000.0, 3000.0, 60),
                        rng.choice([-1, 1], 60) * 10 ** rng.uniform(-10.0, 3.0, 60)]).astype(dtype)
    value, slope = soft_cap(z, 30.0), soft_cap_grad(z, 30.0)
    assert value.dtype == slope.dtype == dtype
    # float32 is computed in float32 (see the module docstring): its bound is that of float64.
    for i, zi in enumerate(z.astype(np.float64)):
        exact_value, exact_slope = exact_soft_cap(zi, 30.0)
        kappa_value, kappa_slope = soft_cap_condition(zi, 30.0)
        assert ulps(value[i], exact_value, dtype) <= BOUND * max(1.0, kappa_value), zi
        assert ulps(slope[i], exact_slope, dtype) <= BOUND * max(1.0, kappa_slope), zi


def test_soft_cap_derivative_keeps_the_digits_that_one_minus_tanh_squared_loses():
    z = np.array([600.0, 1200.0, 6000.0])
    assert np.all(1 - np.tanh(z / 30.0) ** 2 == 0.0)
    slope = soft_cap_grad(z, 30.0)
    for zi, si in zip(z, slope, strict=True):
        exact = exact_soft_cap(zi, 30.0)[1]
        assert exact > 0 and ulps(si, exact) <= BOUND * soft_cap_condition(zi, 30.0)[1]


def test_soft_cap_derivative_matches_central_differences_and_limits():
    z = np.linspace(-90.0, 90.0, 13)
    numeric = central_difference(lambda x: soft_cap(x, 30.0), z)
    if numeric.ndim == 2:  # the Jacobian of an element-wise map is diagonal
        numeric = np.diag(numeric)
    np.testing.assert_allclose(soft_cap_grad(z, 30.0), numeric, rtol=1e-8, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(soft_cap(np.array([np.inf, -np.inf, 1e308]), 30.0)) == [30.0, -30.0, 30.0]
        assert list(soft_cap_grad(np.array([np.inf, -1e308]), 30.0)) == [0.0, 0.0]
        assert soft_cap_grad(np.float32(1e30), 1e-30) == 0.0
    assert isinstance(soft_cap(0.5, 2.0), np.float64)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: z_loss(np.ones((2, 3)), coefficient=True), TypeError, "coefficient"),
        (lambda: z_loss(np.ones((2, 3)), coefficient="1e-4"), TypeError, "coefficient"),
        (lambda: z_loss(np.ones((2, 3)), coefficient=-1.0), ValueError, "coefficient"),
        (lambda: z_loss(np.ones((2, 3)), coefficient=np.nan), ValueError, "coefficient"),
        (lambda: z_loss(np.ones((2, 3), int)), TypeError, "logits"),
        (lambda: z_loss(np.array([[0.0, np.nan]])), ValueError, "logits"),
        (lambda: z_loss(np.array([[0.0, np.inf]])), ValueError, "logits"),
        (lambda: z_loss_grad(np.array([[-np.inf, -np.inf]])), ValueError, "logits"),
        (lambda: z_loss(np.ones((0, 3))), ValueError, "no rows"),
        (lambda: z_loss(np.ones((2, 0))), ValueError, "class axis"),
        (lambda: z_loss(np.ones((2, 3)), axis=2), ValueError, "axis"),
        (lambda: z_loss(np.ones((2, 3)), reduction="avg"), ValueError, "reduction"),
        (lambda: soft_cap(np.ones(3), 0.0), ValueError, "cap"),
        (lambda: soft_cap(np.ones(3), np.inf), ValueError, "cap"),
        (lambda: soft_cap_grad(np.ones(3), True), TypeError, "cap"),
        (lambda: soft_cap_grad(np.ones(3), None), TypeError, "cap"),
        (lambda: soft_cap(np.ones(3, np.float16), 30.0), TypeError, "logits"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_empty_inputs():
    assert z_loss(np.ones((0, 3)), reduction="sum") == 0.0
    assert z_loss_grad(np.ones((0, 3)), reduction="sum").shape == (0, 3)
    assert soft_cap(np.ones(0), 30.0).shape == (0,)


def test_z_loss_gradient_beyond_the_float_range_has_no_nan():
    # 2 lambda log Z overflows; the second class's probability underflows to 0, so its entry is
    # 0 (not 0 times inf).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = z_loss_and_grad(np.array([[1e308, 0.0]]), coefficient=1.0, reduction="sum")
    assert loss == np.inf and grad[0, 0] == np.inf and grad[0, 1] == 0.0


def test_z_loss_over_many_blocks_of_rows():
    # 20000 rows of 3 classes span several blocks: against the row-wise formula and an exact sum.
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 4.0, (20000, 3))
    top = z.max(axis=1)
    log_z = top + np.log1p(np.exp(z - top[:, None]).sum(axis=1) - 1.0)
    rows = z_loss(z, coefficient=0.5, reduction="none")
    np.testing.assert_allclose(rows, 0.5 * log_z**2, rtol=1e-12)
    grad = z_loss_grad(z, coefficient=0.5, reduction="none")
    np.testing.assert_allclose(grad, log_z[:, None] * np.exp(z - log_z[:, None]), rtol=1e-12)
    with mpmath.workdps(30):
        exact = mpmath.fsum(mpmath.mpf(float(r)) for r in rows)
    assert ulps(z_loss(z, coefficient=0.5, reduction="sum"), exact) <= 1
    # The same rows along axis 0 of a Fortran-ordered array.
    np.testing.assert_array_equal(z_loss(np.asfortranarray(z.T), axis=0, coefficient=0.5,
                                         reduction="none"), rows)


def test_soft_cap_is_the_identity_where_z_over_c_is_tiny():
    # z/c subnormal would lose digits; there c tanh(z/c) = z to within rounding.
    assert soft_cap(np.array([1e-20]), 1e300)[0] == 1e-20
    assert soft_cap(np.array([-3e-320]), 30.0)[0] == -3e-320
    assert soft_cap(np.array([1e-40], np.float32), 30.0)[0] == np.float32(1e-40)


@pytest.mark.parametrize("cap", [1e39, 1e-46])
def test_a_cap_outside_float32_is_refused_for_float32_logits(cap):
    with pytest.raises(ValueError, match="cap must be a normal float32"):
        soft_cap(np.ones(2, np.float32), cap)


def test_a_strided_single_row():
    # One row read through a stride: no leading axes (was "multiple indices ... 0d arrays").
    row = np.arange(20.0)[::2]
    assert z_loss(row) == z_loss(np.ascontiguousarray(row))
    np.testing.assert_array_equal(z_loss_grad(row), z_loss_grad(np.ascontiguousarray(row)))
