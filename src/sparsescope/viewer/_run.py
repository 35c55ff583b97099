"""The viewer page of a whole run: every finished round, the test images the user chose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .._errors import SparsescopeError
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
    if isinstance(spec, (int, np.integer)):
        spec = [int(spec)]
    if isinstance(spec, str):
        idx: list[int] = []
        for part in spec.replace(" ", "").split(","):
            m = _ITEM.match(part)
            if not m:
                raise SparsescopeError(f"--samples {spec!r}: expected indices like 0-99 or 3,7,11")
            a, b = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
            if b < a:
                raise SparsescopeError(f"--samples {spec!r}: range {part} runs backwards")
            if b - a > 100_000:
                raise SparsescopeError(f"--samples {spec!r}: range {part} is too long")
            idx.extend(range(a, b + 1))
    else:
        idx = [int(i) for i in spec]
    out: list[int] = []
    seen = set()
    for i in idx:
        if not 0 <= i < n_test:
            raise SparsescopeError(f"--samples: test image {i} is out of range: the test set has {n_test} images (0..{n_test - 1})")
        if i not in seen:
            seen.add(i)
            out.append(i)
    return np.asarray(out, dtype=np.int64)


def write_run_page(store, path: str | Path, *, round_index: int | None = None,
                   samples: str | Sequence[int] | int | None = None, box: str | None = None) -> Path:
    """Write the page of ``store`` (a :class:`~sparsescope.runs.RunStore`) opened at ``round_index``
    (default: the last finished round), embedding the test images ``samples`` (see
    :func:`parse_samples`; the page numbers them by their test-set index, as ``graph --input``);
    bounds over ``box`` (``"unit"``: every input in [0, 1]; ``"data"``: the training data's range)."""
    from ..runs import round_flowgraph, run_data

    data = run_data(store) if not _is_rl(store) else _episode_samples(store, round_index)
    pick = parse_samples(samples, len(data.x_test))
    current = round_flowgraph(store, round_index, box=box, data=data)
    if any(len(layer.shape) == 3 for layer in current.layers):  # feature maps: the conv page, one round
        from ._convpage import write_conv_page

        return write_conv_page(path, current, store.round_metrics(), samples_x=data.x_test[pick].astype(np.float64),
                               samples_y=data.y_test[pick], title=f"{current.meta['run']} round {current.meta['round']}")
    rounds = store.finished_rounds()
    graphs = [current if r == current.meta["round"] else round_flowgraph(store, r, box=box, data=data) for r in rounds]
    return write_page(
        path, graphs, store.round_metrics(), current=rounds.index(current.meta["round"]),
        samples_x=data.x_test[pick].astype(np.float64), samples_y=data.y_test[pick], samples_index=pick,
        title=str(current.meta['run']),  # the page adds the round on its slider
    )


def _is_rl(store) -> bool:
    from ..runs import is_rl_manifest

    return is_rl_manifest(store.manifest())


def _episode_samples(store, round_index: int | None):
    """An RL run's samples: the states of the round's recorded greedy episode, labelled by the action taken."""
    from types import SimpleNamespace

    from ..runs import round_episode

    rnd = store.finished_rounds()[-1] if round_index is None else round_index
    ep = round_episode(store, rnd)
    return SimpleNamespace(x_test=np.asarray(ep["states"], dtype=np.float32).reshape(-1, len(ep["inputs"])),
                           y_test=np.asarray(ep["actions"], dtype=np.int64))


def write_graph_page(path: str | Path, graph, *, samples_x: np.ndarray | None = None,
                     samples_y: np.ndarray | None = None, title: str | None = None) -> Path:
    """Write the page of one flowgraph (an imported model, say): no rounds slider, the given
    samples (``(N, n_in)`` and their ``(N,)`` class labels) or none -- then only drawing."""
    from ._page import _graph_metrics

    n = graph.input.size
    if samples_x is None:
        samples_x, samples_y = np.zeros((0, n)), np.zeros(0, dtype=np.int64)
    return write_page(path, [graph], [_graph_metrics(graph)], current=0, samples_x=samples_x,
                      samples_y=samples_y, title=str(title or graph.meta.get("model", "flowgraph")))
