r"""Logistic and softmax regression: the loss, gradient and Hessian in the weights, and fits.

The gradient of cross-entropy with respect to the logits, :math:`\sigma(u) - p` (or
:math:`s - y`), becomes the gradient with respect to the weights of a linear model by the chain
rule: with logits :math:`u_n = x_n^\top w`, the mean loss has gradient
:math:`X^\top(\sigma(Xw) - y)/N`. Everything here is computed with lossgrad's accurate kernels
(:func:`~lossgrad.bce_with_logits`, :func:`~lossgrad.softmax_cross_entropy` and their
gradients), in float64. Used in "From logits to weights: logistic regression" and "Softmax
regression and backpropagation".

The objective, for weights :math:`w` (or :math:`W`, one row per class) and a non-negative
penalty :math:`\lambda` (a scalar, or one value per weight),

.. math::

    J(w) = \frac1N \sum_{n=1}^N \ell(x_n^\top w, y_n) + \frac12 \sum_j \lambda_j w_j^2 ,

is scikit-learn's ``LogisticRegression`` objective with :math:`\lambda = 1/(CN)` on every
coefficient and :math:`\lambda = 0` on the intercept, which is a column of ones appended by
:func:`add_intercept`. Bad input raises a ``TypeError`` or ``ValueError`` naming the argument
(the rules of :mod:`lossgrad.validation`; in addition every number must be finite), and so
do data too large for float64 (a Hessian that overflows) or for memory (an array of more than
``MAX_ELEMENTS`` numbers that a fit would need).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.losses import (
    bce_with_logits,
    bce_with_logits_and_grad,
    bce_with_logits_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_and_grad,
    softmax_cross_entropy_grad,
)
from lossgrad.numerics import sigmoid, softmax

__all__ = [
    "RegressionFit",
    "add_intercept",
    "fit_logistic_regression",
    "fit_softmax_regression",
    "logistic_regression_grad",
    "logistic_regression_hessian",
    "logistic_regression_loss",
    "softmax_regression_grad",
    "softmax_regression_hessian",
    "softmax_regression_loss",
]

METHODS = ("newton", "gradient-descent")


# Checking the arguments --------------------------------------------------------------------


def _features(features: ArrayLike) -> NDArray[np.float64]:
    """The design matrix as a finite, non-empty (N, d) float64 array."""
    x = validation.float_array(features, "features")
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N, d), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"features must have at least one row and one column, got {x.shape}")
    validation.finite(x, "features")
    return np.asarray(x, dtype=np.float64)


def _weights(weights: ArrayLike, shape: tuple[int, ...], what: str) -> NDArray[np.float64]:
    w = validation.float_array(weights, "weights")
    if w.shape != shape:
        raise ValueError(f"weights must have shape {shape} ({what}), got {w.shape}")
    validation.finite(w, "weights")
    return np.asarray(w, dtype=np.float64)


def _penalty(l2: object, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """l2 as a finite, non-negative float64 array of the weights' shape."""
    if isinstance(l2, bool | np.bool_):
        raise TypeError("l2 must be a non-negative real number or an array of them, got a bool")
    a = np.asarray(float(l2)) if isinstance(l2, numbers.Real) else validation.float_array(l2, "l2")
    validation.weights(a, "l2")  # finite and non-negative, or a ValueError naming l2
    validation.fits(a, shape, "l2", "weights")
    return np.broadcast_to(np.asarray(a, dtype=np.float64), shape)


def _binary_targets(targets: ArrayLike, n: int) -> NDArray[np.float64]:
    y = validation.probabilities(targets, "targets")
    if y.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), one per row of features, got {y.shape}")
    validation.finite(y, "targets")
    return np.asarray(y, dtype=np.float64)


def _class_targets(targets: ArrayLike, n: int, classes: int | None) -> NDArray:
    """Integer labels (N,) in 0..K-1, or probabilities (N, K); K is inferred if not given."""
    if isinstance(targets, np.ma.MaskedArray):
        validation.float_array(targets, "targets")  # the TypeError for masked arrays
    t = np.asarray(targets)
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != (n,):
            raise ValueError(
                f"class-label targets must have shape ({n},), one per row of features, "
                f"got {t.shape}"
            )
        k = int(t.max()) + 1 if classes is None else classes
        if t.min() < 0 or t.max() >= k:
            bad = t[(t < 0) | (t >= k)].flat[0].item()
            raise ValueError(f"targets must be class labels in 0..{k - 1}; found {bad!r}")
        return t
    y = validation.float_array(t, "targets")
    if y.ndim != 2 or y.shape[0] != n or (classes is not None and y.shape[1] != classes):
        k = "K" if classes is None else classes
        labels = " (class labels must be an integer array)" if y.ndim == 1 else ""
        raise ValueError(
            f"probability targets must have shape ({n}, {k}), one row per row of features, "
            f"got {y.shape}{labels}"
        )
    validation.in_unit_interval(y, "targets")
    validation.finite(y, "targets")
    return np.asarray(y, dtype=np.float64)


