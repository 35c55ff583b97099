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
    n = min(samples, len(data.x_test))
    pick = np.linspace(0, len(data.x_test) - 1, n).round().astype(int) if n else np.zeros(0, dtype=int)
    if any(len(layer.shape) == 3 for layer in current.layers):  # feature maps: the conv page, one round
        from ._convpage import write_conv_page

        return write_conv_page(path, current, store.round_metrics(), samples_x=data.x_test[pick].astype(np.float64),
                               samples_y=data.y_test[pick], title=f"{current.meta['run']} round {current.meta['round']}")
    rounds = store.finished_rounds()
    graphs = [current if r == current.meta["round"] else round_flowgraph(store, r, box=box, data=data) for r in rounds]
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
