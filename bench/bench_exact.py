"""Benchmark: exact analysis (sparsescope.exact) of trained runs.

Targets (this 2-core machine): exact ranges of all units of the ~2% MLP <= 1 s
with witnesses; the ~7% MLP <= 10 s; the layer-1-dense final round <= 15 s
(and how many ends are exact); exact adversarial accuracy at eps = 0.1 over
1,000 test images of the 2% net <= 10 min.

Run: ``python bench/bench_exact.py [--runs-dir DIR] [--images N] [--eps E]``.
Trains the shipped configs (``configs/mnist-mlp.toml``,
``configs/mnist-mlp-dense-l1.toml``) into ``--runs-dir`` first if they are
missing (a finished run is reused).  There is no compute floor for an
NP-hard problem; beside each figure it prints the interval bounds' time (the
cheap sound answer) and the number and size of the programs solved.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

from sparsescope import load_config
from sparsescope.bounds import interval_bounds
from sparsescope.analysis import analyse, box_states
from sparsescope.exact import (Box, BoxAnalysis, adversarial_accuracy, analysis_dict, check_certificate, exact_bounds,
                               exact_ranges, simplify)
from sparsescope.runs import resolve_run, round_flowgraph, run_data, run_experiment


def ensure_run(config: str, runs_dir: str):
    cfg = load_config(config)
    return resolve_run(run_experiment(cfg, runs_dir).run_id, runs_dir)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished helper processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def median(fn, runs: int) -> tuple[float, float, object]:
    """Median wall seconds, median CPU seconds (all processes) and the last result."""
    times, cpus, out = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), cpu_seconds()
        out = fn()
        times.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    return statistics.median(times), statistics.median(cpus), out


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def one(label: str, graph, target: float, runs: int, workers: int) -> None:
    lo, hi = np.zeros(graph.input.size), np.ones(graph.input.size)
    t_iv, _, _ = median(lambda: interval_bounds(graph, lo, hi), 5)
    before = load()
    t, cpu, r = median(lambda: exact_ranges(graph, lo, hi, box="unit", workers=workers), runs)
    exact, total = r.count("exact")
    t_s, _, s = median(lambda: simplify(graph, r), 3)
    gb = graph.with_bounds(exact_bounds(r))
    doc = analysis_dict(BoxAnalysis(gb, Box("unit", lo, hi), analyse(graph), box_states(gb), r, s))
    t_c, _, _ = median(lambda: check_certificate(graph, doc), 3)
    o, m, n = s.sizes["original"], s.sizes["reduced"], s.sizes["simplified"]
    print(f"{label}: density {graph.meta.get('density', 0) * 100:.2f}%, {graph.num_edges} edges, "
          f"test acc {graph.meta.get('test_accuracy', 0) * 100:.1f}%")
    print(f"  exact ranges, unit box: {t:.3f} s wall, {cpu:.3f} CPU-s over {workers} process(es) "
          f"(median of {runs}; {'no target' if target == float('inf') else f'target <= {target:g} s'})  [interval bounds {t_iv * 1000:.1f} ms]  "
          f"{exact}/{total} ends exact, {len(r.witnesses)} witnesses, "
          f"{r.solves} programs, up to {r.max_binaries} binaries")
    print(f"  before: {before}; after: {load()}")
    for name in r.layers:
        iw = r.interval.pre_hi[name] - r.interval.pre_lo[name]
        ew = r.hi[name] - r.lo[name]
        ok = np.isfinite(ew) & (ew > 1e-12)
        ratio = iw[ok] / ew[ok]
        how = {h: int(np.sum(r.how[name] == h)) for h in ("constant", "greedy", "milp", "interval")}
        print(f"    {name:<4} interval/exact width mean {ratio.mean():.3f} max {ratio.max():.3f} "
              f"over {ok.sum()} non-constant units; by {how}")
    kinds: dict[str, int] = {}
    for f in s.facts:
        kinds[f["fact"]] = kinds.get(f["fact"], 0) + 1
    print(f"  simplified: live vertices {o['vertices']} -> {m['vertices']} (reduced) -> {n['vertices']} (composed), "
          f"live edges {o['edges']} -> {m['edges']} -> {n['edges']}, all edges {o['total_edges']}; facts {kinds}; "
          f"{len(s.composed)} units composed")
    print(f"  simplify (reduce + compose): {t_s:.3f} s wall; check_certificate (replay): {t_c:.3f} s wall")
    from sparsescope.render._dagfig import dag_figure

    t_f, c_f, scene = median(lambda: dag_figure(s.dag, title=label, sizes=s.sizes, box="unit"), 3)
    t_v, c_v, svg = median(scene.to_svg, 3)
    t_p, c_p, png = median(scene.to_png, 3)
    print(f"  simplified-DAG figure ({s.dag.num_nodes} nodes, {s.dag.num_edges} edges): layout {t_f:.3f} s, "
          f"SVG {t_v:.3f} s ({len(svg) / 1e3:.0f} kB), PNG {t_p:.3f} s ({len(png) / 1e3:.0f} kB) wall; "
          f"{c_f + c_v + c_p:.3f} CPU-s in all (target: layout + SVG <= 1 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--skip-adversarial", action="store_true")
    ap.add_argument("--workers", type=int, default=2, help="processes solving one layer's programs (default 2)")
    ap.add_argument("--cnn", action="store_true",
                    help="also the final round of configs/mnist-cnn.toml (trained first if missing: ~15 min)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import highspy  # noqa: F401  (import once, outside the timings)

    sparse = ensure_run("configs/mnist-mlp.toml", args.runs_dir)
    dense1 = ensure_run("configs/mnist-mlp-dense-l1.toml", args.runs_dir)
    data_name = sparse.manifest()["data"]["name"]
    print(f"data: {data_name}; machine shared with other jobs (2 cores)")
    metrics = sparse.round_metrics()
    last = metrics[-1]["round"]
    seven = min(metrics, key=lambda m: abs(m["density"] - 0.07))["round"]
    g2 = round_flowgraph(sparse, last).with_bounds(None)
    w = args.workers
    one(f"{sparse.path.name} round {last} (~2%)", g2, 1.0, 5, w)
    one(f"{sparse.path.name} round {seven} (~7%)", round_flowgraph(sparse, seven).with_bounds(None), 10.0, 3, w)
    one(f"{dense1.path.name} round {dense1.round_metrics()[-1]['round']} (layer 1 dense)",
        round_flowgraph(dense1).with_bounds(None), 15.0, 3, w)
    if args.cnn:
        cnn = ensure_run("configs/mnist-cnn.toml", args.runs_dir)
        one(f"{cnn.path.name} round {cnn.round_metrics()[-1]['round']} (CNN, unrolled)",
            round_flowgraph(cnn).with_bounds(None), float("inf"), 1, w)
    if not args.skip_adversarial:
        data = run_data(sparse)
        x, y = data.x_test[: args.images].astype(np.float64), data.y_test[: args.images]
        before, c = load(), cpu_seconds()
        acc = adversarial_accuracy(g2, x, y, args.eps, workers=w)
        print(f"exact adversarial accuracy at eps {args.eps:g} over the first {len(x)} test images of the ~2% net: "
              f"{acc.accuracy * 100:.1f}% (clean {acc.clean * 100:.1f}%, {acc.counts()}) in "
              f"{acc.seconds:.1f} s wall, {cpu_seconds() - c:.1f} CPU-s (target <= 600 s), {acc.solves} programs")
        print(f"  before: {before}; after: {load()}")


if __name__ == "__main__":
    main()
