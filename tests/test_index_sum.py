"""Sums over an index (lossgrad.symbolic.IndexSum): renaming the index never changes a meaning."""

import pytest
import sympy as sp

from lossgrad.symbolic import (
    K,
    i,
    index_sum,
    j,
    k,
    softmax_component,
    tempered_softmax_component,
    unfold,
    z,
)

a, b = sp.IndexedBase("a", real=True), sp.IndexedBase("b", real=True)
m = sp.Symbol("m", integer=True, positive=True)


def same(left, right):
    return sp.simplify(unfold(left) - unfold(right)) == 0


def test_the_name_of_the_index_does_not_matter():
    assert same(index_sum(a[i], i), index_sum(a[k], k))
    assert same(index_sum(softmax_component(i), i), 1)
    assert same(index_sum(index_sum(a[i] * b[j], j), i), index_sum(a[k], k) * index_sum(b[k], k))


def test_a_renaming_that_would_capture_is_not_made():
    # The inner sum uses the outer index: sum_i a_i^2 sum_j b_j, not (sum a)^2 sum b.
    inner_uses_outer = index_sum(a[i] * index_sum(b[j] * a[i], j), i)
    assert same(inner_uses_outer, index_sum(a[k] ** 2, k) * index_sum(b[k], k))
    assert not same(inner_uses_outer, index_sum(a[k], k) ** 2 * index_sum(b[k], k))
    # A free index is not captured by the sum's own index.
    assert not same(index_sum(a[j] * b[i], j), index_sum(a[i] * b[i], i))
    assert not same(index_sum(a[m], m), index_sum(a[m], m) + a[k])


def test_a_kronecker_delta_inside_a_sum_keeps_one_term():
    delta = sp.KroneckerDelta
    assert same(index_sum(index_sum(a[i] * b[j] * delta(i, j), j), i), index_sum(a[k] * b[k], k))
    assert not same(
        index_sum(index_sum(a[i] * b[j] * delta(i, j), j), i),
        index_sum(a[k], k) * index_sum(b[k], k),
    )


def test_sums_print_as_written_with_parentheses_where_needed():
    squared = sp.latex(index_sum(a[i], i) ** 2)
    assert squared.startswith(r"\left(\sum_{i=1}^{K}") and squared.endswith(r"\right)^{2}")
    nested = sp.latex(index_sum(index_sum(a[i] * b[j], j), i))
    assert nested.startswith(r"\sum_{i=1}^{K} \sum_{j=1}^{K}")


def test_the_tempered_softmax_prints_its_argument_and_unfolds():
    T = sp.Symbol("T", positive=True)
    assert sp.latex(tempered_softmax_component(i, T)) == r"s_{i}(z/T)"
    assert same(index_sum(tempered_softmax_component(i, T), i), 1)
    zs = sp.symbols("z_1:4", real=True)
    explicit = unfold(tempered_softmax_component(2, T, *zs))
    assert sp.simplify(explicit - sp.exp(zs[1] / T) / sum(sp.exp(x / T) for x in zs)) == 0
    assert K in unfold(tempered_softmax_component(i, T)).free_symbols


def test_a_derivative_with_respect_to_z_k_is_refused_not_miscomputed():
    # The definition of s_i sums over k; sympy would differentiate that sum with respect to the
    # outer z_k as if the two k were the same index.
    with pytest.raises(ValueError, match="summation index"):
        unfold(sp.Derivative(softmax_component(i), z[k]))
