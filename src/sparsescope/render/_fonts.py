"""Text metrics of the font the figures name: DejaVu Sans (regular and bold).

Layout must measure text with the font that will draw it, or labels run out
of their boxes.  The SVG names ``DejaVu Sans`` (Debian's ``fonts-dejavu-core``,
installed by ``scripts/setup.sh``) and turns kerning off, so a line's width
is the sum of its glyphs' advance widths.  Those advances ship with the
package (``dejavu_metrics.json``, made by ``scripts/font_metrics.py`` from the
TTFs), so layout -- and so the SVG bytes -- do not depend on which fonts the
machine has.  A character outside the table counts as one em (wider than any
DejaVu glyph but a few), so unknown text errs on the roomy side.

PNGs are drawn by Pillow with the same TTF when it is installed, else with
Pillow's bundled font (then the PNG's text is a little narrower than laid out).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont

FAMILY = "DejaVu Sans"
SVG_FAMILY = "'DejaVu Sans', sans-serif"
TTF_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
TTF = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}


@lru_cache(maxsize=1)
def _tables() -> dict[bool, tuple[dict[int, float], float]]:
    doc = json.loads(resources.files(__package__).joinpath("dejavu_metrics.json").read_text(encoding="utf-8"))
    out = {}
    for bold, key in ((False, "regular"), (True, "bold")):
        t = doc[key]
        em = float(t["units_per_em"])
        adv: dict[int, float] = {}
        for run in t["runs"]:
            start = run[0]
            for k, w in enumerate(run[1:]):
                adv[start + k] = w / em
        out[bold] = (adv, 1.0)
    return out


@lru_cache(maxsize=8192)
def text_width(text: str, size: float = 11.0, bold: bool = False) -> float:
    """Width of ``text`` in user units at font size ``size`` (no kerning), DejaVu Sans metrics."""
    adv, unknown = _tables()[bool(bold)]
    return float(size) * sum(adv.get(ord(ch), unknown) for ch in str(text))


def ttf_path(bold: bool = False) -> Path | None:
    """The installed DejaVu Sans TTF, or None."""
    for d in TTF_DIRS:
        p = d / TTF[bool(bold)]
        if p.is_file():
            return p
    return None


@lru_cache(maxsize=128)
def pil_font(size: float, bold: bool = False) -> ImageFont.FreeTypeFont:
    """A Pillow font for PNGs: DejaVu Sans when installed, else Pillow's bundled font (basic layout)."""
    size = max(1.0, float(size))
    path = ttf_path(bold)
    if path is not None:
        return ImageFont.truetype(str(path), size=size, layout_engine=ImageFont.Layout.BASIC)
    return ImageFont.load_default(size=size).font_variant(layout_engine=ImageFont.Layout.BASIC)
