"""Symbolic definitions: the functions the book reasons about, as sympy objects.

The named functions here (:data:`sigmoid`, :data:`softplus`, :data:`logit`) are *undefined*
sympy functions: they print as :math:`\\sigma(u)`, :math:`\\operatorname{softplus}(u)` and
:math:`\\operatorname{logit}(q)`, and sympy knows nothing about them. That is deliberate: a fact
such as :math:`\\sigma' = \\sigma(1-\\sigma)` is never built in, so it cannot be assumed by
accident; it is derived in chapter 2 and checked by :mod:`lossgrad.derivation`, which replaces
each named function by its definition (:func:`unfold`) before comparing two expressions.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "DEFINITIONS",
    "as_written",
    "bce_loss",
    "binary_cross_entropy",
    "binary_entropy",
    "binary_kl",
    "logit",
    "p",
    "q",
    "sigmoid",
    "softplus",
    "u",
    "unfold",
]

#: The logit (the input of the sigmoid), any real number.
u = sp.Symbol("u", real=True)
#: The target probability, :math:`0 \le p \le 1`.
p = sp.Symbol("p", real=True, nonnegative=True)
#: A probability strictly between 0 and 1 (the argument of :data:`logit`).
q = sp.Symbol("q", real=True, positive=True)

sigmoid = sp.Function("sigma", real=True, positive=True)
softplus = sp.Function("softplus", real=True, positive=True)
logit = sp.Function("logit", real=True)

#: Each named function's definition in terms of ``exp`` and ``log``.
DEFINITIONS: dict[sp.FunctionClass, sp.Lambda] = {
    sigmoid: sp.Lambda(u, 1 / (1 + sp.exp(-u))),
    softplus: sp.Lambda(u, sp.log(1 + sp.exp(u))),
    logit: sp.Lambda(q, sp.log(q / (1 - q))),
}


def unfold(expr: sp.Expr) -> sp.Expr:
    """Replace every named function by its definition and evaluate derivatives.

    Parameters
    ----------
    expr : sympy.Expr
        An expression that may contain :data:`sigmoid`, :data:`softplus`, :data:`logit`
        and unevaluated ``Derivative`` objects.

    Returns
    -------
    sympy.Expr
        The same quantity written with ``exp`` and ``log`` only, derivatives carried out.

    Examples
    --------
    >>> from lossgrad.symbolic import sigmoid, softplus, u, unfold
    >>> unfold(sigmoid(u))
    1/(1 + exp(-u))
    >>> unfold(softplus(-u))
    log(1 + exp(-u))
    """
    expr = sp.sympify(expr)
    for _ in range(len(DEFINITIONS) + 1):
        before = expr
        for function, definition in DEFINITIONS.items():
            expr = expr.replace(function, definition)
        if expr == before:
            break
    return expr.doit()


#: Sums to be printed in the order their author wrote them (see :func:`as_written`).
AS_WRITTEN: set[sp.Expr] = set()


def as_written(*terms: sp.Expr) -> sp.Expr:
    """A sum that keeps, and prints in, the order of its terms.

    Examples
    --------
    >>> from lossgrad.symbolic import as_written, p, sigmoid, u
    >>> as_written(-p, sigmoid(u)) in AS_WRITTEN
    True
    """
    total = sp.Add(*terms, evaluate=False)
    AS_WRITTEN.add(total)
    return total


def _minus(*factors: sp.Expr) -> sp.Expr:
    # -(1 - p)·x, kept as written: sympy would otherwise distribute the sign into (p - 1)·x.
    return sp.Mul(sp.Integer(-1), *factors, evaluate=False)


def binary_cross_entropy(prediction: sp.Expr, target: sp.Expr = p) -> sp.Expr:
    r"""Cross-entropy of Bernoulli(target) against Bernoulli(prediction), by definition.

    .. math::

        \ell(s) = -p \log s - (1 - p) \log(1 - s)

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.symbolic import binary_cross_entropy
    >>> binary_cross_entropy(sp.Symbol("s"))
    -p*log(s) - (1 - p)*log(1 - s)
    """
    return as_written(-target * sp.log(prediction), _minus(1 - target, sp.log(1 - prediction)))


def bce_loss(logit_value: sp.Expr = u, target: sp.Expr = p) -> sp.Expr:
    """Binary cross-entropy of a target probability against :math:`\\sigma(u)`, by definition.

    .. math::

        L(u) = -p \\log \\sigma(u) - (1 - p) \\log\\bigl(1 - \\sigma(u)\\bigr)

    Derived and simplified in chapter 3, "The gradient of binary cross-entropy".

    Examples
    --------
    >>> from lossgrad.symbolic import bce_loss
    >>> bce_loss()
    -p*log(sigma(u)) - (1 - p)*log(1 - sigma(u))
    """
    return binary_cross_entropy(sigmoid(logit_value), target)


def binary_entropy(target: sp.Expr = p) -> sp.Expr:
    """Binary entropy in nats, :math:`H(p) = -p\\log p - (1-p)\\log(1-p)`.

    Examples
    --------
    >>> from lossgrad.symbolic import binary_entropy
    >>> binary_entropy()
    -p*log(p) - (1 - p)*log(1 - p)
    """
    return as_written(-target * sp.log(target), _minus(1 - target, sp.log(1 - target)))


def binary_kl(target: sp.Expr, prediction: sp.Expr) -> sp.Expr:
    """Kullback–Leibler divergence between Bernoulli(p) and Bernoulli(s), in nats.

    .. math::

        \\operatorname{KL}(p \\,\\|\\, s) = p \\log\\frac{p}{s} + (1-p)\\log\\frac{1-p}{1-s}

    Examples
    --------
    >>> from lossgrad.symbolic import binary_kl, p, sigmoid, u
    >>> binary_kl(p, sigmoid(u))
    p*log(p/sigma(u)) + (1 - p)*log((1 - p)/(1 - sigma(u)))
    """
    return as_written(
        target * sp.log(target / prediction),
        (1 - target) * sp.log((1 - target) / (1 - prediction)),
    )
