"""Linear cross-entropy a vocabulary block at a time: against the unblocked float64 computation
(written out here from the logit matrix, independent of the blocked code), mpmath for a confident
row, central differences on small sizes, the options, and bad input.
"""

import tracemalloc
import warnings

import mpmath
import numpy as np
import pytest

from lossgrad import vocabulary
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_one_pass_in_chunks_agrees_with_the_unblocked_computation(
    monkeypatch, dtype, eps, reduction
):
    # Tiles of 5 rows of the whole vocabulary and gradient products of 16 columns: 6 chunks
    # (the last shorter) and 4 products a chunk, so d_weight adds partial sums over chunks.
    monkeypatch.setattr(vocabulary, "_BLOCK_ELEMENTS", 5 * 53)
    monkeypatch.setattr(vocabulary, "_PRODUCT_COLUMNS", 16)
    h, w, y = problem(seed=11, dtype=dtype)
    y[::4] = -100
    loss, dh, dw = linear_cross_entropy_and_grad(
        h, w, y, label_smoothing=eps, reduction=reduction, block_size=53
    )
    ref_loss, ref_dh, ref_dw = unblocked(h, w, y, eps, -100, reduction)
    tight = dtype == np.float64
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-13 if tight else 1e-6, atol=1e-15)
    for x, ref in ((dh, ref_dh), (dw, ref_dw)):
        assert x.dtype == dtype
        np.testing.assert_allclose(x, ref, rtol=1e-11 if tight else 1e-5,
                                   atol=1e-15 if tight else 1e-7 * np.abs(ref).max())
    alone = linear_cross_entropy(h, w, y, label_smoothing=eps, reduction=reduction,
                                 block_size=53)
    np.testing.assert_array_equal(alone, loss)


@pytest.mark.parametrize(
    ("rows", "tokens", "block_size", "one_pass", "plan"),
    [
        (4096, 8192, None, True, (1, 8192, 512)),  # one pass: 512 rows of the vocabulary fit
        (4096, 65536, None, True, (1, 65536, 64)),  # the fewest rows a chunk
        (4096, 131072, None, True, (2, 1024, 4096)),  # 32 rows would fit: two passes
        (30, 2**17, None, True, (1, 2**17, 30)),  # fewer rows than 64, and all of them fit
        (100, 53, None, True, (1, 53, 100)),  # everything in one tile
        (4096, 8192, None, False, (2, 1024, 4096)),  # filtering: two passes
        (100, 53, None, False, (2, 53, 100)),  # filtering, everything in one block
        (100, 53, 10**6, False, (2, 53, 100)),
        (4096, 8192, 8192, True, (1, 8192, 512)),  # a block of the whole vocabulary: one pass
        (4096, 2**23, 10**9, True, (1, 2**23, 1)),  # at least one row
        (4096, 8192, 100, True, (2, 100, 4096)),
        (0, 10, None, True, (1, 10, 1)),  # no rows
    ],
)
def test_the_default_plan(rows, tokens, block_size, one_pass, plan):
    assert vocabulary._plan(rows, tokens, block_size, one_pass) == plan


@pytest.mark.parametrize("block_size", [None, 10**6])
def test_filtering_filters_when_the_whole_vocabulary_fits_in_one_block(block_size):
    # N V far below the default tile, and a block wider than V: still two passes, and the
    # filtered gradients are those of the independent filter with one block of all V tokens.
    # The first 256 rows point at their targets' unit vectors (target probability about 0.9,
    # nothing else near 0.1); the other rows' softmax is spread out (every entry below 0.1).
    rng = np.random.default_rng(12)
    w = rng.normal(size=(1000, 8))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    y = rng.integers(0, 1000, 600)
    h = 30 * w[y]
    h[256:] = rng.normal(size=(344, 8))
    ref_dh, ref_dw, ref_fraction = independent_filter(h, w, y, 0.1, 1000)
    _, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=block_size,
                                              filter_threshold=0.1)
    fraction = linear_cross_entropy_skipped_fraction(h, w, y, 0.1, block_size=block_size)
    assert fraction == ref_fraction and 0.0 < fraction < 1.0
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("block_size", [2, None])  # two passes, one pass
def test_gradients_match_central_differences(block_size):
    h, w, y = problem(n=4, d=3, vocabulary=5, seed=3)
    _, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=block_size,
                                              label_smoothing=0.2)
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