def _binary(weights: ArrayLike, features: ArrayLike, targets: ArrayLike, l2: object) -> tuple:
    x = _features(features)
    w = _weights(weights, (x.shape[1],), "one per column of features")
    return w, x, _binary_targets(targets, x.shape[0]), _penalty(l2, w.shape)


def _multi(weights: ArrayLike, features: ArrayLike, targets: ArrayLike, l2: object) -> tuple:
    x = _features(features)
    w = validation.float_array(weights, "weights")
    if w.ndim != 2 or w.shape[1] != x.shape[1] or w.shape[0] == 0:
        raise ValueError(
            f"weights must have shape (K, {x.shape[1]}) (one row per class, one column per "
            f"column of features), got {w.shape}"
        )
    w = _weights(w, w.shape, "")
    return w, x, _class_targets(targets, x.shape[0], w.shape[0]), _penalty(l2, w.shape)


# Logistic regression -----------------------------------------------------------------------


def add_intercept(features: ArrayLike) -> NDArray[np.float64]:
    r"""Append a column of ones to the features, so that the last weight is the intercept.

    Used in "From logits to weights: logistic regression" and "Softmax regression and
    backpropagation".

    .. math::

        \tilde X = \begin{bmatrix} X & \mathbf 1 \end{bmatrix},
        \qquad \tilde x_n^\top \tilde w = x_n^\top w + b .

    Parameters
    ----------
    features : array_like of float, shape (N, d)
        Finite features, one row per example.

    Returns
    -------
    ndarray of float64, shape (N, d + 1)

    Raises
    ------
    TypeError
        If ``features`` is not a float32 or float64 array.
    ValueError
        If ``features`` is not 2-D, is empty, or holds a NaN or an infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import add_intercept
    >>> add_intercept(np.array([[2.0, 3.0], [4.0, 5.0]]))
    array([[2., 3., 1.],
           [4., 5., 1.]])
    """
    x = _features(features)
    return np.hstack([x, np.ones((x.shape[0], 1))])


