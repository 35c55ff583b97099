"""Study benchmarks (a script, not a test): batched tickets, and a sweep on local processes and Dask.

    python bench/bench_study.py batched [--dataset mnist] [--k 8] [--profile [--steps 1000]]
    python bench/bench_study.py sweep [--sweep configs/sweeps/study.toml] [--executor local|dask] [--dataset D]
    python bench/bench_study.py executor-step [--executors local,dask]

``batched``: one round (3 epochs) of K dense tickets trained together
(:func:`sparsescope.study.fit_batched`) against one ticket alone
(:func:`sparsescope.train.fit`), wall and CPU time, in both of its modes:
tickets with their own data orders, and tickets sharing one; target: K = 8
in at most 3x the time of one.  Beside it the exact compute floor: the
FLOPs of the products a step must do, over the single-thread matmul FLOP/s
measured in this run (a 512 x 512 product).  Per sample and ticket that is
2 x the kernel weights for the forward pass, 2 x them for the weight
gradients, and 2 x the weights of layers 2.. for the input gradients (layer
1's input needs no gradient): for 784-32-32-10, (4 x 25,088 + 6 x 1,344) =
108,416 FLOPs, 0.68 of the 6 x weights often quoted.  Biases, elementwise
ops and Adam are left out of the floor (they scale with the parameters or
units, not with weights x samples); ``--profile`` shows what they cost.  K
tickets do K times the arithmetic of one, so K x floor / one's time is the
best ratio any batching could reach.

Under load, CPU time swells too (other processes share the caches and
memory bandwidth): the line also gives the ratio of the best CPU times.

``batched --profile``: the batched step call by call (each mode, K
tickets, ``--steps`` steps of full batches, each call timed with
the thread's CPU clock): CPU microseconds per step, and for the products their FLOPs
and GFLOP/s against the matmul peak, so the time above the floor is
located.

``executor-step``: one batched step (K dense tickets) on a worker of each
executor, repeated: wall, the task thread's CPU and its page faults -- what
an executor adds per task, less sensitive to load than a whole sweep.

``sweep``: the study sweep (3 schedules x 3 seeds x (ticket + 2 controls) to
about 2% density) from an empty run store, wall time on the given executor;
targets: <= 5 minutes with the local executor, local Dask within 1.2x of it.
Prints where the time goes (training loops, the rest of each task, and time
outside tasks: start-up, scheduling, idle), the CPU seconds and the load
average before and after.  The numbers depend on how busy the machine is:
say so when quoting them.
"""

from __future__ import annotations

import argparse
import os
import resource
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
    flops = max(flops, matmul_flops())  # best of before and after: a busy moment only lowers it
    floor1 = floor_flops(spec.sizes) * len(data.x_train) * cfg.epochs / flops
    med = statistics.median
    w1, c1 = med(r.train_seconds for r in one), med(r.train_cpu_seconds for r in one)
    print(f"matmul 512x512 {flops / 1e9:.1f} GFLOP/s; {args.dataset} ({len(data.x_train)} samples), MLP {spec.sizes}, "
          f"{cfg.epochs} epochs, batch {cfg.batch_size}, dense tickets; median of {args.repeats}")
    print(f"exact floor per ticket: {floor_flops(spec.sizes):,} FLOPs per sample (4 x layer-1 weights + 6 x the rest) "
          f"= {floor1:.3f} s for {cfg.epochs} epochs")
    b1 = min(r.train_cpu_seconds for r in one)
    print(f"1 ticket alone: {w1:.2f} s wall, {c1:.2f} s CPU (best {b1:.2f})   exact floor {floor1:.2f} s "
          f"({w1 / floor1:.2f}x wall, {c1 / floor1:.2f}x CPU)")
    for c, runs in many.items():
        wk, ck = med(x[0] for x in runs), med(x[1] for x in runs)
        print(f"{args.k} tickets batched, {c}: {wk:.2f} s wall = {wk / w1:.2f}x one, {ck:.2f} s CPU = {ck / c1:.2f}x one"
              f"   target <= 3x;  exact floor {args.k * floor1:.2f} s ({args.k * floor1 / c1:.2f}x one's CPU; "
              f"batched CPU {ck / (args.k * floor1):.2f}x its floor)   best CPU of each: "
              f"{min(x[1] for x in runs) / b1:.2f}x one")
    print(f"after: {load_note()}")
    if args.profile:
        for c, seeds in cases.items():
            profile_step(spec, starts, data, cfg, seeds, args.steps, flops, c)


