"""Checking one step of a derivation: a symbolic proof, or a numeric check that says where.

:class:`lossgrad.derivation.Derivation` hands each new line to :func:`check_step`, which
returns a structured :class:`Outcome`; the derivation turns it into words and LaTeX. A step is
checked in two stages.

1. **Symbolic.** Both sides are unfolded (named functions replaced by their definitions,
   derivatives carried out) and their difference is given to a few equivalence-preserving sympy
   strategies. A difference reduced to 0 is a proof; a difference reduced to a nonzero constant
   refutes the step everywhere. Simplification that runs past :data:`SYMBOLIC_SECONDS` stops
   and the step goes on to the second stage.
2. **Numeric.** Both sides are evaluated with mpmath at sample points of each symbol's
   :class:`Domain`: its end points, 0 and points near 0, points near both ends, then random
   points (uniform, spread over orders of magnitude, and close to the ends). At each point the
   difference is computed at several working precisions; a difference that stays the same as the
   precision grows is real, however small, and rejects the step, while rounding error shrinks
   with the precision. A statement about a general number of classes :math:`K` (indexed symbols,
   sums to ``K``) is checked at :math:`K = 1, 2, 3, 4` and every value of its free indices.

Input the engine cannot evaluate raises :class:`UncheckableStepError`, a false step is reported
as a :class:`Refutation`, and the whole numeric check has a time budget,
:data:`NUMERIC_SECONDS`.

The engine behind every derivation of the book (chapter 1 explains how to read its verdicts).
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import mpmath
import sympy as sp
from sympy.core.function import AppliedUndef

from lossgrad.domains import DEFAULT_DOMAINS, Domain, default_domain, sample_points
from lossgrad.symbolic import INDEX_RANGES, K, unfold

__all__ = [
    "DEFAULT_DOMAINS",
    "NUMERIC_SECONDS",
    "SIZES",
    "SYMBOLIC_SECONDS",
    "UNFOLD_SECONDS",
    "CheckSettings",
    "CheckTimeoutError",
    "Evidence",
    "InvalidStepError",
    "NotAnExpressionError",
    "Outcome",
    "Refutation",
    "UncheckableStepError",
    "check_step",
    "describe_values",
]

#: Time budget of the symbolic stage of one step, in seconds; past it, the step is checked
#: numerically instead. Every symbolic proof in the book takes well under a second.
SYMBOLIC_SECONDS = 20.0
#: Time budget of the numeric stage of one step, in seconds; past it, the step is uncheckable.
NUMERIC_SECONDS = 60.0
#: Time budget for writing out a step (unfolding definitions, derivatives and sums), in seconds.
UNFOLD_SECONDS = 60.0
#: The numbers of classes at which a statement for a general :math:`K` is checked.
SIZES = (1, 2, 3, 4)
#: Two differences agree, and so are taken for a real one, when they match to this fraction.
_AGREEMENT = mpmath.mpf(10) ** -3
#: Rounding error at d digits is taken to be at most 10**(_SLACK - d) times the size of the
#: values: a few digits for the error of each operation to accumulate.
_SLACK = 5
#: ``exp`` refuses arguments above 2**_EXP_BITS: their result could not be held in memory.
_EXP_BITS = 4_096
#: The highest precision, in digits, at which a side that cancelled to 0 is evaluated again.
_MAX_DIGITS = 5000


class InvalidStepError(ValueError):
    """A derivation step that does not follow from the previous expression."""


class UncheckableStepError(ValueError):
    """A step the engine cannot check: input it cannot evaluate, or a point where it is
    undefined."""


class CheckTimeoutError(UncheckableStepError):
    """A numeric check that ran longer than :data:`NUMERIC_SECONDS`."""


# Time budget --------------------------------------------------------------------------------


class _Expired(BaseException):
    """The time budget ran out. A BaseException, so that no ``except Exception`` in sympy or
    mpmath can swallow it on its way out of the computation it interrupts."""


class _Budget:
    """A deadline, checked between pieces of work (the fallback where no alarm is available)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise _Expired


def _alarm_available() -> bool:
    # SIGALRM interrupts a computation only in the main thread (where Jupyter kernels and pytest
    # run code), and only when nobody else is using it.
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )


def _on_alarm(signum: int, frame: object) -> None:
    raise _Expired


@contextmanager
def _deadline(seconds: float) -> Iterator[_Budget]:
    """Run a block for at most ``seconds``: an alarm interrupts it, or it checks the budget."""
    budget = _Budget(seconds)
    if seconds <= 0 or not _alarm_available():
        yield budget
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield budget
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _simplified(expr: sp.Expr, seconds: float = 2.0) -> sp.Expr:
    """``sp.simplify(expr)`` if it finishes in time (it only makes a message easier to read)."""
    try:
        with _deadline(seconds):
            return sp.simplify(expr)
    except (_Expired, Exception):
        return expr


# Preparing a step ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One scalar equation to check: an entry of a matrix step, or the whole of a scalar one."""

    before: sp.Expr
    after: sp.Expr
    #: Row and column (from 1) of a matrix entry; None for a scalar step.
    entry: tuple[int, int] | None = None

    @property
    def difference(self) -> sp.Expr:
        return self.before - self.after


class NotAnExpressionError(UncheckableStepError, TypeError):
    """A side of a step that is not a value: a function (Lambda), a relation, a set, ..."""


#: Functions with kinks or jumps, whose derivatives sympy takes piece by piece.
_NOT_SMOOTH = (
    sp.Abs, sp.Max, sp.Min, sp.sign, sp.Heaviside, sp.Piecewise, sp.floor, sp.ceiling, sp.frac,
    sp.Mod, sp.arg, sp.atan2,
)
#: Functions whose mpmath translation is not sympy's function off the integers
#: (mpmath.bernoulli(1/2) is 1; sympy's bernoulli(1/2) is 0.7302...).
_MISTRANSLATED = (sp.bernoulli, sp.euler)


