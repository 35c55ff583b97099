"""Assemble the single-file page: template + CSS + JS + embedded data."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._atomic import write_text
from ..graph import Flowgraph, plain_json, to_json
from ._convpage import build_conv_page, conv_graph_metrics, has_feature_maps
from ._embed import dump_json, escape_json, pack_round, pack_samples
from ._layout import layout
from ._simplified import simplified_block
from ._template import asset, fill

# app.js defines SS.start (the context) and calls the parts after it; episode.js acts only on data["episode"]
SCRIPTS = ("core.js", "pixels.js", "draw.js", "card.js", "simplified.js", "app.js", "stage.js", "panel.js", "inputs.js", "share.js", "hooks.js",
           "episode.js", "boot.js", "bridge.js")


def _check(rounds: Sequence[Flowgraph], metrics: Sequence[dict], current: int) -> None:
    if not rounds:
        raise ValueError("build_page needs at least one round")
    if len(metrics) != len(rounds):
        raise ValueError(f"{len(rounds)} rounds but {len(metrics)} metrics entries")
    if not 0 <= current < len(rounds):
        raise ValueError(f"current round {current} is outside 0..{len(rounds) - 1}")
    shape = [(layer.name, layer.shape, layer.source) for layer in rounds[current].layers]
    for i, g in enumerate(rounds):
        if [(layer.name, layer.shape, layer.source) for layer in g.layers] != shape:
            raise ValueError(f"round {i} has a different architecture from round {current}")


def _metric(m: dict) -> dict[str, Any]:
    """Metrics as plain JSON numbers (numpy scalars, NaN -> None)."""
    return plain_json(dict(m))


def build_page(
    rounds: list[Flowgraph],
    metrics: list[dict],
    *,
    current: int,
    samples_x: np.ndarray,
    samples_y: np.ndarray,
    title: str,
    samples_index: np.ndarray | None = None,
    episode: dict | None = None,
    simplified: dict | None = None,
) -> str:
    """The complete HTML page (one string, no external resources).

    ``rounds[i]`` is round ``i``'s flowgraph (bounds optional but expected),
    ``metrics[i]`` its figures (``round``, ``density``, ``weights_left``,
    ``weights_total``, ``test_accuracy``).  Round ``current`` is embedded as
    exact ``to_json`` text; the others compactly (see ``_embed``).
    ``samples_index``: the test-set index of each sample (default ``0..n-1``).
    ``title`` names the run; the page's header adds the round shown on its slider.
    ``episode``: an RL round's recorded greedy episode (``runs.round_episode``, plus its
    ``round``); its states must be the samples, step ``t`` numbered ``t`` (episode mode).
    ``simplified``: the opened round's exactly simplified graph and certificate
    (:func:`~._simplified.simplified_doc`), for the page's Original/Simplified toggle.
    """
    _check(rounds, metrics, current)
    graph = rounds[current]
    samples_x = np.asarray(samples_x, dtype=np.float64)
    if samples_x.ndim == 0 or int(np.prod(samples_x.shape[1:])) != graph.input.size:
        raise ValueError(f"sample images of shape {samples_x.shape[1:]} do not fit the input layer {graph.input.shape}")
    samples_x = samples_x.reshape(samples_x.shape[0], graph.input.size)
    data = {
        "title": str(title),
        "current": int(current),
        "metrics": [_metric(m) for m in metrics],
        "rounds": [None if i == current else pack_round(g) for i, g in enumerate(rounds)],
        "layout": layout(graph),
        "samples": pack_samples(samples_x, samples_y, samples_index),
    }
    if episode is not None:
        if len(episode["states"]) != samples_x.shape[0]:
            raise ValueError("the episode's states must be the page's samples")
        data["episode"] = plain_json(dict(episode))
    return fill("page.html", title=title, css=asset("viewer.css"), flowgraph=escape_json(to_json(graph)),
                data=dump_json(data), js="\n".join(asset(name) for name in SCRIPTS), simplified=simplified_block(simplified))


def write_page(
    path: str | os.PathLike,
    rounds: list[Flowgraph],
    metrics: list[dict],
    *,
    current: int,
    samples_x: np.ndarray,
    samples_y: np.ndarray,
    title: str,
    samples_index: np.ndarray | None = None,
    episode: dict | None = None,
    simplified: dict | None = None,
) -> Path:
    """Write :func:`build_page` to ``path`` atomically (temp file + ``os.replace``)."""
    text = build_page(rounds, metrics, current=current, samples_x=samples_x, samples_y=samples_y, title=title,
                      samples_index=samples_index, episode=episode, simplified=simplified)
    path = Path(path)
    write_text(path, text)
    return path


def _graph_metrics(graph: Flowgraph) -> dict[str, Any]:
    sizes = {layer.name: layer.size for layer in graph.layers}
    left = {layer.name: layer.num_edges for layer in graph.layers[1:]}
    total = {layer.name: layer.size * sizes[layer.source] for layer in graph.layers[1:]}
    meta = graph.meta
    acc = meta.get("test_accuracy")
    return {
        "round": meta.get("round", 0),
        "density": meta.get("density", sum(left.values()) / max(sum(total.values()), 1)),
        "weights_left": left,
        "weights_total": total,
        "test_accuracy": acc if isinstance(acc, (int, float)) else None,
    }


def notebook_html(graph: Flowgraph, *, height: int = 640) -> str:
    """The viewer of one flowgraph as an ``<iframe srcdoc>`` for a Jupyter output cell
    (the conv page for a graph with feature maps)."""
    n = graph.input.size
    kw = dict(samples_x=np.zeros((0, n)), samples_y=np.zeros(0, dtype=np.int64), title=str(graph.meta.get("run", "flowgraph")))
    if has_feature_maps(graph):
        page = build_conv_page([graph], [conv_graph_metrics(graph)], current=0, **kw)  # a list: the header names round 0
    else:
        page = build_page([graph], [_graph_metrics(graph)], current=0, **kw)
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width:100%;height:{int(height)}px;border:1px solid #ddd" '
        'sandbox="allow-scripts allow-downloads"></iframe>'
    )
