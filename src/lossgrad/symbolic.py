"""Symbolic definitions: the functions the book reasons about, as sympy objects.

The named functions here (:data:`sigmoid`, :data:`softplus`, :data:`logit`) are *undefined*
sympy functions: they print as :math:`\\sigma(u)`, :math:`\\operatorname{softplus}(u)` and
:math:`\\operatorname{logit}(q)`, and sympy knows nothing about them. That is deliberate: a fact
such as :math:`\\sigma' = \\sigma(1-\\sigma)` is never built in, so it cannot be assumed by
accident; it is derived in chapter 2 and checked by :mod:`lossgrad.derivation`, which replaces
each named function by its definition (:func:`unfold`) before comparing two expressions.
"""

from __future__ import annotations

import contextvars
from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE_TRADITIONAL

__all__ = [
    "DEFINITIONS",
    "INDEX_RANGES",
    "SHORT_NAMES",
    "IndexSum",
    "K",
    "as_written",
    "at_logits",
    "bce_loss",
    "binary_cross_entropy",
    "binary_entropy",
    "binary_kl",
    "i",
    "index_sum",
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
    "tempered_softmax_component",
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


def _real_argument(self: sp.Basic) -> bool | None:
    # sigma(a) and softplus(a) are real and positive where a is real; of a complex a nothing is
    # claimed (sigma(i*pi) is not even defined), so Abs(sigma(c)) is not simplified to sigma(c).
    return True if all(a.is_extended_real for a in self.args) else None


def _logit_real(self: sp.Basic) -> bool | None:
    # logit(a) = log(a / (1 - a)) is real only where 0 < a < 1 (logit(2) = -log 2 + i*pi).
    a = self.args[0]
    return True if a.is_positive and (1 - a).is_positive else None


def _softmax_positive(self: sp.Basic) -> bool | None:
    # s_i of real logits (a general K: of the real z_k) is real and positive.
    logits = self.args[1:]
    return True if all(a.is_extended_real for a in logits) else None


_POSITIVE_WHERE_REAL = {
    "_eval_is_real": _real_argument,
    "_eval_is_positive": _real_argument,
    "_eval_is_finite": _real_argument,
}
sigmoid = sp.Function("sigma", **_POSITIVE_WHERE_REAL)
softplus = sp.Function("softplus", **_POSITIVE_WHERE_REAL)
logit = sp.Function("logit", _eval_is_real=_logit_real, _eval_is_finite=_logit_real)
#: ``softmax_component(i, z_1, ..., z_K)`` is :math:`s_i = e^{z_i} / \sum_k e^{z_k}`; with the
#: index alone, ``softmax_component(i)``, it is the same for a general :math:`K` (see
#: :data:`K`, :data:`z`). It prints as :math:`s_i`.
softmax_component = sp.Function(
    "s",
    _eval_is_real=_softmax_positive,
    _eval_is_positive=_softmax_positive,
    _eval_is_finite=_softmax_positive,
)
#: ``logsumexp(z_1, ..., z_K)`` is :math:`\log \sum_k e^{z_k}`.
logsumexp = sp.Function("logsumexp", _eval_is_real=_real_argument, _eval_is_finite=_real_argument)

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
    if not (getattr(index, "is_Integer", False) and 1 <= int(index) <= len(logits)):
        raise ValueError(
            f"the index of a softmax component of {len(logits)} logits must be an integer "
            f"1..{len(logits)}, got {index}"
        )
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
    differentiated = {v for d in expr.atoms(sp.Derivative) for v in d.variables}
    uses_k = any(k in v.free_symbols for v in differentiated)
    if uses_k and expr.has(softmax_component, tempered_softmax_component):
        # The definitions of s_i sum over k; sympy differentiates that sum with respect to z_k
        # as if the two k were one (d s_i / d z_k comes out wrong). Refused rather than guessed.
        raise ValueError(
            "k is the summation index of the softmax definitions: differentiate with respect "
            "to z_i, z_j or another index, not z_k"
        )
    for _ in range(len(DEFINITIONS) + 1):
        before = expr
        for function, definition in DEFINITIONS.items():
            expr = expr.replace(function, definition)
        if expr == before:
            break
    reserved = set(expr.free_symbols)
    for derivative in expr.atoms(sp.Derivative):
        for variable in derivative.variables:
            reserved |= variable.free_symbols  # sympy leaves them out of free_symbols
    token = _RESERVED.set(_RESERVED.get() | frozenset(reserved))
    try:
        return expr.doit()
    finally:
        _RESERVED.reset(token)


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


# Sums over an index, for statements about every K (chapters 4 and 5) ----------------------


#: Symbols free in the expression :func:`unfold` is writing out (derivative variables
#: included): a sum's index is never renamed to one of them, so that d/dz_k of a sum over i
#: is not turned into a derivative of a sum over k with respect to one of its own terms.
_RESERVED: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "lossgrad_reserved_indices", default=frozenset()
)


