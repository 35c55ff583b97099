"""Readability measures of a flowgraph: how much a reader has to follow to read it.

Every measure is a pure function of the flowgraph (its layers, edges and,
for switching units, its interval bounds), generic over layers: dense,
unrolled convolution and Q-network layers are all just affine layers with
edges.  The definitions and the reason for each are in ``docs/readability.md``;
in short, for the whole graph and for each output's subgraph:

* ``vertices`` / ``edges``: live nodes and edges (on some input-to-output
  path) after the *image collapse*: when the input is an image (rank >= 2
  shape), the input panel is one picture and each first-layer unit shows its
  incoming weights as an image, so pixels are not vertices and pixel->unit
  edges are not edges a reader follows;
* ``inputs_used``: inputs with a path to the output(s);
* ``switching``: live ReLU units whose pre-activation bounds straddle 0 over
  the box (neither provably off nor provably affine there);
* ``crossings``: edge crossings of the figure's layout (the render layout
  :func:`sparsescope.render.order_nodes`, computed as data, not drawn);
* ``description_bits``: the length of one fixed code that writes the live
  graph (which nodes, which edges, every number as printed to 2 decimals).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..graph import Flowgraph
from ._structure import live_mask, reach_from_inputs

DECIMALS = 2  # numbers are written as the figures print them


@dataclass(frozen=True)
class OutputReadability:
    """The measures of one output's subgraph (what ``graph --output K`` draws)."""

    output: str
    label: str | None
    vertices: int
    edges: int
    inputs_used: int
    switching: int
    crossings: int
    description_bits: float


@dataclass(frozen=True)
class Readability:
    """Readability measures of a whole flowgraph and of every output's subgraph.

    ``image_input``: the input is drawn as an image (the collapse applies);
    ``image_edges``: live input->first-layer edges shown inside unit images
    (not counted in ``edges``); ``box``: the input box the switching units
    refer to (``None`` when the graph had no bounds and none were needed).
    """

    image_input: bool
    box: str
    vertices: int
    edges: int
    image_edges: int
    inputs_used: int
    switching: int
    crossings: int
    description_bits: float
    per_output: tuple[OutputReadability, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``per_output`` as a list of dicts)."""
        d = asdict(self)
        d["per_output"] = [asdict(o) for o in self.per_output]
        return d

    def mean_output(self, measure: str) -> float:
        """Mean of one per-output measure over the outputs (e.g. ``"edges"``)."""
        return float(np.mean([getattr(o, measure) for o in self.per_output])) if self.per_output else 0.0


PER_OUTPUT_MEASURES = ("vertices", "edges", "inputs_used", "switching", "crossings", "description_bits")


def is_image_input(graph: Flowgraph) -> bool:
    """The input is drawn as an image panel: a rank >= 2 input feeding at least one layer."""
    return len(graph.input.shape) >= 2 and len(graph.layers) > 1


def crossing_count(order_a: np.ndarray, order_b: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """Crossing pairs among edges ``src[k] -> dst[k]`` between two ordered columns.

    Two edges cross when their ends are in opposite order in the two columns
    (sharing an end is not a crossing).  Counted as the strict inversions of
    the targets' positions after sorting by (source position, target
    position): O(E log E) with a merge count, so unrolled conv layers with
    thousands of nodes cost no ``(a, b)`` matrix.
    """
    if src.size < 2:
        return 0
    ra = np.full(int(max(order_a.max(initial=-1), src.max())) + 1, -1, dtype=np.int64)
    ra[order_a] = np.arange(order_a.size)
    rb = np.full(int(max(order_b.max(initial=-1), dst.max())) + 1, -1, dtype=np.int64)
    rb[order_b] = np.arange(order_b.size)
    pa, pb = ra[src], rb[dst]
    seq = pb[np.lexsort((pb, pa))]
    return _inversions(seq)


def _inversions(seq: np.ndarray) -> int:
    """Pairs ``i < j`` with ``seq[i] > seq[j]`` (strict): a merge count, every block of a level at once."""
    a = np.asarray(seq, dtype=np.int64).copy()
    n = a.size
    if n < 2:
        return 0
    span = int(a.max()) + 1
    idx = np.arange(n)
    total = 0
    width = 1
    while width < n:
        block = idx // (2 * width)
        left = (idx // width) % 2 == 0
        key = block * span + a  # blocks in order; each half already sorted
        kl, kr = key[left], key[~left]
        # right elements jump over the left elements of their block strictly greater than them
        greater = np.searchsorted(kl, (block[~left] + 1) * span, side="left") - np.searchsorted(kl, kr, side="right")
        total += int(greater.sum())
        a = a[np.argsort(key, kind="stable")]
        width *= 2
    return total


def _constants(graph: Flowgraph, fwd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Value of every node with no path from an input (it is a constant), 0 elsewhere."""
    vals = {graph.input.name: np.zeros(graph.input.size)}
    for layer in graph.layers[1:]:
        sv = np.where(fwd[layer.source], 0.0, vals[layer.source])
        z = layer.bias + np.bincount(layer.dst, weights=layer.weight * sv[layer.src], minlength=layer.size)
        v = np.maximum(z, 0.0) if layer.activation == "relu" else z
        vals[layer.name] = np.where(fwd[layer.name], 0.0, v)
    return vals


