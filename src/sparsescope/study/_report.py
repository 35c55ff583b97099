"""The study report: one HTML page over a sweep, with every number also as CSV and JSON.

``write_study(sweep, runs_dir, out)`` writes ``out/index.html`` (figures
inline as SVG), ``rows.csv`` (run x round x variant), ``classes.csv``
(x class), ``aggregate.csv`` (mean and sd over seeds), ``runs.csv``,
``finding.json`` and ``study.json`` (all of it).  Same runs in, same bytes
out.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from .._atomic import write_text
from .._errors import SparsescopeError
from ._collect import StudyData, collect
from ._figures import accuracy_density_figure, measure_figure, per_class_figure, svg_text
from ._sweep import SweepConfig
from ._tables import MEASURE_KEYS, MEASURES, aggregate, finding, sentence

DEFAULT_FLOOR = 0.9
DEFAULT_MEASURE = "out_edges"


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV, columns in first-seen order, floats to 6 decimals, lists joined by spaces."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        cells = []
        for c in cols:
            v = _plain(r.get(c))
            cells.append(" ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v))
        w.writerow(cells)
    return buf.getvalue()


def _svg_inline(fig) -> str:
    text = svg_text(fig)
    return text[text.index("<svg"):]


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]], fmt: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if isinstance(v, float):
                v = "" if math.isnan(v) else format(v, fmt.get(key, ".4g"))
            elif isinstance(v, list):
                v = " ".join(map(str, v))
            cells.append(f"<td>{html.escape(str(v if v is not None else ''))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1250px;color:#222;padding:0 1em}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f3f3f3}figure{margin:1em 0}svg{max-width:100%;height:auto}.finding{background:#f4f8ff;padding:.6em 1em;border-left:4px solid #36c}
code{background:#f3f3f3;padding:0 3px}"""


def score_kind(sweep: SweepConfig) -> tuple[str, str]:
    """What the study ranks rounds by: ``("accuracy", "test accuracy")`` for classifiers,
    ``("return", "evaluation return")`` for an RL sweep (the greedy agent's mean return)."""
    return ("return", "evaluation return") if sweep.runs() and all(r.config.is_rl for r in sweep.runs()) \
        else ("accuracy", "test accuracy")


def default_floor(sweep: SweepConfig) -> float:
    """The floor when neither the command nor ``[study]`` gives one: 0.9 test accuracy, or for
    RL the environment's own ``reward_threshold`` (CartPole-v1: 475), which must then exist."""
    if score_kind(sweep)[0] == "accuracy":
        return float(sweep.study.get("accuracy_floor", DEFAULT_FLOOR))
    if "return_floor" in sweep.study:
        return float(sweep.study["return_floor"])
    import gymnasium

    name = sweep.datasets[0]
    threshold = gymnasium.spec(name).reward_threshold
    if threshold is None:
        raise SparsescopeError(f"{name} has no reward_threshold: give the return floor with --floor or "
                               "[study] return_floor")
    return float(threshold)


def study_tables(data: StudyData, sweep: SweepConfig, floor: float, measure: str) -> dict[str, Any]:
    """Every table of the report as plain data (what study.json holds)."""
    schedules = list(sweep.schedules)
    kind, score_label = score_kind(sweep)
    agg = aggregate(data.rows)
    find = finding(data.rows, schedules, floor, measure)
    runs = []
    for run in data.runs:
        mine = [r for r in data.rows if r["run_id"] == run.run_id]
        ticket = [r for r in mine if r["variant"] == "ticket"]
        last = max(ticket, key=lambda r: r["round"]) if ticket else {}
        runs.append({"run_id": run.run_id, "schedule": run.schedule, "dataset": run.dataset, "seed": run.seed,
                     "rounds": len(ticket), "controls": len(mine) - len(ticket),
                     "final_density": last.get("density"), "final_score": last.get("score"),
                     "final_out_edges": last.get("out_edges")})
    return {"sweep": sweep.name, "floor": floor, "score": kind, "score_label": score_label, "measure": measure,
            "schedules": schedules, "missing_runs": data.missing, "runs": runs, "finding": find,
            "finding_text": sentence(find, dict(MEASURES)[measure], score_label), "aggregate": agg}


