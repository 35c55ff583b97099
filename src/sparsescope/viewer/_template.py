"""The page shell shared by the MLP and conv pages: ``shell.html`` (head with the
Content-Security-Policy that forbids any request, the two JSON blocks, the inline
script) around a body fragment (``page.html`` or ``conv.html``).

Filled in one pass, so nothing substituted (a title, say) is ever scanned again.
"""

from __future__ import annotations

import html
import re
from importlib import resources

_SLOT = re.compile(r"\{\{(TITLE|CSS|BODY|FLOWGRAPH|DATA|EXTRA|JS)\}\}")


def asset(name: str) -> str:
    """A file shipped beside this module (template, CSS, JS), as text."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def fill(body: str, *, title: str, css: str, flowgraph: str, data: str, js: str, simplified: str | None = None) -> str:
    """The complete page: ``body`` is the name of the body fragment; ``flowgraph`` and ``data``
    (and ``simplified``, the optional block of the exactly simplified graph) are already escaped
    for a ``<script type="application/json">`` block; ``title`` is raw text."""
    extra = "" if simplified is None else f'<script type="application/json" id="simplified">{simplified}</script>\n'
    parts = {"TITLE": html.escape(str(title), quote=True), "CSS": css, "BODY": asset(body),
             "FLOWGRAPH": flowgraph, "DATA": data, "EXTRA": extra, "JS": js}
    return _SLOT.sub(lambda m: parts[m.group(1)], asset("shell.html"))
