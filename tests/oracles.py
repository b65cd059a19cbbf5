"""Measuring helpers shared by the tests. They depend only on mpmath, not on lossgrad."""

import math

import mpmath


def ulps(computed: float, exact: mpmath.mpf) -> float:
    """Error in units in the last place of the exact value, in float64."""
    exact_f = float(exact)
    if exact_f == 0.0:
        return 0.0 if computed == 0.0 else math.inf
    return float(abs(mpmath.mpf(computed) - exact) / math.ulp(exact_f))
