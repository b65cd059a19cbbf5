"""The student edition (`make student`): every exercise present, no solution anywhere in it; the
full edition keeps its solutions.

The site tests build the student edition into a temporary directory with
`python -m lossgrad.sphinx_student`, reading executed notebooks from the jupyter-cache of the full
build that `make test` makes first, so no notebook runs again (about 20 s). They need that full
build (`_build/html`; set LOSSGRAD_SITE to use another): without it they skip with the reason,
except under CI=true, where they must run.

Which text belongs to a solution is worked out here independently of the code under test: every
solution's longest run of plain words and the first line of each of its code cells must appear
in the full edition and nowhere in the student edition. The chapters write their solutions in
one form, which the simple scanner here reads (a test checks that it finds every one); the other
forms that MyST accepts are checked on small notebooks written here, each with the text it must
keep and the text it must lose, and each confirmed to be a solution by MyST's own parser.
"""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from support import CHAPTERS, ROOT, SITE, require

from lossgrad.sphinx_student import MYST_EXTENSIONS, solution_code_cells, strip_solutions

_FENCE = re.compile(r"^(`{3,}|:{3,})\{(solution-start|solution-end|solution)\}", flags=re.M)
_LABEL = re.compile(r"\{exercise(?:-start)?\}[^\n]*\n((?::[\w-]+:[^\n]*\n)*)")


def _notebook(chapter: str) -> dict:
    return json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def exercise_labels(notebook: dict) -> list[str]:
    labels = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for options in _LABEL.findall(_source(cell)):
                labels += re.findall(r"^:label:\s*(\S+)", options, flags=re.M)
    return labels


def split_solutions(notebook: dict) -> tuple[list[str], list[str], str]:
    """(the prose of each solution, the code cells inside solutions, all text outside them)."""
    prose, code, outside = [], [], []
    inside = False
    for cell in notebook["cells"]:
        text = _source(cell)
        if cell["cell_type"] != "markdown":
            (code if inside else outside).append(text)
            continue
        position = 0
        for match in _FENCE.finditer(text):
            kind = match.group(2)
            if kind == "solution":  # a whole solution in one directive: up to its closing fence
                end = text.find("\n" + match.group(1) + "\n", match.end())
                end = len(text) if end < 0 else end
                outside.append(text[position:match.start()])
                prose.append(text[match.end():end])
                position = end
                continue
            (prose if inside else outside).append(text[position:match.start()])
            if kind == "solution-start":
                prose.append("")
            inside = kind == "solution-start"
            position = match.end()
        if inside:
            prose[-1] += text[position:]
        else:
            outside.append(text[position:])
    return [p for p in prose if p.strip()], code, "\n".join(outside)


def _normal(text: str) -> str:
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "\xa0": " "}))
    return " ".join(text.split())


def longest_plain_run(markdown: str) -> str:
    """The longest run of plain words in MyST text: no math, role, literal or markup inside."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|\{[\w:-]+\}`[^`]*`|`[^`]*`", " | ", markdown, flags=re.S)
    text = re.sub(r"^(`{3,}|:{3,}).*$|^:\w[\w-]*:.*$", " | ", text, flags=re.M)
    runs = re.findall(r"(?:[A-Za-z][A-Za-z'’-]*[,;]?[ \n]+){5,}[A-Za-z][A-Za-z'’-]*", text)
    return _normal(max(runs, key=len)) if runs else ""


def first_code_line(source: str) -> str:
    for line in source.splitlines():
        line = line.strip()
        if len(line) >= 20 and not line.startswith("#"):
            return line
    return ""


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.classes: set[str] = set()
        self.ids: set[str] = set()
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.classes.update((attributes.get("class") or "").split())
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def read_html(path: Path) -> _Text:
    page = _Text()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def site_text(site: Path) -> dict[Path, str]:
    """Every text file of a built site, as a reader or a search could find its words."""
    texts = {}
    for path in site.rglob("*"):
        if path.suffix == ".html":
            texts[path] = _normal("".join(read_html(path).parts))
        elif path.suffix == ".ipynb":
            notebook = json.loads(path.read_text(encoding="utf-8"))
            texts[path] = _normal(json.dumps(notebook["cells"], ensure_ascii=False)
                                  .encode().decode("unicode_escape", errors="ignore"))
            texts[path] += " " + _normal("\n".join(_source(c) for c in notebook["cells"]))
        elif path.suffix in (".js", ".txt", ".md", ".json"):
            texts[path] = _normal(path.read_text(encoding="utf-8", errors="ignore"))
    return texts


def _outside_solutions() -> str:
    """The book's text outside solutions: the chapters' and the other pages' sources."""
    texts = [split_solutions(_notebook(chapter))[2] for chapter in CHAPTERS]
    texts += [path.read_text(encoding="utf-8") for path in (ROOT / "book").glob("*.md")]
    return _normal("\n".join(texts))


