"""The verification ledger: claims fail loudly, records survive a notebook, and every display in
a chapter's prose points at a check."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from lossgrad.derivation import Derivation, identity
from lossgrad.ledger import (
    MIME,
    PLACEHOLDER,
    ClaimError,
    claim,
    ledger_markdown,
    notebook_records,
    notebook_title,
)
from lossgrad.symbolic import sigmoid, u

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))

# A display in prose must be preceded by a MyST comment naming its check, or saying it is
# notation or a definition.
MARKER = re.compile(r"^%\s*(checked:\s*(\S+)|definition|notation)\s*$")


def test_a_false_claim_stops_the_chapter():
    with pytest.raises(ClaimError, match="at 3 points"):
        claim(
            "$\\sigma(u) < 1/2$ everywhere", bool(np.all(np.array([0.1, 0.7]) < 0.5)), "at 3 points"
        )


@pytest.mark.parametrize("holds", [np.array([True, True]), 1, 0.0, "yes", None])
def test_a_claim_needs_a_truth_value_not_something_truthy(holds):
    with pytest.raises(TypeError, match="holds must be a boolean"):
        claim("anything", holds, "somehow")


def test_a_claim_says_how_it_was_checked():
    with pytest.raises(TypeError, match="how"):
        claim("anything", True, " ")
    record = claim(
        "$\\lim_{u\\to\\infty} \\sigma(u) = 1$",
        sp.limit(sigmoid(u), u, sp.oo) != 2,
        "sympy limit",
        proved=True,
    ).record()
    assert record == {
        "kind": "claim",
        "statement": "$\\lim_{u\\to\\infty} \\sigma(u) = 1$",
        "method": "proved",
        "verdict": "proved symbolically: sympy limit",
    }


def test_a_derivation_carries_its_record_in_its_display():
    d = Derivation(sigmoid(-u), lhs=r"\sigma(-u)").step(1 - sigmoid(u), "symmetry")
    bundle = d._repr_mimebundle_()
    assert {"text/latex", "text/plain", MIME} <= set(bundle)
    record = bundle[MIME]
    assert record["kind"] == "derivation"
    assert record["name"].startswith(r"\sigma(-u) = ")
    assert record["steps"] == [
        {"why": "symmetry", "method": "proved", "verdict": "proved symbolically"}
    ]


def _notebook_with(*outputs):
    return {
        "cells": [
            {"cell_type": "markdown", "source": ["(ch-x)=\n# A chapter\n"]},
            {"cell_type": "code", "source": [], "outputs": list(outputs)},
        ]
    }


def test_records_are_read_back_with_their_glue_labels():
    d = identity(sigmoid(-u), 1 - sigmoid(u), "symmetry")
    glued = {
        "output_type": "display_data",
        "data": d._repr_mimebundle_(),
        "metadata": {"scrapbook": {"name": "eq-sym", "mime_prefix": ""}},
    }
    shown = {
        "output_type": "display_data",
        "data": claim("c", True, "h")._repr_mimebundle_(),
        "metadata": {},
    }
    plain = {"output_type": "stream", "name": "stdout", "text": "no record"}
    notebook = json.loads(json.dumps(_notebook_with(glued, shown, plain)))
    records = notebook_records(notebook)
    assert [r.label for r in records] == ["eq-sym", None]
    assert [r.methods for r in records] == [["proved"], ["numeric"]]
    assert notebook_title(notebook) == ("ch-x", "A chapter")
    page = ledger_markdown([("ch-x", "A chapter", records)])
    assert "1 statements proved symbolically, 1 checked numerically" in page
    assert "{eq}`eq-sym`" in page and "| c | checked numerically: h |" in page


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_display_in_the_prose_names_its_check(path):
    notebook = json.loads(path.read_text())
    labels = {r.label for r in notebook_records(notebook) if r.label}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        lines = "".join(cell["source"]).splitlines()
        inside = False
        for n, line in enumerate(lines):
            count = line.count("$$")
            if count and not inside:
                marker = MARKER.match(lines[n - 1].strip() if n else "")
                assert marker, f"{path.name}: display without '% checked: label':\n{line}"
                named = marker.group(2)
                assert named is None or named in labels, (
                    f"{path.name}: '% checked: {named}' names no check glued in this chapter"
                )
            inside = inside != (count % 2 == 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_equation_is_a_checked_record(path):
    notebook = json.loads(path.read_text())
    recorded = {r.label for r in notebook_records(notebook)}
    prose = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    for name in re.findall(r"```\{glue:math\} (\S+)", prose):
        assert name in recorded, f"{path.name}: glued equation {name} carries no check record"


def test_the_ledger_page_is_generated():
    page = (BOOK / "ledger.md").read_text()
    assert PLACEHOLDER in page
    built = ROOT / "_build" / "html" / "book" / "ledger.html"
    if not built.exists():
        pytest.skip("the book is not built (make book builds it)")
    html = built.read_text()
    assert PLACEHOLDER not in html
    for path in NOTEBOOKS:
        title = notebook_title(json.loads(path.read_text()))[1]
        if notebook_records(path):
            assert title.split()[0] in html, f"ledger page lacks {path.name}"
    assert "proved symbolically" in html


@pytest.mark.parametrize("proved", ["no", 1, None])
def test_proved_must_be_a_boolean_so_that_a_check_is_never_recorded_as_a_proof(proved):
    with pytest.raises(TypeError, match="proved must be True or False"):
        claim("anything", True, "somehow", proved=proved)
