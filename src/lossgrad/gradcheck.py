"""Gradient checks: compare an analytic derivative with a finite-difference estimate.

Central differences and the complex step, and the relative-difference metric. Used in
"The gradient of binary cross-entropy with respect to the logit" to check
:math:`L'(u) = \\sigma(u) - p` on a grid, in "Checking gradients" for each gradient function of
the package with every combination of its options, and in the tests.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COMPLEX_STEP",
    "bce_analytic",
    "central_difference",
    "check_gradient",
    "complex_step",
    "relative_difference",
    "softmax_cross_entropy_analytic",
]


def central_difference(
    f: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    x: ArrayLike,
    step: float | None = None,
) -> NDArray[np.float64]:
    r"""Central-difference estimate of the derivative of an element-wise function.

    Used in "The gradient of binary cross-entropy with respect to the logit"
    and "Checking gradients".

    .. math::

        f'(x) \approx \frac{f(x + h) - f(x - h)}{2h}, \qquad
        h = \epsilon^{1/3} \max(1, |x|)

    The truncation error is :math:`O(h^2)` and the rounding error :math:`O(\epsilon/h)`;
    :math:`h \propto \epsilon^{1/3}` balances the two, for a total error near
    :math:`\epsilon^{2/3} \approx 4 \times 10^{-11}` relative to the scale of :math:`f`.
    The step is rounded so that :math:`x + h` is exactly :math:`h` away from :math:`x`
    (:math:`x - h` is rounded like any other result).

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
    if step is not None and not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive, finite number, got {step!r}")
    h = _step(x) if step is None else (x + step) - x
    if np.any(h == 0):
        raise ValueError(
            f"step {step!r} is too small to move x at {x[h == 0].flat[0].item()!r} "
            f"(x + step rounds to x)"
        )
    return (f(x + h) - f(x - h)) / (2 * h)


