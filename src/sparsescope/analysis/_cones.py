"""Structural cones of one output: its ancestors under coarser rules of what a conv weight connects.

The live graph (:func:`live_mask`) counts one edge per surviving kernel
weight and position.  A drawing or a tool can also count at a coarser grain,
and the sizes then differ by large factors; this module counts three rules
so that a published size can be set beside ours (docs/cnn-study.md):

* ``"weight"``: the ancestors of the output through the graph's edges (every
  node with a path to it; nothing removed for being constant or dead).  On
  the study's CNN at its final counts this equals the live graph (at some
  earlier rounds it also holds dead positions: docs/cnn-study.md).
* ``"kernel"``: a conv kernel *slice* ``W[o, i]`` with at least one edge (a
  surviving weight that touches the map somewhere) connects channel ``i`` to
  channel ``o`` through its whole ``k x k`` window at every position, as if
  the slice were dense (what a per-channel-pair unrolling draws).
* ``"window"``: every conv connects every input channel through its whole
  window: the output's receptive field, whatever the kernels hold.

Linear layers and average pools use their edges under every rule (a pool's
edges already fill its windows).  Stride and padding are not stored in a
flowgraph; :func:`conv_geometry` reads them back from the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph, Layer

CONE_RULES = ("weight", "kernel", "window")


def _map(layer: Layer) -> tuple[int, int, int]:
    return layer.shape if len(layer.shape) == 3 else (1, *layer.shape)  # type: ignore[return-value]


def _axis(ys: np.ndarray, base: np.ndarray, n_out: int, n_in: int, k: int) -> tuple[int, int]:
    """(stride, padding) along one axis: every edge has ``base = in - kernel offset = out * stride - padding``,
    and the axis has ``(n_in + 2 * padding - k) // stride + 1 == n_out`` outputs (``0 <= padding < k``)."""
    fits = [(s, p) for s in range(1, n_in + 2 * k + 1) for p in range(k)
            if (n_in + 2 * p - k) // s + 1 == n_out and np.array_equal(ys * s - p, base)]
    if not fits:
        raise GraphError("conv edges follow no single stride and padding")
    if len({p for _, p in fits}) > 1 or (n_out > 1 and len(fits) > 1):
        raise GraphError("conv edges do not determine the stride and padding (too few edges)")
    return fits[0]  # one output: its window starts at -padding, whatever the stride


def conv_geometry(graph: Flowgraph, layer: Layer) -> tuple[int, int]:
    """``(stride, padding)`` of an unrolled conv layer, read back from its edges
    (``src = dst * stride - padding + kernel offset`` on both axes) and its shape.

    Raises GraphError when they follow no single stride and padding, or when
    too few edges leave more than one choice that would move a window.
    """
    if layer.weight_id is None or layer.weight_shape is None or len(layer.weight_shape) != 4:
        raise GraphError(f"layer {layer.name} is not a conv layer (no 4-d weight_shape)")
    _, oh, ow = layer.shape
    _, h, w = _map(graph.layer(layer.source))
    k = layer.weight_shape[2]
    _, _, ky, kx = np.unravel_index(layer.weight_id, layer.weight_shape)
    rem = layer.dst % (oh * ow)
    y, x = rem // ow, rem % ow
    srem = layer.src % (h * w)
    iy, ix = srem // w, srem % w
    try:
        sy, py = _axis(y, iy - ky, oh, h, k)
        sx, px = _axis(x, ix - kx, ow, w, k)
    except GraphError as e:
        raise GraphError(f"layer {layer.name}: {e}") from None
    if py != px or (sy != sx and oh > 1 and ow > 1):
        raise GraphError(f"layer {layer.name}: different stride or padding per axis is not supported")
    return (sx if oh == 1 else sy), py


@dataclass(frozen=True)
class ConeSizes:
    """An output's structural cone under one rule: ``vertices`` (inputs and the output included),
    ``edges``, ``inputs`` (input nodes in the cone) and ``per_layer`` vertices."""

    rule: str
    vertices: int
    edges: int
    inputs: int
    per_layer: tuple[tuple[str, int], ...]


def _conv_back(graph: Flowgraph, layer: Layer, dst: np.ndarray, rule: str) -> tuple[np.ndarray, int]:
    """Source nodes of ``layer`` reached from cone nodes ``dst`` (bool, layer size) under ``rule``,
    and the number of cone edges."""
    o_n, i_n, k, _ = layer.weight_shape
    c, h, w = _map(graph.layer(layer.source))
    _, oh, ow = layer.shape
    if rule == "window":
        pairs = np.ones((o_n, i_n), dtype=bool)
    else:
        o, i, _, _ = np.unravel_index(layer.weight_id, layer.weight_shape)
        pairs = np.zeros((o_n, i_n), dtype=bool)
        pairs[o, i] = True
    if not (pairs.any() and dst.any()):
        return np.zeros(c * h * w, dtype=bool), 0
    s, p = conv_geometry(graph, layer)
    d = dst.reshape(o_n, oh, ow)
    src = np.zeros((c, h, w), dtype=bool)
    edges = 0
    ys, xs = np.arange(oh) * s - p, np.arange(ow) * s - p
    for a in range(k):
        ry = ys + a
        vy = (ry >= 0) & (ry < h)
        for b in range(k):
            rx = xs + b
            vx = (rx >= 0) & (rx < w)
            inside = vy[:, None] & vx[None, :]
            for oc, ic in zip(*np.nonzero(pairs)):
                hit = d[oc] & inside
                if hit.any():
                    yy, xx = np.nonzero(hit)
                    src[ic, ry[yy], rx[xx]] = True
                    edges += int(yy.size)
    return src.reshape(-1), edges


def cone_sizes(graph: Flowgraph, output: int, rule: str = "kernel") -> ConeSizes:
    """Size of output ``output``'s structural cone under ``rule`` (see the module doc)."""
    if rule not in CONE_RULES:
        raise GraphError(f"unknown cone rule {rule!r} (one of {', '.join(CONE_RULES)})")
    out = graph.output
    if not 0 <= int(output) < out.size:
        raise GraphError(f"output index out of range: the output layer has {out.size} nodes")
    cone = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    cone[out.name][int(output)] = True
    edges = 0
    for layer in reversed(graph.layers[1:]):
        dst = cone[layer.name]
        conv = layer.weight_shape is not None and len(layer.weight_shape) == 4
        if conv and rule != "weight":
            src, e = _conv_back(graph, layer, dst, rule)
            cone[layer.source] |= src
        else:
            keep = dst[layer.dst]
            cone[layer.source][layer.src[keep]] = True
            e = int(keep.sum())
        edges += e
    per_layer = tuple((layer.name, int(cone[layer.name].sum())) for layer in graph.layers)
    return ConeSizes(rule, int(sum(n for _, n in per_layer)), edges, int(cone[graph.input.name].sum()), per_layer)
