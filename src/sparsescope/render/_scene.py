"""A tiny display list ("scene") with two byte-deterministic backends: SVG text and PNG.

Figures are built once as a list of primitives (rects, lines, polylines,
circles, text, embedded RGBA images) in user units (1 unit = 1 SVG px) and
rendered by :meth:`Scene.to_svg` or :meth:`Scene.to_png`, so both formats
show the same picture and no system binary (graphviz, cairo) is needed.

Determinism: coordinates are written with fixed precision, embedded images
are PNGs made by Pillow with a fixed compression level and no metadata, and
text is laid out with shipped DejaVu Sans metrics (the font the SVG names,
see ``_fonts``) and drawn with Pillow's basic layout engine, so the same
scene gives the same bytes run after run.

Faithfulness hooks: an image primitive may carry the numbers it depicts
(``values``, kept in the display list only), and every primitive may carry
``data`` (written as ``data-*`` attributes), so tests can read back what a
figure shows and check it against the model.

Safety: every string that reaches SVG (text, titles, classes, data
attributes) is XML-escaped, so untrusted labels stay text.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr as _quoteattr

# characters XML 1.0 forbids even when escaped (C0 controls but tab/newline/CR, surrogates, U+FFFE/F)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """XML-escape untrusted text, replacing characters XML cannot hold with U+FFFD."""
    return _escape(_NOT_XML.sub("\ufffd", str(text)))


def quoteattr(text: str) -> str:
    return _quoteattr(_NOT_XML.sub("\ufffd", str(text)))

import numpy as np
from PIL import Image, ImageDraw

from ._fonts import SVG_FAMILY, pil_font, text_width

FONT_FAMILY = SVG_FAMILY
_ANCHOR_SVG = {"start": "start", "middle": "middle", "end": "end"}
_ANCHOR_PIL = {"start": "lm", "middle": "mm", "end": "rm"}
__all__ = ["Scene", "escape", "quoteattr", "png_bytes", "text_width"]


def png_bytes(rgba: np.ndarray) -> bytes:
    """``(h, w, 4)`` uint8 -> PNG bytes: fixed compression, no metadata, same bytes each time."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _rgba(colour: str | None, opacity: float) -> tuple[int, int, int, int] | None:
    if colour is None or colour == "none":
        return None
    r, g, b = _rgb(colour)
    return r, g, b, int(round(255 * max(0.0, min(1.0, opacity))))


