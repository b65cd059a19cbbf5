"""The student edition: the book with every exercise and no solution, for setting homework.

The full edition is the default; ``make student`` builds the student one into
``_build/student/html`` by running ``python -m lossgrad.sphinx_student``, which is the same
Sphinx build as ``jupyter-book build . -W -n --keep-going`` with sphinx-exercise's
``hide_solutions`` set to true (Jupyter Book 1 has no command-line option for one Sphinx
setting, and its ``--path-output`` always appends ``_build/html``).

``hide_solutions`` alone is not enough for this book, whose solutions are gated
(``solution-start`` ... ``solution-end``) so that they can hold code cells: sphinx-exercise 1.2.1
drops the start directive but leaves the content and the end marker, which the HTML writer
cannot render (executablebooks/sphinx-exercise#89). Loaded as a Sphinx extension, this module
marks where a suppressed solution starts and removes everything from there to its end marker:
prose, code cells and their outputs. It also takes the solutions out of the notebooks that the
site offers for download, and (through :func:`strip_solutions`) keeps the verification ledger
from listing the checks made inside solutions. With ``hide_solutions`` false it changes nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["build", "solution_code_cells", "strip_solutions"]

# A MyST directive fence, ``` or :::, three characters or more; the block ends at the same fence.
_GATED = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>solution-start|solution-end)\}[^\n]*\n"
    r"(?:.*?\n)??(?P=fence)[ \t]*$",
    flags=re.M | re.S,
)
_SOLUTION = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}[^\n]*\n(?:.*?\n)??(?P=fence)[ \t]*$",
    flags=re.M | re.S,
)


def _cells(notebook: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each cell with what is left of its source outside solutions (None: nothing)."""
    inside = False
    for cell in notebook.get("cells", []):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") != "markdown":
            yield cell, None if inside else source
            continue
        kept, position = [], 0
        for match in _GATED.finditer(source):
            if not inside:
                kept.append(source[position : match.start()])
            inside = match.group("name") == "solution-start"
            position = match.end()
        if not inside:
            kept.append(source[position:])
        text = _SOLUTION.sub("", "".join(kept))
        yield cell, text if text.strip() else None


def strip_solutions(notebook: dict[str, Any]) -> dict[str, Any]:
    """A copy of a notebook without its solutions.

    Removed: every ``solution`` directive, and everything between a ``solution-start`` and
    its ``solution-end`` directive, across cells: prose, code cells and their outputs. A cell
    left empty is dropped. Exercises stay.

    Examples
    --------
    >>> def cell(kind, text):
    ...     return {"cell_type": kind, "source": text, "metadata": {}}
    >>> notebook = {"cells": [
    ...     cell("markdown", "```{exercise}\\n:label: ex-1\\nFind x.\\n```\\n\\n"
    ...                      "```{solution-start} ex-1\\n```\\nThe answer:"),
    ...     cell("code", "x = 42"),
    ...     cell("markdown", "```{solution-end}\\n```\\n\\nMore prose."),
    ... ]}
    >>> [c["source"] for c in strip_solutions(notebook)["cells"]]
    ['```{exercise}\\n:label: ex-1\\nFind x.\\n```\\n\\n', '\\n\\nMore prose.']
    """
    stripped = copy.deepcopy({k: v for k, v in notebook.items() if k != "cells"})
    stripped["cells"] = []
    for cell, source in _cells(notebook):
        if source is None:
            continue
        cell = copy.deepcopy(cell)
        if cell.get("cell_type") == "markdown":
            cell["source"] = source
        stripped["cells"].append(cell)
    return stripped


def solution_code_cells(notebook: dict[str, Any]) -> list[int]:
    """The positions of the code cells that lie inside a gated solution."""
    return [
        n
        for n, (cell, source) in enumerate(_cells(notebook))
        if cell.get("cell_type") == "code" and source is None
    ]


# Sphinx extension ---------------------------------------------------------------------------
# Sphinx, docutils and sphinx-exercise are imported when the extension is loaded, not with the
# module: strip_solutions serves the ledger and the tests without them.


def _marker_class() -> type:
    from docutils import nodes

    class hidden_solution_start(nodes.Element):
        """Where a gated solution suppressed by ``hide_solutions`` began.

        It has no HTML visitor on purpose: if one were ever left in a page, the writer fails
        instead of the page showing the solution.
        """

    return hidden_solution_start


