"""Conv rounds in compact, exact form for the conv page's round slider.

A conv round unrolled is large (the dense CNN has ~400k edges), but it is fixed
by few numbers: each conv layer's kernel ``(O, I, k, k)`` (pruned weights 0),
stride and padding; each dense layer's ``(out, in)`` matrix; the biases; and
the per-node bounds (constant over a channel's interior, so they deflate to
almost nothing).  :func:`pack_conv_round` stores exactly those; ``convgraph.js``
unrolls them again as :func:`sparsescope.graph._conv.conv_edges` and
``dense_layer`` do, in the flowgraph's edge order (sorted by ``(dst, src)``),
so the page's edge lists, and its float64 sums in edge order, equal the
round's flowgraph.  Average pools have no parameters: their
edges are the opened round's.

Geometry (stride, padding) is not in the flowgraph; :func:`conv_geometry`
finds it as the one candidate that reproduces every given round's edges exactly.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..graph import Flowgraph
from ..graph._conv import conv_edges, map_shape
from ._embed import _floats


def _kernel(layer) -> np.ndarray:
    k = np.zeros(int(np.prod(layer.weight_shape)))
    k[layer.weight_id] = layer.weight
    return k.reshape(layer.weight_shape)


def _is_conv(layer) -> bool:
    return layer.weight_id is not None and layer.weight_shape is not None and len(layer.weight_shape) == 4


def conv_geometry(rounds: Sequence[Flowgraph]) -> dict[str, tuple[int, int]]:
    """``{layer: (stride, padding)}`` of every conv layer: the candidate whose unrolling of each
    round's kernel gives that round's exact ``dst``, ``src`` and ``weight_id``."""
    g0 = rounds[0]
    sizes = {layer.name: layer for layer in g0.layers}
    out: dict[str, tuple[int, int]] = {}
    for layer in g0.layers[1:]:
        if not _is_conv(layer):
            continue
        k = layer.weight_shape[2]
        src_shape = map_shape(sizes[layer.source])
        fits = []
        for stride in range(1, k + 1):
            for pad in range(0, k):
                try:
                    shape, *_ = conv_edges(np.zeros(layer.weight_shape), src_shape, stride, pad)
                except Exception:  # noqa: BLE001 - a candidate that does not fit the map
                    continue
                if shape != tuple(layer.shape):
                    continue
                ok = True
                for g in rounds:
                    lay = g.layer(layer.name)
                    _, dst, src, _, tie = conv_edges(_kernel(lay), src_shape, stride, pad)
                    order = np.lexsort((src, dst))  # a layer keeps its edges sorted by (dst, src)
                    dst, src, tie = dst[order], src[order], tie[order]
                    if not (np.array_equal(dst, lay.dst) and np.array_equal(src, lay.src) and np.array_equal(tie, lay.weight_id)):
                        ok = False
                        break
                if ok:
                    fits.append((stride, pad))
        if not fits:
            raise ValueError(f"layer {layer.name}: no stride and padding reproduce its edges")
        out[layer.name] = fits[0]
    return out


def pack_conv_round(graph: Flowgraph, geometry: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """One round for ``convgraph.js``: per layer its kind (``conv``, ``dense`` or ``fixed``), the
    weights (the whole kernel or matrix, zeros included), the per-node biases, and per layer
    the bounds ``[lo, hi]`` (post-activation, as the flowgraph JSON's), all exact."""
    layers = []
    for layer in graph.layers[1:]:
        entry: dict[str, Any] = {"name": layer.name, "bias": _floats(layer.bias)}
        if _is_conv(layer):
            stride, pad = geometry[layer.name]
            entry.update(kind="conv", weight=_floats(_kernel(layer).reshape(-1)), stride=stride, padding=pad)
        elif layer.weight_id is None:
            n_src = graph.layer(layer.source).size
            w = np.zeros(layer.size * n_src)
            w[layer.dst * n_src + layer.src] = layer.weight
            entry.update(kind="dense", weight=_floats(w))
        else:
            entry["kind"] = "fixed"  # an average pool: the opened round's edges
        layers.append(entry)
    doc: dict[str, Any] = {"layers": layers}
    b = graph.bounds
    if b is not None:
        doc["bounds"] = {"box": b.box, "layers": {layer.name: [_floats(b.lo[layer.name]), _floats(b.hi[layer.name])]
                                                 for layer in graph.layers}}
    return doc