def solution_markers(notebook: dict, outside: str) -> list[str]:
    """Distinctive text of each solution: its longest plain run, its code cells' first lines.

    Only text found nowhere outside the solutions, so that its absence means something.
    """
    prose, code, _ = split_solutions(notebook)
    markers = [longest_plain_run(p) for p in prose] + [first_code_line(c) for c in code]
    return [m for m in markers if m and _normal(m) not in outside]


# Without a build ----------------------------------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stripping_keeps_every_exercise_and_drops_every_solution(chapter):
    notebook = _notebook(chapter)
    stripped = strip_solutions(notebook)
    assert exercise_labels(stripped) == exercise_labels(notebook)
    prose, code, _ = split_solutions(notebook)
    assert split_solutions(stripped)[:2] == ([], [])
    assert not _FENCE.search("\n".join(_source(c) for c in stripped["cells"]))
    assert len(solution_code_cells(notebook)) == len(code)
    kept_code = [_source(c) for c in stripped["cells"] if c["cell_type"] == "code"]
    assert not set(code) & set(kept_code) or all(kept_code.count(c) for c in code)
    assert strip_solutions(stripped) == stripped
    if exercise_labels(notebook):
        assert prose, f"{chapter} has exercises but no solution was found"


def test_the_scanner_here_sees_every_solution_directive_of_the_chapters():
    """The chapters' solutions are all in the form split_solutions reads, so it misses none."""
    for chapter in CHAPTERS:
        for cell in _notebook(chapter)["cells"]:
            text = _source(cell)
            if cell["cell_type"] == "markdown":
                assert text.count("{solution") == len(_FENCE.findall(text)), (chapter, text)


def test_solutions_are_found_with_the_markdown_extensions_the_book_enables():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert list(MYST_EXTENSIONS) == config["parse"]["myst_enable_extensions"]


# Every form of the solution directives that MyST accepts, on small notebooks. Each case: the
# cells (a string is a Markdown cell, ("code", text) a code cell); what the student edition must
# not contain (SECRET), and what it must keep (EXERCISE, AFTER).


def _case(*cells) -> dict:
    return {"cells": [
        {"cell_type": "code", "source": c[1], "metadata": {}, "outputs": [], "execution_count": 1}
        if isinstance(c, tuple) else {"cell_type": "markdown", "source": c, "metadata": {}}
        for c in cells
    ]}


EXERCISE = "```{exercise}\n:label: ex-1\nEXERCISE.\n```\n\n"

FORMS = {
    "backticks": EXERCISE + "```{solution} ex-1\nSECRET\n```\n\nAFTER",
    "tildes": EXERCISE + "~~~{solution} ex-1\nSECRET\n~~~\n\nAFTER",
    "colons": EXERCISE + ":::{solution} ex-1\nSECRET\n:::\n\nAFTER",
    "four backticks around a code block": EXERCISE
    + "````{solution} ex-1\nSECRET\n```python\nx = 1\n```\nSECRET\n````\n\nAFTER",
    "closed by a longer fence": EXERCISE + "```{solution} ex-1\nSECRET\n`````\n\nAFTER",
    "tildes closed by a longer fence": EXERCISE + "~~~{solution} ex-1\nSECRET\n~~~~~~\n\nAFTER",
    "colons closed by a longer fence": EXERCISE + "::::{solution} ex-1\nSECRET\n:::::\n\nAFTER",
    "indented one space": EXERCISE + " ```{solution} ex-1\n SECRET\n ```\n\nAFTER",
    "indented three spaces": EXERCISE + "   ~~~{solution} ex-1\n   SECRET\n   ~~~\n\nAFTER",
    "CRLF line ends": (EXERCISE + "```{solution} ex-1\nSECRET\n```\n\nAFTER").replace("\n", "\r\n"),
    "CR line ends": (EXERCISE + "```{solution} ex-1\nSECRET\n```\n\nAFTER").replace("\n", "\r"),
    "options": EXERCISE
    + "```{solution} ex-1\n:label: sol-1\n:class: dropdown\n\nSECRET\n```\n\nAFTER",
    "options as YAML": EXERCISE
    + "```{solution} ex-1\n---\nclass: dropdown\n---\nSECRET\n```\nAFTER",
    "inside another directive": EXERCISE
    + "::::{note}\nA note.\n:::{solution} ex-1\nSECRET\n:::\n::::\n\nAFTER",
    "never closed": EXERCISE + "AFTER\n\n~~~~{solution} ex-1\nSECRET\n```\nSECRET\n",
}


