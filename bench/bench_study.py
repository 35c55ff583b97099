"""Study benchmarks (a script, not a test): batched tickets, and a sweep on local processes and Dask.

    python bench/bench_study.py batched [--dataset mnist] [--k 8]
    python bench/bench_study.py sweep [--sweep configs/sweeps/study.toml] [--executor local|dask] [--runs-dir DIR]

``batched``: one round (3 epochs) of K dense tickets trained together
(:func:`sparsescope.study.fit_batched`) against one ticket alone
(:func:`sparsescope.train.fit`), wall and CPU time, in both of its modes:
tickets with their own data orders, and tickets sharing one; target: K = 8
in at most 3x the time of one.  Beside it the compute floor: 6 x kernel
weights x samples x epochs FLOPs per ticket over the single-thread matmul
FLOP/s measured in this run (K tickets do K times the arithmetic of one,
so the floor alone is K/(one's ratio to its floor) times one).

``sweep``: the study sweep (3 schedules x 3 seeds x (ticket + 2 controls) to
about 2% density) from an empty run store, wall time on the given executor;
targets: <= 5 minutes with the local executor, local Dask within 1.2x of it.
Prints the serial training time it contains (sum over every round and control)
so the parallel speed-up can be read off.  The numbers depend on how busy
the machine is: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import matmul_flops  # noqa: E402  (the same FLOP/s probe as the training benchmark)


def bench_batched(args: argparse.Namespace) -> None:
    from sparsescope.data import load
    from sparsescope.models import MLPSpec, init_params
    from sparsescope.study import fit_batched
    from sparsescope.train import TrainConfig, fit

    from bench_train import load_note

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; {load_note()}")
    data = load(args.dataset)
    spec, cfg = MLPSpec(), TrainConfig()
    flops = matmul_flops()
    floor1 = 6 * spec.num_kernel_weights * len(data.x_train) * cfg.epochs / flops
    starts = [init_params(spec, s) for s in range(args.k)]
    fit(spec, starts[0], None, data, TrainConfig(epochs=1), seed=0)  # warm up
    one = [fit(spec, starts[0], None, data, cfg, seed=r) for r in range(args.repeats)]
    cases = {"own data orders (seeds 0..K-1: one gather + bmm)": list(range(args.k)),
             "one shared data order (equal seeds: layer 1 as one wide mm)": [0] * args.k}
    many = {c: [] for c in cases}
    for r in range(args.repeats):
        for c, seeds in cases.items():
            res = fit_batched(spec, starts, [None] * args.k, data, cfg, seeds=seeds)
            many[c].append((res[0].train_seconds * args.k, res[0].train_cpu_seconds * args.k))
    med = statistics.median
    w1, c1 = med(r.train_seconds for r in one), med(r.train_cpu_seconds for r in one)
    print(f"matmul 512x512 {flops / 1e9:.1f} GFLOP/s; {args.dataset} ({len(data.x_train)} samples), MLP {spec.sizes}, "
          f"{cfg.epochs} epochs, batch {cfg.batch_size}, dense tickets; median of {args.repeats}")
    print(f"1 ticket alone: {w1:.2f} s wall, {c1:.2f} s CPU   dense floor {floor1:.2f} s "
          f"({w1 / floor1:.2f}x wall, {c1 / floor1:.2f}x CPU)")
    for c, runs in many.items():
        wk, ck = med(x[0] for x in runs), med(x[1] for x in runs)
        print(f"{args.k} tickets batched, {c}: {wk:.2f} s wall = {wk / w1:.2f}x one, {ck:.2f} s CPU = {ck / c1:.2f}x one"
              f"   target <= 3x;  floor {args.k * floor1:.2f} s ({args.k * floor1 / c1:.2f}x one's CPU)")
    print(f"after: {load_note()}")


def bench_sweep(args: argparse.Namespace) -> None:
    from sparsescope.study import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="bench-sweep-"))
    if any(runs_dir.glob("*/manifest.json")):
        sys.exit(f"{runs_dir} already holds runs: the benchmark needs an empty run store")
    t0 = time.perf_counter()
    res = run_sweep(sweep, runs_dir, executor=args.executor, note=lambda s: print("  " + s, flush=True))
    wall = time.perf_counter() - t0
    serial = 0.0
    trainings = 0
    for t in runs_dir.rglob("timing.json"):
        serial += json.loads(t.read_text()).get("wall_seconds", 0.0)
        trainings += 1
    print(f"sweep {sweep.name} on {args.executor}: {len(res.runs)} runs, {trainings} trainings (rounds + controls), "
          f"wall {wall:.1f} s; their serial time (sum of per-training wall) {serial:.1f} s; target <= 300 s "
          f"(dask: <= 1.2x local); runs in {runs_dir}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("batched")
    b.add_argument("--dataset", default="mnist")
    b.add_argument("--k", type=int, default=8)
    b.add_argument("--repeats", type=int, default=3)
    s = sub.add_parser("sweep")
    s.add_argument("--sweep", default="configs/sweeps/study.toml")
    s.add_argument("--executor", default="local")
    s.add_argument("--runs-dir", default=None)
    args = ap.parse_args()
    bench_batched(args) if args.what == "batched" else bench_sweep(args)


if __name__ == "__main__":
    main()
