"""How data rides inside the page: escaped JSON script blocks and compact arrays.

The current round's flowgraph is embedded as the exact text of
:func:`sparsescope.graph.to_json`, inside
``<script type="application/json" id="flowgraph">``, with every ``<``, ``>``
and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026``.  Those characters
only ever occur inside JSON strings, where the escapes mean the same
character, so the block is the same JSON document and can never close the
script element.  :func:`read_embedded` undoes the escaping exactly.

Other rounds ride in a compact form (:func:`pack_round`): per affine layer a
bit-packed edge mask, the kept weights and the biases as little-endian
float32 when that is exact (trained torch weights are float32) and float64
otherwise, and the pre-activation bounds as float64; all base64.  Long float
arrays and the sample images are also deflated (``z`` keys: raw deflate of
the bytes, float bytes grouped by position within the number first, which
compresses better); the page inflates them with the browser's built-in
``DecompressionStream`` before it starts.  Every encoding is lossless.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

import numpy as np

from ..graph import Flowgraph

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_UNESCAPES = {"u003c": "<", "u003e": ">", "u0026": "&"}
_SCRIPT = re.compile(r'<script type="application/json" id="([A-Za-z0-9_-]+)">(.*?)</script>', re.S)
_ESCAPE_SEQ = re.compile(r"\\(u003c|u003e|u0026|.)", re.S)


def escape_json(text: str) -> str:
    """JSON text made safe inside a ``<script>`` element (same document)."""
    return re.sub(r"[<>&]", lambda m: _ESCAPES[m.group(0)], text)


def unescape_json(text: str) -> str:
    """Exact inverse of :func:`escape_json` for JSON text (escape-aware)."""
    return _ESCAPE_SEQ.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), text)


def dump_json(value: Any) -> str:
    """Compact ASCII JSON of plain data, escaped for a script block."""
    return escape_json(json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False))


def read_embedded(html: str, block: str = "flowgraph") -> str:
    """The JSON text of script block ``block``; for ``"flowgraph"`` it equals ``to_json(graph)``."""
    for m in _SCRIPT.finditer(html):
        if m.group(1) == block:
            return unescape_json(m.group(2))
    raise KeyError(f"page has no embedded block {block!r}")


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


ZIP_MIN = 256  # shorter arrays are not worth deflating


def deflate(raw: bytes) -> str:
    """Raw deflate (no zlib header: the browser's ``deflate-raw``), level 9, base64."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return base64.b64encode(c.compress(raw) + c.flush()).decode("ascii")


def shuffled(array: np.ndarray) -> bytes:
    """The bytes of ``array`` grouped by byte position (all first bytes, then all second ...)."""
    a = np.ascontiguousarray(array)
    return a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()


def _floats(values: np.ndarray) -> dict[str, str]:
    """float32 when that is exact, else float64; little-endian; long arrays shuffled and deflated."""
    v = np.asarray(values, dtype=np.float64)
    f32 = v.astype("<f4")
    exact32 = np.array_equal(f32.astype(np.float64), v)
    arr = f32 if exact32 else v.astype("<f8")
    key = "f4" if exact32 else "f8"
    if arr.size >= ZIP_MIN:
        return {"z" + key: deflate(shuffled(arr))}
    return {key: b64(arr)}


def pack_round(graph: Flowgraph) -> dict[str, Any]:
    """A round's weights, biases and bounds in compact, exact form."""
    sizes = {layer.name: layer.size for layer in graph.layers}
    layers = []
    for layer in graph.layers[1:]:
        n_src = sizes[layer.source]
        entry: dict[str, Any] = {"name": layer.name, "bias": _floats(layer.bias), "weight": _floats(layer.weight)}
        if layer.num_edges == layer.size * n_src:
            entry["mask"] = "all"
        else:
            mask = np.zeros(layer.size * n_src, dtype=bool)
            mask[layer.dst * n_src + layer.src] = True
            entry["mask"] = b64(np.packbits(mask, bitorder="little"))
        layers.append(entry)
    doc: dict[str, Any] = {"layers": layers}
    b = graph.bounds
    if b is not None:
        doc["bounds"] = {
            "box": b.box,
            "in": _box(b.lo[graph.input.name], b.hi[graph.input.name]),
            "pre": {
                layer.name: [b64(np.asarray(b.pre_lo[layer.name], "<f8")), b64(np.asarray(b.pre_hi[layer.name], "<f8"))]
                for layer in graph.layers[1:]
            },
        }
    return doc


def _box(lo: np.ndarray, hi: np.ndarray) -> Any:
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return [float(lo[0]), float(hi[0])]
    return [b64(lo.astype("<f8")), b64(hi.astype("<f8"))]


def pack_samples(x: np.ndarray, y: np.ndarray, index: np.ndarray | None = None) -> dict[str, Any]:
    """Test images as uint8 (``k / 255``) when exact, else float32/float64.

    ``index``: each image's test-set index (default ``0..n-1``); the page numbers
    samples by it, as ``graph --input N`` does.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} sample images but {y.shape[0]} labels")
    idx = np.arange(x.shape[0]) if index is None else np.asarray(index).astype(np.int64).reshape(-1)
    if idx.shape[0] != x.shape[0] or len(set(idx.tolist())) != idx.shape[0] or (idx.size and idx.min() < 0):
        raise ValueError(f"sample indices must be {x.shape[0]} distinct non-negative integers")
    k = np.rint(x * 255)
    whole = x.size == 0 or bool(np.all((k >= 0) & (k <= 255)))
    if whole and np.array_equal(k / 255, x):
        data = {"zu8": deflate(k.astype(np.uint8).tobytes())}
    elif whole and np.array_equal((k / 255).astype(np.float32).astype(np.float64), x):
        # float32 pixels k/255 (how datasets hold them): the page rounds k/255 to
        # float32 with Math.fround, which equals float32 division for every k in 0..255
        data = {"zu8f4": deflate(k.astype(np.uint8).tobytes())}
    else:
        data = _floats(x)
    return {"n": int(x.shape[0]), "size": int(x.shape[1]), "x": data, "y": y.tolist(), "index": idx.tolist()}
