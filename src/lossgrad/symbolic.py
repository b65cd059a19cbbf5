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
    "INDEX_RANGES",
    "SHORT_NAMES",
    "K",
    "as_written",
    "bce_loss",
    "binary_cross_entropy",
    "binary_entropy",
    "binary_kl",
    "i",
    "j",
    "k",
    "logit",
    "logits",
    "logsumexp",
    "p",
    "q",
    "sigmoid",
    "softmax",
    "softmax_component",
    "softmax_cross_entropy",
    "softplus",
    "u",
    "unfold",
    "y",
    "z",
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
#: ``softmax_component(i, z_1, ..., z_K)`` is :math:`s_i = e^{z_i} / \sum_k e^{z_k}`; with the
#: index alone, ``softmax_component(i)``, it is the same for a general :math:`K` (see
#: :data:`K`, :data:`z`). It prints as :math:`s_i`.
softmax_component = sp.Function("s", real=True, positive=True)
#: ``logsumexp(z_1, ..., z_K)`` is :math:`\log \sum_k e^{z_k}`.
logsumexp = sp.Function("logsumexp", real=True)

# A general number of classes K, indices, and indexed logits and targets (chapters 4 and 5).
#: The number of classes, a positive integer.
K = sp.Symbol("K", integer=True, positive=True)
i, j, k = sp.symbols("i j k", integer=True, positive=True)
#: Indexed logits :math:`z_1, \dots, z_K` and targets :math:`y_1, \dots, y_K`.
z = sp.IndexedBase("z", real=True)
y = sp.IndexedBase("y", real=True)
#: What is known of the free indices: each lies in 1..K. Sums over a Kronecker delta evaluate
#: to a ``Piecewise`` that asks exactly this.
INDEX_RANGES: tuple[sp.Basic, ...] = (sp.Ge(K, i), sp.Ge(K, j), sp.Le(i, K), sp.Le(j, K))


def _softmax_definition(index: sp.Expr, *logits: sp.Expr) -> sp.Expr:
    if not logits:
        return sp.exp(z[index]) / sp.Sum(sp.exp(z[k]), (k, 1, K))
    # Explicit K: the index is a position 1..K in the list of logits.
    return sp.exp(logits[int(index) - 1]) / sum(sp.exp(a) for a in logits)


def _logsumexp_definition(*logits: sp.Expr) -> sp.Expr:
    return sp.log(sum(sp.exp(a) for a in logits))


#: Each named function's definition in terms of ``exp`` and ``log``.
DEFINITIONS: dict[sp.FunctionClass, object] = {
    sigmoid: sp.Lambda(u, 1 / (1 + sp.exp(-u))),
    softplus: sp.Lambda(u, sp.log(1 + sp.exp(u))),
    logit: sp.Lambda(q, sp.log(q / (1 - q))),
    softmax_component: _softmax_definition,
    logsumexp: _logsumexp_definition,
}

#: Named functions printed by name and index alone, without their arguments.
SHORT_NAMES: frozenset[sp.FunctionClass] = frozenset({softmax_component})


def unfold(expr: sp.Expr) -> sp.Expr:
    """Replace every named function by its definition and evaluate derivatives.

    How the derivation engine checks a step; see chapter 2, "The logistic sigmoid".

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
    if isinstance(expr, sp.MatrixExpr) and not isinstance(expr, sp.MatrixBase):
        # A product such as (y_1 + y_2 + y_3)·M, kept unevaluated for display.
        expr = expr.as_explicit()
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(unfold)
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

    Used by the definitions in chapters 3 and 5, so that they read as written.

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

    Differentiated in chapter 3, "The gradient of binary cross-entropy".

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

    The minimum value of the loss, in chapter 3, "The gradient of binary cross-entropy".

    Examples
    --------
    >>> from lossgrad.symbolic import binary_entropy
    >>> binary_entropy()
    -p*log(p) - (1 - p)*log(1 - p)
    """
    return as_written(-target * sp.log(target), _minus(1 - target, sp.log(1 - target)))


def binary_kl(target: sp.Expr, prediction: sp.Expr) -> sp.Expr:
    """Kullback–Leibler divergence between Bernoulli(p) and Bernoulli(s), in nats.

    The excess loss over the minimum, in chapter 3, "The gradient of binary cross-entropy".

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


def logits(count: int, name: str = "z") -> list[sp.Symbol]:
    """``count`` real logit symbols :math:`z_1, \\dots, z_K`.

    Used from chapter 4, "Softmax and its Jacobian" on.

    Examples
    --------
    >>> from lossgrad.symbolic import logits
    >>> logits(3)
    [z_1, z_2, z_3]
    """
    return list(sp.symbols(f"{name}_1:{count + 1}", real=True))


def softmax(values: list[sp.Expr]) -> list[sp.Expr]:
    """The softmax of a list of logits, as named components :math:`s_1, \\dots, s_K`.

    Each component prints as :math:`s_i` and unfolds to :math:`e^{z_i} / \\sum_k e^{z_k}`.
    Derived in chapter 4, "Softmax and its Jacobian".

    Examples
    --------
    >>> from lossgrad.symbolic import logits, softmax, unfold
    >>> s = softmax(logits(2))
    >>> unfold(s[0])
    exp(z_1)/(exp(z_1) + exp(z_2))
    """
    return [softmax_component(n, *values) for n in range(1, len(values) + 1)]


def softmax_cross_entropy(values: list[sp.Expr], targets: list[sp.Expr]) -> sp.Expr:
    """Cross-entropy :math:`-\\sum_k y_k \\log s_k` of targets against the softmax of logits.

    Derived in chapter 5, "The gradient of softmax cross-entropy".

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.symbolic import logits, softmax_cross_entropy
    >>> softmax_cross_entropy(logits(2), list(sp.symbols("y_1 y_2")))
    -y_1*log(s(1, z_1, z_2)) - y_2*log(s(2, z_1, z_2))
    """
    s = softmax(values)
    return as_written(*(_minus(t, sp.log(c)) for t, c in zip(targets, s, strict=True)))
