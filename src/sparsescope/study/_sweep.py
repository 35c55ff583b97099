"""Sweeps: a grid of experiments expanded into ordinary runs in the run store.

A sweep file (TOML, see ``configs/sweeps/study.toml``) names seeds, pruning
schedules, datasets and control kinds; :func:`expand` turns it into one
:class:`ExperimentConfig` per (schedule, dataset, seed), each an ordinary run
with its own content-addressed folder (``NAME-SCHEDULE-HASH``).  Controls are
trained at every pruned round of every run.  :func:`run_sweep` sends the work
to an executor as tasks: one per run (its rounds, in order), then, as soon as
a run is finished, one per (run, control kind).  Finished rounds and controls
are skipped, so a killed sweep resumes where it stopped and a finished one
costs nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .._config import CONTROL_KINDS, ExperimentConfig, from_dict, read_toml
from .._errors import ConfigError
from ._executors import open_executor

_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$")
_TOP = {"name", "seeds", "datasets", "controls", "control_rounds", "experiment", "schedules", "study", "search"}


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid: which schedule, dataset and seed, and its full config."""

    schedule: str
    dataset: str
    seed: int
    config: ExperimentConfig

    @property
    def run_id(self) -> str:
        return self.config.run_id


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep file.

    ``schedules`` maps a schedule name to its ``[prune]`` table (the
    ``[experiment.prune]`` defaults merged in); ``experiment`` holds the
    ``model``/``train`` tables shared by every run; ``controls`` the control
    kinds trained at the rounds in ``control_rounds`` (``"all"``: every pruned
    round, 1..last); ``study`` the report's options (``accuracy_floor``,
    ``measure``); ``search`` the ``[search]`` table of :func:`search_schedule`.
    """

    name: str
    seeds: tuple[int, ...]
    datasets: tuple[str, ...]
    schedules: dict[str, dict[str, Any]]
    experiment: dict[str, Any] = field(default_factory=dict)
    controls: tuple[str, ...] = ()
    control_rounds: str | tuple[int, ...] = "all"
    study: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[SweepRun]:
        """The grid, schedule-major then dataset then seed (a fixed order)."""
        return expand(self)


def _merge_prune(defaults: dict[str, Any], schedule: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    if "rounds" in schedule or "target_density" in schedule:
        merged.pop("rounds", None)
        merged.pop("target_density", None)
    strategy = schedule.get("strategy", merged.get("strategy", "layerwise"))
    for k in (("rate", "layers") if strategy == "layerwise" else ("rates",)):
        if k not in schedule:
            merged.pop(k, None)
    merged.update(schedule)
    return merged


def sweep_from_dict(doc: dict[str, Any]) -> SweepConfig:
    """Check a parsed sweep file field by field (one :class:`ConfigError` naming the key)."""
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise ConfigError(f"unknown sweep key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP))})")
    name = doc.get("name", "sweep")
    if not isinstance(name, str) or not _SCHEDULE_NAME.match(name):
        raise ConfigError(f"sweep name must be 1-31 letters, digits, '-', '_' or '.', got {name!r}")
    seeds = doc.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or len(set(map(repr, seeds))) != len(seeds):
        raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    datasets = doc.get("datasets", ["mnist5k"])
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) and d for d in datasets) \
            or len(set(datasets)) != len(datasets):
        raise ConfigError(f"datasets must be a non-empty list of distinct dataset names, got {datasets!r}")
    controls = doc.get("controls", [])
    if not isinstance(controls, list) or any(k not in CONTROL_KINDS for k in controls) or len(set(controls)) != len(controls):
        raise ConfigError(f"controls must be a list of distinct control kinds ({', '.join(CONTROL_KINDS)}), got {controls!r}")
    rounds = doc.get("control_rounds", "all")
    if rounds != "all":
        if not isinstance(rounds, list) or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rounds):
            raise ConfigError(f"control_rounds must be \"all\" or a list of round numbers >= 1, got {rounds!r}")
        rounds = tuple(sorted(set(rounds)))
    exp = doc.get("experiment", {})
    if not isinstance(exp, dict) or set(exp) - {"model", "train", "prune"}:
        raise ConfigError("[experiment] takes the tables model, train and prune (defaults for every schedule)")
    scheds = doc.get("schedules")
    if not isinstance(scheds, dict) or not scheds:
        raise ConfigError("a sweep needs at least one [schedules.NAME] table (a [prune] table of the experiment config)")
    defaults = exp.get("prune", {})
    if not isinstance(defaults, dict):
        raise ConfigError("[experiment.prune] must be a table")
    schedules = {}
    for sname, table in scheds.items():
        if not _SCHEDULE_NAME.match(sname):
            raise ConfigError(f"schedule name {sname!r} must be 1-31 letters, digits, '-', '_' or '.'")
        if not isinstance(table, dict):
            raise ConfigError(f"[schedules.{sname}] must be a table")
        schedules[sname] = _merge_prune(defaults, table)
    study = doc.get("study", {})
    if not isinstance(study, dict) or set(study) - {"accuracy_floor", "measure"}:
        raise ConfigError("[study] takes accuracy_floor and measure")
    search = doc.get("search", {})
    if search:
        from ._search import search_from_dict

        search_from_dict(search)  # checked now, used by `sparsescope search`
    sweep = SweepConfig(name, tuple(seeds), tuple(datasets), schedules, {k: v for k, v in exp.items() if k != "prune"},
                        tuple(controls), rounds, study, search)
    expand(sweep)  # every point must be a valid experiment config
    return sweep


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and check a sweep file."""
    return sweep_from_dict(read_toml(path, "sweep"))


