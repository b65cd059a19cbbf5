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
import functools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["build", "solution_code_cells", "solution_spans", "strip_solutions"]

#: The Markdown extensions the book enables (``parse: myst_enable_extensions`` in
#: ``_config.yml``; a test keeps the two equal). They decide what a fence is: ``colon_fence``
#: makes ``:::{solution}`` a directive.
MYST_EXTENSIONS = ("amsmath", "dollarmath", "colon_fence", "deflist", "substitution")
#: The directives of a solution: a whole one, or the markers of a gated one.
_SOLUTION, _GATED = "solution", ("solution-start", "solution-end")
#: Directives whose content is not Markdown (code, math, reStructuredText, data), so a fence
#: inside them is text, not a directive. Every other directive's content is searched too.
_LITERAL = frozenset({
    "code", "code-block", "sourcecode", "code-cell", "literalinclude", "eval-rst", "raw",
    "math", "parsed-literal", "glue:math", "csv-table", "list-table", "tabularcolumns",
    "toctree", "mermaid", "graphviz",
})


@functools.cache
def _parser() -> Any:
    """The Markdown parser that myst-parser builds for the book: the one Sphinx reads with."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions=set(MYST_EXTENSIONS)), RendererHTML)


def _directive(token: Any) -> str | None:
    """The name of the directive a token opens, or None: MyST's rule for fences."""
    if token.type not in ("fence", "colon_fence") or token.map is None:
        return None
    parts = token.info.strip().split(maxsplit=1)
    name = parts[0] if parts else ""
    return name[1:-1] if len(name) > 2 and name[0] == "{" and name[-1] == "}" else None


def solution_spans(text: str) -> list[tuple[int, int, str]]:
    r"""Where the solution directives are in MyST Markdown, as its parser reads them.

    Each ``(first line, line after the last, name)``, lines counted from 0, for every
    ``solution``, ``solution-start`` and ``solution-end`` directive: fenced with backticks,
    tildes or colons, of any length, closed by a fence at least as long (or by the end of the
    text), indented up to three spaces, with any line ends, with options, also inside another
    directive (but not inside code).

    Examples
    --------
    >>> solution_spans("Text\r\n  ~~~~{solution} ex-1\r\n:class: dropdown\r\nx\r\n~~~~~\r\n")
    [(1, 5, 'solution')]
    >>> solution_spans("    ```{solution} ex-1\n    ```\n")  # indented four: a code block
    []
    """
    return sorted(_spans(text, 0))


def _spans(text: str, offset: int) -> Iterator[tuple[int, int, str]]:
    for token in _parser().parse(text):
        name = _directive(token)
        if name is None:
            continue
        start, end = token.map
        if name == _SOLUTION or name in _GATED:
            yield offset + start, offset + end, name
        elif name not in _LITERAL:
            # The content starts on the line after the opening fence (and has as many lines).
            yield from _spans(token.content, offset + start + 1)


def _lines(text: str) -> list[str]:
    """The lines of a text with their ends, split where Markdown splits them (LF, CRLF, CR)."""
    return re.findall(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+\Z", text)


def _cells(notebook: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each cell with what is left of its source outside solutions (None: nothing)."""
    depth = 0  # gated solutions open here (sphinx-exercise refuses nesting; we drop it all)
    for cell in notebook.get("cells", []):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") != "markdown":
            yield cell, None if depth else source
            continue
        lines, kept, position = _lines(source), [], 0
        for start, end, name in solution_spans(source):
            if start < position:
                continue
            if not depth:
                kept += lines[position:start]
            if name == "solution-start":
                depth += 1
            elif name == "solution-end":
                depth = max(depth - 1, 0)
            position = end
        if not depth:
            kept += lines[position:]
        text = "".join(kept)
        yield cell, text if text.strip() else None


def strip_solutions(notebook: dict[str, Any]) -> dict[str, Any]:
    """A copy of a notebook without its solutions.

    Removed: every ``solution`` directive, and everything between a ``solution-start`` and
    its ``solution-end`` directive, across cells: prose, code cells and their outputs. A cell
    left empty is dropped. Exercises stay. The directives are found as MyST finds them
    (:func:`solution_spans`), in every form it accepts; a ``solution-start`` without its end
    removes the rest of the notebook.

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
    ['```{exercise}\\n:label: ex-1\\nFind x.\\n```\\n\\n', '\\nMore prose.']
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
    the full edition's, so a notebook executed for one edition is not executed again (a
    notebook that changed since the full build is executed and added to that cache).
    The student edition offers no PDF: the PDF is the full edition's, with the solutions, and
    the build offers one only if it finds it in ``latex`` next to ``output``, where nothing
    puts one. Only the site's title says "student edition"; the book's title as cited (Sphinx's
    ``project``, which the "How to cite" page reads) stays the same.
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