@pytest.mark.parametrize("block_size", [1, None])  # two passes, one pass
def test_a_confident_row_keeps_its_digits(block_size):
    # One row whose target logit leads the others by 40: the loss is log1p(e^-40 + e^-41), which
    # lse - z_y computed as log(sum exp) rounds to 0.
    h = np.array([[1.0]])
    w = np.array([[40.0], [0.0], [-1.0]])
    loss, _, dw = linear_cross_entropy_and_grad(h, w, np.array([0]), block_size=block_size)
    with mpmath.workdps(50):
        others = mpmath.exp(-40) + mpmath.exp(-41)
        exact_loss = mpmath.log1p(others)
        exact_g0 = -others / (1 + others)
    assert abs(loss - exact_loss) <= 2 * np.spacing(float(exact_loss))
    # d_weight's first row is g_0 h = g_0; exact to a few ULP.
    assert abs(dw[0, 0] - exact_g0) <= 4 * np.spacing(abs(float(exact_g0)))


@pytest.mark.parametrize("passes", [2, 1])
def test_float32_accumulates_in_float64_and_returns_float32(monkeypatch, passes):
    # d_hidden adds 2000 products: of blocks of one token (two passes), or of one column each
    # (one pass, one chunk of all 64 rows). Added in float64 its error is a few units of
    # u (|G| |W|), the unit of one product's rounding (measured 2.5); added in float32 it is
    # some 40 units, and one float32 product over all 2000 columns 13.
    monkeypatch.setattr(vocabulary, "_PRODUCT_COLUMNS", 1)
    rng = np.random.default_rng(5)
    h = rng.normal(size=(64, 4)).astype(np.float32)
    w = rng.normal(size=(2000, 4)).astype(np.float32)
    y = rng.integers(0, 2000, 64)
    block_size = 1 if passes == 2 else None
    assert vocabulary._inputs(h, w, y, -100, 0.0, "mean", block_size).passes == passes
    loss, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=block_size)
    assert isinstance(loss, np.float32) and dh.dtype == dw.dtype == np.float32
    ref_loss, ref_dh, _ = unblocked(h, w, y)
    z = h.astype(np.float64) @ w.astype(np.float64).T
    g = np.exp(z - z.max(axis=1, keepdims=True))
    g = (g / g.sum(axis=1, keepdims=True) - np.eye(2000)[y]) / 64
    unit = 2.0**-24 * (np.abs(g) @ np.abs(w.astype(np.float64)))
    assert np.max(np.abs(dh - ref_dh) / unit) <= 5
    np.testing.assert_allclose(loss, ref_loss, rtol=2**-22)


def test_the_mean_is_the_exact_sum_rounded_once():
    # Row losses of very different sizes: the sum of the float64 row losses, rounded once.
    h = np.array([[1.0], [1.0], [1.0]])
    w = np.array([[60.0], [0.0], [-1.0]])
    y = np.array([0, 1, 0])
    rows = linear_cross_entropy(h, w, y, reduction="none")
    with mpmath.workdps(50):
        exact = mpmath.fsum(mpmath.mpf(float(r)) for r in rows)
    assert linear_cross_entropy(h, w, y, reduction="sum") == float(exact)
    assert linear_cross_entropy(h, w, y) == float(exact / 3)


def independent_filter(h, w, y, threshold, block):
    """Gradient filtering by its documented rule, written from the logit matrix: a tile of 256
    rows of a block is dropped when every entry of N (S - T) but the targets' is below the
    threshold, and its target entries are kept."""
    z = h @ w.T
    n, vocabulary = z.shape
    top = z.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    unit = np.exp(z - lse) - np.eye(vocabulary)[y]
    mask = np.ones(z.shape, bool)
    skipped = total = 0
    for start in range(0, vocabulary, block):
        stop = min(vocabulary, start + block)
        for first in range(0, n, 256):
            rows = np.arange(first, min(n, first + 256))
            part = np.abs(unit[rows, start:stop])
            inside = (y[rows] >= start) & (y[rows] < stop)
            part[np.flatnonzero(inside), y[rows][inside] - start] = 0.0
            total += 1
            if part.max(initial=0.0) < threshold:
                skipped += 1
                mask[rows, start:stop] = False
                mask[rows[inside], y[rows][inside]] = True
    g = np.where(mask, unit, 0.0) / n
    return g @ w, g.T @ h, skipped / total


