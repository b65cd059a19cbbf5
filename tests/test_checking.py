"""The checking engine's parts: domains, sample points, the precision test, budgets, verdicts."""

import threading
import time

import mpmath
import pytest
import sympy as sp
from sympy.utilities.lambdify import implemented_function

from lossgrad.checking import (
    CheckSettings,
    CheckTimeoutError,
    UncheckableStepError,
    check_step,
    describe_values,
)
from lossgrad.derivation import identity
from lossgrad.domains import (
    DEFAULT_DOMAINS,
    Domain,
    default_domain,
    merged_domains,
    sample_points,
    validated_domains,
)
from lossgrad.symbolic import p, u, z

SETTINGS = CheckSettings(DEFAULT_DOMAINS)
x = sp.Symbol("x", positive=True)


@pytest.fixture
def numeric_only(monkeypatch):
    """No time for sympy: every step goes to the numeric check."""
    monkeypatch.setattr("lossgrad.checking.SYMBOLIC_SECONDS", 0)


# Domains ------------------------------------------------------------------------------------


def test_a_pair_is_a_closed_interval_and_an_interval_keeps_its_ends():
    assert Domain.of((100, 1000)).text() == "[100, 1000]"
    assert Domain.of(sp.Interval.open(0, 1)).text() == "(0, 1)"
    assert Domain.of(sp.Interval.Ropen(-1, sp.Rational(1, 3))).text() == "[-1, 1/3)"
    assert Domain.of(sp.Interval.Ropen(-1, sp.Rational(1, 3))).latex() == r"[-1, \frac{1}{3})"
    assert Domain.of((1e-9, 0.5)).text() == "[1e-9, 0.5]"
    assert Domain.of((1e-9, 2.5e-3)).latex() == r"[10^{-9}, 0.0025]"


@pytest.mark.parametrize(
    ("spec", "error"),
    [((1, 1), ValueError), ((2, 1), ValueError), ((0, sp.oo), ValueError),
     ((0, sp.I), ValueError), ([0, 1, 2], TypeError), ("0..1", TypeError)],
)
def test_a_domain_must_be_a_bounded_interval(spec, error):
    with pytest.raises(error):
        Domain.of(spec)


def test_domains_are_checked_against_each_assumption():
    w = sp.Symbol("w", negative=True)
    n = sp.Symbol("n", nonnegative=True)
    nonzero = sp.Symbol("y", nonzero=True)
    assert validated_domains({n: (0, 1)})[n].text() == "[0, 1]"
    assert validated_domains({w: sp.Interval.Ropen(-1, 0)})[w].text() == "[-1, 0)"
    for symbol, spec, assumption in [
        (w, (-1, 0), "negative"),
        (n, (-1, 1), "nonnegative"),
        (nonzero, (-1, 1), "nonzero"),
    ]:
        with pytest.raises(ValueError, match=f"{symbol} is {assumption}"):
            validated_domains({symbol: spec})
    with pytest.raises(TypeError, match="keyed by sympy symbols"):
        validated_domains({"u": (0, 1)})


def test_default_domains_follow_the_sign_and_integer_assumptions():
    def text(**assumptions):
        symbol = sp.Symbol("a", **assumptions)
        return CheckSettings({}).domain_of(symbol, {}).text()

    assert text(real=True) == "[-10, 10]"
    assert text(positive=True) == "(0, 10]"
    assert text(nonnegative=True) == "[0, 10]"
    assert text(negative=True) == "[-10, 0)"
    assert text(integer=True, positive=True) == "{1, …, 10}"
    assert text(integer=True, nonpositive=True) == "{-10, …, 0}"
    assert default_domain(sp.Symbol("a", nonzero=True)) is None
    with pytest.raises(UncheckableStepError, match="either sign"):
        CheckSettings({}).domain_of(sp.Symbol("a", nonzero=True), {})


def test_the_books_default_domains():
    assert {str(s): d.text() for s, d in merged_domains(None).items()} == {
        "u": "[-30, 30]",
        "p": "(0, 1)",
        "q": "(0, 1)",
    }


def test_an_indexed_base_gives_every_entry_its_domain():
    step = identity(sp.atan(z[1]) + sp.atan(1 / z[1]), sp.pi / 2, domains={z: (0.5, 2)}).steps[-1]
    assert step.verdict == "checked numerically at 50 points, z[1] ∈ [0.5, 2]"


# Sample points ------------------------------------------------------------------------------


def test_sample_points_visit_end_points_zero_and_both_tails():
    values = {x[u] for x in sample_points([u], DEFAULT_DOMAINS, 50, seed=0)}
    for wanted in (-30.0, 30.0, 0.0, 1e-3, -1e-3, 1e-6, -1e-6, 1e-9, -1e-9, -29.94, 29.94):
        assert wanted in values
    assert all(-30 <= x <= 30 for x in values)


def test_open_ends_are_never_sampled_but_approached():
    values = [x[p] for x in sample_points([p], DEFAULT_DOMAINS, 200, seed=1)]
    assert all(0 < x < 1 for x in values)
    assert min(values) <= 1e-9 and max(values) >= 1 - 1e-9


