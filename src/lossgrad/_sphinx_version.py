"""Sphinx extension: the book's version is the package's, ``lossgrad.__version__``.

The book and the package are one work with one version number, kept in one place
(``src/lossgrad/__init__.py``). Loaded by the book's ``_config.yml``, this extension copies it
into Sphinx's ``version`` and ``release``, so that a page can show it (the "How to cite" page
reads ``{{ env.config.release }}``) and the PDF's title page carries it.
"""

from __future__ import annotations

from typing import Any

from lossgrad import __version__


def _set_version(app: Any, config: Any) -> None:
    config.version = config.release = __version__


def setup(app: Any) -> dict[str, Any]:
    """Register the hook that sets ``version`` and ``release`` once the configuration is read."""
    app.connect("config-inited", _set_version)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": __version__}
