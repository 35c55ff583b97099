"""Order the nodes of each layer to reduce edge crossings (deterministic barycenter sweeps).

Layers are already known (columns), so layout is only an ordering problem
per column.  Each sweep moves every node to the |w|-weighted mean position
of its neighbours in the previous (downward sweep) or next (upward sweep)
column; ties keep the current order, so the result depends only on the
graph.  The ordering with the fewest crossings seen is kept.
"""

from __future__ import annotations

import numpy as np

from ..graph import Flowgraph


def crossings(order_a: np.ndarray, order_b: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """Number of crossing pairs among edges ``src[k] -> dst[k]`` drawn between two ordered columns.

    ``order_a``/``order_b`` are the node indices top to bottom.  Uses the
    ``(len(a), len(b))`` adjacency count matrix, O(a*b) instead of O(E^2).
    """
    if src.size < 2:
        return 0
    if order_a.size * order_b.size > 4 * src.size + 65536:  # sparse between big columns (unrolled convs)
        from ..analysis._readability import crossing_count  # O(E log E), no (a, b) matrix

        return crossing_count(order_a, order_b, src, dst)
    ra = np.empty(int(order_a.max()) + 1 if order_a.size else 0, dtype=np.int64)
    ra[order_a] = np.arange(order_a.size)
    rb = np.empty(int(order_b.max()) + 1 if order_b.size else 0, dtype=np.int64)
    rb[order_b] = np.arange(order_b.size)
    m = np.zeros((order_a.size, order_b.size), dtype=np.int64)
    np.add.at(m, (ra[src], rb[dst]), 1)
    # edges (i', j') with i' > i and j' < j cross (i, j)
    below = np.cumsum(m[::-1], axis=0)[::-1]  # rows >= i
    below = np.vstack([below[1:], np.zeros((1, m.shape[1]), dtype=np.int64)])  # rows > i
    left = np.cumsum(below, axis=1)
    left = np.hstack([np.zeros((m.shape[0], 1), dtype=np.int64), left[:, :-1]])  # cols < j
    return int((m * left).sum())


def order_nodes(
    graph: Flowgraph,
    nodes: dict[str, np.ndarray],
    edges: dict[str, np.ndarray],
    *,
    fixed: tuple[str, ...] = (),
    sweeps: int = 4,
) -> dict[str, np.ndarray]:
    """Top-to-bottom node indices per layer, live nodes only (``nodes[name]`` bool masks).

    ``edges[name]`` selects the drawn edges of each affine layer; layers in
    ``fixed`` keep index order (e.g. an input drawn as an image panel).
    """
    order = {name: np.flatnonzero(mask) for name, mask in nodes.items()}
    links = []  # (source name, layer name, src, dst, |w|) of the drawn edges
    for layer in graph.layers[1:]:
        keep = edges[layer.name]
        if layer.source in fixed:
            continue
        links.append((layer.source, layer.name, layer.src[keep], layer.dst[keep], np.abs(layer.weight[keep])))
    if not links:
        return order

    def total() -> int:
        return sum(crossings(order[a], order[b], s, d) for a, b, s, d, _ in links)

    def position(name: str) -> np.ndarray:
        size = graph.layer(name).size
        pos = np.zeros(size)
        o = order[name]
        pos[o] = (np.arange(o.size) + 0.5) / max(o.size, 1)
        return pos

    def reorder(name: str, idx: np.ndarray, pos_other: np.ndarray, w: np.ndarray) -> None:
        if name in fixed:
            return
        size = graph.layer(name).size
        num = np.bincount(idx, weights=w * pos_other, minlength=size)
        den = np.bincount(idx, weights=w, minlength=size)
        cur = position(name)
        bary = np.where(den > 0, num / np.where(den > 0, den, 1.0), cur)
        o = order[name]
        order[name] = o[np.lexsort((cur[o], bary[o]))]

    best, best_order = total(), {k: v.copy() for k, v in order.items()}
    for _ in range(sweeps):
        for a, b, s, d, w in links:  # downward: place b by its sources
            reorder(b, d, position(a)[s], w)
        for a, b, s, d, w in reversed(links):  # upward: place a by its targets
            reorder(a, s, position(b)[d], w)
        c = total()
        if c < best:
            best, best_order = c, {k: v.copy() for k, v in order.items()}
    return best_order
