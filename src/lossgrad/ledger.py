"""The verification ledger: what each chapter proved, what it only checked, and where.

Two kinds of record are made while a chapter runs, and both travel in the chapter's saved
outputs under the MIME type :data:`MIME`:

* every :class:`~lossgrad.derivation.Derivation` (and so every
  :func:`~lossgrad.derivation.identity`) records its steps and their verdicts when it is
  displayed or glued;
* :func:`claim` records a statement made in words (a limit, a bound, a count, a digit count)
  together with the code that checked it, and fails the chapter when the check fails.

When the book is built, this module, loaded as a Sphinx extension, reads those records from the
chapters' notebooks and writes them into the "Verification ledger" page. The same reader backs
the tests that every displayed equation in a chapter's prose points at a record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MIME",
    "Claim",
    "ClaimError",
    "claim",
    "derivation_record",
    "ledger_markdown",
    "notebook_records",
]

#: The MIME type under which records are stored in a notebook's outputs.
MIME = "application/vnd.lossgrad.check+json"

_METHODS = ("proved", "numeric")


class ClaimError(AssertionError):
    """A statement in the prose that its check does not support."""


@dataclass(frozen=True)
class Claim:
    """A statement in words that a code cell checked.

    Attributes
    ----------
    statement : str
        The statement as the prose makes it; math between dollar signs.
    how : str
        How it was checked, specific enough to repeat: the method, the points or domain,
        for example ``"at 10,000 random logits in [-20, 20]"`` or ``"sympy limit"``.
    method : {"proved", "numeric"}
        ``"proved"`` for a symbolic argument (a sympy limit, a simplification to 0, an
        exact rational computation), ``"numeric"`` for anything evaluated at points.
    """

    statement: str
    how: str
    method: str

    @property
    def verdict(self) -> str:
        """How the statement was verified, in words."""
        kind = "proved symbolically" if self.method == "proved" else "checked numerically"
        return f"{kind}: {self.how}"

    def record(self) -> dict[str, Any]:
        """The ledger record of this claim."""
        return {
            "kind": "claim",
            "statement": self.statement,
            "method": self.method,
            "verdict": self.verdict,
        }

    def __str__(self) -> str:
        mark = "proved" if self.method == "proved" else "checked"
        return f"{mark}: {self.statement} [{self.how}]"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        mark = "proved" if self.method == "proved" else "checked"
        return {
            "text/plain": str(self),
            "text/markdown": f"✓ *{mark.capitalize()}:* {self.statement} ({self.how})",
            MIME: self.record(),
        }


def claim(statement: str, holds: object, how: str, *, proved: bool = False) -> Claim:
    """Check a statement the prose makes, and record it for the ledger.

    Parameters
    ----------
    statement : str
        The statement, as the prose makes it (math between dollar signs).
    holds : bool
        The result of the check: a Python, NumPy or sympy boolean. Anything else (an array,
        a number) is refused, so that an ambiguous truth value cannot pass silently.
    how : str
        How it was checked: method, points, domain.
    proved : bool, default False
        Whether the check is a symbolic argument rather than an evaluation at points.

    Returns
    -------
    Claim
        Displayed as one line, "✓ Checked: ...", and carried into the ledger.

    Raises
    ------
    ClaimError
        If ``holds`` is false: the chapter stops, and the build fails.
    TypeError
        If ``holds`` or ``proved`` is not a boolean.

    Examples
    --------
    >>> from lossgrad.ledger import claim
    >>> print(claim("0.1 + 0.2 differs from 0.3 in binary64", 0.1 + 0.2 != 0.3, "one evaluation"))
    checked: 0.1 + 0.2 differs from 0.3 in binary64 [one evaluation]
    >>> claim("$1 > 2$", 1 > 2, "one comparison")
    Traceback (most recent call last):
    ...
    lossgrad.ledger.ClaimError: not supported by its check (one comparison): $1 > 2$
    """
    if not isinstance(statement, str) or not statement.strip():
        raise TypeError("statement must be a non-empty string")
    if not isinstance(how, str) or not how.strip():
        raise TypeError("how must say how the statement was checked")
    if not isinstance(proved, bool):
        # proved="no" would be truthy and record a numeric check as a proof.
        raise TypeError(f"proved must be True or False, got {proved!r}")
    if not _is_boolean(holds):
        raise TypeError(
            f"holds must be a boolean (bool, numpy.bool_ or a sympy truth value), got "
            f"{type(holds).__name__}; reduce an array with numpy.all or numpy.any first"
        )
    if not bool(holds):
        raise ClaimError(f"not supported by its check ({how}): {statement}")
    return Claim(statement, how, "proved" if proved else "numeric")


def _is_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return True
    kind = type(value)
    # NumPy's and sympy's booleans, recognised without importing either module here.
    return (kind.__module__, kind.__name__) in {
        ("numpy", "bool"),
        ("numpy", "bool_"),
        ("sympy.logic.boolalg", "BooleanTrue"),
        ("sympy.logic.boolalg", "BooleanFalse"),
    }


def derivation_record(derivation: Any) -> dict[str, Any]:
    """The ledger record of a derivation: its name and each step's justification and verdict.

    Parameters
    ----------
    derivation : lossgrad.derivation.Derivation
        A derivation whose steps have been checked.

    Returns
    -------
    dict
        ``{"kind": "derivation", "name": ..., "steps": [{"why", "method", "verdict"}, ...]}``;
        ``method`` is ``"proved"``, ``"numeric"`` or ``"instances"`` (checked at particular
        sizes :math:`K`).
    """
    steps = []
    for step in derivation.steps[1:]:
        if step.method == "symbolic":
            method = "proved"
        elif getattr(step, "instances", False):
            method = "instances"
        else:
            method = "numeric"
        steps.append({"why": step.why, "method": method, "verdict": step.verdict})
    return {"kind": "derivation", "name": derivation.statement_latex, "steps": steps}


# Reading records back from notebooks -------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record read from a notebook: the label it was glued under, if any, and its data."""

    label: str | None
    data: dict[str, Any]

    @property
    def methods(self) -> list[str]:
        """The method of each checked statement in the record."""
        if self.data["kind"] == "claim":
            return [self.data["method"]]
        return [s["method"] for s in self.data["steps"]]


