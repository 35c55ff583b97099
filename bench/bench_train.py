"""Training and IMP benchmark (a script, not a test).

    python bench/bench_train.py [--repeats 5] [--skip-fashion]

Prints medians of several runs, and beside them the compute floor: 6 x kernel
weights x training samples FLOPs (forward + backward of a dense MLP), divided
by the single-thread matmul FLOP/s measured in this same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from sparsescope._config import from_dict
from sparsescope.data import load
from sparsescope.models import MLPSpec, init_params
from sparsescope.runs import run_experiment
from sparsescope.train import TrainConfig, fit


def matmul_flops(n: int = 512, repeats: int = 20) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def epoch_seconds(data, repeats: int) -> list[float]:
    spec = MLPSpec()
    p = init_params(spec, 0)
    fit(spec, p, None, data, TrainConfig(epochs=1), seed=0)  # warm up
    return [fit(spec, p, None, data, TrainConfig(epochs=1), seed=i).train_seconds for i in range(repeats)]


def imp_seconds(dataset: str, rounds: int, data, repeats: int) -> tuple[list[float], list[float]]:
    cfg = from_dict({"name": "bench", "data": {"dataset": dataset},
                     "prune": {"rates": {"h1": 0.2, "h2": 0.2, "out": 0.1}, "rounds": rounds}})
    train, wall = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = run_experiment(cfg, d, data=data)
            wall.append(time.perf_counter() - t0)
            train.append(res.train_seconds)
    return train, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-fashion", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    flops = matmul_flops()
    kernel = MLPSpec().num_kernel_weights
    print(f"torch {torch.__version__}, 1 thread; matmul 512x512: {flops / 1e9:.1f} GFLOP/s")
    med = statistics.median

    mnist = load("mnist5k")
    floor_m = 6 * kernel * len(mnist.x_train) / flops
    ep = epoch_seconds(mnist, args.repeats)
    print(f"mnist5k epoch (4,000 samples, batch 60): median {med(ep):.4f} s   floor {floor_m:.4f} s")
    tr, wall = imp_seconds("mnist5k", 5, mnist, args.repeats)
    print(f"IMP mnist5k 5 rounds x 3 epochs: training median {med(tr):.3f} s (wall incl. I/O {med(wall):.3f} s)"
          f"   floor {15 * floor_m:.3f} s   target <= 1.0 s")
    if not args.skip_fashion:
        fashion = load("fashion-mnist")
        floor_f = 6 * kernel * len(fashion.x_train) / flops
        ep = epoch_seconds(fashion, args.repeats)
        print(f"fashion-mnist epoch (60,000 samples, batch 60): median {med(ep):.3f} s   floor {floor_f:.3f} s   target <= 0.35 s")
        reps = max(1, min(3, args.repeats))
        tr, wall = imp_seconds("fashion-mnist", 18, fashion, reps)
        print(f"IMP fashion-mnist 18 rounds x 3 epochs ({reps} runs): training median {med(tr):.2f} s "
              f"(wall incl. I/O and evaluation {med(wall):.2f} s)   floor {54 * floor_f:.2f} s")


if __name__ == "__main__":
    main()
