"""references.bib and the citations agree: every key cited is defined, every key defined is cited.

Citations are MyST roles in the chapters' markdown cells and in the .md pages
(``{cite:p}`key1,key2` ``, ``{cite:t}`...` ``, ...) and Sphinx roles in the package's docstrings
(``:cite:p:`key` ``).
"""

import ast
import json
import re
from pathlib import Path

import pytest
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
BIB = ROOT / "references.bib"

MYST_CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
RST_CITE = re.compile(r":cite(?::[a-z]+)?:`([^`]+)`")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")


def _keys(found: list[str]) -> set[str]:
    # A key may carry a pre- or post-note in braces: {cite:p}`key{ch. 3}`.
    keys = (re.sub(r"\{[^}]*\}", "", key).strip() for group in found for key in group.split(","))
    return {key for key in keys if key}


def cited_keys() -> dict[str, set[str]]:
    """Each cited key, with the files that cite it."""
    where: dict[str, set[str]] = {}

    def add(keys: set[str], path: Path) -> None:
        for key in keys:
            where.setdefault(key, set()).add(str(path.relative_to(ROOT)))

    for path in sorted(BOOK.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        add(_keys(MYST_CITE.findall(text)), path)
    for path in sorted(BOOK.rglob("*.md")):
        add(_keys(MYST_CITE.findall(path.read_text())), path)
    for path in sorted((ROOT / "src").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = [
            ast.get_docstring(node) or ""
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        add(_keys(RST_CITE.findall("\n".join(docstrings))), path)
    return where


@pytest.fixture(scope="module")
def bibliography():
    return parse_file(str(BIB), bib_format="bibtex")


def test_the_scanner_finds_citations_in_each_form():
    assert _keys(MYST_CITE.findall("as {cite:p}`a,b` and {cite}`c` and {cite:t}`d`")) == set("abcd")
    assert _keys(RST_CITE.findall("see :cite:p:`e, f`")) == {"e", "f"}
    assert _keys(MYST_CITE.findall("{cite:p}`g{ch. 3}` {cite:t}`{see}h{p. 2}`")) == {"g", "h"}


def test_every_cited_key_is_defined(bibliography):
    defined = set(bibliography.entries.keys())
    missing = {key: sorted(files) for key, files in cited_keys().items() if key not in defined}
    assert not missing, f"cited but not in references.bib: {missing}"


def test_every_defined_key_is_cited(bibliography):
    uncited = sorted(set(bibliography.entries.keys()) - set(cited_keys()))
    assert not uncited, f"in references.bib but cited nowhere: {uncited}"


def test_papers_and_chapters_carry_a_doi_or_an_address(bibliography):
    """A journal article or a chapter in a proceedings or collection can be found from its entry."""
    for key, entry in bibliography.entries.items():
        doi = entry.fields.get("doi")
        if doi is not None:
            assert DOI.match(doi), f"{key}: malformed DOI {doi!r}"
        if entry.type in {"article", "incollection", "inproceedings"}:
            assert doi or entry.fields.get("url"), f"{key}: no DOI and no URL"
