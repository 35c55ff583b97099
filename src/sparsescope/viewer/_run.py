"""The viewer page of a whole run: every finished round, the test images the user chose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .._errors import SparsescopeError
from ._convpage import conv_graph_metrics, has_feature_maps, write_conv_page
from ._page import write_page

DEFAULT_SAMPLES = 100
_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_samples(spec: str | Sequence[int] | int | None, n_test: int) -> np.ndarray:
    """Test-set indices to embed, in the order given, without repeats.

    ``spec``: ``"0-99"``, ``"3,7,11"``, ``"0-9,50,70-72"``, a sequence of indices,
    or None (``DEFAULT_SAMPLES`` spread evenly over the test set; mnist5k's test
    set is sorted by class, so every class appears).  An index outside the test
    set or a malformed list is a user's mistake (:class:`SparsescopeError`).
    """
    if spec is None:
        n = min(DEFAULT_SAMPLES, n_test)
        return np.unique(np.linspace(0, n_test - 1, n).round().astype(np.int64)) if n else np.zeros(0, np.int64)
    return _indices(spec, n_test, "--samples", "test image", f"the test set has {n_test} images (0..{n_test - 1})")


def parse_rounds(spec: str | Sequence[int] | int | None, finished: Sequence[int]) -> list[int]:
    """Round numbers to embed for the round slider (``"0-16"``, ``"0,8,16"``; None: every
    finished round), sorted; each must be a finished round (:class:`SparsescopeError`)."""
    if spec is None:
        return sorted(finished)
    n = max(finished) + 1 if finished else 0
    pick = _indices(spec, n, "--rounds", "round", f"the finished rounds are {_span(finished)}")
    missing = sorted(set(pick.tolist()) - set(finished))
    if missing:
        raise SparsescopeError(f"--rounds: round {missing[0]} is not finished: the finished rounds are {_span(finished)}")
    return sorted(pick.tolist())


def _span(rounds: Sequence[int]) -> str:
    r = sorted(rounds)
    return "none" if not r else f"{r[0]}..{r[-1]}" if r == list(range(r[0], r[-1] + 1)) else ",".join(map(str, r))


def _indices(spec: str | Sequence[int] | int, n: int, flag: str, noun: str, known: str) -> np.ndarray:
    if isinstance(spec, (int, np.integer)):
        spec = [int(spec)]
    if isinstance(spec, str):
        idx: list[int] = []
        for part in spec.replace(" ", "").split(","):
            m = _ITEM.match(part)
            if not m:
                raise SparsescopeError(f"{flag} {spec!r}: expected indices like 0-99 or 3,7,11")
            a, b = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
            if b < a:
                raise SparsescopeError(f"{flag} {spec!r}: range {part} runs backwards")
            if b - a > 100_000:
                raise SparsescopeError(f"{flag} {spec!r}: range {part} is too long")
            idx.extend(range(a, b + 1))
    else:
        idx = [int(i) for i in spec]
    out: list[int] = []
    seen = set()
    for i in idx:
        if not 0 <= i < n:
            raise SparsescopeError(f"{flag}: {noun} {i} is out of range: {known}")
        if i not in seen:
            seen.add(i)
            out.append(i)
    return np.asarray(out, dtype=np.int64)


def write_run_page(store, path: str | Path, *, round_index: int | None = None,
                   samples: str | Sequence[int] | int | None = None, box: str | None = None,
                   rounds: str | Sequence[int] | int | None = None, exact: bool = False) -> Path:
    """Write the page of ``store`` (a :class:`~sparsescope.runs.RunStore`) opened at ``round_index``
    (default: the last finished round), embedding the test images ``samples`` (see
    :func:`parse_samples`; the page numbers them by their test-set index, as ``graph --input``)
    and the rounds ``rounds`` for its slider (:func:`parse_rounds`; default every finished round;
    the opened round is always in); bounds over ``box`` (``"unit"``: every input in [0, 1];
    ``"data"``: the training data's range).  ``exact``: the opened round carries its exact
    ranges over the same box (``sparsescope.exact``; flowgraph JSON version 2), which the
    node cards show beside the interval bounds, and its exactly simplified graph with the
    certificate (``_simplified``), which the page draws on its Original/Simplified toggle."""
    from ..runs import round_flowgraph, run_data

    if _is_rl(store):
        return _write_rl_page(store, path, round_index=round_index, box=box)
    data = run_data(store)
    pick = parse_samples(samples, len(data.x_test))
    current = round_flowgraph(store, round_index, box=box, data=data)
    simplified = None
    if exact:
        from ..exact import Box, analyse_box
        from ._simplified import simplified_doc

        b, name0 = current.bounds, current.input.name
        analysis = analyse_box(current.with_bounds(None), Box(b.box, b.lo[name0], b.hi[name0]), exact=True)
        current, simplified = analysis.graph, simplified_doc(analysis)
    finished = store.finished_rounds()
    chosen = sorted(set(parse_rounds(rounds, finished)) | {current.meta["round"]})
    metrics = store.round_metrics()

    def graph(r: int):
        return current if r == current.meta["round"] else round_flowgraph(store, r, box=box, data=data)

    if has_feature_maps(current):  # feature maps: the conv page
        return write_conv_page(path, [graph(r) if r in chosen else None for r in finished], metrics,
                               current=finished.index(current.meta["round"]), samples_x=data.x_test[pick].astype(np.float64),
                               samples_y=data.y_test[pick], samples_index=pick, title=str(current.meta["run"]),
                               simplified=simplified)
    keep = [finished.index(r) for r in chosen]
    return write_page(
        path, [graph(finished[i]) for i in keep], [metrics[i] for i in keep], current=chosen.index(current.meta["round"]),
        samples_x=data.x_test[pick].astype(np.float64), samples_y=data.y_test[pick], samples_index=pick,
        title=str(current.meta['run']),  # the page adds the round on its slider
        simplified=simplified,
    )


def _is_rl(store) -> bool:
    from ..runs import is_rl_manifest

    return is_rl_manifest(store.manifest())


def _write_rl_page(store, path: str | Path, *, round_index: int | None, box: str | None) -> Path:
    """An RL run's page: every round, and the opened round's recorded greedy episode -- its states
    are the samples (step ``t`` is sample ``t``, labelled by the action taken) -- for episode mode."""
    from ..runs import round_episode, round_flowgraph

    current = round_flowgraph(store, round_index, box=box)
    rnd = current.meta["round"]
    ep = round_episode(store, rnd)
    states = np.asarray(ep["states"], dtype=np.float32).astype(np.float64).reshape(-1, len(ep["inputs"]))
    rounds = store.finished_rounds()
    graphs = [current if r == rnd else round_flowgraph(store, r, box=box) for r in rounds]
    limits = store.manifest()["data"].get("limits")
    return write_page(
        path, graphs, store.round_metrics(), current=rounds.index(rnd),
        samples_x=states, samples_y=np.asarray(ep["actions"], dtype=np.int64), samples_index=np.arange(len(states)),
        title=str(current.meta["run"]), episode={**ep, "round": rnd, "limits": limits},
    )


def write_graph_page(path: str | Path, graph, *, samples_x: np.ndarray | None = None,
                     samples_y: np.ndarray | None = None, title: str | None = None) -> Path:
    """Write the page of one flowgraph (an imported model, say): no rounds slider, the given
    samples (``(N, n_in)`` and their ``(N,)`` class labels) or none -- then only drawing.
    A graph with feature maps (a conv layer) gets the conv page, as a conv run does."""
    from ._page import _graph_metrics

    n = graph.input.size
    if samples_x is None:
        samples_x, samples_y = np.zeros((0, n)), np.zeros(0, dtype=np.int64)
    if has_feature_maps(graph):  # feature maps: the conv page, as a conv run gets
        return write_conv_page(path, [graph], [conv_graph_metrics(graph)], current=0, samples_x=samples_x, samples_y=samples_y,
                               title=str(title or graph.meta.get("model", "flowgraph")))
    return write_page(path, [graph], [_graph_metrics(graph)], current=0, samples_x=samples_x,
                      samples_y=samples_y, title=str(title or graph.meta.get("model", "flowgraph")))