def _reject_unsupported(expr: object) -> None:
    if isinstance(expr, sp.Lambda):
        raise NotAnExpressionError(
            f"{expr} is a function (sympy Lambda), not a value; apply it to an argument"
        )
    if isinstance(expr, sp.NDimArray):
        raise UncheckableStepError("sympy Arrays are not supported; use a sympy Matrix")
    if not isinstance(expr, sp.Expr | sp.MatrixBase):
        raise UncheckableStepError(f"expected a sympy expression or Matrix, got {expr!r}")
    symbols = (x for x in expr.free_symbols if isinstance(x, sp.Symbol))
    bracketed = sorted(x.name for x in symbols if "[" in x.name)
    if bracketed:
        # Entries z[1] of an IndexedBase are checked as symbols named z[1]; a Symbol of that
        # name would silently become the same number.
        raise UncheckableStepError(
            f"symbol names with brackets ({', '.join(bracketed)}) are reserved for the entries "
            "of an IndexedBase; rename the symbol"
        )
    if expr.has(*_MISTRANSLATED):
        raise UncheckableStepError(
            "bernoulli and euler cannot be evaluated numerically here: mpmath's versions differ "
            "from sympy's off the integers"
        )
    if expr.has(sp.MatrixSymbol):
        raise UncheckableStepError(
            "a MatrixSymbol has no entries to compare; write the matrix out with sp.Matrix"
        )
    for derivative in expr.atoms(sp.Derivative):
        if unfold(derivative.expr).has(*_NOT_SMOOTH):
            # sympy differentiates each piece and ignores the break points, where the
            # derivative may not exist: d|u|/du at 0 would come out as sign(0) = 0.
            raise UncheckableStepError(
                f"the derivative {derivative} is of a function with kinks or jumps (Abs, Max, "
                "Min, sign, Heaviside, Piecewise, floor, ...); sympy ignores where the pieces "
                "meet, so the engine does not check it"
            )


def _rational_floats(expr: object) -> object:
    """``expr`` with every Float written as the exact rational it stands for.

    sympy computes with a Float at the Float's own precision (15 digits for a Python float), so
    ``(u + 1)*(u + 1e-17)`` expands with ``1.0*u`` and ``exp(u + 1e-300)`` becomes
    ``1.0*exp(u)``: a false step would simplify to exactly 0. The exact value keeps the term.
    """
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(_rational_floats)
    if not isinstance(expr, sp.Basic):
        return expr
    floats = expr.atoms(sp.Float)
    return expr.xreplace({f: sp.Rational(f) for f in floats}) if floats else expr


