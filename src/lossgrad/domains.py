"""Where a derivation's symbols live, and the points at which a step is checked there.

A :class:`Domain` is an interval (closed, open or half-open) or the integers in one. Each
symbol of a step gets the domain its derivation gives it, or :data:`DEFAULT_DOMAINS`, or one
that fits its sign and integer assumptions (:func:`default_domain`); a domain that includes
values its symbol's assumptions exclude is an error (:func:`validated_domains`).
:func:`sample_points` draws the points of the numeric check of :mod:`lossgrad.checking`: the end
points, 0 and points near 0, points near both ends, then random points.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from lossgrad.symbolic import p, q, u

__all__ = [
    "DEFAULT_DOMAINS",
    "Domain",
    "default_domain",
    "merged_domains",
    "sample_points",
    "validated_domains",
]


def _number(value: object) -> sp.Expr:
    number = sp.sympify(value)
    if not (number.is_real and number.is_finite and number.is_number):
        raise ValueError(f"a domain needs finite real end points, got {value!r}")
    return number


@dataclass(frozen=True)
class Domain:
    """An interval of real numbers where a symbol is sampled, or the integers in it.

    Parameters
    ----------
    low, high : sympy number
        The end points, finite, ``low < high``.
    left_open, right_open : bool, default False
        Whether an end point is left out.
    integer : bool, default False
        Whether only the integers of the interval are meant (set for integer symbols).

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.domains import Domain
    >>> print(Domain.of((-30, 30)), Domain.of(sp.Interval.open(0, 1)), Domain.of((0.5, 2)))
    [-30, 30] (0, 1) [0.5, 2]
    >>> Domain.of(sp.Interval.Lopen(0, 10)).latex()
    '(0, 10]'
    """

    low: sp.Expr
    high: sp.Expr
    left_open: bool = False
    right_open: bool = False
    integer: bool = False

    @classmethod
    def of(cls, spec: object) -> Domain:
        """A domain from a closed ``(low, high)`` pair, a sympy ``Interval`` or a domain."""
        if isinstance(spec, Domain):
            return spec
        if isinstance(spec, sp.Interval):
            ends = (spec.start, spec.end, bool(spec.left_open), bool(spec.right_open))
        elif isinstance(spec, tuple | list) and len(spec) == 2:
            ends = (spec[0], spec[1], False, False)
        else:
            raise TypeError(
                f"a domain is a (low, high) pair or a sympy Interval, got {spec!r}"
            )
        low, high = _number(ends[0]), _number(ends[1])
        if not low < high:
            raise ValueError(f"a domain needs low < high, got {spec!r}")
        return cls(low, high, ends[2], ends[3])

    @cached_property
    def ends(self) -> tuple[float, float]:
        """The lowest and highest binary64 numbers in the domain (the sample points' range)."""
        low, high = _inward(self.low, up=True), _inward(self.high, up=False)
        # An open end that is itself a binary64 number is stepped over by one unit.
        if self.left_open and sp.Rational(low) == self.low:
            low = math.nextafter(low, math.inf)
        if self.right_open and sp.Rational(high) == self.high:
            high = math.nextafter(high, -math.inf)
        return low, high

    def contains(self, x: float) -> bool:
        """Whether the number ``x`` lies in the domain."""
        low, high = self.ends
        return low <= x <= high and (not self.integer or float(x).is_integer())

    def text(self) -> str:
        """The domain in words: ``[-30, 30]``, ``(0, 1)``, ``{1, …, 10}``."""
        if self.integer:
            first, last = self.integer_ends
            return f"{{{first}, …, {last}}}"
        left, right = "(" if self.left_open else "[", ")" if self.right_open else "]"
        return f"{left}{_number_text(self.low)}, {_number_text(self.high)}{right}"

    def latex(self) -> str:
        """The domain in LaTeX (math mode): ``[-30, 30]``, ``(0, 1)``, ``\\{1, \\dots, 10\\}``."""
        if self.integer:
            first, last = self.integer_ends
            return rf"\{{{first}, \dots, {last}\}}"
        left, right = "(" if self.left_open else "[", ")" if self.right_open else "]"
        return f"{left}{_number_latex(self.low)}, {_number_latex(self.high)}{right}"

    def __str__(self) -> str:
        return self.text()

    @property
    def integer_ends(self) -> tuple[int, int]:
        """The least and greatest integers in the domain."""
        low, high = self.ends
        return math.ceil(low), math.floor(high)


def _inward(x: sp.Expr, up: bool) -> float:
    """``x`` as a binary64 number, rounded into the domain if it is not one already."""
    f = float(x)
    exact = sp.Rational(f)
    if up and exact < x:
        f = math.nextafter(f, math.inf)
    if not up and exact > x:
        f = math.nextafter(f, -math.inf)
    return f


def _number_text(x: sp.Expr) -> str:
    if isinstance(x, sp.Float):
        f = float(x)
        return str(int(f)) if f.is_integer() else repr(f).replace("e-0", "e-")
    return sp.sstr(x)


def _number_latex(x: sp.Expr) -> str:
    if isinstance(x, sp.Float):
        text = _number_text(x)
        if "e" in text:
            mantissa, exponent = text.split("e")
            power = f"10^{{{int(exponent)}}}"
            return power if mantissa in ("1", "1.0") else rf"{mantissa} \cdot {power}"
        return text
    return sp.latex(x)


#: Where each of the book's symbols lives: the logit anywhere in [-30, 30], where float64
#: saturates; the target and the argument of logit strictly inside (0, 1), since p log p is
#: undefined at 0 (chapters substitute hard targets 0 and 1 explicitly).
DEFAULT_DOMAINS: dict[sp.Symbol, Domain] = {
    u: Domain.of((-30, 30)),
    p: Domain.of(sp.Interval.open(0, 1)),
    q: Domain.of(sp.Interval.open(0, 1)),
}


def _assumption_conflict(symbol: sp.Basic, domain: Domain) -> str | None:
    """The assumption of ``symbol`` that ``domain`` violates, if any."""
    low, high = domain.low, domain.high
    left_in, right_in = not domain.left_open, not domain.right_open
    tests = (
        ("positive", low < 0 or (low == 0 and left_in)),
        ("nonnegative", low < 0),
        ("negative", high > 0 or (high == 0 and right_in)),
        ("nonpositive", high > 0),
        ("nonzero", (low < 0 < high) or (low == 0 and left_in) or (high == 0 and right_in)),
    )
    for name, violated in tests:
        if getattr(symbol, f"is_{name}", None) and violated:
            return name
    return None


def validated_domains(domains: Mapping[sp.Basic, object]) -> dict[sp.Basic, Domain]:
    """Each domain as a :class:`Domain`, checked against its symbol's assumptions.

    Keys are sympy symbols or ``IndexedBase`` objects (a domain for every entry :math:`z_k`).

    Raises
    ------
    ValueError
        If a domain includes values its symbol's assumptions exclude, naming both.
    TypeError
        If a key is not a symbol or a domain is neither a pair nor an interval.

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.domains import validated_domains
    >>> x = sp.Symbol("x", positive=True)
    >>> validated_domains({x: (-5, 5)})
    Traceback (most recent call last):
    ...
    ValueError: the domain [-5, 5] of x includes values outside its assumption: x is positive
    """
    result = {}
    for key, spec in domains.items():
        if not isinstance(key, sp.Symbol | sp.IndexedBase):
            raise TypeError(f"domains are keyed by sympy symbols, got {key!r}")
        domain = Domain.of(spec)
        conflict = _assumption_conflict(key, domain)
        if conflict:
            raise ValueError(
                f"the domain {domain} of {key} includes values outside its assumption: "
                f"{key} is {conflict}"
            )
        result[key] = domain
    return result


def default_domain(symbol: sp.Symbol) -> Domain | None:
    """The domain of a symbol nobody gave one: [-10, 10], cut to the side its sign allows.

    Integer symbols are sampled at the integers of that interval. None for a real symbol that
    is nonzero but of either sign: no interval fits it.

    Examples
    --------
    >>> import sympy as sp
    >>> from lossgrad.domains import default_domain
    >>> print(default_domain(sp.Symbol("w", negative=True)))
    [-10, 0)
    >>> print(default_domain(sp.Symbol("a", real=True)))
    [-10, 10]
    """
    if symbol.is_positive:
        domain = Domain(sp.Integer(0), sp.Integer(10), left_open=True)
    elif symbol.is_nonnegative:
        domain = Domain(sp.Integer(0), sp.Integer(10))
    elif symbol.is_negative:
        domain = Domain(sp.Integer(-10), sp.Integer(0), right_open=True)
    elif symbol.is_nonpositive:
        domain = Domain(sp.Integer(-10), sp.Integer(0))
    elif symbol.is_nonzero and not symbol.is_integer:
        return None  # no interval holds both signs without 0; the caller must ask for one
    else:
        domain = Domain(sp.Integer(-10), sp.Integer(10))
    return domain




# Sample points ------------------------------------------------------------------------------


def _fits(symbol: sp.Symbol, n: int) -> bool:
    """Whether the integer ``n`` satisfies every assumption made about ``symbol``."""
    value = sp.Integer(n)
    for key in ("even", "odd", "prime", "composite", "zero", "nonzero", "positive", "negative"):
        said = getattr(symbol, f"is_{key}", None)
        if said is not None and getattr(value, f"is_{key}") != said:
            return False
    return True


class _Sampler:
    """Special and random values of one symbol in its domain."""

    def __init__(self, symbol: sp.Symbol, domain: Domain) -> None:
        self.symbol, self.domain = symbol, domain
        if domain.integer:
            first, last = domain.integer_ends
            self.first, self.last = first, last
            if last - first <= 100_000:
                self.allowed = [n for n in range(first, last + 1) if _fits(symbol, n)]
            else:
                # A long range: the integers that fit near its ends, and spread over all of it.
                near = [*range(first, first + 1000), *range(last - 999, last + 1)]
                self.allowed = None
                self.fitting_ends = [n for n in near if _fits(symbol, n)]
                if self.fitting_ends:
                    self.fitting_ends = [self.fitting_ends[0], self.fitting_ends[-1]]
            if not (self.allowed if self.allowed is not None else self.fitting_ends):
                raise ValueError(
                    f"no integer in the domain {domain.text()} of {symbol} fits its assumptions"
                )
        elif domain.ends[0] > domain.ends[1]:
            raise ValueError(
                f"the domain {domain.text()} of {symbol} contains no binary64 number to sample; "
                "give a wider domain"
            )

    def _fitting_near(self, n: int) -> int | None:
        """An integer of the domain near ``n`` that fits the symbol's assumptions."""
        for step in range(200):
            for m in (n + step, n - step):
                if self.first <= m <= self.last and _fits(self.symbol, m):
                    return m
        return None

    def specials(self) -> list[float | int]:
        """End points, 0 and 1 and points near 0, points near both ends: where features hide."""
        if self.domain.integer:
            wanted = [0, 1, -1, 2, -2]
            if self.allowed is not None:
                allowed = set(self.allowed)
                wanted = [self.allowed[0], self.allowed[-1], *wanted]
                return list(dict.fromkeys(n for n in wanted if n in allowed))
            width = self.last - self.first
            thousandths = (1, 10, 100, 250, 500, 750, 900, 990, 999)
            spread = [self.first + width * t // 1000 for t in thousandths]
            candidates = [*self.fitting_ends, *wanted, *spread]
            found = [self._fitting_near(n) if self.first <= n <= self.last else None
                     for n in candidates]
            return list(dict.fromkeys(n for n in found if n is not None))
        low, high = float(self.domain.low), float(self.domain.high)
        width = high - low
        near = [s * 10.0**-e for e in (3, 6, 9) for s in (1, -1)]
        tails = [end for t in (1e-3, 1e-6, 1e-9) for end in (low + width * t, high - width * t)]
        middle = float((self.domain.low + self.domain.high) / 2)
        # Closed ends are sampled exactly (Domain.ends rounds inwards if they are not binary64).
        opens = (self.domain.left_open, self.domain.right_open)
        ends = [x for x, open_ in zip(self.domain.ends, opens, strict=True) if not open_]
        wanted = [*ends, 0.0, 1.0, -1.0, *near, middle, *tails]
        inside = [x for x in wanted if self.domain.contains(x)]
        # An interval too narrow for any of these still has the middle of its binary64 range.
        return list(dict.fromkeys(inside)) or [sum(self.domain.ends) / 2]

    def draw(self, rng: random.Random, kind: int) -> float | int:
        """A random value: uniform (kind 0), over orders of magnitude (1), near an end (2)."""
        if self.domain.integer:
            if self.allowed is not None:
                return rng.choice(self.allowed)
            width = self.last - self.first
            for _ in range(100):
                if kind == 1:
                    offset = int(10 ** rng.uniform(0, math.log10(width)))
                    n = self.first + offset if rng.random() < 0.5 else self.last - offset
                else:
                    n = rng.randint(self.first, self.last)
                if self.first <= n <= self.last and _fits(self.symbol, n):
                    return n
            return self.fitting_ends[rng.random() < 0.5]
        low, high = self.domain.ends
        for _ in range(20):
            x = (rng.uniform(low, high), self._log_scale(rng), self._near_end(rng))[kind]
            if self.domain.contains(x):
                return x
        return (low + high) / 2

    def _log_scale(self, rng: random.Random) -> float:
        low, high = self.domain.ends
        if low < 0 < high:
            smallest, largest = 1e-12, max(-low, high)
            sign = rng.choice((-1.0, 1.0))
        else:
            smallest, largest = max(min(abs(low), abs(high)), 1e-12), max(abs(low), abs(high))
            sign = 1.0 if high > 0 else -1.0
        return sign * 10 ** rng.uniform(math.log10(smallest), math.log10(largest))

    def _near_end(self, rng: random.Random) -> float:
        low, high = self.domain.ends
        distance = (high - low) * 10 ** rng.uniform(-12, -1)
        return low + distance if rng.random() < 0.5 else high - distance


def sample_points(
    symbols: Sequence[sp.Symbol],
    domains: Mapping[sp.Symbol, Domain],
    count: int,
    seed: int,
    extra: Mapping[sp.Symbol, Sequence[float | int]] | None = None,
) -> list[dict[sp.Symbol, float | int]]:
    """The points where a step is checked: special values first, then random ones.

    Every special value of every symbol (:meth:`_Sampler.specials`) is visited, each symbol in
    its own seeded order so that special values meet in varied combinations; random points fill
    up to ``count``. Values are binary64 numbers (or integers), exact at every working
    precision, so that only the precision changes between evaluations.

    Examples
    --------
    >>> from lossgrad.domains import DEFAULT_DOMAINS, sample_points
    >>> from lossgrad.symbolic import p
    >>> points = sample_points([p], DEFAULT_DOMAINS, 20, seed=0)
    >>> [x[p] for x in points[:4]]
    [0.001, 1e-06, 1e-09, 0.5]
    >>> len(points), all(0 < x[p] < 1 for x in points)
    (20, True)
    """
    samplers = [_Sampler(s, domains[s]) for s in symbols]
    orders = []
    for n, sampler in enumerate(samplers):
        values = sampler.specials()
        more = [x for x in (extra or {}).get(sampler.symbol, ()) if sampler.domain.contains(x)]
        values = list(dict.fromkeys([*values, *more]))
        if n:
            values = random.Random(f"{seed}:{sampler.symbol}").sample(values, len(values))
        orders.append(values)
    specials = max((len(order) for order in orders), default=1)
    rng = random.Random(seed)
    points = []
    for t in range(max(count, specials) if samplers else 1):
        if t < specials:
            point = {
                s.symbol: order[t % len(order)]
                for s, order in zip(samplers, orders, strict=True)
            }
        else:
            point = {s.symbol: s.draw(rng, t % 3) for s in samplers}
        points.append(point)
    return points


def merged_domains(domains: Mapping[sp.Basic, object] | None) -> dict[sp.Basic, Domain]:
    """The default domains with ``domains`` over them, validated (:func:`validated_domains`).

    Examples
    --------
    >>> from lossgrad.domains import merged_domains
    >>> from lossgrad.symbolic import u
    >>> print(merged_domains({u: (100, 1000)})[u])
    [100, 1000]
    """
    return {**DEFAULT_DOMAINS, **validated_domains(domains or {})}
