"""One analysis of a flowgraph over a box: structure, interval box states, and with
``exact=True`` exact ranges, the simplified graph and its certificate; for a ball,
the robustness verdict.  :func:`analysis_dict` is the JSON (``sparsescope.analysis``
version 2, docs/analysis-schema.md), :func:`analysis_text` the text the CLI prints.

The JSON is deterministic: the same run gives byte-identical documents.  Wall
times are therefore not in it; :func:`analysis_timing` gives them (the CLI
prints them in the text output, and on standard error beside JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import BoxStates, Structure, analyse, box_states
from ..bounds import interval_bounds
from ..graph import Flowgraph, plain_json, to_dict
from ._box import Box
from ._dag import dag_to_dict
from ._ranges import ExactRanges, exact_ranges
from ._robust import AdversarialAccuracy, Robustness, adversarial_accuracy, certify
from ._simplify import Simplified, simplify

FORMAT = "sparsescope.analysis"
VERSION = 2  # 2: no wall times; "simplified" gains "reduced" sizes, "composed", "box" and "dag"


@dataclass(frozen=True, eq=False)
class BoxAnalysis:
    """Everything ``sparsescope analyse`` reports; ``ranges``/``simplified`` only with ``exact``,
    ``robustness`` only for a ball with a label."""

    graph: Flowgraph
    box: Box
    structure: Structure
    states: BoxStates
    ranges: ExactRanges | None = None
    simplified: Simplified | None = None
    robustness: Robustness | None = None


def analyse_box(graph: Flowgraph, box: Box, *, exact: bool = False, time_limit: float = 10.0) -> BoxAnalysis:
    """Analyse ``graph`` over ``box``.  ``time_limit``: seconds per program of the exact analysis."""
    g = graph.with_bounds(interval_bounds(graph, box.lo, box.hi, box=box.name))
    ranges = simplified = robust = None
    if exact:
        ranges = exact_ranges(graph, box.lo, box.hi, box=box.name, time_limit=time_limit)
        g = graph.with_bounds(exact_bounds(ranges))
        simplified = simplify(graph, ranges)
    if box.name == "ball" and box.label is not None:
        robust = certify(graph, box.centre, box.label, box.eps, time_limit=time_limit, image=box.image)
    return BoxAnalysis(g, box, analyse(graph), box_states(g), ranges, simplified, robust)


def exact_bounds(ranges: ExactRanges):
    """The float32-sound bounds of ``ranges`` carrying the exact ends (schema version 2)."""
    from dataclasses import replace

    exact = {n: {"lo": ranges.lo[n], "hi": ranges.hi[n], "lo_status": ranges.lo_status[n],
                 "hi_status": ranges.hi_status[n]} for n in ranges.layers}
    return replace(ranges.bounds, exact=exact)


def _width_ratio(ranges: ExactRanges, name: str) -> dict[str, float | int | None]:
    iw = ranges.interval.pre_hi[name] - ranges.interval.pre_lo[name]
    ew = ranges.hi[name] - ranges.lo[name]
    ok = np.isfinite(ew) & (ew > 1e-12)
    ratio = iw[ok] / ew[ok]
    return {"units": int(ew.size), "compared": int(ok.sum()),
            "interval_over_exact_mean": float(ratio.mean()) if ratio.size else None,
            "interval_over_exact_max": float(ratio.max()) if ratio.size else None}


def _witness(ranges: ExactRanges, graph: Flowgraph, k: int) -> dict[str, float]:
    """Witness ``k`` as the inputs that differ from the box's low end (the others sit at it)."""
    x = ranges.witnesses[k]
    diff = np.flatnonzero(x != ranges.box_lo)
    return {graph.input.node_id(int(i)): float(x[i]) for i in diff}


