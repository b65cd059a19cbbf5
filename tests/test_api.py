"""One API vocabulary (issue 8, section 3): the class axis, ignore_index, and the stated rules.

Expected values come from mpmath (lossgrad.accuracy) or from the permutation identity: moving
the class axis permutes the data and nothing else.
"""

import math

import mpmath
import numpy as np
import pytest

import lossgrad as lg
from lossgrad.accuracy import exact_log_softmax, exact_logsumexp, exact_softmax_cross_entropy, ulps

RNG = np.random.default_rng(8)
Z = RNG.normal(scale=3.0, size=(4, 3, 5))  # classes along axis 1, as PyTorch's dim=1


# The class axis.


@pytest.mark.parametrize("f", [lg.logsumexp, lg.softmax, lg.log_softmax])
def test_softmax_family_takes_the_class_axis_anywhere(f):
    for axis in (0, 1, 2, -1, -2):
        moved = np.moveaxis(Z, axis, -1)
        expected = f(moved)
        if np.ndim(expected) == moved.ndim:
            expected = np.moveaxis(expected, -1, axis)
        np.testing.assert_array_equal(f(Z, axis=axis), expected)


def test_softmax_family_along_axis_0_against_mpmath():
    z = np.array([[0.0, 100.0], [-40.0, 3.0]])  # columns are the rows of classes
    for column in range(2):
        row = z[:, column].tolist()
        assert ulps(lg.logsumexp(z, axis=0)[column], exact_logsumexp(row)) <= 1
        for k, exact in enumerate(exact_log_softmax(row)):
            assert ulps(lg.log_softmax(z, axis=0)[k, column], exact) <= 2
            assert ulps(lg.softmax(z, axis=0)[k, column], mpmath.exp(exact)) <= 2


@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_softmax_cross_entropy_takes_the_class_axis_anywhere(targets):
    if targets == "indices":
        t = RNG.integers(0, 3, size=(4, 5))
        t_last = t
    else:
        t = RNG.dirichlet(np.ones(3), size=(4, 5)).transpose(0, 2, 1)  # classes on axis 1
        t_last = np.moveaxis(t, 1, -1)
    z_last = np.moveaxis(Z, 1, -1)
    for reduction in ("none", "mean", "sum"):
        loss, grad = lg.softmax_cross_entropy_and_grad(Z, t, axis=1, reduction=reduction)
        loss_last, grad_last = lg.softmax_cross_entropy_and_grad(
            z_last, t_last, reduction=reduction
        )
        np.testing.assert_array_equal(loss, loss_last)
        np.testing.assert_array_equal(grad, np.moveaxis(grad_last, -1, 1))
        assert grad.shape == Z.shape


def test_softmax_cross_entropy_along_axis_1_against_mpmath():
    t = np.array([[2, 0, 1, 1, 0]] * 4)
    loss = lg.softmax_cross_entropy(Z, t, axis=1, reduction="none")
    grad = lg.softmax_cross_entropy_grad(Z, t, axis=1, reduction="none")
    for i in range(4):
        for j in range(5):
            exact_loss, exact_grad = exact_softmax_cross_entropy(Z[i, :, j].tolist(), int(t[i, j]))
            assert ulps(loss[i, j], exact_loss) <= 4
            for k in range(3):
                assert ulps(grad[i, k, j], exact_grad[k]) <= 16


@pytest.mark.parametrize("axis", [3, -4, 1.0, True])
def test_a_bad_axis_is_refused_by_name(axis):
    with pytest.raises((ValueError, TypeError), match="axis"):
        lg.softmax_cross_entropy(Z, np.zeros((4, 5), dtype=int), axis=axis)


# ignore_index, as PyTorch: ignored rows have zero loss and gradient and are not counted.

Z2 = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0], [-4.0, 0.0, 4.0]])
T2 = np.array([0, -100, 2, 1])
KEPT = [0, 2, 3]


