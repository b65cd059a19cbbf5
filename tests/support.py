"""What the tests of the built site, the PDF and the student edition share.

Where the build is (``LOSSGRAD_SITE``, default ``_build/html``), how a check that needs a system
package or a build skips (with the reason) or, under ``CI=true``, fails instead, where Chromium
is and how it is started, and a local HTTP server for the site.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("LOSSGRAD_SITE", ROOT / "_build" / "html")).resolve()
IN_CI = os.environ.get("CI") == "true"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Headless, and nothing that would reach the network (updates, sync, first-run pages).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
#: The chapters that are notebooks, in the order of the table of contents.
CHAPTERS = [
    c["file"] for part in TOC["parts"] for c in part["chapters"]
    if (ROOT / f"{c['file']}.ipynb").exists()
]
#: Every page of the table of contents, as paths of the built site.
TOC_PAGES = [
    f"{name}.html"
    for name in [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
]


def require(condition: object, reason: str) -> None:
    """Skip with ``reason`` unless ``condition`` holds; under ``CI=true``, fail instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this check must run)")
        pytest.skip(reason)


def require_site(page: str = "book/index.html") -> None:
    """The built site, with ``page`` in it."""
    require((SITE / page).exists(), f"the book is not built at {SITE}; run `make book`")


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free local port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
