"""Shared test set-up."""

import mpmath
import pytest


@pytest.fixture(autouse=True)
def exact_arithmetic():
    """Every test computes its mpmath references at 60 digits, whatever ran before it.

    mpmath's precision is global state; set per test, it cannot leak from one module to another.
    """
    with mpmath.workdps(60):
        yield
