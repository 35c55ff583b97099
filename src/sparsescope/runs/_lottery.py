"""Lottery-ticket rounds: train, prune, rewind, repeat; every round kept in the run store.

``run_experiment(config)`` is idempotent: on an existing run it checks the
config and data fingerprint, skips finished rounds and resumes at the first
unfinished one.  Every round's work depends only on what is on disk (the
previous round's saved weights and mask, the saved initial/rewind weights)
and on seeds derived from ``(seed, round)``, so a killed and resumed run ends
with exactly the masks and weights of an uninterrupted one, as long as it is
resumed with the same training path (each round records its ``train_path``;
resuming with another prints a warning, see :func:`warn_path_change`).
"""

from __future__ import annotations

import hashlib
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .. import __version__
from .._config import CONTROL_KINDS, ExperimentConfig
from .._config import from_manifest as config_from_manifest
from .._errors import ConfigError, RunStoreError, SparsescopeError
from .._resources import check_threads, check_train_memory
from .._untrusted import term
from ..data import Dataset, load
from ..models import SequentialSpec, init_params
from ..prune import Mask, planned_counts, prune, random_mask
from ..train import TrainResult, fit, training_path
from ._store import RunStore, check_data, mask_tensors, now_iso

Progress = Callable[[str, int, int], None]


class TrainingDiverged(SparsescopeError):
    """Training produced NaN or infinite weights (usually: the learning rate is too high)."""


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from ``seed`` and labels, stable across Python versions."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def manifest_for(config: ExperimentConfig, data: Dataset | None, rounds: int) -> dict[str, Any]:
    """The run's manifest: config, seeds, planned rounds, data fingerprint, library versions.

    (``data=None``: an RL run, whose caller writes the environment's ``data`` section.)
    """
    import safetensors

    return {
        "format": "sparsescope.run",
        "version": 1,
        "run_id": config.run_id,
        "created": now_iso(),
        "config": config.to_dict(),
        "seeds": {"init": config.seed, "shuffle": "derive_seed(seed, 'shuffle', round)"},
        "rounds_planned": rounds,
        "data": None if data is None else {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "n_train": int(len(data.x_train)),
            "n_test": int(len(data.x_test)),
            "input_shape": list(data.input_shape),
            "classes": list(data.classes),
        },
        "versions": {
            "sparsescope": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "python": platform.python_version(),
        },
    }


def round_metrics(index: int, mask: Mask, result: TrainResult, wall: float) -> dict[str, Any]:
    """What a round records: density, weights left per layer, final and per-epoch metrics, the
    training path (``train_path``: paths differ in float rounding, so the masks depend on it), times."""
    last = result.history[-1]
    return {
        "round": index,
        "density": mask.density,
        "weights_left": mask.kept(),
        "weights_total": mask.totals(),
        "kept_total": mask.num_kept,
        "test_accuracy": last["test_accuracy"],
        "test_loss": last["test_loss"],
        "train_accuracy": last["train_accuracy"],
        "train_loss": last["train_loss"],
        "history": result.history,
        **({"train_path": result.path} if result.path else {}),
        "train_seconds": result.train_seconds,
        "wall_seconds": wall,
    }


@dataclass
class RunResult:
    """The run folder, the metrics of every finished round, which rounds this call trained,
    and their training time (seconds, training loops only)."""

    path: Path
    run_id: str
    rounds: list[dict[str, Any]]
    trained_now: list[int]
    train_seconds: float


def planned_rounds(config: ExperimentConfig) -> int:
    """How many rounds the config's pruning plan makes; checks that the controls name existing ones."""
    shapes = config.model.kernel_shapes
    n_rounds = len(planned_counts({n: math.prod(s) for n, s in shapes.items()}, config.prune))
    late = [r for r in config.controls.rounds if r >= n_rounds]
    if late:
        raise ConfigError(f"controls.rounds names round {late[0]} but the run has {n_rounds} rounds (0-{n_rounds - 1})")
    return n_rounds


