"""Every internal link and anchor in the built site resolves, and equation anchors stay put.

Reads the HTML files that `make test` builds (`_build/html`; set LOSSGRAD_SITE to check another
build of the site). Without a built site the tests skip with the reason, except under CI=true,
where they must run.
"""

import json
import re
from functools import cache
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from support import ROOT, SITE, require_site

import lossgrad

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
    require_site()


@cache
def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def html_files(site: Path = SITE) -> list[Path]:
    """The site's pages (the theme's template fragments under _static are not pages)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


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


def broken_links(site: Path) -> dict[str, list[str]]:
    """Every page of a built site with its links that lead nowhere (tests/test_student_edition
    checks the student edition with it)."""
    files = html_files(site)
    assert len(files) > 10, files
    return {str(p.relative_to(site)): b for p in files if (b := _broken_links(p, site))}


def test_every_internal_link_and_anchor_resolves():
    _require_site()
    broken = broken_links(SITE)
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


def how_to_cite_text(site: Path) -> str:
    """The text of a built site's "How to cite" page, as a reader sees it."""
    raw = (site / "book" / "how-to-cite.html").read_text(encoding="utf-8")
    main = raw[raw.index("<main") : raw.index("</main>")]
    return unescape(re.sub(r"<[^>]+>", "", main))


def check_citation_page(site: Path) -> None:
    """The "How to cite" page of a built site (either edition) agrees with the configuration,
    the package and the chapters, and every address and anchor it gives exists in the site."""
    text = how_to_cite_text(site)
    listed = set(re.findall(r"(book/[\w-]+\.html)#(equation-[\w-]+)", text))
    assert len(listed) >= 8, listed
    for page, anchor in sorted(listed):
        assert (site / page).is_file(), page
        assert anchor in parse(site / page).ids, f"{page}#{anchor}"
    # Every address on the page is on the published site, and is a page of this build.
    addresses = [a.rstrip(".,;:)") for a in re.findall(r"https?://[^\s\"<>]+", text)]
    assert addresses
    for address in addresses:
        assert address.startswith(BASEURL), address
        page = address[len(BASEURL) :].split("#")[0]
        assert page == "" or (site / page).is_file(), address
    # The BibTeX: the book's title as the configuration gives it (in every edition), its
    # authors as publisher (a book needs one in BibTeX), the year, the version, the address.
    fields = dict(re.findall(r'^ +(\w+) += "(.*)",?$', text, re.M))
    book = text[text.index("@book{") : text.index("}\n", text.index("@book{"))]
    assert f'title     = "{CONFIG["title"]}"' in book, book
    assert f'publisher = "{CONFIG["author"]}"' in book, book
    assert f'year      = "{CONFIG["copyright"]}"' in book
    assert f'note      = "Version {lossgrad.__version__}"' in book
    assert f'url       = "{BASEURL}"' in book
    assert '"{The lossgrad authors}"' in book and CONFIG["author"] == "The lossgrad authors"
    assert fields["booktitle"] == CONFIG["title"], fields
    assert fields["publisher"] == CONFIG["author"], fields
    # The worked example names chapter 3 and equation (3.3): the numbers the built pages show.
    chapter = parse(site / "book" / "03-bce-gradient.html")
    assert chapter.eqnos["equation-eq-bce-gradient"].startswith("(3.3)")
    flat = " ".join(text.split())
    assert 'chapter   = "3"' in text and "eq.~(3.3)" in text
    assert f"in version {lossgrad.__version__} the gradient of binary cross-entropy is equation " \
        "(3.3) of chapter 3" in flat
    assert "eq. (3.3) of lossgrad, chapter 3" in flat
    title = "The gradient of binary cross-entropy with respect to the logit"
    assert f'title     = "{title}"' in text
    heading = (site / "book" / "03-bce-gradient.html").read_text(encoding="utf-8")
    assert re.search(r'<h1><span class="section-number">3\. </span>' + re.escape(title), heading)


def test_the_citation_page_agrees_with_the_configuration_and_the_book():
    _require_site()
    check_citation_page(SITE)
