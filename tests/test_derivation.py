"""The derivation engine accepts true chains, rejects false steps, and says how it checked."""

import pytest
import sympy as sp

from lossgrad.derivation import Derivation, InvalidStepError, identity
from lossgrad.symbolic import bce_loss, p, sigmoid, softplus, u, unfold

x = sp.Symbol("x", positive=True)


def test_accepts_the_books_central_chain_symbolically():
    d = (
        Derivation(bce_loss(), lhs="L(u)")
        .step(p * softplus(-u) + (1 - p) * softplus(u), "log sigma = -softplus(-u)")
        .step(softplus(u) - p * u, "softplus(-u) = softplus(u) - u")
    )
    assert [s.method for s in d.steps] == ["start", "symbolic", "symbolic"]
    assert d.result == softplus(u) - p * u


def test_derivative_steps_are_carried_out_from_the_definition():
    d = Derivation(sp.Derivative(bce_loss(), u)).step(sigmoid(u) - p, "theorem")
    assert d.steps[-1].method == "symbolic"


@pytest.mark.parametrize(
    "claim",
    [
        sigmoid(u) + p,  # sign error
        sigmoid(-u) - p,  # wrong argument
        sigmoid(u) * (1 - sigmoid(u)) - p,  # confuses sigma' with sigma
        1 - p - sigmoid(u),  # the negative of the right answer
    ],
)
def test_rejects_a_false_step_with_step_difference_and_counterexample(claim):
    d = Derivation(sp.Derivative(bce_loss(), u), lhs="L'(u)")
    with pytest.raises(InvalidStepError) as excinfo:
        d.step(claim, "a plausible mistake")
    message = str(excinfo.value)
    assert 'step 1 ("a plausible mistake")' in message
    assert "difference:" in message
    assert "counterexample: p = " in message and "u = " in message
    assert len(d.steps) == 1, "a rejected step must not be appended"


def test_counterexample_really_is_one():
    with pytest.raises(InvalidStepError) as excinfo:
        identity(sigmoid(-u), sigmoid(u))
    line = next(s for s in str(excinfo.value).splitlines() if "counterexample" in s)
    point = float(line.split("u = ")[1].split(":")[0])
    value = unfold(sigmoid(-u) - sigmoid(u)).subs(u, point)
    assert abs(float(value)) > 1e-6


def test_a_wrong_step_after_right_ones_names_its_own_index():
    d = Derivation(softplus(-u)).step(softplus(u) - u, "reflection")
    with pytest.raises(InvalidStepError, match=r'step 2 \("oops"\)'):
        d.step(softplus(u) + u, "oops")


def test_falls_back_to_a_visible_numeric_check_where_sympy_cannot_decide():
    # atan(x) + atan(1/x) = pi/2 for x > 0: true, but beyond sympy's simplifier.
    d = identity(sp.atan(x) + sp.atan(1 / x), sp.pi / 2, "reflection", domains={x: (0.01, 100.0)})
    step = d.steps[-1]
    assert (step.method, step.points) == ("numeric", 50)
    assert step.verdict == "checked numerically at 50 points"
    assert "checked numerically at 50 points" in d.latex()
    assert d.summary() == "1 step: 0 proved symbolically, 1 checked numerically at 50 points each"


def test_numeric_fallback_still_rejects_what_is_false_on_the_domain():
    # True for x > 0, false for x < 0: the domain decides.
    with pytest.raises(InvalidStepError):
        identity(sp.atan(u) + sp.atan(1 / u), sp.pi / 2, domains={u: (-5.0, -0.1)})


def test_symbolic_steps_render_with_a_check_mark_and_justification():
    latex = Derivation(sigmoid(-u)).step(1 - sigmoid(u), "symmetry").latex()
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    assert "\\text{symmetry}\\ \\checkmark" in latex
    assert "1 - \\sigma{\\left(u \\right)}" in latex


def test_renders_for_jupyter_and_as_plain_text():
    d = Derivation(bce_loss(), lhs="L(u)").step(softplus(u) - p * u, "simplify")
    assert d._repr_latex_().startswith("$$")
    text = repr(d).splitlines()
    assert text[0].startswith("L(u) = ")
    assert text[1].strip() == "= softplus(u) - p*u    [simplify; proved symbolically]"


def test_rejects_a_useless_number_of_points():
    with pytest.raises(ValueError, match="points"):
        Derivation(u, points=0)


def test_hidden_start_is_still_what_the_first_step_is_checked_against():
    d = Derivation(bce_loss(), lhs="L(u)", show_start=False).step(softplus(u) - p * u, "simplify")
    assert d.latex().splitlines()[1].startswith("L(u) &= \\operatorname{softplus}")
    with pytest.raises(InvalidStepError):
        Derivation(bce_loss(), lhs="L(u)", show_start=False).step(softplus(u) + p * u, "wrong")
    with pytest.raises(ValueError, match="lhs"):
        Derivation(bce_loss(), show_start=False)


# Softmax: explicit K, matrices, and a general K with indexed symbols.
from lossgrad.symbolic import (  # noqa: E402
    INDEX_RANGES,
    i,
    j,
    logits,
    softmax,
    softmax_component,
    z,
)


def test_matrix_steps_are_checked_entry_by_entry():
    zs = logits(3)
    s = softmax(zs)
    jacobian = sp.Matrix(3, 3, lambda a, b: sp.Derivative(s[a], zs[b]))
    right = sp.diag(*s) - sp.Matrix(s) * sp.Matrix(s).T
    assert Derivation(jacobian).step(right, "Jacobian").steps[-1].method == "symbolic"
    wrong = right.copy()
    wrong[0, 1] = -wrong[0, 1]  # one sign flipped in one entry
    with pytest.raises(InvalidStepError, match="differ most"):
        Derivation(jacobian).step(wrong, "one wrong entry")
    with pytest.raises(InvalidStepError, match="shapes differ"):
        Derivation(jacobian).step(sp.Matrix(s), "a vector")


def test_general_k_proved_with_index_ranges():
    jacobian = sp.Derivative(softmax_component(i), z[j])
    right = softmax_component(i) * (sp.KroneckerDelta(i, j) - softmax_component(j))
    d = Derivation(jacobian, conditions=INDEX_RANGES).step(right, "Jacobian entry")
    assert d.steps[-1].method == "symbolic"


def test_general_k_without_a_proof_is_checked_at_small_k_and_labelled_so():
    jacobian = sp.Derivative(softmax_component(i), z[j])
    right = softmax_component(i) * (sp.KroneckerDelta(i, j) - softmax_component(j))
    step = Derivation(jacobian).step(right, "no index ranges given").steps[-1]
    assert step.verdict == "checked numerically at 50 points for K = 2, 3, 4"


def test_general_k_false_claim_gives_the_failing_instance():
    jacobian = sp.Derivative(softmax_component(i), z[j])
    with pytest.raises(InvalidStepError, match=r"counterexample: K = \d, i = \d, j = \d; z_1 = "):
        Derivation(jacobian, conditions=INDEX_RANGES).step(
            softmax_component(i) * (1 - softmax_component(j)), "forgot the delta"
        )
