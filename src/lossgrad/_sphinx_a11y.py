"""Sphinx extension: a bibliography that assistive technology reads as a list.

Docutils writes a page's citations as ``<div role="list">`` around entries with
``role="doc-biblioentry"``. DPUB-ARIA 1.1 deprecated that role because it is not a ``listitem``,
so the list has no items a screen reader can count or step through, and axe-core reports the
list as critical (``aria-required-children``). Loaded by the book's ``_config.yml``, this
extension writes each entry as ``role="listitem"`` instead, the markup DPUB-ARIA now
recommends; classes, ids and everything else in the page stay as they were.
"""

from __future__ import annotations

import types
from typing import Any

from lossgrad import __version__


class _ListItemCitations:
    """Translator mixin: citations are list items of the citation list."""

    def visit_citation(self, node: Any) -> None:
        if not isinstance(node.previous_sibling(), type(node)):
            self.body.append('<div role="list" class="citation-list">\n')
        self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def _add_mixin(app: Any) -> None:
    # Wrap whatever HTML translator is in place (the theme installs its own at this event, with
    # the default priority), so that both changes apply.
    if app.builder.format != "html":
        return
    name = app.builder.name
    base = app.registry.translators.get(name) or getattr(
        app.builder, "default_translator_class", None
    )
    if base is None:
        return
    translator = types.new_class("ListItemCitationTranslator", (_ListItemCitations, base), {})
    app.set_translator(name, translator, override=True)


def setup(app: Any) -> dict[str, Any]:
    """Register the translator change once the builder exists, after the theme's."""
    app.connect("builder-inited", _add_mixin, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": __version__}