def _summation_name() -> sp.Symbol:
    """k, or k', k'', ... if k occurs free in the expression being unfolded."""
    reserved = _RESERVED.get()
    name = k
    while name in reserved:
        name = sp.Symbol(name.name + "'", integer=True, positive=True)
    return name


def _renaming_is_safe(body: sp.Expr, old: sp.Symbol, new: sp.Symbol) -> bool:
    # Renaming the bound index old to new must not capture: new may not occur free in the
    # body, and old may not occur inside an inner sum that binds new.
    if new in body.free_symbols:
        return False
    return all(
        old not in inner.free_symbols
        for inner in body.atoms(sp.Sum)
        if any(limit[0] == new for limit in inner.limits)
    )


def _sum_term(body: sp.Expr, limit: tuple, hints: dict) -> sp.Expr:
    index, low, high = limit
    result = sp.Sum(body, limit).doit(**hints)
    if not isinstance(result, sp.Sum):
        return result
    # Factors that do not depend on the index come out of the sum.
    outside, inside = result.function.as_independent(index, as_Add=False)
    name = _summation_name()
    new = name if _renaming_is_safe(inside, index, name) else index
    return outside * sp.Sum(inside.xreplace({index: new}), (new, low, high))


def _sum_one(body: sp.Expr, limit: tuple, hints: dict) -> sp.Expr:
    index, low, high = limit
    # Inside the sum the index lies in low..high (a sum over a Kronecker delta asks exactly this).
    body = body.subs(
        {
            sp.Le(index, high): True,
            sp.Ge(high, index): True,
            sp.Ge(index, low): True,
            sp.Le(low, index): True,
        }
    )
    terms = sp.Add.make_args(sp.expand(body, power_exp=False, power_base=False, log=False))
    return sp.Add(*(_sum_term(term, limit, hints) for term in terms))


class IndexSum(sp.Sum):
    """A sum over an index whose name does not matter to the checks.

    It prints as the sum it is. Evaluated (as :func:`unfold` does before two expressions are
    compared), it is split over its terms, factors that do not depend on the index are taken
    out, and the index is renamed :data:`k` wherever that captures nothing. These are
    equivalence transformations, so :math:`\\sum_i s_i` and :math:`\\sum_k s_k`, or
    :math:`\\sum_i \\sum_j v_i v_j` and :math:`(\\sum_k v_k)^2`, become the same expression,
    which sympy does not see by itself. The name :data:`k` is therefore best kept for
    summation, never used as a free index next to an :class:`IndexSum`.
    """

    #: Printed, and parenthesised, as a sum: :math:`(\\sum_k a_k)^2`, not :math:`\\sum_k a_k^2`.
    precedence = PRECEDENCE_TRADITIONAL["Sum"]

    def _latex(self, printer: Any, **options: object) -> str:
        if len(self.limits) == 1:
            return printer._print_Sum(self)
        # Several indices: nested sums, the outermost first, as they were written.
        signs = "".join(
            rf"\sum_{{{printer._print(index)}={printer._print(low)}}}^{{{printer._print(high)}}} "
            for index, low, high in reversed(self.limits)
        )
        body = printer._print(self.function)
        return signs + (rf"\left({body}\right)" if self.function.is_Add else body)

    def doit(self, **hints: object) -> sp.Expr:
        body = self.function.doit(**hints) if hints.get("deep", True) else self.function
        for limit in self.limits:
            body = _sum_one(body, limit, hints)
        return body


