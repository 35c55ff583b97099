"""The simplified graph as a DAG whose edges may skip layers.

The layered :class:`~sparsescope.graph.Flowgraph` has one source layer per
layer, so it cannot hold the result of composing a single always-on unit into
its consumers (the unit's sources then feed its consumers directly, across a
layer).  A :class:`Dag` can: it is the same kind of node (``activation(bias +
sum of weight * source)``), with the original flowgraph's stable ids, but
every edge names its two nodes and may join any earlier layer to any later one.

Layout (``N`` nodes, ``E`` edges; all arrays read-only):

* ``layers``: ``((name, shape), ...)`` the original flowgraph's layers in
  evaluation order; ``layers[0]`` is the input.  Every node belongs to one.
* ``ids``: ``N`` node ids in the original's form (``in[12,7]``, ``h1.5``,
  ``c1[2,5,7]``, ``out.3``), sorted by ``(layer, index)``, which is a
  topological order: every edge goes from an earlier layer to a later one.
* ``layer``/``index``: int64 ``(N,)``: the node's layer (into ``layers``) and
  flat, row-major index in it (for an input: which input it reads).
* ``activation``: ``N`` strings: ``"input"``, ``"relu"`` or ``"linear"``
  (identity; also a ReLU proven always on over the box).
* ``bias``: float64 ``(N,)`` (0 for inputs).
* ``src``/``dst``: int64 ``(E,)`` node positions, ``weight``: float64 ``(E,)``,
  nonzero and finite, sorted by ``(dst, src)``, no duplicate pair.

Every output of the original is a node (a constant output keeps only its
bias); inputs that no output depends on are absent.  :func:`evaluate_dag`
computes all node values for a batch of original inputs, in float64 or
float32; on the box it was simplified over, every node the DAG keeps takes the
same value as in the original (so the original's exact ranges, keyed by id,
are its ranges too).  :func:`dag_to_dict`/:func:`dag_from_dict` give the JSON
form (``sparsescope.dag`` version 1, see docs/analysis-schema.md):

    {"format": "sparsescope.dag", "version": 1, "meta": {...},
     "layers": [{"name": "in", "shape": [28, 28]}, ...],
     "nodes": [{"id": "h1.5", "layer": "h1", "activation": "relu", "bias": 0.1}, ...],
     "edges": [["in[12,7]", "h1.5", 0.53], ...]}

Pure functions build and transform it: :func:`dag_from_flowgraph`,
:func:`compose` (one linear unit into its consumers), :func:`prune` (fold
constant units, drop what reaches no output), :func:`dag_sizes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph, plain_json

DAG_FORMAT = "sparsescope.dag"
DAG_VERSION = 1
KINDS = ("input", "relu", "linear")
_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\.(\d+)|\[(\d+(?:,\d+)*)\])$")


@dataclass(frozen=True, eq=False)
class Dag:
    """A DAG of nodes with stable ids and weighted edges that may skip layers (module docstring)."""

    layers: tuple[tuple[str, tuple[int, ...]], ...]
    ids: tuple[str, ...]
    layer: np.ndarray
    index: np.ndarray
    activation: tuple[str, ...]
    bias: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        layer = np.asarray(self.layer, dtype=np.int64).reshape(-1)
        index = np.asarray(self.index, dtype=np.int64).reshape(-1)
        bias = np.asarray(self.bias, dtype=np.float64).reshape(-1)
        src = np.asarray(self.src, dtype=np.int64).reshape(-1)
        dst = np.asarray(self.dst, dtype=np.int64).reshape(-1)
        w = np.asarray(self.weight, dtype=np.float64).reshape(-1)
        act = tuple(str(a) for a in self.activation)
        if not (layer.shape == index.shape == bias.shape == (n,)) or len(act) != n:
            raise GraphError("dag: node arrays differ in length")
        if not (src.shape == dst.shape == w.shape):
            raise GraphError("dag: edge arrays differ in length")
        if not self.layers or any(a not in KINDS for a in act):
            raise GraphError("dag: no layers, or an unknown activation")
        sizes = np.array([int(np.prod(s)) for _, s in self.layers])
        if n and (layer.min() < 0 or layer.max() >= len(self.layers) or np.any(index < 0) or np.any(index >= sizes[layer])):
            raise GraphError("dag: a node outside its layer")
        if n > 1 and not np.all((np.diff(layer) > 0) | ((np.diff(layer) == 0) & (np.diff(index) > 0))):
            raise GraphError("dag: nodes are not sorted by (layer, index)")
        if np.any((layer == 0) != (np.array(act) == "input")) if n else False:
            raise GraphError("dag: exactly the nodes of the first layer are inputs")
        if not np.all(np.isfinite(bias)) or not np.all(np.isfinite(w)) or np.any(w == 0):
            raise GraphError("dag: a bias or weight is NaN or infinite, or a weight is 0")
        if src.size:
            if src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n:
                raise GraphError("dag: an edge names no node")
            if np.any(layer[src] >= layer[dst]):
                raise GraphError("dag: an edge does not go from an earlier layer to a later one")
            order = np.lexsort((src, dst))
            if not np.array_equal(order, np.arange(order.size)):
                src, dst, w = src[order], dst[order], w[order]
            if np.any((np.diff(dst) == 0) & (np.diff(src) == 0)):
                raise GraphError("dag: duplicate edge")
        for name, arr in (("layer", layer), ("index", index), ("bias", bias), ("src", src), ("dst", dst), ("weight", w)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "layers", tuple((str(a), tuple(int(d) for d in s)) for a, s in self.layers))
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    @property
    def num_edges(self) -> int:
        return int(self.src.size)

    @property
    def outputs(self) -> np.ndarray:
        """Positions of the output nodes (the last layer's), in index order."""
        return np.flatnonzero(self.layer == len(self.layers) - 1)

    def position(self, node_id: str) -> int:
        """The position of node ``node_id`` (GraphError if the DAG has no such node)."""
        pos = {nid: k for k, nid in enumerate(self.ids)}.get(node_id)
        if pos is None:
            raise GraphError(f"the simplified graph has no node {node_id!r}")
        return pos

    def __repr__(self) -> str:
        return f"Dag({self.num_nodes} nodes, {self.num_edges} edges)"


def _node_id(name: str, shape: tuple[int, ...], index: int) -> str:
    if len(shape) == 1:
        return f"{name}.{index}"
    return f"{name}[{','.join(str(int(c)) for c in np.unravel_index(index, shape))}]"


def dag_from_flowgraph(graph: Flowgraph, linear: frozenset[str] | set[str] = frozenset()) -> Dag:
    """Every node and edge of ``graph`` as a DAG; ReLU units whose id is in ``linear`` (proven
    always on) and identity layers become ``"linear"``.  Call :func:`prune` to drop dead parts."""
    names = [layer.name for layer in graph.layers]
    start = np.cumsum([0] + [layer.size for layer in graph.layers])
    ids, act, bias, src, dst, w, lay, idx = [], [], [], [], [], [], [], []
    for k, layer in enumerate(graph.layers):
        lay.append(np.full(layer.size, k, dtype=np.int64))
        idx.append(np.arange(layer.size, dtype=np.int64))
        bias.append(layer.bias)
        for j in range(layer.size):
            nid = layer.node_id(j)
            ids.append(nid)
            if layer.kind == "input":
                act.append("input")
            else:
                act.append("relu" if layer.activation == "relu" and nid not in linear else "linear")
        if layer.kind == "affine":
            src.append(layer.src + start[names.index(layer.source)])
            dst.append(layer.dst + start[k])
            w.append(layer.weight)
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)  # noqa: E731
    return Dag(tuple((layer.name, layer.shape) for layer in graph.layers), tuple(ids), cat(lay, np.int64),
               cat(idx, np.int64), tuple(act), cat(bias, np.float64), cat(src, np.int64), cat(dst, np.int64),
               cat(w, np.float64), meta=dict(graph.meta))


