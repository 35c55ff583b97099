"""One palette for every figure: green positive, red negative, grey exactly zero.

The tile functions turn plain arrays into ``(rows, cols, 4)`` uint8 RGBA
images for :meth:`Scene.image`.
"""

from __future__ import annotations

import numpy as np

POSITIVE = "#1a9641"
NEGATIVE = "#d7191c"
ZERO = "#9a9a9a"
INK = "#222222"
MUTED = "#6b6b6b"
CARD = "#ffffff"
CARD_EDGE = "#8c8c8c"
PANEL = "#f6f6f4"
OFF_FILL = "#ececec"  # card of a unit proven always off over the box
OFF_INK = "#8a8a8a"
CONST_FILL = "#eaf1fb"  # card of a constant (bias-only) unit
FADED = "#b5b5b5"
SERIES = ("#3366aa", "#dd8833", "#339966", "#aa3377", "#777777", "#66ccee")

_POS_LIGHT, _POS_DARK = np.array([199, 233, 192]), np.array([0, 104, 55])
_NEG_LIGHT, _NEG_DARK = np.array([253, 208, 195]), np.array([165, 0, 38])
_ZERO_RGB = np.array([232, 232, 232])


def sign_colour(v: float) -> str:
    """The edge/legend colour of a signed quantity."""
    return POSITIVE if v > 0 else NEGATIVE if v < 0 else ZERO


def signed_tile(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """``(rows, cols)`` floats -> RGBA: green > 0, red < 0, light grey == 0.

    Intensity is ``|v| / vmax`` (clipped to 1); ``vmax`` defaults to the tile's
    own ``max|v|`` (each tile on its own scale, so a unit's pattern stays
    visible whatever its weight norm) or is shared by all tiles of a figure
    (then one colour bar reads every tile).  Any nonzero value is at least
    lightly tinted, so it never reads as zero.
    """
    v = np.asarray(values, dtype=np.float64)
    m = (np.abs(v).max() if v.size else 0.0) if vmax is None else float(vmax)
    t = (np.minimum(np.abs(v) / m, 1.0) if m > 0 else np.zeros_like(v))[..., None]
    pos = _POS_LIGHT + (_POS_DARK - _POS_LIGHT) * t
    neg = _NEG_LIGHT + (_NEG_DARK - _NEG_LIGHT) * t
    rgb = np.where((v > 0)[..., None], pos, np.where((v < 0)[..., None], neg, _ZERO_RGB))
    return _with_alpha(rgb)


def colour_bar(vmax: float, steps: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """A ``(1, steps)`` RGBA strip from ``-vmax`` (left) through 0 to ``+vmax`` and the values it shows."""
    v = np.linspace(-vmax, vmax, steps)
    return signed_tile(v[None, :], vmax), v


def ink_tile(values: np.ndarray) -> np.ndarray:
    """An input image as dark ink on white: 0 -> white, max(1, max|x|) -> black."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    m = max(1.0, float(v.max()) if v.size else 1.0)
    g = 255.0 * (1.0 - v / m)
    return _with_alpha(np.repeat(g[..., None], 3, axis=-1))


def mask_tile(used: np.ndarray) -> np.ndarray:
    """Bool ``(rows, cols)`` -> RGBA: used inputs dark slate, unused ones light grey."""
    u = np.asarray(used, dtype=bool)[..., None]
    return _with_alpha(np.where(u, np.array([55, 71, 99]), _ZERO_RGB))


def _with_alpha(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:-1] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(rgb), 0, 255)
    out[..., 3] = 255
    return out