def test_every_symbol_visits_all_its_special_values_and_points_are_deterministic():
    v = sp.Symbol("v", real=True)
    domains = {u: DEFAULT_DOMAINS[u], v: Domain.of((2, 3))}
    points = sample_points([u, v], domains, 10, seed=4)
    assert len(points) == 17  # u has 17 special values: more than the 10 asked for
    assert {x[v] for x in points} >= {2.0, 3.0, 2.5}
    assert points == sample_points([u, v], domains, 10, seed=4)
    assert points != sample_points([u, v], domains, 10, seed=5)


def test_integer_symbols_are_sampled_at_integers_that_fit_their_assumptions():
    n = sp.Symbol("n", integer=True, even=True)
    domain = CheckSettings({}).domain_of(n, {})
    values = {x[n] for x in sample_points([n], {n: domain}, 40, seed=0)}
    assert values <= {-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10} and 0 in values and 10 in values


# The precision test -------------------------------------------------------------------------


def test_true_statements_with_heavy_cancellation_are_not_rejected():
    # Opaque to sympy, so that only the numeric check sees them.
    reflected = implemented_function("reflected", lambda v: mpmath.log(1 + mpmath.exp(v)) - v)
    one = implemented_function("one", lambda v: (mpmath.exp(v) + 1) - mpmath.exp(v))
    d = identity(reflected(u), sp.log(1 + sp.exp(-u)), domains={u: (-1000, 1000)})
    assert d.steps[-1].verdict == "checked numerically at 50 points, u ∈ [-1000, 1000]"
    assert identity(one(u), sp.Integer(1), domains={u: (0, 200)}).steps[-1].method == "numeric"


def test_a_difference_far_below_the_values_is_still_found():
    scaled = implemented_function("scaled", lambda v: mpmath.exp(v) * (1 + mpmath.mpf(10) ** -60))
    outcome = check_step(scaled(u), sp.exp(u), CheckSettings(merged_domains({u: (100, 101)})))
    assert outcome.refutation is not None and outcome.refutation.point == (("u", 100.0),)


@pytest.mark.usefixtures("numeric_only")
def test_functions_with_jumps_are_evaluated():
    for left, right in [
        (sp.Heaviside(u) + sp.Heaviside(-u), sp.Integer(1)),
        (sp.Max(u, 0) - sp.Min(u, 0), sp.Abs(u)),
        (sp.sign(u) * sp.Abs(u), u),
        (sp.Piecewise((u, u > 0), (0, True)), sp.Max(u, 0)),
        (sp.KroneckerDelta(sp.floor(u), 0), sp.Piecewise((1, (u >= 0) & (u < 1)), (0, True))),
    ]:
        outcome = check_step(left, right, SETTINGS)
        assert outcome.method == "numeric" and outcome.refutation is None


def test_a_tiny_value_against_zero_is_a_difference():
    # e^-1000 is computed to full relative precision: far below 1, but not rounding error.
    settings = CheckSettings(merged_domains({x: (1000, 2000)}))
    assert check_step(sp.exp(-x), sp.Integer(0), settings).refutation is not None


@pytest.mark.usefixtures("numeric_only")
def test_a_side_that_cancels_to_zero_is_evaluated_again_at_higher_precision():
    # 1 + x rounds to 1 at every working precision below 300 digits, and 1 + tanh(-500) to 0.
    settings = CheckSettings(merged_domains({x: (1e-300, 1e-3), u: (-1000, 1000)}))
    for left, right in [
        (sp.log(1 + x), 2 * sp.atanh(x / (2 + x))),
        (1 / (1 + sp.exp(-u)), (1 + sp.tanh(u / 2)) / 2),
    ]:
        outcome = check_step(left, right, settings)
        assert outcome.method == "numeric" and outcome.refutation is None


def test_values_are_printed_with_digits_enough_to_differ():
    a, b = mpmath.mpf(30), mpmath.mpf(30) + mpmath.mpf(10) ** -40
    with mpmath.workdps(60):
        shown = describe_values([a, mpmath.mpf(30) + mpmath.mpf(10) ** -40], 60)
    assert shown[0] != shown[1] and len(shown[1]) > 40
    assert describe_values([a, b], 60)[0] == "30.0"


# Time budgets -------------------------------------------------------------------------------


def test_off_the_main_thread_the_budget_is_checked_between_points(monkeypatch):
    monkeypatch.setattr("lossgrad.checking.NUMERIC_SECONDS", 0.3)
    slow = implemented_function("slow", lambda v: (time.sleep(0.05), v)[1])
    caught = []

    def run():
        try:
            identity(slow(u), u)
        except CheckTimeoutError as error:
            caught.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert caught and time.monotonic() - started < 10


# Verdicts -----------------------------------------------------------------------------------


def test_a_statement_without_variables_says_so():
    d = identity(sp.atan(2) + sp.atan(sp.Rational(1, 2)), sp.pi / 2)
    assert d.steps[-1].verdict in ("proved symbolically", "checked numerically (no variables)")
    assert identity(sp.oo, sp.oo + 1).steps[-1].verdict == "checked numerically (no variables)"
