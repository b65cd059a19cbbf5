"""The probability simplex for three classes, drawn as a triangle (a ternary plot).

A probability vector :math:`(s_1, s_2, s_3)` is drawn at the weighted average of the triangle's
corners, so that each corner is a certain class and the centre is the uniform distribution.
Used in "Seeing the gradients".
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike, NDArray

from lossgrad.plotstyle import PALETTE

__all__ = ["CORNERS", "draw_simplex", "to_ternary"]

#: Where classes 1, 2 and 3 sit: an equilateral triangle with unit sides.
CORNERS: NDArray[np.float64] = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])


def to_ternary(probabilities: ArrayLike) -> NDArray[np.float64]:
    """Plane coordinates of probability vectors over three classes.

    Used in "Seeing the gradients".

    Parameters
    ----------
    probabilities : array_like, shape (..., 3)
        Rows of non-negative numbers summing to 1.

    Returns
    -------
    ndarray, shape (..., 2)
        The points :math:`\\sum_k s_k c_k`, with :math:`c_k` the corners in :data:`CORNERS`.

    Raises
    ------
    ValueError
        If the last axis does not have length 3.

    Examples
    --------
    >>> from lossgrad.simplex import to_ternary
    >>> to_ternary([[1, 0, 0], [0, 1, 0], [1/3, 1/3, 1/3]]).round(4)
    array([[0.    , 0.    ],
           [1.    , 0.    ],
           [0.5   , 0.2887]])
    """
    s = np.asarray(probabilities, dtype=np.float64)
    if s.shape[-1:] != (3,):
        raise ValueError(f"probabilities need 3 classes along the last axis, got shape {s.shape}")
    return s @ CORNERS


def draw_simplex(
    ax: Axes, labels: tuple[str, str, str] = ("class 1", "class 2", "class 3")
) -> Axes:
    """Draw the triangle, a light grid at steps of 0.2, and the corners' labels on ``ax``.

    Used in "Seeing the gradients".

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from lossgrad.simplex import draw_simplex
    >>> fig, ax = plt.subplots()
    >>> [t.get_text() for t in draw_simplex(ax).texts]
    ['class 1', 'class 2', 'class 3']
    """
    outline = np.vstack([CORNERS, CORNERS[:1]])
    ax.plot(outline[:, 0], outline[:, 1], color=PALETTE["black"], linewidth=1.0, linestyle="-")
    for level in np.arange(0.2, 1.0, 0.2):
        for k in range(3):
            # The line where class k has probability `level`.
            a, b = (k + 1) % 3, (k + 2) % 3
            ends = np.zeros((2, 3))
            ends[:, k] = level
            ends[0, a], ends[1, b] = 1 - level, 1 - level
            xy = to_ternary(ends)
            ax.plot(xy[:, 0], xy[:, 1], color="0.85", linewidth=0.6, linestyle="-", zorder=0)
    offsets = [(-0.04, -0.05), (0.04, -0.05), (0.0, 0.04)]
    for corner, label, (dx, dy), ha in zip(CORNERS, labels, offsets, ("right", "left", "center"),
                                           strict=True):
        ax.text(corner[0] + dx, corner[1] + dy, label, ha=ha, va="center", fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylim(-0.12, 0.98)
    ax.axis("off")
    return ax
