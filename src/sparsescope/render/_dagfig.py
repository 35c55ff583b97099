"""The exactly simplified graph (a :class:`sparsescope.exact.Dag`) as a static figure.

The DAG keeps the original flowgraph's layers, but composing an always-on
unit into its consumers joins its sources to them directly, so an edge may
skip layers.  The figure keeps the flowgraph figures' reading direction:
layers are columns left to right (an image input is a panel of its used
pixels, one dot per pixel at its place), units in a column ordered by
weighted-barycenter sweeps to reduce crossings, outputs in class order.

* An edge between neighbouring columns is an S-curve, as in the flowgraph
  figure; a *skip edge* is routed around the columns it jumps: it leaves its
  source, runs in a lane above (or below) every node of the skipped columns,
  and comes down into its target, so it visibly bypasses them (``class="edge
  skip"``).  Colour is the weight's sign, width and opacity grow with ``|w|``.
* Nodes are dots: inputs grey, ReLU units white circles, units without
  activation (*linear*: proven always on over the box, or an identity layer)
  orange squares, outputs ringed.  Columns of at most ``LABELLED`` units
  carry their ids.

Hooks for tests and tools (SVG ``data-*``, full precision): every node is
``class="node ACT"`` with ``data-node``, ``data-activation`` and (not for
inputs) ``data-bias``; every edge is ``class="edge"`` (plus ``skip``) with
``data-src``, ``data-dst`` and ``data-w``.  Only plain data comes in (the
DAG, optional ranges by id, optional sizes), so the same bytes come out for
the same DAG; every string is escaped by :class:`Scene`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from . import _colour as C
from ._figtext import FS, FS_SMALL, fmt, full
from ._fonts import text_width
from ._scene import Scene

LINEAR_FILL = "#dd8833"  # a unit without activation (always on over the box): composable
INPUT_FILL = "#9a9a9a"
LABELLED = 40  # columns with at most this many nodes get id labels
CELL = 8.0  # px per pixel of an image input's panel
COL_GAP = 150.0  # px between neighbouring columns
MARGIN = 24.0
LANE = 10.0  # px between a skipped column's outermost node and the lane above/below it
SWEEPS = 4


def dag_figure(dag: Any, *, title: str = "simplified graph", ranges: Mapping[str, tuple[float, float]] | None = None,
               sizes: Mapping[str, Mapping[str, int]] | None = None, box: str | None = None) -> Scene:
    """Draw ``dag`` (a :class:`~sparsescope.exact.Dag`): layer columns, skip edges routed around the
    columns they jump.

    ``ranges``: ``{node id: (lo, hi)}`` of the sums before activation, shown in the nodes' tooltips (e.g. the
    exact ranges over the box); ``sizes``: the analysis' ``original`` /
    ``reduced`` / ``simplified`` sizes, shown in the summary line; ``box``:
    the box's name for the summary.
    """
    n_layers = len(dag.layers)
    layer, index = np.asarray(dag.layer), np.asarray(dag.index)
    src, dst, w = np.asarray(dag.src), np.asarray(dag.dst), np.asarray(dag.weight)
    in_shape = dag.layers[0][1]
    grid = len(in_shape) == 2 and n_layers > 1
    cols = [np.flatnonzero(layer == k) for k in range(n_layers)]
    pitch = [(16.0 if c.size <= LABELLED else max(4.0, min(10.0, 1500.0 / c.size))) for c in cols]
    rank = _order(dag, cols, grid)

    # -- geometry: column x, node (x, y) -------------------------------------------
    n = dag.num_nodes
    x = np.zeros(n)
    y = np.zeros(n)
    radius = np.zeros(n)
    heights = [c.size * p for c, p in zip(cols, pitch)]
    if grid:
        heights[0] = in_shape[0] * CELL
    body_h = max(heights + [120.0])
    skips = layer[dst] - layer[src] > 1
    lane_room = LANE + 6.0 * max(n_layers - 2, 0) + 8.0
    y0 = 140.0 + lane_room
    widths = []
    for k, c in enumerate(cols):
        if k == 0 and grid:
            widths.append(in_shape[1] * CELL)
        else:
            label_w = max((text_width(_label(dag, i), FS_SMALL) for i in c), default=0.0) if c.size <= LABELLED else 0.0
            widths.append(12.0 + (label_w + 4 if label_w else 0.0))
    col_x = []
    cx = MARGIN
    for k, c in enumerate(cols):
        col_x.append(cx)
        if k == 0 and grid:
            r_, c_ = np.divmod(index[c], in_shape[1])
            x[c] = cx + (c_ + 0.5) * CELL
            y[c] = y0 + (body_h - heights[0]) / 2 + (r_ + 0.5) * CELL
            radius[c] = CELL * 0.38
        else:
            top = y0 + (body_h - heights[k]) / 2
            x[c] = cx + 6.0
            y[c] = top + (rank[c] + 0.5) * pitch[k]
            radius[c] = min(4.5, pitch[k] * 0.42)
        cx += widths[k] + COL_GAP
    right = cx - COL_GAP + MARGIN
    # edges leave a node from the right end of its label (as from a card's side), so no edge crosses a label
    exit_x = x + radius
    for k, c in enumerate(cols):
        if c.size <= LABELLED and not (k == 0 and grid):
            exit_x[c] = col_x[k] + widths[k]

    # -- header ------------------------------------------------------------------------
    head = _summary(dag, int(skips.sum()), sizes, box)
    scene = Scene(1, 1)
    legend_right = _legend(scene, MARGIN, 68)
    col_titles = [_col_title(dag, k, c.size) for k, c in enumerate(cols)]
    width = max([right, MARGIN + text_width(title, 16, True), MARGIN + text_width(head, 11), legend_right]
                + [col_x[k] + text_width(t[0], 12, True) for k, t in enumerate(col_titles)]) + 2 * MARGIN
    scene = Scene(width, y0 + body_h + lane_room + MARGIN)
    scene.text(MARGIN, 22, title, size=16, bold=True, cls="title")
    scene.text(MARGIN, 44, head, size=11, fill=C.MUTED, cls="summary")
    _legend(scene, MARGIN, 68)
    for k, (head_k, sub_k) in enumerate(col_titles):
        scene.text(col_x[k], y0 - lane_room - 14, head_k, size=12, bold=True)
        scene.text(col_x[k], y0 - lane_room + 2, sub_k, size=FS_SMALL, fill=C.MUTED)

    # -- edges, weakest first so the strong ones stay on top ----------------------------
    peak = float(np.abs(w).max()) if w.size else 1.0
    crowded = w.size > 300
    power, base = (1.6, 0.12) if crowded else (1.0, 0.3)
    span = {k: (float(y[c].min()), float(y[c].max())) for k, c in enumerate(cols) if c.size}
    mid = y0 + body_h / 2
    for e in np.lexsort((np.arange(w.size), np.abs(w))).tolist():
        a, b = int(src[e]), int(dst[e])
        m = (abs(float(w[e])) / peak) ** power
        x1, y1, x2, y2 = exit_x[a], y[a], x[b] - radius[b], y[b]
        style = dict(stroke=C.sign_colour(float(w[e])), width=0.5 + 2.5 * m, opacity=base + (0.9 - base) * m,
                     data={"src": dag.ids[a], "dst": dag.ids[b], "w": full(w[e])})
        if not skips[e]:
            scene.curve(x1, y1, x2, y2, cls="edge", **style)
            continue
        la, lb = int(layer[a]), int(layer[b])
        between = [span[k] for k in range(la + 1, lb) if k in span]
        gap = 6.0 * (lb - la - 2)  # longer jumps run in outer lanes
        if between:
            top, bottom = min(s[0] for s in between), max(s[1] for s in between)
            lane = top - LANE - gap if (y1 + y2) / 2 <= mid else bottom + LANE + gap
        else:
            lane = (y1 + y2) / 2
        xa, xb = col_x[la + 1] - COL_GAP * 0.3, col_x[lb - 1] + widths[lb - 1] + COL_GAP * 0.3
        scene.route([(x1, y1), (xa, lane), (xb, lane), (x2, y2)], cls="edge skip", **style)

    # -- nodes --------------------------------------------------------------------------------
    for i in range(n):
        _node(scene, dag, i, float(x[i]), float(y[i]), float(radius[i]), ranges,
              label=cols[int(layer[i])].size <= LABELLED and not (grid and layer[i] == 0))
    return scene


def _order(dag: Any, cols: list[np.ndarray], grid: bool) -> np.ndarray:
    """Rank of every node within its column (0 = top): barycenter sweeps over all edges, skip edges too.

    Inputs keep index order (an image input sits at its pixels), outputs class
    order; hidden columns move to the ``|w|``-weighted mean height of their
    sources (downward sweep) or consumers (upward sweep), ties by the current
    order, so the result depends only on the DAG.
    """
    n, layer = dag.num_nodes, np.asarray(dag.layer)
    src, dst, aw = np.asarray(dag.src), np.asarray(dag.dst), np.abs(np.asarray(dag.weight))
    rank = np.zeros(n)
    for c in cols:
        rank[c] = np.arange(c.size)
    pos = np.zeros(n)

    def refresh() -> None:
        for k, c in enumerate(cols):
            if c.size:
                pos[c] = (rank[c] + 0.5) / c.size
        if grid and cols[0].size:
            rows = dag.layers[0][1][0]
            pos[cols[0]] = (np.asarray(dag.index)[cols[0]] // dag.layers[0][1][1] + 0.5) / rows

    def place(k: int, mine: np.ndarray, other: np.ndarray) -> None:
        c = cols[k]
        num = np.bincount(mine, weights=aw * pos[other], minlength=n)[c]
        den = np.bincount(mine, weights=aw, minlength=n)[c]
        bary = np.where(den > 0, num / np.where(den > 0, den, 1.0), pos[c])
        order = np.lexsort((rank[c], bary))
        rank[c[order]] = np.arange(c.size)
        refresh()

    refresh()
    hidden = range(1, len(cols) - 1)
    for _ in range(SWEEPS):
        for k in hidden:
            place(k, dst, src)
        for k in reversed(hidden):
            place(k, src, dst)
    return rank.astype(np.int64)


def _node(scene: Scene, dag: Any, i: int, x: float, y: float, r: float,
          ranges: Mapping[str, tuple[float, float]] | None, label: bool) -> None:
    nid, act = dag.ids[i], dag.activation[i]
    last = int(dag.layer[i]) == len(dag.layers) - 1
    data = {"node": nid, "activation": act}
    tip = [f"{nid} ({act})"]
    if act != "input":
        data["bias"] = full(dag.bias[i])
        tip.append(f"bias {full(dag.bias[i])}")
    if ranges is not None and nid in ranges:
        lo, hi = ranges[nid]
        tip.append(f"sum before activation over the box: [{full(lo)}, {full(hi)}]")
    cls = f"node {act}" + (" output" if last else "")
    if act == "input":
        scene.circle(x, y, r, fill=INPUT_FILL, stroke=None, cls=cls, data=data, title="\n".join(tip))
    elif act == "linear" and not last:
        scene.rect(x - r, y - r, 2 * r, 2 * r, fill=LINEAR_FILL, stroke=C.INK, stroke_width=0.6, cls=cls, data=data,
                   title="\n".join(tip))
    else:
        scene.circle(x, y, r, fill=C.CARD, stroke=C.INK, stroke_width=1.6 if last else 0.8, cls=cls, data=data,
                     title="\n".join(tip))
    if label:
        scene.text(x + r + 3, y, _label(dag, i), size=FS_SMALL, fill=C.INK, cls="label", data={"node": nid})


def _label(dag: Any, i: int) -> str:
    """A node's id, and its bias (2 decimals; full precision in ``data-bias`` and the tooltip)."""
    return dag.ids[i] if dag.activation[i] == "input" else f"{dag.ids[i]}  b {fmt(dag.bias[i])}"


