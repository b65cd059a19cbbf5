"""The book's figures, as functions, so that chapters and the README draw the same picture."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lossgrad.accuracy import exact_bce, exact_bce_grad, ulp_error
from lossgrad.descent import descent_path
from lossgrad.losses import (
    bce_with_logits,
    bce_with_logits_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)
from lossgrad.numerics import logit, sigmoid, softmax
from lossgrad.plotstyle import LINESTYLES, PALETTE, use
from lossgrad.simplex import draw_simplex, to_ternary

__all__ = [
    "BCE_METHODS",
    "LOG_PARTITIONS",
    "bce_figure",
    "bce_ulp_errors",
    "derivative_step_errors",
    "derivative_step_figure",
    "gradient_norm_figure",
    "log_partition_figure",
    "logit_plane_figure",
    "sigmoid_figure",
    "simplex_descent_figure",
    "ulp_error_figure",
]


def sigmoid_figure(limit: float = 8.0) -> Figure:
    """The sigmoid and its derivative side by side ("The logistic sigmoid").

    Examples
    --------
    >>> from lossgrad.figures import sigmoid_figure
    >>> [ax.get_xlabel() for ax in sigmoid_figure().axes]
    ['logit $u$', 'logit $u$']
    """
    use()
    u = np.linspace(-limit, limit, 801)
    s = sigmoid(u)
    fig, (left, right) = plt.subplots(1, 2, sharex=True)
    left.plot(u, s, label=r"$\sigma(u)$")
    for level in (0.0, 1.0):
        left.axhline(level, color=PALETTE["black"], linewidth=0.8, linestyle=":")
    left.plot([0], [0.5], "o", color=PALETTE["vermillion"], label=r"$\sigma(0) = \frac{1}{2}$")
    left.set(xlabel="logit $u$", ylabel=r"probability $\sigma(u)$", title="Sigmoid")
    left.legend(loc="upper left")
    right.plot(u, s * (1 - s), color=PALETTE["green"], label=r"$\sigma(u)(1-\sigma(u))$")
    right.plot([0], [0.25], "o", color=PALETTE["vermillion"], label=r"maximum $\frac{1}{4}$ at 0")
    right.set(xlabel="logit $u$", ylabel=r"slope $\sigma'(u)$", title="Its derivative")
    right.set_ylim(0, 0.3)
    right.legend(loc="upper left")
    return fig


def bce_figure(targets: tuple[float, ...] = (0.1, 0.5, 0.9, 1.0), limit: float = 6.0) -> Figure:
    """Binary cross-entropy and its gradient for several targets, minima marked.

    Drawn in "The gradient of binary cross-entropy with respect to the logit".

    Each target :math:`p < 1` has its minimum at :math:`u^* = \\operatorname{logit}(p)`, where the
    gradient crosses zero; for :math:`p = 1` the loss keeps decreasing and the gradient only
    tends to zero.

    Examples
    --------
    >>> from lossgrad.figures import bce_figure
    >>> [ax.get_ylabel() for ax in bce_figure().axes]
    ['loss $L(u)$ (nats)', "gradient $L'(u) = \\\\sigma(u) - p$"]
    """
    use()
    u = np.linspace(-limit, limit, 801)
    fig, (left, right) = plt.subplots(1, 2, sharex=True)
    for p in targets:
        target = np.full_like(u, p)
        (line,) = left.plot(u, bce_with_logits(u, target, reduction="none"), label=f"$p = {p:g}$")
        right.plot(u, bce_with_logits_grad(u, target, reduction="none"), color=line.get_color(),
                   linestyle=line.get_linestyle(), label=f"$p = {p:g}$")
        if 0 < p < 1:
            star = logit(np.float64(p))
            minimum = bce_with_logits(star, np.float64(p), reduction="none")
            left.plot([star], [minimum], "o", color=line.get_color())
            right.plot([star], [0.0], "o", color=line.get_color())
    right.axhline(0, color=PALETTE["black"], linewidth=0.8)
    left.set(xlabel="logit $u$", ylabel="loss $L(u)$ (nats)", title="Loss (dots: minima)")
    right.set(xlabel="logit $u$", ylabel=r"gradient $L'(u) = \sigma(u) - p$",
              title="Gradient (dots: zeros)")
    left.set_ylim(0, 4)
    left.legend(loc="upper center")
    right.legend(loc="upper left")
    return fig


# Part II: "Seeing the gradients".

_MAP = "viridis"  # perceptually uniform and readable with the common colour-vision deficiencies


def _loss_and_gradient_on_plane(
    target: np.ndarray, first: np.ndarray, second: np.ndarray, third: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and gradient over a grid of (z_1, z_2), with z_3 fixed when there are 3 classes."""
    columns = [first, second] if third is None else [first, second, np.full_like(first, third)]
    z = np.stack(columns, axis=-1)
    y = np.broadcast_to(target, z.shape)
    return (
        softmax_cross_entropy(z, y, reduction="none"),
        softmax_cross_entropy_grad(z, y, reduction="none"),
    )