def _pairs(before: object, after: object) -> list[Pair]:
    """The scalar equations of a step, with named functions unfolded."""
    for expr in (before, after):
        _reject_unsupported(expr)
    left, right = unfold(_rational_floats(before)), unfold(_rational_floats(after))
    matrices = isinstance(left, sp.MatrixBase), isinstance(right, sp.MatrixBase)
    if not any(matrices):
        pairs = [Pair(left, right)]
    elif not all(matrices) or left.shape != right.shape:
        shapes = [getattr(e, "shape", "a scalar") for e in (left, right)]
        raise InvalidStepError(f"shapes differ, {shapes[0]} then {shapes[1]}")
    else:
        columns = left.shape[1]
        pairs = [
            Pair(a, b, (n // columns + 1, n % columns + 1))
            for n, (a, b) in enumerate(zip(left, right, strict=True))
        ]
    for pair in pairs:
        if pair.before.has(sp.zoo) or pair.after.has(sp.zoo):
            raise UncheckableStepError(
                "an expression is complex infinity (zoo), as sympy writes log(0) or 1/0: "
                f"{pair.before} then {pair.after}"
            )
    return pairs


# Symbolic stage -----------------------------------------------------------------------------

_NON_FINITE = (sp.oo, -sp.oo, sp.nan, sp.zoo)


def _by_cases(e: sp.Expr) -> sp.Expr:
    """0 when every case of a piecewise difference (from Abs, Max, sign, ...) simplifies to 0.

    Cases are taken in order, each where the earlier ones do not hold; a case that is a single
    point is checked at that point, an empty one is skipped. Only for conditions on one real
    symbol, where sympy can turn a condition into a set.
    """
    if not e.has(sp.Abs, sp.Max, sp.Min, sp.sign, sp.Heaviside, sp.Piecewise):
        return e
    folded = sp.piecewise_fold(e.rewrite(sp.Piecewise))
    if not isinstance(folded, sp.Piecewise):
        return _reduce(folded)
    symbols = set().union(*(c.free_symbols for _, c in folded.args))
    if len(symbols) != 1 or not next(iter(symbols)).is_real:
        return e
    (symbol,) = symbols
    earlier: sp.Basic = sp.false
    for piece, condition in folded.args:
        where = sp.And(condition, sp.Not(earlier)).as_set().intersect(sp.Reals)
        earlier = sp.Or(earlier, condition)
        if where is sp.EmptySet:
            continue
        if isinstance(where, sp.FiniteSet):
            if any(_reduce(piece.subs(symbol, x)) != 0 for x in where):
                return e
        elif _reduce(piece) != 0:
            return e
    return sp.S.Zero


def _reduce(e: sp.Expr) -> sp.Expr:
    """0 if one of the strategies (other than case analysis) reduces ``e`` to 0, else ``e``."""
    for strategy in _STRATEGIES[:-1]:
        result = strategy(e)
        if result == 0:
            return result
    return e


#: Symbolic strategies, cheapest first. Each must be an equivalence transformation for real
#: symbols, so that a zero result is a proof; ``expand_log`` without ``force`` only splits a
#: logarithm where sympy can show its arguments are positive.
_STRATEGIES: tuple[Callable[[sp.Expr], sp.Expr], ...] = (
    sp.expand,
    sp.simplify,
    lambda e: sp.simplify(sp.expand_log(e)),
    lambda e: sp.simplify(sp.expand_log(sp.expand(e.rewrite(sp.exp)))),
    lambda e: sp.simplify(sp.together(sp.expand_log(sp.powsimp(e)))),
    _by_cases,
)


def _nonzero_constant(e: sp.Expr) -> bool:
    """Whether ``e`` is a number that is certainly not 0 (and finite)."""
    if not e.is_number or e.has(*_NON_FINITE):
        return False
    if e.is_zero is not None:
        return not e.is_zero and bool(e.is_finite)
    try:
        # strict: raises rather than return a value it cannot tell from 0.
        return e.evalf(50, strict=True) != 0
    except (sp.core.evalf.PrecisionExhausted, TypeError, ValueError):
        return False


def _symbolic_verdict(pair: Pair, conditions: Mapping[sp.Basic, bool], budget: _Budget) -> str:
    """``"zero"``, ``"constant"`` (a nonzero constant) or ``"open"`` for one pair; ``"given"``
    for a zero that needed the derivation's conditions."""
    if pair.before.has(*_NON_FINITE) or pair.after.has(*_NON_FINITE):
        return "open"  # sympy's arithmetic with oo and nan proves nothing about values
    for side in (pair.before, pair.after):
        if any(piece.args[-1].cond != sp.true for piece in side.atoms(sp.Piecewise)):
            # No otherwise branch: undefined (nan) where no condition holds, which sympy's
            # algebra ignores; the numeric check finds such a point.
            return "open"
    difference = pair.difference
    used = False
    if conditions:
        # A sum over a Kronecker delta evaluates to a Piecewise whose condition is that the
        # free index lies in range; the derivation's conditions settle it.
        done = difference.doit()
        difference = done.subs(conditions)
        used = difference != done and any(c not in INDEX_RANGES for c in conditions)
    for strategy in _STRATEGIES:
        budget.check()
        try:
            result = strategy(difference)
        except Exception:  # a strategy that fails proves nothing; the next one may
            continue
        if result == 0:
            return "given" if used else "zero"
        if _nonzero_constant(result):
            return "constant"
    return "open"


# Instances of a statement for a general K ---------------------------------------------------


@dataclass(frozen=True)
class _Cases:
    """The concrete instances of a step: all of it, or one per K and per value of its indices."""

    instances: list[tuple[tuple[tuple[sp.Symbol, int], ...], list[Pair]]]
    sizes: tuple[int, ...]
    indices: tuple[sp.Symbol, ...]
    #: The IndexedBase each instance symbol (z_1, z_2, ...) stands for.
    origins: dict[sp.Symbol, sp.IndexedBase]


def _entry_symbol(x: sp.Indexed, origins: dict[sp.Symbol, sp.IndexedBase]) -> sp.Symbol:
    """The symbol z_1 for z[1], W_{1,2} for W[1, 2], with the assumptions of its base."""
    if not all(i.is_Integer for i in x.indices):
        raise UncheckableStepError(f"{x} has an index the engine cannot set: {x.indices}")
    # Named by every index, so that W[1, 2] and W[1, 1] stay two different numbers.
    # Written z[1], as sympy prints the entry: never the same name as a Symbol("z_1").
    label = ", ".join(str(i) for i in x.indices)
    name = f"{x.base}[{label}]"
    kinds = ("integer", "real", "positive", "negative", "nonnegative", "nonpositive")
    symbol = sp.Symbol(name, **{kind: True for kind in kinds if getattr(x, f"is_{kind}")})
    origins[symbol] = x.base
    return symbol


def _concrete(e: sp.Expr, values: dict, origins: dict) -> sp.Expr:
    e = e.subs(values).doit() if values else e.doit()
    e = e.replace(lambda x: isinstance(x, sp.Indexed), lambda x: _entry_symbol(x, origins))
    if e.has(sp.Sum, sp.Indexed):
        raise UncheckableStepError(f"could not write out the sums of {e} for a given K")
    return e


def _assignments(
    indices: tuple[sp.Symbol, ...],
) -> Iterator[tuple[tuple[sp.Symbol, int], ...]]:
    """Every K of :data:`SIZES` with every value 1..K of each index."""
    for size in SIZES:
        for values in itertools.product(range(1, size + 1), repeat=len(indices)):
            yield tuple(zip((K, *indices), (size, *values), strict=True))


def _instances(pairs: list[Pair]) -> _Cases:
    """The pairs with their sums written out and indexed symbols made plain symbols.

    A statement about a general K (with K or free integer indices) gives one instance per K in
    :data:`SIZES` and per value 1..K of each index; any other gives one instance.
    """
    exprs = [e for x in pairs for e in (x.before, x.after)]
    free = set().union(*(e.free_symbols for e in exprs))
    origins: dict[sp.Symbol, sp.IndexedBase] = {}
    if K not in free and not any(e.has(sp.Indexed, sp.Sum) for e in exprs):
        return _Cases([((), pairs)], (), (), origins)
    # Only symbols that stand for a position (in an index of z[i]) run over 1..K; any other
    # integer symbol is sampled from its domain like any other symbol.
    positions = set()
    for e in exprs:
        for x in e.atoms(sp.Indexed):
            for index in x.indices:
                positions |= index.free_symbols
    indices = tuple(sorted((s for s in free & positions if s.is_integer and s != K), key=str))
    if len(indices) > 3:
        raise UncheckableStepError(
            f"too many free indices ({', '.join(map(str, indices))}): checking every value of "
            "each for K = 1..4 would take too long; give some of them a value"
        )
    general = K in free or bool(indices)
    instances = []
    for assignment in _assignments(indices) if general else [()]:
        values = dict(assignment)
        concrete = [
            Pair(_concrete(x.before, values, origins), _concrete(x.after, values, origins), x.entry)
            for x in pairs
        ]
        instances.append((assignment, concrete))
    return _Cases(instances, SIZES if general else (), indices, origins)


# Numeric evaluation -------------------------------------------------------------------------


class _TooLarge(ArithmeticError):
    """An argument of exp so large that the result would not fit in memory."""


def _guarded(name: str) -> Callable:
    function = getattr(mpmath, name)

    def evaluate(x: object) -> object:
        if mpmath.isfinite(x) and x != 0 and mpmath.mag(x) > _EXP_BITS:
            raise _TooLarge(f"{name} of a number near 2^{int(mpmath.mag(x))}")
        return function(x)

    return evaluate


#: mpmath functions that lambdify uses in place of its own, so that exp(exp(exp(exp(u)))) stops
#: with an error instead of filling the memory (the alarm cannot interrupt one huge integer
#: operation).
_OVERRIDES = {name: _guarded(name) for name in ("exp", "sinh", "cosh")}


def _guarded_pow(base: object, exponent: object) -> object:
    """``base ** exponent``, refused like ``exp`` when the result could not be held
    (10**(10**(10**x)) would otherwise fill the memory)."""
    base, exponent = mpmath.mpmathify(base), mpmath.mpmathify(exponent)
    if (
        mpmath.isfinite(base)
        and mpmath.isfinite(exponent)
        and base != 0
        and exponent != 0
        and abs(base) != 1
    ):
        with mpmath.workdps(15):
            size = abs(exponent) * abs(mpmath.log(abs(base), 2))
        if mpmath.mag(size) > _EXP_BITS:
            raise _TooLarge(f"a power near 2^(2^{int(mpmath.mag(size))})")
    return base**exponent


#: Powers with a variable exponent are evaluated through :func:`_guarded_pow`.
_POW = sp.Function("lossgrad_pow")
_OVERRIDES["lossgrad_pow"] = _guarded_pow


def _with_guarded_powers(expr: sp.Expr) -> sp.Expr:
    return expr.replace(
        lambda e: isinstance(e, sp.Pow) and not e.exp.is_number,
        lambda e: _POW(e.base, e.exp),
    )


@dataclass(frozen=True)
class _Agreement:
    """What one point says about a pair: ``"equal"``, ``"differ"`` or ``"unsettled"``."""

    kind: str
    values: tuple[object, object] = (None, None)
    digits: int = 0


def _precisions(digits: int) -> tuple[int, ...]:
    """The two working precisions at which every point is compared (the highest the engine
    uses): a difference is judged by how it changes between them."""
    return (6 * digits, 8 * digits)


def _rounding(precision: int, scale: object) -> object:
    """How large rounding error can be at ``precision`` digits, for values of size ``scale``."""
    return scale * mpmath.mpf(10) ** (_SLACK - precision)


def _decide(earlier: tuple[int, object, object], later: tuple[int, object, object]) -> str:
    """Whether two differences, at a lower and a higher precision, are rounding error or real.

    Each is (precision, difference, scale), the scale being the size of the larger value.

    * *equal*: the difference is exactly 0 at both precisions, or 0 at the higher one (more
      digits cannot absorb a real difference), or it is within the rounding error of the higher
      precision, or it shrank by at least half the digits added, as rounding error does;
    * *differ*: it is nonzero and the same at both precisions, to 1 part in 1000, however small
      it is next to the values (a stable difference is real);
    * otherwise *unsettled*: for example 0 at the lower precision but not at the higher, the
      mark of a tiny difference absorbed by rounding.
    """
    (p0, d0, _), (p1, d1, scale) = earlier, later
    if d1 == 0:
        return "equal"
    if d0 != 0 and abs(d0 - d1) <= _AGREEMENT * abs(d1):
        return "differ"
    if abs(d1) <= _rounding(p1, scale):
        return "equal"
    if d0 != 0 and abs(d1) <= abs(d0) * mpmath.mpf(10) ** (-(p1 - p0) / 2):
        return "equal"
    return "unsettled"


class _Compiled:
    """Both sides of a pair as mpmath functions of its symbols."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.symbols = sorted(pair.before.free_symbols | pair.after.free_symbols, key=str)
        try:
            self.functions = [
                sp.lambdify(
                    self.symbols,
                    _with_guarded_powers(side),
                    modules=[_OVERRIDES, "mpmath"],
                    dummify=True,
                )
                for side in (pair.before, pair.after)
            ]
        except Exception as error:
            raise UncheckableStepError(
                f"cannot evaluate {pair.before} or {pair.after} numerically: {error}"
            ) from None

    def values(self, point: Mapping[sp.Symbol, float | int], digits: int) -> tuple:
        """Both sides at ``point``, computed with ``digits`` significant digits."""
        with mpmath.workdps(digits):
            args = [_exact(point[s]) for s in self.symbols]
            return tuple(mpmath.mpmathify(f(*args)) for f in self.functions)

    def where(self, point: Mapping[sp.Symbol, float | int]) -> dict[sp.Symbol, float | int]:
        """The coordinates of ``point`` this pair depends on."""
        return {s: point[s] for s in self.symbols}

    def compare(self, point: Mapping[sp.Symbol, float | int], digits: int) -> _Agreement:
        """Compare the sides at the two highest precisions (deeper if a side cancelled to 0)."""
        agreement = self._settle_at(point, _precisions(digits))
        deeper = self._deeper(agreement, digits)
        return self._settle_at(point, deeper) if deeper else agreement

    def _settle_at(
        self, point: Mapping[sp.Symbol, float | int], precisions: Sequence[int]
    ) -> _Agreement:
        history: list[tuple[int, object, object]] = []
        for precision in precisions:
            a, b = self.values(point, precision)
            if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
                # Only the same infinity on both sides agrees; nan never does.
                same = a == b and isinstance(a, mpmath.mpf) and mpmath.isinf(a)
                return _Agreement("equal" if same else "differ", (a, b), precision)
            with mpmath.workdps(precision):
                # Relative to the values only: e^-1000 against 0 is a difference, not rounding.
                history.append((precision, a - b, max(abs(a), abs(b))))
        return _Agreement(_decide(*history[-2:]), (a, b), precision)

    def _deeper(self, agreement: _Agreement, digits: int) -> tuple[int, ...] | None:
        """Precisions at which to look again at a side that cancelled to exactly 0.

        1 + tanh(-500) and log(1 + 1e-300) are exactly 0 until the precision resolves the tiny
        value the other side shows; the literal 0 of a claim such as e^-x = 0 is not looked at
        again, and neither is a value too small to resolve within :data:`_MAX_DIGITS`.
        """
        if agreement.kind == "equal":
            return None
        values = agreement.values
        if not all(isinstance(v, mpmath.mpf) and mpmath.isfinite(v) for v in values):
            return None
        if agreement.kind == "differ" and 0 in values:
            zero = values.index(0)
            if (self.pair.before, self.pair.after)[zero].is_number:
                return None
        nonzero = [abs(v) for v in values if v != 0]
        if not nonzero:
            return None
        needed = digits + int(mpmath.ceil(-mpmath.log10(min(nonzero)))) + 10
        if needed <= agreement.digits or needed + 2 * digits > _MAX_DIGITS:
            return None
        return needed + digits, needed + 2 * digits


def _exact(x: object) -> object:
    """A sample value as an mpmath number: binary64 numbers and integers exactly, rationals
    (points of narrow domains) to the working precision."""
    if isinstance(x, sp.Rational):
        return mpmath.mpf(x.p) / x.q
    if isinstance(x, sp.Basic):
        return sp.Float(x, mpmath.mp.dps + 10)._to_mpmath(mpmath.mp.prec)
    return mpmath.mpf(x)


def _evaluation_problem(error: Exception, where: str) -> str:
    if isinstance(error, ZeroDivisionError):
        return (
            f"a division by zero at {where}: the step is undefined there; "
            "give a domain that leaves that point out"
        )
    if isinstance(error, _TooLarge):
        return f"a value too large to evaluate at {where} ({error}); give a smaller domain"
    return f"evaluating the step at {where} failed: {type(error).__name__}: {error}"


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Where a numeric check looked: how many points, in which domains, and for which K.

    Attributes
    ----------
    points : int
        The number of points at which both sides were compared (per instance, for a general K).
    domains : tuple of ((str, str), Domain)
        The symbols, as text and as LaTeX, that were sampled in each domain; symbols that share
        a domain are listed together.
    sizes : tuple of int
        The numbers of classes :math:`K` checked, for a statement about a general :math:`K`.
    indices : tuple of (str, str)
        The free indices, as text and as LaTeX, each set to every value in :math:`1, \\dots, K`.

    Examples
    --------
    >>> from lossgrad.checking import Evidence
    >>> from lossgrad.domains import DEFAULT_DOMAINS
    >>> from lossgrad.symbolic import u
    >>> evidence = Evidence(64, ((("u", "u"), DEFAULT_DOMAINS[u]),))
    >>> evidence.text()
    'checked numerically at 64 points, u ∈ [-30, 30]'
    >>> print(evidence.latex())
    \\text{checked numerically at 64 points},\\ u \\in [-30, 30]
    """

    points: int
    domains: tuple[tuple[tuple[str, str], Domain], ...]
    sizes: tuple[int, ...] = ()
    indices: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        """The verdict in words, for example ``checked numerically at 50 points, u ∈ [-30, 30]``."""
        return self._render(latex=False)

    def latex(self) -> str:
        """The verdict in LaTeX (math mode), with each domain in interval notation."""
        return self._render(latex=True)

    def _render(self, latex: bool) -> str:
        def words(text: str) -> str:
            return rf"\text{{{text}}}" if latex else text

        member, comma = (r" \in ", r",\ ") if latex else (" ∈ ", ", ")
        where = comma.join(
            f"{names[latex]}{member}{domain.latex() if latex else domain.text()}"
            for names, domain in self.domains
        )
        if self.sizes:
            cases = f"K = {', '.join(map(str, self.sizes))}"
            if self.indices:
                every = r"\{1, \dots, K\}" if latex else "{1, …, K}"
                indices = ", ".join(n[latex] for n in self.indices)
                cases += f"{words(' and ')}{indices}{member}{every}"
            each = words(f" at {self.points} point{'s' * (self.points != 1)} each")
            head = f"{words('checked numerically for ')}{cases}{each}"
        elif self.domains:
            head = words(f"checked numerically at {self.points} point{'s' * (self.points != 1)}")
        else:
            return words("checked numerically (no variables)")
        return f"{head}{comma}{where}" if where else head


@dataclass(frozen=True)
class Refutation:
    """Why a step is false: the entry, the difference, and a point where the sides differ.

    Attributes
    ----------
    difference : sympy.Expr
        The difference of the two sides (of the failing entry and instance), simplified if
        sympy manages in a moment.
    entry : (int, int) or None
        Row and column, from 1, of the matrix entry that differs.
    constant : bool
        Whether the difference is a nonzero constant, so that the sides differ everywhere.
    case : tuple of (str, int)
        The values of :math:`K` and of the free indices of the failing instance.
    point : tuple of (str, number)
        The counterexample: each symbol and its value.
    values : (mpmath number, mpmath number) or None
        The two sides at the counterexample, at ``digits`` significant digits.
    digits : int
        The working precision of ``values``.
    """

    difference: sp.Expr
    entry: tuple[int, int] | None = None
    constant: bool = False
    case: tuple[tuple[str, int], ...] = ()
    point: tuple[tuple[str, float | int], ...] = ()
    values: tuple[object, object] | None = None
    digits: int = 0


@dataclass(frozen=True)
class Outcome:
    """The result of checking a step.

    Attributes
    ----------
    method : {"symbolic", "numeric"}
        How the step was decided.
    evidence : Evidence or None
        For a numeric check that passed, where it looked.
    refutation : Refutation or None
        For a false step, why it is false.
    """

    method: str
    evidence: Evidence | None = None
    refutation: Refutation | None = None
    #: The derivation's conditions a symbolic proof relied on (other than index ranges).
    given: tuple[sp.Basic, ...] = ()


@dataclass(frozen=True)
class CheckSettings:
    """What checking needs of a derivation's options (:class:`~lossgrad.derivation.Derivation`)."""

    domains: Mapping[sp.Basic, Domain]
    points: int = 50
    digits: int = 50
    conditions: Mapping[sp.Basic, bool] = field(default_factory=dict)
    #: Filled by the check: nonempty when a symbolic proof used the conditions.
    used_conditions: set = field(default_factory=set, compare=False)

    def domain_of(self, symbol: sp.Symbol, origins: Mapping[sp.Symbol, sp.IndexedBase]) -> Domain:
        """The domain of a symbol: its own, its IndexedBase's, or the default for its kind."""
        if symbol.is_real is not True:
            # sympy takes a symbol without assumptions to be complex; sampling it on the real
            # line would check a complex statement at real points only (re(w) = w would pass).
            raise UncheckableStepError(
                f"{symbol} may be complex (sympy's default): declare it real (real=True, "
                "positive=True, integer=True, ...), since the engine samples real values only"
            )
        domain = self.domains.get(symbol) or self.domains.get(origins.get(symbol))
        domain = domain or default_domain(symbol)
        if domain is None:
            raise UncheckableStepError(
                f"{symbol} is nonzero but may have either sign: give it a domain on one side of 0"
            )
        return replace(domain, integer=True) if symbol.is_integer else domain


# The check ----------------------------------------------------------------------------------


def _symbols_of(cases: _Cases) -> list[sp.Symbol]:
    """Every symbol to sample, after checking that the engine can evaluate what they are in."""
    pairs = [x for _, instance in cases.instances for x in instance]
    exprs = [e for x in pairs for e in (x.before, x.after)]
    undefined = {f for e in exprs for f in e.atoms(AppliedUndef) if not hasattr(f, "_imp_")}
    if undefined:
        names = ", ".join(sorted(map(str, undefined)))
        raise UncheckableStepError(
            f"undefined function {names}: sympy knows nothing about it, so the step can only be "
            "proved symbolically; give it a definition or write it out"
        )
    symbols = set().union(*(e.free_symbols for e in exprs)) - set(cases.indices) - {K}
    noncommutative = sorted(str(s) for s in symbols if s.is_commutative is False)
    if noncommutative:
        raise UncheckableStepError(
            f"noncommutative symbols ({', '.join(noncommutative)}) cannot be sampled as numbers"
        )
    by_name: dict[str, list[sp.Symbol]] = {}
    for s in symbols:
        by_name.setdefault(str(s), []).append(s)
    for name, same in by_name.items():
        if len(same) > 1:
            kinds = " and ".join(_assumptions_text(s) for s in same)
            raise UncheckableStepError(
                f"two different symbols are both named {name!r} ({kinds}); "
                "use one Symbol, or give them different names"
            )
    return sorted(symbols, key=str)


def _assumptions_text(symbol: sp.Symbol) -> str:
    said = [k for k in ("integer", "real", "positive", "nonnegative", "negative", "nonpositive")
            if symbol.assumptions0.get(k)]
    return ", ".join(said) if said else "no assumptions"


_LATEX_SPECIALS = {"%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$"}


def _names(
    symbol: sp.Symbol, origins: Mapping[sp.Symbol, sp.IndexedBase] | None = None
) -> tuple[str, str]:
    base = (origins or {}).get(symbol)
    if base is not None:
        # z[1] as z_{1}, IndexedBase("z_hat") as \hat{z}_{1}: the base's own LaTeX, subscripted.
        label = str(symbol)[len(str(base)) + 1 : -1]
        base_latex = sp.latex(base)
        if "_" in base_latex or "^" in base_latex:
            base_latex = f"{{{base_latex}}}"
        return str(symbol), f"{base_latex}_{{{label}}}"
    latex = sp.latex(symbol)
    for special, escaped in _LATEX_SPECIALS.items():
        latex = latex.replace(special, escaped)
    return str(symbol), latex


def _evidence(cases: _Cases, domains: dict[sp.Symbol, Domain], points: int) -> Evidence:
    """Group the sampled symbols by domain, writing z_1, ..., z_K for the entries of z."""
    groups: dict[Domain, list[tuple[str, str]]] = {}
    seen = set()
    for symbol, domain in domains.items():
        base = cases.origins.get(symbol)
        if cases.sizes and base is not None:
            if base in seen:
                continue
            seen.add(base)
            names = (f"{base}_1, …, {base}_K", rf"{sp.latex(base)}_1, \dots, {sp.latex(base)}_K")
        else:
            names = _names(symbol, cases.origins)
        groups.setdefault(domain, []).append(names)
    grouped = tuple(
        ((", ".join(n[0] for n in names), ", ".join(n[1] for n in names)), domain)
        for domain, names in groups.items()
    )
    return Evidence(points, grouped, cases.sizes, tuple(_names(i) for i in cases.indices))


@dataclass(frozen=True)
class _Failure:
    """Where a numeric comparison found the two sides different."""

    pair: Pair
    assignment: tuple[tuple[sp.Symbol, int], ...]
    point: Mapping[sp.Symbol, float | int]
    agreement: _Agreement


def _refutation(failure: _Failure) -> Refutation:
    pair, assignment, point, agreement = (
        failure.pair, failure.assignment, failure.point, failure.agreement
    )
    used = pair.before.free_symbols | pair.after.free_symbols
    return Refutation(
        _simplified(pair.difference),
        pair.entry,
        case=tuple((str(s), v) for s, v in assignment),
        point=tuple((str(s), x) for s, x in point.items() if s in used),
        values=agreement.values,
        digits=agreement.digits,
    )


def _where(point: Mapping[sp.Symbol, float | int], assignment: tuple) -> str:
    """A point, with the K and indices of its instance, as text."""
    case = ", ".join(f"{s} = {v}" for s, v in assignment)
    values = ", ".join(f"{s} = {x!r}" for s, x in point.items()) or "(no variables)"
    return f"{case}; {values}" if case else values


def _scan(
    cases: _Cases, points: list[dict], digits: int, budget: _Budget
) -> tuple[_Failure | None, str | None]:
    """Compare every pair of every instance at every point; stop at the first difference."""
    problem = None
    for assignment, pairs in cases.instances:
        for pair in pairs:
            compiled = _Compiled(pair)
            for point in points:
                budget.check()
                where = _where(compiled.where(point), assignment)
                try:
                    agreement = compiled.compare(point, digits)
                except Exception as error:  # whatever mpmath or the expression raises
                    # Kept, and reported only if no point refutes the step outright.
                    problem = problem or _evaluation_problem(error, where)
                    continue
                if agreement.kind == "differ":
                    return _Failure(pair, assignment, point, agreement), problem
                if agreement.kind == "unsettled":
                    low, high = _precisions(digits)
                    problem = problem or (
                        f"could not decide at {high} digits whether the sides are equal at "
                        f"{where}: their difference does not settle between {low} and {high} "
                        "digits (it may be smaller than the working precision resolves)"
                    )
    return None, problem


def _condition_points(condition: sp.Basic, symbol: sp.Symbol) -> list[object]:
    """Points of the set where ``condition`` holds: its isolated points, the ends and middle of
    its intervals (a difference confined to one point or a narrow window is found there)."""
    try:
        where = condition.as_set()
    except Exception:  # a condition sympy cannot turn into a set gives no points
        return []
    parts = where.args if isinstance(where, sp.Union) else (where,)
    found: list[object] = []
    for part in parts:
        if isinstance(part, sp.FiniteSet):
            found.extend(part.args)
        elif isinstance(part, sp.Interval):
            ends = [e for e in (part.start, part.end) if e.is_finite]
            found.extend(ends)
            if len(ends) == 2:
                found.append((part.start + part.end) / 2)
    return found


def _as_sample(value: object) -> object:
    """A point as a binary64 number when it is one exactly, else as an exact sympy number."""
    value = sp.nsimplify(value) if isinstance(value, sp.Float) else sp.sympify(value)
    if not (value.is_real and value.is_finite):
        return None
    as_float = float(value)
    return as_float if sp.Rational(as_float) == value else value


def _feature_points(
    cases: _Cases, domains: Mapping[sp.Symbol, Domain]
) -> dict[sp.Symbol, list[object]]:
    """Extra sample points for each symbol: where a Piecewise condition (also of Abs, Max,
    sign, ...) changes, and the integers near the sample range when floor, ceiling or frac
    appear."""
    extra: dict[sp.Symbol, list[object]] = {}
    for _, pairs in cases.instances[:1] + cases.instances[-1:]:
        for pair in pairs:
            for side in (pair.before, pair.after):
                try:
                    pieces = side.rewrite(sp.Piecewise).atoms(sp.Piecewise)
                except Exception:
                    pieces = side.atoms(sp.Piecewise)
                for piecewise in pieces:
                    for _, condition in piecewise.args:
                        if len(condition.free_symbols) == 1:
                            (symbol,) = condition.free_symbols
                            extra.setdefault(symbol, []).extend(
                                _condition_points(condition, symbol)
                            )
                if side.has(sp.floor, sp.ceiling, sp.frac):
                    for symbol in side.free_symbols:
                        extra.setdefault(symbol, []).extend(_integers_in(domains.get(symbol)))
    found = {}
    for symbol, values in extra.items():
        samples = (_as_sample(v) for v in values[:200])
        found[symbol] = list(dict.fromkeys(v for v in samples if v is not None))
    return found


def _integers_in(domain: Domain | None) -> list[int]:
    """A few integers of a domain: the first and last ones and some between."""
    if domain is None:
        return []
    first, last = domain.integer_ends
    if first > last:
        return []
    if last - first <= 20:
        return list(range(first, last + 1))
    middle = [first + (last - first) * t // 10 for t in range(1, 10)]
    return [*range(first, first + 5), *middle, *range(last - 4, last + 1)]


def _check_numerically(pairs: list[Pair], settings: CheckSettings, seed: int) -> Outcome:
    try:
        with _deadline(UNFOLD_SECONDS):
            cases = _instances(pairs)
    except _Expired:
        raise UncheckableStepError(
            f"writing out the step for K = {', '.join(map(str, SIZES))} took longer than "
            f"{UNFOLD_SECONDS:g} s (lossgrad.checking.UNFOLD_SECONDS)"
        ) from None
    symbols = _symbols_of(cases)
    domains = {s: settings.domain_of(s, cases.origins) for s in symbols}
    try:
        extra = _feature_points(cases, domains)
        points = sample_points(symbols, domains, settings.points, seed, extra)
    except ValueError as error:
        raise UncheckableStepError(str(error)) from None
    # A point met twice (a narrow or small domain) is compared, and counted, once.
    points = list({tuple(sorted(map(str, x.items()))): x for x in points}.values())
    try:
        with _deadline(NUMERIC_SECONDS) as budget:
            failure, problem = _scan(cases, points, settings.digits, budget)
    except _Expired:
        raise CheckTimeoutError(
            f"the numeric check took longer than {NUMERIC_SECONDS:g} s "
            "(lossgrad.checking.NUMERIC_SECONDS); simplify the step or narrow its domains"
        ) from None
    if failure is not None:
        return Outcome("numeric", refutation=_refutation(failure))
    if problem is not None:
        raise UncheckableStepError(problem)
    return Outcome("numeric", evidence=_evidence(cases, domains, len(points)))


def _open_pairs(pairs: list[Pair], settings: CheckSettings) -> tuple[list[Pair], Pair | None]:
    """The pairs sympy could not prove, or the first that differs by a nonzero constant."""
    open_: list[Pair] = []
    done = 0
    try:
        with _deadline(SYMBOLIC_SECONDS) as budget:
            for pair in pairs:
                verdict = _symbolic_verdict(pair, settings.conditions, budget)
                if verdict == "constant":
                    return [], pair
                if verdict == "open":
                    open_.append(pair)
                if verdict == "given":
                    settings.used_conditions.add(True)
                done += 1
    except _Expired:
        # Out of time: whatever was not proved yet is checked numerically.
        return open_ + pairs[done:], None
    return open_, None


def _prepared(before: object, after: object) -> list[Pair]:
    """The pairs of a step, or a clear error if they cannot be written out in time."""
    try:
        with _deadline(UNFOLD_SECONDS):
            return _pairs(before, after)
    except (InvalidStepError, UncheckableStepError):
        raise
    except _Expired:
        raise UncheckableStepError(
            f"writing out the step (unfolding definitions, carrying out derivatives and sums) "
            f"took longer than {UNFOLD_SECONDS:g} s"
        ) from None
    except Exception as error:  # sympy's, or unfold's refusal of an ambiguous derivative
        raise UncheckableStepError(
            f"could not write out the step: {type(error).__name__}: {error}"
        ) from None


def check_step(before: object, after: object, settings: CheckSettings, seed: int = 0) -> Outcome:
    """Check that ``after`` equals ``before``: prove it, check it numerically, or refute it.

    Parameters
    ----------
    before, after : sympy.Expr or sympy.Matrix
        The two sides; matrices are compared entry by entry.
    settings : CheckSettings
        Domains, number of points, working precision and conditions.
    seed : int, default 0
        Seed of the random sample points, so that every run checks the same points.

    Returns
    -------
    Outcome
        Its ``refutation`` is set when the step is false.

    Raises
    ------
    InvalidStepError
        If the two sides do not have the same shape.
    UncheckableStepError
        If the engine cannot evaluate the step (an undefined function, ``zoo``, a division by
        zero at a sample point, a value too large to hold), or the check runs out of time
        (:class:`CheckTimeoutError`).

    Examples
    --------
    >>> from lossgrad.checking import DEFAULT_DOMAINS, CheckSettings, check_step
    >>> from lossgrad.symbolic import sigmoid, softplus, u
    >>> settings = CheckSettings(DEFAULT_DOMAINS)
    >>> check_step(sigmoid(-u), 1 - sigmoid(u), settings).method
    'symbolic'
    >>> check_step(softplus(u), u, settings).refutation.point
    (('u', -30.0),)
    """
    try:
        return _check_step(before, after, settings, seed)
    except (InvalidStepError, UncheckableStepError):
        raise
    except RecursionError:
        raise UncheckableStepError(
            "the engine could not check this step: RecursionError (an expression too deeply "
            "nested)"
        ) from None
    except Exception as error:  # never an internal error: say what happened instead
        raise UncheckableStepError(
            f"the engine could not check this step: {type(error).__name__}: {error}"
        ) from None


def _check_step(before: object, after: object, settings: CheckSettings, seed: int) -> Outcome:
    pairs = _prepared(before, after)
    open_, constant = _open_pairs(pairs, settings)
    if constant is not None:
        difference = _simplified(constant.difference)
        return Outcome("symbolic", refutation=Refutation(difference, constant.entry, constant=True))
    given = tuple(c for c in settings.conditions if c not in INDEX_RANGES)
    given = given if settings.used_conditions else ()
    if not open_:
        return Outcome("symbolic", given=given)
    outcome = _check_numerically(open_, settings, seed)
    return replace(outcome, given=given) if outcome.refutation is None else outcome


def describe_values(values: Iterable[object], digits: int) -> list[str]:
    """Numbers printed with just enough digits to tell them apart (at most ``digits``).

    Examples
    --------
    >>> import mpmath
    >>> from lossgrad.checking import describe_values
    >>> with mpmath.workdps(50):
    ...     describe_values([mpmath.mpf(2), 2 + mpmath.mpf(10) ** -20], 50)
    ['2.0', '2.00000000000000000001']
    """
    values = list(values)
    shown = [mpmath.nstr(v, 12) for v in values]
    n = 12
    while len(set(shown)) < len(shown) and n < digits:
        n = min(digits, n + 6)
        shown = [mpmath.nstr(v, n) for v in values]
    return shown
