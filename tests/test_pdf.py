"""The PDF edition (`make pdf`), read back as text, and its offer on every page of the site.

`make test` builds the PDF through LaTeX (Debian's TeX Live; the README lists the packages)
before the HTML book, so that the site copies it and links it; these tests read
`_build/latex/lossgrad.pdf` (set LOSSGRAD_PDF to check another) with poppler's `pdftotext`,
`pdfinfo` and `pdfimages`, and the built site (`_build/html`, or LOSSGRAD_SITE). Without
TeX Live or poppler-utils they skip with the reason, except under CI=true, where they must run.
"""

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import yaml
from support import CHAPTERS, ROOT, SITE, require

PDF = Path(os.environ.get("LOSSGRAD_PDF", ROOT / "_build" / "latex" / "lossgrad.pdf")).resolve()
TEXLIVE = (
    "texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex "
    "latexmk xindy fonts-freefont-otf tex-gyre poppler-utils"
)

#: The page count measured when this test was written was 109 for nine chapters with front and
#: back matter, about 12 a chapter. Under 8 a chapter means chapters went missing; over 18, a
#: layout gone wrong.
PAGES = range(8 * len(CHAPTERS), 18 * len(CHAPTERS) + 1)




def _require_pdf() -> None:
    require(
        shutil.which("xelatex") and shutil.which("latexmk"),
        f"TeX Live is missing: apt-get install --no-install-recommends {TEXLIVE}",
    )
    require(shutil.which("pdftotext"), "poppler-utils (pdftotext) is missing")
    require(PDF.is_file(), f"the PDF is not built at {PDF}; run `make pdf`")


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@cache
def _text() -> str:
    """The PDF as text, its pages separated by form feeds, laid out as printed."""
    return _run("pdftotext", "-layout", str(PDF), "-")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def _title(name: str) -> str:
    """A page's title: the first level-1 heading of its notebook or Markdown file."""
    path = ROOT / f"{name}.ipynb"
    if path.exists():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        lines = markdown.splitlines()
    else:
        lines = (ROOT / f"{name}.md").read_text(encoding="utf-8").splitlines()
    return next(ln[2:].strip() for ln in lines if ln.startswith("# "))


def test_the_page_count_is_plausible():
    _require_pdf()
    pages = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(PDF)), re.M).group(1))
    assert pages in PAGES, f"{pages} pages, expected {PAGES.start} to {PAGES.stop - 1}"


def test_every_chapter_title_is_in_the_contents_and_heads_its_chapter():
    _require_pdf()
    text = _flat(_text())
    book = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["title"]
    assert _flat(book) in _flat(_text().split("\f")[0]), "the book's title is not on page 1"
    for name in _toc_files():
        title = _flat(_title(name))
        # As written in the contents (and the running heads); in capitals as the heading.
        assert title in text, f"{name}: {title!r} is not in the contents"
        assert title.upper() in text, f"{name}: no chapter headed {title.upper()!r}"


def test_no_reference_is_left_unresolved_and_latex_reported_no_error():
    _require_pdf()
    unresolved = [ln.strip() for ln in _text().splitlines() if "??" in ln]
    assert not unresolved, f"unresolved references: {unresolved[:5]}"
    log = PDF.with_suffix(".log")
    if log.exists():
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "There were undefined references" not in text
        assert not re.search(r"^! ", text, re.M), "LaTeX errors in the log"


#: An overfull line sticks out of the text block by this much at most: a few points are not
#: seen, 16 to 60 were (an address running into the margin, a matrix into the next column).
OVERFULL_PT = 5.0


