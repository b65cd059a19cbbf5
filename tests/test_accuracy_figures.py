"""The figures of "Floating point" and "Checking gradients", tested outside the notebooks.

What each figure must show is checked on the data it draws: lossgrad within a few ULPs where the
naive formulas are millions of ULPs off, and central differences best near h = eps^(1/3) while
the complex step stays at rounding level for every small h.
"""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from lossgrad.figures import derivative_step_errors, derivative_step_figure, ulp_error_figure


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_ulp_error_figure_shows_lossgrad_within_two_ulps_and_the_naive_far_off():
    fig = ulp_error_figure()
    fig.savefig(io.BytesIO(), format="png")
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlabel() and ax.get_title()
        lines = lines_by_label(ax)
        assert {"naive", "common stable", "lossgrad"} <= set(lines)
        # Errors of 0 are drawn at 0.01; lossgrad's stay within 2 ULP at every point.
        assert np.max(lines["lossgrad"].get_ydata()) <= 2
    # The gradient panels: the naive formula loses everything somewhere (p = 1 for u >> 0,
    # p = 1/2 near 0).
    for ax in fig.axes[1:]:
        assert np.max(lines_by_label(ax)["naive"].get_ydata()) > 1e6
    assert fig.axes[0].get_ylabel().startswith("error (ULPs of float64")
    plt.close(fig)


def test_ulp_error_figure_in_float32_labels_its_unit():
    fig = ulp_error_figure(panels=(("gradient", 1.0, 1.0),), dtype=np.float32)
    assert "float32" in fig.axes[0].get_ylabel()
    # The float32 gradient is computed in float32 arithmetic; "Floating point" states 3 ULP here.
    assert np.max(lines_by_label(fig.axes[0])["lossgrad"].get_ydata()) <= 3
    plt.close(fig)


def test_derivative_step_figure_shows_the_two_methods_against_the_step():
    fig = derivative_step_figure()
    fig.savefig(io.BytesIO(), format="png")
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step $h$"
    lines = lines_by_label(ax)
    assert {"central difference", "complex step"} <= set(lines)
    plt.close(fig)


def test_derivative_step_errors_have_the_shapes_the_chapter_describes():
    steps, central, complex_ = derivative_step_errors()
    eps = np.finfo(np.float64).eps
    best = steps[np.argmin(central)]
    # Truncation h^2 against rounding eps/h: the best step lies within a factor 100 of eps^(1/3).
    assert np.cbrt(eps) / 100 < best < np.cbrt(eps) * 100
    assert central.min() < 1e-10
    # The complex step has no subtraction: at rounding level for every step below 1e-7...
    assert complex_[steps <= 1e-7].max() < 1e-15
    # ...while central differences at h = 1e-20 are all rounding error.
    assert central[steps <= 1e-17].min() > 1e-3
