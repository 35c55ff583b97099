"""The single-file page of a convolutional run: ``shell.html`` + ``conv.html`` + ``viewer.css``
+ ``core.js``, ``pixels.js``, ``convgraph.js``, ``convshare.js`` (URL hash, PNG/SVG export),
``conv.js`` and ``bridge.js`` (the notebook widget's messages).

Same contract as the MLP page (one file, no network, a Content-Security-Policy
that forbids any request, the opened round's flowgraph embedded as the exact
``to_json`` text, escaped for its script block), with a viewer made for
feature maps: it opens on the channel-level view, expands a channel to its
positions on a click, shows per-input feature maps (a test image numbered by
its test-set index, or a drawing) and draws the unrolled per-output subgraph.
The other embedded rounds ride compactly (kernels, biases, bounds:
``_convembed``; ~1-150 kB each for the study's CNN, against ~1-2 MB as JSON)
and the page unrolls them for its round slider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import write_text
from ..graph import Flowgraph, plain_json, to_json
from ._convembed import conv_geometry, pack_conv_round
from ._embed import dump_json, escape_json, pack_samples
from ._simplified import simplified_block
from ._template import asset, fill

SCRIPTS = ("core.js", "pixels.js", "convgraph.js", "simplified.js", "convshare.js", "conv.js", "bridge.js")
_EXTRA_CSS = "#round-table table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:12px}" \
             "#round-table td{padding:0 6px;text-align:right}"


def has_feature_maps(graph: Flowgraph) -> bool:
    """Whether ``graph`` has a feature-map layer (rank-3 shape ``(C, H, W)``): it gets this page."""
    return any(len(layer.shape) == 3 for layer in graph.layers)


def conv_graph_metrics(graph: Flowgraph) -> dict:
    """The figures of a single conv flowgraph (an imported model): weights counted as parameters --
    a conv layer's nonzero kernel weights out of its ``O*I*k*k``, a dense layer's edges out of
    ``out*in``; an average pool has none -- so an unpruned model is at density 100%."""
    left, total = {}, {}
    for layer in graph.layers[1:]:
        if layer.weight_id is None:
            left[layer.name], total[layer.name] = layer.num_edges, layer.size * graph.layer(layer.source).size
        elif layer.weight_shape is not None and len(layer.weight_shape) == 4:
            left[layer.name] = int(np.unique(layer.weight_id).size)
            total[layer.name] = int(np.prod(layer.weight_shape))
    meta = graph.meta
    acc = meta.get("test_accuracy")
    return {"round": meta.get("round", 0), "density": sum(left.values()) / max(sum(total.values()), 1),
            "weights_left": left, "weights_total": total, "test_accuracy": acc if isinstance(acc, (int, float)) else None}


def build_conv_page(rounds: Flowgraph | Sequence[Flowgraph | None], metrics: list[dict], *, samples_x: np.ndarray,
                    samples_y: np.ndarray, title: str, current: int | None = None,
                    samples_index: np.ndarray | None = None, simplified: dict | None = None) -> str:
    """The complete HTML page of a conv run.

    ``rounds``: one flowgraph (a page without a round slider; ``metrics`` then only fill the
    round table), or one entry per ``metrics`` row -- a flowgraph for each round to embed, None
    for a round left out -- with ``current`` the index of the round the page opens at (exact JSON).
    ``samples_index``: each sample's test-set index (default ``0..n-1``); the page numbers them so.
    ``simplified``: the opened round's exactly simplified graph and certificate
    (:func:`~._simplified.simplified_doc`), for the page's Original/Simplified toggle.
    """
    if isinstance(rounds, Flowgraph):
        graphs: list[Flowgraph | None] = [rounds]
        current, packed = 0, None
    else:
        graphs = list(rounds)
        if len(graphs) != len(metrics):
            raise ValueError(f"{len(graphs)} rounds but {len(metrics)} metrics entries")
        if current is None or not 0 <= current < len(graphs) or graphs[current] is None:
            raise ValueError(f"current round {current} is not one of the embedded rounds")
        shown = [g for g in graphs if g is not None]
        geometry = conv_geometry(shown)
        packed = [None if i == current or g is None else pack_conv_round(g, geometry) for i, g in enumerate(graphs)]
    graph = graphs[current]
    assert graph is not None
    samples_x = np.asarray(samples_x, dtype=np.float64)
    if samples_x.ndim == 0 or int(np.prod(samples_x.shape[1:])) != graph.input.size:
        raise ValueError(f"sample images of shape {samples_x.shape[1:]} do not fit the input layer {graph.input.shape}")
    samples_x = samples_x.reshape(samples_x.shape[0], graph.input.size)
    data = {"title": str(title), "current": int(current) if packed is not None else -1,
            "metrics": [plain_json(dict(m)) for m in metrics], "rounds": packed,
            "samples": pack_samples(samples_x, samples_y, samples_index)}
    return fill("conv.html", title=title, css=asset("viewer.css") + _EXTRA_CSS, flowgraph=escape_json(to_json(graph)),
                data=dump_json(data), js="\n".join(asset(name) for name in SCRIPTS), simplified=simplified_block(simplified))


def write_conv_page(path: str | os.PathLike, rounds: Flowgraph | Sequence[Flowgraph | None], metrics: list[dict], *,
                    samples_x: np.ndarray, samples_y: np.ndarray, title: str, current: int | None = None,
                    samples_index: np.ndarray | None = None, simplified: dict | None = None) -> Path:
    """Write :func:`build_conv_page` to ``path`` atomically."""
    path = Path(path)
    write_text(path, build_conv_page(rounds, metrics, samples_x=samples_x, samples_y=samples_y, title=title,
                                     current=current, samples_index=samples_index, simplified=simplified))
    return path
