"""Step-checked derivations: a chain of equal expressions, each step verified.

A :class:`Derivation` starts from an expression and grows one :meth:`~Derivation.step` at a
time. Each new expression must equal the previous one. The engine, :mod:`lossgrad.checking`,
first tries to *prove* the equality with sympy (after replacing named functions by their
definitions, see :func:`lossgrad.symbolic.unfold`); when sympy cannot decide, it compares both
sides numerically at sample points of each symbol's domain, and the rendering says where. A step
that is false raises :class:`InvalidStepError` with the step, the difference and a
counterexample; a step the engine cannot evaluate raises :class:`UncheckableStepError`.

Every derivation in the book is written with this module (chapters 2 and 3 onwards).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import mpmath
import sympy as sp
from sympy.printing.latex import LatexPrinter

from lossgrad import ledger
from lossgrad.checking import (
    CheckSettings,
    CheckTimeoutError,
    Evidence,
    InvalidStepError,
    Refutation,
    UncheckableStepError,
    _deadline,
    check_step,
    describe_values,
)
from lossgrad.domains import DEFAULT_DOMAINS, Domain, merged_domains
from lossgrad.symbolic import AS_WRITTEN, SHORT_NAMES

__all__ = [
    "DEFAULT_DOMAINS",
    "CheckTimeoutError",
    "Derivation",
    "Domain",
    "InvalidStepError",
    "Step",
    "UncheckableStepError",
    "identity",
]


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
        ``"numeric"`` when it was checked at ``points`` points.
    points : int
        How many points the numeric check used (0 for a symbolic proof).
    instances : bool
        Whether a statement for a general :math:`K` was checked numerically at particular
        values of :math:`K` (listed in the verdict) and every value of its free indices.
    evidence : lossgrad.checking.Evidence or None
        For a numeric check, where it looked: points, domains, values of :math:`K`.
    """

    expr: sp.Expr
    why: str
    method: str
    points: int = 0
    instances: bool = False
    evidence: Evidence | None = None
    #: The derivation's conditions the proof relied on, said in the verdict.
    given: tuple = ()

    @property
    def verdict(self) -> str:
        """How the step was verified, in words (with the domains of a numeric check)."""
        given = f", given {', '.join(map(str, self.given))}" if self.given else ""
        if self.method == "symbolic":
            return "proved symbolically" + given
        if self.method == "numeric":
            if self.evidence is not None:
                return self.evidence.text() + given
            return f"checked numerically at {self.points} point{'s' * (self.points != 1)}" + given
        return ""

    @property
    def verdict_latex(self) -> str:
        """The verdict of a numeric check as LaTeX (math mode); empty for other steps."""
        if self.method != "numeric":
            return ""
        given = (
            r",\ \text{given } " + ", ".join(sp.latex(c) for c in self.given) if self.given else ""
        )
        if self.evidence is not None:
            return self.evidence.latex() + given
        return rf"\text{{{_escape_text(self.verdict)}}}"


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
    domains : mapping of sympy.Symbol to (low, high) or sympy.Interval, optional
        Where each symbol lives, for the numeric check: a pair is a closed interval, an
        ``Interval`` may be open at either end; a key may also be an ``IndexedBase`` (a domain
        for each of its entries). Merged over :data:`DEFAULT_DOMAINS`: ``u`` in [-30, 30],
        ``p`` and ``q`` in the open interval (0, 1) (p log p is undefined at 0; chapters
        substitute hard targets explicitly). Any other symbol lives in [-10, 10], cut to the
        side of 0 its sign assumption allows; integer symbols at the integers there.
    points : int, default 50
        Number of points of the numeric check (at least the special points: end points, 0,
        points near 0 and near both ends).
    digits : int, default 50
        Lowest working precision of the numeric check, in significant decimal digits; each
        point is evaluated again at 2, 3, ... times as many, until the difference settles.
    seed : int, default 0
        Seed for the numeric test points, so that every run checks the same points.
    conditions : iterable of sympy relations, optional
        Facts taken as true, such as ``K >= j`` for an index ``j`` that lies in 1..K
        (:data:`lossgrad.symbolic.INDEX_RANGES`); substituted into the conditions of a
        ``Piecewise``, which is how sympy asks about them.

    Raises
    ------
    ValueError
        If a domain includes values its symbol's assumptions exclude (a positive symbol on
        [-5, 5]), or an option is out of range.

    Notes
    -----
    Expressions may also be sympy matrices, compared entry by entry. A step is accepted when
    the difference of the two expressions, with every named function replaced by its definition
    and every derivative carried out, simplifies to 0 under one of a few equivalence-preserving
    sympy strategies; a difference that simplifies to a nonzero constant rejects it. Otherwise
    both sides are compared numerically (:mod:`lossgrad.checking`): any difference that stays
    put as the working precision grows rejects the step, however small, and so does a
    non-finite value on either side unless both are the same infinity. A statement for a general
    :math:`K` is checked at :math:`K = 1, 2, 3, 4`. A numeric check is evidence, not a proof; the
    rendering says which steps are which, and where each numeric check looked.

    Known limits, found by adversarial testing and not closed: a numeric check sees only its
    sample points, so a kink made by composing smooth-looking functions (the derivative of
    :math:`\\arcsin(\\sin u)`) can fall between them; sympy's simplification cancels removable
    singularities, so :math:`(u^2 - 1)/(u - 1) = u + 1` is proved although the left side is
    undefined at 1; and a general-:math:`K` statement false only for :math:`K \\ge 5` passes as
    "checked numerically for K = 1, 2, 3, 4", as its verdict says.

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
    lossgrad.checking.InvalidStepError: step 1 ("a wrong claim") does not follow...
    >>> x = sp.Symbol("x", positive=True)
    >>> identity(sp.atan(x) + sp.atan(1 / x), sp.pi / 2).steps[-1].verdict
    'checked numerically at 50 points, x ∈ (0, 10]'
    """

    def __init__(
        self,
        start: sp.Expr,
        *,
        lhs: str | None = None,
        show_start: bool = True,
        why: str = "definition",
        domains: Mapping[sp.Symbol, object] | None = None,
        points: int = 50,
        digits: int = 50,
        seed: int = 0,
        conditions: Iterable[sp.Basic] = (),
    ) -> None:
        if isinstance(points, bool) or not isinstance(points, int):
            raise TypeError(f"points must be a whole number, got {points!r}")
        if isinstance(digits, bool) or not isinstance(digits, int):
            raise TypeError(f"digits must be a whole number, got {digits!r}")
        if domains is not None and not isinstance(domains, Mapping):
            raise TypeError(
                f"domains must be a mapping such as {{u: (0, 1)}}, got {type(domains).__name__}"
            )
        if not isinstance(why, str):
            raise TypeError(f"why must be a string, got {why!r}")
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        if digits < 15:
            raise ValueError(f"digits must be at least 15, got {digits}")
        if not show_start and lhs is None:
            raise ValueError("show_start=False needs an lhs to stand for the start")
        self.lhs = lhs
        self.show_start = show_start
        self.domains = merged_domains(domains)
        self.points = points
        self.digits = digits
        self.seed = seed
        self.conditions = {condition: True for condition in _validated_conditions(conditions)}
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
            difference and a point where the two sides differ (for a matrix, the row and
            column of the entry).
        UncheckableStepError
            If the engine cannot evaluate the step (an undefined function, ``zoo``, a
            division by zero at a sample point, ...) or the check ran out of time.
        """
        if not isinstance(why, str):
            raise TypeError(f"why must be a string, got {why!r}")
        expr = sp.sympify(expr)
        before = self._steps[-1].expr
        index = len(self._steps)
        settings = CheckSettings(self.domains, self.points, self.digits, self.conditions)
        try:
            outcome = check_step(before, expr, settings, seed=self.seed + index)
        except (InvalidStepError, UncheckableStepError) as error:
            raise type(error)(f'step {index} ("{why}"): {error}') from None
        if outcome.refutation is not None:
            raise InvalidStepError(_refutation_text(index, why, before, expr, outcome.refutation))
        evidence = outcome.evidence
        points = evidence.points if evidence else 0
        general = bool(evidence and evidence.sizes)
        self._steps.append(
            Step(expr, why, outcome.method, points, general, evidence, outcome.given)
        )
        return self

    def summary(self) -> str:
        """One sentence saying how each step was verified."""
        return _summary(self._steps[1:])

    def latex(self) -> str:
        """The derivation as an ``aligned`` LaTeX block with a justification on each line."""
        return _latex(self._steps, self.lhs, self.show_start)

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
        return _plain(self._steps, self.lhs, self.show_start)