def exact_row_losses(weight=None):
    losses = []
    for row in KEPT:
        loss, _ = exact_softmax_cross_entropy(Z2[row].tolist(), int(T2[row]))
        losses.append(loss * (1 if weight is None else mpmath.mpf(weight[T2[row]])))
    return losses


def test_ignored_rows_have_zero_loss_and_gradient():
    loss, grad = lg.softmax_cross_entropy_and_grad(Z2, T2, reduction="none")
    assert loss[1] == 0.0 and np.all(grad[1] == 0.0)
    for row, exact in zip(KEPT, exact_row_losses(), strict=True):
        assert ulps(loss[row], exact) <= 2


def test_ignored_rows_are_left_out_of_the_mean_and_the_weighted_mean():
    exact = mpmath.fsum(exact_row_losses())
    assert ulps(lg.softmax_cross_entropy(Z2, T2), exact / 3) <= 1
    assert ulps(lg.softmax_cross_entropy(Z2, T2, reduction="sum"), exact) <= 1
    w = np.array([0.5, 2.0, 3.0])
    weighted = mpmath.fsum(exact_row_losses(w))
    divisor = w[0] + w[2] + w[1]  # the kept rows' target classes: 0, 2, 1
    assert ulps(lg.softmax_cross_entropy(Z2, T2, weight=w), weighted / divisor) <= 1
    # The mean's gradient is the gradient of the mean: central differences agree.
    grad = lg.softmax_cross_entropy_grad(Z2, T2, weight=w)
    h = 1e-6
    for index in np.ndindex(Z2.shape):
        e = np.zeros_like(Z2)
        e[index] = h
        slope = (lg.softmax_cross_entropy(Z2 + e, T2, weight=w)
                 - lg.softmax_cross_entropy(Z2 - e, T2, weight=w)) / (2 * h)
        assert grad[index] == pytest.approx(slope, rel=1e-6, abs=1e-10)


def test_ignored_rows_with_label_smoothing_stay_zero():
    loss, grad = lg.softmax_cross_entropy_and_grad(
        Z2, T2, label_smoothing=0.2, weight=np.array([1.0, 2.0, 0.5]), reduction="none"
    )
    assert loss[1] == 0.0 and np.all(grad[1] == 0.0)
    assert np.all(loss[KEPT] > 0)


def test_ignored_rows_may_hold_nan_logits():
    z = Z2.copy()
    z[1] = np.nan
    loss, grad = lg.softmax_cross_entropy_and_grad(z, T2)
    assert math.isfinite(loss) and np.all(np.isfinite(grad))


def test_a_mean_over_only_ignored_rows_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="ignore_index"):
        lg.softmax_cross_entropy(Z2[:2], np.array([-100, -100]))
    assert lg.softmax_cross_entropy(Z2[:2], np.array([-100, -100]), reduction="sum") == 0.0


def test_ignore_index_may_be_a_class_or_none():
    # Ignoring class 2: the row whose target is 2 is left out.
    loss = lg.softmax_cross_entropy(Z2[[0, 2, 3]], np.array([0, 2, 1]), ignore_index=2,
                                    reduction="none")
    assert loss[1] == 0.0 and loss[0] > 0 and loss[2] > 0
    with pytest.raises(ValueError, match=r"0\.\.2"):
        lg.softmax_cross_entropy(Z2, T2, ignore_index=None)
    with pytest.raises(TypeError, match="ignore_index"):
        lg.softmax_cross_entropy(Z2, T2, ignore_index=1.5)


def test_ignore_index_has_no_effect_on_probability_targets():
    y = np.full((2, 3), 1 / 3)
    assert lg.softmax_cross_entropy(Z2[:2], y, ignore_index=0) == lg.softmax_cross_entropy(
        Z2[:2], y
    )


# The vocabulary stated in the package docstring.


def test_the_package_docstring_states_the_vocabulary():
    doc = lg.__doc__
    for word in ("Names", "Options", "Reduction", "Targets", "Class axis", "Types", "Edges",
                 "ignore_index", 'reduction="mean"', "axis=-1"):
        assert word in doc, word
