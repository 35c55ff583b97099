"""An exactly simplified flowgraph over a box, with the certificate of every fact used.

Facts, each proven over the box in exact arithmetic:

* ``constant`` input: the box gives it one value (``lo == hi``, e.g. the
  always-black border pixels of the data box);
* ``off`` unit: a ReLU unit whose pre-activation is ``<= 0`` everywhere: it
  outputs 0, so it and its edges go;
* ``constant`` unit: every live source is constant or off, so the unit is one
  number; it is folded into its consumers' biases and its edges go;
* ``on`` unit: a ReLU unit whose pre-activation is ``>= 0`` everywhere: it is
  linear there;
* ``composed``: a linear hidden unit (proven ``on``, or with no activation)
  multiplied into its consumers, when that strictly lowers the edge count
  (:mod:`._compose`); its sources then feed its consumers directly;
* ``unused``: a unit or input with no path to any output in the simplified
  graph (``ignored`` for an input): removing it changes no output.

Two results: ``graph``, the *reduced* layered flowgraph (units off, constant
or unused removed; it keeps every layer name and node id: a removed node stays
as a node without edges and with bias 0, a folded constant keeps its value as
its bias), and ``dag``, the final simplified graph (:class:`~._dag.Dag`: the
reduced graph with the always-on units marked linear and composed where that
pays; its edges may skip layers).  Both compute the same outputs as the
original at every point of the box, and the same values at every node they keep.

Facts whose ``how`` is ``greedy`` or ``milp`` carry ``exact`` (the witnessed
extreme of the unit's sum) and ``witness`` (the row of ``ranges.witnesses``
attaining it), so a tool can re-evaluate them; ``pre_lo``/``pre_hi`` are the
proven bounds.  :func:`~._certificate.check_certificate` replays it all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..analysis import analyse, live_mask
from ..bounds import interval_bounds
from ..graph import Flowgraph, Layer
from ._compose import compose_greedy
from ._dag import Dag, dag_from_flowgraph, dag_sizes, prune
from ._ranges import ExactRanges


@dataclass(frozen=True, eq=False)
class Simplified:
    """The simplified graph, the facts it rests on, and sizes before and after.

    ``graph``: the reduced layered flowgraph; ``dag``: the final simplified
    graph (compositions applied; see the module docstring).  ``facts``: plain
    dicts ``{"node", "fact", "how", ...}`` in the order they were used (the
    certificate; compositions last, in the order applied).  ``sizes``:
    ``{"original", "reduced", "simplified"}``, each with live ``vertices`` and
    ``edges`` (``original``/``reduced`` also ``total_edges``: all edges of the
    layered graph).  ``ignored_inputs`` and ``constant_outputs`` (id -> value)
    as proven over the box; ``composed``: ids of the composed units, in order;
    ``box_lo``/``box_hi``: the box (flat ``(n_in,)``).
    """

    graph: Flowgraph
    facts: tuple[dict[str, Any], ...]
    sizes: dict[str, dict[str, int]]
    ignored_inputs: tuple[str, ...]
    constant_outputs: tuple[tuple[str, float], ...]
    composed: tuple[str, ...]
    dag: Dag
    box_lo: np.ndarray
    box_hi: np.ndarray


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
                facts.append(_sign_fact(ranges, nid, name, j, "off"))
            elif is_const[j]:
                facts.append({"node": nid, "fact": "constant", "value": float(value[j]), "pre": float(bias[j]),
                              "how": "structure"})
            elif is_on[j]:
                facts.append(_sign_fact(ranges, nid, name, j, "on"))
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
    # the DAG: always-on units marked linear, then composed where that lowers the edge count
    on = {f["node"] for f in facts if f["fact"] == "on"}
    dag = prune(dag_from_flowgraph(g.with_bounds(None), linear=on))
    reasons = {nid: "on" for nid in on}
    dag, steps = compose_greedy(dag, reasons)
    dag = prune(dag)
    facts.extend(steps)
    sizes = {
        "original": {"vertices": s0.vertices, "edges": s0.edges, "total_edges": s0.total_edges},
        "reduced": {"vertices": s1.vertices, "edges": s1.edges, "total_edges": s1.total_edges},
        "simplified": dag_sizes(dag),
    }
    composed = tuple(step["node"] for step in steps)
    return Simplified(g, tuple(facts), sizes, ignored, consts, composed, dag, ranges.box_lo, ranges.box_hi)


def _sign_fact(ranges: ExactRanges, nid: str, name: str, j: int, fact: str) -> dict[str, Any]:
    """An ``off`` (sum ``<= 0``: ``pre_hi`` is its proven maximum) or ``on`` (sum ``>= 0``:
    ``pre_lo`` its proven minimum) fact; one proven by the solver or a greedy vertex also
    carries the witnessed extreme ``exact`` and the ``witness`` row attaining it."""
    side = "hi" if fact == "off" else "lo"
    bound = (ranges.hi_bound if side == "hi" else ranges.lo_bound)[name][j]
    how = _how(ranges, name, j, side, 0.0)
    f: dict[str, Any] = {"node": nid, "fact": fact, f"pre_{side}": float(bound), "how": how}
    if how in ("greedy", "milp"):
        end = (ranges.hi if side == "hi" else ranges.lo)[name][j]
        wit = (ranges.hi_witness if side == "hi" else ranges.lo_witness)[name][j]
        if np.isfinite(end) and wit >= 0:
            f.update(exact=float(end), witness=int(wit))
    return f
