"""The single-file page of a convolutional round: template ``conv.html`` + ``viewer.css`` + ``conv.js``.

Same contract as the MLP page (one file, no network, a Content-Security-Policy
that forbids any request, the flowgraph embedded as the exact ``to_json``
text, escaped for its script block), with a viewer made for feature maps:
it opens on the channel-level view, expands a channel to its positions on a
click, shows per-input feature maps and draws the unrolled per-output
subgraph.  One round is embedded (a conv round's JSON is ~1-2 MB); the
round table lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import write_text
from ..graph import Flowgraph, plain_json, to_json
from ._embed import b64, dump_json, escape_json
from ._template import asset, fill

_EXTRA_CSS = "#round-table table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:12px}" \
             "#round-table td{padding:0 6px;text-align:right}"


def _samples(x: np.ndarray, y: np.ndarray) -> dict:
    """Test images for ``conv.js``: uint8 ``k`` read as float32 ``k/255`` when that is exact
    (how datasets hold pixels), else float64; base64, synchronous to decode."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} sample images but {y.shape[0]} labels")
    k = np.rint(x * 255)
    if x.size == 0 or (np.all((k >= 0) & (k <= 255)) and np.array_equal((k / 255).astype(np.float32).astype(np.float64), x)):
        data = {"u8f4": b64(k.astype(np.uint8))}
    else:
        data = {"f8": b64(x.astype("<f8"))}
    return {"n": int(x.shape[0]), "size": int(x.shape[1]), "x": data, "y": y.tolist()}


def build_conv_page(graph: Flowgraph, metrics: list[dict], *, samples_x: np.ndarray, samples_y: np.ndarray,
                    title: str) -> str:
    """The complete HTML page of one conv round (``metrics``: every round's figures, for the table)."""
    samples_x = np.asarray(samples_x, dtype=np.float64)
    if samples_x.ndim == 0 or int(np.prod(samples_x.shape[1:])) != graph.input.size:
        raise ValueError(f"sample images of shape {samples_x.shape[1:]} do not fit the input layer {graph.input.shape}")
    samples_x = samples_x.reshape(samples_x.shape[0], graph.input.size)
    data = {"title": str(title), "metrics": [plain_json(dict(m)) for m in metrics],
            "samples": _samples(samples_x, samples_y)}
    return fill("conv.html", title=title, css=asset("viewer.css") + _EXTRA_CSS, flowgraph=escape_json(to_json(graph)),
                data=dump_json(data), js=asset("conv.js"))


def write_conv_page(path: str | os.PathLike, graph: Flowgraph, metrics: list[dict], *, samples_x: np.ndarray,
                    samples_y: np.ndarray, title: str) -> Path:
    """Write :func:`build_conv_page` to ``path`` atomically."""
    path = Path(path)
    write_text(path, build_conv_page(graph, metrics, samples_x=samples_x, samples_y=samples_y, title=title))
    return path