def analysis_dict(a: BoxAnalysis) -> dict[str, Any]:
    """The JSON document of an analysis (plain data, deterministic order)."""
    g, s = a.graph, a.structure
    box: dict[str, Any] = {"name": a.box.name, "spec": a.box.spec}
    if a.box.name == "ball":
        box.update(image=a.box.image, eps=a.box.eps, label=a.box.label)
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "meta": plain_json(g.meta), "box": box,
        "structure": {
            "vertices": s.vertices, "edges": s.edges, "total_nodes": s.total_nodes, "total_edges": s.total_edges,
            "ignored_inputs": len(s.ignored_inputs), "dead_units": list(s.dead_units),
            "constant_outputs": [{"node": n, "value": v} for n, v in s.constant_outputs],
        },
        "interval_states": {"off": list(a.states.off), "on": list(a.states.on)},
    }
    r = a.ranges
    if r is not None:
        exact, total = r.count("exact")
        units = []
        for name in r.layers:
            layer = a.graph.layer(name)
            for j in range(layer.size):
                units.append({
                    "node": layer.node_id(j), "how": str(r.how[name][j]),
                    "interval": [float(r.interval.pre_lo[name][j]), float(r.interval.pre_hi[name][j])],
                    "exact": [_num(r.lo[name][j]), _num(r.hi[name][j])],
                    "status": [str(r.lo_status[name][j]), str(r.hi_status[name][j])],
                    "bound": [float(r.lo_bound[name][j]), float(r.hi_bound[name][j])],
                    "float32": [float(r.bounds.pre_lo[name][j]), float(r.bounds.pre_hi[name][j])],
                    "witness": [int(r.lo_witness[name][j]), int(r.hi_witness[name][j])],
                })
        doc["exact"] = {
            "ends_exact": exact, "ends": total, "solves": r.solves, "max_binaries": r.max_binaries,
            "time_limit": r.time_limit,
            "widths": {name: _width_ratio(r, name) for name in r.layers},
            "units": units,
            "witnesses": [_witness(r, a.graph, k) for k in range(len(r.witnesses))],
        }
    sim = a.simplified
    if sim is not None:
        doc["simplified"] = {
            "sizes": sim.sizes,
            "ignored_inputs": list(sim.ignored_inputs),
            "constant_outputs": [{"node": n, "value": v} for n, v in sim.constant_outputs],
            "composed": list(sim.composed),
            "box": {"lo": [float(v) for v in sim.box_lo], "hi": [float(v) for v in sim.box_hi]},
            "certificate": list(sim.facts),
            "graph": to_dict(sim.graph),
            "dag": dag_to_dict(sim.dag),
        }
    if a.robustness is not None:
        doc["robustness"] = a.robustness.to_dict(a.graph)
    return plain_json(doc)


