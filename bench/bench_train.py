"""Training benchmark: the default experiment on the full MNIST against its compute floor (a script, not a test).

    python3 bench/bench_train.py [--repeats 1] [--config configs/mnist-mlp.toml] [--skip-cli]

Prints, for the default experiment (19 rounds x 3 epochs over 60,000 images):

* its training time (training loops only; wall and this process's CPU time)
  beside the compute floor measured in this same run: 6 x kernel weights x
  training samples x epochs x rounds FLOPs divided by the single-thread
  matmul FLOP/s of torch (best of several 512x512 products, measured before
  and after); target <= 2.5x.  The floor is the DENSE FLOP floor: it counts
  every weight of every round, although the trainer skips the layer-1 input
  columns a round's mask has emptied (late rounds) and never computes the
  gradient of the input itself; so the per-round table shows each round's
  time against the same dense per-round floor;
* the wall time of the README's first command after setup,
  ``python3 -m sparsescope run configs/mnist-mlp.toml`` into a fresh runs
  folder, as a new process (torch import, data load and checks, training,
  writing every round); target <= 20 s;
* the load average, since other processes on the machine slow every wall-clock
  figure; the CPU time each part used is printed beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sparsescope._config import load_config  # noqa: E402
from sparsescope.data import load  # noqa: E402
from sparsescope.prune import planned_counts  # noqa: E402
from sparsescope.runs import run_experiment  # noqa: E402
from sparsescope.train import fit  # noqa: E402


def matmul_flops(n: int = 512, repeats: int = 20) -> float:
    """Single-thread matmul FLOP/s: the best of ``repeats`` n x n products."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="in-process runs of the whole experiment (median)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist-mlp.toml"))
    ap.add_argument("--skip-cli", action="store_true", help="skip the wall time of the first README command")
    args = ap.parse_args()
    cfg = load_config(args.config)
    torch.set_num_threads(cfg.train.threads)
    print(f"torch {torch.__version__}, {cfg.train.threads} thread(s); {load_note()}")
    flops = [matmul_flops()]
    data = load(cfg.dataset)
    totals = {n: o * i for n, (o, i) in cfg.model.kernel_shapes.items()}
    rounds = len(planned_counts(totals, cfg.prune))
    kernel = cfg.model.num_kernel_weights
    n = len(data.x_train)
    epochs = rounds * cfg.train.epochs

    # one epoch, several times: the per-epoch figure
    from sparsescope.models import init_params

    p = init_params(cfg.model, cfg.seed)
    one = dataclasses.replace(cfg.train, epochs=1)
    ep_res = [fit(cfg.model, p, None, data, one, seed=i) for i in range(3)]
    ep = [r.train_seconds for r in ep_res]
    ep_cpu = [r.train_cpu_seconds for r in ep_res]

    from sparsescope.runs import _lottery
    from sparsescope.train._flat import kept_columns

    fits = []  # (layer-1 columns kept, TrainResult) of every round, in order
    real_fit = _lottery.fit

    def recording_fit(spec, params, masks, *a, **kw):
        res = real_fit(spec, params, masks, *a, **kw)
        first = spec.layer_names[0]
        cols = None if masks is None else kept_columns(masks[first].float(), spec.sizes[0])
        fits.append((spec.sizes[0] if cols is None else len(cols), res))
        return res

    _lottery.fit = recording_fit
    train, train_cpu, wall, cpu = [], [], [], []
    for _ in range(args.repeats):
        fits.clear()
        with tempfile.TemporaryDirectory() as d:
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_experiment(cfg, d, data=data)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            train.append(res.train_seconds)
            train_cpu.append(sum(r.train_cpu_seconds for _, r in fits))
    _lottery.fit = real_fit
    flops.append(matmul_flops())
    best = max(flops)
    epoch_floor = 6 * kernel * n / best
    floor = epochs * epoch_floor
    med = statistics.median
    print(f"matmul 512x512: {best / 1e9:.1f} GFLOP/s (best before/after: {flops[0] / 1e9:.1f} / {flops[1] / 1e9:.1f})")
    print(f"one dense epoch of {cfg.dataset} ({n:,} samples, batch {cfg.train.batch_size}): median {med(ep):.3f} s wall, "
          f"{med(ep_cpu):.3f} s CPU   floor {epoch_floor:.3f} s   ({med(ep) / epoch_floor:.2f}x wall, "
          f"{med(ep_cpu) / epoch_floor:.2f}x CPU)")
    round_floor = cfg.train.epochs * epoch_floor
    print(f"per round (last repeat; floor = the DENSE floor of one round, {round_floor:.3f} s):")
    print("  round  layer-1 input columns used  train wall  train CPU  CPU/floor")
    for r, (cols, fr) in enumerate(fits):
        print(f"  {r:5d}  {cols:>26d}  {fr.train_seconds:9.3f}s  {fr.train_cpu_seconds:8.3f}s  {fr.train_cpu_seconds / round_floor:8.2f}x")
    print(f"{cfg.name}: {rounds} rounds x {cfg.train.epochs} epochs on {cfg.dataset}: training {med(train):.2f} s wall, "
          f"{med(train_cpu):.2f} s CPU (whole run in-process {med(wall):.2f} s)   dense floor {floor:.2f} s   "
          f"ratio {med(train) / floor:.2f}x wall, {med(train_cpu) / floor:.2f}x CPU   target <= 2.5x")
    # on a shared machine the wall clock counts other processes' turns; the CPU time this
    # process used (training, evaluation and I/O together) does not
    print(f"  whole run, CPU time of this process (training + evaluation + I/O): {med(cpu):.2f} s   "
          f"ratio {med(cpu) / floor:.2f}x")
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, "-m", "sparsescope", "run", args.config, "--runs-dir", d, "--quiet"]
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            cli_wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cli_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if out.returncode != 0:
            sys.exit(f"the first README command failed: {out.stderr.strip()}")
        print(f"first README command (python3 -m sparsescope run {Path(args.config).relative_to(ROOT)}, fresh runs folder): "
              f"wall {cli_wall:.2f} s (CPU {cli_cpu:.2f} s)   target <= 20 s")
    print(f"after: {load_note()}")


if __name__ == "__main__":
    main()
