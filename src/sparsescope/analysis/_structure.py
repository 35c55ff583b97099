"""Exact structure analysis of a flowgraph: reachability, subgraphs, constants.

All results are exact (graph reachability over the nonzero weights), not
estimates: an input reported as ignored cannot change any output, and an
output reported constant reads the same value for every input whatsoever.
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
    * ``dead_units``: hidden units with no path from an input or none to an output;
    * ``constant_outputs``: outputs with no path from any input, with their value;
    * ``vertices``/``edges``: the live graph (nodes and edges on some input-to-output
      path, plus constant outputs);  ``per_output``: the same for each output's subgraph.
    """

    ignored_inputs: tuple[str, ...]
    dead_units: tuple[str, ...]
    constant_outputs: tuple[tuple[str, float], ...]
    vertices: int
    edges: int
    total_nodes: int
    total_edges: int
    per_output: tuple[tuple[str, int, int], ...]


def live_mask(graph: Flowgraph, outputs: list[int] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Nodes and edges on some path from an input to one of ``outputs``.

    Returns ``(nodes, edges)``: per layer bools ``(size,)`` and ``(E,)``.  The
    chosen outputs count as live even when constant, so a subgraph always
    shows its output.
    """
    fwd = reach_from_inputs(graph)
    bwd = reach_to_outputs(graph, outputs)
    nodes = {name: fwd[name] & bwd[name] for name in fwd}
    out = graph.output.name
    nodes[out] = bwd[out].copy()
    edges = {}
    for layer in graph.layers[1:]:
        e = nodes[layer.name][layer.dst] & fwd[layer.source][layer.src]
        edges[layer.name] = e
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
    """Ignored inputs, dead units, constant outputs and graph sizes."""
    fwd = reach_from_inputs(graph)
    bwd = reach_to_outputs(graph)
    inp = graph.input
    ignored = tuple(inp.node_id(i) for i in np.flatnonzero(~bwd[inp.name]))
    dead = []
    for layer in graph.layers[1:-1]:
        bad = ~(fwd[layer.name] & bwd[layer.name])
        dead.extend(layer.node_id(i) for i in np.flatnonzero(bad))
    out = graph.output
    const_idx = np.flatnonzero(~fwd[out.name])
    consts: tuple[tuple[str, float], ...] = ()
    if const_idx.size:
        values = evaluate(graph, np.zeros((1, inp.size))).post[out.name][0]
        consts = tuple((out.node_id(i), float(values[i])) for i in const_idx)
    nodes, edges = live_mask(graph)
    per_output = []
    for k in range(out.size):
        n_k, e_k = live_mask(graph, [k])
        per_output.append((out.node_id(k), int(sum(v.sum() for v in n_k.values())), int(sum(v.sum() for v in e_k.values()))))
    return Structure(
        ignored_inputs=ignored,
        dead_units=tuple(dead),
        constant_outputs=consts,
        vertices=int(sum(v.sum() for v in nodes.values())),
        edges=int(sum(v.sum() for v in edges.values())),
        total_nodes=graph.num_nodes,
        total_edges=graph.num_edges,
        per_output=tuple(per_output),
    )
