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

from .._config import CONTROL_KINDS, ExperimentConfig, from_dict, read_toml, term
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
    exp = doc.get("experiment", {})
    if not isinstance(exp, dict) or set(exp) - {"model", "train", "prune", "env", "rl"}:
        raise ConfigError("[experiment] takes the tables model, train and prune (defaults for every schedule), "
                          "and env and rl for a reinforcement-learning sweep")
    if "env" in exp or "rl" in exp:  # an RL sweep: the environment replaces the datasets
        env = exp.get("env")
        if "datasets" in doc:
            raise ConfigError("an RL sweep ([experiment.env]) trains on its environment; remove datasets")
        if not isinstance(env, dict) or not isinstance(env.get("name"), str):
            raise ConfigError("an RL sweep needs [experiment.env] with the environment's name")
        datasets = [env["name"]]
    else:
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
    if not isinstance(study, dict) or set(study) - {"accuracy_floor", "return_floor", "measure"}:
        raise ConfigError("[study] takes accuracy_floor (classifiers), return_floor (RL) and measure")
    for key in ("accuracy_floor", "return_floor"):
        v = study.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v != v):
            raise ConfigError(f"[study] {key} must be a number, got {v!r}")
    search = doc.get("search", {})
    if search:
        from ._search import search_from_dict

        search_from_dict(search)  # checked now, used by `sparsescope search`
    sweep = SweepConfig(name, tuple(seeds), tuple(datasets), schedules, {k: v for k, v in exp.items() if k != "prune"},
                        tuple(controls), rounds, study, search)
    expand(sweep)  # every point must be a valid experiment config
    return sweep


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and check a sweep file (an empty one is an error, as for an experiment config)."""
    doc = read_toml(path, "sweep")
    if not doc:
        raise ConfigError(f"sweep {term(path)} is empty; it must set at least [schedules.NAME] "
                          "(start from configs/sweeps/study.toml)")
    return sweep_from_dict(doc)


def experiment_doc(sweep: SweepConfig, schedule: str, dataset: str, seed: int) -> dict[str, Any]:
    """The experiment config (TOML form) of one grid point; controls are trained by the sweep, not the run.

    (An RL sweep's point has the ``[env]`` and ``[rl]`` tables instead of ``[data]``.)
    """
    data = {} if "env" in sweep.experiment else {"data": {"dataset": dataset}}
    return {"name": f"{sweep.name}-{schedule}", "seed": seed, **data, **sweep.experiment,
            "prune": sweep.schedules[schedule]}


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
    """The dataset, loaded once per worker process (workers live as long as the sweep).

    Its fingerprint (a SHA-256 over all its arrays, 0.3 s on the full MNIST,
    checked by every step of every run) is computed once: nothing in a worker
    modifies the arrays (torch warns on read-only ones, so they stay writable).
    """
    if name not in _DATA:
        import functools

        from ..data import Dataset, load

        class _Pinned(Dataset):
            @functools.cached_property
            def fingerprint(self) -> str:  # type: ignore[override]
                return Dataset.fingerprint.fget(self)  # type: ignore[attr-defined]

        d = load(name)
        _DATA[name] = _Pinned(d.name, d.x_train, d.y_train, d.x_test, d.y_test, d.classes, d.meta)
    return _DATA[name]


def task_step(docs: list[dict[str, Any]], runs_dir: str, r: int, kinds: list[str]) -> dict[str, Any]:
    """Round ``r`` of the runs ``docs`` (creating them if new) and their ``kinds`` controls of round ``r``.

    Every run's round ``r - 1`` is finished (the driver sends a chain's steps in
    order).  The missing trainings go through one :func:`train_jobs` call (one
    batched pass for MLPs); the run locks are held throughout.
    """
    import contextlib

    from ..runs._lottery import open_run
    from ._steps import step_jobs, train_jobs

    t0, c0 = time.perf_counter(), time.thread_time()
    configs = [from_dict(doc) for doc in docs]
    data = _dataset(configs[0].dataset)
    with contextlib.ExitStack() as held:
        stores = []
        for config in configs:
            store, _ = open_run(config, runs_dir, data)
            held.enter_context(store.lock())
            store.clean_temporaries()
            stores.append(store)
        jobs = step_jobs(configs, stores, r, kinds)
        train = train_jobs(jobs, data)
    return {"round": r, "trained": len(jobs), "train_seconds": train, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.thread_time() - c0}


def task_run(doc: dict[str, Any], runs_dir: str) -> dict[str, Any]:
    """Train (or resume) every round of one run (RL runs); returns its id, rounds trained now and seconds."""
    from ..runs import run_experiment

    config = from_dict(doc)
    t0 = time.perf_counter()
    result = run_experiment(config, runs_dir, data=None if config.is_rl else _dataset(config.dataset))
    return {"run_id": result.run_id, "trained": len(result.trained_now), "rounds": len(result.rounds),
            "train_seconds": result.train_seconds, "seconds": time.perf_counter() - t0}


def task_controls(run_path: str, kind: str, rounds: list[int]) -> dict[str, Any]:
    """Train the ``kind`` controls of ``rounds`` of one finished run (RL runs; existing ones are kept)."""
    from ..runs import run_control

    t0 = time.perf_counter()
    for r in rounds:
        run_control(run_path, r, kind)
    return {"run": Path(run_path).name, "kind": kind, "trained": len(rounds), "train_seconds": 0.0,
            "seconds": time.perf_counter() - t0}


# -- the driver ----------------------------------------------------------------
@dataclass
class SweepResult:
    """What a sweep did: its runs, tasks sent, trainings done now and found done, and times.

    ``task_seconds``: the workers' time inside tasks (summed); ``train_seconds``:
    the part spent in training loops; ``task_cpu_seconds``: the CPU time of
    the threads that ran the step tasks (less than ``task_seconds`` when the
    machine is shared).  ``wall_seconds`` x workers minus ``task_seconds`` is
    start-up, scheduling and idle time.
    """

    runs: list[SweepRun]
    tasks: int
    skipped: int
    wall_seconds: float
    trained: int = 0
    task_seconds: float = 0.0
    train_seconds: float = 0.0
    task_cpu_seconds: float = 0.0


@dataclass
class _Chain:
    """Runs that step through their rounds together (the seeds of one schedule and dataset)."""

    runs: list[SweepRun]
    n_rounds: int
    rounds: list[int]  # the rounds that still need a step, in order

    @property
    def label(self) -> str:
        r = self.runs[0]
        return f"{r.schedule}/{r.dataset} seeds {','.join(str(x.seed) for x in self.runs)}"


def _round_kinds(sweep: SweepConfig, n_rounds: int) -> dict[int, list[str]]:
    with_controls = set(control_rounds(sweep, n_rounds))
    return {r: list(sweep.controls) if r in with_controls else [] for r in range(n_rounds)}


def _missing(sweep: SweepConfig, run: SweepRun, path: Path, n_rounds: int) -> tuple[set[int], int]:
    """Rounds of one run with something missing (the round or a control), and how many trainings are stored."""
    from ..runs import RunStore
    from ..runs._lottery import control_folder, control_seed

    store = RunStore(path)
    done = set(store.finished_rounds()) if store.exists else set()
    need, have = set(), 0
    for r, kinds in _round_kinds(sweep, n_rounds).items():
        ok = r in done
        have += ok
        for kind in kinds:
            there = control_folder(path, r, kind, control_seed(run.config, kind, r)).is_dir()
            have += there
            ok = ok and there
        if not ok:
            need.add(r)
    return need, have


def _chains(sweep: SweepConfig, base: Path, workers: int) -> tuple[list[_Chain], int, int]:
    """The supervised runs grouped into chains (with the rounds each still needs), trainings
    planned and trainings already stored.  A chain is split by seeds while there are fewer chains
    than workers, so that every worker has one."""
    from ..runs._lottery import planned_rounds

    groups: dict[tuple[str, str], list[SweepRun]] = {}
    for run in expand(sweep):
        if not run.config.is_rl:
            groups.setdefault((run.schedule, run.dataset), []).append(run)
    parts = list(groups.values())
    while len(parts) < workers and max((len(p) for p in parts), default=1) > 1:
        big = max(range(len(parts)), key=lambda i: len(parts[i]))
        p = parts.pop(big)
        parts[big:big] = [p[: len(p) // 2 + len(p) % 2], p[len(p) // 2 + len(p) % 2:]]
    chains, planned, have = [], 0, 0
    for runs in parts:
        n_rounds = planned_rounds(runs[0].config)
        need: set[int] = set()
        for run in runs:
            n, h = _missing(sweep, run, base / run.run_id, n_rounds)
            need |= n
            have += h
            planned += sum(1 + len(k) for k in _round_kinds(sweep, n_rounds).values())
        # a round is stepped once its predecessors are done: from the first missing round on, in order
        chains.append(_Chain(runs, n_rounds, list(range(min(need), n_rounds)) if need else []))
    return chains, planned, have


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
    executor: str | cf.Executor = "local",
    workers: int | None = None,
    note: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every missing round and control of ``sweep`` on ``executor`` (see :func:`open_executor`).

    The runs of one schedule and dataset form a *chain*: task ``r`` of a chain
    trains round ``r`` of each of its runs and every control of round ``r``, in
    one batched pass (:func:`task_step`); a chain's next task is sent when its
    previous one is done, so the chains share the workers.  RL runs go as one
    task per run, then one per (run, control kind).  ``note(line)`` reports
    each finished task.
    """
    from ._executors import default_workers

    say = note or (lambda s: None)
    runs = expand(sweep)
    base = Path(runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_workers = 1 if isinstance(executor, str) and executor == "serial" else (workers or default_workers())
    chains, planned, skipped = _chains(sweep, base, n_workers)
    res = SweepResult(runs, 0, skipped, 0.0)
    with open_executor(executor, workers=workers, log_dir=base, note=say) as ex:
        pending: dict[cf.Future, tuple[str, Any]] = {}

        def step(chain: _Chain) -> None:
            if chain.rounds:
                r = chain.rounds.pop(0)
                docs = [experiment_doc(sweep, x.schedule, x.dataset, x.seed) for x in chain.runs]
                kinds = _round_kinds(sweep, chain.n_rounds)[r]
                pending[ex.submit(task_step, docs, str(base), r, kinds)] = ("step", chain)

        def rl_controls(path: Path) -> None:
            for kind, rounds in missing_controls(sweep, path).items():
                pending[ex.submit(task_controls, str(path), kind, rounds)] = ("controls", f"{path.name} {kind}")

        for chain in chains:
            step(chain)
        for run in runs:
            if not run.config.is_rl:
                continue
            path = base / run.run_id
            if _finished(path):
                rl_controls(path)
            else:
                doc = experiment_doc(sweep, run.schedule, run.dataset, run.seed)
                pending[ex.submit(task_run, doc, str(base))] = ("run", run.run_id)
        try:
            while pending:
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: str(pending[f][1] if pending[f][0] != "step"
                                                          else pending[f][1].label)):
                    kind, what = pending.pop(fut)
                    out = fut.result()  # a failed task raises here, after which the rest is cancelled
                    res.tasks += 1
                    res.trained += out["trained"]
                    res.task_seconds += out["seconds"]
                    res.train_seconds += out["train_seconds"]
                    res.task_cpu_seconds += out.get("cpu_seconds", 0.0)
                    if kind == "step":
                        say(f"{what.label} round {out['round']}: {out['trained']} trained ({out['seconds']:.1f} s)")
                        step(what)
                    elif kind == "run":
                        say(f"run {out['run_id']}: {out['trained']} rounds trained ({out['seconds']:.1f} s)")
                        rl_controls(base / out["run_id"])
                    else:
                        say(f"controls {what}: {out['trained']} trained ({out['seconds']:.1f} s)")
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    res.wall_seconds = time.perf_counter() - t0
    return res
