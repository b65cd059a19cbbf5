"""The table of contents and the chapter files agree, and every notebook was run in order."""

import json
import re
from pathlib import Path

import yaml

from lossgrad.ledger import MIME

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for chapter in part["chapters"]:
            files.add(chapter["file"])
            files.update(section["file"] for section in chapter.get("sections", []))
    return files


def chapter_files() -> set[str]:
    return {
        str(path.relative_to(ROOT).with_suffix(""))
        for path in BOOK.rglob("*")
        if path.suffix in {".md", ".ipynb"} and ".ipynb_checkpoints" not in path.parts
    }


def test_every_chapter_file_is_in_the_toc():
    missing = chapter_files() - toc_files()
    assert not missing, f"chapter files missing from _toc.yml: {sorted(missing)}"


def test_every_toc_entry_has_a_file():
    missing = toc_files() - chapter_files()
    assert not missing, f"_toc.yml entries with no file under book/: {sorted(missing)}"


def test_notebooks_were_executed_top_to_bottom_in_a_fresh_kernel():
    for path in BOOK.glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        counts = [c["execution_count"] for c in cells if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1)), path.name


# Displays in the prose must name their check: see tests/test_ledger.py.

# Exercises per chapter: at least three everywhere, at least five where the book states most.
MIN_EXERCISES = {"05-softmax-gradient": 5}


def _exercises_and_checked_solutions(cells: list[dict]) -> tuple[list[str], dict[str, int]]:
    exercises, checks, open_solution = [], {}, None
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and open_solution:
            checks[open_solution] += sum(
                MIME in output.get("data", {}) for output in cell.get("outputs", [])
            )
            continue
        exercises += re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", text)
        for event, label in re.findall(r"```\{solution-(start|end)\}\s*(\S*)", text):
            if event == "start":
                open_solution = label
                checks[label] = 0
            else:
                open_solution = None
    return exercises, checks


def test_every_chapter_sets_exercises_with_solutions_checked_by_code():
    for path in sorted(BOOK.glob("*.ipynb")):
        exercises, checks = _exercises_and_checked_solutions(json.loads(path.read_text())["cells"])
        assert len(exercises) >= MIN_EXERCISES.get(path.stem, 3), f"{path.name}: {exercises}"
        for label in exercises:
            assert label in checks, f"{path.name}: exercise {label} has no solution"
            assert checks[label] > 0, (
                f"{path.name}: the solution of {label} has no code cell with a derivation, "
                "identity or claim"
            )


def test_every_glued_equation_is_labelled_and_every_label_is_glued():
    for path in BOOK.glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        # Equations are glued as eq-...; numbers glued for the prose ({glue:text}) are not shown.
        glued = set(re.findall(r'glue\("(eq-[^"]+)"', code))
        shown = set(re.findall(r"```\{glue:math\} (\S+)\n:label: (\S+)", prose))
        assert all(name == label for name, label in shown), path.name
        assert glued == {name for name, _ in shown}, path.name


def test_code_never_hard_codes_an_equation_number():
    # Numbers move when equations are added; prose links equations with {eq}`label` instead.
    number = re.compile(r"""["'][^"'\n]*\(\d+\.\d+\)[^"'\n]*["']""")
    for path in BOOK.glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                found = number.findall("".join(cell["source"]))
                assert not found, f"{path.name}: equation number in code: {found}"
