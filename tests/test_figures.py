"""The plotting helpers: ternary geometry, descent paths, and every book figure renders."""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lossgrad as lg
from lossgrad import figures
from lossgrad.descent import descent_path
from lossgrad.simplex import to_ternary


def test_ternary_corners_centre_and_edges():
    corners = to_ternary(np.eye(3))
    # An equilateral triangle with unit sides.
    sides = [np.linalg.norm(corners[a] - corners[b]) for a, b in ((0, 1), (1, 2), (2, 0))]
    np.testing.assert_allclose(sides, 1.0)
    # The uniform distribution sits at the centroid, equally far from every corner.
    centre = to_ternary(np.full(3, 1 / 3))
    np.testing.assert_allclose(np.linalg.norm(corners - centre, axis=1), 1 / np.sqrt(3))
    # A point with no mass on class 3 lies on the edge between corners 1 and 2.
    assert to_ternary([0.25, 0.75, 0.0])[1] == 0.0


def test_ternary_rejects_the_wrong_number_of_classes():
    with pytest.raises(ValueError, match="3 classes"):
        to_ternary(np.ones((2, 4)) / 4)


def test_descent_path_lowers_the_loss_at_every_step():
    # The Hessian's eigenvalues are at most 1/2, so a step of 1 < 2 / (1/2) always descends.
    target = np.array([0.6, 0.3, 0.1])
    path = descent_path(np.array([-2.0, 2.0, 1.0]), target, step=1.0, iterations=50)
    losses = lg.softmax_cross_entropy(path, np.tile(target, (51, 1)), reduction="none")
    assert np.all(np.diff(losses) < 0)
    np.testing.assert_allclose(lg.softmax(path[-1]), target, atol=1e-3)


@pytest.mark.parametrize(("step", "iterations"), [(0.0, 5), (-1.0, 5), (1.0, -1)])
def test_descent_path_rejects_bad_settings(step, iterations):
    with pytest.raises(ValueError):
        descent_path(np.zeros(3), np.array([1.0, 0.0, 0.0]), step=step, iterations=iterations)


@pytest.mark.parametrize(
    "make",
    [
        figures.sigmoid_figure,
        figures.bce_figure,
        lambda: figures.logit_plane_figure(((1.0, 0.0), (0.7, 0.3))),
        lambda: figures.logit_plane_figure(((1.0, 0.0, 0.0), (0.6, 0.3, 0.1)), third=0.0),
        figures.simplex_descent_figure,
        figures.gradient_norm_figure,
        figures.log_partition_figure,
    ],
)
def test_every_figure_renders_with_labelled_axes(make):
    fig = make()
    fig.savefig(io.BytesIO(), format="png")  # draws every text, so bad mathtext fails here
    for ax in fig.axes:
        if ax.axison and ax.get_label() != "<colorbar>":
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title(), ax
    plt.close(fig)


@pytest.mark.parametrize("family", sorted(figures.LOG_PARTITIONS))
def test_each_log_partition_slope_is_the_plotted_mean(family):
    # The mean drawn on the right is the derivative of A on the left, by mpmath's own
    # differentiation of the same A written with mpmath's functions.
    import mpmath

    _, a, mean, _ = figures.LOG_PARTITIONS[family]
    exact = {
        "Bernoulli": lambda x: mpmath.log1p(mpmath.exp(x)),
        "Poisson": mpmath.exp,
        "Gaussian, unit variance": lambda x: x**2 / 2,
    }[family]
    for x in np.linspace(-3.0, 1.5, 10):
        assert a(np.float64(x)) == pytest.approx(float(exact(x)), rel=1e-14)
        assert mean(np.float64(x)) == pytest.approx(float(mpmath.diff(exact, x)), rel=1e-12)
