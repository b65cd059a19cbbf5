"""Accessibility of the built site: axe-core over every page, in the light and the dark theme.

axe-core (bundled by the axe-playwright-python package) runs in Debian's Chromium, driven by
Playwright as in test_site.py. A page passes with no violation of impact "serious" or "critical"
(WCAG 2 A and AA rules and axe's best practices); "moderate" and "minor" findings are not failures.
The dark-theme pass also checks that every image has alt text and stays legible: an image with
transparent pixels must sit on a light background.

Needs the book built first (`make test` builds it before running pytest; set LOSSGRAD_SITE to
check another build) and Chromium (`apt-get install chromium fonts-dejavu-core`). Without them the
tests skip with the reason, except under CI=true, where they must run.
"""

from pathlib import Path

import pytest
from support import SITE, TOC_PAGES, require

FAILING_IMPACTS = ("serious", "critical")

# The theme reads its mode from localStorage before the first paint (pydata-sphinx-theme), as it
# does for a reader who chose it; this script, run before the page's own, sets it from the URL.
SET_THEME = """
const theme = new URLSearchParams(location.search).get("a11y-theme");
if (theme) { localStorage.setItem("mode", theme); localStorage.setItem("theme", theme); }
"""

# Every image in the article: its alt text, the share of its pixels that are not opaque and the
# background the page paints behind it.
IMAGES = """async () => {
  const out = [];
  for (const img of document.querySelectorAll("main img")) {
    await img.decode().catch(() => {});
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    let seeThrough = 1;
    if (canvas.width && canvas.height) {
      const context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] < 255) count++;
      seeThrough = count / (data.length / 4);
    }
    out.push({src: img.getAttribute("src"), alt: img.getAttribute("alt"), seeThrough,
              background: getComputedStyle(img).backgroundColor});
  }
  return out;
}"""


def _is_redirect(page: Path) -> bool:
    return 'http-equiv="Refresh"' in page.read_text(encoding="utf-8")[:500]


def site_pages() -> list[str]:
    """Every HTML page of the built site, except Sphinx's assets and the root redirect."""
    return sorted(
        page.relative_to(SITE).as_posix()
        for page in SITE.rglob("*.html")
        if not any(part.startswith("_") for part in page.relative_to(SITE).parts)
        and not _is_redirect(page)
    )


def _relative_luminance(css_colour: str) -> float | None:
    """Luminance of an opaque `rgb(...)`/`rgba(...)` colour; None if it is (partly) transparent."""
    values = [float(v) for v in css_colour[css_colour.index("(") + 1 : -1].split(",")]
    if len(values) == 4 and values[3] < 1:
        return None

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(v) for v in values[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture(scope="module")
def browser_page(browser):
    """One browser and one page for every scan."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(SET_THEME)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        require(False, "axe-playwright-python is not installed; run the README's set-up")
    return Axe()


def load(page, url: str, theme: str) -> None:
    page.goto(f"{url}?a11y-theme={theme}", wait_until="load")
    # Sphinx adds MathJax only to pages with math; where it is present, wait for typesetting.
    if page.locator("script[src*='mathjax']").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    assert page.evaluate("document.documentElement.dataset.theme") == theme, url


def test_every_page_in_the_table_of_contents_is_scanned(site_url):
    missing = set(TOC_PAGES) - set(site_pages())
    assert not missing, f"pages of _toc.yml missing from {SITE}: {sorted(missing)}"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_or_critical_axe_violation_on_any_page(browser_page, axe, site_url, theme):
    failures = []
    for path in site_pages():
        load(browser_page, f"{site_url}/{path}", theme)
        for violation in axe.run(browser_page).response["violations"]:
            if violation["impact"] in FAILING_IMPACTS:
                where = "; ".join(" ".join(n["target"]) for n in violation["nodes"][:3])
                failures.append(
                    f"{path}: {violation['id']} ({violation['impact']}, "
                    f"{len(violation['nodes'])} elements: {where}): {violation['help']}"
                )
    assert not failures, f"{theme} theme:\n" + "\n".join(failures)


def test_every_image_has_alt_text_and_is_legible_in_the_dark_theme(browser_page, site_url):
    problems, seen = [], 0
    for path in site_pages():
        if "<img" not in SITE.joinpath(path).read_text(encoding="utf-8"):
            continue
        load(browser_page, f"{site_url}/{path}", "dark")
        for image in browser_page.evaluate(IMAGES):
            seen += 1
            if not (image["alt"] or "").strip():
                problems.append(f"{path}: {image['src']} has no alt text")
            if image["seeThrough"] > 0:
                # Seen through, the background must set off black text at 7:1 (WCAG AAA).
                luminance = _relative_luminance(image["background"])
                if luminance is None or (luminance + 0.05) / 0.05 < 7:
                    problems.append(
                        f"{path}: {image['src']} has transparent pixels over a dark or "
                        f"transparent background ({image['background']})"
                    )
    assert seen, "no images found: the figures of the chapters should be checked"
    assert not problems, "\n".join(problems)
