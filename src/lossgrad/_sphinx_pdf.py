r"""The book's PDF edition: how it is laid out in LaTeX, and the PDF offered on every HTML page.

A Sphinx extension (listed in ``_config.yml``), for the book's build only; not part of the
package's API. ``make pdf`` builds the whole book as one PDF with Sphinx's LaTeX builder; this
module changes what that builder writes, where the HTML layout does not carry over to paper:

* a code cell tagged ``hide-input`` (code that only arranges a display, folded away online)
  prints its output without its code;
* each numbered part of the table of contents starts with a part page; the unnumbered back
  matter has unnumbered chapters, as online;
* sections of the root page after its table of contents (the licence) stay in the front
  matter instead of becoming chapters after the bibliography;
* the bibliography is printed in the "References" chapter, where the online book has it, not as
  an extra chapter at the end; a docstring's own numbered references stay under it;
* a table given column widths (the ledger's) wraps its cells and may run over pages, and a
  formula in it with a matrix (which cannot break across lines) that is wider than its column
  is scaled down to the column's width instead of running into the next column; its rows are
  not coloured (under the colours a matrix's left bracket was not drawn);
* a proof is set as text that starts with *Proof.* and ends with a square, not as a box with an
  empty title bar; a solution as text under a bold heading, so that its code can break across
  pages (in a box it cannot, and ran into the footer);
* a reference to an exercise by its page (from another chapter, or a solution's title) resolves:
  sphinx-exercise labels exercises ``exercise:<label>`` in LaTeX, which such references miss;
* the preamble fixes two defaults: the contents are called "Contents" (not after the first
  part), and ``\small`` in math (the derivations' justifications, for MathJax) is ignored.

For the HTML builder it adds the whole book's PDF to every page's download menu, next to the
page's own source (the ``.ipynb`` for a chapter), and copies the PDF into the site. The PDF is
offered only when it has been built (``_build/latex/<name>.pdf`` next to ``_build/html``), so
a site built without TeX Live has no broken link; when the PDF appears or disappears, every page
is written again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.texescape import escape as tex_escape

#: LaTeX macros used by the nodes that this module inserts, and fixes to Sphinx's defaults.
PREAMBLE = r"""
% --- lossgrad._sphinx_pdf ---
\usepackage{bookmark}
\makeatletter
% A part page for each numbered part of the table of contents, with its caption as written.
\newcommand{\lossgradpart}[1]{%
  \clearpage\thispagestyle{plain}%
  \phantomsection\addcontentsline{toc}{part}{#1}%
  \null\vfil{\centering\py@HeaderFamily\Huge #1\par}\vfil\clearpage}
% The back matter: chapters unnumbered, as online, and outside the last part in the bookmarks.
% Its long tables have no captions: a continued one says so without a "Table 9.1" of the last
% numbered chapter (Sphinx writes "\tablename\ \thetable{} \textendash{} continued ...").
\def\lossgrad@uptoendash#1\textendash{}
\newcommand{\lossgradbackmatter}{%
  \setcounter{secnumdepth}{-1}\bookmarksetup{startatroot}%
  \let\tablename\lossgrad@uptoendash}
\makeatother
% Inline math in a table cell of a given width (the ledger's): as usual if it fits the
% column, else scaled down to the column's width (a matrix cannot break across lines). The
% braces keep a matrix's & from the table while TeX skips the branch not taken.
\newsavebox\lossgradmathbox
\newcommand{\lossgradfitmath}[1]{%
  \sbox\lossgradmathbox{\(#1\)}%
  \ifdim\wd\lossgradmathbox>\linewidth
    {\resizebox{\linewidth}{!}{\usebox\lossgradmathbox}}%
  \else{\(#1\)}\fi}
% Sphinx names the contents after the first part's caption; it lists the whole book.
\addto\captionsenglish{\renewcommand{\contentsname}{Contents}}
% Derivations set each step's justification as {\small ...} inside the math, which MathJax
% honours; LaTeX cannot change the size in math mode, so there \small does nothing (silently).
\NewCommandCopy\lossgradtextsmall\small
\DeclareRobustCommand\small{\ifmmode\else\lossgradtextsmall\fi}
"""

#: Raw LaTeX put just before the bibliography once it is inside the "References" chapter: the
#: chapter already has its heading and its line in the contents.
BIBLIOGRAPHY_IN_PLACE = (
    r"\renewenvironment{sphinxthebibliography}[1]"
    r"{\def\chapter*##1{}\begin{thebibliography}{#1}}{\end{thebibliography}}"
)


def _raw(latex: str) -> nodes.raw:
    return nodes.raw("", latex + "\n", format="latex")


class FoldedCodeLeftOut(SphinxPostTransform):
    """A ``hide-input`` cell prints its output only, as the online page first shows it."""

    default_priority = 5
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("hide_mode") != "input" and "tag_hide-input" not in cell["classes"]:
                continue
            for child in list(cell.children):
                if isinstance(child, nodes.container) and (
                    child.get("nb_element") == "cell_code_source"
                    or "cell_input" in child["classes"]
                ):
                    cell.remove(child)


class TablesWithWidthsBreak(SphinxPostTransform):
    r"""A table given column widths (``tabularcolumns``) may run over pages, as the ledger's do,
    and its formulas fit their columns.

    Sphinx sets a table of up to 30 rows in one unbreakable block, which runs off the page when
    its rows hold paragraphs; a table without widths keeps Sphinx's choice. A formula with a
    matrix that is wider than its column is scaled down to fit (``\lossgradfitmath`` in the
    preamble): it cannot break across lines, and ran into the next column. Other formulas break
    at their relations and operators as usual. Its rows are not coloured: under Sphinx's
    alternating row colours a matrix lost its left bracket.
    """

    default_priority = 5
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for table in self.document.findall(nodes.table):
            previous = table.previous_sibling()
            if not isinstance(previous, addnodes.tabular_col_spec):
                continue
            if "longtable" not in table["classes"]:
                table["classes"].append("longtable")
            # Without Sphinx's alternating row colours: under them (colortbl, xelatex) the left
            # delimiter of a matrix, \left[ or even \Bigl[, is not drawn.
            if "nocolorrows" not in table["classes"]:
                table["classes"].append("nocolorrows")
            # A formula with a matrix (or any environment) cannot break across lines:
            # \lossgradfitmath scales it down if it is wider than its column. Other formulas
            # break at their relations and operators, as usual.
            for math in list(table.findall(nodes.math)):
                if r"\begin{" in math.astext():
                    math.replace_self(nodes.raw("", rf"\lossgradfitmath{{{math.astext()}}}",
                                                format="latex"))


class ProofAsText(SphinxPostTransform):
    """A sphinx-proof proof as *Proof.* ... followed by a square, not an untitled box."""

    default_priority = 5
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        try:
            from sphinx_proof.nodes import proof_node
        except ImportError:
            return
        for proof in list(self.document.findall(proof_node)):
            body = []
            for child in proof.children:
                body.extend(child.children if isinstance(child, nodes.admonition) else [child])
            if not body:
                continue
            first = body[0]
            if isinstance(first, nodes.paragraph) and first.children:
                text = first.children[0]
                if isinstance(text, nodes.Text) and str(text).startswith("Proof. "):
                    first.replace(text, nodes.Text(str(text)[len("Proof. ") :]))
                    first.insert(0, nodes.Text(" "))
                    first.insert(0, nodes.emphasis("Proof.", "Proof."))
            end = nodes.raw("", r"\hfill\ensuremath{\square}", format="latex")
            if isinstance(body[-1], nodes.paragraph):
                body[-1] += end
            else:
                body.append(nodes.paragraph("", "", end))
            proof.children = []
            proof.extend(body)


class ExerciseReferencesByPage(SphinxPostTransform):
    """Point a reference to an exercise by its page at the exercise's LaTeX label.

    Such a reference is one from another chapter, or the link in a solution's title.
    """

    default_priority = 25  # after Sphinx resolves references (10) and sphinx-exercise (20-22)
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        try:
            from sphinx_exercise.nodes import (
                exercise_enumerable_node,
                exercise_latex_number_reference,
            )
        except ImportError:
            return
        for ref in list(self.document.findall(nodes.reference)):
            uri = ref.get("refuri", "")
            if not uri.startswith("%") or "#" not in uri:
                continue
            label = uri.split("#", 1)[1]
            entry = registry.get(label)
            if not entry or not isinstance(entry.get("node"), exercise_enumerable_node):
                continue
            # Its text is already "Exercise 4.4"; the new node links it to exercise:<label>.
            # sphinx-exercise writes the node's text as is: a solution's title links
            # " Exercise 4.4", whose leading space would be lost inside the link.
            text = ref.astext()
            new = exercise_latex_number_reference("", text.strip(), refid=label)
            ref.replace_self(new)
            if text[:1].isspace():
                new.parent.insert(new.parent.index(new), nodes.Text(" "))


class SolutionsAsText(SphinxPostTransform):
    """A solution as text under a bold heading "Solution to Exercise 4.4", not as a box.

    Its code may then break across pages: a code block inside a box cannot (Sphinx keeps it
    whole), and a long one near the foot of a page ran into the page's footer.
    """

    default_priority = 26  # after its title links the exercise (ExerciseReferencesByPage)
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        try:
            from sphinx_exercise.nodes import solution_node
        except ImportError:
            return
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for solution in list(self.document.findall(solution_node)):
            title, *body = solution.children
            if not isinstance(title, nodes.title):
                continue
            # The label sphinx-exercise gives a solution in LaTeX, kept for references to it.
            docname = registry.get(solution.get("label"), {}).get("docname", "")
            label = _raw(rf"\phantomsection\label{{{docname}:{solution.get('label', '')}}}")
            heading = nodes.paragraph("", "", nodes.strong("", "", *title.children))
            heading["classes"].append("solution-heading")
            solution.replace_self([label, heading, *body, _raw(r"\par\medskip")])


def _start_of_file(document: nodes.Node, docname: str) -> addnodes.start_of_file | None:
    for sof in document.findall(addnodes.start_of_file):
        if sof["docname"] == docname:
            return sof
    return None


def _bibliography_docs(env: Any) -> set[str]:
    """The pages holding a sphinxcontrib-bibtex bibliography (the "References" chapter)."""
    try:
        return {key.docname for key in env.get_domain("cite").bibliographies}
    except Exception:  # no sphinxcontrib-bibtex: nothing to place
        return set()


class LocalCitationsStayLocal(SphinxPostTransform):
    """A docstring's own references (numpydoc's ``.. [1]``) stay under it, as online.

    Sphinx would gather them into the book's bibliography, each labelled [1] again. Outside the
    bibliography's chapter, a citation becomes a paragraph "[1] ..." where it stands, and a
    reference to it the text "[1]".
    """

    default_priority = 700  # before Sphinx gathers the citations (750)
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        keep = _bibliography_docs(self.env)
        for sof in list(self.document.findall(addnodes.start_of_file)):
            if sof["docname"] in keep:
                continue
            local = {}
            for citation in list(sof.findall(nodes.citation)):
                label = citation[0].astext() if isinstance(citation[0], nodes.label) else ""
                local.update(dict.fromkeys(citation["ids"], label))
                body = [c for c in citation.children if not isinstance(c, nodes.label)]
                if body and isinstance(body[0], nodes.paragraph):
                    body[0].insert(0, nodes.Text(f"[{label}] "))
                citation.replace_self(body)
            for ref in list(sof.findall(nodes.citation_reference)):
                if ref.get("refname") not in local or ref.parent is None:
                    continue
                parent = ref.parent
                if isinstance(parent, nodes.paragraph) and all(
                    isinstance(c, nodes.citation_reference) or not c.astext().strip()
                    for c in parent.children
                ):
                    # Only citation marks (numpydoc's list for LaTeX, under the references).
                    parent.parent.remove(parent)
                else:
                    ref.replace_self(nodes.inline("", f"[{local[ref['refname']]}]"))


class BibliographyInItsChapter(SphinxPostTransform):
    """Put the gathered bibliography at the end of the chapter that holds it online."""

    default_priority = 751  # just after Sphinx gathers the citations at the end (750)
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        from sphinx.builders.latex.nodes import thebibliography

        keep = _bibliography_docs(self.env)
        sof = next(
            (s for s in self.document.findall(addnodes.start_of_file) if s["docname"] in keep), None
        )
        sections = [c for c in sof.children if isinstance(c, nodes.section)] if sof else []
        if not sections:
            return
        for bibliography in list(self.document.findall(thebibliography)):
            bibliography.parent.remove(bibliography)
            sections[0] += _raw(BIBLIOGRAPHY_IN_PLACE)
            sections[0] += bibliography


class PartsAndFrontMatter(SphinxPostTransform):
    """Part pages from the table of contents' captions; the root page's sections up front."""

    default_priority = 760
    formats = ("latex",)

    def run(self, **kwargs: Any) -> None:
        root = self.env.get_doctree(self.config.root_doc)
        for toctree in root.findall(addnodes.toctree):
            files = toctree.get("includefiles") or []
            sof = _start_of_file(self.document, files[0]) if files else None
            if sof is None:
                continue
            caption = toctree.get("caption")
            if toctree.get("numbered"):
                if caption:
                    part = _raw(rf"\lossgradpart{{{tex_escape(caption)}}}")
                    sof.parent.insert(sof.parent.index(sof), part)
            else:
                sof.parent.insert(sof.parent.index(sof), _raw(r"\lossgradbackmatter"))
        self._front_matter()

    def _front_matter(self) -> None:
        top = next(iter(self.document.findall(nodes.section)), None)
        if top is None:
            return
        first_file = next(iter(top.findall(addnodes.start_of_file)), None)
        if first_file is None:
            return
        anchor = first_file
        while anchor.parent is not top:
            anchor = anchor.parent
        # The front matter has no running heading (it would repeat "Contents").
        titles = [i for i, c in enumerate(top.children) if isinstance(c, nodes.title)]
        top.insert(titles[0] + 1 if titles else 0, _raw(r"\markboth{}{}"))
        for section in [c for c in top.children if isinstance(c, nodes.section)]:
            top.remove(section)
            for node in self._flatten(section):
                top.insert(top.index(anchor), node)

    def _flatten(self, section: nodes.section) -> list[nodes.Node]:
        """A section as a rubric (an unnumbered heading) and its body, in order."""
        out: list[nodes.Node] = []
        for child in section.children:
            if isinstance(child, nodes.title):
                rubric = nodes.rubric("", "", *child.children, ids=section["ids"])
                out.append(rubric)
            elif isinstance(child, nodes.section):
                out.extend(self._flatten(child))
            else:
                out.append(child)
        return out


# HTML: the PDF in the download menu ------------------------------------------------------------


def _pdf_name(app: Any) -> str:
    documents = app.config.latex_documents
    target = documents[0][1] if documents else "book.tex"
    return str(Path(target).with_suffix(".pdf"))


def _built_pdf(app: Any) -> Path:
    """Where ``make pdf`` leaves the PDF: ``_build/latex`` next to ``_build/html``."""
    return Path(app.outdir).parent / "latex" / _pdf_name(app)


def _is_html(app: Any) -> bool:
    return app.builder.format == "html"


def _rewrite_pages_when_the_pdf_changes(app: Any, env: Any, added, changed, removed) -> list:
    if not _is_html(app):
        return []
    offered = _built_pdf(app).exists()
    if getattr(env, "lossgrad_pdf_offered", None) == offered:
        return []
    env.lossgrad_pdf_offered = offered
    return sorted(env.found_docs - set(added) - set(changed) - set(removed))


def _offer_pdf(app: Any, pagename: str, templatename: str, context: dict, doctree) -> None:
    if not _built_pdf(app).exists():
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](_pdf_name(app), 1),
                    "text": "Book (.pdf)",
                    "tooltip": "Download the whole book as one PDF",
                    "icon": "fas fa-book",
                    "label": "download-book-pdf-button",
                }
            )


def _copy_pdf(app: Any, exception: Exception | None) -> None:
    pdf = _built_pdf(app)
    if exception is None and _is_html(app) and pdf.exists():
        shutil.copyfile(pdf, Path(app.outdir) / pdf.name)


def _add_preamble(app: Any, config: Any) -> None:
    elements = dict(config.latex_elements)
    elements["preamble"] = elements.get("preamble", "") + PREAMBLE
    config.latex_elements = elements


def setup(app: Any) -> dict[str, Any]:
    """Register the LaTeX transforms and the PDF download with Sphinx."""
    for transform in (
        FoldedCodeLeftOut,
        TablesWithWidthsBreak,
        ProofAsText,
        ExerciseReferencesByPage,
        SolutionsAsText,
        LocalCitationsStayLocal,
        BibliographyInItsChapter,
        PartsAndFrontMatter,
    ):
        app.add_post_transform(transform)
    app.connect("config-inited", _add_preamble)
    app.connect("env-get-outdated", _rewrite_pages_when_the_pdf_changes)
    # After sphinx-book-theme builds the header buttons (priority 501).
    app.connect("html-page-context", _offer_pdf, priority=502)
    app.connect("build-finished", _copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
