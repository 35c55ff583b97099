"""Exact analysis over an input box: the true range of every unit by mixed-integer
programming (HiGHS), each end with a witness input; exact local robustness;
and an exactly simplified flowgraph with a re-checkable certificate."""

from ._ranges import ExactRanges, exact_ranges, float32_bounds

__all__ = ["ExactRanges", "exact_ranges", "float32_bounds"]
