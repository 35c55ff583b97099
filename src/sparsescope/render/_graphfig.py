"""The flowgraph figure: whole graph, one output's subgraph, or one input's values.

What is drawn is the *live graph* of the chosen outputs
(:func:`sparsescope.analysis.live_mask`): nodes with a path to an output that
have a path from an input or a nonzero constant value (bias-only units are
drawn, as blue "constant" cards), and every edge between them.  So every
drawn node equals ``activation(bias + sum of its drawn incoming edges)`` for
every input: the figure adds up.  ReLU units the bounds prove always off over
the input box are drawn grey (``off="mark"``, default) or left out
(``off="hide"``; they are exactly 0 there, so the sums still add up for every
input in the box; on one input they are only hidden when 0 on it too).

Layers are columns left to right, units ordered by :func:`order_nodes` to
reduce crossings, outputs in class order.  Each node is a card with its id,
its bounds ``<lo, hi>``, its bias ``b`` and, for one input ``x``, its value
``[v]`` with the sum ``bias + edges`` it comes from.

For image inputs (rank-2 input shape) the input column is one panel (the
used-input mask, or ``x``) and each first-layer unit shows its input weights
as a tile (one pixel per edge) instead of one line per pixel; a unit with
few inputs shows its dot product as text instead.  Tiles use each their own
colour scale, or one shared scale with a colour bar (``shared_scale=True``).

Display-list hooks for tests and tools (written as SVG ``data-*``): cards are
``class="node"`` with ``data-node``, ``data-bias`` (full precision) and, per
input, ``data-value``; edges are ``class="edge"`` with ``data-src``,
``data-dst`` and ``data-w``; a card's ``data-edges`` counts the edges drawn
inside it (tile pixels or dot terms); tiles carry the numbers they depict
(:meth:`Scene.values_of`) and dot terms ``data-src``/``data-w``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._errors import GraphError
from ..analysis import box_states, constant_values, live_mask
from ..graph import Flowgraph, Layer, evaluate
from . import _colour as C
from ._figtext import FS, FS_SMALL, default_title, fmt, full, legend, short, signed, summary
from ._fonts import text_width
from ._layout import order_nodes
from ._scene import Scene

FEW_INPUTS = 4  # first-layer units with at most this many inputs get a dot-product label
TILE = 56.0  # px of a first-layer weight tile (2 px per pixel for 28x28)
PANEL_PX = 4.0  # px per pixel of the input panel
LINE = 13.0
PAD, VGAP, GAP, MARGIN = 6.0, 8.0, 170.0, 24.0
MAX_SPACE = 90.0  # most extra space between two cards of a sparse column
TIP_TERMS = 48  # tooltips list at most this many terms of an expression
OFF_MODES = ("mark", "hide")


@dataclass
class _Card:
    layer: str
    index: int
    node_id: str
    lines: list[tuple[str, str, bool]]  # (text, class, bold)
    data: dict = field(default_factory=dict)
    style: str = "live"  # live | off | constant
    tiles: list[tuple[np.ndarray, str, np.ndarray]] = field(default_factory=list)  # (rgba, class, values)
    dot: list[tuple[str, dict]] = field(default_factory=list)  # dot-product terms with their data
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
            slot_w = max(text_width(t, FS_SMALL) for t, _ in self.dot)
            slot_h = len(self.dot) * 11.0
        self.w = PAD * 2 + text_w + (slot_w + 8 if slot_w else 0)
        self.h = PAD * 2 + max(len(self.lines) * LINE, slot_h)


def graph_figure(
    graph: Flowgraph,
    *,
    output: int | None = None,
    x: np.ndarray | None = None,
    title: str | None = None,
    input_index: int | None = None,
    input_label: str | None = None,
    shared_scale: bool = False,
    off: str = "mark",
) -> Scene:
    """Draw ``graph`` (whole, or ``output``'s subgraph; with values when ``x`` is given).

    ``x``: one input, ``input_shape`` or flat ``(n_in,)``; ``input_index`` /
    ``input_label``: where it comes from (test-set index, true label), shown in
    the title.  Bounds come from ``graph.bounds``; without them the unit box
    (every input in [0, 1]) is used.  ``shared_scale``: one colour scale (and a
    colour bar) for all weight tiles.  ``off``: ``"mark"`` or ``"hide"`` units
    proven always off over the box.
    """
    if off not in OFF_MODES:
        raise GraphError(f"off must be one of {OFF_MODES}, not {off!r}")
    if graph.bounds is None:
        from ..bounds import annotate

        graph = annotate(graph, "unit")
    bounds = graph.bounds
    out = graph.output
    if output is not None and not (isinstance(output, (int, np.integer)) and 0 <= int(output) < out.size):
        raise GraphError(f"output {output!r} is not one of the {out.size} outputs (0..{out.size - 1})")
    values: dict[str, np.ndarray] | None = None
    pre: dict[str, np.ndarray] | None = None
    if x is not None:
        ev = evaluate(graph, np.asarray(x, dtype=np.float64))
        if ev.post[graph.input.name].shape[0] != 1:
            raise GraphError("graph_figure draws one input x at a time")
        values = {k: v[0] for k, v in ev.post.items()}
        pre = {k: v[0] for k, v in ev.pre.items()}
    nodes, edges, offs = _drawn(graph, output, values, off)
    const = constant_values(graph)
    inp = graph.input
    image_mode = len(inp.shape) == 2 and len(graph.layers) > 1
    order = order_nodes(graph, nodes, edges, fixed=(inp.name, out.name) if image_mode else (out.name,))
    first = {layer.name for layer in graph.layers[1:] if layer.source == inp.name}
    vmax = _shared_vmax(graph, first, edges, values) if (shared_scale and image_mode) else None

    # -- cards ---------------------------------------------------------------
    columns: list[tuple[Layer, list[_Card]]] = []
    for layer in graph.layers:
        if image_mode and layer is inp:
            continue
        cards = [_card(graph, layer, int(i), offs, const, values, pre) for i in order[layer.name]]
        if image_mode and layer.name in first:
            for card in cards:
                _first_layer_slot(card, layer, inp, edges[layer.name], values, vmax)
        for card in cards:
            card.measure()
        columns.append((layer, cards))

    # -- header: title, summary, legend ------------------------------------------
    n_nodes = int(sum(m.sum() for m in nodes.values()))
    n_edges = int(sum(m.sum() for m in edges.values()))
    head_title = title or default_title(graph, output, input_index, input_label, values is not None)
    head_sum = summary(graph, bounds.box, output, values, n_nodes, n_edges)
    marks = {"off": any(c.style == "off" for _, cs in columns for c in cs),
             "constant": any(c.style == "constant" for _, cs in columns for c in cs)}
    probe = Scene(1, 1)  # measure the legend before the real scene exists
    legend_right = legend(probe, MARGIN, 0, per_input=values is not None, image_mode=image_mode, box=bounds.box,
                          vmax=vmax, marks=marks)
    legend_rows = 3 + (1 if marks["off"] or marks["constant"] else 0)
    head_y = 68 + 17 * (legend_rows - 1) + 24
    y0 = head_y + 36

    # -- geometry --------------------------------------------------------------
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
        width = max([c.w for c in cards] + [text_width(_col_title(layer, graph), 12, True),
                                            text_width(_col_sub(layer, len(cards), output is not None), FS_SMALL), 90.0])
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
    text_right = max(legend_right, MARGIN + text_width(head_title, 16, True), MARGIN + text_width(head_sum, 11))
    scene = Scene(max(width_total, text_right + MARGIN), y0 + body_h + MARGIN + 6)
    scene.text(MARGIN, 22, head_title, size=16, bold=True, cls="title")
    scene.text(MARGIN, 44, head_sum, size=11, fill=C.MUTED, cls="summary")
    legend(scene, MARGIN, 68, per_input=values is not None, image_mode=image_mode, box=bounds.box, vmax=vmax,
           marks=marks)

    # -- column titles -------------------------------------------------------------
    it = iter(col_x)
    if panel:
        px, _pw = next(it)
        used, n_in = int(nodes[inp.name].sum()), inp.size
        dims = "\u00d7".join(map(str, inp.shape))
        scene.text(px, head_y, f"{inp.name} \u00b7 {dims}", size=12, bold=True)
        scene.text(px, head_y + 16, f"{used} of {n_in} used", size=FS_SMALL, fill=C.MUTED)
    for (layer, cards), (cx, _cw) in zip(columns, it):
        scene.text(cx, head_y, _col_title(layer, graph), size=12, bold=True)
        scene.text(cx, head_y + 16, _col_sub(layer, len(cards), output is not None), size=FS_SMALL, fill=C.MUTED)

    # -- edges (under the cards), then panel and cards ------------------------------------
    where = {(c.layer, c.index): c for _, cards in columns for c in cards}
    _edges(scene, graph, edges, where, values, skip=first if image_mode else set())
    if panel:
        _draw_panel(scene, panel)
    best = None
    if values is not None:
        best = (out.name, int(np.argmax(values[out.name])) if output is None else int(output))
    for _, cards in columns:
        for c in cards:
            _draw_card(scene, c, (c.layer, c.index) == best)
    return scene


def _drawn(graph: Flowgraph, output: int | None, values: dict | None, off: str):
    """The live graph of the chosen outputs, minus hidden always-off units; and the off ids."""
    nodes, edges = live_mask(graph, None if output is None else [int(output)])
    offs = set(box_states(graph).off)
    if off == "hide" and offs:
        nodes = {k: v.copy() for k, v in nodes.items()}
        for nid in offs:
            name, i = graph.locate(nid)
            if name != graph.output.name and (values is None or values[name][i] == 0):
                nodes[name][i] = False
        edges = {layer.name: edges[layer.name] & nodes[layer.name][layer.dst] & nodes[layer.source][layer.src]
                 for layer in graph.layers[1:]}
    return nodes, edges, offs


def _shared_vmax(graph: Flowgraph, first: set, edges: dict, values: dict | None) -> float:
    """The largest |w| (and |w x|) over the drawn first-layer edges: one scale for every tile."""
    m = 0.0
    for name in first:
        layer = graph.layer(name)
        w = layer.weight[edges[name]]
        if w.size:
            m = max(m, float(np.abs(w).max()))
            if values is not None:
                m = max(m, float(np.abs(w * values[layer.source][layer.src[edges[name]]]).max()))
    return m or 1.0


def _col_title(layer: Layer, graph: Flowgraph) -> str:
    if layer.kind == "input":
        return f"{layer.name} \u00b7 inputs"
    act = "ReLU" if layer.activation == "relu" else "linear"
    role = "outputs" if layer is graph.output else "hidden"
    return f"{layer.name} \u00b7 {role} \u00b7 {act}"


def _col_sub(layer: Layer, drawn: int, sub: bool) -> str:
    total = layer.size
    if layer.kind == "input":
        return f"{drawn} of {total} used"
    gone = total - drawn
    why = "outside this subgraph" if sub else "contribute nothing"
    return f"{drawn} of {total} drawn" + (f" ({gone} {why})" if gone else "")


def _card(graph: Flowgraph, layer: Layer, i: int, offs: set, const: dict, values: dict | None,
          pre: dict | None) -> _Card:
    b = graph.bounds
    nid = layer.node_id(i)
    head = nid + (f" \u201c{short(layer.labels[i])}\u201d" if layer.labels is not None else "")
    lo, hi = b.lo[layer.name][i], b.hi[layer.name][i]
    lines = [(head, "id", True)]
    style = "live"
    c = const[layer.name][i]
    if layer.kind != "input" and not np.isnan(c) and layer is not graph.output:
        style = "constant"
        lines.append((f"constant {fmt(c)}", "const", False))
    else:
        lines.append((f"<{fmt(lo)}, {fmt(hi)}>", "bounds", False))
    if nid in offs:
        style = "off"
        lines.append(("always off over box", "off", False))
    data = {"node": nid}
    tip = [f"{nid}: bounds <{full(lo)}, {full(hi)}> over box '{b.box}'"]
    if layer.kind != "input":
        bias = float(layer.bias[i])
        data["bias"] = full(bias)
        lines.append((f"b {signed(bias)}", "bias", False))
        tip.append(f"bias {full(bias)}")
        tip.append(_expression(graph, layer, i))
    if values is not None:
        v = float(values[layer.name][i])
        data["value"] = full(v)
        lines.append((f"[{fmt(v)}]", "value", True))
        tip.append(f"value {full(v)}")
        if layer.kind != "input":
            bias = float(layer.bias[i])
            sum_edges = float(pre[layer.name][i]) - bias
            act = "relu" if layer.activation == "relu" else ""
            lines.append((f"= {act}({fmt(bias)} {signed(sum_edges)})" if act else f"= {fmt(bias)} {signed(sum_edges)}",
                          "sum", False))
    return _Card(layer.name, i, nid, lines, data=data, style=style, tip="\n".join(tip))


def _expression(graph: Flowgraph, layer: Layer, i: int) -> str:
    """``h1.5 = relu(b + w * src + ...)`` in full precision (at most TIP_TERMS terms)."""
    sel = layer.dst == i
    src, w = layer.src[sel], layer.weight[sel]
    source = graph.layer(layer.source)
    terms = [f"{'-' if wv < 0 else '+'} {full(abs(wv))}*{source.node_id(int(s))}"
             for s, wv in zip(src[:TIP_TERMS].tolist(), w[:TIP_TERMS].tolist())]
    if src.size > TIP_TERMS:
        terms.append(f"+ ... ({src.size - TIP_TERMS} more terms; all in the JSON)")
    body = " ".join([full(layer.bias[i])] + terms)
    return f"{layer.node_id(i)} = " + (f"relu({body})" if layer.activation == "relu" else body)


def _first_layer_slot(card: _Card, layer: Layer, inp: Layer, keep: np.ndarray, values: dict | None,
                      vmax: float | None) -> None:
    sel = keep & (layer.dst == card.index)
    src, w = layer.src[sel], layer.weight[sel]
    card.edges = int(src.size)
    if src.size <= FEW_INPUTS:
        for k, (s, wv) in enumerate(zip(src.tolist(), w.tolist())):
            mag = fmt(abs(wv))
            text = (f"{'-' if wv < 0 else ''}{mag}" if k == 0 else f"{'-' if wv < 0 else '+'} {mag}") + f" {inp.node_id(s)}"
            card.dot.append((text, {"node": card.node_id, "src": inp.node_id(s), "w": full(wv)}))
        b = float(layer.bias[card.index])
        card.dot.append((f"{signed(b)} (bias)" if card.dot else f"{fmt(b)} (bias)", {"node": card.node_id, "bias": full(b)}))
        return
    dense = np.zeros(inp.size)
    dense[src] = w
    tile = dense.reshape(inp.shape)
    card.tiles.append((C.signed_tile(tile, vmax), "tile weights", tile))
    if values is not None:
        carried = (dense * values[inp.name]).reshape(inp.shape)
        card.tiles.append((C.signed_tile(carried, vmax), "tile carried", carried))


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
        scene.image(x + PAD, cy, big_w, big_h, C.ink_tile(p["x_img"]), cls="input-image", title="input x",
                    values=p["x_img"])
        scene.text(x + PAD, cy + big_h + 8, "input x", size=FS_SMALL, fill=C.MUTED)
        cy += big_h + LINE + 6
        scene.image(x + PAD, cy, big_w / 2, big_h / 2, C.mask_tile(p["used"]), cls="input-mask",
                    title="inputs used by the drawn graph", values=p["used"])
        scene.text(x + PAD, cy + big_h / 2 + 8, "inputs used", size=FS_SMALL, fill=C.MUTED)
    else:
        scene.image(x + PAD, cy, big_w, big_h, C.mask_tile(p["used"]), cls="input-mask",
                    title="inputs used by the drawn graph", values=p["used"])
        scene.text(x + PAD, cy + big_h + 8, "inputs used (dark)", size=FS_SMALL, fill=C.MUTED)


def _draw_card(scene: Scene, c: _Card, highlight: bool) -> None:
    data = dict(c.data)
    if c.edges:
        data["edges"] = c.edges
    fill = {"live": C.CARD, "off": C.OFF_FILL, "constant": C.CONST_FILL}[c.style]
    if highlight:
        fill = "#fffbe6"
    cls = f"node layer-{c.layer}" + ("" if c.style == "live" else f" {c.style}")
    scene.rect(c.x, c.y, c.w, c.h, fill=fill, stroke=C.INK if highlight else C.CARD_EDGE,
               stroke_width=2 if highlight else 1, rx=4, cls=cls, data=data, title=c.tip)
    tx = c.x + PAD
    if c.tiles:
        ty = c.y + (c.h - TILE) / 2
        for rgba, cls_, vals in c.tiles:
            scene.image(tx, ty, TILE, TILE, rgba, cls=cls_, data={"node": c.node_id}, values=vals)
            tx += TILE + 4
        tx += 4
    elif c.dot:
        ty = c.y + (c.h - len(c.dot) * 11.0) / 2 + 5.5
        for t, d in c.dot:
            scene.text(tx, ty, t, size=FS_SMALL, fill=C.INK, cls="dot", data=d)
            ty += 11.0
        tx += max(text_width(t, FS_SMALL) for t, _ in c.dot) + 8
    ty = c.y + (c.h - len(c.lines) * LINE) / 2 + LINE / 2
    for text, cls_, bold in c.lines:
        fill = C.INK if cls_ in ("id", "value") else C.OFF_INK if c.style == "off" else C.MUTED
        scene.text(tx, ty, text, size=FS, bold=bold, fill=fill, cls=cls_, data={"node": c.node_id})
        ty += LINE


def _edges(scene: Scene, graph: Flowgraph, edges: dict, where: dict, values: dict | None, skip: set) -> None:
    """Edge curves from the right of the source card to the left of the target card.

    Width and opacity scale with ``|w|`` (or ``|w * source value|`` for one
    input) relative to the largest drawn edge; weakest are drawn first so
    strong edges stay on top.  Edges out of always-off units are dashed grey.
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
    # many edges: fade weak ones harder so the strong paths stay readable
    crowded = sum(r[1].size for r in rows) > 300
    power, base = (1.6, 0.12) if crowded else (1.0, 0.3)
    for layer, src, dst, w, carried in rows:
        s_layer = graph.layer(layer.source)
        mag = np.abs(carried) / peak
        for k in np.lexsort((np.arange(mag.size), mag)).tolist():
            a, b = where[(s_layer.name, int(src[k]))], where[(layer.name, int(dst[k]))]
            v = float(carried[k])
            m = float(mag[k]) ** power
            dead = a.style == "off"
            colour = C.ZERO if dead else C.sign_colour(v)
            sid, did = s_layer.node_id(int(src[k])), layer.node_id(int(dst[k]))
            tip = f"{sid} \u2192 {did}: w = {full(w[k])}"
            if values is not None:
                tip += f", carries {full(v)}"
            scene.curve(a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2, stroke=colour, dash=dead,
                        width=0.6 + 3.4 * m if v != 0 and not dead else 0.6,
                        opacity=base + (0.9 - base) * m if v != 0 and not dead else 0.45,
                        cls="edge", data={"src": sid, "dst": did, "w": full(w[k])}, title=tip)
