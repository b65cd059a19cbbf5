"""One plot style for every figure in the book: colour-blind-safe colours, labelled axes.

The palette is Okabe and Ito's, which stays distinguishable under the common forms of colour
blindness; each colour is paired with its own line style, so the lines also stay apart in
greyscale print.
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

__all__ = ["LINESTYLES", "PALETTE", "use"]

#: Okabe–Ito colours, yellow left out (too pale on white).
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "black": "#000000",
}
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)), "-")

_RC = {
    "axes.prop_cycle": cycler(color=list(PALETTE.values())) + cycler(linestyle=list(LINESTYLES)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "figure.figsize": (8.0, 3.6),
    "figure.dpi": 110,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 150,
    # Opaque white behind every figure, whatever a reader's matplotlibrc says: on the site's dark
    # theme a transparent figure would put black axes and labels on a near-black page.
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    # Fonts and metadata fixed so that a figure's bytes do not depend on the machine or the day.
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "lossgrad",
}


def use() -> None:
    """Apply the book's plot style to matplotlib (call once at the top of a chapter).

    Examples
    --------
    >>> import matplotlib as mpl
    >>> from lossgrad import plotstyle
    >>> plotstyle.use()
    >>> mpl.rcParams["axes.prop_cycle"].by_key()["color"][0]
    '#0072B2'
    """
    mpl.rcParams.update(_RC)
