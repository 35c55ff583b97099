"""Figures of convolutional flowgraphs: kernels, feature maps, the channel view, the unrolled subgraph.

* :func:`kernel_figure` -- every conv kernel as small weight images (rows:
  output channels, columns: input channels; green > 0, red < 0, grey = pruned).
* :func:`feature_maps_figure` -- every feature map as images, one per
  channel: the node values on one input ``x``, or (weights mode) which
  positions are live and, among those, the upper bound of each over the box.
* :func:`channel_figure` -- the channel-level view: one card per live
  channel (with its feature map), one curve per live channel edge carrying
  the kernel slice it uses (the weight-sharing picture) and the number of
  unrolled edges it stands for.
* :func:`unrolled_figure` -- the unrolled view of the live graph (or one
  output's subgraph): every live position a dot inside its channel's grid,
  every live unrolled edge a line.

SVG hooks: channel cards are ``class="channel"`` with ``data-node="c1[2]"``;
channel edges ``class="cedge"`` with ``data-src``/``data-dst``/``data-edges``;
unrolled dots ``class="pos"`` with ``data-node="c1[2,5,7]"``; unrolled edges
``class="edge"``.  The same graph gives byte-identical SVG.
"""

from __future__ import annotations

import numpy as np

from ..analysis import channel_count, channel_id, channel_of, channel_view, live_mask
from ..graph import Flowgraph, Layer, evaluate
from . import _colour as C
from ._graphfig import fmt
from ._scene import Scene, text_width

MARGIN, TITLE_H, FS = 18.0, 26.0, 10.5
DEAD_RGB = np.array([236, 236, 236])


def is_conv_graph(graph: Flowgraph) -> bool:
    """True when some layer is a feature map (rank-3 shape): draw it with these figures."""
    return any(len(layer.shape) == 3 for layer in graph.layers)


def _map(layer: Layer) -> tuple[int, int, int] | None:
    if len(layer.shape) == 3:
        return layer.shape  # type: ignore[return-value]
    if len(layer.shape) == 2:
        return (1, *layer.shape)
    return None


def _rgba(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:-1] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(rgb), 0, 255)
    out[..., 3] = 255
    return out


def liveness_tile(live: np.ndarray, hi: np.ndarray | None) -> np.ndarray:
    """A channel in weights mode: dead positions light grey, live ones slate, darker where the upper bound is larger."""
    live = np.asarray(live, dtype=bool)
    if hi is None:
        return C.mask_tile(live)
    h = np.where(live, np.maximum(np.asarray(hi, dtype=np.float64), 0.0), 0.0)
    m = h.max() if h.size else 0.0
    t = (h / m if m > 0 else np.zeros_like(h))[..., None]
    rgb = np.array([190, 200, 220]) + (np.array([35, 51, 89]) - np.array([190, 200, 220])) * t
    return _rgba(np.where(live[..., None], rgb, DEAD_RGB))


def _channel_tile(layer: Layer, c: int, live: np.ndarray, values: np.ndarray | None, hi: np.ndarray | None) -> np.ndarray:
    ch, h, w = _map(layer)  # type: ignore[misc]
    sl = slice(c * h * w, (c + 1) * h * w)
    if values is not None:
        v = values[sl].reshape(h, w)
        return C.ink_tile(v) if layer.kind == "input" else C.signed_tile(v)
    return liveness_tile(live[sl].reshape(h, w), None if hi is None else hi[sl].reshape(h, w))