def _validated_conditions(conditions: object) -> list[sp.Basic]:
    """The conditions as sympy relations or logical combinations of them, or a clear error."""
    if isinstance(conditions, sp.Basic) or not isinstance(conditions, Iterable):
        raise TypeError(f"conditions must be an iterable of sympy relations, got {conditions!r}")
    valid = []
    for condition in conditions:
        condition = sp.sympify(condition)
        relation = isinstance(condition, sp.core.relational.Relational)
        logic = isinstance(condition, sp.logic.boolalg.BooleanFunction)
        if not (relation or logic):
            raise TypeError(
                f"a condition must be a sympy relation such as u > 0, got {condition!r}"
            )
        valid.append(condition)
    return valid


# Rendering ----------------------------------------------------------------------------------


def _summary(checked: list[Step]) -> str:
    symbolic = sum(s.method == "symbolic" for s in checked)
    numeric = [s for s in checked if s.method == "numeric"]
    parts = [f"{symbolic} proved symbolically"]
    if numeric:
        counts = {s.points for s in numeric}
        n = numeric[0].points
        each = f" at {n} point{'s' * (n != 1)} each" if len(counts) == 1 else ""
        sizes = {s.evidence.sizes for s in numeric if s.evidence is not None and s.evidence.sizes}
        general = [s for s in numeric if s.evidence is not None and s.evidence.sizes]
        if len(sizes) == 1:
            values = ", ".join(map(str, next(iter(sizes))))
            which = "" if len(general) == len(numeric) else f" ({len(general)} of them)"
            each += f" for K = {values}{which}"
        parts.append(f"{len(numeric)} checked numerically{each}")
    return f"{len(checked)} step{'s' if len(checked) != 1 else ''}: " + ", ".join(parts)