def experiment_doc(sweep: SweepConfig, schedule: str, dataset: str, seed: int) -> dict[str, Any]:
    """The experiment config (TOML form) of one grid point; controls are trained by the sweep, not the run."""
    return {"name": f"{sweep.name}-{schedule}", "seed": seed, "data": {"dataset": dataset},
            **sweep.experiment, "prune": sweep.schedules[schedule]}


def expand(sweep: SweepConfig) -> list[SweepRun]:
    """One :class:`SweepRun` per (schedule, dataset, seed), in that nesting order."""
    out = []
    for sname in sweep.schedules:
        for dataset in sweep.datasets:
            for seed in sweep.seeds:
                try:
                    config = from_dict(experiment_doc(sweep, sname, dataset, seed))
                except ConfigError as exc:
                    raise ConfigError(f"schedule {sname}: {exc}") from None
                out.append(SweepRun(sname, dataset, seed, config))
    return out


def control_rounds(sweep: SweepConfig, rounds_planned: int) -> list[int]:
    """The rounds that get controls in a run of ``rounds_planned`` rounds."""
    if sweep.control_rounds == "all":
        return list(range(1, rounds_planned))
    return [r for r in sweep.control_rounds if r < rounds_planned]


# -- tasks (module-level: executors pickle them by reference) -----------------
_DATA: dict[str, Any] = {}


def _dataset(name: str):
    """The dataset, loaded once per worker process."""
    if name not in _DATA:
        from ..data import load

        _DATA[name] = load(name)
    return _DATA[name]


def task_run(doc: dict[str, Any], runs_dir: str) -> dict[str, Any]:
    """Train (or resume) every round of one run; returns its id, rounds trained now and seconds."""
    from ..runs import run_experiment

    config = from_dict(doc)
    t0 = time.perf_counter()
    result = run_experiment(config, runs_dir, data=_dataset(config.dataset))
    return {"run_id": result.run_id, "trained": len(result.trained_now), "rounds": len(result.rounds),
            "seconds": time.perf_counter() - t0}


def task_controls(run_path: str, kind: str, rounds: list[int], batched: bool = False) -> dict[str, Any]:
    """Train the ``kind`` controls of ``rounds`` of one finished run (existing ones are kept)."""
    from ..runs import RunStore, run_control

    t0 = time.perf_counter()
    dataset = RunStore(run_path).manifest()["config"]["dataset"]
    data = _dataset(dataset)
    if batched and "sizes" not in RunStore(run_path).manifest()["config"]["model"]:
        batched = False  # only the MLP has the batched trainer
    if batched:
        from ._batched import train_controls_batched

        done = train_controls_batched(run_path, kind, rounds, data=data)
    else:
        done = 0
        for r in rounds:
            run_control(run_path, r, kind, data=data)
            done += 1
    return {"run": Path(run_path).name, "kind": kind, "trained": done, "seconds": time.perf_counter() - t0}


# -- the driver ----------------------------------------------------------------
@dataclass
class SweepResult:
    """What a sweep did: its runs, tasks run and skipped, and the wall time."""

    runs: list[SweepRun]
    tasks: int
    skipped: int
    wall_seconds: float


def missing_controls(sweep: SweepConfig, run_path: Path) -> dict[str, list[int]]:
    """Per control kind, the rounds of a finished run whose control is not stored yet."""
    from .._config import from_manifest
    from ..runs import RunStore, control_folder, control_seed

    store = RunStore(run_path)
    m = store.manifest()
    config = from_manifest(m)
    out = {}
    for kind in sweep.controls:
        todo = [r for r in control_rounds(sweep, int(m["rounds_planned"]))
                if not control_folder(run_path, r, kind, control_seed(config, kind, r)).is_dir()]
        if todo:
            out[kind] = todo
    return out


def _finished(path: Path) -> bool:
    from ..runs import RunStore

    store = RunStore(path)
    return store.exists and len(store.finished_rounds()) == int(store.manifest()["rounds_planned"])


def run_sweep(
    sweep: SweepConfig,
    runs_dir: str | Path = "runs",
    *,
    executor: str = "local",
    workers: int | None = None,
    batched: bool = False,
    note: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every missing round and control of ``sweep`` on ``executor`` (see :func:`open_executor`).

    ``batched``: train each (run, kind)'s controls in one batched pass
    (:func:`train_controls_batched`).  ``note(line)`` reports each finished task.
    """
    say = note or (lambda s: None)
    runs = expand(sweep)
    base = Path(runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tasks = skipped = 0
    with open_executor(executor, workers=workers, log_dir=base, note=say) as ex:
        pending: dict[cf.Future, str] = {}

        def submit_controls(path: Path) -> None:
            nonlocal skipped
            todo = missing_controls(sweep, path)
            skipped += len(sweep.controls) - len(todo)
            for kind, rounds in todo.items():
                pending[ex.submit(task_controls, str(path), kind, rounds, batched)] = f"{path.name} {kind} x{len(rounds)}"

        for run in runs:
            path = base / run.run_id
            if _finished(path):
                skipped += 1
                submit_controls(path)
            else:
                doc = experiment_doc(sweep, run.schedule, run.dataset, run.seed)
                pending[ex.submit(task_run, doc, str(base))] = run.run_id
        try:
            while pending:
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: pending[f]):
                    label = pending.pop(fut)
                    res = fut.result()  # a failed task raises here, after which the rest is cancelled
                    tasks += 1
                    if "run_id" in res:
                        say(f"run {res['run_id']}: {res['trained']} rounds trained ({res['seconds']:.1f} s)")
                        submit_controls(base / res["run_id"])
                    else:
                        say(f"controls {label}: {res['trained']} trained ({res['seconds']:.1f} s)")
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return SweepResult(runs, tasks, skipped, time.perf_counter() - t0)
