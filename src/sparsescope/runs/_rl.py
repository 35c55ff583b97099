"""Lottery-ticket rounds of a DQN agent, pruned at maximal score.

Each round trains (from the rewound weights, under the round's mask) until the
greedy agent reaches ``rl.max_return`` over ``rl.eval_episodes`` fixed-seed
episodes, or ``rl.budget_steps`` run out; then the trained weights are pruned
by magnitude (the same :func:`sparsescope.prune.prune` as for datasets) and
the next round starts from the rewound survivors.  A round that runs out of
budget is kept and marked ``solved: false`` (and the next round prunes its
weights all the same: the record says so, it is never silently passed).

Stored like a dataset run (see :mod:`._store`), plus per round
``episode.json``: the recorded greedy episode (states, Q-values, actions) of
the round's final agent, which drives the viewer's episode mode.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import torch

from .._config import CONTROL_KINDS, ExperimentConfig
from .._config import from_manifest as config_from_manifest
from .._errors import ConfigError, RunStoreError
from ..models import init_params
from ..prune import Mask, random_mask
from ._lottery import Progress, RunResult, TrainingDiverged, derive_seed, manifest_for, planned_rounds, rounds_to_train
from ._store import RunStore, mask_tensors, now_iso

EPISODE = "episode.json"


def env_data_manifest(config: ExperimentConfig) -> dict[str, Any]:
    """The manifest's ``data`` section of an RL run: the environment, its input and action names."""
    from ..rl import env_fingerprint

    info = config.env.info
    return {
        "name": info.name,
        "kind": "env",
        "fingerprint": env_fingerprint(info.name),
        "n_train": 0,
        "n_test": 0,
        "input_shape": [len(info.inputs)],
        "classes": list(info.actions),
        "inputs": list(info.inputs),
        "limits": [None if not np.isfinite(v) else v for v in info.limits],
    }


def is_rl_manifest(manifest: dict[str, Any]) -> bool:
    return manifest.get("data", {}).get("kind") == "env"


def _check_fit(config: ExperimentConfig) -> None:
    info, sizes = config.env.info, config.model.sizes
    if sizes[0] != len(info.inputs) or sizes[-1] != len(info.actions):
        raise ConfigError(f"model.sizes {list(sizes)} must start with {len(info.inputs)} inputs and end with "
                          f"{len(info.actions)} actions for {info.name}")


def _rl_metrics(index: int, mask: Mask, result, wall: float) -> dict[str, Any]:
    ev = result.evaluation
    return {
        "round": index,
        "density": mask.density,
        "weights_left": mask.kept(),
        "weights_total": mask.totals(),
        "kept_total": mask.num_kept,
        "solved": bool(result.solved),
        "steps_to_solve": result.steps_to_solve,
        "steps": result.steps,
        "grad_steps": result.grad_steps,
        "eval_return": ev.mean,
        "eval_return_min": float(ev.returns.min()),
        "eval_episodes": int(ev.returns.size),
        "state_range": {
            "lo": [float(v) for v in ev.state_lo],
            "hi": [float(v) for v in ev.state_hi],
            "what": f"every state the greedy agent acted on in its {ev.returns.size} evaluation episodes",
        },
        "history": result.history,
        "train_seconds": result.train_seconds,
        "wall_seconds": wall,
    }


def _fit_checked(what: str, config: ExperimentConfig, start, mask: Mask, seed: int, **kw: Any):
    from ..rl import fit_dqn

    result = fit_dqn(config.model, start, mask_tensors(mask), config.env, config.rl, seed=seed,
                     eval_seed=derive_seed(config.seed, "eval"), threads=config.train.threads, **kw)
    for k, v in result.params.items():
        if not torch.isfinite(v).all():
            raise TrainingDiverged(f"{what}: training diverged ({k} has NaN or infinite values); lower rl.lr")
    return result


def _episode_bytes(result) -> bytes:
    return (json.dumps(result.evaluation.episode, allow_nan=False, separators=(",", ":")) + "\n").encode()


