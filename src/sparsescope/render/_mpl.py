"""matplotlib for plots, written deterministically (the same data gives the same SVG/PNG bytes).

Plots are ``matplotlib.figure.Figure`` objects built without pyplot (no
global state, Agg canvas), so a researcher can restyle one and save it as
PDF; :func:`svg_text` fixes the SVG ids (``svg.hashsalt``), drops the date
and keeps text as text; :func:`png_bytes` writes a PNG with fixed metadata.
"""

from __future__ import annotations

import io
from typing import Any

STYLE = {"svg.hashsalt": "sparsescope", "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9,
         "axes.spines.top": False, "axes.spines.right": False}


def mpl() -> tuple[Any, Any]:
    """``(matplotlib, Figure)`` on the Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return matplotlib, Figure


def new_figure(**kw: Any):
    """A Figure created under :data:`STYLE`."""
    matplotlib, Figure = mpl()
    with matplotlib.rc_context(STYLE):
        return Figure(**kw)


def svg_text(fig) -> str:
    """The figure as SVG text, identical for identical input (no date, fixed ids)."""
    matplotlib, _ = mpl()
    buf = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (Agg), with no time stamp in the metadata."""
    matplotlib, _ = mpl()
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()