def index_sum(body: sp.Expr, index: sp.Symbol) -> IndexSum:
    """:math:`\\sum_{index=1}^{K} body`, an :class:`IndexSum` over 1..K.

    Used in chapters 4 and 5, "Softmax and its Jacobian" and "The gradient of softmax
    cross-entropy", for statements proved for every number of classes :data:`K`.

    Examples
    --------
    >>> from lossgrad.symbolic import i, index_sum, softmax_component, unfold
    >>> index_sum(softmax_component(i), i)
    Sum(s(i), (i, 1, K))
    >>> unfold(index_sum(softmax_component(i), i))
    1
    """
    return IndexSum(body, (index, 1, K))


class tempered_softmax_component(sp.Function):
    """:math:`s_i(z/T)`, the softmax of the logits divided by a temperature :math:`T`.

    ``tempered_softmax_component(i, T)`` is the component for a general :data:`K`;
    ``tempered_softmax_component(n, T, z_1, ..., z_K)`` the same for explicit logits. It
    prints with its argument, :math:`s_i(z/T)`, so that it is not read as :math:`s_i(z)`.
    Like the other named functions, it is replaced by its definition by :func:`unfold`.
    Used in chapters 4 and 5.

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.symbolic import i, tempered_softmax_component, unfold
    >>> T = sp.Symbol("T", positive=True)
    >>> tempered_softmax_component(i, T)
    s_i(z/T)
    >>> unfold(tempered_softmax_component(i, T))
    exp(z[i]/T)/Sum(exp(z[k]/T), (k, 1, K))
    """

    def _eval_is_positive(self) -> bool | None:
        # Real and positive for real logits and a real temperature; nothing claimed otherwise.
        return True if all(a.is_extended_real for a in self.args[1:]) else None

    _eval_is_real = _eval_is_finite = _eval_is_positive

    def _latex(self, printer: object, exp: str | None = None) -> str:
        index, temperature = self.args[:2]
        base = rf"s_{{{printer._print(index)}}}(z/{printer._print(temperature)})"
        return base if exp is None else rf"{base}^{{{exp}}}"

    def _sympystr(self, printer: object) -> str:
        index, temperature = self.args[:2]
        return f"s_{printer._print(index)}(z/{printer._print(temperature)})"


def _tempered_definition(index: sp.Expr, temperature: sp.Expr, *values: sp.Expr) -> sp.Expr:
    return (
        _softmax_definition(index, *(a / temperature for a in values))
        if values
        else (sp.exp(z[index] / temperature) / sp.Sum(sp.exp(z[k] / temperature), (k, 1, K)))
    )


DEFINITIONS[tempered_softmax_component] = _tempered_definition


def at_logits(expr: sp.Expr, image: Any) -> sp.Expr:
    """``expr`` evaluated at other logits: every :math:`z_k` replaced by ``image(z_k)``.

    Named functions are replaced by their definitions first (:func:`unfold`), so that the
    logits inside them are reached; a sum over :math:`k` keeps its index. Used in chapters 4
    and 5 for :math:`s_i(z + c\\mathbf{1})` and :math:`L(\\log y + c\\mathbf{1})`, so that a
    substitution written out by hand is checked against the one made here.

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.symbolic import at_logits, i, softmax_component
    >>> c = sp.Symbol("c", real=True)
    >>> at_logits(softmax_component(i), lambda logit: logit + c)
    exp(c + z[i])/Sum(exp(c + z[k]), (k, 1, K))
    """
    return unfold(expr).replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == z, lambda e: image(e)
    )
