r"""A two-layer network trained with softmax cross-entropy, and its gradients by backpropagation.

Used in "Softmax regression and backpropagation". The network maps a row of features
:math:`x \in \mathbb{R}^d` to :math:`K` logits through one hidden layer of :math:`H` units,

.. math::

    a = W_1 x + b_1, \qquad h = \phi(a), \qquad z = W_2 h + b_2,

with :math:`\phi = \tanh` or :math:`\phi(a) = \max(a, 0)` (ReLU) applied element-wise, and is
scored by the mean softmax cross-entropy of :math:`z` against the targets, plus an optional L2
penalty :math:`\tfrac{\lambda}{2}(\lVert W_1 \rVert_F^2 + \lVert W_2 \rVert_F^2)` on the
weights (not the biases). Its gradient is computed by backpropagation: the error at the
logits is :math:`\delta_2 = (s - y)/N` per row, the book's gradient of softmax cross-entropy,
and every weight gradient follows from it by the chain rule
(:func:`two_layer_loss_and_grad` states the formulas).

The parameters are a plain ``dict`` (or any mapping) of NumPy arrays with the keys ``'W1'``
(shape ``(H, d)``), ``'b1'`` (``(H,)``), ``'W2'`` (``(K, H)``) and ``'b2'`` (``(K,)``), with
:math:`d, H, K \ge 1`; a batch of features is an ``(N, d)`` array, one row per example, so
that the hidden units' inputs are ``features @ W1.T + b1``, as in :mod:`lossgrad.regression`.
Targets are class indices (an integer array of shape ``(N,)``) or probabilities (a float array
of shape ``(N, K)`` whose rows sum to one, to within a few roundings of their dtype). Arrays
are float32 or float64 (checked by ``lossgrad.validation``); everything is computed in,
and returned as, float64. Finite input gives a finite result, or a ``ValueError`` saying what
overflowed, never NaN, an infinity or a warning.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.losses import softmax_cross_entropy, softmax_cross_entropy_and_grad

__all__ = [
    "ACTIVATIONS",
    "PARAMETER_NAMES",
    "TwoLayerForward",
    "TwoLayerTraining",
    "two_layer_forward",
    "two_layer_gradient_descent",
    "two_layer_init",
    "two_layer_loss",
    "two_layer_loss_and_grad",
    "two_layer_predict",
]

#: The hidden layer's activation functions.
ACTIVATIONS = ("tanh", "relu")
#: The keys of a parameter dict, in the order of the layers.
PARAMETER_NAMES = ("W1", "b1", "W2", "b2")


@dataclass(frozen=True)
class TwoLayerForward:
    """The intermediate values of one forward pass (:func:`two_layer_forward`).

    Attributes
    ----------
    pre_activation : ndarray, shape (N, H)
        :math:`A = X W_1^\\top + b_1`, the hidden units' inputs.
    hidden : ndarray, shape (N, H)
        :math:`\\mathcal{H} = \\phi(A)`, the hidden units' outputs.
    logits : ndarray, shape (N, K)
        :math:`Z = \\mathcal{H} W_2^\\top + b_2`.
    """

    pre_activation: NDArray[np.float64]
    hidden: NDArray[np.float64]
    logits: NDArray[np.float64]


@dataclass(frozen=True)
class TwoLayerTraining:
    """The result of :func:`two_layer_gradient_descent`.

    Attributes
    ----------
    params : dict of str to ndarray
        The parameters after the last epoch.
    history : tuple of dict
        The parameters before the first epoch and after each epoch (``epochs + 1`` dicts), so
        that any quantity (a test loss, an accuracy) can be traced epoch by epoch afterwards.
    """

    params: dict[str, NDArray[np.float64]]
    history: tuple[dict[str, NDArray[np.float64]], ...]


# Arguments ------------------------------------------------------------------------------------


def _count(value: object, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _activation(value: object) -> str:
    # Tested for its type first: comparing an array with the names would be element-wise.
    if not isinstance(value, str):
        raise TypeError(f"activation must be a string, one of {ACTIVATIONS}, got {value!r}")
    if value not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {value!r}")
    return str(value)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)  # a Fraction or a NumPy scalar, as a float np.isfinite accepts


def _l2(value: object) -> float:
    lam = _real(value, "l2")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"l2 must be finite and non-negative, got {value!r}")
    return lam


def _step_size(value: object) -> float:
    eta = _real(value, "step_size")
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"step_size must be positive and finite, got {value!r}")
    return eta


def _array(x: object, name: str) -> NDArray:
    """``np.asarray(x)``, with a ragged nested list reported under the argument's name."""
    if isinstance(x, np.ma.MaskedArray):
        return validation.float_array(x, name)  # the package's message for a dropped mask
    try:
        return np.asarray(x)
    except ValueError as error:
        raise ValueError(f"{name} is not a rectangular array: {error}") from None


