"""Pruning: masks and iterative magnitude pruning as pure functions."""

from ._imp import STRATEGIES, PruneConfig, count_to_prune, planned_counts, prune, random_mask, target_count
from ._mask import Mask

__all__ = ["Mask", "PruneConfig", "STRATEGIES", "count_to_prune", "planned_counts", "prune", "random_mask", "target_count"]
