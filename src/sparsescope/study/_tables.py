"""The study's numbers as plain tables: aggregates over seeds, the frontier, the finding.

Pure functions over the rows of :func:`collect` (lists of dicts); no plotting.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

# the readability measures the report plots against accuracy: (row key, label)
MEASURES = (
    ("out_edges", "edges per output subgraph"),
    ("out_vertices", "vertices per output subgraph"),
    ("out_inputs_used", "inputs used per output"),
    ("out_switching", "switching units per output"),
    ("out_crossings", "edge crossings per output figure"),
    ("out_description_bits", "description length per output (bits)"),
    ("edges", "live edges, whole graph"),
    ("crossings", "edge crossings, whole graph"),
    ("description_bits", "description length, whole graph (bits)"),
)
MEASURE_KEYS = tuple(k for k, _ in MEASURES)
FIELDS = ("density", "weights_left", "score", "test_accuracy", "eval_return", "vertices", "edges", "image_edges",
          "inputs_used", "switching", "crossings", "description_bits", "out_vertices", "out_edges", "out_inputs_used", "out_switching",
          "out_crossings", "out_description_bits")


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def aggregate(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("schedule", "dataset", "variant", "round"),
              fields: tuple[str, ...] = FIELDS) -> list[dict[str, Any]]:
    """One row per distinct ``keys`` (first-seen order): ``F_mean``, ``F_std`` for each field, ``n`` seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(zip(keys, key))
        row["n"] = len(rs)
        for f in fields:
            if f in rs[0]:
                m, s, _ = mean_std(r[f] for r in rs)
                row[f"{f}_mean"], row[f"{f}_std"] = m, s
        out.append(row)
    return out


def frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower or equal measure and higher or equal accuracy
    (one strictly).  ``points``: ``(measure, accuracy)``; returned by increasing measure."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    best = -math.inf
    keep = []
    for i in order:
        if points[i][1] > best:
            keep.append(i)
            best = points[i][1]
    return keep


def finding(rows: list[dict[str, Any]], schedules: list[str], floor: float, measure: str) -> list[dict[str, Any]]:
    """Per (dataset, schedule): the smallest ``measure`` among ticket rounds with ``score`` >= ``floor``.

    ``score`` is the test accuracy (classifiers) or evaluation return (RL);
    a round without one (an incomplete evaluation) never reaches the floor.

    Chosen per seed (that seed's sparsest-reading round that still reaches the
    floor), then mean and spread over seeds.  ``reached`` counts the seeds
    with such a round; a schedule counts only if all its seeds reach the floor.
    """
    out = []
    datasets = sorted({r["dataset"] for r in rows})
    for ds in datasets:
        for sched in schedules:
            mine = [r for r in rows if r["dataset"] == ds and r["schedule"] == sched and r["variant"] == "ticket"]
            seeds = sorted({r["seed"] for r in mine})
            chosen = []
            for s in seeds:
                ok = [r for r in mine if r["seed"] == s and r["score"] is not None and r["score"] >= floor]
                if ok:
                    chosen.append(min(ok, key=lambda r: (r[measure], -r["score"], r["round"])))
            m, sd, n = mean_std(r[measure] for r in chosen)
            acc, acc_sd, _ = mean_std(r["score"] for r in chosen)
            dens, _, _ = mean_std(r["density"] for r in chosen)
            out.append({"dataset": ds, "schedule": sched, "measure": measure, "floor": floor, "seeds": len(seeds),
                        "reached": n, f"{measure}_mean": m, f"{measure}_std": sd, "score_mean": acc,
                        "score_std": acc_sd, "density_mean": dens,
                        "rounds": [r["round"] for r in chosen], "seeds_reached": [r["seed"] for r in chosen]})
    for ds in datasets:
        full = [f for f in out if f["dataset"] == ds and f["reached"] == f["seeds"] and f["seeds"] > 0]
        if full:
            best = min(full, key=lambda f: f[f"{measure}_mean"])
            for f in out:
                if f["dataset"] == ds:
                    f["best"] = f is best
    return out


def sentence(f: list[dict[str, Any]], measure_label: str, score_label: str = "test accuracy") -> list[str]:
    """The finding in words, one line per dataset (``score_label``: what ``score`` is)."""
    lines = []
    for ds in sorted({x["dataset"] for x in f}):
        mine = [x for x in f if x["dataset"] == ds]
        best = [x for x in mine if x.get("best")]
        if not best:
            lines.append(f"{ds}: no schedule reaches {score_label} {mine[0]['floor']:.3f} with every seed.")
            continue
        b = best[0]
        k = b["measure"]
        others = "; ".join((f"{x['schedule']}: no seed reaches it" if x["reached"] == 0 else
                            f"{x['schedule']} {x[f'{k}_mean']:.1f} \u00b1 {x[f'{k}_std']:.1f}"
                            + ("" if x["reached"] == x["seeds"] else f" ({x['reached']}/{x['seeds']} seeds reach it)"))
                           for x in mine if x is not b)
        lines.append(
            f"{ds}: at {score_label} >= {b['floor']:.3f}, schedule {b['schedule']} gives the smallest {measure_label}: "
            f"{b[f'{k}_mean']:.1f} \u00b1 {b[f'{k}_std']:.1f} (mean \u00b1 sd over {b['seeds']} seeds; {score_label} "
            f"{b['score_mean']:.4f} \u00b1 {b['score_std']:.4f}, density {100 * b['density_mean']:.2f}%)"
            + (f"; others: {others}" if others else "") + ".")
    return lines