def floor_flops(sizes) -> int:
    """Matmul FLOPs per sample of one training step: forward and weight gradient of every layer,
    input gradient of every layer but the first (nothing needs the gradient of the data)."""
    weights = [o * i for i, o in zip(sizes[:-1], sizes[1:])]
    return 4 * sum(weights) + 2 * sum(weights[1:])


def profile_step(spec, starts, data, cfg, seeds, steps: int, peak: float, title: str) -> None:
    """Time every call of the batched step (``_Buffers.ops``) and Adam over ``steps`` full batches."""
    import numpy as np

    from sparsescope.study import _batched
    from sparsescope.train._fit import _FusedAdam
    from sparsescope.train._flat import FlatMLP

    K, b = len(starts), cfg.batch_size
    net = FlatMLP(spec.sizes, *_batched._stack(spec, starts, [None] * K))
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    shared = len(set(seeds)) == 1
    buf = _batched._Buffers(net, b, shared)
    if shared and not buf.wide_ok:
        shared, buf = False, _batched._Buffers(net, b, False)
    adam = _FusedAdam(*net.adam_views(), cfg)
    n = len(x) - len(x) % b
    perms = torch.stack([torch.randperm(len(x), generator=torch.Generator().manual_seed(s)) for s in seeds])
    labels = y.index_select(0, perms.view(-1)).view(K, len(x), 1)
    ops = buf.ops + [("Adam (fused, every parameter)", 0, adam.step)]
    spent = [0.0] * len(ops)
    clock = time.thread_time  # CPU time of this thread: other processes' load preempts it less than wall
    w0 = None
    for i in range(steps + 20):  # 20 warm-up steps
        s = (i * b) % n
        if shared:
            buf.feed(x, perms[0, s:s + b], labels[0, s:s + b], 1.0 / b)
        else:
            buf.feed(x, perms[:, s:s + b].reshape(-1), labels[:, s:s + b], 1.0 / b)
        if i == 20:
            w0 = time.perf_counter()
        for j, (_, _, op) in enumerate(ops):
            t0 = clock()
            op()
            if i >= 20:
                spent[j] += clock() - t0
    total, wall = sum(spent) / steps, (time.perf_counter() - w0) / steps
    fl = sum(f for _, f, _ in ops)
    print(f"\nprofile, {K} tickets, {title}: {total * 1e6:.0f} us CPU per step ({wall * 1e6:.0f} us wall, "
          f"{os.getloadavg()[0]:.1f} load); products {fl / 1e6:.1f} MFLOP "
          f"= floor {fl / peak * 1e6:.0f} us at {peak / 1e9:.1f} GFLOP/s ({total * peak / fl:.2f}x)")
    for (name, f, _), t in zip(ops, spent):
        us = t / steps * 1e6
        extra = f"  {f / 1e6:6.2f} MFLOP  {f / (us * 1e3):5.1f} GFLOP/s  floor {f / peak * 1e6:6.1f} us" if f else ""
        print(f"  {name:32s} {us:7.1f} us  {us / (total * 1e6):5.1%}{extra}")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} cores"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the local executor's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_sweep(args: argparse.Namespace) -> None:
    from sparsescope.study import load_sweep, run_sweep
    from sparsescope.study._executors import default_workers, open_executor

    sweep = load_sweep(args.sweep)
    if args.dataset:
        from dataclasses import replace

        sweep = replace(sweep, datasets=(args.dataset,))
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="bench-sweep-"))
    if any(runs_dir.glob("*/manifest.json")):
        sys.exit(f"{runs_dir} already holds runs: the benchmark needs an empty run store")
    workers = args.workers or default_workers()
    print(f"before: {_load()}", flush=True)
    if args.executor.startswith("dask"):  # the cluster's own start-up and shut-down, measured apart
        t0 = time.perf_counter()
        with open_executor(args.executor, workers=workers):
            up = time.perf_counter() - t0
        print(f"{args.executor}: cluster start {up:.1f} s, start + stop {time.perf_counter() - t0:.1f} s "
              "(an empty cluster; the sweep below starts its own)", flush=True)
    c0, t0 = _cpu(), time.perf_counter()
    res = run_sweep(sweep, runs_dir, executor=args.executor, workers=workers,
                    note=(lambda s: print("  " + s, flush=True)) if args.verbose else None)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    n_rounds = sum(1 for _ in runs_dir.glob("*/rounds/[0-9]*"))
    n_controls = sum(1 for p in runs_dir.glob("*/controls/*-r*") if p.is_dir() and not p.name.startswith("."))
    rounds_with = sweep.control_rounds if sweep.control_rounds != "all" else "every pruned round (1..last), the lottery-ticket standard"
    print(f"sweep {sweep.name} on {args.executor} ({workers} workers), dataset {', '.join(sweep.datasets)}: "
          f"{len(res.runs)} runs ({len(sweep.schedules)} schedules x {len(sweep.seeds)} seeds), "
          f"{res.trained} trainings = {n_rounds} rounds + {n_controls} controls "
          f"({' + '.join(sweep.controls) or 'none'} at {rounds_with})")
    print(f"  wall {wall:.1f} s   target <= 300 s (local; dask <= 1.2x local)")
    print(f"  inside tasks {res.task_seconds:.1f} worker-s, of which training loops {res.train_seconds:.1f} s, "
          f"reading/pruning/evaluating/writing {res.task_seconds - res.train_seconds:.1f} s; "
          f"outside tasks (start-up, scheduling, idle) {wall * workers - res.task_seconds:.1f} worker-s of "
          f"{wall * workers:.1f}")
    print(f"  CPU: {res.task_cpu_seconds:.1f} s in the step tasks' threads (any executor); {cpu:.1f} s of this "
          f"process and its reaped children (local workers; not a remote Dask's)   {res.tasks} tasks")
    print(f"after: {_load()}   runs in {runs_dir}")


