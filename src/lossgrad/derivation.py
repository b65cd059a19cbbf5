"""Step-checked derivations: a chain of equal expressions, each step verified.

A :class:`Derivation` starts from an expression and grows one :meth:`~Derivation.step` at a
time. Each new expression must equal the previous one. The engine first tries to *prove* the
equality with sympy (after replacing named functions by their definitions, see
:func:`lossgrad.symbolic.unfold`); when sympy cannot decide, it falls back to comparing both
sides at random points of the stated domain with mpmath at 50 significant digits, and the
rendering says so. A step that is false raises :class:`InvalidStepError` with the step, the
difference and a counterexample point.

Every derivation in the book is written with this module (chapters 2 and 3 onwards).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import mpmath
import sympy as sp
from sympy.printing.latex import LatexPrinter

from lossgrad import ledger
from lossgrad.symbolic import AS_WRITTEN, SHORT_NAMES, K, p, q, u, unfold

__all__ = ["DEFAULT_DOMAINS", "Derivation", "InvalidStepError", "Step", "identity"]

#: Where each of the book's symbols lives; used to draw numeric test points.
DEFAULT_DOMAINS: dict[sp.Symbol, tuple[float, float]] = {
    u: (-30.0, 30.0),
    p: (0.0, 1.0),
    q: (0.0, 1.0),
}

#: Symbolic strategies, cheapest first. Each must be an equivalence transformation for real
#: symbols, so that a zero result is a proof; ``expand_log`` without ``force`` only splits a
#: logarithm where sympy can show its arguments are positive.
_STRATEGIES: tuple[tuple[str, Callable[[sp.Expr], sp.Expr]], ...] = (
    ("expand", sp.expand),
    ("simplify", sp.simplify),
    ("expand_log", lambda e: sp.simplify(sp.expand_log(e))),
    ("rewrite(exp)", lambda e: sp.simplify(sp.expand_log(sp.expand(e.rewrite(sp.exp))))),
    ("together", lambda e: sp.simplify(sp.together(sp.expand_log(sp.powsimp(e))))),
)


class InvalidStepError(ValueError):
    """A derivation step that does not follow from the previous expression."""


@dataclass(frozen=True)
class Step:
    """One line of a derivation.

    Attributes
    ----------
    expr : sympy.Expr
        The expression on this line.
    why : str
        A one-line justification, shown beside the line; math goes between dollar signs.
    method : str
        ``"start"`` for the first line, ``"symbolic"`` when sympy proved the step,
        ``"numeric"`` when it was checked at ``points`` random points.
    points : int
        How many points the numeric check used (0 for a symbolic proof).
    instances : bool
        Whether a statement for a general :math:`K` was checked numerically at
        :math:`K = 2, 3, 4` and every value of its free indices.
    """

    expr: sp.Expr
    why: str
    method: str
    points: int = 0
    instances: bool = False

    @property
    def verdict(self) -> str:
        """How the step was verified, in words."""
        if self.method == "symbolic":
            return "proved symbolically"
        if self.method == "numeric":
            where = " for K = 2, 3, 4" if self.instances else ""
            return f"checked numerically at {self.points} points{where}"
        return ""


def _domain_of(
    symbol: sp.Symbol, domains: Mapping[sp.Symbol, tuple[float, float]]
) -> tuple[float, float]:
    if symbol in domains:
        return domains[symbol]
    if symbol.is_positive:
        return (1e-3, 10.0)
    if symbol.is_nonnegative:
        return (0.0, 10.0)
    return (-10.0, 10.0)


def _is_zero_symbolically(difference: sp.Expr, conditions: Mapping[sp.Basic, bool]) -> bool:
    # A sum over a Kronecker delta evaluates to a Piecewise whose condition is that the free
    # index lies in range; the derivation's conditions settle it.
    difference = difference.doit().subs(conditions) if conditions else difference
    for _name, strategy in _STRATEGIES:
        try:
            if strategy(difference) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError, RecursionError):
            continue
    return False


@dataclass(frozen=True)
class _NumericCheck:
    agree: bool
    points: int
    worst: dict[sp.Symbol, mpmath.mpf] | None
    worst_values: tuple[object, object] | None
    worst_gap: object
    worst_pair: int = 0


def _numeric_check(
    pairs: list[tuple[sp.Expr, sp.Expr]],
    domains: Mapping[sp.Symbol, tuple[float, float]],
    points: int,
    seed: int,
    digits: int,
) -> _NumericCheck:
    """Compare pairs of expressions at random points with mpmath at ``digits`` digits."""
    symbols = sorted(
        set().union(*(a.free_symbols | b.free_symbols for a, b in pairs)), key=lambda s: s.name
    )
    functions = [
        (sp.lambdify(symbols, a, modules="mpmath"), sp.lambdify(symbols, b, modules="mpmath"))
        for a, b in pairs
    ]
    rng = random.Random(seed)
    worst, worst_values, worst_gap, worst_pair = None, None, mpmath.mpf(-1), 0
    with mpmath.workdps(digits):
        tolerance = mpmath.mpf(10) ** (15 - digits)
        for _ in range(points):
            point = {}
            for s in symbols:
                lo, hi = _domain_of(s, domains)
                # Open interval: the end points of a domain are often where a logarithm is 0·log 0.
                point[s] = mpmath.mpf(lo) + (mpmath.mpf(hi) - mpmath.mpf(lo)) * mpmath.mpf(
                    rng.uniform(1e-6, 1 - 1e-6)
                )
            args = [point[s] for s in symbols]
            for n, (f, g) in enumerate(functions):
                a, b = f(*args), g(*args)
                gap = abs(a - b) / max(1, abs(a), abs(b))
                if gap > worst_gap:
                    worst, worst_values, worst_gap, worst_pair = point, (a, b), gap, n
    return _NumericCheck(
        bool(worst_gap <= tolerance), points, worst, worst_values, worst_gap, worst_pair
    )


def _entries(
    before: sp.Expr | sp.MatrixBase, after: sp.Expr | sp.MatrixBase, index: int
) -> list[tuple[sp.Expr, sp.Expr]]:
    """The pairs of scalars to compare: one, or one per matrix entry."""
    matrices = isinstance(before, sp.MatrixBase), isinstance(after, sp.MatrixBase)
    if not any(matrices):
        return [(before, after)]
    if not all(matrices) or before.shape != after.shape:
        shapes = [getattr(e, "shape", "a scalar") for e in (before, after)]
        raise InvalidStepError(f"step {index}: shapes differ, {shapes[0]} then {shapes[1]}")
    return list(zip(before, after, strict=True))


def _instances(
    pairs: list[tuple[sp.Expr, sp.Expr]],
) -> tuple[list[tuple[sp.Expr, sp.Expr]], list[str]]:
    """Each pair with K = 2, 3, 4, its free indices set every way, and z[n] made a symbol z_n."""
    indices = sorted(
        {s for a, b in pairs for s in (a.free_symbols | b.free_symbols) if s.is_integer} - {K},
        key=lambda s: s.name,
    )

    def concrete(e: sp.Expr, values: dict[sp.Symbol, int]) -> sp.Expr:
        e = e.subs(values).doit()
        return e.replace(
            lambda x: isinstance(x, sp.Indexed),
            lambda x: sp.Symbol(f"{x.base}_{x.indices[0]}", real=True),
        )

    result, labels = [], []
    for size in (2, 3, 4):
        for values in itertools.product(range(1, size + 1), repeat=len(indices)):
            assignment = {K: size, **dict(zip(indices, values, strict=True))}
            label = ", ".join(f"{s} = {v}" for s, v in assignment.items())
            for a, b in pairs:
                result.append((concrete(a, assignment), concrete(b, assignment)))
                labels.append(f"{label}; ")
    return result, labels


def _format_point(point: Mapping[sp.Symbol, object]) -> str:
    return ", ".join(f"{s} = {mpmath.nstr(v, 6)}" for s, v in point.items()) or "(no variables)"


class Derivation:
    """A chain of expressions, each verified equal to the one before it.

    Every chapter from 2 on is written with it; chapter 1 explains how to read its output.

    Parameters
    ----------
    start : sympy.Expr
        The first expression, typically a definition.
    lhs : str, optional
        LaTeX for a name of the quantity, shown once at the left (for example ``"L(u)"``).
        It is a label only and is not checked.
    show_start : bool, default True
        With ``lhs``, whether to display the start expression. ``False`` opens the display
        with ``lhs`` equal to the first step, for a start that is long to print (such as a
        definition written out); the first step is still checked against the start.
    why : str, default "definition"
        The justification shown beside the first line.
    domains : mapping of sympy.Symbol to (low, high), optional
        Where each symbol lives, for the numeric fallback; merged over
        :data:`DEFAULT_DOMAINS` (``u`` in [-30, 30], ``p`` and ``q`` in (0, 1)).
    points : int, default 50
        Number of random points for the numeric fallback.
    digits : int, default 50
        Working precision of the numeric fallback, in significant decimal digits.
    seed : int, default 0
        Seed for the numeric test points, so that every run checks the same points.
    conditions : iterable of sympy relations, optional
        Facts taken as true, such as ``K >= j`` for an index ``j`` that lies in 1..K
        (:data:`lossgrad.symbolic.INDEX_RANGES`); substituted into the conditions of a
        ``Piecewise``, which is how sympy asks about them.

    Expressions may also be sympy matrices, compared entry by entry.

    Notes
    -----
    A step is accepted when the difference of the two expressions, with every named function
    replaced by its definition and every derivative carried out, simplifies to 0 under one of a
    few equivalence-preserving sympy strategies. Otherwise the two sides are evaluated at
    ``points`` random points of the domain; a relative gap above :math:`10^{15-\\text{digits}}`
    anywhere rejects the step, and otherwise it is accepted and marked as checked numerically.
    A numeric check is evidence, not a proof; the rendering says which steps are which.

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.derivation import Derivation
    >>> from lossgrad.symbolic import sigmoid, u
    >>> d = Derivation(sigmoid(-u)).step(1 - sigmoid(u), "symmetry")
    >>> d.steps[-1].verdict
    'proved symbolically'
    >>> Derivation(sigmoid(-u)).step(sigmoid(u), "a wrong claim")
    Traceback (most recent call last):
    ...
    lossgrad.derivation.InvalidStepError: step 1 ("a wrong claim") does not follow...
    """

    def __init__(
        self,
        start: sp.Expr,
        *,
        lhs: str | None = None,
        show_start: bool = True,
        why: str = "definition",
        domains: Mapping[sp.Symbol, tuple[float, float]] | None = None,
        points: int = 50,
        digits: int = 50,
        seed: int = 0,
        conditions: Iterable[sp.Basic] = (),
    ) -> None:
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        if not show_start and lhs is None:
            raise ValueError("show_start=False needs an lhs to stand for the start")
        self.lhs = lhs
        self.show_start = show_start
        self.domains = {**DEFAULT_DOMAINS, **(domains or {})}
        self.points = points
        self.digits = digits
        self.seed = seed
        self.conditions = {condition: True for condition in conditions}
        self._steps = [Step(sp.sympify(start), why, "start")]

    @property
    def steps(self) -> list[Step]:
        """The lines of the derivation, the start first."""
        return list(self._steps)

    @property
    def result(self) -> sp.Expr:
        """The last expression."""
        return self._steps[-1].expr

    def step(self, expr: sp.Expr, why: str) -> Derivation:
        """Append ``expr``, justified by ``why``, after checking it equals the last expression.

        Returns the derivation itself, so that steps can be chained.

        Raises
        ------
        InvalidStepError
            If ``expr`` is not equal to the previous expression on the domain, with the
            difference and the point where the two sides differ most.
        """
        expr = sp.sympify(expr)
        before = self._steps[-1].expr
        index = len(self._steps)
        unfolded_before, unfolded_after = unfold(before), unfold(expr)
        pairs = _entries(unfolded_before, unfolded_after, index)
        if all(_is_zero_symbolically(a - b, self.conditions) for a, b in pairs):
            self._steps.append(Step(expr, why, "symbolic"))
            return self
        labels = [""] * len(pairs)
        general = any(a.has(sp.Indexed, sp.Sum) or b.has(sp.Indexed, sp.Sum) for a, b in pairs)
        if general:
            # A statement for every K is checked for K = 2, 3, 4 and every value of its indices.
            pairs, labels = _instances(pairs)
        check = _numeric_check(
            pairs,
            self.domains,
            self.points,
            self.seed + index,
            self.digits,
        )
        if not check.agree:
            left, right = check.worst_values
            worst_before, worst_after = pairs[check.worst_pair]
            used = worst_before.free_symbols | worst_after.free_symbols
            point = {s: v for s, v in check.worst.items() if s in used}
            raise InvalidStepError(
                f'step {index} ("{why}") does not follow from the line before it.\n'
                f"  before:      {_text(before)}\n"
                f"  claimed:     {_text(expr)}\n"
                f"  difference:  {_text(sp.simplify(worst_before - worst_after))}"
                f"{' (the entry where the two sides differ most)' if len(pairs) > 1 else ''}\n"
                f"  counterexample: {labels[check.worst_pair]}{_format_point(point)}: before = "
                f"{mpmath.nstr(left, 12)}, claimed = {mpmath.nstr(right, 12)}"
            )
        self._steps.append(Step(expr, why, "numeric", check.points, general))
        return self

    def summary(self) -> str:
        """One sentence saying how each step was verified."""
        checked = self._steps[1:]
        symbolic = sum(s.method == "symbolic" for s in checked)
        numeric = [s for s in checked if s.method == "numeric"]
        parts = [f"{symbolic} proved symbolically"]
        if numeric:
            parts.append(f"{len(numeric)} checked numerically at {numeric[0].points} points each")
        return f"{len(checked)} step{'s' if len(checked) != 1 else ''}: " + ", ".join(parts)

    def latex(self) -> str:
        """The derivation as an ``aligned`` LaTeX block with a justification on each line."""
        rows = []
        first, *rest = self._steps
        if self.lhs is not None and self.show_start:
            rows.append((self.lhs, first.expr, first.why, first.verdict))
            lines = rest
        else:
            left = self.lhs if self.lhs is not None else _tex(first.expr)
            rows.append((left, rest[0].expr if rest else None, *_notes(rest)))
            lines = rest[1:]
        for s in lines:
            rows.append(("", s.expr, s.why, s.verdict))
        body = []
        for left, expr, why, verdict in rows:
            right = "" if expr is None else "= " + _tex(expr)
            # Justifications in \small, as a textbook sets them, to leave room for the number.
            note = _why_tex(why)
            # A check mark keeps the line short enough to leave room for the equation number;
            # the rarer numeric check is spelled out, because it is weaker than a proof.
            numeric = ""
            if verdict == "proved symbolically":
                note += r"\ \checkmark"
            elif verdict:
                numeric = rf"\text{{[{verdict}]}}"
            body.append(rf"{left} &{right} && {{\small {note}}}" if note else rf"{left} &{right}")
            if numeric:
                # On a row of its own, under the expression, so that the line stays narrow.
                body.append(rf" & \quad {{\small {numeric}}}")
        return "\\begin{aligned}\n" + " \\\\\n".join(body) + "\n\\end{aligned}"

    @property
    def statement_latex(self) -> str:
        """What the derivation establishes, in LaTeX: its name (``lhs`` or start) = its result."""
        name = self.lhs if self.lhs is not None else _tex(self._steps[0].expr)
        return name if len(self._steps) == 1 else f"{name} = {_tex(self.result)}"

    def _repr_latex_(self) -> str:
        return "$$\n" + self.latex() + "\n$$"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        # The ledger record travels with the display, so the verification ledger page can be
        # built from the chapters' saved outputs.
        return {
            "text/latex": self._repr_latex_(),
            "text/plain": repr(self),
            ledger.MIME: ledger.derivation_record(self),
        }

    def __repr__(self) -> str:
        lines = []
        name = self.lhs if self.lhs is not None else _text(self._steps[0].expr)
        for i, s in enumerate(self._steps):
            if i == 0 and (self.lhs is None or not self.show_start):
                continue
            prefix = name if not lines else " " * len(name)
            reason = "; ".join(part for part in (s.why, s.verdict) if part)
            lines.append(f"{prefix} = {_text(s.expr)}" + (f"    [{reason}]" if reason else ""))
        return "\n".join(lines) if lines else name


class _BookLatexPrinter(LatexPrinter):
    """Prints sums the way a textbook writes them.

    A sum made with :func:`lossgrad.symbolic.as_written` keeps its author's order, so that a
    definition reads as it was written; any other sum is printed in reverse lexicographic
    order, which gives ``sigma(u) - p`` where sympy's default gives ``-p + sigma(u)``.
    """

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return super()._print_Add(expr, order="none" if expr in AS_WRITTEN else order)

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        # s_i depends on every logit z_k, but sympy sees one indexed symbol and would print d/dz_j.
        if not expr.has(sp.Indexed):
            return super()._print_Derivative(expr)
        saved = self._settings["diff_operator_latex"]
        self._settings["diff_operator_latex"] = r"\partial"
        try:
            return super()._print_Derivative(expr)
        finally:
            self._settings["diff_operator_latex"] = saved

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        if expr.func in SHORT_NAMES:
            base = rf"{expr.func.__name__}_{{{self._print(expr.args[0])}}}"
            return base if exp is None else rf"{base}^{{{exp}}}"
        return super()._print_Function(expr, exp)


def _tex(expr: sp.Expr) -> str:
    return _BookLatexPrinter({"order": "rev-lex"}).doprint(expr)


def _why_tex(why: str) -> str:
    """A justification as LaTeX: plain text, with math between dollar signs."""
    pieces = why.split("$")
    return "".join(
        piece if i % 2 else rf"\text{{{piece}}}" for i, piece in enumerate(pieces) if piece
    )


def _text(expr: sp.Expr) -> str:
    return sp.sstr(expr, order="rev-lex")


def _notes(rest: list[Step]) -> tuple[str, str]:
    return (rest[0].why, rest[0].verdict) if rest else ("", "")


def identity(
    left: sp.Expr,
    right: sp.Expr,
    why: str = "",
    **options: object,
) -> Derivation:
    """Check a single equality ``left = right`` and return it as a one-step derivation.

    Used throughout, first in chapter 2, "The logistic sigmoid".

    Keyword options are those of :class:`Derivation` (``domains``, ``points``, ``lhs`` with
    ``show_start=False`` to show a short name in place of a long left side, ...).

    Examples
    --------
    >>> from lossgrad.derivation import identity
    >>> from lossgrad.symbolic import sigmoid, u
    >>> d = identity(sigmoid(u) * (1 - sigmoid(u)), sigmoid(u) * sigmoid(-u), "symmetry")
    >>> print(d)
    (1 - sigma(u))*sigma(u) = sigma(-u)*sigma(u)    [symmetry; proved symbolically]
    """
    return Derivation(left, why="", **options).step(right, why)