def logit_plane_figure(
    targets: tuple[tuple[float, ...], ...], limit: float = 4.0, third: float | None = None
) -> Figure:
    """Loss contours and descent arrows over the plane of the first two logits.

    Drawn in "Seeing the gradients".

    With two classes the plane is :math:`(z_1, z_2)`; with three, :math:`z_3` is held at
    ``third``. Arrows show :math:`-\\nabla L`, the direction gradient descent moves, on one scale
    in every panel; the panels also share one colour scale, the one the colour bar shows.

    Examples
    --------
    >>> from lossgrad.figures import logit_plane_figure
    >>> fig = logit_plane_figure(((1.0, 0.0), (0.7, 0.3)))
    >>> [ax.get_xlabel() for ax in fig.axes[:2]]
    ['logit $z_1$', 'logit $z_1$']
    """
    use()
    fine = np.linspace(-limit, limit, 201)
    coarse = np.linspace(-limit, limit, 13)
    fig, axes = plt.subplots(1, len(targets), sharey=True, figsize=(4.2 * len(targets), 3.9))
    first, second = np.meshgrid(fine, fine)
    losses = [_loss_and_gradient_on_plane(np.array(t), first, second, third)[0] for t in targets]
    # One colour scale for every panel, so that the single colour bar is right for each.
    levels = MaxNLocator(16).tick_values(min(map(np.min, losses)), max(map(np.max, losses)))
    for ax, target, loss in zip(np.atleast_1d(axes), targets, losses, strict=True):
        y = np.array(target)
        first, second = np.meshgrid(fine, fine)
        filled = ax.contourf(first, second, loss, levels=levels, cmap=_MAP)
        ax.contour(first, second, loss, levels=levels, colors="white", linewidths=0.4)
        first, second = np.meshgrid(coarse, coarse)
        _, grad = _loss_and_gradient_on_plane(y, first, second, third)
        ax.quiver(first, second, -grad[..., 0], -grad[..., 1], color="white", angles="xy",
                  scale_units="xy", scale=0.9, width=0.006)
        if np.all(y > 0):
            # The minimiser: z_k - z_K = log y_k - log y_K, a line for two classes.
            if len(y) == 2:
                offset = np.log(y[0] / y[1])
                ax.plot(fine, fine - offset, color=PALETTE["orange"], linestyle="--",
                        label=r"minimum: $z_1 - z_2 = \log\frac{y_1}{y_2}$")
            else:
                point = np.log(y[:2] / y[2]) + third
                ax.plot(*point, "*", color=PALETTE["orange"], markersize=14,
                        markeredgecolor="black", label="minimum")
            ax.legend(loc="lower right", framealpha=0.9, frameon=True)
        names = ", ".join(f"{v:g}" for v in y)
        ax.set(xlabel="logit $z_1$", title=f"target $y = ({names})$", xlim=(-limit, limit),
               ylim=(-limit, limit), aspect="equal")
        ax.grid(False)
    np.atleast_1d(axes)[0].set_ylabel("logit $z_2$")
    fig.colorbar(filled, ax=axes, label="loss (nats)", shrink=0.85)
    return fig


