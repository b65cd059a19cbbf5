"""lossgrad: the gradient of cross-entropy with respect to logits, exactly.

The losses and their gradients live in :mod:`lossgrad.losses` and the element-wise and softmax
functions in :mod:`lossgrad.numerics`; both are re-exported here. The symbolic definitions are
in :mod:`lossgrad.symbolic`, the step-checked derivations of the book in
:mod:`lossgrad.derivation`, gradient checks in :mod:`lossgrad.gradcheck`, exact references and
errors in ULPs in :mod:`lossgrad.accuracy`, and the plot style and the book's figures in
:mod:`lossgrad.plotstyle`, :mod:`lossgrad.figures`, :mod:`lossgrad.simplex` and
:mod:`lossgrad.descent`. Argument checks are in :mod:`lossgrad.validation` and the accurate
reductions in :mod:`lossgrad.summation`. Logistic and softmax regression (the losses, gradients
and Hessians in the weights, and Newton and gradient-descent fits) are in
:mod:`lossgrad.regression`, and a two-layer network with its gradients by backpropagation in
:mod:`lossgrad.network`. Part V's variants: the sigmoid focal loss in :mod:`lossgrad.focal`,
the distillation loss at a temperature in :mod:`lossgrad.distillation`, z-loss and logit
soft-capping in :mod:`lossgrad.stability`. Part VI's linear cross-entropy over a large vocabulary,
a block at a time, is in :mod:`lossgrad.vocabulary`.

The vocabulary, followed by every function:

Names
    A function is named after what it computes, from logits: ``bce_with_logits`` is binary
    cross-entropy of targets against :math:`\\sigma(\\text{logits})`, ``softmax_cross_entropy``
    cross-entropy against :math:`\\operatorname{softmax}(\\text{logits})`. The two names come
    from the two libraries readers know (PyTorch's ``binary_cross_entropy_with_logits`` and
    optax's ``softmax_cross_entropy``); each says which link maps logits to probabilities, which
    PyTorch's ``cross_entropy`` does not. They are kept, rather than made symmetric, because
    the book's chapters and readers' code call them. Each loss comes with ``_grad`` (its
    gradient with respect to the logits) and ``_and_grad`` (both, in one pass).
Options
    Named and defined as in PyTorch, so that results can be cross-checked: ``weight``,
    ``pos_weight``, ``label_smoothing``, ``ignore_index`` (default ``-100``), ``reduction``.
    Every option is keyword-only.
Reduction
    ``reduction="mean"`` is the default, as in PyTorch; ``"sum"`` and ``"none"`` are the
    others. A reduced loss is the exact sum of the element-wise (or row-wise) losses rounded
    once, divided by the count (or, for class-index targets with a class ``weight``, by the
    targets' total weight, as PyTorch does; rows whose target is ``ignore_index`` count in
    neither). A gradient is always the gradient of exactly what the loss returns with the same
    options.
Targets
    Binary targets are probabilities in [0, 1] (soft labels allowed). Softmax targets are told
    apart by their dtype: an integer array holds class indices (the logits' shape without the
    class axis), a floating-point array holds probabilities (the logits' shape).
Class axis
    The softmax family and softmax cross-entropy take ``axis=-1``: classes lie along the last
    axis unless told otherwise (PyTorch's ``dim=1`` for a batch is ``axis=1`` here).
Types
    Inputs are float32 or float64; the result has the inputs' type. float64 inputs are computed
    in float64. For float32 inputs the binary loss is computed in float64 and rounded once; the
    binary gradient and softmax cross-entropy are computed in float32 arithmetic (in float64
    they would take longer than the naive float32 formulas); reductions always add in float64.
    Each function's docstring states its error bound in terms of the condition number.
    A result with at least one dimension is an ndarray; a 0-dimensional one (a reduced loss, or
    a function of a scalar) is a NumPy scalar. Bad input raises a ``TypeError`` or
    ``ValueError`` naming the argument (:mod:`lossgrad.validation`).
Edges
    Finite input never gives NaN or a warning; a result beyond the float range is ``inf``, its
    correct rounding (the sum of huge losses; never their mean). Infinite logits give the
    mathematical limits. NaN in an input stays in its own element or row.
"""

from lossgrad.losses import (
    bce_with_logits,
    bce_with_logits_and_grad,
    bce_with_logits_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_and_grad,
    softmax_cross_entropy_grad,
)
from lossgrad.numerics import (
    log_sigmoid,
    log_softmax,
    logit,
    logsumexp,
    sigmoid,
    softmax,
    softplus,
)

__all__ = [
    "bce_with_logits",
    "bce_with_logits_and_grad",
    "bce_with_logits_grad",
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_and_grad",
    "softmax_cross_entropy_grad",
    "softplus",
]
__version__ = "0.3.2"