def _log2_binom(n: int, k: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def number_bits(values: np.ndarray, decimals: int = DECIMALS) -> np.ndarray:
    """Bits of each number written as printed: Elias gamma of zigzag(round(v * 10^d)) + 1."""
    q = np.rint(np.asarray(values, dtype=np.float64) * 10.0**decimals).astype(np.int64)
    z = np.where(q >= 0, 2 * q, -2 * q - 1) + 1
    return 2 * np.floor(np.log2(z)).astype(np.int64) + 1


def description_bits(graph: Flowgraph, nodes: dict[str, np.ndarray], edges: dict[str, np.ndarray],
                     consts: dict[str, np.ndarray], fwd: dict[str, np.ndarray]) -> float:
    """Bits to write the live graph given by ``nodes``/``edges`` masks (see docs/readability.md).

    Per layer: which nodes are live, ``log2 C(size, live)`` (+ ``log2(size + 1)``
    for the count).  Per live affine node: how many sources feed it
    (``log2(n_src + 1)``), which (``log2 C(n_src, k)``, ``n_src`` the live nodes
    of its source layer), and its numbers: every incoming weight and its bias,
    with the constants of units that no input reaches folded into the bias.
    """
    bits = 0.0
    for layer in graph.layers:
        n, live = layer.size, int(nodes[layer.name].sum())
        bits += math.log2(n + 1) + _log2_binom(n, live)
        if layer.kind != "affine" or live == 0:
            continue
        n_src = int(nodes[layer.source].sum())
        e = edges[layer.name]
        dst, w = layer.dst[e], layer.weight[e]
        fan_in = np.bincount(dst, minlength=layer.size)
        const_in = ~fwd[layer.source][layer.src]
        folded = layer.bias + np.bincount(layer.dst[const_in], weights=(layer.weight * consts[layer.source][layer.src])[const_in],
                                          minlength=layer.size)
        idx = np.flatnonzero(nodes[layer.name])
        bits += len(idx) * math.log2(n_src + 1)
        bits += sum(_log2_binom(n_src, int(k)) for k in fan_in[idx])
        bits += float(number_bits(w).sum()) + float(number_bits(folded[idx]).sum())
    return round(bits, 3)


def _layout_crossings(graph: Flowgraph, nodes: dict[str, np.ndarray], edges: dict[str, np.ndarray], image: bool) -> int:
    from ..render._layout import order_nodes

    inp = graph.input.name
    order = order_nodes(graph, nodes, edges, fixed=(inp,) if image else ())
    total = 0
    for layer in graph.layers[1:]:
        if image and layer.source == inp:
            continue
        keep = edges[layer.name]
        total += crossing_count(order[layer.source], order[layer.name], layer.src[keep], layer.dst[keep])
    return total


def _measure(graph: Flowgraph, outputs: list[int] | None, fwd, consts, switching_mask, image: bool) -> dict[str, Any]:
    nodes, edges = live_mask(graph, outputs, constants=False)  # constants are folded into biases
    inp = graph.input.name
    first = {layer.name for layer in graph.layers[1:] if layer.source == inp}
    n_vertices = sum(int(m.sum()) for name, m in nodes.items() if not (image and name == inp))
    n_edges = sum(int(m.sum()) for name, m in edges.items() if not (image and name in first))
    n_image = sum(int(edges[name].sum()) for name in first) if image else 0
    return {
        "vertices": n_vertices,
        "edges": n_edges,
        "image_edges": n_image,
        "inputs_used": int(nodes[inp].sum()),
        "switching": sum(int((nodes[name] & m).sum()) for name, m in switching_mask.items()),
        "crossings": _layout_crossings(graph, nodes, edges, image),
        "description_bits": description_bits(graph, nodes, edges, consts, fwd),
    }


def switching_units(graph: Flowgraph) -> dict[str, np.ndarray]:
    """Per ReLU layer, bool ``(size,)``: pre-activation bounds straddle 0 (``lo < 0 < hi``)."""
    if graph.bounds is None:
        from ..bounds import annotate

        graph = annotate(graph, "unit")
    b = graph.bounds
    return {layer.name: (b.pre_lo[layer.name] < 0) & (b.pre_hi[layer.name] > 0)
            for layer in graph.layers[1:] if layer.activation == "relu"}


def readability(graph: Flowgraph) -> Readability:
    """All readability measures of ``graph`` and of each output's subgraph.

    Switching units use ``graph.bounds`` (the unit box is computed when the
    graph carries none).
    """
    box = graph.bounds.box if graph.bounds is not None else "unit"
    image = is_image_input(graph)
    fwd = reach_from_inputs(graph)
    consts = _constants(graph, fwd)
    sw = switching_units(graph)
    whole = _measure(graph, None, fwd, consts, sw, image)
    out = graph.output
    per = []
    for k in range(out.size):
        m = _measure(graph, [k], fwd, consts, sw, image)
        m.pop("image_edges")
        per.append(OutputReadability(out.node_id(k), out.labels[k] if out.labels else None, **m))
    return Readability(image_input=image, box=box, per_output=tuple(per), **whole)