def _solution_start_directive(marker: type) -> type:
    from sphinx_exercise.directive import SolutionStartDirective

    class SolutionStart(SolutionStartDirective):
        """sphinx-exercise's ``solution-start`` that leaves a marker when solutions are hidden."""

        def run(self) -> list:
            result = super().run()  # registers the gated pair, so the checks of pairs still run
            if self.config.hide_solutions:
                return [marker()]
            return result

    return SolutionStart


def _removal_transform(marker: type) -> type:
    from sphinx.transforms import SphinxTransform
    from sphinx.util import logging
    from sphinx_exercise.nodes import solution_end_node

    logger = logging.getLogger(__name__)

    class RemoveHiddenSolutions(SphinxTransform):
        """Remove each hidden solution: its marker, the nodes after it, and its end marker."""

        # sphinx-exercise checks the pairs at priority 1 and merges shown solutions at 10.
        default_priority = 9

        def apply(self, **kwargs: Any) -> None:
            for start in list(self.document.findall(marker)):
                parent = start.parent
                first = parent.index(start)
                last = next(
                    (n for n in range(first, len(parent))
                     if isinstance(parent[n], solution_end_node)),
                    None,
                )
                if last is None:
                    logger.warning(
                        "a hidden solution-start has no solution-end at the same level",
                        location=start,
                    )
                    parent.remove(start)
                    continue
                del parent[first : last + 1]

    return RemoveHiddenSolutions


def _strip_downloads(app: Any, exception: Exception | None) -> None:
    """Take the solutions out of the notebooks copied into ``_sources`` for download."""
    if exception is not None or not app.config.hide_solutions or app.builder.format != "html":
        return
    for path in Path(app.outdir, "_sources").rglob("*.ipynb"):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(strip_solutions(notebook), indent=1, ensure_ascii=False)
                        + "\n", encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    """Register the removal of hidden gated solutions with Sphinx."""
    app.setup_extension("sphinx_exercise")
    marker = _marker_class()
    app.add_node(marker)
    app.add_directive("solution-start", _solution_start_directive(marker), override=True)
    app.add_transform(_removal_transform(marker))
    app.connect("build-finished", _strip_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}


# Building the student edition ---------------------------------------------------------------


def build(root: Path, output: Path, cache: Path | None = None) -> int:
    """Build the student edition of the book at ``root`` into ``output`` (an HTML directory).

    The same build as ``jupyter-book build`` with ``-W -n --keep-going``: the book's
    ``_config.yml`` and ``_toc.yml``, warnings as errors, nitpicky references; plus
    ``hide_solutions``. Doctrees and executed notebooks go next to ``output``, so the full
    edition's ``_build/html`` is never touched. ``cache`` is the jupyter-cache to read executed
    notebooks from and add to (by default the one next to ``output``); the Makefile passes
    the full edition's, so a notebook executed for one edition is not executed again.
    Returns the Sphinx exit status.
    """
    import yaml
    from jupyter_book.sphinx import build_sphinx

    root, output = Path(root).resolve(), Path(output).resolve()
    config = root / "_config.yml"
    title = yaml.safe_load(config.read_text(encoding="utf-8")).get("title", "")
    overrides: dict[str, Any] = {
        # What `jupyter-book build` sets for a book.
        "external_toc_path": str(root / "_toc.yml"),
        "latex_individualpages": False,
        "nitpicky": True,
        "hide_solutions": True,
        "html_title": f"{title} (student edition)",
    }
    if cache is not None:
        overrides["nb_execution_cache_path"] = str(Path(cache).resolve())
    result = build_sphinx(
        root,
        output,
        noconfig=True,
        path_config=str(config),
        confoverrides=overrides,
        warningiserror=True,
        keep_going=True,
    )
    return result if isinstance(result, int) else 1


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m lossgrad.sphinx_student [--root R] [--output D] [--cache C]``."""
    parser = argparse.ArgumentParser(description="Build the solution-free student edition.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book (default: .)")
    parser.add_argument("--output", type=Path, default=Path("_build/student/html"),
                        help="HTML output directory (default: _build/student/html)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="jupyter-cache directory to share (default: next to the output)")
    args = parser.parse_args(argv)
    status = build(args.root, args.output, args.cache)
    if status == 0:
        print(f"Student edition: open {args.output.resolve() / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
