"""The book's figures, as functions, so that chapters and the README draw the same picture."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lossgrad.numerics import bce_with_logits, bce_with_logits_grad, logit, sigmoid
from lossgrad.plotstyle import PALETTE, use

__all__ = ["bce_figure", "sigmoid_figure"]


def sigmoid_figure(limit: float = 8.0) -> Figure:
    """The sigmoid and its derivative side by side (chapter 2, "The logistic sigmoid").

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
    """Binary cross-entropy and its gradient for several targets, minima marked (chapter 3).

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
