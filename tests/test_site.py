"""The built site, as a reader's browser sees it: Debian's Chromium driven by Playwright.

Needs the book built first (`make test` builds it before running pytest) and Chromium
(`apt-get install chromium fonts-dejavu-core`). Without them the tests skip with the reason,
except under CI=true, where they must run.
"""

from urllib.parse import urlparse

import pytest
from support import TOC_PAGES

PAGES = TOC_PAGES


def open_page(browser, url):
    """Load a page; return it with its console errors and any request to another host."""
    # A common laptop width: the layout must fit displayed math at this size.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    # Sphinx adds MathJax only to pages with math; where it is present, wait for typesetting.
    if page.locator("script[src*='mathjax']").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    return page, errors, foreign


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_without_errors_and_typesets_its_math(browser, site_url, path):
    page, errors, foreign = open_page(browser, f"{site_url}/{path}")
    try:
        assert not foreign, f"requests to other hosts: {foreign}"
        assert not errors, f"console errors: {errors}"
        assert page.locator("mjx-merror").count() == 0, "MathJax could not typeset some TeX"
        assert "\\(" not in page.inner_text("main"), "raw TeX left on the page"
        if not path.endswith("bibliography.html"):
            assert page.locator("mjx-container").count() > 0, "no typeset math"
        too_wide = page.evaluate(
            """() => [...document.querySelectorAll('div.math')]
                .filter(d => { const m = d.querySelector('mjx-container');
                               return m && m.scrollWidth > m.clientWidth + 1; })
                .map(d => d.id || d.textContent.slice(0, 60))"""
        )
        assert not too_wide, f"displayed math wider than the page at 1280 px: {too_wide}"
    finally:
        page.close()


def test_equations_are_numbered_per_chapter_with_stable_anchors(browser, site_url):
    page, _, _ = open_page(browser, f"{site_url}/book/03-bce-gradient.html")
    try:
        numbers = page.locator("div.math span.eqno").all_inner_texts()
        assert numbers[:3] == ["(3.1)", "(3.2)", "(3.3)"], numbers
        anchor = page.locator("#equation-eq-bce-gradient span.eqno")
        assert anchor.inner_text().startswith("(3.3)")
        # The figure is labelled, captioned and has alt text.
        figure = page.locator("#fig-bce")
        assert "Fig. 3.1" in figure.inner_text()
        assert figure.locator("img").get_attribute("alt").startswith("Two panels")
        # Solutions stay hidden until clicked.
        assert not page.locator(".solution.dropdown .admonition-title ~ *").first.is_visible()
    finally:
        page.close()