def _latex(steps: list[Step], lhs: str | None, show_start: bool) -> str:
    """An ``aligned`` block: the name or start on the first row, then one row per step."""
    first, *rest = steps
    if lhs is not None and show_start:
        rows = [(lhs, first), *(("", s) for s in rest)]
    elif rest:
        left = lhs if lhs is not None else _tex(first.expr)
        rows = [(left, rest[0]), *(("", s) for s in rest[1:])]
    else:
        rows = [(lhs if lhs is not None else _tex(first.expr), None)]
    body = [line for left, s in rows for line in _latex_rows(left, s)]
    return "\\begin{aligned}\n" + " \\\\\n".join(body) + "\n\\end{aligned}"


def _plain(steps: list[Step], lhs: str | None, show_start: bool) -> str:
    """The derivation as text, one step a line with its justification and verdict."""
    lines = []
    name = lhs if lhs is not None else _text(steps[0].expr)
    for i, s in enumerate(steps):
        if i == 0 and (lhs is None or not show_start):
            continue
        prefix = name if not lines else " " * len(name)
        reason = "; ".join(part for part in (s.why, s.verdict) if part)
        lines.append(f"{prefix} = {_text(s.expr)}" + (f"    [{reason}]" if reason else ""))
    return "\n".join(lines) if lines else name