def _cells_text(notebook: dict) -> str:
    return "\n".join(_source(c) for c in notebook["cells"])


@pytest.mark.parametrize("form", FORMS)
def test_a_solution_in_any_form_that_myst_accepts_is_removed(form):
    text = FORMS[form]
    assert "SECRET" in myst_solution_text(text), "not a solution to MyST: the case is wrong"
    stripped = _cells_text(strip_solutions(_case(text)))
    assert "SECRET" not in stripped
    assert "EXERCISE" in stripped and "AFTER" in stripped


GATED = {
    "backticks": ("```{solution-start} ex-1\n```\n", "```{solution-end}\n```\n"),
    "tildes": ("~~~{solution-start} ex-1\n~~~\n", "~~~{solution-end}\n~~~\n"),
    "colons, four": ("::::{solution-start} ex-1\n::::\n", "::::{solution-end}\n::::\n"),
    "closed by longer fences": ("```{solution-start} ex-1\n``````\n", "~~~{solution-end}\n~~~~\n"),
    "indented": ("  ```{solution-start} ex-1\n  ```\n", "   :::{solution-end}\n   :::\n"),
    "with options": ("```{solution-start} ex-1\n:class: dropdown\n:label: sol-1\n```\n",
                     "```{solution-end}\n```\n"),
    "CRLF line ends": ("```{solution-start} ex-1\r\n```\r\n", "```{solution-end}\r\n```\r\n"),
}


@pytest.mark.parametrize("form", GATED)
def test_a_gated_solution_in_any_form_loses_its_prose_and_code_cells(form):
    start, end = GATED[form]
    notebook = _case(EXERCISE + start + "SECRET prose.", ("code", "secret = 1"),
                     "More SECRET prose.", ("code", "secret += 1"), end + "\nAFTER",
                     ("code", "kept = 2"))
    stripped = strip_solutions(notebook)
    text = _cells_text(stripped)
    assert "SECRET" not in text and "secret" not in text
    assert "EXERCISE" in text and "AFTER" in text and "kept = 2" in text
    assert solution_code_cells(notebook) == [1, 3]
    assert [c["cell_type"] for c in stripped["cells"]] == ["markdown", "markdown", "code"]


def test_nested_gated_solutions_and_an_unclosed_one_lose_everything_inside():
    start, end = "```{solution-start} ex-1\n```\n", "```{solution-end}\n```\n"
    nested = _case(EXERCISE + start, start + "SECRET", end + "SECRET", ("code", "secret"),
                   end + "AFTER")
    assert _cells_text(strip_solutions(nested)).replace(EXERCISE, "").strip() == "AFTER"
    unclosed = _case(EXERCISE + "AFTER\n\n" + start + "SECRET", ("code", "secret"), "SECRET")
    assert "SECRET" not in _cells_text(strip_solutions(unclosed))
    assert "secret" not in _cells_text(strip_solutions(unclosed))


NOT_SOLUTIONS = {
    "indented four spaces (a code block)": "    ```{solution} ex-1\n    KEPT\n    ```\n",
    "inside a code block": "````{code-block} md\n```{solution} ex-1\nKEPT\n```\n````\n",
    "another directive": "```{solutions} ex-1\nKEPT\n```\n",
    "a code fence": "```python\n# {solution}\nKEPT = 1\n```\n",
}


@pytest.mark.parametrize("form", NOT_SOLUTIONS)
def test_what_myst_does_not_read_as_a_solution_stays(form):
    text = NOT_SOLUTIONS[form]
    assert "KEPT" not in myst_solution_text(text)
    assert "KEPT" in _cells_text(strip_solutions(_case(text)))