def _finite(x: object, name: str, ndim: int) -> NDArray[np.float64]:
    a = validation.float_array(_array(x, name), name)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    validation.finite(a, name)
    return a.astype(np.float64, copy=False)


def _params(params: object) -> dict[str, NDArray[np.float64]]:
    """The four arrays, checked for dtype, finiteness and matching, non-empty shapes."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict with keys {PARAMETER_NAMES}, got "
                        f"{type(params).__name__}")
    if set(params) != set(PARAMETER_NAMES):
        raise ValueError(f"params must have exactly the keys {PARAMETER_NAMES}, got "
                         f"{tuple(sorted(params, key=repr))}")
    ndims = {"W1": 2, "b1": 1, "W2": 2, "b2": 1}
    out = {key: _finite(params[key], f'params["{key}"]', ndims[key]) for key in PARAMETER_NAMES}
    # An empty layer would make a network with no features, hidden units or classes, which
    # two_layer_init refuses too.
    for key in ("W1", "W2"):
        if 0 in out[key].shape:
            raise ValueError(f'params["{key}"] must have at least one row and one column, got '
                             f"shape {out[key].shape}")
    hidden, classes = out["W1"].shape[0], out["W2"].shape[0]
    expected = {"b1": (hidden,), "W2": (classes, hidden), "b2": (classes,)}
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise ValueError(
                f'params["{key}"] has shape {out[key].shape}; with W1 of shape '
                f"{out['W1'].shape} and W2 of shape {out['W2'].shape} it must be {shape}"
            )
    return out


def _features(features: ArrayLike, params: dict[str, NDArray]) -> NDArray[np.float64]:
    x = _finite(features, "features", 2)
    if x.shape[1] != params["W1"].shape[1]:
        raise ValueError(f"features has {x.shape[1]} columns but W1 expects "
                         f"{params['W1'].shape[1]} (shape {params['W1'].shape})")
    if x.shape[0] == 0:
        raise ValueError("features has no rows")
    return x


def _targets(targets: ArrayLike, rows: int, classes: int) -> NDArray:
    t = _array(targets, "targets")
    if t.dtype == bool or not (np.issubdtype(t.dtype, np.integer)
                               or np.issubdtype(t.dtype, np.floating)):
        raise TypeError(f"targets must be integer class indices or float probabilities, got "
                        f"dtype {t.dtype}")
    if np.issubdtype(t.dtype, np.integer):
        if t.shape != (rows,):
            raise ValueError(f"targets of class indices must have shape ({rows},), one per row "
                             f"of features, got {t.shape}")
        if t.min() < 0 or t.max() >= classes:
            bad = t[(t < 0) | (t >= classes)].flat[0]
            raise ValueError(f"targets must be class indices in 0..{classes - 1}; found {bad}")
        return t
    if t.shape == (rows,):
        raise ValueError(f"targets of shape ({rows},) must be class indices of an integer dtype, "
                         f"got dtype {t.dtype}; floats are probabilities, of shape "
                         f"({rows}, {classes})")
    dtype = t.dtype
    t = _finite(t, "targets", 2)
    if t.shape != (rows, classes):
        raise ValueError(f"targets of probabilities must have shape ({rows}, {classes}), got "
                         f"{t.shape}")
    # Rows normalised in float32 miss 1 by a few float32 roundings, far more than 1e-9.
    tolerance = max(1e-9, 2 * (classes + 1) * float(np.finfo(dtype).eps))
    if np.any(t < 0) or not np.allclose(t.sum(axis=1), 1.0, rtol=0, atol=tolerance):
        raise ValueError("targets of probabilities must be non-negative with rows summing to 1")
    return t


def _generator(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool | np.bool_):
        if rng < 0:
            raise ValueError(f"rng as a seed must be a non-negative integer, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an integer seed, got {rng!r}")


# The network ----------------------------------------------------------------------------------


def two_layer_init(
    n_features: int, n_hidden: int, n_classes: int, *, rng: np.random.Generator | int,
    activation: str = "tanh",
) -> dict[str, NDArray[np.float64]]:
    r"""Random initial parameters of a two-layer network.

    Used in "Softmax regression and backpropagation".

    The weights are drawn independently from :math:`\mathcal{N}(0, c/\text{fan-in})`, with
    :math:`c = 1` for tanh and :math:`c = 2` for ReLU (which zeroes about half of its inputs),
    so that for standardised features each unit's input has a variance of order one; the
    biases start at zero.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        :math:`d`, :math:`H` and :math:`K`.
    rng : numpy.random.Generator or int
        The random generator, or a seed for ``numpy.random.default_rng``; required, so that
        every run starts from the same parameters.
    activation : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    dict of str to ndarray
        ``'W1'`` (``(H, d)``), ``'b1'`` (``(H,)``), ``'W2'`` (``(K, H)``), ``'b2'`` (``(K,)``).

    Examples
    --------
    >>> from lossgrad.network import two_layer_init
    >>> params = two_layer_init(4, 3, 2, rng=0)
    >>> {key: value.shape for key, value in params.items()}
    {'W1': (3, 4), 'b1': (3,), 'W2': (2, 3), 'b2': (2,)}
    """
    d = _count(n_features, "n_features")
    h = _count(n_hidden, "n_hidden")
    k = _count(n_classes, "n_classes")
    gain = 2.0 if _activation(activation) == "relu" else 1.0
    generator = _generator(rng)
    return {
        "W1": generator.normal(scale=np.sqrt(gain / d), size=(h, d)),
        "b1": np.zeros(h),
        "W2": generator.normal(scale=np.sqrt(1.0 / h), size=(k, h)),
        "b2": np.zeros(k),
    }


def two_layer_forward(
    params: dict[str, ArrayLike], features: ArrayLike, *, activation: str = "tanh"
) -> TwoLayerForward:
    r"""The forward pass: hidden inputs, hidden outputs and logits for a batch.

    Used in "Softmax regression and backpropagation".

    .. math::

        A = X W_1^\top + \mathbf{1} b_1^\top, \qquad \mathcal{H} = \phi(A), \qquad
        Z = \mathcal{H} W_2^\top + \mathbf{1} b_2^\top

    Parameters
    ----------
    params : dict of str to ndarray
        ``'W1'``, ``'b1'``, ``'W2'``, ``'b2'`` (see the module's docstring).
    features : ndarray, shape (N, d)
        One example per row; finite floats.
    activation : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    TwoLayerForward

    Raises
    ------
    TypeError, ValueError
        Naming the argument: a missing key, mismatched shapes, a non-float or non-finite array;
        a ``ValueError`` also when finite input is so large that the logits overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.network import two_layer_forward, two_layer_init
    >>> params = two_layer_init(4, 3, 2, rng=0)
    >>> two_layer_forward(params, np.zeros((5, 4))).logits.shape
    (5, 2)
    """
    p = _params(params)
    x = _features(features, p)
    return TwoLayerForward(*_forward(p, x, _activation(activation)))


def _forward(
    p: dict[str, NDArray[np.float64]], x: NDArray[np.float64], act: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Pre-activations, hidden outputs and logits; an error if finite input overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        pre = x @ p["W1"].T + p["b1"]
        hidden = np.tanh(pre) if act == "tanh" else np.maximum(pre, 0.0)
        logits = hidden @ p["W2"].T + p["b2"]
    if not (np.all(np.isfinite(pre)) and np.all(np.isfinite(logits))):
        raise ValueError("the network's pre-activations or logits overflow the float64 range: "
                         "features or params are too large (standardise the features)")
    return pre, hidden, logits


def two_layer_predict(
    params: dict[str, ArrayLike], features: ArrayLike, *, activation: str = "tanh"
) -> NDArray[np.intp]:
    """The predicted class of each row: the index of its largest logit.

    Used in "Softmax regression and backpropagation".

    Parameters
    ----------
    params, features, activation
        As for :func:`two_layer_forward`.

    Returns
    -------
    ndarray of int, shape (N,)
        The class indices; a tie goes to the lowest index, as with ``numpy.argmax``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.network import two_layer_predict
    >>> params = {'W1': np.eye(2), 'b1': np.zeros(2), 'W2': np.eye(2), 'b2': np.zeros(2)}
    >>> two_layer_predict(params, np.array([[1.0, 0.0], [0.0, 1.0]]))
    array([0, 1])
    """
    return np.argmax(two_layer_forward(params, features, activation=activation).logits, axis=1)


def two_layer_loss(
    params: dict[str, ArrayLike], features: ArrayLike, targets: ArrayLike, *,
    activation: str = "tanh", l2: float = 0.0,
) -> float:
    r"""Mean softmax cross-entropy of the network's logits, plus the L2 penalty on the weights.

    Used in "Softmax regression and backpropagation".

    .. math::

        \mathcal{L} = \frac{1}{N} \sum_{n=1}^{N} \Bigl(\operatorname{logsumexp}(z_n)
        - \sum_k y_{nk} z_{nk}\Bigr)
        + \frac{\lambda}{2}\bigl(\lVert W_1 \rVert_F^2 + \lVert W_2 \rVert_F^2\bigr)

    The cross-entropy is :func:`lossgrad.softmax_cross_entropy`'s, accurate for any logits.
    See :func:`two_layer_loss_and_grad` for the arguments and the errors.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.network import two_layer_init, two_layer_loss
    >>> params = two_layer_init(4, 3, 2, rng=0)
    >>> params['W2'][:] = 0.0  # equal logits: the loss is log 2
    >>> round(two_layer_loss(params, np.ones((5, 4)), np.array([0, 1, 1, 0, 1])), 6)
    0.693147
    """
    act, lam = _activation(activation), _l2(l2)
    p = _params(params)
    x = _features(features, p)
    return _loss_and_grad(p, x, _targets(targets, x.shape[0], p["W2"].shape[0]), act, lam,
                          want_grad=False)[0]


def two_layer_loss_and_grad(
    params: dict[str, ArrayLike], features: ArrayLike, targets: ArrayLike, *,
    activation: str = "tanh", l2: float = 0.0,
) -> tuple[float, dict[str, NDArray[np.float64]]]:
    r"""The loss of :func:`two_layer_loss` and its gradient by backpropagation, in one pass.

    Used in "Softmax regression and backpropagation", which derives each formula below by the
    chain rule and checks them by central differences and the complex step.

    With :math:`S` the softmax of the logits (row by row) and :math:`Y` the targets as rows of
    probabilities (one-hot rows for class indices), the error at the logits is the gradient
    of softmax cross-entropy, divided by :math:`N` for the mean; it flows back through
    :math:`W_2` and the activation's derivative to the hidden layer:

    .. math::

        \Delta_2 = \frac{1}{N}(S - Y), \qquad
        \Delta_1 = (\Delta_2 W_2) \odot \phi'(A),

        \frac{\partial \mathcal{L}}{\partial W_2} = \Delta_2^\top \mathcal{H} + \lambda W_2,
        \quad \frac{\partial \mathcal{L}}{\partial b_2} = \Delta_2^\top \mathbf{1},
        \quad \frac{\partial \mathcal{L}}{\partial W_1} = \Delta_1^\top X + \lambda W_1,
        \quad \frac{\partial \mathcal{L}}{\partial b_1} = \Delta_1^\top \mathbf{1},

    with :math:`\phi'(a) = 1 - \tanh^2 a` for tanh and :math:`\phi'(a) = [a > 0]` for ReLU
    (taken as 0 at the kink :math:`a = 0`, where ReLU has no derivative).

    Parameters
    ----------
    params : dict of str to ndarray
        ``'W1'`` ``(H, d)``, ``'b1'`` ``(H,)``, ``'W2'`` ``(K, H)``, ``'b2'`` ``(K,)``
        (not modified).
    features : ndarray, shape (N, d)
        One example per row; finite floats.
    targets : ndarray
        Class indices, integers of shape ``(N,)`` in ``0..K-1``; or probabilities, floats of
        shape ``(N, K)``, non-negative, each row summing to 1.
    activation : {"tanh", "relu"}, default "tanh"
    l2 : float, default 0.0
        :math:`\lambda \ge 0`, the weight of the penalty on :math:`W_1` and :math:`W_2`.

    Returns
    -------
    loss : float
    grads : dict of str to ndarray
        The gradient with respect to each parameter, with the same keys and shapes.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: missing or extra keys, empty or mismatched shapes, labels out of
        range, float targets of shape ``(N,)`` (class indices must be integers), rows of
        probabilities that do not sum to 1, non-finite values, a non-float or masked array, a
        negative ``l2``; and a ``ValueError`` when finite input is so large that the logits,
        the loss, the penalty or the gradient overflow (rather than a NaN or an infinity).

    References
    ----------
    .. [1] D. E. Rumelhart, G. E. Hinton and R. J. Williams, Learning representations by
       back-propagating errors, *Nature* 323, 533-536, 1986.
       https://doi.org/10.1038/323533a0
    .. [2] I. Goodfellow, Y. Bengio and A. Courville, *Deep Learning*, MIT Press, 2016,
       section 6.5.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.network import two_layer_init, two_layer_loss_and_grad
    >>> params = two_layer_init(4, 3, 2, rng=0)
    >>> features = np.random.default_rng(1).normal(size=(5, 4))
    >>> loss, grads = two_layer_loss_and_grad(params, features, np.array([0, 1, 1, 0, 1]))
    >>> {key: value.shape for key, value in grads.items()}
    {'W1': (3, 4), 'b1': (3,), 'W2': (2, 3), 'b2': (2,)}
    >>> two_layer_loss_and_grad(params, features, np.array([0, 1, 2, 0, 1]))
    Traceback (most recent call last):
    ...
    ValueError: targets must be class indices in 0..1; found 2
    """
    act, lam = _activation(activation), _l2(l2)
    p = _params(params)
    x = _features(features, p)
    return _loss_and_grad(p, x, _targets(targets, x.shape[0], p["W2"].shape[0]), act, lam)


def _penalty(p: dict[str, NDArray[np.float64]], lam: float) -> float:
    """The L2 penalty; a ValueError if it exceeds the float range."""
    if lam == 0.0:
        return 0.0  # not 0 * (sum of squares), which is NaN once the squares overflow
    with np.errstate(over="ignore"):
        penalty = float(0.5 * lam * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2)))
        if not np.isfinite(penalty):
            # The squares may overflow where lam times them does not: square relative to the
            # largest weight, multiplying lam in first.
            scale = max(np.max(np.abs(p["W1"])), np.max(np.abs(p["W2"])))
            squares = np.sum((p["W1"] / scale) ** 2) + np.sum((p["W2"] / scale) ** 2)
            penalty = float(0.5 * lam * scale * scale * squares)
    if not np.isfinite(penalty):
        raise ValueError("the L2 penalty overflows the float64 range: l2 or the weights are too "
                         "large")
    return penalty


def _total(cross_entropy: np.floating, p: dict[str, NDArray[np.float64]], lam: float) -> float:
    """The cross-entropy plus the penalty; a ValueError where lossgrad's losses would give inf."""
    with np.errstate(over="ignore"):
        loss = float(cross_entropy) + _penalty(p, lam)
    # Logits of opposite signs near the float limit have a finite difference no float holds.
    if not np.isfinite(loss):
        raise ValueError("the loss overflows the float64 range: features or params are too "
                         "large (standardise the features)")
    return loss


def _loss_and_grad(
    p: dict[str, NDArray[np.float64]], x: NDArray[np.float64], t: NDArray, act: str, lam: float,
    want_loss: bool = True, want_grad: bool = True,
) -> tuple[float, dict[str, NDArray[np.float64]]]:
    """Forward and backward pass on checked arguments (the loss is NaN if not wanted)."""
    pre, hidden, logits = _forward(p, x, act)
    if not want_grad:
        return _total(softmax_cross_entropy(logits, t, ignore_index=None), p, lam), {}
    # delta2 is the mean cross-entropy's gradient at the logits, (S - Y)/N; backpropagation
    # only multiplies it by the layers' Jacobians.
    cross_entropy, delta2 = softmax_cross_entropy_and_grad(logits, t, ignore_index=None)
    loss = _total(cross_entropy, p, lam) if want_loss else float("nan")
    # tanh' written through tanh itself, 1 - h^2, reuses the forward pass's h.
    slope = 1.0 - hidden**2 if act == "tanh" else (pre > 0).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        delta1 = (delta2 @ p["W2"]) * slope
        grads = {
            "W1": delta1.T @ x + lam * p["W1"],
            "b1": delta1.sum(axis=0),
            "W2": delta2.T @ hidden + lam * p["W2"],
            "b2": delta2.sum(axis=0),
        }
    if not all(np.all(np.isfinite(g)) for g in grads.values()):
        raise ValueError("the gradient overflows the float64 range: features, params or l2 are "
                         "too large (standardise the features)")
    return loss, grads


def two_layer_gradient_descent(
    params: dict[str, ArrayLike], features: ArrayLike, targets: ArrayLike, *,
    step_size: float, epochs: int, batch_size: int | None = None,
    rng: np.random.Generator | int | None = None, activation: str = "tanh", l2: float = 0.0,
) -> TwoLayerTraining:
    r"""Train the network by (mini-batch) gradient descent on :func:`two_layer_loss`.

    Used in "Softmax regression and backpropagation".

    Each epoch visits every row once. With ``batch_size=None`` an epoch is one step of full-batch
    gradient descent, :math:`\theta \leftarrow \theta - \eta \nabla \mathcal{L}(\theta)`;
    otherwise the rows are shuffled by ``rng`` and cut into batches of ``batch_size`` rows (the
    last one may be smaller), and each batch takes one step on its own mean loss.

    Parameters
    ----------
    params : dict of str to ndarray
        The starting point (not modified).
    features, targets
        As for :func:`two_layer_loss_and_grad`.
    step_size : float
        :math:`\eta > 0`.
    epochs : int
        Passes over the data, at least 1.
    batch_size : int, optional
        Rows per step; ``None`` for full-batch descent.
    rng : numpy.random.Generator or int, optional
        The shuffling's generator or a non-negative seed; required with ``batch_size`` (and
        checked, though unused, without it). A seed gives the same run every time; a
        Generator is advanced by the shuffling.
    activation : {"tanh", "relu"}, default "tanh"
    l2 : float, default 0.0

    Returns
    -------
    TwoLayerTraining
        The final parameters and those after every epoch.

    Raises
    ------
    TypeError, ValueError
        For the arguments as :func:`two_layer_loss_and_grad` does, and naming ``step_size``,
        ``epochs``, ``batch_size`` or ``rng`` when one is not of its type or range; a
        ``ValueError`` naming ``step_size`` when the descent diverges until the parameters or
        the network's values overflow. Parameters that grow large but stay finite are returned.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.network import (two_layer_gradient_descent, two_layer_init,
    ...                               two_layer_loss)
    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(40, 2))
    >>> labels = (features[:, 0] * features[:, 1] > 0).astype(int)  # not linearly separable
    >>> start = two_layer_init(2, 8, 2, rng=1)
    >>> run = two_layer_gradient_descent(start, features, labels, step_size=0.5, epochs=200)
    >>> two_layer_loss(run.params, features, labels) < two_layer_loss(start, features, labels)
    True
    """
    act = _activation(activation)
    lam = _l2(l2)
    p = _params(params)
    x = _features(features, p)
    t = _targets(targets, x.shape[0], p["W2"].shape[0])
    eta = _step_size(step_size)
    n_epochs = _count(epochs, "epochs")
    if batch_size is not None:
        batch_size = _count(batch_size, "batch_size")
        if rng is None:
            raise TypeError("rng is required with batch_size: a Generator or a seed to shuffle by")
    # Checked even when full-batch descent does not use it: a wrong rng is a mistake either way.
    generator = None if rng is None else _generator(rng)
    # An overflow at the starting point is the input's fault, and reported as such; any later
    # one is the descent's.
    _loss_and_grad(p, x, t, act, lam, want_loss=False)
    current = {key: value.copy() for key, value in p.items()}
    history = [{key: value.copy() for key, value in current.items()}]
    rows = x.shape[0]
    size = rows if batch_size is None else batch_size
    for epoch in range(1, n_epochs + 1):
        order = np.arange(rows) if batch_size is None else generator.permutation(rows)
        for start in range(0, rows, size):
            batch = order[start:start + size]
            try:
                _, grads = _loss_and_grad(current, x[batch], t[batch], act, lam, want_loss=False)
            except ValueError:
                raise _diverged(epoch, eta) from None
            with np.errstate(over="ignore", invalid="ignore"):
                for key in PARAMETER_NAMES:
                    current[key] -= eta * grads[key]
            if not all(np.all(np.isfinite(value)) for value in current.values()):
                raise _diverged(epoch, eta)
        history.append({key: value.copy() for key, value in current.items()})
    return TwoLayerTraining(current, tuple(history))


def _diverged(epoch: int, step_size: float) -> ValueError:
    return ValueError(f"gradient descent diverged in epoch {epoch}: the parameters grew until "
                      f"the network overflows the float64 range; try a smaller step_size than "
                      f"{step_size!r}")