def _step(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The central-difference step eps^(1/3)·max(1, |x|), as actually taken from x."""
    h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
    # x + h is rounded; using the step actually taken removes that rounding from the quotient.
    return (x + h) - x


#: The complex step's h. With no subtraction there is nothing to lose to rounding, so h can be
#: tiny, and the truncation error, about h^2 f'''/(6 f') relative, is then far below any rounding
#: error (1e-40 for h = 1e-20 and a well-scaled f); only underflow of h f' would limit it.
COMPLEX_STEP = 1e-20


def complex_step(
    f: Callable[[NDArray[np.complex128]], NDArray[np.complex128]],
    x: ArrayLike,
    step: float = COMPLEX_STEP,
) -> NDArray[np.float64]:
    r"""Complex-step estimate of the derivative of an element-wise, analytic function.

    Explained in "Checking gradients".

    .. math::

        f'(x) \approx \frac{\operatorname{Im} f(x + ih)}{h}

    There is no subtraction, so no cancellation: the step can be tiny (:math:`10^{-20}`), and
    the estimate is about as accurate as evaluating a formula for :math:`f'` in floating point
    (an error that grows with the condition number of :math:`f'`; "Checking gradients" measures
    it), not exact.
    ``f`` must accept complex input and be built from analytic operations (no ``abs``, ``max``
    or comparisons on the argument).

    References
    ----------
    .. [1] J. R. R. A. Martins, P. Sturdza and J. J. Alonso, "The complex-step derivative
       approximation", *ACM Transactions on Mathematical Software* 29(3), 245-262, 2003.
       https://doi.org/10.1145/838250.838251

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.gradcheck import complex_step
    >>> float(complex_step(np.exp, np.array([1.0]))[0]) == float(np.exp(1.0))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    return np.imag(f(x + 1j * step)) / step


def relative_difference(a: ArrayLike, b: ArrayLike, floor: float = 1e-300) -> NDArray[np.float64]:
    r"""Symmetric relative difference :math:`|a - b| / \max(|a|, |b|, \text{floor})`.

    The metric of "Checking gradients".

    The usual metric for a gradient check: about :math:`10^{-16}` means agreement to the last
    digit, and a value near 1 means the two disagree entirely.

    Examples
    --------
    >>> from lossgrad.gradcheck import relative_difference
    >>> relative_difference([2.0, 1.0, 0.0], [3.0, 1.0, 0.0])
    array([0.33333333, 0.        , 0.        ])
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def check_gradient(
    f: Callable[[NDArray], float],
    gradient: ArrayLike,
    x: ArrayLike,
    method: str = "central",
) -> float:
    """Largest relative difference between ``gradient`` and an estimate of the gradient of ``f``.

    ``f`` maps an array ``x`` to a scalar; each coordinate is perturbed in turn, by a central
    difference (``method="central"``) or a complex step (``method="complex"``, for which ``f``
    must accept complex arrays). "Checking gradients" applies it to each gradient
    function of the package, with every combination of its options.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.gradcheck import check_gradient
    >>> x = np.array([0.5, -1.0])
    >>> check_gradient(lambda v: float(np.sum(v**3)), 3 * x**2, x) < 1e-9
    True
    >>> check_gradient(lambda v: np.sum(v**3), 3 * x**2, x, method="complex") < 1e-15
    True
    """
    x = np.asarray(x, dtype=np.float64)
    gradient = np.asarray(gradient, dtype=np.float64)
    if gradient.shape != x.shape:
        # Broadcasting would compare a wrongly shaped gradient with every coordinate silently.
        raise ValueError(f"gradient of shape {gradient.shape} does not match x of shape {x.shape}")
    estimate = np.empty_like(x)
    for index in np.ndindex(x.shape):
        if method == "central":
            h = float(_step(x[index]))
            up, down = x.copy(), x.copy()
            up[index] += h
            down[index] -= h
            estimate[index] = (f(up) - f(down)) / (2 * h)
        elif method == "complex":
            shifted = x.astype(np.complex128)
            shifted[index] += 1j * COMPLEX_STEP
            estimate[index] = np.imag(f(shifted)) / COMPLEX_STEP
        else:
            raise ValueError(f"method must be 'central' or 'complex', got {method!r}")
    return float(np.max(relative_difference(gradient, estimate), initial=0.0))


def bce_analytic(
    u: ArrayLike, p: ArrayLike, weight: ArrayLike = 1.0, pos_weight: ArrayLike = 1.0
) -> NDArray:
    r"""Binary cross-entropy in analytic operations only, for complex-step checks.

    Used by the complex-step checks of "Checking gradients".

    .. math::

        \ell(u) = w\,\bigl[w_+\, p \log(1 + e^{-u}) + (1 - p)\log(1 + e^{u})\bigr]

    Accepts complex ``u``. It overflows for :math:`|u| \gtrsim 709` and is less accurate than
    :func:`lossgrad.bce_with_logits`; it exists to be differentiated by a complex step.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.gradcheck import bce_analytic
    >>> round(float(bce_analytic(np.array(0.0), 0.5)), 6)
    0.693147
    """
    u = np.asarray(u)
    return weight * (pos_weight * p * np.log1p(np.exp(-u)) + (1 - p) * np.log1p(np.exp(u)))


def softmax_cross_entropy_analytic(z: ArrayLike, y: ArrayLike) -> NDArray:
    r"""Softmax cross-entropy :math:`\sum_k y_k (\log\sum_j e^{z_j} - z_k)` per row, analytic.

    Used by the complex-step checks of "Checking gradients".

    Accepts complex ``z``, for complex-step checks; see :func:`bce_analytic`.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.gradcheck import softmax_cross_entropy_analytic
    >>> round(float(softmax_cross_entropy_analytic(np.zeros((1, 2)), np.array([[1.0, 0.0]]))[0]), 6)
    0.693147
    """
    z = np.asarray(z)
    y = np.asarray(y)
    lse = np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    return np.sum(y * (lse - z), axis=-1)
