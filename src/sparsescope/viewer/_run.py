"""The viewer page of a whole run: every finished round, a spread of test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._page import write_page


def write_run_page(store, path: str | Path, *, round_index: int | None = None, samples: int = 20,
                   box: str | None = None) -> Path:
    """Write the page of ``store`` (a :class:`~sparsescope.runs.RunStore`) opened at ``round_index``
    (default: the last finished round), with ``samples`` test images spread evenly over the test
    set (it is sorted by class for mnist5k, so every class appears); bounds over ``box``
    (``"unit"``: every input in [0, 1]; ``"data"``: the training data's per-input range)."""
    from ..runs import round_flowgraph, run_data

    data = run_data(store) if not _is_rl(store) else _episode_samples(store, round_index)
    current = round_flowgraph(store, round_index, box=box, data=data)
    rounds = store.finished_rounds()
    graphs = [current if r == current.meta["round"] else round_flowgraph(store, r, box=box, data=data) for r in rounds]
    n = min(samples, len(data.x_test))
    pick = np.linspace(0, len(data.x_test) - 1, n).round().astype(int) if n else np.zeros(0, dtype=int)
    return write_page(
        path, graphs, store.round_metrics(), current=rounds.index(current.meta["round"]),
        samples_x=data.x_test[pick].astype(np.float64), samples_y=data.y_test[pick],
        title=f"{current.meta['run']} round {current.meta['round']}",
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