def write_study(sweep: SweepConfig, runs_dir: str | Path, out: str | Path, *, floor: float | None = None,
                measure: str | None = None, executor: str = "local", workers: int | None = None) -> Path:
    """Write the study report of ``sweep`` into folder ``out``; returns ``out/index.html``."""
    kind, score_label = score_kind(sweep)
    floor = default_floor(sweep) if floor is None else float(floor)
    measure = sweep.study.get("measure", DEFAULT_MEASURE) if measure is None else measure
    if measure not in MEASURE_KEYS:
        raise SparsescopeError(f"unknown measure {measure!r} (expected one of {', '.join(MEASURE_KEYS)})")
    if kind == "accuracy" and not 0.0 <= floor <= 1.0:
        raise SparsescopeError(f"accuracy floor must be in [0, 1], got {floor}")
    if not math.isfinite(floor):
        raise SparsescopeError(f"the floor must be a finite number, got {floor}")
    out = Path(out)
    data = collect(sweep, runs_dir, out / "cache", executor=executor, workers=workers)
    if not data.runs:
        raise SparsescopeError(f"no finished run of sweep {sweep.name} under {runs_dir}: "
                               f"run 'sparsescope sweep' first ({len(data.missing)} runs missing)")
    tables = study_tables(data, sweep, floor, measure)
    schedules = tables["schedules"]
    chosen = {(f["dataset"], f["schedule"], s): r for f in tables["finding"]
              for s, r in zip(f["seeds_reached"], f["rounds"])}
    figs = {
        "accuracy-density": accuracy_density_figure(data.rows, schedules, score_label),
        "accuracy-readability": measure_figure(data.rows, schedules, floor, score_label),
        "per-class": per_class_figure(data.classes, chosen, schedules),
    }
    svgs = {name: svg_text(fig) for name, fig in figs.items()}
    for name, text in svgs.items():
        write_text(out / "figures" / f"{name}.svg", text)
    write_text(out / "rows.csv", to_csv(data.rows))
    write_text(out / "classes.csv", to_csv(data.classes))
    write_text(out / "aggregate.csv", to_csv(tables["aggregate"]))
    write_text(out / "runs.csv", to_csv(tables["runs"]))
    write_text(out / "finding.json", json.dumps(_plain({k: tables[k] for k in ("floor", "score", "measure", "finding", "finding_text")}),
                                                indent=1, sort_keys=True) + "\n")
    write_text(out / "study.json", json.dumps(_plain({**tables, "rows": data.rows, "classes": data.classes}),
                                              sort_keys=True) + "\n")
    mlabel = dict(MEASURES)[measure]
    find_cols = [("dataset", "dataset"), ("schedule", "schedule"), ("reached", "seeds at floor"),
                 (f"{measure}_mean", f"{mlabel} (mean)"), (f"{measure}_std", "sd"),
                 ("score_mean", score_label), ("score_std", "sd"), ("density_mean", "density"),
                 ("rounds", "chosen round per seed")]
    run_cols = [("run_id", "run"), ("schedule", "schedule"), ("dataset", "dataset"), ("seed", "seed"),
                ("rounds", "rounds"), ("controls", "controls"), ("final_density", "final density"),
                ("final_score", f"final {score_label}"), ("final_out_edges", "final edges per output")]
    missing = (f"<p>{len(data.missing)} runs of the sweep are not finished and are left out: "
               f"{html.escape(', '.join(data.missing))}</p>") if data.missing else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{html.escape(sweep.name)}: sparsescope study</title><style>{_CSS}</style></head><body>",
        f"<h1>Study {html.escape(sweep.name)}</h1>",
        f"<p>{len(data.runs)} runs ({len(schedules)} schedules x {len(sweep.datasets)} datasets x {len(sweep.seeds)} seeds), "
        f"controls: {html.escape(', '.join(sweep.controls) or 'none')}. Readability measures are defined in "
        "<code>docs/readability.md</code>; every number here is also in the CSV and JSON files beside this page.</p>",
        missing,
        "<h2>Finding</h2>",
        "".join(f"<p class='finding'>{html.escape(t)}</p>" for t in tables["finding_text"]),
        _table(tables["finding"], find_cols, {"density_mean": ".4f"}),
        f"<h2>{score_label.capitalize()} against density: ticket and controls</h2>",
        f"<figure>{_svg_inline(figs['accuracy-density'])}</figure>",
        f"<h2>{score_label.capitalize()} against readability (ticket rounds), frontier across schedules</h2>",
        f"<p>Dashed line: the floor, {html.escape(score_label)} {floor:.3f}. Circled points joined by the black step "
        f"line are the frontier: no other (schedule, round) has both a smaller measure and a higher mean "
        f"{html.escape(score_label)}.</p>",
        f"<figure>{_svg_inline(figs['accuracy-readability'])}</figure>",
        "<h2>Per-class readability at the chosen rounds</h2>",
        f"<figure>{_svg_inline(figs['per-class'])}</figure>",
        "<h2>Every run</h2>",
        _table(tables["runs"], run_cols, {"final_density": ".4f"}),
        "</body></html>\n",
    ]
    index = out / "index.html"
    write_text(index, "\n".join(p for p in parts if p))
    return index
