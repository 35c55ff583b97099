"""The flowgraph figure: whole graph, one output's subgraph, or one input's values.

Layers are columns left to right; within a column only live nodes (on some
input-to-output path, see :func:`sparsescope.analysis.live_mask`) are drawn,
ordered by :func:`order_nodes` to reduce crossings.  Each node is a card with
its id, its bounds ``<lo, hi>`` and, for one input ``x``, its value ``[v]``.

For image inputs (rank-2 input shape) the input column is one panel (the
used-input mask, or ``x``) and each first-layer unit shows its input weights
as a tile (one pixel per edge) instead of one line per pixel; a unit with
few inputs shows its dot product as text instead.  Flat inputs (e.g. 4
CartPole observations) are ordinary nodes with edges.

SVG hooks for tests and tools: cards are ``class="node"`` with
``data-node="h1.5"``; edge lines are ``class="edge"`` with ``data-src`` and
``data-dst``; a tile carries ``data-edges`` (its number of edges), so drawn
edges = lines + tile edges = the live graph's edge count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._errors import GraphError
from ..analysis import live_mask
from ..graph import Flowgraph, Layer, evaluate
from . import _colour as C
from ._layout import order_nodes
from ._scene import Scene, text_width

FEW_INPUTS = 4  # first-layer units with at most this many inputs get a dot-product label
TILE = 56.0  # px of a first-layer weight tile (2 px per pixel for 28x28)
PANEL_PX = 4.0  # px per pixel of the input panel
FS, FS_SMALL, LINE = 10.5, 9.0, 13.0
PAD, VGAP, GAP, MARGIN = 5.0, 8.0, 170.0, 24.0
MAX_SPACE = 90.0  # most extra space between two cards of a sparse column


def fmt(v: float) -> str:
    """A number for display: 2 decimals, never ``-0.00`` (display only; data stays exact)."""
    s = f"{float(v):.2f}"
    return "0.00" if s == "-0.00" else s


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


@dataclass
class _Card:
    layer: str
    index: int
    node_id: str
    lines: list[tuple[str, str, bool]]  # (text, class, bold)
    tiles: list[tuple[np.ndarray, str]] = field(default_factory=list)  # (rgba, class)
    dot: list[str] = field(default_factory=list)  # dot-product terms, one per line
    edges: int = 0  # edges drawn inside the card (tile pixels or dot terms)
    tip: str = ""
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    def measure(self) -> None:
        text_w = max(text_width(t, FS, bold) for t, _, bold in self.lines)
        slot_w, slot_h = 0.0, 0.0
        if self.tiles:
            slot_w, slot_h = len(self.tiles) * TILE + (len(self.tiles) - 1) * 4, TILE
        if self.dot:
            slot_w = max(text_width(t, FS_SMALL) for t in self.dot)
            slot_h = len(self.dot) * 11.0
        self.w = PAD * 2 + text_w + (slot_w + 6 if slot_w else 0)
        self.h = PAD * 2 + max(len(self.lines) * LINE, slot_h)


def graph_figure(
    graph: Flowgraph,
    *,
    output: int | None = None,
    x: np.ndarray | None = None,
    title: str | None = None,
) -> Scene:
    """Draw ``graph`` (whole, or ``output``'s subgraph; with values when ``x`` is given).

    ``x``: one input, ``input_shape`` or flat ``(n_in,)``.  Bounds come from
    ``graph.bounds``; without them the unit box (every input in [0, 1]) is used.
    """
    if graph.bounds is None:
        from ..bounds import annotate

        graph = annotate(graph, "unit")
    bounds = graph.bounds
    out = graph.output
    if output is not None and not (isinstance(output, (int, np.integer)) and 0 <= int(output) < out.size):
        raise GraphError(f"output {output!r} is not one of the {out.size} outputs (0..{out.size - 1})")
    nodes, edges = live_mask(graph, None if output is None else [int(output)])
    values: dict[str, np.ndarray] | None = None
    if x is not None:
        ev = evaluate(graph, np.asarray(x, dtype=np.float64))
        if ev.post[graph.input.name].shape[0] != 1:
            raise GraphError("graph_figure draws one input x at a time")
        values = {k: v[0] for k, v in ev.post.items()}
    inp = graph.input
    image_mode = len(inp.shape) == 2 and len(graph.layers) > 1
    order = order_nodes(graph, nodes, edges, fixed=(inp.name,) if image_mode else ())
    first = {layer.name for layer in graph.layers[1:] if layer.source == inp.name}

    # -- cards ---------------------------------------------------------------
    columns: list[tuple[Layer, list[_Card]]] = []
    for layer in graph.layers:
        if image_mode and layer is inp:
            continue
        cards = []
        for i in order[layer.name]:
            i = int(i)
            nid = layer.node_id(i)
            head = nid
            if layer.labels is not None:
                head = f"{nid} \u201c{_short(layer.labels[i])}\u201d"
            lo, hi = bounds.lo[layer.name][i], bounds.hi[layer.name][i]
            lines = [(head, "id", True), (f"<{fmt(lo)}, {fmt(hi)}>", "bounds", False)]
            if values is not None:
                lines.append((f"[{fmt(values[layer.name][i])}]", "value", True))
            card = _Card(layer.name, i, nid, lines, tip=f"{nid}: bounds <{lo:.6g}, {hi:.6g}>")
            if image_mode and layer.name in first:
                _first_layer_slot(card, layer, inp, edges[layer.name], values)
            card.measure()
            cards.append(card)
        columns.append((layer, cards))

    # -- geometry --------------------------------------------------------------
    head_y, y0 = 104.0, 140.0
    panel = _input_panel(inp, nodes[inp.name], values) if image_mode else None
    heights = [sum(c.h for c in cards) + VGAP * max(len(cards) - 1, 0) for _, cards in columns]
    body_h = max(heights + [panel["h"] if panel else 0.0, 120.0])
    x_cur = MARGIN
    col_x: list[tuple[float, float]] = []
    if panel:
        panel["x"], panel["y"] = x_cur, y0 + (body_h - panel["h"]) / 2
        col_x.append((x_cur, panel["w"]))
        x_cur += panel["w"] + GAP * 0.45
    for (layer, cards), h in zip(columns, heights):
        width = max([c.w for c in cards] + [text_width(_col_title(layer, graph), 12, True), 90.0])
        n = len(cards)
        space = min((body_h - h) / (n - 1), MAX_SPACE) if n > 1 else 0.0
        total = h + space * max(n - 1, 0)
        y = y0 + (body_h - total) / 2
        for c in cards:
            c.x, c.y, c.w = x_cur, y, width
            y += c.h + VGAP + space
        col_x.append((x_cur, width))
        x_cur += width + GAP
    width_total = x_cur - GAP + MARGIN
    legend_w = 760.0
    scene = Scene(max(width_total, legend_w + 2 * MARGIN), y0 + body_h + MARGIN + 6)

    # -- header: title, summary, legend ------------------------------------------
    n_nodes = int(sum(m.sum() for m in nodes.values()))
    n_edges = int(sum(m.sum() for m in edges.values()))
    scene.text(MARGIN, 22, title or _default_title(graph, output, values is not None), size=16, bold=True, cls="title")
    summary = _summary(graph, output, values, n_nodes, n_edges) + _ignored_inputs(inp, nodes[inp.name], output)
    scene.text(MARGIN, 44, summary, size=11, fill=C.MUTED, cls="summary")
    _legend(scene, MARGIN, 68, values is not None, image_mode, bounds.box)

    # -- column titles -------------------------------------------------------------
    it = iter(col_x)
    if panel:
        px, pw = next(it)
        used, n_in = int(nodes[inp.name].sum()), inp.size
        dims = "x".join(map(str, inp.shape))
        scene.text(px, head_y, f"{inp.name} \u00b7 {dims}", size=12, bold=True)
        scene.text(px, head_y + 16, f"{used} of {n_in} used ({n_in - used} omitted)", size=FS_SMALL, fill=C.MUTED)
    for (layer, cards), (cx, cw) in zip(columns, it):
        scene.text(cx, head_y, _col_title(layer, graph), size=12, bold=True)
        live, total = len(cards), layer.size
        if layer.kind == "input":
            sub = f"{live} of {total} used ({total - live} omitted)"
        else:
            gone = total - live
            sub = f"{live} of {total} live" + (f" ({gone} omitted)" if gone else "")
        scene.text(cx, head_y + 16, sub, size=FS_SMALL, fill=C.MUTED)

    # -- edges (under the cards) ------------------------------------------------------
    where = {(c.layer, c.index): c for _, cards in columns for c in cards}
    _edges(scene, graph, edges, where, values, skip=first if image_mode else set())

    # -- panel and cards ---------------------------------------------------------------
    if panel:
        _draw_panel(scene, panel)
    best = None
    if values is not None:
        ov = values[out.name]
        best = (out.name, int(np.argmax(ov)) if output is None else int(output))
    for _, cards in columns:
        for c in cards:
            _draw_card(scene, c, (c.layer, c.index) == best)
    return scene


def _col_title(layer: Layer, graph: Flowgraph) -> str:
    if layer.kind == "input":
        return f"{layer.name} \u00b7 inputs"
    act = "ReLU" if layer.activation == "relu" else "linear"
    role = "outputs" if layer is graph.output else "hidden"
    return f"{layer.name} \u00b7 {role} \u00b7 {act}"


def _default_title(graph: Flowgraph, output: int | None, per_input: bool) -> str:
    parts = ["Flowgraph"]
    if output is not None:
        out = graph.output
        lab = f" \u201c{_short(out.labels[output])}\u201d" if out.labels is not None else ""
        parts = [f"Subgraph of {out.node_id(output)}{lab}"]
    if per_input:
        parts.append("on one input")
    return " ".join(parts)


def _summary(graph: Flowgraph, output: int | None, values: dict | None, n_nodes: int, n_edges: int) -> str:
    bits = []
    meta = graph.meta
    for key, label in (("run", "run"), ("round", "round")):
        if key in meta and isinstance(meta[key], (str, int)):
            bits.append(f"{label} {_short(str(meta[key]), 24)}")
    if isinstance(meta.get("density"), (int, float)):
        bits.append(f"density {100 * float(meta['density']):.2f}%")
    bits.append(f"{n_nodes} vertices, {n_edges} edges drawn (of {graph.num_nodes}, {graph.num_edges})")
    if values is not None:
        out = graph.output
        ov = values[out.name]
        k = int(np.argmax(ov)) if output is None else int(output)
        lab = f" \u201c{_short(out.labels[k])}\u201d" if out.labels is not None else ""
        bits.append(("prediction " if output is None else "output ") + f"{out.node_id(k)}{lab} = {fmt(ov[k])}")
    return "  \u00b7  ".join(bits)


def _ignored_inputs(inp: Layer, used: np.ndarray, output: int | None) -> str:
    """For named inputs (e.g. CartPole's state variables): which have no path to the output(s), by name."""
    if inp.labels is None or bool(used.all()):
        return ""
    gone = [f"{inp.node_id(i)} \u201c{inp.labels[i]}\u201d" for i in np.flatnonzero(~used)]
    where = "this output" if output is not None else "any output"
    return f"  \u00b7  ignored (no path to {where}): " + ", ".join(gone)


def _legend(scene: Scene, x: float, y: float, per_input: bool, image_mode: bool, box: str) -> None:
    for colour, label in ((C.POSITIVE, "positive"), (C.NEGATIVE, "negative"), (C.ZERO, "zero")):
        scene.line(x, y, x + 22, y, stroke=colour, width=3)
        scene.text(x + 27, y, label, size=FS, fill=C.INK)
        x += 34 + text_width(label, FS)
    carried = "edge width proportional to |w * value carried|" if per_input else "edge width proportional to |w|"
    scene.text(x + 6, y, carried, size=FS, fill=C.INK)
    x += 30 + text_width(carried, FS)
    long_box = len(box) > 24  # a described box (e.g. an RL run's) gets the second line to itself
    what = ("<lo, hi>: node range over the input box below" if long_box
            else f"<lo, hi>: node range over input box \u2018{box}\u2019")
    scene.text(x, y, what, size=FS, fill=C.INK)
    x += 24 + text_width(what, FS)
    if per_input:
        scene.text(x, y, "[v]: node value on this input", size=FS, fill=C.INK)
    if image_mode:
        tile = ("tiles: weights w (left) and x * w (right) of each pixel" if per_input
                else "tiles: the unit's weight from each pixel")
        scene.text(MARGIN, y + 17, tile + ", each tile scaled to its own max |.|; numbers rounded to 2 decimals",
                   size=FS, fill=C.MUTED)
    else:
        note = f"input box: {box}; numbers rounded to 2 decimals" if long_box else "numbers rounded to 2 decimals"
        scene.text(MARGIN, y + 17, note, size=FS, fill=C.MUTED)


def _first_layer_slot(card: _Card, layer: Layer, inp: Layer, keep: np.ndarray, values: dict | None) -> None:
    sel = keep & (layer.dst == card.index)
    src, w = layer.src[sel], layer.weight[sel]
    card.edges = int(src.size)
    terms = []
    for k, (s, wv) in enumerate(zip(src.tolist(), w.tolist())):
        mag = fmt(abs(wv))
        sign = "-" if wv < 0 else "+"
        terms.append((f"{'-' if wv < 0 else ''}{mag}" if k == 0 else f"{sign} {mag}") + f" {inp.node_id(s)}")
    b = float(layer.bias[card.index])
    bias = [f"{'-' if b < 0 else '+'} {fmt(abs(b))}"] if fmt(b) != "0.00" else []
    card.tip += "\n= " + " ".join(terms + bias)
    if src.size <= FEW_INPUTS:
        card.dot = terms + bias
        return
    dense = np.zeros(inp.size)
    dense[src] = w
    card.tiles.append((C.signed_tile(dense.reshape(inp.shape)), "tile weights"))
    if values is not None:
        card.tiles.append((C.signed_tile((dense * values[inp.name]).reshape(inp.shape)), "tile carried"))


def _input_panel(inp: Layer, used: np.ndarray, values: dict | None) -> dict:
    rows, cols = inp.shape
    big_w = cols * PANEL_PX
    panel = {"w": big_w + 2 * PAD, "used": used.reshape(inp.shape), "x_img": None, "cols": cols, "rows": rows}
    h = rows * PANEL_PX + LINE + 2 * PAD
    if values is not None:
        panel["x_img"] = values[inp.name].reshape(inp.shape)
        h += rows * PANEL_PX / 2 + LINE + 6
    panel["h"] = h
    return panel


def _draw_panel(scene: Scene, p: dict) -> None:
    x, y = p["x"], p["y"]
    scene.rect(x, y, p["w"], p["h"], fill=C.PANEL, stroke=C.CARD_EDGE, rx=4, cls="panel")
    big_w, big_h = p["cols"] * PANEL_PX, p["rows"] * PANEL_PX
    cy = y + PAD
    if p["x_img"] is not None:
        scene.image(x + PAD, cy, big_w, big_h, C.ink_tile(p["x_img"]), cls="input-image", title="input x")
        scene.text(x + PAD, cy + big_h + 8, "input x", size=FS_SMALL, fill=C.MUTED)
        cy += big_h + LINE + 6
        scene.image(x + PAD, cy, big_w / 2, big_h / 2, C.mask_tile(p["used"]), cls="input-mask",
                    title="inputs used by the drawn graph")
        scene.text(x + PAD, cy + big_h / 2 + 8, "inputs used", size=FS_SMALL, fill=C.MUTED)
    else:
        scene.image(x + PAD, cy, big_w, big_h, C.mask_tile(p["used"]), cls="input-mask",
                    title="inputs used by the drawn graph")
        scene.text(x + PAD, cy + big_h + 8, "inputs used (dark)", size=FS_SMALL, fill=C.MUTED)


def _draw_card(scene: Scene, c: _Card, highlight: bool) -> None:
    data = {"node": c.node_id}
    if c.edges:
        data["edges"] = c.edges
    scene.rect(c.x, c.y, c.w, c.h, fill="#fffbe6" if highlight else C.CARD, stroke=C.INK if highlight else C.CARD_EDGE,
               stroke_width=2 if highlight else 1, rx=4, cls=f"node layer-{c.layer}", data=data, title=c.tip)
    tx = c.x + PAD
    if c.tiles:
        ty = c.y + (c.h - TILE) / 2
        for rgba, cls in c.tiles:
            scene.image(tx, ty, TILE, TILE, rgba, cls=cls, data={"node": c.node_id})
            tx += TILE + 4
        tx += 2
    elif c.dot:
        ty = c.y + (c.h - len(c.dot) * 11.0) / 2 + 5.5
        for t in c.dot:
            scene.text(tx, ty, t, size=FS_SMALL, fill=C.INK, cls="dot", data={"node": c.node_id})
            ty += 11.0
        tx += max(text_width(t, FS_SMALL) for t in c.dot) + 6
    ty = c.y + (c.h - len(c.lines) * LINE) / 2 + LINE / 2
    for text, cls, bold in c.lines:
        fill = C.INK if cls != "bounds" else C.MUTED
        scene.text(tx, ty, text, size=FS, bold=bold, fill=fill, cls=cls, data={"node": c.node_id})
        ty += LINE


def _edges(scene: Scene, graph: Flowgraph, edges: dict, where: dict, values: dict | None, skip: set) -> None:
    """Edge curves from the right of the source card to the left of the target card.

    Width and opacity scale with ``|w|`` (or ``|w * source value|`` for one
    input) relative to the largest drawn edge; weakest are drawn first so
    strong edges stay on top.
    """
    rows = []
    for layer in graph.layers[1:]:
        if layer.name in skip:
            continue
        keep = edges[layer.name]
        src, dst, w = layer.src[keep], layer.dst[keep], layer.weight[keep]
        carried = w * values[layer.source][src] if values is not None else w
        rows.append((layer, src, dst, w, carried))
    if not rows:
        return
    peak = max((float(np.abs(r[4]).max()) for r in rows if r[4].size), default=0.0) or 1.0
    src_layer = {layer.name: graph.layer(layer.source) for layer, *_ in rows}
    # many edges: fade weak ones harder so the strong paths stay readable
    crowded = sum(r[1].size for r in rows) > 300
    power, base = (1.6, 0.12) if crowded else (1.0, 0.3)
    for layer, src, dst, w, carried in rows:
        s_layer = src_layer[layer.name]
        mag = np.abs(carried) / peak
        for k in np.lexsort((np.arange(mag.size), mag)).tolist():
            a, b = where[(s_layer.name, int(src[k]))], where[(layer.name, int(dst[k]))]
            v = float(carried[k])
            m = float(mag[k]) ** power
            colour = C.sign_colour(v)
            sid, did = s_layer.node_id(int(src[k])), layer.node_id(int(dst[k]))
            tip = f"{sid} \u2192 {did}: w = {float(w[k]):.4g}"
            if values is not None:
                tip += f", carries {v:.4g}"
            scene.curve(a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2, stroke=colour,
                        width=0.6 + 3.4 * m if v != 0 else 0.6, opacity=base + (0.9 - base) * m if v != 0 else 0.45,
                        cls="edge", data={"src": sid, "dst": did}, title=tip)
