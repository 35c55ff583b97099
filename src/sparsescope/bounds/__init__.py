"""Interval bounds over an input box."""

from ._interval import annotate, data_box, interval_bounds, unit_box

__all__ = ["annotate", "data_box", "interval_bounds", "unit_box"]
