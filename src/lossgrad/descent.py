"""Plain gradient descent on logits, to watch softmax cross-entropy being minimised.

Used in "Seeing the gradients".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad.losses import softmax_cross_entropy_grad

__all__ = ["descent_path"]


def descent_path(
    start: ArrayLike, target: ArrayLike, *, step: float = 1.0, iterations: int = 100
) -> NDArray[np.float64]:
    r"""Logits visited by gradient descent on softmax cross-entropy.

    Used in "Seeing the gradients".

    .. math::

        z^{(t+1)} = z^{(t)} - \eta\,\bigl(s(z^{(t)}) - y\bigr)

    Parameters
    ----------
    start : array_like of float, shape (K,)
        The first logits :math:`z^{(0)}`.
    target : array_like of float, shape (K,)
        Target probabilities :math:`y`.
    step : float, default 1
        The step size :math:`\eta > 0`.
    iterations : int, default 100
        Number of steps.

    Returns
    -------
    ndarray, shape (iterations + 1, K)
        :math:`z^{(0)}, \dots, z^{(T)}`.

    Raises
    ------
    ValueError
        If ``step`` is not positive or ``iterations`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.descent import descent_path
    >>> path = descent_path(np.zeros(3), np.array([1.0, 0.0, 0.0]), iterations=2)
    >>> path.round(3)
    array([[ 0.   ,  0.   ,  0.   ],
           [ 0.667, -0.333, -0.333],
           [ 1.091, -0.545, -0.545]])
    """
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be non-negative, got {iterations!r}")
    z = np.array(start, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    path = [z.copy()]
    for _ in range(iterations):
        z = z - step * softmax_cross_entropy_grad(z, y, reduction="sum")
        path.append(z.copy())
    return np.array(path)