def _subset(dag: Dag, keep: np.ndarray, bias: np.ndarray, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
            activation: tuple[str, ...] | None = None) -> Dag:
    """``dag`` with only the nodes where ``keep`` (bool ``(N,)``) and the given edges (old positions,
    all between kept nodes)."""
    new = np.cumsum(keep) - 1
    act = dag.activation if activation is None else activation
    return Dag(dag.layers, tuple(i for i, k in zip(dag.ids, keep) if k), dag.layer[keep], dag.index[keep],
               tuple(a for a, k in zip(act, keep) if k), bias[keep], new[src], new[dst], w, meta=dag.meta)


def with_linear(dag: Dag, ids: set[str] | frozenset[str]) -> Dag:
    """``dag`` with the ReLU units named in ``ids`` marked ``"linear"`` (proven always on)."""
    act = tuple("linear" if a == "relu" and i in ids else a for i, a in zip(dag.ids, dag.activation))
    return Dag(dag.layers, dag.ids, dag.layer, dag.index, act, dag.bias, dag.src, dag.dst, dag.weight, meta=dag.meta)


def compose(dag: Dag, node_id: str) -> Dag:
    """Compose the linear unit ``node_id`` into its consumers and remove it.

    With ``u = b_u + sum_s w_us * s`` (linear), each consumer ``c`` gets
    ``b_c += w_cu * b_u`` and, per source ``s``, ``w_cs += w_cu * w_us`` (one
    float64 multiply and add, a new edge when there was none; an edge whose
    weight becomes exactly 0 is dropped).  Consumers compute the same function.
    """
    u = dag.position(node_id)
    if dag.activation[u] != "linear" or dag.layer[u] in (0, len(dag.layers) - 1):
        raise GraphError(f"{node_id} is not a linear hidden unit: it cannot be composed")
    into, out = dag.dst == u, dag.src == u
    srcs, w_in = dag.src[into], dag.weight[into]
    cons, w_out = dag.dst[out], dag.weight[out]
    bias = dag.bias.copy()
    bias[cons] = bias[cons] + w_out * bias[u]
    rest = ~(into | out)
    src, dst, w = dag.src[rest], dag.dst[rest], dag.weight[rest].copy()
    n = dag.num_nodes
    key = dst * n + src
    new_key = (cons[:, None] * n + srcs[None, :]).reshape(-1)
    add = (w_out[:, None] * w_in[None, :]).reshape(-1)
    pos = np.searchsorted(key, new_key)  # key is sorted: edges are in (dst, src) order
    hit = (pos < key.size) & (key[np.minimum(pos, key.size - 1)] == new_key) if key.size else pos < 0
    w[pos[hit]] = w[pos[hit]] + add[hit]
    src = np.concatenate([src, new_key[~hit] % n])
    dst = np.concatenate([dst, new_key[~hit] // n])
    w = np.concatenate([w, add[~hit]])
    nz = w != 0
    keep = np.ones(n, dtype=bool)
    keep[u] = False
    return _subset(dag, keep, bias, src[nz], dst[nz], w[nz])


def prune(dag: Dag) -> Dag:
    """Fold constant units and drop dead parts, until nothing changes.

    A hidden unit without in-edges is the constant ``activation(bias)``: it is
    folded into its consumers' biases and removed.  A hidden unit or input with
    no path to an output is removed with its edges.  Outputs always stay.
    """
    while True:
        n, last = dag.num_nodes, len(dag.layers) - 1
        hidden = (dag.layer > 0) & (dag.layer < last)
        has_in = np.bincount(dag.dst, minlength=n) > 0
        const = hidden & ~has_in
        bias = dag.bias.copy()
        if const.any():
            value = np.where(np.array([a == "relu" for a in dag.activation]), np.maximum(bias, 0.0), bias)
            e = const[dag.src]
            np.add.at(bias, dag.dst[e], dag.weight[e] * value[dag.src[e]])
        alive = ~const
        # backward reachability to an output, over edges between alive nodes (dst in descending order)
        reach = dag.layer == last
        ok = alive[dag.src] & alive[dag.dst]
        s, d = dag.src[ok], dag.dst[ok]
        for k in range(last - 1, -1, -1):
            at = dag.layer[s] == k
            hit = np.zeros(n, dtype=bool)
            hit[s[at & reach[d]]] = True
            reach |= hit
        keep = alive & reach
        if keep.all():
            return dag
        e = keep[dag.src] & keep[dag.dst]
        dag = _subset(dag, keep, bias, dag.src[e], dag.dst[e], dag.weight[e])


def evaluate_dag(dag: Dag, x: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """Values of every node, ``(batch, N)`` in ``dtype`` (float64 or float32), for original inputs
    ``x`` ``(batch, *input_shape)`` or ``(batch, n_in)``.  Outputs: ``[:, dag.outputs]``."""
    from scipy.sparse import csr_matrix

    n_in = int(np.prod(dag.layers[0][1]))
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim < 1 or x.size % n_in:
        raise GraphError(f"inputs of shape {x.shape} do not fit the input of shape {dag.layers[0][1]}")
    x = x.reshape(-1, n_in).astype(dtype)
    n = dag.num_nodes
    vals = np.zeros((x.shape[0], n), dtype=dtype)
    inputs = dag.layer == 0
    vals[:, inputs] = x[:, dag.index[inputs]]
    relu = np.array([a == "relu" for a in dag.activation], dtype=bool)
    bounds = np.searchsorted(dag.layer, np.arange(len(dag.layers) + 1))
    ebounds = np.searchsorted(dag.dst, bounds)
    for k in range(1, len(dag.layers)):
        a, b = int(bounds[k]), int(bounds[k + 1])
        if a == b:
            continue
        ea, eb = int(ebounds[k]), int(ebounds[k + 1])
        m = csr_matrix((dag.weight[ea:eb].astype(dtype), (dag.dst[ea:eb] - a, dag.src[ea:eb])), shape=(b - a, n))
        pre = np.asarray((m @ vals.T).T, dtype=dtype) + dag.bias[a:b].astype(dtype)
        vals[:, a:b] = np.where(relu[a:b], np.maximum(pre, 0), pre)
    return vals


def dag_sizes(dag: Dag) -> dict[str, int]:
    """``vertices`` (every node: inputs used, hidden units, outputs) and ``edges``."""
    return {"vertices": dag.num_nodes, "edges": dag.num_edges}


def dag_to_dict(dag: Dag) -> dict[str, Any]:
    """The JSON document (plain data, deterministic order; floats round-trip exactly)."""
    names = [name for name, _ in dag.layers]
    ids = dag.ids
    nodes = [{"id": ids[k], "layer": names[int(dag.layer[k])], "activation": dag.activation[k],
              "bias": float(dag.bias[k])} for k in range(dag.num_nodes)]
    edges = [[ids[s], ids[d], float(v)] for s, d, v in zip(dag.src.tolist(), dag.dst.tolist(), dag.weight.tolist())]
    return {"format": DAG_FORMAT, "version": DAG_VERSION, "meta": plain_json(dag.meta),
            "layers": [{"name": name, "shape": list(shape)} for name, shape in dag.layers],
            "nodes": nodes, "edges": edges}


def dag_from_dict(doc: Any) -> Dag:
    """Read :func:`dag_to_dict`'s document back (GraphError naming the problem if it is malformed)."""
    try:
        if doc.get("format") != DAG_FORMAT or doc.get("version") != DAG_VERSION:
            raise GraphError(f"not a {DAG_FORMAT} version {DAG_VERSION} document")
        layers = tuple((str(d["name"]), tuple(int(v) for v in d["shape"])) for d in doc["layers"])
        where = {name: (k, shape) for k, (name, shape) in enumerate(layers)}
        lay, idx, act, bias, ids = [], [], [], [], []
        for node in doc["nodes"]:
            nid = str(node["id"])
            name = _parse(nid)[0]
            if node["layer"] != name:
                raise GraphError(f"dag: node {nid[:60]!r} says it is in layer {str(node['layer'])[:40]!r}")
            k, shape = where[name]
            lay.append(k)
            idx.append(_index(nid, shape))
            act.append(str(node["activation"]))
            bias.append(float(node["bias"]))
            ids.append(nid)
        pos = {nid: k for k, nid in enumerate(ids)}
        if len(pos) != len(ids):
            raise GraphError("dag: duplicate node id")
        edges = doc["edges"]
        src = [pos[e[0]] for e in edges]
        dst = [pos[e[1]] for e in edges]
        w = [float(e[2]) for e in edges]
        return Dag(layers, tuple(ids), np.array(lay, dtype=np.int64), np.array(idx, dtype=np.int64), tuple(act),
                   np.array(bias), np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(w),
                   meta=dict(doc.get("meta") or {}))
    except GraphError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
        raise GraphError(f"malformed {DAG_FORMAT} document ({type(e).__name__}: {str(e)[:80]})") from None


def _parse(node_id: str) -> tuple[str, re.Match]:
    m = _ID.match(node_id)
    if not m:
        raise GraphError(f"{node_id[:60]!r} is not a node id")
    return m.group(1), m


def _index(node_id: str, shape: tuple[int, ...]) -> int:
    _, m = _parse(node_id)
    if m.group(2) is not None:
        if len(shape) != 1:
            raise GraphError(f"{node_id!r}: its layer has shape {shape}")
        return int(m.group(2))
    coords = tuple(int(c) for c in m.group(3).split(","))
    if len(coords) != len(shape) or any(c >= d for c, d in zip(coords, shape)):
        raise GraphError(f"{node_id!r} is outside its layer of shape {shape}")
    return int(np.ravel_multi_index(coords, shape))
