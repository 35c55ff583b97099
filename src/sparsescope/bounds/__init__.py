"""Interval bounds over an input box."""

from ._interval import annotate, data_box, interval_bounds, rounding_slack, unit_box

__all__ = ["annotate", "data_box", "interval_bounds", "rounding_slack", "unit_box"]