def logistic_regression_loss(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> float:
    r"""Mean binary cross-entropy of a logistic-regression model, plus an L2 penalty.

    Used in "From logits to weights: logistic regression".

    .. math::

        J(w) = \frac1N \sum_{n=1}^N \Bigl[\operatorname{softplus}(x_n^\top w)
               - y_n\, x_n^\top w\Bigr] + \frac12 \sum_j \lambda_j w_j^2 ,

    the mean of :func:`lossgrad.bce_with_logits` over the logits :math:`u = Xw` (accurate
    at every logit, however confident), plus the penalty.

    Parameters
    ----------
    weights : array_like of float, shape (d,)
        The weights :math:`w`, one per column of ``features`` (the intercept, if any, is the
        weight of a column of ones; see :func:`add_intercept`).
    features : array_like of float, shape (N, d)
        The design matrix :math:`X`, finite.
    targets : array_like of float, shape (N,)
        Target probabilities :math:`y_n \in [0, 1]` (0/1 labels as floats; soft labels allowed).
    l2 : float or array_like of float, default 0
        The penalty :math:`\lambda \ge 0`: a scalar, or an array broadcastable to ``weights``
        (one value per weight; 0 at the intercept leaves it unpenalised, as scikit-learn does).

    Returns
    -------
    float
        :math:`J(w)` in nats; ``inf`` (its correct rounding, without a warning) where it lies
        beyond the float range.

    Raises
    ------
    TypeError
        If an array is not of a float type (integer targets too: convert 0/1 labels with
        ``.astype(float)``), or ``l2`` is a bool.
    ValueError
        If shapes do not match, a target lies outside [0, 1], ``l2`` is negative, or any
        number is NaN or infinite, or ``features`` is empty.

    See Also
    --------
    logistic_regression_grad, logistic_regression_hessian, fit_logistic_regression

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006,
       section 4.3.2.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import logistic_regression_loss
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> round(logistic_regression_loss(np.zeros(2), X, y), 6)  # log 2 at w = 0
    0.693147
    >>> round(logistic_regression_loss(np.array([2.0, -1.0]), X, y, l2=0.1), 6)
    0.50115
    """
    w, x, y, lam = _binary(weights, features, targets, l2)
    return _logistic_loss(w, x, y, lam)


def _logistic_loss(w, x, y, lam) -> float:
    with np.errstate(over="ignore"):  # beyond the float range: inf, its correct rounding
        return float(bce_with_logits(x @ w, y, reduction="mean")) + _penalty_value(lam, w)


def _penalty_value(lam, w) -> float:
    """(1/2) sum lam w^2, formed as (lam w) w, which overflows only where the value does."""
    return 0.5 * float(np.sum(lam * w * w))


def logistic_regression_grad(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> NDArray[np.float64]:
    r"""Gradient of :func:`logistic_regression_loss` with respect to the weights.

    Used in "From logits to weights: logistic regression".

    .. math::

        \nabla J(w) = \frac1N X^\top\bigl(\sigma(Xw) - y\bigr) + \lambda \odot w ,

    the chain rule applied to the scalar result :math:`\ell'(u) = \sigma(u) - p`: each row's
    :math:`\sigma(u_n) - y_n` comes from :func:`lossgrad.bce_with_logits_grad` (accurate where
    :math:`\sigma(u_n)` rounds to 1), and :math:`\partial u_n / \partial w = x_n`.

    Parameters
    ----------
    weights, features, targets, l2
        As for :func:`logistic_regression_loss`.

    Returns
    -------
    ndarray of float64, shape (d,)

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import logistic_regression_grad
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> logistic_regression_grad(np.zeros(2), X, y)  # X^T (1/2 - y) / 3
    array([-0.33333333,  0.        ])
    """
    w, x, y, lam = _binary(weights, features, targets, l2)
    with np.errstate(over="ignore"):  # beyond the float range: inf, its correct rounding
        residual = bce_with_logits_grad(x @ w, y, reduction="none")
        return x.T @ residual / x.shape[0] + lam * w


def logistic_regression_hessian(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> NDArray[np.float64]:
    r"""Hessian of :func:`logistic_regression_loss` with respect to the weights.

    Used in "From logits to weights: logistic regression".

    .. math::

        \nabla^2 J(w) = \frac1N X^\top S X + \operatorname{diag}(\lambda), \qquad
        S = \operatorname{diag}\bigl(\sigma(u_n)\,\bigl(1 - \sigma(u_n)\bigr)\bigr),
        \quad u = Xw .

    It does not depend on the targets (they are checked all the same). It is positive
    semi-definite, since :math:`v^\top X^\top S X v = \sum_n S_{nn} (x_n^\top v)^2 \ge 0`, and
    :math:`\sigma(1 - \sigma) \le \tfrac14` bounds it by
    :math:`\tfrac1{4N} X^\top X + \operatorname{diag}(\lambda)`. :math:`\sigma(u)(1-\sigma(u))`
    is computed as :math:`\sigma(u)\,\sigma(-u)`, accurate for large :math:`|u|`.

    Parameters
    ----------
    weights, features, targets, l2
        As for :func:`logistic_regression_loss`.

    Returns
    -------
    ndarray of float64, shape (d, d)
        Symmetric.

    Raises
    ------
    TypeError, ValueError
        As :func:`logistic_regression_loss`; a ``ValueError`` also where the Hessian overflows
        (features too large: scale them).

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006,
       section 4.3.3.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import logistic_regression_hessian
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> logistic_regression_hessian(np.zeros(2), X, y) * 12  # X^T X / 4 / 3 at w = 0
    array([[2., 1.],
           [1., 2.]])
    """
    w, x, _, lam = _binary(weights, features, targets, l2)
    return _logistic_hessian(w, x, lam)


def _symmetric(h: NDArray[np.float64]) -> NDArray[np.float64]:
    """``h`` with its lower triangle copied from the upper one: exactly symmetric, and without
    the overflow of ``(h + h.T) / 2`` for entries beyond half the largest float."""
    lower = np.tril_indices_from(h, -1)
    h[lower] = h.T[lower]
    return h


def _logistic_hessian(w, x, lam) -> NDArray[np.float64]:
    with np.errstate(over="ignore", invalid="ignore"):  # checked by _finite_hessian
        u = x @ w
        s = sigmoid(u) * sigmoid(-u)
        h = _symmetric(x.T @ (s[:, None] * x) / x.shape[0])
        h[np.diag_indices_from(h)] += lam
    return _finite_hessian(h)


def _finite_hessian(h: NDArray[np.float64]) -> NDArray[np.float64]:
    """``h``, or a ValueError where it overflowed (where it would hold inf, or inf - inf)."""
    if not np.all(np.isfinite(h)):
        raise ValueError(
            "features are too large: the Hessian overflows float64 (an entry beyond "
            f"{np.finfo(np.float64).max:.3g}); scale them, e.g. standardise the columns (or "
            "lower l2)"
        )
    return h


# Softmax regression ------------------------------------------------------------------------


def softmax_regression_loss(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> float:
    r"""Mean softmax cross-entropy of a softmax-regression model, plus an L2 penalty.

    Used in "Softmax regression and backpropagation".

    .. math::

        J(W) = \frac1N \sum_{n=1}^N \Bigl[\operatorname{logsumexp}(W x_n)
               - y_n^\top W x_n\Bigr] + \frac12 \sum_{k,j} \lambda_{kj} W_{kj}^2 ,

    for one-hot (or probability) targets :math:`y_n` summing to 1, computed with
    :func:`lossgrad.softmax_cross_entropy` over the logits :math:`Z = X W^\top`.

    Parameters
    ----------
    weights : array_like of float, shape (K, d)
        One row of weights per class.
    features : array_like of float, shape (N, d)
        The design matrix, finite.
    targets : array_like
        Integer class labels in 0..K-1, shape (N,), or probabilities, shape (N, K); the dtype
        decides which, as for :func:`lossgrad.softmax_cross_entropy`.
    l2 : float or array_like of float, default 0
        The penalty :math:`\lambda \ge 0`, broadcastable to ``weights``: an array of shape
        (d,) gives one value per column of features (0 at the intercept's column leaves it
        unpenalised).

    Returns
    -------
    float
        :math:`J(W)` in nats; ``inf`` where it lies beyond the float range.

    Raises
    ------
    TypeError
        If features, weights, probability targets or ``l2`` have the wrong type.
    ValueError
        If shapes do not match, a label is out of range, a probability lies outside [0, 1],
        ``l2`` is negative, a number is NaN or infinite, or ``features`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import softmax_regression_loss
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> labels = np.array([0, 1, 2])
    >>> round(softmax_regression_loss(np.zeros((3, 2)), X, labels), 6)  # log 3 at W = 0
    1.098612
    """
    w, x, t, lam = _multi(weights, features, targets, l2)
    return _softmax_loss(w, x, t, lam)


def _softmax_loss(w, x, t, lam) -> float:
    with np.errstate(over="ignore"):  # beyond the float range: inf, its correct rounding
        loss = softmax_cross_entropy(x @ w.T, t, reduction="mean", ignore_index=None)
        return float(loss) + _penalty_value(lam, w)


def softmax_regression_grad(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> NDArray[np.float64]:
    r"""Gradient of :func:`softmax_regression_loss` with respect to the weights.

    Used in "Softmax regression and backpropagation".

    .. math::

        \nabla_W J = \frac1N (S - Y)^\top X + \lambda \odot W, \qquad
        S = \operatorname{softmax}(X W^\top) \text{ row by row},

    with the rows of :math:`S - Y` from :func:`lossgrad.softmax_cross_entropy_grad` (for
    probability targets whose row sums :math:`m_n` differ from 1, row :math:`n` is
    :math:`m_n s_n - y_n`, the gradient of exactly what the loss computes).

    Parameters
    ----------
    weights, features, targets, l2
        As for :func:`softmax_regression_loss`.

    Returns
    -------
    ndarray of float64, shape (K, d)

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import softmax_regression_grad
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> softmax_regression_grad(np.zeros((3, 2)), X, np.array([0, 1, 2])) * 9
    array([[-1.,  2.],
           [ 2., -1.],
           [-1., -1.]])
    """
    w, x, t, lam = _multi(weights, features, targets, l2)
    with np.errstate(over="ignore"):  # beyond the float range: inf, its correct rounding
        residual = softmax_cross_entropy_grad(x @ w.T, t, reduction="none", ignore_index=None)
        return residual.T @ x / x.shape[0] + lam * w


def softmax_regression_hessian(
    weights: ArrayLike, features: ArrayLike, targets: ArrayLike, *, l2: ArrayLike = 0.0
) -> NDArray[np.float64]:
    r"""Hessian of :func:`softmax_regression_loss` in the weights flattened row by row.

    Used in "Softmax regression and backpropagation".

    For the weights as the vector ``W.ravel()`` (class :math:`k`, feature :math:`j` at index
    :math:`kd + j`),

    .. math::

        \nabla^2 J = \frac1N \sum_{n=1}^N m_n \bigl(\operatorname{diag}(s_n) - s_n s_n^\top
        \bigr) \otimes x_n x_n^\top + \operatorname{diag}(\lambda),

    with :math:`s_n = \operatorname{softmax}(W x_n)` and :math:`m_n = \sum_k y_{nk}` (1 for
    labels). Each :math:`\operatorname{diag}(s) - s s^\top` is a covariance matrix, positive
    semi-definite, and so is its Kronecker product with :math:`x_n x_n^\top`: the Hessian is
    positive semi-definite. Without a penalty it is singular: adding one vector to every row of
    :math:`W` changes no softmax.

    Parameters
    ----------
    weights, features, targets, l2
        As for :func:`softmax_regression_loss`.

    Returns
    -------
    ndarray of float64, shape (K d, K d)
        Symmetric.

    Raises
    ------
    TypeError, ValueError
        As :func:`softmax_regression_loss`; a ``ValueError`` also where the Hessian overflows
        (features too large: scale them).

    References
    ----------
    .. [1] D. Böhning, Multinomial logistic regression algorithm, *Annals of the Institute
       of Statistical Mathematics* 44(1), 197-200, 1992. https://doi.org/10.1007/BF00048682

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import softmax_regression_hessian
    >>> H = softmax_regression_hessian(np.zeros((2, 1)), np.ones((4, 1)), np.array([0, 1, 0, 1]))
    >>> H  # (diag(s) - s s^T) at s = (1/2, 1/2)
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    w, x, t, lam = _multi(weights, features, targets, l2)
    return _softmax_hessian(w, x, t, lam)


def _row_mass(t: NDArray, n: int) -> NDArray[np.float64]:
    return np.ones(n) if np.issubdtype(t.dtype, np.integer) else t.sum(axis=1)


def _softmax_hessian(w, x, t, lam) -> NDArray[np.float64]:
    n, d = x.shape
    k = w.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # checked by _finite_hessian
        return _finite_hessian(_softmax_hessian_terms(w, x, t, lam, n, d, k))


def _softmax_hessian_terms(w, x, t, lam, n, d, k) -> NDArray[np.float64]:
    s = softmax(x @ w.T)
    mass = _row_mass(t, n)
    # The outer-product part, sum_n m_n (s_n s_n^T) kron (x_n x_n^T), is A^T diag(m) A for
    # A with rows s_n kron x_n; the diagonal part is block-diagonal, X^T diag(m s_k) X.
    a = (s[:, :, None] * x[:, None, :]).reshape(n, k * d)
    h = -(a.T @ (mass[:, None] * a))
    for c in range(k):
        block = slice(c * d, (c + 1) * d)
        h[block, block] += x.T @ ((mass * s[:, c])[:, None] * x)
    h /= n
    h = _symmetric(h)
    h[np.diag_indices_from(h)] += lam.ravel()
    return h


# Fitting -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RegressionFit:
    """The result of :func:`fit_logistic_regression` or :func:`fit_softmax_regression`.

    Attributes
    ----------
    weights : ndarray of float64
        The final weights, shape (d,) or (K, d).
    losses : ndarray of float64, shape (iterations + 1,)
        The objective at the start (all weights 0) and after each iteration.
    grad_norms : ndarray of float64, shape (iterations + 1,)
        The Euclidean norm of the gradient at the same points.
    iterations : int
        The number of iterations taken.
    converged : bool
        Whether the stopping test was met (see the fit functions); ``False`` when the fit
        stopped at ``max_iter`` or could make no more progress (on separable data, or with a
        gradient-descent step too large for the data).
    """

    weights: NDArray[np.float64]
    losses: NDArray[np.float64]
    grad_norms: NDArray[np.float64]
    iterations: int
    converged: bool


def _options(method: object, tol: object, max_iter: object, step: object) -> tuple:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a positive real number, got {tol!r}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be positive and finite, got {tol!r}")
    if max_iter is None:
        max_iter = 100 if method == "newton" else 10_000
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be an integer, got {max_iter!r}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be non-negative, got {max_iter!r}")
    if step is not None:
        if method != "gradient-descent":
            raise ValueError("step is an option of method='gradient-descent' only")
        if isinstance(step, bool) or not isinstance(step, numbers.Real):
            raise TypeError(f"step must be a positive real number or None, got {step!r}")
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"step must be positive and finite, got {step!r}")
    return method, float(tol), int(max_iter), step


#: The most numbers a fit may need in one array (1 GiB of float64): beyond it, a fit refuses
#: with a ValueError rather than take the machine's memory.
MAX_ELEMENTS = 2**27


def _curvature_bound(x: NDArray, factor: float) -> float:
    """||X||_2^2 / (factor N), or a ValueError naming features where it overflows."""
    norm = float(np.linalg.norm(x, 2))
    with np.errstate(over="ignore"):
        bound = (norm / np.sqrt(factor * x.shape[0])) ** 2
    if not np.isfinite(bound):
        raise ValueError(
            f"features are too large: ||X||_2 = {norm:.3g}, so X^T X / N, which bounds the "
            f"Hessian, overflows float64; scale them (e.g. standardise the columns)"
        )
    return bound


def _size_check(sizes: dict[str, int], why: str) -> None:
    """A ValueError (``why`` says whose fault) if an array the fit needs is too large."""
    name, size = max(sizes.items(), key=lambda item: item[1])
    if size > MAX_ELEMENTS:
        raise ValueError(
            f"{why}: the fit would need {name} of {size:.3g} numbers, more than "
            f"MAX_ELEMENTS = 2**27 (1 GiB of float64)"
        )


def _norm(v: NDArray) -> float:
    """The Euclidean norm, scaled first so that tiny entries do not underflow when squared."""
    largest = float(np.max(np.abs(v), initial=0.0))
    return largest * float(np.sqrt(np.sum((v / largest) ** 2))) if largest > 0 else 0.0


def _newton_direction(h: NDArray, g: NDArray) -> NDArray:
    """-H^+ g: the Newton step, the minimum-norm one where H is singular (PSD H)."""
    scale = np.max(np.abs(np.diag(h)))
    if not scale > 0:
        return np.zeros_like(g)
    return -np.linalg.lstsq(h / scale, g / scale, rcond=None)[0]


def _fit(
    objective: Callable[[NDArray], tuple[float, NDArray]],
    hessian: Callable[[NDArray], NDArray],
    start: NDArray,
    smoothness: float,
    method: str,
    tol: float,
    max_iter: int,
    step: float | None,
) -> RegressionFit:
    w = start
    loss, g = _evaluate(objective, w)
    losses, norms = [loss], [_norm(g)]
    eta = 1.0 / smoothness if step is None else float(step)
    converged = False
    while True:
        if loss < np.finfo(np.float64).tiny and len(losses) > 1:
            # A loss below the normal floats (0 or subnormal) means every example is classified
            # with a margin of about 700 or more: separable data and no minimiser; the gradient
            # has underflowed too, and says nothing more. (At the start, w = 0, the loss is 0
            # only where it is 0 for every w, with one class or all-zero targets: there the
            # zero gradient is the truth, and w = 0 a minimiser.)
            break
        direction = None
        if method == "newton" and norms[-1] > 0:
            direction = _newton_direction(hessian(w), g.ravel()).reshape(w.shape)
        if norms[-1] <= tol:
            # A small gradient is not enough for Newton: on separable data without a penalty
            # the gradient tends to 0 while Newton's steps do not shrink (the weights grow
            # without bound), so Newton also asks for a small step.
            small_step = direction is None or (
                _norm(direction) <= np.sqrt(tol) * (1 + _norm(w)))
            if small_step:
                converged = True
                break
        if len(losses) > max_iter:
            break
        if method == "gradient-descent":
            candidate = w - eta * g
            if np.array_equal(candidate, w):
                break  # the step rounds away: no more progress
            new_loss, new_g = _evaluate(objective, candidate)
            if not (np.isfinite(new_loss) and np.all(np.isfinite(new_g))):
                break  # a step too large for the data: the objective would overflow
            w, loss, g = candidate, new_loss, new_g
        else:
            found = _line_search(objective, w, loss, g, direction)
            if found is None:
                break
            w, loss, g = found
        losses.append(loss)
        norms.append(_norm(g))
    for a in (w, losses := np.array(losses), norms := np.array(norms)):
        a.setflags(write=False)
    return RegressionFit(w, losses, norms, len(losses) - 1, converged)


def _evaluate(objective, w) -> tuple[float, NDArray]:
    """The objective and its gradient; beyond the float range they are inf, without a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return objective(w)


def _line_search(objective, w, loss, g, direction, halvings: int = 60):
    """Backtracking from the full Newton step until the loss decreases enough (Armijo).

    A step whose predicted decrease is below the rounding of the loss is accepted if the loss
    does not increase; no step that increases the loss is ever taken.
    """
    slope = float(np.sum(g * direction))
    t = 1.0
    for _ in range(halvings):
        candidate = w + t * direction
        new_loss, new_g = _evaluate(objective, candidate)
        if not np.all(np.isfinite(new_g)):
            t /= 2
            continue
        if new_loss <= loss + 1e-4 * t * slope or (
            new_loss <= loss and -t * slope <= 8 * np.finfo(float).eps * abs(loss)
        ):
            return candidate, new_loss, new_g
        t /= 2
    return None


def fit_logistic_regression(
    features: ArrayLike,
    targets: ArrayLike,
    *,
    l2: ArrayLike = 0.0,
    method: str = "newton",
    tol: float = 1e-10,
    max_iter: int | None = None,
    step: float | None = None,
) -> RegressionFit:
    r"""Minimise :func:`logistic_regression_loss` from :math:`w = 0`.

    Used in "From logits to weights: logistic regression".

    ``method="newton"`` is Newton's method, which for this loss is iteratively reweighted
    least squares (IRLS): the step :math:`\Delta` solves :math:`\nabla^2 J(w)\,\Delta =
    -\nabla J(w)` (minimum-norm where the Hessian is singular), and is halved until the loss
    decreases by at least :math:`10^{-4}` of the decrease the gradient predicts, so the loss
    never increases. ``method="gradient-descent"`` takes :math:`w \leftarrow w - \eta\nabla
    J(w)` with, by default, :math:`\eta = 1/L` for the smoothness constant

    .. math::

        L = \frac{\lVert X\rVert_2^2}{4N} + \max_j \lambda_j ,

    which bounds the Hessian's largest eigenvalue because :math:`\sigma(1-\sigma) \le \tfrac14`.

    The fit stops, converged, when :math:`\lVert\nabla J(w)\rVert_2 \le` ``tol``; Newton's
    method asks in addition that its next step be small,
    :math:`\lVert\Delta\rVert_2 \le \sqrt{\texttt{tol}}\,(1 + \lVert w\rVert_2)`. On separable
    data without a penalty there is no minimiser: the gradient tends to 0 while Newton's steps
    keep their length and the weights grow, so the fit runs to ``max_iter`` (or until the loss
    underflows below the normal floats) and reports ``converged=False``, with finite weights
    and no warning. Gradient descent there slows down so much that it reaches ``max_iter``.
    Gradient descent also stops, unconverged, where its step no longer changes the weights, or
    where a step (one given as ``step`` and too large for the data) would make the objective
    overflow; its iterates so far are returned, all finite.

    Parameters
    ----------
    features, targets, l2
        As for :func:`logistic_regression_loss`.
    method : {"newton", "gradient-descent"}, default "newton"
    tol : float, default 1e-10
        The tolerance on the gradient's norm.
    max_iter : int, optional
        At most this many iterations; by default 100 for Newton, 10 000 for gradient descent.
    step : float, optional
        Gradient descent's step :math:`\eta`; by default :math:`1/L` (only then is
        :math:`\lVert X\rVert_2` computed, by a singular value decomposition).

    Returns
    -------
    RegressionFit
        Weights of shape (d,), the loss and gradient norm at every iterate.

    Raises
    ------
    TypeError, ValueError
        For bad data (as :func:`logistic_regression_loss`) or options; a ``ValueError`` naming
        ``features`` also where they are so large that the Hessian (or :math:`L`) overflows,
        and for Newton's method where its (d, d) Hessian would hold more than
        ``MAX_ELEMENTS`` (:math:`2^{27}`) numbers.

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006,
       section 4.3.3.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import add_intercept, fit_logistic_regression
    >>> X = add_intercept(np.array([[0.0], [1.0], [2.0], [3.0]]))
    >>> y = np.array([0.0, 1.0, 0.0, 1.0])
    >>> fit = fit_logistic_regression(X, y)
    >>> fit.converged, fit.iterations, fit.weights.round(4)
    (True, 4, array([ 0.9082, -1.3623]))
    >>> slow = fit_logistic_regression(X, y, method="gradient-descent", tol=1e-6)
    >>> slow.converged, bool(np.allclose(slow.weights, fit.weights, atol=1e-5))
    (True, True)
    """
    x = _features(features)
    y = _binary_targets(targets, x.shape[0])
    lam = _penalty(l2, (x.shape[1],))
    method, tol, max_iter, step = _options(method, tol, max_iter, step)

    def objective(w):
        loss, residual = bce_with_logits_and_grad(x @ w, y, reduction="mean")
        return float(loss) + 0.5 * float(np.sum(lam * w * w)), x.T @ residual + lam * w

    if method == "newton":
        d = x.shape[1]
        _size_check({"a Hessian": d * d}, f"features have d = {d} columns")
    smoothness = 1.0  # only gradient descent's default step needs it: ||X||_2 takes an SVD
    if method == "gradient-descent" and step is None:
        smoothness = _curvature_bound(x, 4.0) + float(lam.max())
        if not smoothness > 0:  # all-zero features and no penalty: the loss is constant
            smoothness = 1.0
    return _fit(objective, lambda w: _logistic_hessian(w, x, lam), np.zeros(x.shape[1]),
                smoothness, method, tol, max_iter, step)


def fit_softmax_regression(
    features: ArrayLike,
    targets: ArrayLike,
    *,
    l2: ArrayLike = 0.0,
    method: str = "newton",
    tol: float = 1e-10,
    max_iter: int | None = None,
    step: float | None = None,
) -> RegressionFit:
    r"""Minimise :func:`softmax_regression_loss` from :math:`W = 0`.

    Used in "Softmax regression and backpropagation".

    The same two methods and stopping rules as :func:`fit_logistic_regression`, with the
    weights flattened row by row for Newton's step (minimum-norm: without a penalty the
    Hessian is singular along a common shift of the rows of :math:`W`, which changes no
    prediction). Gradient descent's default step is :math:`1/L` with

    .. math::

        L = \frac{\lVert X\rVert_2^2}{2N} \max_n m_n + \max_{k,j} \lambda_{kj} ,

    from Böhning's bound :math:`\operatorname{diag}(s) - s s^\top \preceq \tfrac12 I`
    (:math:`m_n = 1` for labels, the row sums of probability targets). With one class, or
    all-zero probability targets, the loss is 0 for every :math:`W`: the fit stops at
    :math:`W = 0`, converged.

    Parameters
    ----------
    features : array_like of float, shape (N, d)
    targets : array_like
        Integer labels, shape (N,), with classes 0..K-1 where K - 1 is the largest label, or
        probabilities of shape (N, K).
    l2 : float or array_like of float, default 0
        Broadcastable to the weights' shape (K, d); shape (d,) gives one value per feature.
    method, tol, max_iter, step
        As for :func:`fit_logistic_regression`.

    Returns
    -------
    RegressionFit
        Weights of shape (K, d).

    Raises
    ------
    TypeError, ValueError
        For bad data (as :func:`softmax_regression_loss`) or options, or features too large
        (as :func:`fit_logistic_regression`); a ``ValueError`` also where an array the fit
        needs would hold more than ``MAX_ELEMENTS`` (:math:`2^{27}`) numbers: the (K, d)
        weights and the (N, K) logits, and for Newton's method the (Kd, Kd) Hessian and an
        (N, Kd) work array. (K is the largest label + 1, so one wrong label can ask for
        terabytes.)

    References
    ----------
    .. [1] D. Böhning, Multinomial logistic regression algorithm, *Annals of the Institute
       of Statistical Mathematics* 44(1), 197-200, 1992. https://doi.org/10.1007/BF00048682

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.regression import add_intercept, fit_softmax_regression
    >>> X = add_intercept(np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]))
    >>> labels = np.array([0, 1, 0, 2, 1, 2])
    >>> fit = fit_softmax_regression(X, labels, l2=0.01)
    >>> fit.converged, fit.weights.shape, round(float(fit.losses[-1]), 4)
    (True, (3, 2), 0.8117)
    """
    x = _features(features)
    t = _class_targets(targets, x.shape[0], None)
    k = int(t.max()) + 1 if np.issubdtype(t.dtype, np.integer) else t.shape[1]
    method, tol, max_iter, step = _options(method, tol, max_iter, step)
    (n, d), why = x.shape, f"K = {k} classes (the largest label + 1) and d = {x.shape[1]}"
    sizes = {"weights": k * d, "logits": n * k}
    if method == "newton":
        sizes.update({"a Hessian": (k * d) ** 2, "a work array": n * k * d})
    _size_check(sizes, why + " features")
    lam = _penalty(l2, (k, x.shape[1]))

    def objective(w):
        loss, residual = softmax_cross_entropy_and_grad(x @ w.T, t, reduction="mean",
                                                        ignore_index=None)
        return float(loss) + 0.5 * float(np.sum(lam * w * w)), residual.T @ x + lam * w

    smoothness = 1.0  # only gradient descent's default step needs it: ||X||_2 takes an SVD
    if method == "gradient-descent" and step is None:
        mass = float(_row_mass(t, x.shape[0]).max())
        smoothness = _curvature_bound(x, 2.0) * mass + float(lam.max())
        if not smoothness > 0:  # all-zero probability targets: the loss is 0 everywhere
            smoothness = 1.0
    return _fit(objective, lambda w: _softmax_hessian(w, x, t, lam), np.zeros((k, x.shape[1])),
                smoothness, method, tol, max_iter, step)
