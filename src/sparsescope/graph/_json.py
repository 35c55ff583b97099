"""JSON export/import of a flowgraph: the contract described in docs/flowgraph-schema.md.

A document is written as version 1 when no layer shares weights (so MLP
documents read as before) and version 2 when one does (unrolled
convolutions); both versions are read.

The text is deterministic: the same flowgraph gives byte-identical JSON
(fixed key order, edges sorted by (dst, src), floats in Python's shortest
round-trip form, so float64 values survive the round trip exactly).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .._errors import GraphError
from ._flowgraph import Bounds, Flowgraph, Layer

FORMAT = "sparsescope.flowgraph"
VERSION = 2
# version 2 adds per-edge ``weight_id`` and per-layer ``weight_shape`` (shared
# weights), and the optional exact ranges in "bounds"; version 1 is read too
READS = (1, 2)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def to_dict(graph: Flowgraph) -> dict[str, Any]:
    """The JSON document as plain Python data."""
    layers = []
    for layer in graph.layers:
        d: dict[str, Any] = {"name": layer.name, "kind": layer.kind, "shape": list(layer.shape)}
        if layer.kind == "affine":
            d["activation"] = layer.activation
            d["source"] = layer.source
            d["bias"] = _floats(layer.bias)
            d["edges"] = {
                "dst": layer.dst.tolist(),
                "src": layer.src.tolist(),
                "weight": _floats(layer.weight),
            }
            if layer.weight_id is not None:
                d["weight_shape"] = list(layer.weight_shape)
                d["edges"]["weight_id"] = layer.weight_id.tolist()
        if layer.labels is not None:
            d["labels"] = list(layer.labels)
        layers.append(d)
    # version 1 unless a version-2 feature is used (weight ties, exact ranges), so version-1 readers keep working
    exact = graph.bounds is not None and graph.bounds.exact is not None
    version = 2 if exact or any(layer.weight_id is not None for layer in graph.layers) else 1
    doc: dict[str, Any] = {"format": FORMAT, "version": version, "meta": plain_json(graph.meta), "layers": layers}
    b = graph.bounds
    if b is not None:
        doc["bounds"] = {
            "box": b.box,
            "layers": {
                layer.name: {
                    "lo": _floats(b.lo[layer.name]),
                    "hi": _floats(b.hi[layer.name]),
                    "pre_lo": _floats(b.pre_lo[layer.name]),
                    "pre_hi": _floats(b.pre_hi[layer.name]),
                    **_exact_entry(b, layer.name),
                }
                for layer in graph.layers
            },
        }
    return doc


def _exact_entry(b: Bounds, name: str) -> dict[str, Any]:
    """Version 2: the exact ranges of one layer, when the bounds carry them (NaN -> null)."""
    if b.exact is None or name not in b.exact:
        return {}
    e = b.exact[name]
    return {"exact": {
        "lo": [v if math.isfinite(v) else None for v in _floats(e["lo"])],
        "hi": [v if math.isfinite(v) else None for v in _floats(e["hi"])],
        "lo_status": [str(v) for v in e["lo_status"]],
        "hi_status": [str(v) for v in e["hi_status"]],
    }}


def plain_json(value: Any) -> Any:
    """Any nesting of dicts/lists/numbers as JSON-safe plain data: numpy scalars and
    arrays become Python numbers and lists, NaN/infinity ``None``, anything else ``str``."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def to_json(graph: Flowgraph) -> str:
    """Compact, deterministic JSON text (one line, ends without newline)."""
    return json.dumps(to_dict(graph), separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def from_dict(doc: Any) -> Flowgraph:
    """Rebuild a flowgraph from :func:`to_dict` data; malformed data raises :class:`GraphError`."""
    try:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise GraphError(f"not a flowgraph document (expected format {FORMAT!r})")
        version = doc.get("version")
        if type(version) is not int or version not in READS:  # true == 1 and 1.0 == 1 in Python
            raise GraphError(f"unsupported flowgraph version {doc.get('version')!r} (this reads 1 and 2)")
        layers = []
        for d in doc["layers"]:
            edges = d.get("edges", {})
            layers.append(
                Layer(
                    name=str(d["name"]),
                    kind=str(d["kind"]),
                    shape=tuple(int(s) for s in d["shape"]),
                    activation=str(d.get("activation", "identity")),
                    source=d.get("source"),
                    # an input layer has no bias; an affine one must list it (no silent zeros)
                    bias=np.asarray(d["bias"] if "bias" in d else [], dtype=np.float64),
                    dst=np.asarray(edges.get("dst", []), dtype=np.int64),
                    src=np.asarray(edges.get("src", []), dtype=np.int64),
                    weight=np.asarray(edges.get("weight", []), dtype=np.float64),
                    labels=d.get("labels"),
                    weight_id=None if version < 2 or "weight_id" not in edges
                    else np.asarray(edges["weight_id"], dtype=np.int64),
                    weight_shape=None if version < 2 or "weight_shape" not in d
                    else tuple(int(v) for v in d["weight_shape"]),
                )
            )
        graph = Flowgraph(tuple(layers), meta=dict(doc.get("meta") or {}))
        if doc.get("bounds") is not None:
            bd = doc["bounds"]
            arr = {k: {} for k in ("lo", "hi", "pre_lo", "pre_hi")}
            for layer in graph.layers:
                entry = bd["layers"][layer.name]
                for k in arr:
                    a = np.asarray(entry[k], dtype=np.float64)
                    if a.shape != (layer.size,):
                        raise GraphError(f"bounds of layer {layer.name} have the wrong length")
                    if not np.all(np.isfinite(a)):
                        raise GraphError(f"bounds of layer {layer.name} are NaN or infinite")
                    arr[k][layer.name] = a
                for lo, hi in (("lo", "hi"), ("pre_lo", "pre_hi")):
                    if np.any(arr[lo][layer.name] > arr[hi][layer.name]):
                        raise GraphError(f"bounds of layer {layer.name} have {lo} > {hi}")
            exact = _read_exact(graph, bd["layers"]) if version >= 2 else None
            graph = graph.with_bounds(Bounds(str(bd["box"]), arr["lo"], arr["hi"], arr["pre_lo"], arr["pre_hi"], exact))
        return graph
    except GraphError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, MemoryError) as exc:
        raise GraphError(f"malformed flowgraph document: {type(exc).__name__}: {exc}") from None


def _read_exact(graph: Flowgraph, entries: dict[str, Any]) -> dict[str, dict[str, np.ndarray]] | None:
    """The optional exact ranges of a version-2 document, checked."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in graph.layers:
        e = entries[layer.name].get("exact")
        if e is None:
            continue
        d = {k: np.asarray([np.nan if v is None else v for v in e[k]], dtype=np.float64) for k in ("lo", "hi")}
        d.update({k: np.asarray([str(v) for v in e[k]], dtype=object) for k in ("lo_status", "hi_status")})
        for k, a in d.items():
            if a.shape != (layer.size,):
                raise GraphError(f"exact ranges of layer {layer.name} have the wrong length")
        for k in ("lo_status", "hi_status"):
            if not all(v in ("exact", "bound") for v in d[k]):
                raise GraphError(f"exact ranges of layer {layer.name}: status must be 'exact' or 'bound'")
        if np.any(np.isinf(d["lo"])) or np.any(np.isinf(d["hi"])):
            raise GraphError(f"exact ranges of layer {layer.name} are infinite")
        out[layer.name] = d
    return out or None


def from_json(text: str | bytes) -> Flowgraph:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise GraphError(f"flowgraph JSON does not parse: {exc}") from None
    return from_dict(doc)