def notebook_records(notebook: dict[str, Any] | str | Path) -> list[Record]:
    """Every ledger record in a notebook's saved outputs, in order.

    Parameters
    ----------
    notebook : dict or path
        A notebook as parsed JSON, or the path of an ``.ipynb`` file.
    """
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    records = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME not in data:
                continue
            label = output.get("metadata", {}).get("scrapbook", {}).get("name")
            records.append(Record(label, data[MIME]))
    return records


def notebook_title(notebook: dict[str, Any]) -> tuple[str | None, str]:
    """A chapter's reference target, ``(ch-...)=``, and its title, from its first cell."""
    first = "".join(notebook["cells"][0]["source"])
    target = re.search(r"^\((\S+)\)=\s*$", first, flags=re.M)
    title = re.search(r"^# (.+)$", first, flags=re.M)
    return (target.group(1) if target else None, title.group(1).strip() if title else "")


def _counts(records: Iterable[Record]) -> dict[str, int]:
    counts = dict.fromkeys(("proved", "numeric", "instances"), 0)
    for record in records:
        for method in record.methods:
            counts[method] += 1
    return counts


def _cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


#: Characters of LaTeX beyond which the ledger shows a derivation's result by its left side only
#: (the longest that fits the PDF's table today is a matrix of 402 characters, which stacks; a
#: flat expression of 434 ran 195 pt out of it).
_LONGEST_STATEMENT = 420


def _describe(record: Record) -> tuple[str, str, str]:
    """What the record is, its verdict in words, and where it stands."""
    where = f"{{eq}}`{record.label}`" if record.label else ""
    if record.data["kind"] == "claim":
        return record.data["statement"], record.data["verdict"], where
    steps = record.data["steps"]
    name = record.data["name"]
    if len(name) > _LONGEST_STATEMENT and record.label and " = " in name:
        # Inline math does not break inside its brackets: a long result would run out of its
        # table cell (in the PDF by some 200 pt). Its left side stands for it; the link in the
        # last column leads to the equation in full.
        name = name.split(" = ", 1)[0] + r" = \dots"
    what = f"${name}$"
    if len(steps) > 1:
        what += f" ({len(steps)} steps)"
    verdicts: dict[str, int] = {}
    for s in steps:
        verdicts[s["verdict"]] = verdicts.get(s["verdict"], 0) + 1
    said = "; ".join(
        v if n == 1 and len(steps) == 1 else f"{n} × {v}" for v, n in verdicts.items()
    )
    return what, said or "definition (nothing to check)", where