def _latex_rows(left: str, step: Step | None) -> list[str]:
    """The LaTeX lines of one step: the equation with its justification, then any verdict."""
    if step is None:
        return [rf"{left} &"]
    right = "= " + _tex(step.expr)
    # Justifications in \small, as a textbook sets them, to leave room for the number.
    note = _why_tex(step.why)
    if step.method == "symbolic":
        # A check mark keeps the line short enough to leave room for the equation number.
        note += r"\ \checkmark"
    rows = [rf"{left} &{right} && {{\small {note}}}" if note else rf"{left} &{right}"]
    if step.method == "numeric":
        # Spelled out, because it is weaker than a proof; on a row of its own, under the
        # expression, so that the line stays narrow.
        rows.append(rf" & \quad {{\small {step.verdict_latex}}}")
    elif step.given:
        given = ", ".join(sp.latex(c) for c in step.given)
        rows.append(rf" & \quad {{\small \text{{given }} {given}}}")
    return rows


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


#: Characters that are special in LaTeX, written as math-mode commands that LaTeX and MathJax
#: both understand (MathJax shows backslash commands inside \text{} literally).
_SPECIAL = {
    "\\": r"\backslash",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "^": r"\hat{}",
    "~": r"\sim",
}


def _escape_text(text: str) -> str:
    """Plain text for \\text{}: each special character closes the text and is set in math."""
    out = []
    for char in text:
        out.append(f"}}{_SPECIAL[char]}\\text{{" if char in _SPECIAL else char)
    return "".join(out)


def _why_tex(why: str) -> str:
    """A justification as LaTeX: plain text, with math between dollar signs.

    Examples
    --------
    >>> print(_why_tex(r"50% of $\\sigma$ & z_3"))
    \\text{50}\\%\\text{ of }\\sigma\\text{ }\\&\\text{ z}\\_\\text{3}
    """
    pieces = why.split("$")
    return "".join(
        piece if i % 2 else rf"\text{{{_escape_text(piece)}}}".replace(r"\text{}", "")
        for i, piece in enumerate(pieces)
        if piece
    )


def _text(expr: sp.Expr) -> str:
    return sp.sstr(expr, order="rev-lex")


def _refutation_text(index: int, why: str, before: sp.Expr, after: sp.Expr, r: Refutation) -> str:
    """The message of an :class:`InvalidStepError`: the step, the difference, where it fails."""
    entry = f" (row {r.entry[0]}, column {r.entry[1]})" if r.entry else ""
    lines = [
        f'step {index} ("{why}") does not follow from the line before it.',
        f"  before:      {_text(before)}",
        f"  claimed:     {_text(after)}",
        f"  difference:  {_text(r.difference)}{entry}",
    ]
    if r.constant:
        value = _constant_text(r.difference)
        lines.append(f"  the difference is a nonzero constant ({value}): false everywhere")
        return "\n".join(lines)
    case = ", ".join(f"{name} = {value}" for name, value in r.case)
    point = ", ".join(f"{name} = {value!r}" for name, value in r.point) or "(no variables)"
    left, right = describe_values(r.values, r.digits)
    lines.append(
        f"  counterexample: {case + '; ' if case else ''}{point}: "
        f"before = {left}, claimed = {right}{_gap(*r.values, r.digits)}"
    )
    return "\n".join(lines)


def _constant_text(difference: sp.Expr) -> str:
    """A nonzero constant in 15 digits, or its order of magnitude if it is beyond printing."""
    try:
        with _deadline(5.0):
            value = mpmath.mpmathify(sp.N(difference, 20))
            if isinstance(value, mpmath.mpf) and value != 0 and abs(mpmath.mag(value)) > 10_000:
                return f"about {'-' if value < 0 else ''}2^{int(mpmath.mag(value))}"
            return mpmath.nstr(value, 15)
    except BaseException as error:  # the time budget, or a value mpmath cannot hold
        if isinstance(error, KeyboardInterrupt):
            raise
        return "too large or small to print"


def _gap(left: object, right: object, digits: int) -> str:
    """The difference of two finite values, for a reader who cannot spot it in long numbers."""
    if not (mpmath.isfinite(left) and mpmath.isfinite(right)):
        return ""
    with mpmath.workdps(digits):
        return f" (difference {mpmath.nstr(left - right, 6)})"


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
