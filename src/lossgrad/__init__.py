"""lossgrad: the gradient of cross-entropy with respect to logits, exactly.

The numerical functions live in :mod:`lossgrad.numerics` and are re-exported here; the
symbolic definitions in :mod:`lossgrad.symbolic`, the step-checked derivations of the book in
:mod:`lossgrad.derivation`, gradient checks in :mod:`lossgrad.gradcheck`, the plot style in
:mod:`lossgrad.plotstyle` and the book's figures in :mod:`lossgrad.figures`.
"""

from lossgrad.numerics import (
    bce_with_logits,
    bce_with_logits_grad,
    log_sigmoid,
    log_softmax,
    logit,
    logsumexp,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softplus,
)

__all__ = [
    "bce_with_logits",
    "bce_with_logits_grad",
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softplus",
]
__version__ = "0.1.0"