def ledger_markdown(chapters: Iterable[tuple[str | None, str, list[Record]]]) -> str:
    """The ledger page's body in MyST Markdown, one section per chapter.

    Parameters
    ----------
    chapters : iterable of (target, title, records)
        Each chapter's reference target (or None), title and records, in reading order.
    """
    chapters = list(chapters)
    total = _counts(r for _, _, records in chapters for r in records)
    lines = [
        f"Over the whole book: {total['proved']} statements proved symbolically, "
        f"{total['numeric']} checked numerically, and {total['instances']} checked for "
        "particular numbers of classes $K$.",
        "",
    ]
    for target, title, records in chapters:
        if not records:
            continue
        heading = f"{{ref}}`{target}`" if target else title
        counts = _counts(records)
        lines += [
            f"## {title}",
            "",
            f"{heading}: {counts['proved']} proved, {counts['numeric']} checked numerically, "
            f"{counts['instances']} checked for particular $K$.",
            "",
            # In the PDF, columns of fixed widths that wrap (LaTeX would set a long table's
            # columns as wide as their longest cell); the HTML ignores this.
            "```{tabularcolumns} "
            + "".join(rf">{{\raggedright\arraybackslash}}\X{{{n}}}{{20}}" for n in (9, 8, 3)),
            "```",
            "",
            "| Statement | Verdict | Equation |",
            "| --- | --- | --- |",
        ]
        for record in records:
            what, said, where = _describe(record)
            lines.append(f"| {_cell(what)} | {_cell(said)} | {where} |")
        lines.append("")
    return "\n".join(lines)


def _iter_chapters(srcdir: Path, docnames: Iterable[str]) -> Iterator[tuple[Path, dict]]:
    for name in docnames:
        path = srcdir / f"{name}.ipynb"
        if path.exists():
            yield path, json.loads(path.read_text(encoding="utf-8"))


# Sphinx extension ---------------------------------------------------------------------------


class LedgerRecordRenderer:
    """A myst-nb MIME renderer that shows nothing for a ledger record.

    The record is for the ledger page, not for the reader of the chapter, whose output already
    shows the derivation or claim. Registered under the ``myst_nb.mime_renderers`` entry point
    (see ``pyproject.toml``), so that myst-nb does not warn about an unknown MIME type.
    """

    mime_priority_overrides = (("*", MIME, None),)

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        return [] if data.mime_type == MIME else None


#: The line in the ledger page that the generated tables replace.
PLACEHOLDER = "<!-- verification-ledger -->"


def _fill_ledger(app: Any, docname: str, source: list[str]) -> None:
    if PLACEHOLDER not in source[0]:
        return
    srcdir = Path(app.srcdir)
    # Reading order is the order of the table of contents; every notebook is a dependency,
    # so the page is rebuilt when any chapter's checks change.
    order = [d for d in app.env.found_docs if (srcdir / f"{d}.ipynb").exists()]
    toc = getattr(app.config, "external_toc_path", None)
    if toc:
        listed = re.findall(r"file:\s*(\S+)", (srcdir / toc).read_text(encoding="utf-8"))
        order = [d for d in listed if d in order] + sorted(set(order) - set(listed))
    chapters = []
    for path, notebook in _iter_chapters(srcdir, order):
        app.env.note_dependency(str(path))
        target, title = notebook_title(notebook)
        if getattr(app.config, "hide_solutions", False):
            # The student edition: checks made inside solutions would give the answers away.
            from lossgrad.sphinx_student import strip_solutions

            notebook = strip_solutions(notebook)
        chapters.append((target, title, notebook_records(notebook)))
    source[0] = source[0].replace(PLACEHOLDER, ledger_markdown(chapters))


def setup(app: Any) -> dict[str, Any]:
    """Register the ledger page generator with Sphinx."""
    app.connect("source-read", _fill_ledger)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