# -- kernels --------------------------------------------------------------------------
def kernel_figure(graph: Flowgraph, *, title: str = "", cell: float = 30.0) -> Scene:
    """Every conv layer's kernel ``(O, I, k, k)`` as an O x I grid of k x k weight images."""
    blocks = []
    for layer in graph.layers[1:]:
        if layer.weight_id is None or len(layer.weight_shape) != 4:
            continue
        k = np.zeros(int(np.prod(layer.weight_shape)))
        k[layer.weight_id] = layer.weight
        blocks.append((layer, k.reshape(layer.weight_shape)))
    width = MARGIN * 2 + sum(60 + kk.shape[1] * (cell + 4) for _, kk in blocks) + 20 * len(blocks)
    height = MARGIN * 2 + TITLE_H + 40 + max([kk.shape[0] * (cell + 4) for _, kk in blocks], default=40)
    scene = Scene(max(width, 300), height)
    if title:
        scene.text(MARGIN, MARGIN, title, size=13, bold=True)
    x0 = MARGIN
    for layer, kk in blocks:
        o_n, i_n = kk.shape[:2]
        kept = int(np.count_nonzero(kk))
        scene.text(x0, MARGIN + TITLE_H, f"{layer.name}: {kept}/{kk.size} weights", size=FS, bold=True)
        y0 = MARGIN + TITLE_H + 22
        for i in range(i_n):
            scene.text(x0 + 46 + i * (cell + 4) + cell / 2, y0 - 6, f"in {i}", size=8, fill=C.MUTED, anchor="middle")
        for o in range(o_n):
            scene.text(x0 + 40, y0 + o * (cell + 4) + cell / 2, f"{layer.name}[{o}]", size=8.5, anchor="end")
            for i in range(i_n):
                tile = kk[o, i]
                n = int(np.count_nonzero(tile))
                vals = ", ".join(f"{v:.3g}" for v in tile[tile != 0].tolist())
                scene.image(x0 + 46 + i * (cell + 4), y0 + o * (cell + 4), cell, cell, C.signed_tile(tile),
                            cls="kernel", data={"layer": layer.name, "out": o, "in": i, "weights": n},
                            title=f"{layer.name} kernel [{o},{i}]: {n} weight(s)" + (f": {vals}" if vals else ""))
        x0 += 60 + i_n * (cell + 4) + 20
    return scene


# -- feature maps ---------------------------------------------------------------------
def feature_maps_figure(graph: Flowgraph, *, x: np.ndarray | None = None, output: int | None = None,
                        title: str = "", px: float = 3.0) -> Scene:
    """Each feature map, one image per channel.

    With ``x`` (one input): the node values (input as ink, maps signed).
    Without: the live positions (of the whole graph, or of ``output``'s
    subgraph), shaded by their upper bound when the graph has bounds.
    """
    values = evaluate(graph, np.asarray(x, dtype=np.float64)[None]).post if x is not None else None
    nodes, _ = live_mask(graph, None if output is None else [output])
    layers = [layer for layer in graph.layers if _map(layer) is not None]
    rows = []
    for layer in layers:
        c, h, w = _map(layer)  # type: ignore[misc]
        rows.append((layer, c, h, w))
    width = MARGIN * 2 + 70 + max(c * (w * px + 8) for _, c, _, w in rows)
    height = MARGIN * 2 + TITLE_H + sum(h * px + 30 for _, _, h, _ in rows)
    scene = Scene(width, height)
    if title:
        scene.text(MARGIN, MARGIN, title, size=13, bold=True)
    y = MARGIN + TITLE_H
    for layer, c, h, w in rows:
        scene.text(MARGIN, y + 8, layer.name, size=FS, bold=True)
        hi = graph.bounds.hi[layer.name] if graph.bounds is not None else None
        vals = values[layer.name][0] if values is not None else None
        for ch in range(c):
            xx = MARGIN + 70 + ch * (w * px + 8)
            live = nodes[layer.name]
            n_live = int(live[ch * h * w:(ch + 1) * h * w].sum())
            cid = channel_id(layer, ch)
            tip = f"{cid}: {n_live}/{h * w} positions live"
            if vals is not None:
                sl = vals[ch * h * w:(ch + 1) * h * w]
                tip += f"; values in [{fmt(sl.min())}, {fmt(sl.max())}]"
            scene.image(xx, y + 16, w * px, h * px, _channel_tile(layer, ch, live, vals, hi), cls="fmap",
                        data={"node": cid, "live": n_live}, title=tip)
            scene.text(xx, y + 10, cid, size=8, fill=C.MUTED)
        y += h * px + 30
    return scene


