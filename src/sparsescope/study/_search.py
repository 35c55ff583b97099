"""Schedule search: the per-layer pruning rates that minimise a readability measure at an accuracy floor.

Successive halving over a grid of layerwise rate vectors.  Every candidate is
an ordinary run (``NAME-search-HASH``) planned for the last rung's number of
rounds; rung ``i`` trains each surviving candidate up to ``rungs[i]`` rounds
(runs resume, so no round is trained twice), scores it, and keeps the best
``1/eta``.  The score of a candidate is the smallest ``measure`` among its
rounds whose test accuracy (mean over the seeds trained) reaches the floor;
a candidate with no such round scores infinity.  The finalists are then
trained with every seed of the sweep, so the answer comes with its spread.
The same executors as the sweeps run the work: each rung's runs train as
chains of batched steps (one task per round of several candidates, as in a
sweep), and each round is measured once.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .._config import from_dict
from .._errors import ConfigError
from ._executors import open_executor
from ._sweep import SweepConfig, experiment_doc


@dataclass(frozen=True)
class SearchConfig:
    """``rates``: per layer, the rates to try (the grid is their product); ``rungs``: rounds trained
    at each rung (increasing); ``eta``: keep the best ``1/eta`` per rung; ``finalists``: how many get
    every seed at the end."""

    rates: dict[str, tuple[float, ...]]
    rungs: tuple[int, ...] = (6, 12, 19)
    eta: int = 3
    finalists: int = 3

    def grid(self) -> list[dict[str, float]]:
        names = list(self.rates)
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.rates[n] for n in names))]


def search_from_dict(doc: dict[str, Any]) -> SearchConfig:
    """Check a ``[search]`` table: ``rates = {h1 = [..], ..}``, ``rungs``, ``eta``, ``finalists``."""
    if not isinstance(doc, dict) or set(doc) - {"rates", "rungs", "eta", "finalists"}:
        raise ConfigError("[search] takes rates, rungs, eta and finalists")
    rates = doc.get("rates")
    if not isinstance(rates, dict) or not rates or not all(isinstance(v, list) and v for v in rates.values()):
        raise ConfigError("search.rates must be a table of layer = [rates to try]")
    rungs = doc.get("rungs", [6, 12, 19])
    if not isinstance(rungs, list) or not rungs or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs) \
            or sorted(set(rungs)) != rungs:
        raise ConfigError(f"search.rungs must be increasing round counts >= 1, got {rungs!r}")
    eta = doc.get("eta", 3)
    finalists = doc.get("finalists", 3)
    for key, v in (("eta", eta), ("finalists", finalists)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (2 if key == "eta" else 1):
            raise ConfigError(f"search.{key} must be an integer >= {2 if key == 'eta' else 1}, got {v!r}")
    return SearchConfig({k: tuple(v) for k, v in rates.items()}, tuple(rungs), eta, finalists)


def _schedule_name(rates: dict[str, float]) -> str:
    return "search-" + "-".join(f"{k}{v:g}" for k, v in rates.items())


def candidate_doc(sweep: SweepConfig, rates: dict[str, float], rounds: int, seed: int) -> dict[str, Any]:
    """The experiment config of one candidate (layerwise ``rates``, ``rounds`` rounds planned)."""
    sched = {"strategy": "layerwise", "rates": dict(rates), "rounds": rounds}
    s = SweepConfig(sweep.name, sweep.seeds, sweep.datasets, {_schedule_name(rates): sched}, sweep.experiment)
    return experiment_doc(s, _schedule_name(rates), sweep.datasets[0], seed)


def task_score(run_path: str, rounds: list[int], measure: str) -> list[dict[str, Any]]:
    """Accuracy, density and ``measure`` of ``rounds`` of one run (module-level for executors)."""
    from ..analysis import readability
    from ..runs import RunStore, round_flowgraph

    store = RunStore(run_path)
    out = []
    for r in rounds:
        rd = readability(round_flowgraph(store, r))
        value = rd.mean_output(measure[4:]) if measure.startswith("out_") else getattr(rd, measure)
        m = store.read_round(r).metrics
        out.append({"round": r, "test_accuracy": m["test_accuracy"], "value": value, "density": m["density"]})
    return out


def train_to(ex: cf.Executor, docs: list[dict[str, Any]], runs_dir: str, upto: int, chains: int) -> None:
    """Train the runs ``docs`` (one architecture) up to ``upto`` rounds: ``chains`` chains of runs, each
    stepping round by round with one batched task per round (:func:`task_step`)."""
    from ..runs import RunStore
    from ._sweep import task_step

    parts = [docs[i::chains] for i in range(min(chains, len(docs)))]
    nxt: dict[cf.Future, int] = {}

    def send(i: int, r: int) -> None:
        if r < upto:
            nxt[ex.submit(task_step, parts[i], runs_dir, r, [])] = i

    start = []
    for part in parts:
        done = [len(RunStore(Path(runs_dir) / from_dict(d).run_id).finished_rounds())
                if (Path(runs_dir) / from_dict(d).run_id).is_dir() else 0 for d in part]
        start.append(min(done))
    rnd = dict(enumerate(start))
    for i in range(len(parts)):
        send(i, rnd[i])
    while nxt:
        done_f, _ = cf.wait(list(nxt), return_when=cf.FIRST_COMPLETED)
        for fut in done_f:
            i = nxt.pop(fut)
            fut.result()
            rnd[i] += 1
            send(i, rnd[i])


def score(per_seed: list[list[dict[str, Any]]], floor: float) -> tuple[float, int | None]:
    """Smallest mean measure over rounds whose mean accuracy (over seeds) reaches ``floor``; and that round."""
    n = min(len(rs) for rs in per_seed)
    best, at = math.inf, None
    for r in range(n):
        acc = sum(rs[r]["test_accuracy"] for rs in per_seed) / len(per_seed)
        val = sum(rs[r]["value"] for rs in per_seed) / len(per_seed)
        if acc >= floor and val < best:
            best, at = val, r
    return best, at


@dataclass
class SearchResult:
    """Every rung's scores, the finalists with all seeds, and the winner's rates."""

    rungs: list[list[dict[str, Any]]] = field(default_factory=list)
    finalists: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def search_schedule(sweep: SweepConfig, search: SearchConfig, runs_dir: str | Path, *, floor: float, measure: str,
                    executor: str = "local", workers: int | None = None,
                    note: Callable[[str], None] | None = None) -> SearchResult:
    """Successive halving over ``search.grid()`` (first dataset, first seed), then finalists over every seed."""
    from ._tables import MEASURE_KEYS, mean_std

    if measure not in MEASURE_KEYS:
        raise ConfigError(f"unknown measure {measure!r} (expected one of {', '.join(MEASURE_KEYS)})")
    if any(r.config.is_rl for r in sweep.runs()):
        raise ConfigError("schedule search ranks by test accuracy: it takes a classification sweep, not an RL one "
                          "(use 'sparsescope sweep' and 'sparsescope study' for RL sweeps)")
    say = note or (lambda s: None)
    rounds = search.rungs[-1]
    cands = search.grid()
    for c in cands:  # every candidate must be a valid config before anything runs
        from_dict(candidate_doc(sweep, c, rounds, sweep.seeds[0]))
    result = SearchResult()
    base = str(runs_dir)
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    from ._executors import default_workers

    n_chains = 1 if isinstance(executor, str) and executor == "serial" else (workers or default_workers())
    scored: dict[str, dict[int, dict[str, Any]]] = {}  # run id -> round -> its row (a round is scored once)
    with open_executor(executor, workers=workers, log_dir=runs_dir) as ex:

        def evaluate(points: list[tuple[dict[str, float], int]], upto: int) -> list[dict[str, Any]]:
            docs = [candidate_doc(sweep, c, rounds, s) for c, s in points]
            train_to(ex, docs, base, upto, n_chains)
            ids = [from_dict(d).run_id for d in docs]
            futs = {}
            for run_id in ids:
                todo = [r for r in range(upto) if r not in scored.setdefault(run_id, {})]
                if todo:
                    futs[ex.submit(task_score, str(Path(base) / run_id), todo, measure)] = run_id
            for fut, run_id in futs.items():
                scored[run_id].update({x["round"]: x for x in fut.result()})
            return [{"run_id": run_id, "rounds": [scored[run_id][r] for r in range(upto)]} for run_id in ids]

        alive = cands
        for i, upto in enumerate(search.rungs):
            res = evaluate([(c, sweep.seeds[0]) for c in alive], upto)
            rung = []
            for c, r in zip(alive, res):
                s, at = score([r["rounds"]], floor)
                acc = max((x["test_accuracy"] for x in r["rounds"]), default=0.0)
                rung.append({"rates": c, "score": s, "round": at, "rounds_trained": len(r["rounds"]), "run_id": r["run_id"],
                             "best_accuracy": acc})
            # by score; candidates below the floor so far rank by their best accuracy
            rung.sort(key=lambda x: (x["score"], -x["best_accuracy"], _schedule_name(x["rates"])))
            result.rungs.append(rung)
            say(f"rung {i}: {len(alive)} candidates at {upto} rounds; best {_schedule_name(rung[0]['rates'])} "
                f"score {rung[0]['score']:.1f}")
            keep = max(1, math.ceil(len(rung) / search.eta)) if i < len(search.rungs) - 1 else search.finalists
            alive = [x["rates"] for x in rung[:keep]]
        # the finalists with every seed, trained together
        res = evaluate([(c, s) for c in alive for s in sweep.seeds], rounds)
        for j, c in enumerate(alive):
            mine = res[j * len(sweep.seeds):(j + 1) * len(sweep.seeds)]
            s, at = score([r["rounds"] for r in mine], floor)
            per_seed = [score([r["rounds"]], floor) for r in mine]
            m, sd, n = mean_std(v for v, _ in per_seed if math.isfinite(v))
            result.finalists.append({"rates": c, "schedule": _schedule_name(c), "score_mean_over_seeds": s, "round": at,
                                     "per_seed_best": m, "per_seed_sd": sd, "seeds_reaching": n,
                                     "seeds": len(sweep.seeds), "run_ids": [r["run_id"] for r in mine]})
    ok = [f for f in result.finalists if f["seeds_reaching"] == f["seeds"]]
    result.best = min(ok, key=lambda f: f["per_seed_best"]) if ok else None
    return result
