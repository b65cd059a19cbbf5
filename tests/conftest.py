"""Shared test set-up: mpmath's precision per test, the hypothesis profile, and the built site
served on localhost with one headless Chromium for the browser checks."""

import mpmath
import pytest
from hypothesis import settings
from support import CHROMIUM, CHROMIUM_ARGS, SITE, require, require_site, serve

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


@pytest.fixture(scope="session")
def site_url():
    """The built site (``tests/support.SITE``) on a local port, for the browser checks."""
    require_site()
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    require(CHROMIUM, "Chromium is missing: apt-get install chromium fonts-dejavu-core")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed; run the README's set-up")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
