"""Links between the chapters and the API reference: from each function to the chapter that
derives it, and from each chapter to the functions it uses.

Loaded as a Sphinx extension, this module

* turns a chapter named by its title in double quotes in a docstring, the convention of
  lossgrad's docstrings (``Derived in "The logistic sigmoid".``), into a link to that chapter
  on the API page. The docstrings keep the plain title, which is what a reader of ``help()``
  or of the README sees; the titles are read from the chapters themselves, so a renamed
  chapter is followed;
* appends to each chapter a section "Functions used in this chapter": a link to the API entry
  of every public function (``lossgrad.__all__``) that the chapter's code cells import or call,
  found by reading the code (:func:`used_names`), and a link to each other module of
  ``lossgrad`` they import from (the derivations, checks and figures behind the prose);
* provides the ``lossgrad-modules`` directive, which lists every module of the package with the
  first paragraph of its docstring, each a target for ``:mod:`` references;
* resolves the names of lossgrad's own type aliases as written in its annotations
  (``Loss``, ``Result``, ``Reduction``) to their entries on the API page.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["chapter_titles", "link_chapter_titles", "used_names"]

#: The id and title of the section appended to each chapter that uses lossgrad.
SECTION_ID = "functions-used-in-this-chapter"
SECTION_TITLE = "Functions used in this chapter"
#: The reference target of the API page.
API_LABEL = "api"


# Reading the chapters ----------------------------------------------------------------------


def used_names(sources: Iterable[str]) -> set[str]:
    """The fully qualified ``lossgrad`` names that code imports or uses.

    Parameters
    ----------
    sources : iterable of str
        Python source, for example the code cells of a notebook, in order. IPython's own
        lines (magics such as ``%matplotlib inline``, shell escapes with ``!``) are left out
        before the rest is read; a cell that still does not parse is skipped.

    Returns
    -------
    set of str
        Every name imported from ``lossgrad`` or one of its modules, as ``module.name``, and
        every attribute reached through an imported ``lossgrad`` module
        (``lg.sigmoid`` after ``import lossgrad as lg`` is ``lossgrad.sigmoid``). A public
        function reached through the module that defines it is named as the public API names
        it (``softmax`` from ``lossgrad.numerics`` is ``lossgrad.softmax``), and a star import
        binds every public name of its module.

    Examples
    --------
    >>> for name in sorted(used_names([
    ...     "import lossgrad as lg\\nfrom lossgrad import softmax as sm, plotstyle",
    ...     "lg.sigmoid(x) + sm(z)\\nplotstyle.use()\\nfrom lossgrad.ledger import claim",
    ... ])):
    ...     print(name)
    lossgrad
    lossgrad.ledger.claim
    lossgrad.plotstyle
    lossgrad.plotstyle.use
    lossgrad.sigmoid
    lossgrad.softmax
    >>> sorted(used_names(["%matplotlib inline\\nfrom lossgrad.numerics import logsumexp as lse",
    ...                    "import lossgrad.losses as L\\nlse(z), L.bce_with_logits(u, p)"]))
    ['lossgrad.bce_with_logits', 'lossgrad.logsumexp', 'lossgrad.losses']
    """
    trees = [tree for source in sources if (tree := _parse_cell(source)) is not None]
    bound: dict[str, str] = {}
    used: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _is_lossgrad(alias.name):
                        name = alias.asname or alias.name.partition(".")[0]
                        bound[name] = alias.name if alias.asname else "lossgrad"
                        used.add(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_lossgrad(node.module):
                for alias in node.names:
                    if alias.name == "*":
                        bound.update((n, f"{node.module}.{n}") for n in _exported(node.module))
                        continue
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    used.add(f"{node.module}.{alias.name}")
    for tree in trees:
        for node in ast.walk(tree):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id in bound:
                used.add(".".join([bound[node.id], *reversed(chain)]))
    return {_public_name(name) or name for name in used}


def _parse_cell(source: str) -> ast.Module | None:
    """A code cell as Python: as written, or without the lines that only IPython reads."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    python = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    try:
        return ast.parse(python)
    except SyntaxError:
        return None