# -- the channel view -----------------------------------------------------------------
def channel_figure(graph: Flowgraph, *, output: int | None = None, x: np.ndarray | None = None,
                   title: str = "", px: float = 2.0) -> Scene:
    """The channel-level view of the live graph (or of ``output``'s subgraph).

    Columns are layers; each live channel is a card with its feature map
    (liveness in weights mode, values for one input ``x``) and, down its
    left side, the kernel slice ``[dst, src]`` it applies to each live input
    channel (the weight-sharing picture), labelled ``weights w / unrolled
    edges e``.  Each live channel edge is a curve into its slice, as thick as
    log(1 + unrolled edges).  A flat layer's live units are small cards.
    """
    outs = None if output is None else [output]
    nodes, edges = channel_view(graph, outs)
    unrolled_nodes, _ = live_mask(graph, outs)
    values = evaluate(graph, np.asarray(x, dtype=np.float64)[None]).post if x is not None else None
    gap, kern, slot = 110.0, 18.0, 30.0
    incoming: dict[tuple[str, int], list[int]] = {}  # (layer, dst channel) -> live source channels, in order
    for name, e in edges.items():
        for d, s_ in zip(e.dst.tolist(), e.src.tolist()):
            incoming.setdefault((name, d), []).append(s_)
    cards: dict[tuple[str, int], tuple[float, float, float, float]] = {}
    columns = []
    for layer in graph.layers:
        idx = np.flatnonzero(nodes[layer.name])
        shp = _map(layer)
        sliced = layer.weight_id is not None and len(layer.weight_shape) == 4
        if shp is not None:
            n_in = max([len(incoming.get((layer.name, int(c)), [])) for c in idx], default=0) if sliced else 0
            cw = shp[2] * px + 12 + (kern + 8 if sliced else 0)
            ch = max(shp[1] * px + 26, n_in * slot + 20)
        else:
            cw = max([text_width(layer.node_id(int(i)), FS) for i in idx], default=30) + 16
            ch = 22.0
        columns.append((layer, idx, cw, ch, sliced))
    height = MARGIN * 2 + TITLE_H + max(len(idx) * (ch + 10) for _, idx, _, ch, _ in columns) + 10
    width = MARGIN * 2 + sum(c[2] for c in columns) + gap * (len(columns) - 1)
    scene = Scene(max(width, 320), max(height, 120))
    if title:
        scene.text(MARGIN, MARGIN, title, size=13, bold=True)
    top = MARGIN + TITLE_H
    x0 = MARGIN
    for layer, idx, cw, ch, _ in columns:
        total = len(idx) * (ch + 10) - 10
        y0 = top + (scene.height - top - MARGIN - total) / 2
        for j, c in enumerate(idx):
            cards[(layer.name, int(c))] = (x0, y0 + j * (ch + 10), cw, ch)
        x0 += cw + gap
    slices = []
    for layer in graph.layers[1:]:
        e = edges[layer.name]
        src_layer = graph.layer(layer.source)
        kernel = None
        if layer.weight_id is not None and len(layer.weight_shape) == 4:
            kernel = np.zeros(int(np.prod(layer.weight_shape)))
            kernel[layer.weight_id] = layer.weight
            kernel = kernel.reshape(layer.weight_shape)
        for d, s_, n_e, n_w in zip(e.dst.tolist(), e.src.tolist(), e.edges.tolist(), e.weights.tolist()):
            a, b = cards.get((layer.source, s_)), cards.get((layer.name, d))
            if a is None or b is None:
                continue
            x1, y1 = a[0] + a[2], a[1] + a[3] / 2
            sid, did = channel_id(src_layer, s_), channel_id(layer, d)
            if kernel is not None:
                k = incoming[(layer.name, d)].index(s_)
                sx, sy = b[0] + 5, b[1] + 18 + k * slot
                x2, y2 = b[0], sy + kern / 2
                slices.append((sx, sy, kernel[d, s_], sid, did, n_w, n_e))
            else:
                x2, y2 = b[0], b[1] + b[3] / 2
            scene.curve(x1, y1, x2, y2, stroke="#7a8699", width=0.6 + 0.5 * np.log1p(n_e), opacity=0.7, cls="cedge",
                        data={"src": sid, "dst": did, "edges": n_e, "weights": n_w},
                        title=f"{sid} \u2192 {did}: {n_w} weight(s) used at {n_e} position(s)")
    for layer, idx, cw, ch, sliced in columns:
        hi = graph.bounds.hi[layer.name] if graph.bounds is not None else None
        vals = values[layer.name][0] if values is not None else None
        for c in idx.tolist():
            cx, cy, w, h = cards[(layer.name, c)]
            cid = channel_id(layer, c)
            shp = _map(layer)
            if shp is not None:
                n_live = int(unrolled_nodes[layer.name][c * shp[1] * shp[2]:(c + 1) * shp[1] * shp[2]].sum())
                scene.rect(cx, cy, w, h, fill=C.CARD, stroke=C.CARD_EDGE, rx=3, cls="channel",
                           data={"node": cid, "live": n_live}, title=f"{cid}: {n_live} live positions")
                scene.text(cx + 6, cy + 9, f"{cid} \u00b7 {n_live}", size=8.5, bold=True)
                mx = cx + 6 + (kern + 8 if sliced else 0)
                scene.image(mx, cy + 18, shp[2] * px, shp[1] * px,
                            _channel_tile(layer, c, unrolled_nodes[layer.name], vals, hi))
            else:
                nid = layer.node_id(c)
                label = nid + (f" [{fmt(vals[c])}]" if vals is not None else "")
                tip = nid + (f" <{fmt(graph.bounds.lo[layer.name][c])}, {fmt(hi[c])}>" if hi is not None else "")
                scene.rect(cx, cy, max(w, text_width(label, FS) + 12), h, fill=C.CARD, stroke=C.CARD_EDGE, rx=3,
                           cls="channel", data={"node": nid}, title=tip)
                scene.text(cx + 6, cy + h / 2, label, size=FS)
    for sx, sy, tile, sid, did, n_w, n_e in slices:
        vals_txt = ", ".join(f"{v:.3g}" for v in tile[tile != 0].tolist())
        scene.image(sx, sy, kern, kern, C.signed_tile(tile), cls="kslice", data={"src": sid, "dst": did},
                    title=f"kernel {did} \u2190 {sid}: {vals_txt}")
        scene.text(sx + kern / 2, sy + kern + 5, f"{n_w}w/{n_e}e", size=6.5, fill=C.MUTED, anchor="middle")
    return scene