def simplex_descent_figure(
    targets: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.6, 0.3, 0.1)),
    starts: tuple[tuple[float, float, float], ...] = ((0, 0, 0), (0, 3, 0), (0, 0, 3), (-2, 2, 1)),
    iterations: int = 60,
) -> Figure:
    """Gradient-descent paths of the predicted distribution, drawn on the probability simplex.

    Drawn in "Seeing the gradients".

    Examples
    --------
    >>> from lossgrad.figures import simplex_descent_figure
    >>> len(simplex_descent_figure().axes)
    2
    """
    use()
    fig, axes = plt.subplots(1, len(targets), figsize=(4.4 * len(targets), 4.0))
    colours = list(PALETTE.values())
    for ax, target in zip(np.atleast_1d(axes), targets, strict=True):
        draw_simplex(ax)
        y = np.array(target)
        for n, start in enumerate(starts):
            path = descent_path(np.array(start, dtype=float), y, step=1.0, iterations=iterations)
            xy = to_ternary(softmax(path))
            ax.plot(xy[:, 0], xy[:, 1], color=colours[n], linestyle=LINESTYLES[n], linewidth=1.6,
                    marker=".", markersize=3, label=f"start $z = {tuple(int(v) for v in start)}$")
            ax.plot(*xy[0], "o", color=colours[n])
        ax.plot(*to_ternary(y), "*", color="black", markersize=14, label="target $y$")
        names = ", ".join(f"{v:g}" for v in y)
        ax.set_title(f"target $y = ({names})$, {iterations} steps")
    np.atleast_1d(axes)[-1].legend(loc="upper left", bbox_to_anchor=(0.72, 1.0), fontsize=8)
    return fig


def gradient_norm_figure(iterations: int = 200) -> Figure:
    """How the gradient's size, :math:`\\lVert s - y \\rVert`, shrinks along gradient descent.

    Drawn in "Seeing the gradients".

    Examples
    --------
    >>> from lossgrad.figures import gradient_norm_figure
    >>> gradient_norm_figure().axes[0].get_yscale()
    'log'
    """
    use()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for target in ((1.0, 0.0, 0.0), (0.6, 0.3, 0.1)):
        y = np.array(target)
        path = descent_path(np.zeros(3), y, step=1.0, iterations=iterations)
        norms = np.linalg.norm(softmax(path) - y, axis=-1)
        names = ", ".join(f"{v:g}" for v in y)
        ax.plot(np.arange(iterations + 1), norms, label=f"target $y = ({names})$")
    ax.set(yscale="log", xlabel="gradient-descent step $t$ (step size 1)",
           ylabel=r"gradient norm $\|s - y\|_2$")
    ax.legend()
    return fig


# Part III: computing it.

#: The three ways of computing binary cross-entropy and its gradient compared in "Floating point".
BCE_METHODS = {
    "naive": (
        lambda u, p: np.log(1 + np.exp(u)) - p * u,
        lambda u, p: 1 / (1 + np.exp(-u)) - p,
    ),
    "common stable": (
        lambda u, p: np.maximum(u, 0) - u * p + np.log1p(np.exp(-np.abs(u))),
        lambda u, p: np.where(u >= 0, 1 / (1 + np.exp(-np.abs(u))),
                              np.exp(-np.abs(u)) / (1 + np.exp(-np.abs(u)))) - p,
    ),
    "lossgrad": (
        lambda u, p: bce_with_logits(u, p, reduction="none"),
        lambda u, p: bce_with_logits_grad(u, p, reduction="none"),
    ),
}


