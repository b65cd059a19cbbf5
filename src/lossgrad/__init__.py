"""lossgrad: the gradient of cross-entropy with respect to logits, exactly.

The losses and their gradients live in :mod:`lossgrad.losses` and the element-wise and softmax
functions in :mod:`lossgrad.numerics`; both are re-exported here. The symbolic definitions are
in :mod:`lossgrad.symbolic`, the step-checked derivations of the book in
:mod:`lossgrad.derivation`, gradient checks in :mod:`lossgrad.gradcheck`, and the plot style and
the book's figures in :mod:`lossgrad.plotstyle`, :mod:`lossgrad.figures`,
:mod:`lossgrad.simplex` and :mod:`lossgrad.descent`.
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
__version__ = "0.1.0"