def run_rl_experiment(config: ExperimentConfig, runs_dir, *, progress: Progress | None = None,
                      stop_after: int | None = None) -> RunResult:
    """Run (or resume) every round of an RL config; see :func:`sparsescope.runs.run_experiment`."""
    from pathlib import Path

    _check_fit(config)
    spec = config.model
    n_rounds = planned_rounds(config)
    path = Path(runs_dir) / config.run_id
    store = RunStore(path)
    data = env_data_manifest(config)
    if store.exists:
        m = store.manifest()
        if config_from_manifest(m).identity() != config.identity():
            raise RunStoreError(f"run {path} was made with a different config; not touching it")
        if m["data"]["fingerprint"] != data["fingerprint"]:
            raise RunStoreError(f"run {path} was made with another environment version "
                                f"({m['data']['fingerprint']}); not touching it")
    else:
        if path.exists():
            raise RunStoreError(f"{path} exists but is not a run (no manifest.json); move it away first")
        manifest = manifest_for(config, None, n_rounds)
        manifest["data"] = data
        manifest["seeds"] = {"init": config.seed, "train": "derive_seed(seed, 'dqn', round)",
                             "eval": "derive_seed(seed, 'eval')"}
        RunStore.create(path, manifest, init_params(spec, config.seed))
    with store.lock():
        store.clean_temporaries()
        trained, seconds = _train_rounds(config, store, n_rounds, progress, stop_after)
        if stop_after is None or len(trained) < stop_after:
            for r in config.controls.rounds:
                for kind in config.controls.kinds:
                    run_rl_control(store, r, kind, progress=progress)
    return RunResult(path, config.run_id, store.round_metrics(), trained, seconds)


def _train_rounds(config, store: RunStore, n_rounds, progress, stop_after) -> tuple[list[int], float]:
    rewind_step = config.prune.rewind_step
    trained: list[int] = []
    seconds = 0.0
    for r, mask, start in rounds_to_train(config, store, n_rounds, stop_after):
        t0 = time.perf_counter()
        result = _fit_checked(
            f"round {r}", config, start, mask, derive_seed(config.seed, "dqn", r),
            snapshot_step=rewind_step if (r == 0 and rewind_step > 0) else None,
            on_step=(lambda s, t, r=r: progress(f"round {r}/{n_rounds - 1}", s, t)) if progress else None,
        )
        metrics = _rl_metrics(r, mask, result, time.perf_counter() - t0)
        store.write_round(store.round_dir(r), mask, result.params, metrics,
                          rewind=result.snapshot if (r == 0 and rewind_step > 0) else None,
                          extra={EPISODE: _episode_bytes(result)})
        trained.append(r)
        seconds += result.train_seconds
    return trained, seconds


def run_rl_control(store: RunStore, round_index: int, kind: str, *, seed: int | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """A lottery-ticket control of an RL round (``reinit`` or ``random-mask``), as for datasets.

    The caller holds the run's lock (or needs none: a control folder is written atomically).
    """
    from .._checks import MAX_SEED, need_int

    if kind not in CONTROL_KINDS:
        raise ConfigError(f"unknown control kind {kind!r} (expected {', '.join(CONTROL_KINDS)})")
    config = config_from_manifest(store.manifest())
    rec = store.read_round(round_index)
    seed = derive_seed(config.seed, "control", kind, round_index) if seed is None else seed
    seed = need_int("control seed", seed, 0, MAX_SEED)
    folder = store.path / "controls" / f"{kind}-r{round_index:03d}-s{seed}"
    if folder.is_dir():
        return store.read_round_at(folder, f"control {folder.name}").metrics
    if kind == "reinit":
        mask, start = rec.mask, init_params(config.model, seed)
    else:
        mask = random_mask(rec.mask, seed)
        start = store.init_params() if config.prune.rewind_step == 0 else store.rewind_params()
    t0 = time.perf_counter()
    result = _fit_checked(
        f"control {kind} of round {round_index}", config, start, mask,
        derive_seed(config.seed, "dqn", f"control-{kind}-{seed}", round_index),
        on_step=(lambda s, t: progress(f"control {kind} r{round_index}", s, t)) if progress else None,
    )
    metrics = {**_rl_metrics(round_index, mask, result, time.perf_counter() - t0), "control": kind, "seed": seed}
    store.write_round(folder, mask, result.params, metrics, extra={EPISODE: _episode_bytes(result)})
    return store.read_round_at(folder, f"control {folder.name}").metrics


def rl_round_table(metrics: list[dict[str, Any]]) -> str:
    """The round table of an RL run: density, weights left per layer, solved, steps, greedy return."""
    if not metrics:
        return "(no finished rounds)"
    layers = list(metrics[0]["weights_left"])
    head = (["round", "density"] + [f"{n} left" for n in layers]
            + ["total", "solved", "steps", "return", "min", "train s"])
    rows = []
    for mt in metrics:
        steps = mt["steps_to_solve"] if mt.get("solved") else mt.get("steps")
        rows.append(
            [str(mt["round"]), f"{100 * mt['density']:.2f}%"]
            + [f"{mt['weights_left'][n]}/{mt['weights_total'][n]}" for n in layers]
            + [str(mt["kept_total"]), "yes" if mt.get("solved") else "NO", str(steps),
               f"{mt['eval_return']:.1f}", f"{mt.get('eval_return_min', float('nan')):.0f}",
               f"{mt.get('train_seconds', 0.0):.1f}"]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(r) for r in rows])