def analysis_timing(a: BoxAnalysis) -> str:
    """Wall time and programs of the exact analysis, one line ("" without one): kept out of the
    JSON, which must be byte-identical run to run."""
    r = a.ranges
    if r is None:
        return ""
    return f"exact ranges: {r.solves} programs in {r.seconds:.2f} s wall"


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def analysis_text(a: BoxAnalysis) -> str:
    """A short human summary (the JSON has everything)."""
    g, s = a.graph, a.structure
    m = g.meta
    head = f"run {m.get('run', '?')} round {m.get('round', '?')}  box {a.box.spec}"
    lines = [head,
             f"structure: {s.vertices} live vertices, {s.edges} live edges (of {s.total_nodes} nodes, {s.total_edges} edges); "
             f"{len(s.ignored_inputs)} inputs ignored, {len(s.dead_units)} dead units, {len(s.constant_outputs)} constant outputs",
             f"interval bounds prove {len(a.states.off)} units always off and {len(a.states.on)} always on over the box"]
    r = a.ranges
    if r is not None:
        exact, total = r.count("exact")
        lines.append(f"exact ranges: {exact}/{total} ends exact with witnesses ({r.solves} programs, "
                     f"up to {r.max_binaries} binaries, {r.seconds:.2f} s, cap {r.time_limit:g} s per program)")
        lines.append("  width of the interval bounds over the exact range (non-constant units):")
        lines.append("  layer  units    mean     max")
        for name in r.layers:
            w = _width_ratio(r, name)
            mean = "-" if w["interval_over_exact_mean"] is None else f"{w['interval_over_exact_mean']:.3f}"
            mx = "-" if w["interval_over_exact_max"] is None else f"{w['interval_over_exact_max']:.3f}"
            lines.append(f"  {name:<6} {w['compared']:>5}  {mean:>6}  {mx:>6}")
        out = g.output
        for j in range(out.size):
            lines.append(f"  {out.node_id(j)}: interval [{r.interval.pre_lo[out.name][j]:.4g}, {r.interval.pre_hi[out.name][j]:.4g}]"
                         f"  exact [{r.lo[out.name][j]:.4g}, {r.hi[out.name][j]:.4g}] ({r.lo_status[out.name][j]}/{r.hi_status[out.name][j]})")
    sim = a.simplified
    if sim is not None:
        o, m, n = sim.sizes["original"], sim.sizes["reduced"], sim.sizes["simplified"]
        lines.append(f"simplified: {o['vertices']} -> {n['vertices']} live vertices, {o['edges']} -> {n['edges']} live edges "
                     f"({o['total_edges']} edges in all); {len(sim.facts)} certified facts")
        lines.append("                 vertices   edges")
        lines.append(f"  original       {o['vertices']:>8}  {o['edges']:>6}")
        lines.append(f"  reduced        {m['vertices']:>8}  {m['edges']:>6}   (units off, constant or unused removed)")
        lines.append(f"  simplified     {n['vertices']:>8}  {n['edges']:>6}   ({len(sim.composed)} linear units composed)")
        kinds: dict[str, int] = {}
        for f in sim.facts:
            kinds[f["fact"]] = kinds.get(f["fact"], 0) + 1
        lines.append("  facts: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        if sim.composed:
            per: dict[str, int] = {}
            for nid in sim.composed:
                layer = nid.split("[")[0].split(".")[0]
                per[layer] = per.get(layer, 0) + 1
            shown = ", ".join(sim.composed[:8]) + (", ..." if len(sim.composed) > 8 else "")
            lines.append(f"  composed units: {', '.join(f'{k} {v}' for k, v in per.items())} ({shown})")
        lines.append(f"  inputs ignored: {len(sim.ignored_inputs)}; constant outputs: "
                     + (", ".join(f"{n}={v:.4g}" for n, v in sim.constant_outputs) or "none"))
    if a.robustness is not None:
        lines.append(a.robustness.summary())
    return "\n".join(lines)


def analyse_run(run: str, runs_dir: str = "runs", *, round_index: int | None = None, box: str | None = None,
                exact: bool = False, time_limit: float = 10.0) -> BoxAnalysis:
    """:func:`analyse_box` for a round of a stored run; ``box`` is ``unit``, ``data``, ``env`` or
    ``ball:IMAGE:EPS``.  ``None`` is the run's default box, the same one graph/report/view use:
    ``unit`` for a dataset, ``env`` for an RL run (whose inputs are not in [0, 1]; it refuses
    ``unit``).  Every box but a ball is the one :func:`~sparsescope.runs.round_flowgraph` bounds over."""
    from ..runs import resolve_run, round_flowgraph, run_data
    from ._box import make_box, parse_box

    plain = box is None or box in ("unit", "data", "env")
    if not plain:
        parse_box(box)  # a bad spec fails before anything is loaded
    store = resolve_run(run, runs_dir)
    if plain:  # the box graph/report/view use, chosen in one place (round_flowgraph)
        g = round_flowgraph(store, round_index, box=box)
        name0 = g.input.name
        return analyse_box(g.with_bounds(None), Box(g.bounds.box, g.bounds.lo[name0], g.bounds.hi[name0]),
                           exact=exact, time_limit=time_limit)
    graph = round_flowgraph(store, round_index).with_bounds(None)
    data = run_data(store)
    b = make_box(graph, box, x_train=data.x_train, x_test=data.x_test, y_test=data.y_test)
    return analyse_box(graph, b, exact=exact, time_limit=time_limit)


DEFAULT_ROBUST_SAMPLES = 100  # test images 0..99 when no list is given


def robust_run(run: str, runs_dir: str = "runs", *, eps: float, round_index: int | None = None,
               samples: "np.ndarray | list[int] | None" = None, time_limit: float = 10.0,
               workers: int = 2, data=None) -> tuple[Flowgraph, AdversarialAccuracy]:
    """Exact adversarial accuracy of a stored round at radius ``eps`` over test images
    ``samples`` (test-set indices; default the first :data:`DEFAULT_ROBUST_SAMPLES`).

    Returns the round's flowgraph and the per-image verdicts
    (:func:`adversarial_accuracy`); :func:`robust_dict`/:meth:`AdversarialAccuracy.summary`
    render them.  ``data``: the run's dataset when the caller has loaded it already.
    """
    from .._errors import SparsescopeError
    from ..runs import resolve_run, round_flowgraph, run_data

    if not (np.isfinite(eps) and 0 <= eps <= 1):
        raise SparsescopeError(f"--robust {eps}: the radius must be a number in [0, 1] (pixels are in [0, 1])")
    store = resolve_run(run, runs_dir)
    graph = round_flowgraph(store, round_index).with_bounds(None)
    data = run_data(store) if data is None else data
    if data.x_test is None or data.y_test is None or not len(data.x_test):
        raise SparsescopeError(f"run {run} has no labelled test set to check robustness on")
    n = len(data.x_test)
    idx = np.arange(min(DEFAULT_ROBUST_SAMPLES, n)) if samples is None else np.asarray(samples, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise SparsescopeError(f"--samples: test image {int(idx.max())} is out of range: the test set has {n} images")
    acc = adversarial_accuracy(graph, data.x_test[idx].astype(np.float64), data.y_test[idx], eps,
                               time_limit=time_limit, images=idx.tolist(), workers=workers)
    return graph, acc


def robust_dict(graph: Flowgraph, acc: AdversarialAccuracy) -> dict[str, Any]:
    """The JSON document of :func:`robust_run` (``sparsescope.analysis`` with an ``adversarial`` key)."""
    images = [r.image for r in acc.results]
    doc = {"format": FORMAT, "version": VERSION, "meta": plain_json(graph.meta),
           "box": {"name": "balls", "spec": f"ball:*:{acc.eps:g}", "eps": acc.eps, "images": images},
           "adversarial": acc.to_dict(graph)}
    return plain_json(doc)


def robust_text(graph: Flowgraph, acc: AdversarialAccuracy) -> str:
    """The summary line, then the images that are not robust or undecided, by verdict."""
    m = graph.meta
    lines = [f"run {m.get('run', '?')} round {m.get('round', '?')}", acc.summary()]
    for verdict in ("not robust", "unknown", "misclassified"):
        hit = [str(r.image) for r in acc.results if r.verdict == verdict]
        if hit:
            shown = ", ".join(hit[:40]) + (f", ... ({len(hit)} in all)" if len(hit) > 40 else "")
            lines.append(f"  {verdict}: {shown}")
    return "\n".join(lines)
