"""Every internal link and anchor in the built site resolves, and equation anchors stay put.

Reads the HTML files that `make test` builds (`_build/html`; set LOSSGRAD_SITE to check another
build of the site). Without a built site the tests skip with the reason, except under CI=true,
where they must run.
"""

import json
import os
import re
from functools import cache
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

import lossgrad

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("LOSSGRAD_SITE", ROOT / "_build" / "html")).resolve()
IN_CI = os.environ.get("CI") == "true"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
BASEURL = CONFIG["html"]["baseurl"]

# Attributes that point at another file or an anchor, by element.
LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.eqnos: dict[str, str] = {}  # equation anchor -> its number, e.g. "(3.3)"
        self._in_eqno_of: str | None = None
        self._math_id: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("id", "name"):
            if attributes.get(name):
                self.ids.add(attributes[name])
        if tag == "div" and (attributes.get("id") or "").startswith("equation-"):
            self._math_id = attributes["id"]
        if tag == "span" and "eqno" in (attributes.get("class") or "").split():
            self._in_eqno_of = self._math_id
        target = attributes.get(LINK_ATTRIBUTES.get(tag, ""))
        if target is not None:
            self.links.append(target)

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_eqno_of = None

    def handle_data(self, data):
        if self._in_eqno_of and data.strip():
            self.eqnos.setdefault(self._in_eqno_of, data.strip())


def _require_site() -> None:
    if not (SITE / "book" / "index.html").exists():
        reason = f"the book is not built at {SITE}; run `make book`"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this check must run)")
        pytest.skip(reason)


@cache
def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def html_files() -> list[Path]:
    """The site's pages (the theme's template fragments under _static are not pages)."""
    return sorted(p for p in SITE.rglob("*.html") if "_static" not in p.relative_to(SITE).parts)


def _broken_links(path: Path, site: Path = SITE) -> list[str]:
    broken = []
    for link in parse(path).links:
        parts = urlsplit(link)
        if parts.scheme or link.startswith("//"):
            continue  # another host (or data:, mailto:): not this site's business
        target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if site not in target.parents:
            broken.append(f"{link} (outside the site)")
        elif not target.is_file():
            broken.append(f"{link} (no such file)")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{link} (no such anchor)")
    return broken


def test_every_internal_link_and_anchor_resolves():
    _require_site()
    files = html_files()
    assert len(files) > 10, files
    broken = {str(p.relative_to(SITE)): b for p in files if (b := _broken_links(p))}
    assert not broken, f"broken links: {broken}"


def test_the_link_check_finds_what_is_broken(tmp_path):
    (tmp_path / "a.html").write_text(
        '<p id="here"><a href="#here">ok</a> <a href="b.html#gone">x</a> <a href="c.html">y</a>'
        ' <img src="d.png"> <a href="https://example.org/#x">external</a></p>'
    )
    (tmp_path / "b.html").write_text('<span id="there"></span>')
    site = tmp_path.resolve()
    assert _broken_links(site / "a.html", site) == [
        "b.html#gone (no such anchor)", "c.html (no such file)", "d.png (no such file)"
    ]


# Equations: the labels every chapter glues or writes, and the anchors the citation page lists.
GLUED_LABEL = re.compile(r"```\{glue:math\}[^\n]*\n(?::[^\n]*\n)*?:label: (\S+)")
DOLLAR_LABEL = re.compile(r"\$\$\s*\((eq-[\w-]+)\)")


def equation_labels() -> dict[str, set[str]]:
    labels = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        found = set(GLUED_LABEL.findall(text)) | set(DOLLAR_LABEL.findall(text))
        if found:
            labels[path.stem] = found
    return labels


def test_every_labelled_equation_has_its_anchor():
    _require_site()
    labels = equation_labels()
    assert sum(map(len, labels.values())) > 40, labels
    # The anchor Sphinx gives a labelled equation is "equation-" followed by the label.
    missing = {}
    for stem, found in labels.items():
        page = parse(SITE / "book" / f"{stem}.html")
        absent = sorted(label for label in found if f"equation-{label}" not in page.ids)
        if absent:
            missing[stem] = absent
    assert not missing, f"labelled equations without their #equation- anchor: {missing}"


@pytest.fixture(scope="module")
def how_to_cite() -> str:
    _require_site()
    raw = (SITE / "book" / "how-to-cite.html").read_text(encoding="utf-8")
    main = raw[raw.index("<main") : raw.index("</main>")]
    return unescape(re.sub(r"<[^>]+>", "", main))


def test_the_anchors_on_the_citation_page_exist(how_to_cite):
    listed = set(re.findall(r"(book/[\w-]+\.html)#(equation-[\w-]+)", how_to_cite))
    assert len(listed) >= 8, listed
    for page, anchor in sorted(listed):
        assert (SITE / page).is_file(), page
        assert anchor in parse(SITE / page).ids, f"{page}#{anchor}"
    # Every address on the page is on the published site, and is a page of this build.
    addresses = [a.rstrip(".,;:)") for a in re.findall(r"https?://[^\s\"<>]+", how_to_cite)]
    assert addresses
    for address in addresses:
        assert address.startswith(BASEURL), address
        page = address[len(BASEURL) :].split("#")[0]
        assert page == "" or (SITE / page).is_file(), address


def test_the_citation_page_agrees_with_the_configuration_and_the_book(how_to_cite):
    assert f'title  = "{CONFIG["title"]}"' in how_to_cite
    assert f'year   = "{CONFIG["copyright"]}"' in how_to_cite
    assert f'note   = "Version {lossgrad.__version__}"' in how_to_cite
    assert f'url    = "{BASEURL}"' in how_to_cite
    assert '"{The lossgrad authors}"' in how_to_cite and CONFIG["author"] == "The lossgrad authors"
    # The worked example names chapter 3 and equation (3.3): the numbers the built pages show.
    chapter = parse(SITE / "book" / "03-bce-gradient.html")
    assert chapter.eqnos["equation-eq-bce-gradient"].startswith("(3.3)")
    assert 'chapter   = "3"' in how_to_cite and "eq.~(3.3)" in how_to_cite
    title = "The gradient of binary cross-entropy with respect to the logit"
    assert f'title     = "{title}"' in how_to_cite
    heading = (SITE / "book" / "03-bce-gradient.html").read_text(encoding="utf-8")
    assert re.search(r'<h1><span class="section-number">3\. </span>' + re.escape(title), heading)
