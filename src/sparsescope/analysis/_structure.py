"""Exact structure analysis of a flowgraph: reachability, subgraphs, constants.

All results are exact (graph reachability over the nonzero weights), not
estimates: an input reported as ignored cannot change any output, and an
output reported constant reads the same value for every input whatsoever.

The *live graph* of a set of outputs is what those outputs are made of: every
node with a path to one of them that either has a path from an input or is a
nonzero constant (e.g. a bias-only ReLU unit with a positive bias), and every
edge between two such nodes.  A node left out contributes exactly 0 to the
chosen outputs for every input, so each live node equals its bias plus its
live incoming edges -- the rule every figure and size table follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph, evaluate


def reach_from_inputs(graph: Flowgraph) -> dict[str, np.ndarray]:
    """Per layer, a bool ``(size,)``: the node has a path from some input."""
    reach = {graph.input.name: np.ones(graph.input.size, dtype=bool)}
    for layer in graph.layers[1:]:
        r = np.zeros(layer.size, dtype=bool)
        live = reach[layer.source][layer.src]
        r[layer.dst[live]] = True
        reach[layer.name] = r
    return reach


def reach_to_outputs(graph: Flowgraph, outputs: list[int] | None = None) -> dict[str, np.ndarray]:
    """Per layer, a bool ``(size,)``: the node has a path to one of ``outputs`` (default all)."""
    out = graph.output
    reach = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    if outputs is None:
        reach[out.name][:] = True
    else:
        idx = np.asarray(outputs, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= out.size):
            raise GraphError(f"output index out of range: the output layer has {out.size} nodes")
        reach[out.name][idx] = True
    for layer in reversed(graph.layers[1:]):
        live = reach[layer.name][layer.dst]
        reach[layer.source][layer.src[live]] = True
    return reach


@dataclass(frozen=True)
class Structure:
    """What a flowgraph's structure says, with node ids in index order.

    * ``ignored_inputs``: inputs with no path to any output;
    * ``dead_units``: hidden units outside the live graph: no path to an output, or
      no path from an input and a value of exactly 0 (they contribute nothing);
    * ``constant_units``: hidden units with no path from an input but a nonzero value
      that reaches an output (e.g. bias-only ReLU units), with their value; they are live;
    * ``constant_outputs``: outputs with no path from any input, with their value;
    * ``vertices``/``edges``: the live graph (see the module docstring), outputs included;
      ``per_output``: the same for each output's live graph (what its figure draws).
    """

    ignored_inputs: tuple[str, ...]
    dead_units: tuple[str, ...]
    constant_units: tuple[tuple[str, float], ...]
    constant_outputs: tuple[tuple[str, float], ...]
    vertices: int
    edges: int
    total_nodes: int
    total_edges: int
    per_output: tuple[tuple[str, int, int], ...]


def constant_values(graph: Flowgraph) -> dict[str, np.ndarray]:
    """Per layer, float64 ``(size,)``: the value of nodes with no path from an input, NaN elsewhere.

    Such a node reads the same value for every input (its sources are constants too),
    so one evaluation at ``x = 0`` gives it exactly.
    """
    fwd = reach_from_inputs(graph)
    ev = evaluate(graph, np.zeros((1, graph.input.size)))
    return {layer.name: np.where(fwd[layer.name], np.nan, ev.post[layer.name][0]) for layer in graph.layers}


def live_mask(graph: Flowgraph, outputs: list[int] | None = None, *,
              constants: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The live graph of ``outputs`` (default all; see the module docstring).

    Returns ``(nodes, edges)``: per layer bools ``(size,)`` and ``(E,)``.  Live
    nodes have a path to one of ``outputs`` and either a path from an input or a
    nonzero constant value; live edges join two live nodes.  The chosen outputs
    count as live even when constant, so a subgraph always shows its output.
    Every live node equals ``activation(bias + sum of its live incoming edges)``.

    ``constants=False`` leaves constant units out (only nodes on an input-to-output
    path): then a node adds up only once the constants feeding it are folded into
    its bias, as the readability measures do.
    """
    fwd = reach_from_inputs(graph)
    bwd = reach_to_outputs(graph, outputs)
    if constants:
        const = constant_values(graph)
        nodes = {name: bwd[name] & (fwd[name] | (~np.isnan(const[name]) & (const[name] != 0))) for name in fwd}
    else:
        nodes = {name: bwd[name] & fwd[name] for name in fwd}
    out = graph.output.name
    nodes[out] = bwd[out].copy()
    edges = {}
    for layer in graph.layers[1:]:
        edges[layer.name] = nodes[layer.name][layer.dst] & nodes[layer.source][layer.src]
    return nodes, edges


def subgraph(graph: Flowgraph, output: int) -> Flowgraph:
    """The ancestors of output ``output`` only: other edges removed, node ids kept.

    Nodes stay in place (same layers, sizes and ids) so a subgraph evaluates
    its output to exactly the full graph's value.
    """
    bwd = reach_to_outputs(graph, [output])
    layers = [graph.input]
    for layer in graph.layers[1:]:
        keep = bwd[layer.name][layer.dst]
        layers.append(layer.keep_edges(keep))
    meta = {**graph.meta, "subgraph_of": graph.output.node_id(output)}
    sub = Flowgraph(tuple(layers), meta=meta)
    return sub


def analyse(graph: Flowgraph) -> Structure:
    """Ignored inputs, dead and constant units, constant outputs and graph sizes."""
    fwd = reach_from_inputs(graph)
    bwd = reach_to_outputs(graph)
    const = constant_values(graph)
    nodes, edges = live_mask(graph)
    inp = graph.input
    ignored = tuple(inp.node_id(i) for i in np.flatnonzero(~bwd[inp.name]))
    dead, const_units = [], []
    for layer in graph.layers[1:-1]:
        dead.extend(layer.node_id(i) for i in np.flatnonzero(~nodes[layer.name]))
        c = nodes[layer.name] & ~fwd[layer.name]
        const_units.extend((layer.node_id(i), float(const[layer.name][i])) for i in np.flatnonzero(c))
    out = graph.output
    consts = tuple((out.node_id(i), float(const[out.name][i])) for i in np.flatnonzero(~fwd[out.name]))
    per_output = []
    for k in range(out.size):
        n_k, e_k = live_mask(graph, [k])
        per_output.append((out.node_id(k), int(sum(v.sum() for v in n_k.values())), int(sum(v.sum() for v in e_k.values()))))
    return Structure(
        ignored_inputs=ignored,
        dead_units=tuple(dead),
        constant_units=tuple(const_units),
        constant_outputs=consts,
        vertices=int(sum(v.sum() for v in nodes.values())),
        edges=int(sum(v.sum() for v in edges.values())),
        total_nodes=graph.num_nodes,
        total_edges=graph.num_edges,
        per_output=tuple(per_output),
    )
