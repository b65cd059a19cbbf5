"""Shared test set-up: mpmath's precision per test, and the hypothesis profile."""

import mpmath
import pytest
from hypothesis import settings

# Property tests draw the same examples every run (derandomize), keep no example database
# between runs, and have no deadline (mpmath references take their time).
settings.register_profile(
    "lossgrad", max_examples=150, deadline=None, derandomize=True, database=None
)
settings.load_profile("lossgrad")


@pytest.fixture(autouse=True)
def exact_arithmetic():
    """Every test computes its mpmath references at 60 digits, whatever ran before it.

    mpmath's precision is global state; set per test, it cannot leak from one module to another.
    """
    with mpmath.workdps(60):
        yield
