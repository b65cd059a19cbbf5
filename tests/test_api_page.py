"""The API reference page and the links between it and the chapters, in the built site.

Reads the HTML that `make test` builds (`_build/html`; set LOSSGRAD_SITE to check another build).
Without a built site the tests skip with the reason, except under CI=true, where they must run.
The examples in the docstrings run as doctests (pytest's --doctest-modules over src/).
"""

import importlib
import json
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from support import CHAPTERS, ROOT, SITE, require_site

import lossgrad
from lossgrad.sphinx_api_links import SECTION_ID, used_names


def _require_site() -> None:
    require_site("book/api.html")


class _Entries(HTMLParser):
    """Each documented object's id, and the links inside its entry (its <dl>)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: dict[str, list[str]] = {}
        self._depth = 0
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "dl":
            self._depth += 1
        identifier = attributes.get("id") or ""
        if tag == "dt" and self._depth == 1 and identifier.startswith("lossgrad."):
            self._current = identifier
            self.links[self._current] = []
        if tag == "a" and self._current and attributes.get("href"):
            self.links[self._current].append(attributes["href"])

    def handle_endtag(self, tag):
        if tag == "dl":
            self._depth -= 1
            if self._depth == 0:
                self._current = None


class _Text(HTMLParser):
    """The text of a page, without its scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _api_entries() -> dict[str, list[str]]:
    parser = _Entries()
    parser.feed((SITE / "book" / "api.html").read_text(encoding="utf-8"))
    return parser.links


def test_the_api_page_documents_every_public_name_and_links_it_to_its_chapter():
    _require_site()
    entries = _api_entries()
    chapter_link = re.compile(r"^\d\d-[\w-]+\.html#ch-[\w-]+$")
    for name in lossgrad.__all__:
        assert f"lossgrad.{name}" in entries, f"lossgrad.{name} is missing from the API page"
        chapters = [href for href in entries[f"lossgrad.{name}"] if chapter_link.match(href)]
        assert chapters, f"lossgrad.{name}'s entry links to no chapter"


def test_the_api_page_renders_math_and_cites_no_chapter_in_quotes():
    _require_site()
    html = (SITE / "book" / "api.html").read_text(encoding="utf-8")
    assert 'class="math' in html and "mathjax" in html.lower()
    # Docstrings cite chapters by title in double quotes, and the build turns each into a
    # link. A capitalised phrase still in quotes is a title that no chapter has (any more).
    text = _Text()
    text.feed(html)
    quoted = re.findall(r"[\"“]([A-Z][^\"”]*)[\"”]", " ".join(" ".join(text.parts).split()))
    assert not quoted, f"cited in quotes but not a chapter's title: {quoted}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_links_to_the_api_entries_of_the_functions_it_uses(chapter):
    _require_site()
    notebook = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    if not used_names(code):
        return  # a chapter without lossgrad has nothing to link
    used = {n for n in used_names(code) if n.removeprefix("lossgrad.") in lossgrad.__all__}
    html = (SITE / f"{chapter}.html").read_text(encoding="utf-8")
    start = html.find(f'id="{SECTION_ID}"')
    assert start >= 0, f"{chapter} has no 'Functions used in this chapter' section"
    section = html[start:html.find("</section>", start)]
    linked = set(re.findall(r'href="api\.html#(lossgrad\.\w+)"', section))
    assert 'href="api.html#api"' in section, "no link to the API page"
    assert linked == used, f"linked {sorted(linked)}, used {sorted(used)}"


# objects.inv: what another Sphinx project's intersphinx reads ------------------------------


def inventory(site: Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """A built site's objects.inv: its project name, and each object's role and address."""
    raw = (site / "objects.inv").read_bytes()
    header = raw.split(b"\n", 4)
    project = header[1].decode().removeprefix("# Project: ")
    entries = {}
    for line in zlib.decompress(header[4]).decode().splitlines():
        match = re.fullmatch(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        name, role, _, uri, _ = match.groups()
        entries[name] = (role, uri.replace("$", name) if uri.endswith("$") else uri)
    return project, entries


def test_the_inventory_names_each_type_and_function_as_python_does():
    _require_site()
    project, entries = inventory(SITE)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert project == config["title"], project
    assert not [name for name in entries if name.startswith("lossgrad.lossgrad")], sorted(
        name for name in entries if name.startswith("lossgrad.lossgrad"))
    for name in ("lossgrad.losses.Reduction", "lossgrad.losses.Loss", "lossgrad.numerics.Result"):
        module, _, alias = name.rpartition(".")
        assert getattr(importlib.import_module(module), alias) is not None
        assert entries.get(name) == ("py:type", f"book/api.html#{name}"), (name, entries.get(name))
    ids = set(re.findall(r'id="([^"]+)"', (SITE / "book" / "api.html").read_text()))
    for name in lossgrad.__all__:
        assert entries[f"lossgrad.{name}"] == ("py:function", f"book/api.html#lossgrad.{name}")
        assert f"lossgrad.{name}" in ids


# Reading the chapters' code -------------------------------------------------------------------


@pytest.mark.parametrize(("cells", "expected"), [
    (["import lossgrad as lg\nlg.sigmoid(x)"], {"lossgrad", "lossgrad.sigmoid"}),
    (["from lossgrad.numerics import softmax as sm\nsm(z)"], {"lossgrad.softmax"}),
    (["from lossgrad.losses import bce_with_logits"], {"lossgrad.bce_with_logits"}),
    (["import lossgrad.numerics as num\nnum.logsumexp(z)"],
     {"lossgrad.numerics", "lossgrad.logsumexp"}),
    (["import lossgrad.numerics\nlossgrad.numerics.log_softmax(z)"],
     {"lossgrad", "lossgrad.numerics", "lossgrad.log_softmax"}),
    (["from lossgrad import *\nsigmoid(1.0)"], {"lossgrad.sigmoid"}),
    (["%matplotlib inline\nimport lossgrad as lg\nlg.softplus(1.0)"],
     {"lossgrad", "lossgrad.softplus"}),
    (["!pip list\nfrom lossgrad import logit", "  %time logit(0.5)"], {"lossgrad.logit"}),
    (["%%time\nimport lossgrad as lg\nlg.softmax_cross_entropy(z, 1)"],
     {"lossgrad", "lossgrad.softmax_cross_entropy"}),
    # Not the public function: sympy's sigmoid of the derivations, and a private helper.
    (["from lossgrad.symbolic import sigmoid\nsigmoid(x)"], {"lossgrad.symbolic.sigmoid"}),
    (["from lossgrad import ledger\nledger.claim('x', True)"],
     {"lossgrad.ledger", "lossgrad.ledger.claim"}),
])
def test_used_names_finds_public_functions_however_they_are_imported(cells, expected):
    assert used_names(cells) == expected
