"""Gradient checks: compare an analytic derivative with a finite-difference estimate.

Used in chapter 3 to check :math:`L'(u) = \\sigma(u) - p` on a grid, and in the tests.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["central_difference", "relative_error"]


def central_difference(
    f: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    x: ArrayLike,
    step: float | None = None,
) -> NDArray[np.float64]:
    r"""Central-difference estimate of the derivative of an element-wise function.

    .. math::

        f'(x) \approx \frac{f(x + h) - f(x - h)}{2h}, \qquad
        h = \epsilon^{1/3} \max(1, |x|)

    The truncation error is :math:`O(h^2)` and the rounding error :math:`O(\epsilon/h)`;
    :math:`h \propto \epsilon^{1/3}` balances the two, for a total error near
    :math:`\epsilon^{2/3} \approx 4 \times 10^{-11}` relative to the scale of :math:`f`.
    The step is rounded so that :math:`x \pm h` are exactly :math:`h` away from :math:`x`.

    Parameters
    ----------
    f : callable
        An element-wise function of a float64 array.
    x : array_like of float
        Points at which to estimate :math:`f'`.
    step : float, optional
        A fixed :math:`h` in place of the scaled default.

    Returns
    -------
    ndarray
        The estimate at each point of ``x``.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006,
       section 8.1.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.gradcheck import central_difference
    >>> d = central_difference(np.sin, np.array([0.0, 1.0]))
    >>> bool(np.allclose(d, np.cos([0.0, 1.0]), rtol=1e-9))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x)) if step is None else step
    # x + h is rounded; using the step actually taken removes that rounding from the quotient.
    h = (x + h) - x
    return (f(x + h) - f(x - h)) / (2 * h)


def relative_error(
    approx: ArrayLike, exact: ArrayLike, floor: float = 1e-300
) -> NDArray[np.float64]:
    r"""Element-wise relative error :math:`|a - e| / \max(|e|, \text{floor})`.

    Examples
    --------
    >>> from lossgrad.gradcheck import relative_error
    >>> relative_error([1.0, 2.2], [1.0, 2.0])
    array([0. , 0.1])
    """
    a = np.asarray(approx, dtype=np.float64)
    e = np.asarray(exact, dtype=np.float64)
    return np.abs(a - e) / np.maximum(np.abs(e), floor)
