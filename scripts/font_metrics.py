"""Regenerate src/sparsescope/render/dejavu_metrics.json: per-glyph advance widths of
DejaVu Sans and DejaVu Sans Bold (Debian's fonts-dejavu-core), the font the SVG figures name.

Figures lay text out with these widths (render/_fonts.py), so an SVG is the same on every
machine and its boxes fit the text when a browser draws it in DejaVu Sans.

    python3 scripts/font_metrics.py [FONT_DIR]     # needs fontTools (pip install fonttools)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fontTools.ttLib import TTFont

# Latin, Greek, Cyrillic, general punctuation, arrows, maths, box drawing, shapes, dingbats
RANGES = [(0x20, 0x250), (0x370, 0x530), (0x2000, 0x2300), (0x2500, 0x27C0)]


def table(path: Path) -> dict:
    font = TTFont(str(path))
    cmap, hmtx = font.getBestCmap(), font["hmtx"]
    runs: list[list] = []
    for lo, hi in RANGES:
        run: list = []
        for cp in range(lo, hi):
            name = cmap.get(cp)
            if name is None:
                if run:
                    runs.append(run)
                run = []
                continue
            if not run:
                run = [cp]
            run.append(hmtx[name][0])
        if run:
            runs.append(run)
    return {"units_per_em": font["head"].unitsPerEm, "runs": runs, "version": font["name"].getDebugName(5)}


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu")
    doc = {"family": "DejaVu Sans", "source": "fonts-dejavu-core",
           "regular": table(folder / "DejaVuSans.ttf"), "bold": table(folder / "DejaVuSans-Bold.ttf")}
    out = Path(__file__).resolve().parents[1] / "src/sparsescope/render/dejavu_metrics.json"
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