def step_job(dataset: str, k: int) -> dict:
    """One batched step (K dense tickets, 3 epochs) in a worker: wall, the thread's CPU and page faults."""
    import threading

    from sparsescope.models import MLPSpec, init_params
    from sparsescope.study import fit_batched
    from sparsescope.study._sweep import _dataset
    from sparsescope.train import TrainConfig

    data = _dataset(dataset)
    spec = MLPSpec()
    starts = [init_params(spec, s) for s in range(k)]
    r0, t0 = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
    fit_batched(spec, starts, [None] * k, data, TrainConfig(), seeds=list(range(k)))
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    return {"wall": time.perf_counter() - t0, "cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
            "faults": r1.ru_minflt - r0.ru_minflt, "thread": threading.current_thread().name,
            "malloc_trim": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def bench_executor_step(args: argparse.Namespace) -> None:
    """The same batched step on each executor's worker: the per-task cost an executor adds."""
    from sparsescope.study import open_executor

    print(f"before: {_load()}")
    for spec in args.executors.split(","):
        with open_executor(spec, workers=1) as ex:
            ex.submit(step_job, args.dataset, args.k).result()  # warm up: imports, data
            runs = [ex.submit(step_job, args.dataset, args.k).result() for _ in range(args.repeats)]
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"{spec}: {args.k} tickets x 3 epochs on {args.dataset}: median wall "
              f"{statistics.median(r['wall'] for r in runs):.2f} s, task-thread CPU {cpu:.2f} s, page faults "
              f"{statistics.median(r['faults'] for r in runs):.0f} (MALLOC_TRIM_THRESHOLD_={runs[0]['malloc_trim']})")
    print(f"after: {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("batched")
    b.add_argument("--dataset", default="mnist")
    b.add_argument("--k", type=int, default=8)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--profile", action="store_true", help="also time the batched step call by call")
    b.add_argument("--steps", type=int, default=1000, help="steps timed by --profile")
    s = sub.add_parser("sweep")
    s.add_argument("--sweep", default="configs/sweeps/study.toml")
    s.add_argument("--executor", default="local")
    s.add_argument("--runs-dir", default=None)
    s.add_argument("--dataset", default=None, help="run the sweep on this dataset instead (e.g. mnist5k)")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--verbose", action="store_true", help="print every finished task")
    e = sub.add_parser("executor-step")
    e.add_argument("--executors", default="local,dask")
    e.add_argument("--dataset", default="mnist5k")
    e.add_argument("--k", type=int, default=3)
    e.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    {"batched": bench_batched, "sweep": bench_sweep, "executor-step": bench_executor_step}[args.what](args)


if __name__ == "__main__":
    main()
