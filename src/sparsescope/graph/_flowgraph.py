"""The flowgraph: the exact computation of a (pruned) network as a layered graph.

Every node is ``activation(bias + sum_j weight_j * source_j)``; every nonzero
weight is one edge.  Nodes are grouped in layers (``in``, ``h1`` ... ``hK``,
``out``) and addressed by stable, readable ids:

* ``in[12,7]`` -- pixel row 12, column 7 of a 28x28 input (rank-2 shapes);
* ``in.3`` -- input 3 of a flat input (rank-1 shapes);
* ``h1.5`` -- unit 5 of hidden layer 1;  ``out.2`` -- output 2.

Edges are stored per layer as three parallel arrays (``dst``, ``src``,
``weight``) sorted by ``(dst, src)``.  A convolution unrolls into the same
form (shared weights become repeated values), so new layer kinds add a
builder, not a new graph shape.  An unrolled layer also keeps, per edge,
``weight_id``: the flat index of the shared kernel weight (of shape
``weight_shape``, e.g. a conv's ``(out, in, kh, kw)``) the edge came from, so
all uses of one weight can be found together.  Feature maps have rank-3
shapes ``(channel, y, x)``: ``c1[2,5,7]`` is channel 2, row 5, column 7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from .._errors import GraphError

ACTIVATIONS = ("identity", "relu")
KINDS = ("input", "affine")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\.(\d+)|\[(\d+(?:,\d+)*)\])$")


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of nodes.

    Attributes:
        name: layer name, also the id prefix of its nodes (``in``, ``h1``, ``out``).
        kind: ``"input"`` (no sources) or ``"affine"``.
        shape: logical shape of the layer, e.g. ``(28, 28)`` or ``(32,)``.
        activation: ``"identity"`` or ``"relu"`` (affine layers only).
        source: name of the layer the edges come from (affine layers only).
        bias: float64 ``(size,)``; zeros for input layers.
        dst, src: int64 ``(E,)`` node indices in this layer and in ``source``.
        weight: float64 ``(E,)``, all nonzero and finite.
        labels: optional human names of the nodes (e.g. class names), ``size`` long.
        weight_id: optional int64 ``(E,)``: per edge, the flat (row-major) index
            into ``weight_shape`` of the shared weight it came from; edges with
            the same id carry the same weight.  ``None`` when weights are not shared.
        weight_shape: the shape of that shared kernel (required with ``weight_id``).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    activation: str = "identity"
    source: str | None = None
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dst: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    src: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: tuple[str, ...] | None = None
    weight_id: np.ndarray | None = None
    weight_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise GraphError(f"layer name {self.name!r} is not a plain identifier")
        if self.kind not in KINDS:
            raise GraphError(f"layer {self.name}: unknown layer kind {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise GraphError(f"layer {self.name}: unknown activation {self.activation!r}")
        if not self.shape or any(int(d) <= 0 for d in self.shape):
            raise GraphError(f"layer {self.name}: bad shape {self.shape}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        n = self.size
        bias = np.zeros(n) if self.kind == "input" else np.asarray(self.bias, dtype=np.float64)
        dst = np.asarray(self.dst, dtype=np.int64).reshape(-1)
        src = np.asarray(self.src, dtype=np.int64).reshape(-1)
        w = np.asarray(self.weight, dtype=np.float64).reshape(-1)
        tie = None if self.weight_id is None else np.asarray(self.weight_id, dtype=np.int64).reshape(-1)
        if (tie is None) != (self.weight_shape is None):
            raise GraphError(f"layer {self.name}: weight_id and weight_shape go together")
        if bias.shape != (n,):
            raise GraphError(f"layer {self.name}: bias has shape {bias.shape}, expected ({n},)")
        if not (dst.shape == src.shape == w.shape):
            raise GraphError(f"layer {self.name}: edge arrays differ in length")
        if not np.all(np.isfinite(bias)) or not np.all(np.isfinite(w)):
            raise GraphError(f"layer {self.name}: weights or biases are NaN or infinite")
        if self.kind == "input":
            if dst.size or self.source is not None:
                raise GraphError(f"input layer {self.name} cannot have edges")
        else:
            if self.source is None:
                raise GraphError(f"layer {self.name}: affine layer needs a source layer")
            if dst.size and (dst.min() < 0 or dst.max() >= n):
                raise GraphError(f"layer {self.name}: edge target out of range")
            if np.any(w == 0):
                raise GraphError(f"layer {self.name}: an edge has weight exactly 0")
            order = np.lexsort((src, dst))
            if not np.array_equal(order, np.arange(order.size)):
                dst, src, w = dst[order], src[order], w[order]
                tie = None if tie is None else tie[order]
            if dst.size > 1 and np.any((np.diff(dst) == 0) & (np.diff(src) == 0)):
                raise GraphError(f"layer {self.name}: duplicate edge")
        if tie is not None:
            tie = self._check_ties(tie, w)
        if self.labels is not None:
            labels = tuple(str(s) for s in self.labels)
            if len(labels) != n:
                raise GraphError(f"layer {self.name}: {len(labels)} labels for {n} nodes")
            object.__setattr__(self, "labels", labels)
        for name, arr in (("bias", bias), ("dst", dst), ("src", src), ("weight", w), ("weight_id", tie)):
            if arr is not None:
                arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def _check_ties(self, tie: np.ndarray, w: np.ndarray) -> np.ndarray:
        shape = tuple(int(d) for d in self.weight_shape)  # type: ignore[union-attr]
        if not shape or any(d <= 0 for d in shape):
            raise GraphError(f"layer {self.name}: bad weight_shape {shape}")
        object.__setattr__(self, "weight_shape", shape)
        if tie.shape != w.shape:
            raise GraphError(f"layer {self.name}: weight_id has {tie.size} entries for {w.size} edges")
        if tie.size and (tie.min() < 0 or tie.max() >= int(np.prod(shape))):
            raise GraphError(f"layer {self.name}: weight_id out of range for weight_shape {shape}")
        if tie.size:
            order = np.argsort(tie, kind="stable")
            same = np.diff(tie[order]) == 0
            if np.any(same & (np.diff(w[order]) != 0)):
                raise GraphError(f"layer {self.name}: edges with the same weight_id carry different weights")
        return tie

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def num_edges(self) -> int:
        return int(self.dst.size)

    def node_id(self, index: int) -> str:
        """Readable id of node ``index`` (flat, row-major) of this layer."""
        if not 0 <= index < self.size:
            raise GraphError(f"layer {self.name} has no node {index}")
        if len(self.shape) == 1:
            return f"{self.name}.{index}"
        coords = np.unravel_index(index, self.shape)
        return f"{self.name}[{','.join(str(int(c)) for c in coords)}]"

    def keep_edges(self, keep: np.ndarray) -> "Layer":
        """The same layer with only the edges where ``keep`` (bool ``(E,)``) is True (ties kept along)."""
        return replace(self, dst=self.dst[keep], src=self.src[keep], weight=self.weight[keep],
                       weight_id=None if self.weight_id is None else self.weight_id[keep])

    def dense_weight(self, sources: int, dtype: Any = np.float64) -> np.ndarray:
        """The weight matrix, ``(size, sources)``, zero where there is no edge."""
        w = np.zeros((self.size, sources), dtype=dtype)
        w[self.dst, self.src] = self.weight
        return w


@dataclass(frozen=True, eq=False)
class Bounds:
    """Interval bounds of every node over an input box.

    ``lo[name]``/``hi[name]`` bound node values (after the activation),
    ``pre_lo``/``pre_hi`` the affine sums before it; all float64 ``(size,)``.
    For the input layer both are the box itself.  ``box`` names where the box
    came from (``"unit"``: every input in [0, 1]; ``"data"``: per-input
    min/max of the training data; ``"ball"``; ``"custom"``).  The bounds hold
    in exact arithmetic and in float32/float64 evaluation.

    ``exact`` (optional, from :mod:`sparsescope.exact`): per affine layer
    ``{"lo", "hi"}`` the exact pre-activation ranges (float64, NaN where no
    witness was found) and ``{"lo_status", "hi_status"}`` (``"exact"`` or
    ``"bound"``) per node.
    """

    box: str
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    pre_lo: dict[str, np.ndarray]
    pre_hi: dict[str, np.ndarray]
    exact: dict[str, dict[str, np.ndarray]] | None = None


@dataclass(frozen=True, eq=False)
class Flowgraph:
    """A layered graph of nodes and weighted edges; layers are in evaluation order.

    ``meta`` holds plain JSON values (run id, round, density ...), ``bounds``
    the optional interval annotation from :func:`sparsescope.bounds.annotate`.
    """

    layers: tuple[Layer, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    bounds: Bounds | None = None

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers or layers[0].kind != "input":
            raise GraphError("a flowgraph starts with one input layer")
        seen: dict[str, Layer] = {}
        for layer in layers:
            if layer.name in seen:
                raise GraphError(f"duplicate layer name {layer.name!r}")
            if layer.kind == "input" and seen:
                raise GraphError("only the first layer can be an input layer")
            if layer.kind == "affine":
                if layer.source not in seen:
                    raise GraphError(f"layer {layer.name}: source {layer.source!r} is not an earlier layer")
                n_src = seen[layer.source].size
                if layer.src.size and (layer.src.min() < 0 or layer.src.max() >= n_src):
                    raise GraphError(f"layer {layer.name}: edge source out of range")
            seen[layer.name] = layer
        object.__setattr__(self, "meta", dict(self.meta))

    # -- lookup -------------------------------------------------------------
    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise GraphError(f"no layer named {name!r}")

    @property
    def input(self) -> Layer:
        return self.layers[0]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def num_nodes(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def num_edges(self) -> int:
        return sum(layer.num_edges for layer in self.layers)

    def node_id(self, layer: str, index: int) -> str:
        return self.layer(layer).node_id(index)

    def node_ids(self) -> Iterator[str]:
        """All node ids, layer by layer, in index order."""
        for layer in self.layers:
            for i in range(layer.size):
                yield layer.node_id(i)

    def locate(self, node_id: str) -> tuple[str, int]:
        """Parse ``"h1.5"`` or ``"in[12,7]"`` into ``("h1", 5)`` / ``("in", 343)``."""
        m = _ID.match(node_id.strip()) if isinstance(node_id, str) else None
        if not m:
            raise GraphError(f"{node_id!r} is not a node id (expected e.g. h1.5 or in[12,7])")
        layer = self.layer(m.group(1))
        if m.group(2) is not None:
            if len(layer.shape) != 1:
                raise GraphError(f"layer {layer.name} has shape {layer.shape}: use {layer.name}[..]")
            index = int(m.group(2))
        else:
            coords = tuple(int(c) for c in m.group(3).split(","))
            if len(coords) != len(layer.shape) or any(c >= d for c, d in zip(coords, layer.shape)):
                raise GraphError(f"{node_id!r} is outside layer {layer.name} of shape {layer.shape}")
            index = int(np.ravel_multi_index(coords, layer.shape))
        if not 0 <= index < layer.size:
            raise GraphError(f"{node_id!r} is outside layer {layer.name} of size {layer.size}")
        return layer.name, index

    def with_meta(self, **meta: Any) -> "Flowgraph":
        return replace(self, meta={**self.meta, **meta})

    def with_bounds(self, bounds: Bounds | None) -> "Flowgraph":
        return replace(self, bounds=bounds)

    def _repr_html_(self) -> str:
        """Jupyter shows a flowgraph as the interactive viewer, inline."""
        from ..viewer import notebook_html

        return notebook_html(self)

    def __repr__(self) -> str:
        sizes = " -> ".join(f"{layer.name}({layer.size})" for layer in self.layers)
        return f"Flowgraph({sizes}, {self.num_edges} edges{', bounds ' + self.bounds.box if self.bounds else ''})"
