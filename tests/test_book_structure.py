"""The table of contents and the chapter files agree, and every notebook was run in order."""

import json
import re
from pathlib import Path

import yaml

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


def test_displayed_equations_in_notebooks_come_from_code():
    # A $$ ... $$ block in a notebook's prose would be algebra no code has checked; displayed
    # equations are glued from derivations instead. (Theorem statements, inside prf blocks,
    # restate a result derived in the same chapter and are allowed.)
    for path in BOOK.glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            text = "".join(cell["source"])
            outside_theorems = re.sub(r"```\{prf:theorem\}.*?```", "", text, flags=re.S)
            assert "$$" not in outside_theorems, f"{path.name}: unchecked display math:\n{text}"


def test_every_glued_equation_is_labelled_and_every_label_is_glued():
    for path in BOOK.glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        glued = set(re.findall(r'glue\("([^"]+)"', code))
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
