"""Linear cross-entropy a vocabulary block at a time: against the unblocked float64 computation
(written out here from the logit matrix, independent of the blocked code), mpmath for a confident
row, central differences on small sizes, the options, and bad input.
"""

import warnings

import mpmath
import numpy as np
import pytest

from lossgrad.gradcheck import central_difference
from lossgrad.vocabulary import (
    linear_cross_entropy,
    linear_cross_entropy_and_grad,
    linear_cross_entropy_skipped_fraction,
)


def unblocked(h, w, y, eps=0.0, ignore=None, reduction="mean"):
    """The whole logit matrix in float64: loss, (S - T) W / N and (S - T)^T H / N."""
    h, w = h.astype(np.float64), w.astype(np.float64)
    z = h @ w.T
    n, vocabulary = z.shape
    keep = np.ones(n, bool) if ignore is None else y != ignore
    yy = np.where(keep, y, 0)
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    t = (1 - eps) * np.eye(vocabulary)[yy] + eps / vocabulary
    rows = lse - (t * z).sum(axis=1)
    rows[~keep] = 0.0
    divisor = keep.sum() if reduction == "mean" else 1.0
    g = (np.exp(z - lse[:, None]) - t) * (keep / divisor)[:, None]
    loss = rows if reduction == "none" else rows.sum() / divisor
    return loss, g @ w, g.T @ h


def problem(n=37, d=6, vocabulary=53, seed=0, dtype=np.float64, scale=2.0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, d)).astype(dtype)
    w = (scale * rng.normal(size=(vocabulary, d))).astype(dtype)
    y = rng.integers(0, vocabulary, n)
    return h, w, y


@pytest.mark.parametrize("block_size", [1, 7, 53, 1000, None])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_agrees_with_the_unblocked_computation(block_size, eps, reduction):
    h, w, y = problem(seed=int(10 * eps) + (block_size or 0))
    y[::5] = -100
    loss, dh, dw = linear_cross_entropy_and_grad(
        h, w, y, label_smoothing=eps, reduction=reduction, block_size=block_size
    )
    ref_loss, ref_dh, ref_dw = unblocked(h, w, y, eps, -100, reduction)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-11, atol=1e-15)
    alone = linear_cross_entropy(h, w, y, label_smoothing=eps, reduction=reduction,
                                 block_size=block_size)
    np.testing.assert_array_equal(alone, loss)


def test_gradients_match_central_differences():
    h, w, y = problem(n=4, d=3, vocabulary=5, seed=3)
    _, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=2, label_smoothing=0.2)
    for array, grad in ((h, dh), (w, dw)):
        numeric = np.empty_like(array)
        for index in np.ndindex(array.shape):
            def along(x, index=index, array=array):
                out = []
                for value in x:
                    moved = array.copy()
                    moved[index] = value
                    args = (moved, w) if array is h else (h, moved)
                    out.append(linear_cross_entropy(*args, y, label_smoothing=0.2))
                return np.array(out)

            numeric[index] = central_difference(along, np.array([array[index]]))[0]
        np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-10)


def test_a_confident_row_keeps_its_digits():
    # One row whose target logit leads the others by 40: the loss is log1p(e^-40 + e^-41), which
    # lse - z_y computed as log(sum exp) rounds to 0.
    h = np.array([[1.0]])
    w = np.array([[40.0], [0.0], [-1.0]])
    loss, _, dw = linear_cross_entropy_and_grad(h, w, np.array([0]), block_size=1)
    with mpmath.workdps(50):
        others = mpmath.exp(-40) + mpmath.exp(-41)
        exact_loss = mpmath.log1p(others)
        exact_g0 = -others / (1 + others)
    assert abs(loss - exact_loss) <= 2 * np.spacing(float(exact_loss))
    # d_weight's first row is g_0 h = g_0; exact to a few ULP.
    assert abs(dw[0, 0] - exact_g0) <= 4 * np.spacing(abs(float(exact_g0)))