def _n(v: float) -> str:
    """A coordinate with at most 2 decimals, no trailing zeros (stable text)."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _attrs(cls: str | None, data: dict[str, Any] | None) -> str:
    out = ""
    if cls:
        out += f" class={quoteattr(cls)}"
    if data:
        for k, v in data.items():
            out += f" data-{k}={quoteattr(str(v))}"
    return out


def _stroke_extra(opacity: float, dash: bool, pattern: str) -> str:
    """Optional dash and opacity attributes of a stroked element."""
    extra = f' stroke-dasharray="{pattern}"' if dash else ""
    return extra + (f' stroke-opacity="{_n(opacity)}"' if opacity < 1 else "")


def _title(title: str | None) -> str:
    return f"<title>{escape(title)}</title>" if title else ""


@dataclass
class Scene:
    """A figure as an ordered list of primitives; later items paint over earlier ones.

    ``width``/``height`` are in user units.  Primitives are stored as tuples
    ``(kind, geometry, style, cls, data, title)``; use the methods to add them.
    """

    width: float
    height: float
    background: str = "#ffffff"
    items: list[tuple] = field(default_factory=list)
    depicts: dict[int, Any] = field(default_factory=dict)

    # -- building -------------------------------------------------------------
    def rect(self, x: float, y: float, w: float, h: float, *, fill: str | None = None, stroke: str | None = None,
             stroke_width: float = 1.0, rx: float = 0.0, opacity: float = 1.0, cls: str | None = None,
             data: dict[str, Any] | None = None, title: str | None = None) -> None:
        self.items.append(("rect", (x, y, w, h, rx), (fill, stroke, stroke_width, opacity), cls, data, title))

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#000000", width: float = 1.0,
             opacity: float = 1.0, dash: bool = False, cls: str | None = None, data: dict[str, Any] | None = None,
             title: str | None = None) -> None:
        self.items.append(("line", (x1, y1, x2, y2), (stroke, width, opacity, dash), cls, data, title))

    def curve(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#000000", width: float = 1.0,
              opacity: float = 1.0, dash: bool = False, cls: str | None = None, data: dict[str, Any] | None = None,
              title: str | None = None) -> None:
        """An S-curve from ``(x1, y1)`` to ``(x2, y2)`` leaving and arriving horizontally (an edge)."""
        self.items.append(("path", (x1, y1, x2, y2), (stroke, width, opacity, dash), cls, data, title))

    def route(self, points: list[tuple[float, float]], *, stroke: str = "#000000", width: float = 1.0,
              opacity: float = 1.0, dash: bool = False, cls: str | None = None, data: dict[str, Any] | None = None,
              title: str | None = None) -> None:
        """S-curves (as :meth:`curve`) through ``points`` in turn: an edge that detours via waypoints."""
        self.items.append(("route", tuple(points), (stroke, width, opacity, dash), cls, data, title))

    def polyline(self, points: list[tuple[float, float]], *, stroke: str = "#000000", width: float = 1.0,
                 opacity: float = 1.0, dash: bool = False, cls: str | None = None) -> None:
        self.items.append(("polyline", tuple(points), (stroke, width, opacity, dash), cls, None, None))

    def circle(self, cx: float, cy: float, r: float, *, fill: str | None = "#ffffff", stroke: str | None = "#000000",
               stroke_width: float = 1.0, cls: str | None = None, data: dict[str, Any] | None = None,
               title: str | None = None) -> None:
        self.items.append(("circle", (cx, cy, r), (fill, stroke, stroke_width), cls, data, title))

    def text(self, x: float, y: float, s: str, *, size: float = 11.0, fill: str = "#222222", anchor: str = "start",
             bold: bool = False, rotate: bool = False, cls: str | None = None, data: dict[str, Any] | None = None) -> None:
        """Text vertically centred on ``y``; ``anchor`` is start/middle/end; ``rotate`` turns it -90 degrees."""
        self.items.append(("text", (x, y), (str(s), size, fill, anchor, bold, rotate), cls, data, None))

    def image(self, x: float, y: float, w: float, h: float, rgba: np.ndarray, *, cls: str | None = None,
              data: dict[str, Any] | None = None, title: str | None = None, values: Any = None) -> None:
        """An ``(rows, cols, 4)`` uint8 image scaled (nearest neighbour) to ``w`` x ``h``.

        ``values``: optional plain data the image depicts (e.g. the ``(rows, cols)``
        weights of a tile), kept in the display list for tests and tools, never written out.
        """
        rgba = np.asarray(rgba, dtype=np.uint8)
        if rgba.ndim != 3 or rgba.shape[2] != 4:
            raise ValueError(f"image must be (rows, cols, 4) uint8, got {rgba.shape}")
        self.items.append(("image", (x, y, w, h), rgba, cls, data, title))
        if values is not None:
            self.depicts[len(self.items) - 1] = values

    def values_of(self, index: int) -> Any:
        """The plain data image item ``index`` depicts (None when it was not given)."""
        return self.depicts.get(index)

    def count(self, cls: str) -> int:
        """How many primitives carry class ``cls`` (for tests and summaries)."""
        return sum(1 for it in self.items if it[3] and cls in it[3].split())

    # -- SVG ------------------------------------------------------------------
    def to_svg(self) -> str:
        """Standalone SVG 1.1 text; all strings escaped, images as base64 PNG data URIs."""
        w, h = self.width, self.height
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{_n(w)}" height="{_n(h)}" '
            f'viewBox="0 0 {_n(w)} {_n(h)}" font-family="{FONT_FAMILY}" text-rendering="geometricPrecision" '
            'style="font-kerning:none">\n',
            f'<rect width="100%" height="100%" fill="{self.background}"/>\n',
        ]
        for kind, geo, style, cls, data, title in self.items:
            attrs = _attrs(cls, data)
            t = _title(title)
            if kind == "line":
                stroke, width, op, dash = style
                extra = _stroke_extra(op, dash, "3 2")
                el = (f'<line x1="{_n(geo[0])}" y1="{_n(geo[1])}" x2="{_n(geo[2])}" y2="{_n(geo[3])}" '
                      f'stroke="{stroke}" stroke-width="{_n(width)}"{extra}{attrs}')
            elif kind == "path":
                stroke, width, op, dash = style
                x1, y1, x2, y2 = geo
                mx = (x1 + x2) / 2
                extra = _stroke_extra(op, dash, "3 2")
                el = (f'<path d="M{_n(x1)} {_n(y1)}C{_n(mx)} {_n(y1)} {_n(mx)} {_n(y2)} {_n(x2)} {_n(y2)}" fill="none" '
                      f'stroke="{stroke}" stroke-width="{_n(width)}"{extra}{attrs}')
            elif kind == "route":
                stroke, width, op, dash = style
                d = f"M{_n(geo[0][0])} {_n(geo[0][1])}" + "".join(
                    f"C{_n((a + c) / 2)} {_n(b)} {_n((a + c) / 2)} {_n(e)} {_n(c)} {_n(e)}"
                    for (a, b), (c, e) in zip(geo[:-1], geo[1:]))
                el = (f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{_n(width)}"'
                      f"{_stroke_extra(op, dash, '3 2')}{attrs}")
                kind = "path"
            elif kind == "polyline":
                stroke, width, op, dash = style
                pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in geo)
                extra = _stroke_extra(op, dash, "4 3")
                el = (f'<polyline points="{pts}" fill="none" stroke="{stroke}" stroke-width="{_n(width)}" '
                      f'stroke-linejoin="round"{extra}{attrs}')
            elif kind == "rect":
                fill, stroke, sw, op = style
                x, y, rw, rh, rx = geo
                extra = f' rx="{_n(rx)}"' if rx else ""
                extra += f' stroke="{stroke}" stroke-width="{_n(sw)}"' if stroke else ""
                extra += f' fill-opacity="{_n(op)}"' if op < 1 else ""
                el = (f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(rw)}" height="{_n(rh)}" '
                      f'fill="{fill or "none"}"{extra}{attrs}')
            elif kind == "circle":
                fill, stroke, sw = style
                extra = f' stroke="{stroke}" stroke-width="{_n(sw)}"' if stroke else ""
                el = f'<circle cx="{_n(geo[0])}" cy="{_n(geo[1])}" r="{_n(geo[2])}" fill="{fill or "none"}"{extra}{attrs}'
            elif kind == "text":
                s, size, fill, anchor, bold, rotate = style
                x, y = geo
                extra = ' font-weight="bold"' if bold else ""
                extra += f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
                out.append(f'<text xml:space="preserve" x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}" '
                           f'text-anchor="{_ANCHOR_SVG[anchor]}" dominant-baseline="central"{extra}{attrs}>'
                           f"{escape(s)}</text>\n")
                continue
            elif kind == "image":
                x, y, iw, ih = geo
                uri = "data:image/png;base64," + base64.b64encode(png_bytes(style)).decode("ascii")
                el = (f'<image x="{_n(x)}" y="{_n(y)}" width="{_n(iw)}" height="{_n(ih)}" preserveAspectRatio="none" '
                      f'style="image-rendering:pixelated" xlink:href="{uri}"{attrs}')
            else:  # pragma: no cover - guarded by the builders
                raise ValueError(kind)
            out.append(f"{el}>{t}</{kind}>\n" if t else f"{el}/>\n")
        out.append("</svg>\n")
        return "".join(out)

    # -- PNG ------------------------------------------------------------------
    def to_png(self, scale: float = 1.5) -> bytes:
        """The scene drawn by Pillow at ``scale`` pixels per unit, as PNG bytes.

        The image is ``(ceil(width * scale), ceil(height * scale))`` pixels.
        """
        size = self.png_size(scale)
        img = Image.new("RGB", size, _rgb(self.background))
        draw = ImageDraw.Draw(img, "RGBA")
        s = scale
        for kind, geo, style, _cls, _data, _title in self.items:
            if kind in ("line", "polyline", "path", "route"):
                stroke, width, op, dash = style
                if kind == "line":
                    pts = [(geo[0], geo[1]), (geo[2], geo[3])]
                elif kind == "path":
                    pts = _bezier(*geo)
                elif kind == "route":
                    pts = [p for a, b in zip(geo[:-1], geo[1:]) for p in _bezier(*a, *b)]
                else:
                    pts = list(geo)
                pts = [(x * s, y * s) for x, y in pts]
                lw = max(1, int(round(width * s)))
                colour = _rgba(stroke, op)
                if dash:
                    for a, b in zip(pts[:-1], pts[1:]):
                        _dashed(draw, a, b, colour, lw, 4 * s, 3 * s)
                else:
                    draw.line(pts, fill=colour, width=lw, joint="curve" if kind != "line" else None)
            elif kind == "rect":
                fill, stroke, sw, op = style
                x, y, rw, rh, rx = geo
                box = [x * s, y * s, (x + rw) * s - 1, (y + rh) * s - 1]
                kw = dict(fill=_rgba(fill, op), outline=_rgba(stroke, 1.0),
                          width=max(1, int(round(sw * s))) if stroke else 0)
                if rx:
                    draw.rounded_rectangle(box, radius=rx * s, **kw)
                else:
                    draw.rectangle(box, **kw)
            elif kind == "circle":
                fill, stroke, sw = style
                cx, cy, r = geo
                draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=_rgba(fill, 1.0),
                             outline=_rgba(stroke, 1.0), width=max(1, int(round(sw * s))) if stroke else 0)
            elif kind == "text":
                txt, size_, fill, anchor, bold, rotate = style
                x, y = geo
                font = pil_font(size_ * s, bold)
                if rotate:
                    _rotated_text(img, x * s, y * s, txt, font, _rgb(fill), anchor)
                    draw = ImageDraw.Draw(img, "RGBA")
                else:
                    draw.text((x * s, y * s), txt, fill=_rgb(fill), font=font, anchor=_ANCHOR_PIL[anchor])
            elif kind == "image":
                x, y, iw, ih = geo
                tw, th = max(1, int(round(iw * s))), max(1, int(round(ih * s)))
                tile = Image.fromarray(style, "RGBA").resize((tw, th), Image.Resampling.NEAREST)
                img.paste(tile, (int(round(x * s)), int(round(y * s))), tile)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=6)
        return buf.getvalue()

    def png_size(self, scale: float = 1.5) -> tuple[int, int]:
        return int(np.ceil(self.width * scale)), int(np.ceil(self.height * scale))


_T = np.linspace(0.0, 1.0, 17)
_B = np.stack([(1 - _T) ** 3 + 3 * (1 - _T) ** 2 * _T, 3 * (1 - _T) * _T**2 + _T**3], axis=1)  # weight of y1, y2


def _bezier(x1: float, y1: float, x2: float, y2: float) -> list[tuple[float, float]]:
    """Points along the SVG curve ``M x1 y1 C mx y1, mx y2, x2 y2`` (x is linear in t there)."""
    xs = x1 + (x2 - x1) * (3 * (1 - _T) * _T**2 * 0.5 + 3 * (1 - _T) ** 2 * _T * 0.5 + _T**3)
    ys = _B[:, 0] * y1 + _B[:, 1] * y2
    return list(zip(xs.tolist(), ys.tolist()))


def _dashed(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], colour: Any, width: int,
            on: float, off: float) -> None:
    (x1, y1), (x2, y2) = a, b
    length = float(np.hypot(x2 - x1, y2 - y1))
    if length == 0:
        return
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    t = 0.0
    while t < length:
        e = min(t + on, length)
        draw.line([(x1 + ux * t, y1 + uy * t), (x1 + ux * e, y1 + uy * e)], fill=colour, width=width)
        t = e + off


def _rotated_text(img: Image.Image, x: float, y: float, txt: str, font: Any, fill: tuple[int, int, int],
                  anchor: str) -> None:
    """Text turned -90 degrees, centred like SVG's ``rotate(-90 x y)`` about its anchor point."""
    w = int(np.ceil(font.getlength(txt))) + 4
    h = int(np.ceil(font.size * 1.4)) + 2
    tile = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((2 if anchor == "start" else w / 2 if anchor == "middle" else w - 2, h / 2), txt,
                              fill=fill + (255,), font=font, anchor=_ANCHOR_PIL[anchor])
    tile = tile.rotate(90, expand=True)
    ax = {"start": 2, "middle": w / 2, "end": w - 2}[anchor]
    # after rotation by +90 (counter-clockwise) the anchor (ax, h/2) moves to (h/2, w - ax)
    img.paste(tile, (int(round(x - h / 2)), int(round(y - (w - ax)))), tile)
