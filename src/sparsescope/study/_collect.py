"""Gather a sweep's numbers: one row per (run, round, variant), one per (run, round, variant, class).

``variant`` is ``ticket`` (the round itself), ``reinit`` or ``random-mask``
(its controls).  ``score`` is what the study ranks by: the test accuracy of
a classifier, or the evaluation return (mean over the evaluation episodes)
of an RL agent; ``test_accuracy`` and ``eval_return`` keep each under its
own name (``None`` where it does not apply).  Each row holds the round's metrics and the readability
measures of its flowgraph (:func:`sparsescope.analysis.readability`), whole
graph and mean over outputs (``out_*``).  Readability costs a flowgraph and a
layout per row, so :func:`collect` computes it per run on an executor and
caches it per run (runs are immutable once written: the cache key is the
list of round and control folders and the measures' version).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import write_text
from ._executors import open_executor
from ._sweep import SweepConfig, SweepRun

MEASURES_VERSION = 2  # 2: rows carry ``score`` and ``eval_return``
WHOLE = ("vertices", "edges", "image_edges", "inputs_used", "switching", "crossings", "description_bits")
PER_OUTPUT = ("vertices", "edges", "inputs_used", "switching", "crossings", "description_bits")
VARIANTS = ("ticket", "reinit", "random-mask")


@dataclass
class StudyData:
    """Rows of a sweep: ``rows`` (run x round x variant), ``classes`` (x output), the runs found and missing."""

    rows: list[dict[str, Any]]
    classes: list[dict[str, Any]]
    runs: list[SweepRun]
    missing: list[str]


def _graph_rows(store, folder_name: str | None, index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from ..analysis import readability
    from ..runs import round_flowgraph

    g = round_flowgraph(store, index, control=folder_name)
    rd = readability(g)
    d = rd.to_dict()
    row = {k: d[k] for k in WHOLE}
    for m in PER_OUTPUT:
        row[f"out_{m}"] = round(rd.mean_output(m), 4)
    classes = [{"output": o["output"], "label": o["label"], **{m: o[m] for m in PER_OUTPUT}} for o in d["per_output"]]
    return row, classes


def task_readability(run_path: str) -> dict[str, Any]:
    """Rows of one finished run: every round and every control (module-level for executors)."""
    from ..runs import RunStore

    store = RunStore(run_path)
    rows, classes = [], []
    items = [("ticket", None, r) for r in store.finished_rounds()]
    for c in store.control_dirs():
        mt = store.read_round_at(c, f"control {c.name}").metrics
        items.append((mt["control"], c.name, int(mt["round"])))
    for variant, folder, r in items:
        rec_metrics = (store.read_round(r).metrics if folder is None
                       else store.read_round_at(store.path / "controls" / folder, folder).metrics)
        row, cls = _graph_rows(store, folder, r)
        base = {"round": r, "variant": variant, "control_seed": rec_metrics.get("seed"),
                "density": rec_metrics["density"], "weights_left": rec_metrics["kept_total"],
                "test_accuracy": rec_metrics.get("test_accuracy"), "eval_return": rec_metrics.get("eval_return")}
        base["score"] = base["test_accuracy"] if base["test_accuracy"] is not None else base["eval_return"]
        rows.append({**base, **row})
        classes += [{"round": r, "variant": variant, **c} for c in cls]
    return {"rows": rows, "classes": classes}


def _cache_key(store) -> list[str]:
    return [f"v{MEASURES_VERSION}"] + [f"r{r}" for r in store.finished_rounds()] + [c.name for c in store.control_dirs()]


def collect(sweep: SweepConfig, runs_dir: str | Path, cache_dir: str | Path, *, executor: str = "local",
            workers: int | None = None) -> StudyData:
    """Rows for every finished run of ``sweep`` (unfinished or absent runs are listed in ``missing``)."""
    from ..runs import RunStore

    base, cache = Path(runs_dir), Path(cache_dir)
    found, missing, todo, results = [], [], {}, {}
    for run in sweep.runs():
        store = RunStore(base / run.run_id)
        if not store.exists or len(store.finished_rounds()) != int(store.manifest()["rounds_planned"]):
            missing.append(run.run_id)
            continue
        found.append(run)
        key = _cache_key(store)
        cfile = cache / f"{run.run_id}.json"
        if cfile.is_file():
            try:
                cached = json.loads(cfile.read_text())
                if cached.get("key") == key:
                    results[run.run_id] = cached
                    continue
            except ValueError:
                pass
        todo[run.run_id] = (str(store.path), key, cfile)
    if todo:
        with open_executor(executor if len(todo) > 1 else "serial", workers=workers) as ex:
            futs = {ex.submit(task_readability, path): rid for rid, (path, _, _) in todo.items()}
            for fut in cf.as_completed(futs):
                rid = futs[fut]
                res = {"key": todo[rid][1], **fut.result()}
                write_text(todo[rid][2], json.dumps(res, sort_keys=True))
                results[rid] = res
    rows, classes = [], []
    for run in found:
        ident = {"schedule": run.schedule, "dataset": run.dataset, "seed": run.seed, "run_id": run.run_id}
        res = results[run.run_id]
        rows += [{**ident, **r} for r in res["rows"]]
        classes += [{**ident, **c} for c in res["classes"]]
    order = {v: i for i, v in enumerate(VARIANTS)}
    key = lambda r: (list(sweep.schedules).index(r["schedule"]), r["dataset"], r["seed"], r["round"],  # noqa: E731
                     order.get(r["variant"], 9), str(r.get("output", "")))
    return StudyData(sorted(rows, key=key), sorted(classes, key=key), found, missing)