def round_episode(store: RunStore, index: int) -> dict[str, Any]:
    """The recorded greedy episode of round ``index`` (checked shapes)."""
    ep = store.read_round_json(index, EPISODE)
    try:
        n_in, n_act = len(ep["inputs"]), len(ep["actions_names"])
        T = int(ep["length"])
        ok = (len(ep["states"]) == T == len(ep["q"]) == len(ep["actions"])
              and all(len(s) == n_in for s in ep["states"]) and all(len(q) == n_act for q in ep["q"]))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise RunStoreError(f"run {store.path.name} round {index}: {EPISODE} is malformed")
    return ep


__all__ = ["env_data_manifest", "is_rl_manifest", "rl_round_table", "round_episode", "run_rl_control",
           "run_rl_experiment", "now_iso"]


def env_box(manifest: dict[str, Any], metrics: dict[str, Any], box: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The input box of an RL round for bounds: ``(lo, hi, description)``, float64 ``(n_in,)`` each.

    * ``"env"`` (default): an input with a termination limit (CartPole's cart
      position, |x| <= 2.4, and pole angle, |theta| <= 12 degrees) ranges over
      it, since the agent never acts on a state past it; an input without one
      (the velocities) over the range the round's greedy agent visited in its
      evaluation episodes (recorded in ``metrics.json``, ``state_range``).  The
      limits are widened to the next float32 outward, because the network sees
      float32 states.
    * ``"data"``: every input over the visited range.

    The description names the choice; figures and pages show it.
    """
    from .._errors import SparsescopeError

    if box not in ("env", "data"):
        raise SparsescopeError(f"box {box!r} does not apply to a run on an environment (use env or data)")
    sr = metrics.get("state_range") or {}
    try:
        vlo = np.asarray(sr["lo"], dtype=np.float64)
        vhi = np.asarray(sr["hi"], dtype=np.float64)
        names = list(manifest["data"]["inputs"])
        limits = manifest["data"]["limits"]
        if not (vlo.shape == vhi.shape == (len(names),) == (len(limits),)) or not np.all(np.isfinite(vlo + vhi)):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise RunStoreError("the round's metrics hold no usable state_range (visited states)") from None
    if box == "data":
        return vlo, vhi, "data: every input over the range the greedy agent visited"
    lo, hi = vlo.copy(), vhi.copy()
    fixed, seen = [], []
    for i, lim in enumerate(limits):
        if lim is None:
            seen.append(names[i])
            continue
        edge = float(np.nextafter(np.float32(lim), np.float32(np.inf)))
        lo[i], hi[i] = -edge, edge
        fixed.append(f"|{names[i]}| <= {lim:.4g}")
    desc = "env: " + ", ".join(fixed) + " (termination limits)"
    if seen:
        desc += "; " + ", ".join(seen) + " over the range visited by the greedy agent"
    return lo, hi, desc
