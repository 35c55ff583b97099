"""Finding runs and reading them back as plain data and flowgraphs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any



from .._errors import RunStoreError
from .._untrusted import term
from ._store import RunStore, check_data


@dataclass(frozen=True)
class RunInfo:
    """One line of ``sparsescope runs``."""

    run_id: str
    name: str
    path: Path
    created: str
    dataset: str
    rounds_done: int
    rounds_planned: int
    status: str = ""  # finished | interrupted | running (RunStore.status)
    error: str | None = None


def resolve_run(run: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> RunStore:
    """A run by path, by id under ``runs_dir``, by config name, or by a unique
    id prefix, in that order.  A name or prefix that matches several runs is
    an error listing them (never a silent pick)."""
    key = str(run)
    if not key.strip():
        raise RunStoreError("no run given")
    p = Path(key)
    if (p / "manifest.json").is_file():
        return RunStore(p)
    base = Path(runs_dir)
    cand = base / key
    if "/" not in key and cand.is_dir():
        return RunStore(cand)
    if p.is_dir():
        return RunStore(p)  # a folder that is not (or no longer) a run: reading it says why
    if base.is_dir() and "/" not in key:
        named = [r for r in list_runs(base) if r.name == key]
        if len(named) == 1:
            return RunStore(named[0].path)
        if named:
            listed = "; ".join(f"{r.run_id} ({r.dataset}, created {r.created}, {r.status})" for r in named)
            raise RunStoreError(f"run name {key!r} matches {len(named)} runs, give one id: {listed}")
        hits = sorted(q for q in base.iterdir() if q.is_dir() and q.name.startswith(key) and not q.name.startswith("."))
        if len(hits) == 1:
            return RunStore(hits[0])
        if len(hits) > 1:
            raise RunStoreError(f"run {key!r} is ambiguous: {', '.join(h.name for h in hits)}")
    raise RunStoreError(f"no run {key!r} (looked for a folder, and under {base})")


def list_runs(runs_dir: str | os.PathLike = "runs") -> list[RunInfo]:
    """Every run under ``runs_dir``, oldest first (by creation time, then id).

    A run whose manifest cannot be read is listed with ``error`` set, not skipped.
    """
    base = Path(runs_dir)
    if base.exists() and not base.is_dir():
        raise RunStoreError(f"runs folder {base} is not a folder")
    if not base.is_dir():
        return []
    out = []
    for p in base.iterdir():
        if not p.is_dir() or p.name.startswith(".") or not (p / "manifest.json").exists():
            continue
        store = RunStore(p)
        try:
            m = store.manifest()
            out.append(RunInfo(m["run_id"], m["config"].get("name", ""), p, m.get("created", ""), m["data"]["name"],
                               len(store.finished_rounds()), int(m["rounds_planned"]), store.status()))
        except RunStoreError as exc:
            out.append(RunInfo(p.name, "", p, "", "", 0, 0, error=str(exc)))
    return sorted(out, key=lambda r: (r.created, r.run_id))


def round_flowgraph(store: RunStore, index: int | None = None, *, box: str | None = None, data=None,
                    control: str | None = None):
    """The flowgraph (with bounds) of round ``index`` (default: the last finished).

    ``box="unit"`` (default for datasets): every input in [0, 1]; ``"data"``
    bounds inputs by the training data's per-pixel min/max (``data`` is
    loaded from the run's dataset when not given).  ``control``: the name of
    a control folder (``KIND-rNNN-sSEED``) to read instead of a round.  An RL run's default box
    is ``"env"`` (see :func:`sparsescope.runs._rl.env_box`); its ``"data"``
    box is the range of states its greedy agent visited.
    """
    from ..bounds import annotate, interval_bounds
    from ..graph import from_arrays, from_steps, spec_steps
    from ..models import SequentialSpec

    m = store.manifest()
    done = store.finished_rounds()
    if not done:
        raise RunStoreError(f"run {store.path.name} has no finished round yet")
    if control is not None:  # a control folder (controls/KIND-rNNN-sSEED) instead of a round
        folder = store.path / "controls" / str(control)
        if folder not in store.control_dirs():  # also checks the name: no path can be smuggled in
            have = ", ".join(p.name for p in store.control_dirs()) or "none"
            raise RunStoreError(f"run {term(store.path.name)} has no control {term(control)!r} (controls: {have})")
        rec = store.read_round_at(folder, f"control {control}")
        index = int(rec.metrics["round"])
    else:
        index = done[-1] if index is None else index
        rec = store.read_round(index)
    spec = store.spec()
    masked = {}
    for n in rec.mask.names():
        masked[f"{n}.weight"] = rec.params[f"{n}.weight"].double().numpy() * rec.mask[n]
        masked[f"{n}.bias"] = rec.params[f"{n}.bias"].double().numpy()
    met = rec.metrics
    meta = {
        "run": m["run_id"],
        "round": index,
        "dataset": m["data"]["name"],
        "density": met.get("density"),
        "weights_left": met.get("kept_total"),
        "test_accuracy": met.get("test_accuracy"),
    }
    labels = m["data"]["classes"]
    inputs = m["data"].get("inputs")
    if isinstance(spec, SequentialSpec):
        g = from_steps(spec_steps(spec, masked), tuple(m["data"]["input_shape"]), output_labels=labels, meta=meta)
    else:
        names = list(rec.mask.names())
        acts = ["identity" if i == len(names) - 1 else spec.activation for i in range(len(names))]
        g = from_arrays([masked[f"{n}.weight"] for n in names], [masked[f"{n}.bias"] for n in names], acts,
                        tuple(m["data"]["input_shape"]), output_labels=labels, meta=meta,
                        input_labels=inputs if isinstance(inputs, list) else None)
    if m["data"].get("kind") == "env":
        from ._rl import env_box

        g = g.with_meta(eval_return=met.get("eval_return"), solved=met.get("solved"))
        lo, hi, name = env_box(m, met, "env" if box is None else box)
        return g.with_bounds(interval_bounds(g, lo, hi, box=name))
    box = "unit" if box is None else box
    if box == "env":
        raise RunStoreError(f"--box env applies to runs on an environment; run {store.path.name} is on a dataset")
    if box == "data":
        data = run_data(store) if data is None else data
        return annotate(g, "data", data=data.x_train)
    return annotate(g, box)


def run_data(store: RunStore):
    """The run's dataset, checked against its recorded fingerprint."""
    from ..data import load

    m = store.manifest()
    data = load(m["config"]["dataset"])
    check_data(m, data, store.path)
    return data


def round_table(metrics: list[dict[str, Any]]) -> str:
    """The round table: round, density, weights left per layer, test accuracy, training seconds and
    the training path (``flat`` / ``direct`` / ``autograd``; ``-``: a round from before paths were recorded)."""
    if not metrics:
        return "(no finished rounds)"
    if "eval_return" in metrics[0]:
        from ._rl import rl_round_table

        return rl_round_table(metrics)
    layers = list(metrics[0]["weights_left"])
    head = ["round", "density"] + [f"{n} left" for n in layers] + ["total", "test acc", "train s", "path"]
    rows = []
    for mt in metrics:
        rows.append(
            [str(mt["round"]), f"{100 * mt['density']:.2f}%"]
            + [f"{mt['weights_left'][n]}/{mt['weights_total'][n]}" for n in layers]
            + [str(mt["kept_total"]), f"{100 * mt['test_accuracy']:.1f}%", f"{mt.get('train_seconds', 0.0):.2f}",
               mt.get("train_path", "-")]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(r) for r in rows])


__all__ = ["RunInfo", "list_runs", "resolve_run", "round_flowgraph", "round_table", "run_data"]