def _col_title(dag: Any, k: int, drawn: int) -> tuple[str, str]:
    name, shape = dag.layers[k]
    kind = "inputs" if k == 0 else "outputs" if k == len(dag.layers) - 1 else "hidden"
    return f"{name} \u00b7 {kind}", f"{drawn} of {int(np.prod(shape))}" + (" used" if k == 0 else " kept")


def _summary(dag: Any, n_skip: int, sizes: Mapping[str, Mapping[str, int]] | None, box: str | None) -> str:
    linear = sum(1 for k, a in enumerate(dag.activation) if a == "linear" and int(dag.layer[k]) < len(dag.layers) - 1)
    s = (f"{dag.num_nodes} nodes, {dag.num_edges} edges ({n_skip} skipping layers), {linear} linear hidden units"
         + (f" over box \u2018{box}\u2019" if box else ""))
    if sizes:
        s += "; live vertices/edges: " + ", ".join(
            f"{k} {sizes[k]['vertices']}/{sizes[k]['edges']}" for k in ("original", "reduced", "simplified") if k in sizes)
    return s


def _legend(scene: Scene, x0: float, y: float) -> float:
    """Two rows: edge colours and routes, node glyphs.  Returns the right edge reached."""
    x = x0
    for colour, label in ((C.POSITIVE, "positive weight"), (C.NEGATIVE, "negative weight")):
        scene.line(x, y, x + 22, y, stroke=colour, width=3)
        scene.text(x + 27, y, label, size=FS, fill=C.INK)
        x += 45 + text_width(label, FS)
    scene.route([(x, y + 4), (x + 10, y - 5), (x + 30, y - 5), (x + 40, y + 4)], stroke=C.MUTED, width=1.5)
    t = "skip edge (from a composition): runs above or below the layers it skips"
    scene.text(x + 46, y, t, size=FS, fill=C.INK)
    x += 64 + text_width(t, FS)
    t = "edge width \u221d |w|"
    scene.text(x, y, t, size=FS, fill=C.INK)
    right = x + text_width(t, FS)
    x, y2 = x0, y + 18
    glyphs = (("input", "input used"), ("relu", "ReLU unit"), ("linear", "linear unit (always on over the box: "
              "no activation; composed into its consumers where that saves edges)"), ("output", "output"))
    for kind, label in glyphs:
        if kind == "input":
            scene.circle(x + 5, y2, 3.5, fill=INPUT_FILL, stroke=None)
        elif kind == "linear":
            scene.rect(x + 1, y2 - 4, 8, 8, fill=LINEAR_FILL, stroke=C.INK, stroke_width=0.6)
        else:
            scene.circle(x + 5, y2, 4, fill=C.CARD, stroke=C.INK, stroke_width=1.6 if kind == "output" else 0.8)
        scene.text(x + 14, y2, label, size=FS, fill=C.INK)
        x += 30 + text_width(label, FS)
    t = "each node = activation(bias + sum of its incoming edges); ids and biases as in the analysis JSON's dag"
    scene.text(x0, y2 + 18, t, size=FS, fill=C.MUTED)
    return max(right, x, x0 + text_width(t, FS))
