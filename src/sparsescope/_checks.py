"""Strict checks for config values: one ConfigError naming the key, never a silent coercion.

TOML gives bools, ints, floats and strings; ``True`` is an ``int`` in Python,
so every check rejects bools explicitly.
"""

from __future__ import annotations

import math

from ._errors import ConfigError

MAX_SEED = 2**63 - 1


def need_int(what: str, value: object, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in ``[lo, hi]`` (bounds inclusive, ``None``: unbounded)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and lo is not None and value < lo:
        ok = False
    if ok and hi is not None and value > hi:
        ok = False
    if not ok:
        span = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise ConfigError(f"{what} must be {span}, got {value!r}")
    return int(value)


def need_float(what: str, value: object, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite number in the interval from ``lo`` to ``hi`` (open ends as flagged)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(f"{what} must be a number in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return float(value)
