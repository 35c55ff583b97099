"""Training jobs of a sweep step: lottery rounds and controls of runs that share one architecture.

A *job* is one training the run store is missing: round ``r`` of a run, or
the ``kind`` control of round ``r``.  Its mask, start weights and shuffle seed
are exactly those :func:`sparsescope.runs.run_experiment` and
:func:`sparsescope.runs.run_control` use, so where it is trained does not
show in the store.  :func:`train_jobs` trains a list of jobs together with
:func:`fit_batched` when they are MLPs of one shape and training config
(bit-identical to training each alone, tested), else one by one with
:func:`sparsescope.train.fit`, and writes each folder atomically.

The unit a sweep sends to a worker (:func:`step_jobs`) is round ``r`` of
several runs (the seeds of one schedule) with every control of that round:
the controls of round ``r`` need only round ``r``'s mask, known before round
``r`` is trained, so the tickets and their controls train in one pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .._config import ExperimentConfig
from ..data import Dataset
from ..models import MLPSpec
from ..prune import Mask


@dataclass
class Job:
    """One missing training: where it goes, and everything its training depends on."""

    store: Any  # RunStore
    config: ExperimentConfig
    round: int
    folder: Path
    mask: Mask
    start: dict[str, torch.Tensor]
    shuffle_seed: int
    control: str | None = None  # None: the round itself
    control_seed: int | None = None
    snapshot_step: int | None = None  # round 0 of a late-rewinding run keeps its rewind weights

    @property
    def label(self) -> str:
        what = f"round {self.round}" if self.control is None else f"control {self.control} of round {self.round}"
        return f"{self.store.path.name} {what}"


def ticket_job(config: ExperimentConfig, store, r: int, init=None) -> Job:
    """Round ``r`` of a run whose round ``r - 1`` is finished."""
    from ..runs._lottery import round_seed, round_start

    mask, start = round_start(config, store, r, init)
    rewind = config.prune.rewind_step
    return Job(store, config, r, store.round_dir(r), mask, start, round_seed(config, r),
               snapshot_step=rewind if (r == 0 and rewind > 0) else None)


def control_job(config: ExperimentConfig, store, r: int, kind: str, round_mask: Mask) -> Job | None:
    """The ``kind`` control of round ``r`` (mask ``round_mask``) with its default seed; None if stored."""
    from ..runs._lottery import control_folder, control_seed, control_shuffle_seed, control_start

    seed = control_seed(config, kind, r)
    folder = control_folder(store.path, r, kind, seed)
    if folder.is_dir():
        return None
    mask, start = control_start(store, config, round_mask, kind, seed)
    return Job(store, config, r, folder, mask, start, control_shuffle_seed(config, kind, seed, r), kind, seed)


def _batch_key(job: Job) -> tuple | None:
    spec = job.config.model
    return (spec.sizes, spec.activation, job.config.train) if isinstance(spec, MLPSpec) else None


def train_jobs(jobs: Sequence[Job], data: Dataset) -> float:
    """Train ``jobs`` and write each folder (a control under its own lock; an existing folder is kept).

    Jobs that share an MLP shape and training config go through one
    :func:`fit_batched` call; the rest are trained one by one.  The caller holds
    the run locks of the rounds it trains.  Returns the training seconds.
    """
    from ..runs._lottery import TrainingDiverged, round_metrics
    from ..runs._store import mask_tensors
    from ..train import fit
    from ._batched import fit_batched

    groups: dict[Any, list[Job]] = {}
    for i, job in enumerate(jobs):
        key = _batch_key(job)
        groups.setdefault(key if key is not None else ("alone", i), []).append(job)
    seconds = 0.0
    for group in groups.values():
        t0 = time.perf_counter()
        cfg = group[0].config
        if _batch_key(group[0]) is not None:
            results = fit_batched(cfg.model, [j.start for j in group], [mask_tensors(j.mask) for j in group], data,
                                  cfg.train, seeds=[j.shuffle_seed for j in group],
                                  snapshot_steps=[j.snapshot_step for j in group])
        else:
            results = [fit(j.config.model, j.start, mask_tensors(j.mask), data, j.config.train, seed=j.shuffle_seed,
                           snapshot_step=j.snapshot_step) for j in group]
        wall = (time.perf_counter() - t0) / len(group)
        seconds += sum(r.train_seconds for r in results)
        for job, res in zip(group, results):
            for k, v in res.params.items():
                if not torch.isfinite(v).all():
                    raise TrainingDiverged(f"{job.label}: training diverged ({k} has NaN or infinite values); "
                                           "lower train.lr")
            metrics: dict[str, Any] = round_metrics(job.round, job.mask, res, wall)
            if job.control is None:
                job.store.write_round(job.folder, job.mask, res.params, metrics,
                                      rewind=res.snapshot if job.snapshot_step is not None else None)
                continue
            metrics.update(control=job.control, seed=job.control_seed)
            with job.store.lock(f"controls/.{job.folder.name}.lock"):
                if not job.folder.is_dir():  # another process may have finished it meanwhile
                    job.store.write_round(job.folder, job.mask, res.params, metrics)
    return seconds


def step_jobs(configs: Sequence[ExperimentConfig], stores: Sequence[Any], r: int, kinds: Sequence[str]) -> list[Job]:
    """Round ``r`` of each run (if missing) and its ``kinds`` controls (those missing).

    Each run's round ``r - 1`` must be finished.
    """
    jobs = []
    for config, store in zip(configs, stores):
        if r in set(store.finished_rounds()):
            mask = store.read_round(r).mask if kinds else None
        else:
            ticket = ticket_job(config, store, r)
            jobs.append(ticket)
            mask = ticket.mask
        for kind in kinds:
            job = control_job(config, store, r, kind, mask)
            if job is not None:
                jobs.append(job)
    return jobs


def train_controls_batched(run_path: str, kind: str, rounds: Sequence[int], *, data: Dataset | None = None) -> int:
    """Train the ``kind`` controls of ``rounds`` of a finished run in one batched pass.

    Masks, start weights and shuffle seeds are exactly those of
    :func:`sparsescope.runs.run_control`, and so are the stored weights and
    metrics, bit for bit.  Existing controls are kept.  Returns how many were trained.
    """
    from .._config import from_manifest
    from ..data import load
    from ..runs import RunStore
    from ..runs._store import check_data

    store = RunStore(run_path)
    manifest = store.manifest()
    config = from_manifest(manifest)
    jobs = [j for j in (control_job(config, store, r, kind, store.read_round(r).mask) for r in rounds) if j is not None]
    if not jobs:
        return 0
    data = load(config.dataset) if data is None else data
    check_data(manifest, data, store.path)
    train_jobs(jobs, data)
    return len(jobs)


__all__ = ["Job", "control_job", "step_jobs", "ticket_job", "train_controls_batched", "train_jobs"]