def _resolve(name: str) -> Any:
    """The object a dotted name under ``lossgrad`` refers to, or None if there is none."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        try:
            for attribute in parts[end:]:
                target = getattr(target, attribute)
        except AttributeError:
            return None
        return target
    return None


def _public_name(name: str) -> str | None:
    """``lossgrad.f`` if ``name`` is, by identity, the public function ``lossgrad.f``."""
    import lossgrad

    if name == "lossgrad" or not _is_lossgrad(name):
        return None
    target = _resolve(name)
    if target is None or inspect.ismodule(target):
        return None
    return next((f"lossgrad.{n}" for n in lossgrad.__all__ if getattr(lossgrad, n) is target),
                None)


def _exported(module: str) -> list[str]:
    """The names ``from module import *`` binds."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return []
    return list(getattr(found, "__all__", [n for n in vars(found) if not n.startswith("_")]))


def _is_lossgrad(module: str | None) -> bool:
    return module is not None and (module == "lossgrad" or module.startswith("lossgrad."))


def _code_cells(notebook: dict[str, Any]) -> list[str]:
    return ["".join(c["source"]) for c in notebook.get("cells", []) if c["cell_type"] == "code"]


def chapter_titles(srcdir: Path, docnames: Iterable[str]) -> dict[str, str]:
    """Each chapter notebook's title, mapped to its reference target (``ch-...``)."""
    from lossgrad.ledger import notebook_title

    titles = {}
    for docname in docnames:
        path = Path(srcdir, f"{docname}.ipynb")
        if path.exists():
            target, title = notebook_title(json.loads(path.read_text(encoding="utf-8")))
            if target and title:
                titles[title] = target
    return titles


def link_chapter_titles(text: str, titles: dict[str, str]) -> str:
    """Replace each chapter title in double quotes by a ``:ref:`` to the chapter.

    A title may be broken across lines, as docstrings wrap it.

    Examples
    --------
    >>> titles = {"The logistic sigmoid": "ch-sigmoid"}
    >>> link_chapter_titles('Derived in "The logistic\\n    sigmoid".', titles)
    'Derived in :ref:`ch-sigmoid`.'
    """
    for title, target in titles.items():
        words = r"\s+".join(re.escape(word) for word in title.split())
        text = re.sub(f'"{words}"', f":ref:`{target}`", text)
    return text


# Sphinx extension ---------------------------------------------------------------------------


def _remember_titles(app: Any, env: Any, docnames: list[str]) -> None:
    env.lossgrad_chapter_titles = chapter_titles(Path(app.srcdir), sorted(env.found_docs))


def _process_docstring(app: Any, what: str, name: str, obj: Any, options: Any,
                       lines: list[str]) -> None:
    if not name.startswith("lossgrad"):
        return
    titles = getattr(app.env, "lossgrad_chapter_titles", {})
    linked = link_chapter_titles("\n".join(lines), titles).split("\n")
    if linked != lines:
        lines[:] = linked
        # The API page follows a renamed chapter.
        for docname in app.env.found_docs:
            path = Path(app.srcdir, f"{docname}.ipynb")
            if path.exists():
                app.env.note_dependency(str(path))


def _public_functions() -> set[str]:
    import lossgrad

    return {f"lossgrad.{name}" for name in lossgrad.__all__}


def _modules() -> list[str]:
    """lossgrad's modules: first those its docstring names, in that order, then the rest."""
    import lossgrad

    found = [
        f"lossgrad.{m.name}"
        for m in pkgutil.iter_modules(lossgrad.__path__)
        if not m.name.startswith("_")
    ]
    named = re.findall(r":mod:`(lossgrad\.\w+)`", lossgrad.__doc__ or "")
    ordered = list(dict.fromkeys(m for m in named if m in found))
    return ordered + sorted(set(found) - set(ordered))


