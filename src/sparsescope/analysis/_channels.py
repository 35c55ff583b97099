"""The channel-level view of a flowgraph: one node per feature-map channel (per kernel).

The unrolled graph of a convolution has one node per position and one edge
per (kernel weight, position).  The channel view folds each ``(C, H, W)``
layer to ``C`` nodes (``c1[2]`` is channel 2 of ``c1``), an ``(H, W)`` input
to one node (``in``), and keeps flat layers' nodes as they are (``out.7``).
A channel edge ``src -> dst`` stands for all unrolled edges between the two,
and records how many distinct kernel weights (``weight_id``) they use:
that is the weight-sharing picture the weight count alone describes.

Everything is a projection of the exact unrolled structure
(:func:`live_mask`): a channel is live when one of its positions is, a
channel edge when one of its unrolled edges is.  So the channel view's sizes
are exact statements about the same graph, seen coarser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph import Flowgraph, Layer
from ._structure import live_mask


def channel_count(layer: Layer) -> int:
    """Nodes of ``layer`` in the channel view: C of a (C, H, W) map, 1 for an (H, W) image, else its size."""
    if len(layer.shape) == 3:
        return layer.shape[0]
    if len(layer.shape) == 2:
        return 1
    return layer.size


def channel_of(layer: Layer, index: np.ndarray) -> np.ndarray:
    """Channel-view node of each unrolled node ``index`` of ``layer``."""
    index = np.asarray(index, dtype=np.int64)
    if len(layer.shape) == 3:
        return index // (layer.shape[1] * layer.shape[2])
    if len(layer.shape) == 2:
        return np.zeros_like(index)
    return index


def channel_id(layer: Layer, c: int) -> str:
    """Readable id of channel-view node ``c``: ``c1[2]``, ``in`` (an image), ``out.7`` (a flat layer's unit)."""
    if len(layer.shape) == 3:
        return f"{layer.name}[{int(c)}]"
    if len(layer.shape) == 2:
        return layer.name
    return layer.node_id(int(c))


@dataclass(frozen=True)
class ChannelEdges:
    """The channel edges of one layer: parallel arrays sorted by ``(dst, src)``.

    ``edges``: unrolled edges folded into each; ``weights``: distinct kernel
    weights among them (for layers without ``weight_id``, every edge is its
    own weight, so ``weights == edges``).
    """

    layer: str
    source: str
    dst: np.ndarray
    src: np.ndarray
    edges: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class ChannelSizes:
    """Sizes of a (sub)graph in the channel view and the unrolled view side by side."""

    vertices: int  # live channel-view nodes
    edges: int  # live channel edges
    weights: int  # distinct trainable weights on live unrolled edges (a pool's fixed 1/k^2 not counted)
    unrolled_vertices: int
    unrolled_edges: int


def fold_edges(graph: Flowgraph, layer: Layer, keep: np.ndarray | None = None) -> ChannelEdges:
    """Fold ``layer``'s unrolled edges (those where ``keep``, default all) into channel edges."""
    src_layer = graph.layer(layer.source)
    keep = np.ones(layer.num_edges, dtype=bool) if keep is None else keep
    d = channel_of(layer, layer.dst[keep])
    s = channel_of(src_layer, layer.src[keep])
    n_src = channel_count(src_layer)
    key = d * n_src + s
    pairs, counts = np.unique(key, return_counts=True)
    if layer.weight_id is not None:
        tie = layer.weight_id[keep]
        uniq = np.unique(np.stack([key, tie]), axis=1) if key.size else np.zeros((2, 0), dtype=np.int64)
        wpairs, wcounts = np.unique(uniq[0], return_counts=True)
        weights = wcounts[np.searchsorted(wpairs, pairs)] if pairs.size else np.zeros(0, dtype=np.int64)
    else:
        weights = counts
    return ChannelEdges(layer.name, layer.source, pairs // n_src, pairs % n_src, counts, weights)


def channel_view(graph: Flowgraph, outputs: list[int] | None = None, *, live_only: bool = True
                 ) -> tuple[dict[str, np.ndarray], dict[str, ChannelEdges]]:
    """The channel view of the live graph of ``outputs`` (default all).

    Returns ``(nodes, edges)``: per layer a bool ``(channels,)`` (the
    channel has a live position) and its :class:`ChannelEdges` over live
    unrolled edges (``live_only=False``: over all edges, nodes all True).
    """
    if live_only:
        nodes_u, edges_u = live_mask(graph, outputs)
    nodes: dict[str, np.ndarray] = {}
    edges: dict[str, ChannelEdges] = {}
    for layer in graph.layers:
        n = channel_count(layer)
        if live_only:
            live = np.zeros(n, dtype=bool)
            live[channel_of(layer, np.flatnonzero(nodes_u[layer.name]))] = True
        else:
            live = np.ones(n, dtype=bool)
        nodes[layer.name] = live
        if layer.kind != "input":
            edges[layer.name] = fold_edges(graph, layer, edges_u[layer.name] if live_only else None)
    return nodes, edges


def channel_sizes(graph: Flowgraph, output: int | None = None) -> ChannelSizes:
    """Live sizes of the whole graph (``output=None``) or of one output's subgraph, in both views."""
    outs = None if output is None else [output]
    nodes_u, edges_u = live_mask(graph, outs)
    nodes, edges = channel_view(graph, outs)
    weights = 0
    for layer in graph.layers[1:]:
        keep = edges_u[layer.name]
        if layer.weight_id is None:
            weights += int(keep.sum())
        elif len(layer.weight_shape) == 4:  # a conv kernel; an average pool has no trainable weights
            weights += int(np.unique(layer.weight_id[keep]).size)
    return ChannelSizes(
        vertices=int(sum(v.sum() for v in nodes.values())),
        edges=int(sum(e.dst.size for e in edges.values())),
        weights=weights,
        unrolled_vertices=int(sum(v.sum() for v in nodes_u.values())),
        unrolled_edges=int(sum(v.sum() for v in edges_u.values())),
    )