def overfull_lines(log: str, limit: float = OVERFULL_PT) -> list[str]:
    """The overfull boxes LaTeX reports wider than ``limit`` points, with where they are."""
    return [
        line.strip() for line in log.splitlines()
        if (m := re.match(r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\)", line))
        and float(m.group(1)) > limit
    ]


def test_the_overfull_check_finds_what_sticks_out():
    log = (
        "Overfull \\hbox (59.41501pt too wide) in paragraph at lines 6512--6515\n"
        "Overfull \\hbox (2.4pt too wide) in paragraph at lines 10--12\n"
        "Underfull \\hbox (badness 10000) in paragraph at lines 1--2\n"
    )
    assert overfull_lines(log) == [
        "Overfull \\hbox (59.41501pt too wide) in paragraph at lines 6512--6515"
    ]


def test_no_line_runs_into_the_margin_or_the_next_column():
    _require_pdf()
    log = PDF.with_suffix(".log")
    require(log.is_file(), f"LaTeX's log is not next to the PDF: {log}")
    wide = overfull_lines(log.read_text(encoding="utf-8", errors="replace"))
    assert not wide, f"lines wider than the text block by over {OVERFULL_PT} pt: {wide}"


def _pdf_equation_numbers() -> set[str]:
    # Displayed equations' numbers stand at the right margin, after a run of spaces.
    return set(re.findall(r" {2,}\((\d+\.\d+)\)$", _text(), re.M))


def test_equations_are_numbered_per_chapter():
    _require_pdf()
    numbers = _pdf_equation_numbers()
    assert {"2.1", "3.1", "3.2", "4.1", "5.1"} <= numbers, sorted(numbers)


def _site_pages() -> list[Path]:
    require(
        SITE.joinpath("book", "index.html").exists(),
        f"the book is not built at {SITE}; run `make book` (after `make pdf`)",
    )
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [SITE / f"{name}.html" for name in [toc["root"], *_toc_files()]]


def test_equation_and_figure_numbers_are_those_of_the_html():
    _require_pdf()
    html = "".join(p.read_text(encoding="utf-8") for p in _site_pages())
    equations = set(re.findall(r'<span class="eqno">\((\d+\.\d+)\)', html))
    assert _pdf_equation_numbers() == equations
    figures = set(re.findall(r'<span class="caption-number">Fig\. (\d+\.\d+) ', html))
    assert set(re.findall(r"Fig\. (\d+\.\d+):", _text())) == figures
    images = _run("pdfimages", "-list", str(PDF)).splitlines()[2:]
    assert len(images) >= len(figures), "figures without their images"


def test_every_page_offers_the_pdf_and_its_own_source():
    _require_pdf()
    pages = _site_pages()
    copy = SITE / PDF.name
    assert copy.is_file(), f"{copy} missing: build the HTML after the PDF (as `make test` does)"
    assert copy.read_bytes() == PDF.read_bytes(), "the site's PDF is not the one built"
    for page in pages:
        html = page.read_text(encoding="utf-8")
        menu = html[html.index("dropdown-download-buttons") :]
        links = re.findall(r'href="([^"]+)"', menu[: menu.index("</ul>")])
        targets = {(page.parent / link).resolve() for link in links}
        assert copy in targets, f"{page.name}: no link to the PDF in the download menu: {links}"
        source = page.relative_to(SITE).with_suffix("")
        own = [t for t in targets if t.parent == SITE / "_sources" / source.parent]
        suffix = ".ipynb" if (ROOT / source).with_suffix(".ipynb").exists() else ".md"
        assert SITE / "_sources" / source.with_suffix(suffix) in own, f"{page.name}: {links}"
        assert all(t.is_file() for t in targets), f"{page.name}: broken download link {links}"


def _apt_packages(text: str) -> set[str]:
    """The packages named by the `apt-get install` commands in a text (continuations joined)."""
    joined = text.replace("\\\n", " ")
    return {
        word
        for line in re.findall(r"apt-get install ([^\n]*)", joined)
        for word in line.split()
        if not word.startswith("-")
    }


def test_ci_installs_exactly_the_system_packages_the_readme_lists():
    readme = _apt_packages((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = _apt_packages((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert set(TEXLIVE.split()) <= readme
    assert readme == ci
