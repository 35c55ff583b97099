"""Node order, computed once in Python: layered columns, barycenter order.

Units keep their layer (column); within a column they are ordered by
alternating barycenter sweeps so edges run as straight as possible.  Outputs
stay in class order.  The order (``rank``) of the current round is used for
every round; the page places the units it shows (the live ones, or all with
"show unused units") in that order, so the graph fills the canvas.  ``y``
places every unit, for a page showing them all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis import live_mask
from ..graph import Flowgraph
from ..render import order_nodes

CELL = 8.0  # world units per input pixel
IMAGE = 54.0  # side of a first-layer weight image (a hover magnifier shows it at 112+ px)
PITCH = 58.0  # vertical distance between first-layer units
COLUMN_GAP = 230.0


def _order(graph: Flowgraph) -> dict[str, np.ndarray]:
    """Rank of every unit within its (non-input) layer.

    Live units are ordered by the same crossing-reducing barycenter sweeps as
    the static figures (:func:`sparsescope.render.order_nodes`); units on no
    input-to-output path go to the bottom in index order; outputs keep class order.
    """
    nodes, edges = live_mask(graph)
    out = graph.output.name
    live = order_nodes(graph, nodes, edges, fixed=(graph.input.name, out))
    ranks = {}
    for layer in graph.layers[1:]:
        first = np.arange(layer.size) if layer.name == out else live[layer.name]
        rest = np.setdiff1d(np.arange(layer.size), first)
        rank = np.empty(layer.size, dtype=int)
        rank[np.concatenate([first, rest]).astype(int)] = np.arange(layer.size)
        ranks[layer.name] = rank
    return ranks


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
        "pitch": PITCH,
        "layers": {},
    }
    x = cols * CELL + COLUMN_GAP
    for k, layer in enumerate(hidden):
        pitch = height / layer.size
        y = (ranks[layer.name] + 0.5) * pitch
        out["layers"][layer.name] = {"x": x, "y": [float(v) for v in y], "rank": [int(v) for v in ranks[layer.name]],
                                     "image": k == 0 and len(inp.shape) == 2}
        x += COLUMN_GAP + (2 * IMAGE + 8 if k == 0 else 0)
    out["width"] = x - COLUMN_GAP + 160
    return out
