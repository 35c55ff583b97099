"""Node positions, computed once in Python: layered columns, barycenter order.

Units keep their layer (column); within a column they are ordered by
alternating barycenter sweeps so edges run as straight as possible.  Outputs
stay in class order.  The layout of the current round is used for every
round, so moving the round slider thins the edges without moving the nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import Flowgraph

CELL = 8.0  # world units per input pixel
IMAGE = 40.0  # side of a first-layer weight image
PITCH = 46.0  # vertical distance between first-layer units
COLUMN_GAP = 260.0


def _order(graph: Flowgraph, sweeps: int = 6) -> dict[str, np.ndarray]:
    """Rank of every unit within its (non-input) layer."""
    names = [layer.name for layer in graph.layers[1:]]
    pos = {layer.name: np.arange(layer.size, dtype=np.float64) / max(layer.size - 1, 1) for layer in graph.layers}
    inp = graph.input
    if len(inp.shape) == 2:  # pixel rows as the input "position"
        pos[inp.name] = np.repeat(np.arange(inp.shape[0]), inp.shape[1]) / max(inp.shape[0] - 1, 1)
    adj = {}
    for layer in graph.layers[1:]:
        adj[layer.name] = (layer.source, layer.dst, layer.src, np.abs(layer.weight))
    fixed = {graph.output.name}
    for sweep in range(sweeps):
        backward = sweep % 2 == 1
        order = names[::-1] if backward else names
        for name in order:
            if name in fixed:
                continue
            acc = np.zeros_like(pos[name])
            wsum = np.zeros_like(pos[name])
            source, dst, src, w = adj[name]
            if not backward:  # towards the sources
                np.add.at(acc, dst, w * pos[source][src])
                np.add.at(wsum, dst, w)
            else:  # towards the layers this one feeds
                for other, (osrc_name, odst, osrc, ow) in adj.items():
                    if osrc_name == name:
                        np.add.at(acc, osrc, ow * pos[other][odst])
                        np.add.at(wsum, osrc, ow)
            bary = np.where(wsum > 0, acc / np.maximum(wsum, 1e-300), 2.0 + pos[name])
            rank = np.argsort(np.argsort(bary, kind="stable"), kind="stable")
            pos[name] = rank / max(len(rank) - 1, 1)
    return {name: np.rint(pos[name] * max(len(pos[name]) - 1, 1)).astype(int) for name in names}


def layout(graph: Flowgraph) -> dict[str, Any]:
    """World coordinates: per layer ``x`` and per node ``y`` (centres), plus sizes."""
    ranks = _order(graph)
    hidden = graph.layers[1:]
    tallest = max(layer.size for layer in hidden)
    height = tallest * PITCH
    inp = graph.input
    cols = inp.shape[1] if len(inp.shape) == 2 else 1
    rows = inp.size // cols
    grid_h = rows * CELL
    out: dict[str, Any] = {
        "height": height,
        "input": {"x": 0.0, "y": (height - grid_h) / 2, "cell": CELL, "rows": rows, "cols": cols},
        "image": IMAGE,
        "layers": {},
    }
    x = cols * CELL + COLUMN_GAP
    for k, layer in enumerate(hidden):
        pitch = height / layer.size
        y = (ranks[layer.name] + 0.5) * pitch
        out["layers"][layer.name] = {"x": x, "y": [float(v) for v in y], "image": k == 0 and len(inp.shape) == 2}
        x += COLUMN_GAP + (2 * IMAGE + 8 if k == 0 else 0)
    out["width"] = x - COLUMN_GAP + 160
    return out
