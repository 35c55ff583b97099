"""The study's comparison: two networks (e.g. the MLP and the CNN) at matched accuracy.

For each side: weights left (per layer), the live graph's vertices and
edges, and the same per output; for graphs with feature maps also the
channel view's sizes.  Weight count and graph size part ways for a CNN: one
surviving 3x3 kernel weight is an edge at every position of its map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..graph import Flowgraph
from ._channels import ChannelSizes, channel_sizes
from ._structure import analyse


@dataclass(frozen=True)
class ComparisonSide:
    """One network's numbers for the comparison table."""

    run: str
    round: int
    accuracy: float | None
    weights_left: int
    per_layer: dict[str, int]
    vertices: int
    edges: int
    per_output: tuple[tuple[str, int, int], ...]
    channels: tuple[ChannelSizes, ...] | None  # per output, for graphs with feature maps


def weights_per_layer(graph: Flowgraph) -> dict[str, int]:
    """Trainable weights left per layer: distinct kernel weights of a conv, edges of a dense layer
    (an average pool's fixed weights are not counted)."""
    out = {}
    for layer in graph.layers[1:]:
        if layer.weight_id is None:
            out[layer.name] = layer.num_edges
        elif len(layer.weight_shape) == 4:
            out[layer.name] = int(len(set(layer.weight_id.tolist())))
    return out


def comparison_side(graph: Flowgraph) -> ComparisonSide:
    """The comparison numbers of one round's flowgraph (its meta names run, round and accuracy)."""
    st = analyse(graph)
    per_layer = weights_per_layer(graph)
    conv = any(len(layer.shape) == 3 for layer in graph.layers)
    chans = tuple(channel_sizes(graph, k) for k in range(graph.output.size)) if conv else None
    acc = graph.meta.get("test_accuracy")
    return ComparisonSide(str(graph.meta.get("run", "")), int(graph.meta.get("round", -1)),
                None if acc is None else float(acc), sum(per_layer.values()), per_layer,
                st.vertices, st.edges, st.per_output, chans)


def matched_round(rounds: list[dict[str, Any]], accuracy: float) -> int:
    """The round whose test accuracy is closest to ``accuracy`` (ties: the one with fewer weights left)."""
    if not rounds:
        raise ValueError("no rounds to match")
    best = min(rounds, key=lambda r: (abs(float(r["test_accuracy"]) - accuracy), int(r["kept_total"])))
    return int(best["round"])