def _check_fit(config: ExperimentConfig, data: Dataset) -> None:
    n_in = int(np.prod(data.input_shape))
    spec = config.model
    if isinstance(spec, SequentialSpec):
        if spec.num_inputs != n_in:
            raise ConfigError(f"model.input_shape {list(spec.input_shape)} does not fit dataset {data.name}'s "
                              f"inputs of shape {list(data.input_shape)}")
        if spec.num_outputs != data.num_classes:
            raise ConfigError(f"the model has {spec.num_outputs} outputs but dataset {data.name} has {data.num_classes} classes")
    else:
        if spec.sizes[0] != n_in:
            raise ConfigError(f"model.sizes starts with {spec.sizes[0]} inputs but dataset {data.name} has {n_in}")
        if spec.sizes[-1] != data.num_classes:
            raise ConfigError(
                f"model.sizes ends with {spec.sizes[-1]} outputs but dataset {data.name} has {data.num_classes} classes"
            )
    steps = math.ceil(len(data.x_train) / config.train.batch_size) * config.train.epochs
    if config.prune.rewind_step > steps:
        raise ConfigError(f"prune.rewind_step {config.prune.rewind_step} is past the end of round 0 ({steps} steps)")
    check_threads(config.train.threads)
    check_train_memory(config.model, config.train.batch_size)


def _fit_checked(what: str, *args: Any, **kw: Any) -> TrainResult:
    result = fit(*args, **kw)
    for k, v in result.params.items():
        if not torch.isfinite(v).all():
            raise TrainingDiverged(f"{what}: training diverged ({k} has NaN or infinite values); lower train.lr")
    return result