@pytest.mark.parametrize("threshold", [1e-3, 1e-2, 1e-1])
def test_gradient_filtering_follows_its_rule(threshold):
    rng = np.random.default_rng(6)
    h = rng.normal(size=(600, 8))
    w = 20 * rng.normal(size=(1000, 8))
    z = h @ w.T
    # Half the targets the row's largest logit, half anywhere: target entries are not all tiny.
    y = np.where(rng.random(600) < 0.5, np.argmax(z, axis=1), rng.integers(0, 1000, 600))
    ref_dh, ref_dw, ref_fraction = independent_filter(h, w, y, threshold, 16)
    loss, dh, dw = linear_cross_entropy_and_grad(h, w, y, block_size=16,
                                                 filter_threshold=threshold)
    fraction = linear_cross_entropy_skipped_fraction(h, w, y, threshold, block_size=16)
    assert fraction == ref_fraction and 0.0 < fraction < 1.0
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-10, atol=1e-14)
    assert loss == linear_cross_entropy(h, w, y, block_size=16)


def test_gradient_filtering_is_off_by_default():
    h, w, y = problem(n=300, vocabulary=200, scale=10.0, seed=9)
    exact = linear_cross_entropy_and_grad(h, w, y, block_size=16)
    same = linear_cross_entropy_and_grad(h, w, y, block_size=16, filter_threshold=0.0)
    for a, b in zip(exact, same, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ignored_rows_take_no_part():
    h, w, y = problem(n=5, seed=10)
    y[1] = -100
    h_nan = h.copy()
    h_nan[1] = np.nan  # a padding row's hidden state does not matter
    loss, dh, dw = linear_cross_entropy_and_grad(h_nan, w, y)
    ref_loss, ref_dh, ref_dw = unblocked(h, w, y, ignore=-100)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-14)
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-16)
    assert np.all(dh[1] == 0.0)


def test_all_ignored_rows():
    h, w, y = problem(n=3)
    y[:] = -100
    assert linear_cross_entropy(h, w, y, reduction="sum") == 0.0
    with pytest.raises(ValueError, match="ignore_index"):
        linear_cross_entropy(h, w, y)