def _module_of(name: str, modules: set[str]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _xref(reftype: str, target: str, text: str, domain: str = "py") -> Any:
    from docutils import nodes
    from sphinx import addnodes

    classes = ["xref", domain, f"{domain}-{reftype}"]
    content = (nodes.literal(text, text, classes=classes) if domain == "py"
               else nodes.inline(text, text, classes=classes))
    return addnodes.pending_xref(
        "",
        content,
        refdomain=domain,
        reftype=reftype,
        reftarget=target,
        refexplicit=True,
        refwarn=True,
    )


def _append_used(app: Any, doctree: Any) -> None:
    """Append "Functions used in this chapter" to a chapter that uses lossgrad."""
    from docutils import nodes

    path = Path(app.srcdir, f"{app.env.docname}.ipynb")
    if not path.exists():
        return
    notebook = json.loads(path.read_text(encoding="utf-8"))
    if getattr(app.config, "hide_solutions", False):
        from lossgrad.sphinx_student import strip_solutions

        notebook = strip_solutions(notebook)
    used = used_names(_code_cells(notebook))
    functions = sorted(used & _public_functions())
    all_modules = set(_modules())
    modules = sorted({m for name in used - set(functions)
                      if (m := _module_of(name, all_modules)) is not None})
    chapter = doctree.next_node(nodes.section)
    if chapter is None or not (functions or modules):
        return
    section = nodes.section(ids=[SECTION_ID], names=[SECTION_TITLE.lower()])
    section += nodes.title(SECTION_TITLE, SECTION_TITLE)
    if functions:
        section += nodes.paragraph(
            "", "", nodes.Text("From lossgrad’s public API (see the "),
            _xref("ref", API_LABEL, "API reference", domain="std"), nodes.Text("):"),
        )
        items = nodes.bullet_list()
        for name in functions:
            items += nodes.list_item("", nodes.paragraph("", "", _xref("func", name, name)))
        section += items
    if modules:
        paragraph = nodes.paragraph("", "From the modules behind the book’s derivations, checks "
                                    "and figures: ")
        if not functions:  # the link to the API page that the functions' paragraph carries
            paragraph = nodes.paragraph(
                "", "", nodes.Text("From lossgrad’s modules (see the "),
                _xref("ref", API_LABEL, "API reference", domain="std"), nodes.Text("): "),
            )
        for n, name in enumerate(modules):
            if n:
                paragraph += nodes.Text(", ")
            paragraph += _xref("mod", name, name)
        paragraph += nodes.Text(".")
        section += paragraph
    chapter += section


def _signature_as_written(app: Any, what: str, name: str, obj: Any, options: Any,
                          signature: str | None, return_annotation: str | None) -> Any:
    """A lossgrad function's signature with its annotations as the source writes them.

    autodoc would evaluate them, and ``ArrayLike`` would become NumPy's union of a dozen
    private types; as written (lossgrad's modules use ``from __future__ import annotations``)
    they read as in the source, and lossgrad's own aliases link to their entries.
    """
    if what != "function" or not name.startswith("lossgrad"):
        return None
    from sphinx.util.inspect import stringify_signature

    written = inspect.signature(obj)
    returns = written.return_annotation
    return (
        stringify_signature(written, show_return_annotation=False),
        None if returns is inspect.Signature.empty else str(returns),
    )


def _resolve_type_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``Loss``, as an annotation writes it, to the API entry of lossgrad's alias."""
    if node.get("refdomain") != "py" or node["reftype"] != "class" or "." in node["reftarget"]:
        return None
    domain = env.get_domain("py")
    suffix = "." + node["reftarget"]
    matches = [
        name for name, entry in domain.objects.items()
        if entry.objtype == "type" and name.startswith("lossgrad.") and name.endswith(suffix)
    ]
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", matches[0], node,
                               contnode)


def _modules_directive() -> type:
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class LossgradModules(SphinxDirective):
        """Each module of lossgrad, a ``:mod:`` target, with its docstring's first paragraph."""

        def run(self) -> list:
            from docutils import nodes

            lines = []
            for name in _modules():
                module = importlib.import_module(name)
                summary = (module.__doc__ or "").strip().split("\n\n")[0]
                lines += [
                    f".. py:module:: {name}",
                    "",
                    f"``{name}``",
                    *(f"   {line.strip()}" for line in summary.splitlines()),
                    "",
                ]
            container = nodes.container(classes=["lossgrad-modules"])
            nested_parse_with_titles(self.state, StringList(lines, source="lossgrad-modules"),
                                     container)
            return container.children

    return LossgradModules


def setup(app: Any) -> dict[str, Any]:
    """Register the links between the chapters and the API page with Sphinx."""
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("env-before-read-docs", _remember_titles)
    # Before numpydoc reshapes the docstring (priority 500).
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
    # Before the table of contents of the page is collected (priority 500).
    app.connect("doctree-read", _append_used, priority=400)
    app.connect("autodoc-process-signature", _signature_as_written)
    app.connect("missing-reference", _resolve_type_alias)
    app.add_directive("lossgrad-modules", _modules_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