def run_experiment(
    config: ExperimentConfig,
    runs_dir: str | Path = "runs",
    *,
    data: Dataset | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Run (or resume) every round of ``config``; returns the metrics of all rounds.

    Everything that can be checked before training is checked before the run
    folder is created.  ``stop_after``: train at most this many new rounds,
    then return (used to test resuming).  ``progress(label, step, total)``
    reports training steps.  An RL config (``[env]``) runs DQN rounds (see :mod:`._rl`).
    """
    if config.is_rl:
        from ._rl import run_rl_experiment

        return run_rl_experiment(config, runs_dir, progress=progress, stop_after=stop_after)
    data = load(config.dataset) if data is None else data
    store, n_rounds = open_run(config, runs_dir, data)
    path = store.path
    with store.lock():
        store.clean_temporaries()
        trained, seconds = _train_rounds(config, store, data, n_rounds, progress, stop_after)
        if stop_after is None or len(trained) < stop_after:
            for r in config.controls.rounds:
                for kind in config.controls.kinds:
                    run_control(path, r, kind, data=data, progress=progress, _locked=True)
    return RunResult(path, config.run_id, store.round_metrics(), trained, seconds)


def open_run(config: ExperimentConfig, runs_dir: str | Path, data: Dataset) -> tuple[RunStore, int]:
    """The run folder of ``config`` and its planned rounds: created (manifest + initial weights) if
    missing, else checked to hold the same config and data.  Everything checkable before training is
    checked before the folder is created."""
    _check_fit(config, data)
    n_rounds = planned_rounds(config)
    path = Path(runs_dir) / config.run_id
    store = RunStore(path)
    if store.exists:
        m = store.manifest()
        if config_from_manifest(m).identity() != config.identity():
            raise RunStoreError(f"run {path} was made with a different config; not touching it")
        check_data(m, data, path)
    else:
        if path.exists():
            raise RunStoreError(f"{path} exists but is not a run (no manifest.json); move it away first")
        RunStore.create(path, manifest_for(config, data, n_rounds), init_params(config.model, config.seed))
    return store, n_rounds


def round_start(config: ExperimentConfig, store: RunStore, r: int,
                init: dict[str, torch.Tensor] | None = None) -> tuple[Mask, dict[str, torch.Tensor]]:
    """``(mask, start weights)`` of round ``r``: dense from the initial weights for round 0; else
    round ``r - 1``'s saved trained weights pruned, survivors rewound (``init``: the initial weights, if read)."""
    spec = config.model
    if r == 0:
        return Mask.ones(spec.kernel_shapes), store.init_params() if init is None else init
    prev = store.read_round(r - 1)
    mask = prune({n: prev.params[f"{n}.weight"].numpy() for n in spec.layer_names}, prev.mask, config.prune)
    if config.prune.rewind_step == 0:
        return mask, store.init_params() if init is None else init
    return mask, store.rewind_params()


def round_seed(config: ExperimentConfig, r: int) -> int:
    """The shuffle seed of round ``r``'s training."""
    return derive_seed(config.seed, "shuffle", r)


def control_shuffle_seed(config: ExperimentConfig, kind: str, seed: int, r: int) -> int:
    """The shuffle seed of the ``kind`` control (seed ``seed``) of round ``r``."""
    return derive_seed(config.seed, "shuffle", f"control-{kind}-{seed}", r)


def rounds_to_train(config: ExperimentConfig, store: RunStore, n_rounds: int,
                    stop_after: int | None) -> Iterator[tuple[int, Mask, dict[str, torch.Tensor]]]:
    """``(round, mask, start weights)`` of each unfinished round, in order (at most ``stop_after``).

    Round 0 is dense from the initial weights; round ``r`` prunes round ``r - 1``'s
    saved trained weights and starts from the rewound survivors.  Each is read
    from disk when the caller asks for it, so it sees the round written just before.
    """
    init = store.init_params()
    done = set(store.finished_rounds())
    given = 0
    for r in range(n_rounds):
        if r in done:
            continue
        if stop_after is not None and given >= stop_after:
            return
        mask, start = round_start(config, store, r, init)
        given += 1
        yield r, mask, start


def _train_rounds(config, store: RunStore, data, n_rounds, progress, stop_after) -> tuple[list[int], float]:
    spec, rewind_step = config.model, config.prune.rewind_step
    trained: list[int] = []
    seconds = 0.0
    for r, mask, start in rounds_to_train(config, store, n_rounds, stop_after):
        if not trained:
            warn_path_change(store, r, training_path(spec))
        t0 = time.perf_counter()
        result = _fit_checked(
            f"round {r}", spec, start, mask_tensors(mask), data, config.train,
            seed=round_seed(config, r),
            snapshot_step=rewind_step if (r == 0 and rewind_step > 0) else None,
            on_step=(lambda s, t, r=r: progress(f"round {r}/{n_rounds - 1}", s, t)) if progress else None,
        )
        metrics = round_metrics(r, mask, result, time.perf_counter() - t0)
        store.write_round(store.round_dir(r), mask, result.params, metrics,
                          rewind=result.snapshot if (r == 0 and rewind_step > 0) else None)
        trained.append(r)
        seconds += result.train_seconds
    return trained, seconds


def warn_path_change(store: RunStore, first: int, path: str) -> None:
    """One line on stderr when rounds ``0..first-1`` were trained by another path than ``path``.

    Paths differ in float rounding, so a run resumed on a machine whose
    training path differs (no g++, ``SPARSESCOPE_CONV_KERNELS=0``) goes on
    correctly but will not equal, bit for bit, the run left uninterrupted.
    Rounds from before paths were recorded say nothing and are not compared.
    """
    before = {}
    for mt in store.round_metrics()[:first]:
        if mt.get("train_path") not in (None, path):
            before.setdefault(mt["train_path"], []).append(mt["round"])
    if before:
        was = "; ".join(f"{'round' if len(rs) == 1 else 'rounds'} {_spans(rs)} with {p}" for p, rs in sorted(before.items()))
        print(f"sparsescope: warning: run {term(store.path.name)} was trained {was}, but this machine trains with "
              f"{path}: results will not be bit-identical to an uninterrupted run", file=sys.stderr)


def _spans(rounds: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out, i = [], 0
    while i < len(rounds):
        j = i
        while j + 1 < len(rounds) and rounds[j + 1] == rounds[j] + 1:
            j += 1
        out.append(str(rounds[i]) if i == j else f"{rounds[i]}-{rounds[j]}")
        i = j + 1
    return ", ".join(out)


def run_control(
    run: str | Path,
    round_index: int,
    kind: str,
    *,
    seed: int | None = None,
    data: Dataset | None = None,
    progress: Progress | None = None,
    _locked: bool = False,  # the caller holds the run lock (kept for callers; each control locks itself)
) -> dict[str, Any]:
    """Train a lottery-ticket control for one round of a finished run.

    * ``reinit``: the round's mask with a fresh random initialisation (from ``seed``);
    * ``random-mask``: a random mask (from ``seed``) with the round's per-layer counts,
      starting from the weights the winning ticket starts from (initial, or rewound to step k).

    Stored under ``RUN/controls/KIND-rNNN-sSEED``; an existing one is returned, not retrained.
    """
    if kind not in CONTROL_KINDS:
        raise ConfigError(f"unknown control kind {kind!r} (expected {', '.join(CONTROL_KINDS)})")
    store = RunStore(run)
    manifest = store.manifest()
    config = config_from_manifest(manifest)
    if config.is_rl:
        from ._rl import run_rl_control

        with (_nolock() if _locked else store.lock()):
            return run_rl_control(store, round_index, kind, seed=seed, progress=progress)
    rec = store.read_round(round_index)
    if seed is None:
        seed = control_seed(config, kind, round_index)
    from .._checks import MAX_SEED, need_int

    seed = need_int("control seed", seed, 0, MAX_SEED)
    folder = control_folder(store.path, round_index, kind, seed)
    if folder.is_dir():
        return store.read_round_at(folder, f"control {folder.name}").metrics
    data = load(config.dataset) if data is None else data
    check_data(manifest, data, store.path)
    mask, start = control_start(store, config, rec.mask, kind, seed)
    t0 = time.perf_counter()
    # each control has its own lock, so a sweep trains several controls of one run at once
    with store.lock(f"controls/.{folder.name}.lock"):
        if folder.is_dir():  # another process finished it while we waited
            return store.read_round_at(folder, f"control {folder.name}").metrics
        result = _fit_checked(
            f"control {kind} of round {round_index}", config.model, start, mask_tensors(mask), data, config.train,
            seed=control_shuffle_seed(config, kind, seed, round_index),
            on_step=(lambda s, t: progress(f"control {kind} r{round_index}", s, t)) if progress else None,
        )
        metrics = {**round_metrics(round_index, mask, result, time.perf_counter() - t0), "control": kind, "seed": seed}
        store.write_round(folder, mask, result.params, metrics)
    return store.read_round_at(folder, f"control {folder.name}").metrics


def control_seed(config: ExperimentConfig, kind: str, round_index: int) -> int:
    """The default seed of a control: derived from the run's seed, the kind and the round."""
    return derive_seed(config.seed, "control", kind, round_index)


def control_folder(run: str | Path, round_index: int, kind: str, seed: int) -> Path:
    """``RUN/controls/KIND-rNNN-sSEED``: where a control is stored."""
    return Path(run) / "controls" / f"{kind}-r{round_index:03d}-s{seed}"


def control_start(store: RunStore, config: ExperimentConfig, round_mask: Mask, kind: str, seed: int):
    """``(mask, start parameters)`` of a control of a round with mask ``round_mask``."""
    if kind == "reinit":
        return round_mask, init_params(config.model, seed)
    mask = random_mask(round_mask, seed)
    return mask, (store.init_params() if config.prune.rewind_step == 0 else store.rewind_params())


class _nolock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