# -- the unrolled view ----------------------------------------------------------------
def unrolled_figure(graph: Flowgraph, *, output: int | None = None, title: str = "", px: float = 5.0) -> Scene:
    """The unrolled live graph (or ``output``'s subgraph): each live channel's grid with its live
    positions as dots, every live unrolled edge as a thin line coloured by its weight's sign."""
    outs = None if output is None else [output]
    nodes, edges = live_mask(graph, outs)
    gap = 90.0
    pos: dict[str, np.ndarray] = {}  # per layer: (size, 2) centre of every node (NaN when not drawn)
    columns = []
    for layer in graph.layers:
        live = nodes[layer.name]
        shp = _map(layer)
        if shp is not None:
            chans = np.unique(channel_of(layer, np.flatnonzero(live)))
            columns.append((layer, chans, shp[2] * px + 10, len(chans) * (shp[1] * px + 24)))
        else:
            idx = np.flatnonzero(live)
            columns.append((layer, idx, 60.0, len(idx) * 18.0))
    height = MARGIN * 2 + TITLE_H + max(h for *_, h in columns) + 10
    width = MARGIN * 2 + sum(w for _, _, w, _ in columns) + gap * (len(columns) - 1)
    scene = Scene(max(width, 320), max(height, 120))
    if title:
        scene.text(MARGIN, MARGIN, title, size=13, bold=True)
    top = MARGIN + TITLE_H
    x0 = MARGIN
    frames = []
    for layer, sel, w, h in columns:
        xy = np.full((layer.size, 2), np.nan)
        y0 = top + (scene.height - top - MARGIN - h) / 2
        shp = _map(layer)
        if shp is not None:
            _, hh, ww = shp
            for j, c in enumerate(sel.tolist()):
                gy = y0 + j * (hh * px + 24) + 14
                frames.append((x0, gy, ww * px, hh * px, channel_id(layer, c)))
                ii = np.arange(c * hh * ww, (c + 1) * hh * ww)
                yy, xx = np.divmod(ii - c * hh * ww, ww)
                xy[ii, 0] = x0 + (xx + 0.5) * px
                xy[ii, 1] = gy + (yy + 0.5) * px
        else:
            for j, i in enumerate(sel.tolist()):
                xy[i] = (x0 + 8, y0 + j * 18 + 9)
        pos[layer.name] = xy
        x0 += w + gap
    for fx, fy, fw, fh, cid in frames:
        scene.rect(fx, fy, fw, fh, fill=C.PANEL, stroke="#d0d0d0", stroke_width=0.5)
        scene.text(fx, fy - 7, cid, size=8, fill=C.MUTED)
    for layer in graph.layers[1:]:
        keep = np.flatnonzero(edges[layer.name])
        a, b = pos[layer.source], pos[layer.name]
        for e in keep.tolist():
            s, d = int(layer.src[e]), int(layer.dst[e])
            wgt = float(layer.weight[e])
            scene.line(a[s, 0], a[s, 1], b[d, 0], b[d, 1], stroke=C.sign_colour(wgt), width=0.4, opacity=0.35, cls="edge")
    for layer in graph.layers:
        live = np.flatnonzero(nodes[layer.name])
        xy = pos[layer.name]
        for i in live.tolist():
            nid = layer.node_id(i)
            if _map(layer) is not None:
                scene.rect(xy[i, 0] - px * 0.4, xy[i, 1] - px * 0.4, px * 0.8, px * 0.8, fill="#2d3f63", cls="pos",
                           data={"node": nid})
            else:
                scene.circle(xy[i, 0], xy[i, 1], 4, fill=C.CARD, stroke=C.INK, cls="pos", data={"node": nid})
                scene.text(xy[i, 0] + 8, xy[i, 1], nid, size=9)
    return scene
