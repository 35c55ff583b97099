"""The words on a flowgraph figure: number formats, titles, the summary line, the legend.

Every string is measured with the metrics of the font the SVG names
(:func:`~sparsescope.render._fonts.text_width`), so callers can size the
figure to fit its text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Flowgraph
from . import _colour as C
from ._fonts import text_width
from ._scene import Scene

FS, FS_SMALL = 10.5, 9.0


def fmt(v: float) -> str:
    """A number for display: 2 decimals, never ``-0.00`` (display only; data stays exact)."""
    s = f"{float(v):.2f}"
    return "0.00" if s == "-0.00" else s


def signed(v: float) -> str:
    """``+0.12`` / ``\u22120.12`` for a term in a sum (display only)."""
    s = fmt(abs(v))
    return ("\u2212" if v < 0 and s != "0.00" else "+") + s


def full(v: float) -> str:
    """Full precision (shortest round trip), for tooltips and data attributes."""
    return repr(float(v))


def short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def label_of(graph: Flowgraph, k: int) -> str:
    out = graph.output
    return f" \u201c{short(out.labels[k])}\u201d" if out.labels is not None else ""


def default_title(graph: Flowgraph, output: int | None, input_index: int | None, input_label: str | None,
                  per_input: bool) -> str:
    """What the figure shows, then the run and round it comes from."""
    if output is not None:
        what = f"Subgraph of {graph.output.node_id(output)}{label_of(graph, output)}"
    else:
        what = "Flowgraph"
    if per_input:
        img = f"test image #{input_index}" if input_index is not None else "one input"
        lab = f" (true label \u201c{short(str(input_label))}\u201d)" if input_label is not None else ""
        what += f" on {img}{lab}"
    meta = graph.meta
    where = []
    if isinstance(meta.get("run"), str):
        where.append(f"run {short(meta['run'], 40)}")
    if isinstance(meta.get("round"), (int, np.integer)):
        where.append(f"round {int(meta['round'])}")
    return what + (" \u00b7 " + ", ".join(where) if where else "")


def summary(graph: Flowgraph, box: str, output: int | None, values: dict | None, n_nodes: int, n_edges: int) -> str:
    """Density, accuracy, box, what is drawn, and the prediction on one input."""
    bits = []
    meta = graph.meta
    if isinstance(meta.get("density"), (int, float)):
        bits.append(f"density {100 * float(meta['density']):.2f}%")
    if isinstance(meta.get("test_accuracy"), (int, float)):
        bits.append(f"test accuracy {100 * float(meta['test_accuracy']):.1f}%")
    bits.append(f"bounds over box \u2018{short(box, 16)}\u2019")
    bits.append(f"{n_nodes} nodes, {n_edges} edges drawn (of {graph.num_nodes}, {graph.num_edges})")
    if values is not None:
        out = graph.output
        ov = values[out.name]
        k = int(np.argmax(ov)) if output is None else int(output)
        bits.append(("prediction " if output is None else "output ") + f"{out.node_id(k)}{label_of(graph, k)} = {fmt(ov[k])}")
    return "  \u00b7  ".join(bits)


def legend(scene: Scene, x0: float, y: float, *, per_input: bool, image_mode: bool, box: str, vmax: float | None,
           marks: dict[str, bool]) -> float:
    """Draw the legend (two or three rows) from ``(x0, y)``; returns the right edge it reached.

    ``vmax``: the shared colour scale of all tiles (a colour bar is drawn), or None
    (each tile on its own scale).  ``marks``: which card styles occur (``off``, ``constant``).
    """
    x = x0
    right = x0
    items: list[tuple[str, Any]] = []
    for colour, label in ((C.POSITIVE, "positive"), (C.NEGATIVE, "negative"), (C.ZERO, "zero")):
        scene.line(x, y, x + 22, y, stroke=colour, width=3)
        scene.text(x + 27, y, label, size=FS, fill=C.INK)
        x += 38 + text_width(label, FS)
    carried = "edge width \u221d |w \u00d7 value carried|" if per_input else "edge width \u221d |w|"
    items.append((carried, None))
    items.append((f"<lo, hi>: range over input box \u2018{short(box, 16)}\u2019", None))
    for text, _ in items:
        scene.text(x, y, text, size=FS, fill=C.INK)
        x += 18 + text_width(text, FS)
    right = max(right, x)
    # row 2: what a card says
    x, y2 = x0, y + 17
    rule = ("[v] = activation(bias + sum of the drawn edges into the node); every drawn node adds up"
            if per_input else "each node = activation(bias b + sum of its drawn incoming edges); every drawn node adds up")
    scene.text(x, y2, rule, size=FS, fill=C.INK)
    right = max(right, x + text_width(rule, FS))
    x = x0
    y3 = y2 + 17
    parts = []
    if marks.get("off"):
        scene.rect(x, y3 - 5, 16, 10, fill=C.OFF_FILL, stroke=C.ZERO, rx=2)
        t = f"grey card: ReLU always off over box \u2018{short(box, 16)}\u2019 (exactly 0, edges carry 0)"
        scene.text(x + 21, y3, t, size=FS, fill=C.INK)
        x += 21 + text_width(t, FS) + 18
    if marks.get("constant"):
        scene.rect(x, y3 - 5, 16, 10, fill=C.CONST_FILL, stroke=C.CARD_EDGE, rx=2)
        t = "blue card: constant unit (no input path, bias only; drawn because it is nonzero)"
        scene.text(x + 21, y3, t, size=FS, fill=C.INK)
        x += 21 + text_width(t, FS) + 18
    if x > x0:
        right = max(right, x)
        y3 += 17
    x = x0
    if image_mode:
        tiles = ("tiles: weights w (left) and x \u00d7 w (right) of each pixel" if per_input
                 else "tiles: the unit's weight from each pixel")
        if vmax is None:
            parts.append(tiles + ", each tile scaled to its own max |.|")
        else:
            parts.append(tiles + ", one colour scale for all tiles:")
    parts.append("numbers rounded to 2 decimals (full precision in tooltips and the JSON)")
    text = "; ".join(parts[:1]) if image_mode and vmax is not None else "; ".join(parts)
    scene.text(x, y3, text, size=FS, fill=C.MUTED)
    x += text_width(text, FS) + 8
    if image_mode and vmax is not None:
        x = colour_bar(scene, x, y3, vmax)
        note = "; " + parts[-1]
        scene.text(x, y3, note, size=FS, fill=C.MUTED)
        x += text_width(note, FS)
    right = max(right, x)
    return right


def colour_bar(scene: Scene, x: float, y: float, vmax: float, width: float = 120.0) -> float:
    """A horizontal colour bar ``-vmax .. 0 .. +vmax`` starting at ``x``, centred on ``y``; returns its right end."""
    lo = f"\u2212{fmt(vmax)}"
    scene.text(x, y, lo, size=FS_SMALL, fill=C.INK)
    x += text_width(lo, FS_SMALL) + 4
    rgba, vals = C.colour_bar(vmax)
    scene.image(x, y - 5, width, 10, rgba, cls="colour-bar", title=f"shared colour scale: \u00b1{full(vmax)}", values=vals)
    scene.rect(x, y - 5, width, 10, fill=None, stroke=C.CARD_EDGE, stroke_width=0.5)
    scene.text(x + width / 2, y + 12, "0", size=FS_SMALL - 1, fill=C.MUTED, anchor="middle")
    x += width + 4
    hi = f"+{fmt(vmax)}"
    scene.text(x, y, hi, size=FS_SMALL, fill=C.INK)
    return x + text_width(hi, FS_SMALL) + 2