def test_float32_accumulates_in_float64_and_returns_float32():
    h, w, y = problem(n=64, d=16, vocabulary=300, dtype=np.float32, seed=5)
    loss, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=32)
    assert loss.dtype == dh.dtype == dw.dtype == np.float32
    ref_loss, ref_dh, ref_dw = unblocked(h, w, y)
    # The float32 logits' rounding (relative 2^-24 times the dot products' condition) bounds
    # what any float32 computation can reach; 1e-5 relative to the largest entry is well above it.
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(dh, ref_dh, atol=1e-5 * np.abs(ref_dh).max())
    np.testing.assert_allclose(dw, ref_dw, atol=1e-5 * np.abs(ref_dw).max())


def test_gradient_filtering_is_off_by_default_and_skips_what_it_reports():
    rng = np.random.default_rng(6)
    h = rng.normal(size=(512, 8))
    w = 16 * rng.normal(size=(1024, 8))
    y = np.argmax(h @ w.T, axis=1)
    exact = linear_cross_entropy_and_grad(h, w, y, block_size=16)
    same = linear_cross_entropy_and_grad(h, w, y, block_size=16, filter_threshold=0.0)
    for a, b in zip(exact[1:], same[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    fraction = linear_cross_entropy_skipped_fraction(h, w, y, 1e-2, block_size=16)
    filtered = linear_cross_entropy_and_grad(h, w, y, block_size=16, filter_threshold=1e-2)
    assert 0.1 < fraction < 0.9
    assert filtered[0] == exact[0]
    # Each skipped entry is below 1e-2 / N: d_hidden's error is at most that times sum_k |W_kj|.
    bound = 1e-2 / 512 * np.abs(w).sum(axis=0).max()
    error = np.abs(filtered[1] - exact[1]).max()
    assert 0.0 < error <= bound
    # d_weight's rows for skipped entries: at most 1e-2 / N times sum_i |H_ij|.
    error = np.abs(filtered[2] - exact[2]).max()
    assert 0.0 < error <= 1e-2 / 512 * np.abs(h).sum(axis=0).max()


def test_all_ignored_rows():
    h, w, y = problem(n=3)
    y[:] = -100
    assert linear_cross_entropy(h, w, y, reduction="sum") == 0.0
    with pytest.raises(ValueError, match="ignore_index"):
        linear_cross_entropy(h, w, y)


def test_extreme_logits_give_no_warning():
    h = np.array([[1e150], [-1e150]])
    w = np.array([[1e150], [0.0], [-1e150]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dh, dw = linear_cross_entropy_and_grad(h, w, np.array([0, 2]), block_size=1)
    assert loss == 0.0
    assert np.all(np.isfinite(dh)) and np.all(np.isfinite(dw))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda h, w, y: linear_cross_entropy(h[0], w, y), ValueError, "hidden must be"),
        (lambda h, w, y: linear_cross_entropy(h, w[:, :2], y), ValueError, "same d"),
        (lambda h, w, y: linear_cross_entropy(h, w.astype(np.float32), y), TypeError, "float type"),
        (lambda h, w, y: linear_cross_entropy(h.astype(int), w, y), TypeError, "hidden"),
        (lambda h, w, y: linear_cross_entropy(h, w, y.astype(float)), TypeError, "targets"),
        (lambda h, w, y: linear_cross_entropy(h, w, y[:-1]), ValueError, "targets"),
        (lambda h, w, y: linear_cross_entropy(h, w, y + 100), ValueError, "targets"),
        (lambda h, w, y: linear_cross_entropy(h, w, y, block_size=0), ValueError, "block_size"),
        (lambda h, w, y: linear_cross_entropy(h, w, y, block_size=2.5), TypeError, "block_size"),
        (lambda h, w, y: linear_cross_entropy(h, w, y, label_smoothing=2), ValueError,
         "label_smoothing"),
        (lambda h, w, y: linear_cross_entropy(h, w, y, reduction="avg"), ValueError, "reduction"),
        (lambda h, w, y: linear_cross_entropy(h, w[:0], y), ValueError, "vocabulary"),
        (lambda h, w, y: linear_cross_entropy_and_grad(h, w, y, filter_threshold=-1.0),
         ValueError, "filter_threshold"),
        (lambda h, w, y: linear_cross_entropy_and_grad(h, w, y, filter_threshold="x"),
         TypeError, "filter_threshold"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    h, w, y = problem(n=4, d=3, vocabulary=5)
    with pytest.raises(error, match=match):
        call(h, w, y)
