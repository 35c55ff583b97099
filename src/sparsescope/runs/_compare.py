"""Two runs side by side at matched accuracy (the study's MLP-vs-CNN comparison)."""

from __future__ import annotations

from ..analysis import ComparisonSide, comparison_side, matched_round
from ..graph import Flowgraph
from ._query import round_flowgraph
from ._store import RunStore


def compare_at_matched_accuracy(graph: Flowgraph, other: RunStore) -> tuple[ComparisonSide, ComparisonSide]:
    """``graph`` (a round's flowgraph) and the round of ``other`` whose test accuracy is closest to it."""
    acc = float(graph.meta.get("test_accuracy") or 0.0)
    idx = matched_round(other.round_metrics(), acc)
    return comparison_side(graph), comparison_side(round_flowgraph(other, idx))
