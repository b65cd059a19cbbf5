"""The student edition (`make student`): every exercise present, no solution anywhere in it; the
full edition keeps its solutions.

The site tests build the student edition into a temporary directory with
`python -m lossgrad.sphinx_student`, reading executed notebooks from the jupyter-cache of the full
build that `make test` makes first, so no notebook runs again (about 20 s). They need that full
build (`_build/html`; set LOSSGRAD_SITE to use another): without it they skip with the reason,
except under CI=true, where they must run.

Which text belongs to a solution is worked out here independently of the code under test: every
solution's longest run of plain words and the first line of each of its code cells must appear
in the full edition and nowhere in the student edition.
"""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from lossgrad.sphinx_student import solution_code_cells, strip_solutions

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("LOSSGRAD_SITE", ROOT / "_build" / "html")).resolve()
IN_CI = os.environ.get("CI") == "true"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [
    c["file"] for part in TOC["parts"] for c in part["chapters"]
    if (ROOT / f"{c['file']}.ipynb").exists()
]

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


# The built editions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def student_site(tmp_path_factory):
    if not (SITE / "book" / "index.html").exists():
        reason = f"the full edition is not built at {SITE}; run `make book`"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this check must run)")
        pytest.skip(reason)
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