def bce_ulp_errors(
    quantity: str,
    p: float,
    sign: float = 1.0,
    dtype: type = np.float64,
    magnitudes: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Errors in ULPs of each of :data:`BCE_METHODS`, for one panel of :func:`ulp_error_figure`.

    The loss or the gradient (``quantity``) at target ``p`` over logits ``sign * magnitudes``
    (by default 89 magnitudes from 1e-8 to 1e3), against mpmath at 50 digits. Inputs and the
    references both use ``p`` and the logits rounded to ``dtype``. Drawn in "Floating point".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.figures import bce_ulp_errors
    >>> errors = bce_ulp_errors("gradient", 1.0, magnitudes=np.array([40.0]))
    >>> float(errors["naive"][0]) > 1e15, float(errors["lossgrad"][0]) <= 1
    (True, True)
    """
    magnitudes = np.logspace(-8, 3, 89) if magnitudes is None else magnitudes
    u = (sign * np.asarray(magnitudes)).astype(dtype)
    target = np.full_like(u, p)
    exact_f = exact_bce if quantity == "loss" else exact_bce_grad
    exact = [exact_f(a, b) for a, b in zip(u, target, strict=True)]
    errors = {}
    for name, (loss_f, grad_f) in BCE_METHODS.items():
        with np.errstate(all="ignore"):
            computed = (loss_f if quantity == "loss" else grad_f)(u, target)
        errors[name] = ulp_error(computed, exact, dtype)
    return errors


def ulp_error_figure(
    panels: tuple[tuple[str, float, float], ...] = (
        ("loss", 0.999, 1.0),
        ("gradient", 1.0, 1.0),
        ("gradient", 0.5, 1.0),
    ),
    dtype: type = np.float64,
) -> Figure:
    """Error in ULPs against |u| for the naive, common stable and lossgrad formulas.

    Each panel is ``(quantity, p, sign)``: the loss or the gradient, at target ``p``, over
    logits ``sign * |u|`` with ``|u|`` from 1e-8 to 1e3. Errors are measured against mpmath at
    50 digits (:mod:`lossgrad.accuracy`). Errors of 0 are drawn at 0.01 and infinite or
    non-finite results at the top of the axis. Drawn in "Floating point".

    Examples
    --------
    >>> from lossgrad.figures import ulp_error_figure
    >>> [ax.get_yscale() for ax in ulp_error_figure().axes]
    ['log', 'log', 'log']
    """
    use()
    magnitudes = np.logspace(-8, 3, 89)
    fig, axes = plt.subplots(1, len(panels), sharey=True, figsize=(4.0 * len(panels), 3.6))
    ceiling = 1e18
    for ax, (quantity, p, sign) in zip(np.atleast_1d(axes), panels, strict=True):
        errors = bce_ulp_errors(quantity, p, sign, dtype, magnitudes)
        for n, (name, error) in enumerate(errors.items()):
            error = np.clip(np.where(error == 0, 1e-2, error), 1e-2, ceiling)
            ax.plot(magnitudes, error, label=name, color=list(PALETTE.values())[n],
                    linestyle=LINESTYLES[n], marker=".", markersize=3)
        ax.axhline(1.0, color=PALETTE["black"], linewidth=0.8, linestyle=":")
        what = "loss" if quantity == "loss" else "gradient"
        side = "" if sign > 0 else "-"
        ax.set(xscale="log", yscale="log", xlabel=f"logit $u = {side}|u|$, $|u|$ on a log scale",
               title=f"{what}, $p = {p:g}$", ylim=(5e-3, 5 * ceiling))
    np.atleast_1d(axes)[0].set_ylabel(f"error (ULPs of {np.dtype(dtype).name})")
    np.atleast_1d(axes)[0].legend(loc="upper left")
    return fig


def derivative_step_errors(
    u: float = 2.0, p: float = 0.3, steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative errors of central differences and of the complex step, for each step ``h``.

    The derivative of :math:`\\log(1 + e^{u}) - pu` at ``u``, against :math:`\\sigma(u) - p`
    at 50 digits; by default 96 steps from 1e-20 to 1e-1. Returns ``(steps, central,
    complex_step)``. The data of :func:`derivative_step_figure`; "Checking gradients".

    Examples
    --------
    >>> from lossgrad.figures import derivative_step_errors
    >>> steps, central, complex_ = derivative_step_errors()
    >>> bool(central.min() < 1e-11), bool(complex_[steps < 1e-7].max() < 1e-15)
    (True, True)
    """

    def loss(x):
        return np.log1p(np.exp(x)) - p * x

    exact = float(exact_bce_grad(u, p))
    steps = np.logspace(-20, -1, 96) if steps is None else np.asarray(steps, dtype=np.float64)
    central = np.array([abs((loss(u + h) - loss(u - h)) / (2 * h) - exact) for h in steps])
    complex_ = np.array([abs(np.imag(loss(u + 1j * h)) / h - exact) for h in steps])
    return steps, central / abs(exact), complex_ / abs(exact)


def derivative_step_figure(u: float = 2.0, p: float = 0.3) -> Figure:
    """Error of central differences and of the complex step against the step size h.

    For the binary cross-entropy at logit ``u`` and target ``p``, written with complex-capable
    operations, :math:`\\log(1 + e^{u}) - pu`. Drawn in "Checking gradients".

    Examples
    --------
    >>> from lossgrad.figures import derivative_step_figure
    >>> derivative_step_figure().axes[0].get_xlabel()
    'step $h$'
    """
    use()
    steps, central, complex_ = derivative_step_errors(u, p)
    floor = 1e-17
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(steps, np.maximum(central, floor), label="central difference", marker=".")
    ax.plot(steps, np.maximum(complex_, floor), label="complex step", marker=".")
    eps = np.finfo(np.float64).eps
    ax.axvline(np.cbrt(eps), color=PALETTE["black"], linestyle=":", linewidth=1,
               label=r"$h = \epsilon^{1/3}$")
    ax.set(xscale="log", yscale="log", xlabel="step $h$", ylabel="relative error of $L'(u)$",
           ylim=(floor / 2, 10), title=f"$u = {u:g}$, $p = {p:g}$")
    ax.legend(loc="upper right")
    return fig


# Part IV: "Where cross-entropy comes from".

#: The log-partition functions :math:`A(\eta)` of three one-parameter exponential families with
#: :math:`T(t) = t`, and their derivatives, the means :math:`A'(\eta) = \mathbb{E}[t]`.
LOG_PARTITIONS = {
    "Bernoulli": (r"$\operatorname{softplus}(\eta)$", lambda eta: np.logaddexp(0.0, eta), sigmoid,
                  r"$\sigma(\eta)$"),
    "Poisson": (r"$e^{\eta}$", np.exp, np.exp, r"$e^{\eta}$"),
    "Gaussian, unit variance": (r"$\eta^2/2$", lambda eta: eta**2 / 2, lambda eta: eta,
                                r"$\eta$"),
}


def log_partition_figure(low: float = -3.0, high: float = 1.5) -> Figure:
    """Log-partition functions and their derivatives, the means ("Where cross-entropy comes from").

    Left: :math:`A(\\eta)` of the Bernoulli, Poisson and unit-variance Gaussian families
    (:data:`LOG_PARTITIONS`); right: :math:`A'(\\eta)`, the mean of the observation.

    Examples
    --------
    >>> from lossgrad.figures import log_partition_figure
    >>> [ax.get_xlabel() for ax in log_partition_figure().axes]
    ['natural parameter $\\\\eta$', 'natural parameter $\\\\eta$']
    """
    use()
    eta = np.linspace(low, high, 401)
    fig, (left, right) = plt.subplots(1, 2, sharex=True)
    for name, (a_name, a, mean, mean_name) in LOG_PARTITIONS.items():
        (line,) = left.plot(eta, a(eta), label=f"{name}: {a_name}")
        right.plot(eta, mean(eta), color=line.get_color(), linestyle=line.get_linestyle(),
                   label=f"{name}: {mean_name}")
    for ax in (left, right):
        ax.axhline(0, color=PALETTE["black"], linewidth=0.8)
    left.set(xlabel=r"natural parameter $\eta$", ylabel=r"log-partition $A(\eta)$",
             title="Log-partition functions")
    right.set(xlabel=r"natural parameter $\eta$", ylabel=r"mean $A'(\eta) = \mathbb{E}[t]$",
              title="Their slopes: the means")
    left.legend(loc="upper center")
    right.legend(loc="upper left")
    return fig