def myst_solution_text(text: str) -> str:
    """The text MyST's own docutils parser puts inside solution directives (the oracle).

    Stand-in directives record their content; each name that sphinx-exercise registers is one.
    The text that MyST parses as the content of a ``solution`` directive is what a student must
    not see.
    """
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Directive, directives
    from myst_parser.parsers.docutils_ import Parser

    class Recorder(Directive):
        has_content = True
        optional_arguments = 1
        final_argument_whitespace = True
        option_spec: ClassVar = {"label": directives.unchanged, "class": directives.unchanged}

        def run(self):
            kind = "solution" if self.name == "solution" else "other"
            return [nodes.literal_block("\n".join(self.content), "\n".join(self.content),
                                        classes=[kind])]

    registered = dict(directives._directives)  # docutils' registry is global: restored below
    try:
        for name in ("solution", "exercise", "note", "solutions", "code-block"):
            directives.register_directive(name, Recorder)
        doctree = publish_doctree(
            text, parser=Parser(),
            settings_overrides={"myst_enable_extensions": list(MYST_EXTENSIONS),
                                "report_level": 5, "halt_level": 5},
        )
    finally:
        directives._directives.clear()
        directives._directives.update(registered)
    found = [n.astext() for n in doctree.findall(nodes.literal_block) if "solution" in n["classes"]]
    # A solution inside another directive: MyST parses that directive's content in turn.
    for n in doctree.findall(nodes.literal_block):
        if "other" in n["classes"] and "{solution}" in n.astext() and "{code-block}" not in text:
            found.append(myst_solution_text(n.astext()))
    return "\n".join(found)


# The built editions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def student_site(tmp_path_factory):
    require((SITE / "book" / "index.html").exists(),
            f"the full edition is not built at {SITE}; run `make book`")
    output = tmp_path_factory.mktemp("student") / "html"
    run = subprocess.run(
        [sys.executable, "-m", "lossgrad.sphinx_student", "--root", str(ROOT),
         "--output", str(output), "--cache", str(SITE.parent / ".jupyter_cache")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    problems = [line for line in log.splitlines()
                if ("WARNING" in line or "ERROR" in line) and "IPKernelApp" not in line]
    assert not problems, problems
    return output, site_text(output)


def test_the_student_edition_is_built_apart_from_the_full_one(student_site):
    output, _ = student_site
    assert (output / "book" / "index.html").exists()
    assert not output.is_relative_to(SITE) and not SITE.is_relative_to(output)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_is_in_the_student_edition_and_no_solution(chapter, student_site):
    output, texts = student_site
    notebook = _notebook(chapter)
    labels = exercise_labels(notebook)
    student, full = read_html(output / f"{chapter}.html"), read_html(SITE / f"{chapter}.html")
    assert not set(labels) - student.ids, "exercises missing from the student edition"
    assert not set(labels) - full.ids, "exercises missing from the full edition"
    assert not {c for c in student.classes if c.startswith("solution")}
    if labels:
        assert "solution" in full.classes, "the full edition lost its solutions"
    markers = solution_markers(notebook, _outside_solutions())
    if labels:
        assert markers, "no distinctive solution text found to look for"
    full_text = _normal("".join(full.parts))
    for marker in markers:
        assert _normal(marker) in full_text, f"not in the full edition: {marker!r}"
        leaks = [str(p.relative_to(output)) for p, t in texts.items() if _normal(marker) in t]
        assert not leaks, f"solution text {marker!r} in the student edition: {leaks}"


def test_the_student_notebooks_offered_for_download_hold_the_exercises_only(student_site):
    output, _ = student_site
    for chapter in CHAPTERS:
        copy = output / "_sources" / f"{chapter}.ipynb"
        if not copy.exists():
            continue
        notebook = json.loads(copy.read_text(encoding="utf-8"))
        assert exercise_labels(notebook) == exercise_labels(_notebook(chapter))
        assert split_solutions(notebook)[:2] == ([], [])


def test_the_student_edition_cites_the_book_by_its_own_title_and_its_links_resolve(student_site):
    """Only the site's title names the edition: the BibTeX cites the book as it is called."""
    from test_links import broken_links, check_citation_page

    output, _ = student_site
    check_citation_page(output)
    assert not broken_links(output)
    index = (output / "book" / "index.html").read_text(encoding="utf-8")
    assert "(student edition)" in index, "the student site does not say which edition it is"
    project = (output / "objects.inv").read_bytes().split(b"\n")[1].decode()
    assert project == f"# Project: {yaml.safe_load((ROOT / '_config.yml').read_text())['title']}"


def test_the_student_edition_offers_no_pdf_and_promises_no_hidden_solutions(student_site):
    """The PDF is the full edition's, with the solutions; and no page says they are there."""
    output, texts = student_site
    assert not list(output.rglob("*.pdf"))
    assert not [p for p, t in texts.items() if p.suffix == ".html" and "Book (.pdf)" in t]
    for path in output.rglob("*.html"):
        assert "lossgrad.pdf" not in path.read_text(encoding="utf-8"), path
    introduction = texts[output / "book" / "01-introduction.html"]
    assert "until you click" not in introduction
    assert "the student edition, made for setting homework, leaves it out" in introduction