@pytest.mark.parametrize("block_size", [1, None])  # two passes, one pass
def test_extreme_logits_give_no_warning(block_size):
    h = np.array([[1e150], [-1e150]])
    w = np.array([[1e150], [0.0], [-1e150]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dh, dw = linear_cross_entropy_and_grad(h, w, np.array([0, 2]),
                                                     block_size=block_size)
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
        (lambda h, w, y: linear_cross_entropy(np.where(h > 0, np.inf, h), w, y), ValueError,
         "hidden"),
        (lambda h, w, y: linear_cross_entropy(h, np.where(w > 0, np.nan, w), y), ValueError,
         "weight"),
        (lambda h, w, y: linear_cross_entropy(h, w, y > 0), TypeError, "targets"),
        (lambda h, w, y: linear_cross_entropy(h, w, np.where(y > 0, -1, y)), ValueError,
         "targets"),
        (lambda h, w, y: linear_cross_entropy(h, w, np.ma.masked_array(y, y > 2)), TypeError,
         "masked"),
        (lambda h, w, y: linear_cross_entropy(np.full((4, 3), 1e20, np.float32),
                                              np.full((5, 3), 1e20, np.float32), y),
         ValueError, "overflow"),
        # Only a logit that is not the row's largest overflows (to -inf): the smoothed loss
        # would be inf, though its true value, about 2e37, is a float32 number.
        (lambda h, w, y: linear_cross_entropy(np.array([[2e19]], np.float32),
                                              np.array([[1.0], [-2e19]], np.float32),
                                              np.array([0]), label_smoothing=0.1),
         ValueError, "overflow float32"),
        (lambda h, w, y: linear_cross_entropy_and_grad(np.array([[2e19]], np.float32),
                                                       np.array([[1.0], [-2e19]], np.float32),
                                                       np.array([0]), block_size=1),
         ValueError, "overflow float32"),
        (lambda h, w, y: linear_cross_entropy([[1.0, 2.0], [1.0]], w, y), ValueError, "hidden"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    h, w, y = problem(n=4, d=3, vocabulary=5)
    with pytest.raises(error, match=match):
        call(h, w, y)


def test_a_weight_the_matrix_product_would_copy_takes_two_passes():
    # W[:, ::2] has no unit stride: one pass would copy all of W for every chunk.
    h, w, y = problem(n=40, d=6, vocabulary=53, seed=13)
    wide = np.repeat(w, 2, axis=1)
    strided = wide[:, ::2]
    assert vocabulary._inputs(h, strided, y, -100, 0.0, "mean", None).passes == 2
    for ready in (w, np.asfortranarray(w), np.hstack([w, w])[:, :6]):
        assert vocabulary._inputs(h, ready, y, -100, 0.0, "mean", None).passes == 1
    for a, b in zip(linear_cross_entropy_and_grad(h, strided, y),
                    linear_cross_entropy_and_grad(h, w, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


def test_checking_that_weight_is_finite_allocates_no_mask_of_its_size():
    # A V x d boolean mask would be working memory that grows with V.
    from lossgrad.validation import finite

    w = np.zeros((4000, 250))  # 8 MB
    tracemalloc.start()
    finite(w, "weight")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < w.size // 10
    w[1234, 5] = np.nan
    with pytest.raises(ValueError, match="weight must be finite; found nan"):
        finite(w, "weight")


@pytest.mark.parametrize("block_size", [None, 2])  # one pass, two passes
@pytest.mark.parametrize("threshold", [None, 0.5])
def test_no_row_that_counts(block_size, threshold):
    h, w, y = problem(n=5)
    y[:] = -100
    for reduction in ("sum", "none"):
        loss, dh, dw = linear_cross_entropy_and_grad(h, w, y, reduction=reduction,
                                                     block_size=block_size,
                                                     filter_threshold=threshold)
        assert np.all(loss == 0.0) and not dh.any() and not dw.any()
    assert linear_cross_entropy_skipped_fraction(h, w, y, 0.5, block_size=block_size) == 0.0
    for no_targets in (y[:0], []):  # an empty list is float64 to NumPy
        empty = linear_cross_entropy_and_grad(h[:0], w, no_targets, reduction="sum",
                                              block_size=block_size)
        assert empty[0] == 0.0 and empty[1].shape == (0, 6) and not empty[2].any()


@pytest.mark.parametrize("block_size", [None, 1])  # one pass, two passes
def test_smoothing_with_logits_near_the_top_of_the_range(block_size):
    # Logits 1e308, 1e308 and 9e307: finite, but their sum is not a float64 number.
    h = np.array([[1e154]])
    w = np.array([[1e154], [1e154], [0.9e154]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = linear_cross_entropy(h, w, np.array([0]), label_smoothing=0.1,
                                    reduction="none", block_size=block_size)
        mean = linear_cross_entropy(h, w, np.array([0]), label_smoothing=0.1,
                                    block_size=block_size)
    with mpmath.workdps(60):
        z = [mpmath.mpf(1e154) * mpmath.mpf(x) for x in (1e154, 1e154, 0.9e154)]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in z))
        exact = 0.9 * (lse - z[0]) + 0.1 * (lse - mpmath.fsum(z) / 3)
        # kappa = sum |z_k (s_k - t_k)| / loss, the loss's condition number (about 280 here:
        # the smoothed term is a difference of numbers near 1e308)
        s = [mpmath.exp(x - lse) for x in z]
        t = [0.9 * (k == 0) + mpmath.mpf(0.1) / 3 for k in range(3)]
        terms = (abs(x * (a - b)) for x, a, b in zip(z, s, t, strict=True))
        kappa = float(mpmath.fsum(terms) / exact)
    assert rows[0] == mean
    assert abs(mean - float(exact)) <= 2 * kappa * np.spacing(float(exact))
