"""An exactly simplified flowgraph over a box, with the certificate of every fact used.

Facts, each proven over the box in exact arithmetic:

* ``constant`` input: the box gives it one value (``lo == hi``, e.g. the
  always-black border pixels of the data box);
* ``off`` unit: a ReLU unit whose pre-activation is ``<= 0`` everywhere: it
  outputs 0, so it and its edges go;
* ``constant`` unit: every live source is constant or off, so the unit is one
  number; it is folded into its consumers' biases and its edges go;
* ``on`` unit: a ReLU unit whose pre-activation is ``>= 0`` everywhere: it is
  linear there.  A layer whose every remaining unit is linear is composed
  into the next layer when that reduces the edges (the layered flowgraph has
  no skip edges, so a single linear unit keeps its place and is only marked);
* ``unused``: a unit or input with no path to any output in the simplified
  graph (``ignored`` for an input): removing it changes no output.

The simplified graph keeps every layer name and node id (a removed node stays
as a node without edges and with bias 0; a folded constant keeps its value as
its bias), so it computes the same outputs as the original at every point of
the box, and the same values at every node it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..analysis import analyse, live_mask
from ..bounds import interval_bounds
from ..graph import Flowgraph, Layer
from ._ranges import ExactRanges


@dataclass(frozen=True, eq=False)
class Simplified:
    """The simplified graph, the facts it rests on, and sizes before and after.

    ``facts``: plain dicts ``{"node", "fact", "how", ...}`` in graph order (the
    certificate); ``sizes``: ``{"original": {...}, "simplified": {...}}`` with
    live ``vertices``/``edges`` and ``total_edges``; ``ignored_inputs`` and
    ``constant_outputs`` (id -> value) as proven over the box.
    """

    graph: Flowgraph
    facts: tuple[dict[str, Any], ...]
    sizes: dict[str, dict[str, int]]
    ignored_inputs: tuple[str, ...]
    constant_outputs: tuple[tuple[str, float], ...]
    composed: tuple[str, ...]


def _how(ranges: ExactRanges, name: str, j: int, side: str, value: float) -> str:
    """How a sign fact was proven: by the interval bounds alone, or by the exact analysis."""
    iv = ranges.interval.pre_hi[name][j] if side == "hi" else ranges.interval.pre_lo[name][j]
    if (side == "hi" and iv <= value) or (side == "lo" and iv >= value):
        return "interval"
    return str(ranges.how[name][j])


def simplify(graph: Flowgraph, ranges: ExactRanges) -> Simplified:
    """Simplify ``graph`` over the box ``ranges`` was computed for (see the module docstring)."""
    facts: list[dict[str, Any]] = []
    inp = graph.input
    const = {inp.name: np.where(ranges.box_lo == ranges.box_hi, ranges.box_lo, np.nan)}
    for i in np.flatnonzero(~np.isnan(const[inp.name])):
        facts.append({"node": inp.node_id(int(i)), "fact": "constant", "value": float(const[inp.name][i]), "how": "box"})
    off: dict[str, np.ndarray] = {inp.name: np.zeros(inp.size, dtype=bool)}
    layers: list[Layer] = [inp]
    for layer in graph.layers[1:]:
        name = layer.name
        lo_b, hi_b = ranges.lo_bound[name], ranges.hi_bound[name]
        relu = layer.activation == "relu"
        none = np.zeros(layer.size, dtype=bool)
        is_off = (hi_b <= 0) if relu else none
        is_on = ((lo_b >= 0) & ~is_off) if relu else none
        cs = const[layer.source][layer.src]
        drop = off[layer.source][layer.src] | ~np.isnan(cs)
        bias = layer.bias.copy()
        fold = ~np.isnan(cs) & ~off[layer.source][layer.src]
        np.add.at(bias, layer.dst[fold], layer.weight[fold] * cs[fold])
        keep = ~drop & ~is_off[layer.dst]
        is_const = (np.bincount(layer.dst[keep], minlength=layer.size) == 0) & ~is_off
        bias = np.where(is_off, 0.0, bias)
        value = np.where(is_const, np.maximum(bias, 0.0) if relu else bias, np.nan)
        for j in range(layer.size):
            nid = layer.node_id(j)
            if is_off[j]:
                facts.append({"node": nid, "fact": "off", "pre_hi": float(hi_b[j]),
                              "how": _how(ranges, name, j, "hi", 0.0)})
            elif is_const[j]:
                facts.append({"node": nid, "fact": "constant", "value": float(value[j]), "pre": float(bias[j]),
                              "how": "structure"})
            elif is_on[j]:
                facts.append({"node": nid, "fact": "on", "pre_lo": float(lo_b[j]),
                              "how": _how(ranges, name, j, "lo", 0.0)})
        const[name] = value
        off[name] = is_off
        layers.append(replace(layer.keep_edges(keep), bias=bias))
    g = Flowgraph(tuple(layers), meta={**graph.meta, "simplified_over": ranges.box})
    # constants were folded forward: their out-edges are gone.  Now drop what
    # cannot reach an output (dead ends).
    nodes, edges = live_mask(g)
    trimmed = [g.input]
    for layer in g.layers[1:]:
        e = edges[layer.name]
        trimmed.append(layer.keep_edges(e))
    g = Flowgraph(tuple(trimmed), meta=g.meta)
    g, composed = _compose_linear_layers(g, ranges)
    # its own interval bounds (sound for it, float32 included), for figures and the viewer
    g = g.with_bounds(interval_bounds(g, ranges.box_lo, ranges.box_hi, box=ranges.box))
    s0, s1 = analyse(graph), analyse(g)
    out_name = graph.output.name
    for layer in g.layers[1:-1]:
        live = nodes[layer.name]
        for j in np.flatnonzero(~live & np.isnan(const[layer.name]) & ~off[layer.name]):
            facts.append({"node": layer.node_id(int(j)), "fact": "unused", "how": "no path to an output"})
    ignored = tuple(s1.ignored_inputs)
    for nid in ignored:
        i = g.locate(nid)[1]
        if np.isnan(const[inp.name][i]):
            facts.append({"node": nid, "fact": "ignored", "how": "no path to an output"})
    consts = tuple((graph.output.node_id(int(j)), float(const[out_name][j]))
                   for j in np.flatnonzero(~np.isnan(const[out_name])))
    sizes = {
        "original": {"vertices": s0.vertices, "edges": s0.edges, "total_edges": s0.total_edges},
        "simplified": {"vertices": s1.vertices, "edges": s1.edges, "total_edges": s1.total_edges},
    }
    return Simplified(g, tuple(facts), sizes, ignored, consts, composed)


def _compose_linear_layers(g: Flowgraph, ranges: ExactRanges) -> tuple[Flowgraph, tuple[str, ...]]:
    """Compose a hidden layer whose every unit with edges is linear over the box (ReLU
    proven on, or identity) into its only consumer, when that leaves fewer edges."""
    composed: list[str] = []
    changed = True
    while changed:
        changed = False
        layers = list(g.layers)
        for k in range(1, len(layers) - 1):
            L = layers[k]
            consumers = [c for c in layers if c.kind == "affine" and c.source == L.name]
            if len(consumers) != 1 or L.name not in ranges.lo_bound:
                continue
            C = consumers[0]
            used = np.zeros(L.size, dtype=bool)
            used[C.src] = True
            linear = (ranges.lo_bound[L.name] >= 0) if L.activation == "relu" else np.ones(L.size, dtype=bool)
            if not np.all(linear[used]):
                continue
            src = g.layer(L.source)
            w_l = L.dense_weight(src.size)
            w_c = C.dense_weight(L.size)
            w = w_c @ w_l
            b = C.bias + w_c @ L.bias
            dst, s = np.nonzero(w)
            if dst.size >= L.num_edges + C.num_edges:
                continue
            new_c = replace(C, source=L.source, bias=b, dst=dst, src=s, weight=w[dst, s], weight_id=None,
                            weight_shape=None)  # composed weights are no longer shared kernel entries
            layers = [x for x in layers if x.name != L.name]
            layers[layers.index(C) if C in layers else 0] = new_c
            g = Flowgraph(tuple(layers), meta={**g.meta, "composed": [*g.meta.get("composed", []), L.name]})
            composed.append(L.name)
            changed = True
            break
    return g, tuple(composed)
