"""Benchmark: torch MLP -> flowgraph -> unit-box bounds -> layout -> SVG (and PNG), median of runs.

Targets: <= 0.3 s for a ~2%-density 784-32-32-10 MLP (about 540 weights) and
<= 2 s for the dense one (26,432 edges).  Run: ``python bench/bench_graph.py``;
``--run RUN`` also times the first and last rounds of a trained run (e.g.
``--run runs/mnist-mlp-...``), read from the run store as the CLI does.
"""

from __future__ import annotations

import statistics
import time

import torch

from sparsescope import graph as G
from sparsescope.bounds import annotate
from sparsescope.render import graph_figure

RUNS = 7


def mlp(keep: list[float] | None, seed: int = 0) -> torch.nn.Sequential:
    """784-32-32-10 ReLU MLP; ``keep[i]``: fraction of layer i's weights kept by magnitude pruning."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                            torch.nn.ReLU(), torch.nn.Linear(32, 10))
    if keep is not None:
        with torch.no_grad():
            for lin, k in zip([m[1], m[3], m[5]], keep):
                w = lin.weight
                n = max(1, round(k * w.numel()))
                thr = w.abs().flatten().topk(n).values[-1]
                w.mul_((w.abs() >= thr).float())
    return m


def median_time(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def trained_cases(run: str) -> list:
    """(name, model, target) for the last and the first round of a finished run."""
    from sparsescope.models import MLPSpec, build_mlp
    from sparsescope.runs import resolve_run

    store = resolve_run(run)
    spec = MLPSpec(tuple(store.manifest()["config"]["model"]["sizes"]))
    out = []
    for r, target in ((store.finished_rounds()[-1], 0.3), (0, 2.0)):
        rec = store.read_round(r)
        out.append((f"run r{r:<7d}", build_mlp(spec, rec.params), target))
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="also time the first and last rounds of this run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    labels = [str(i) for i in range(10)]
    cases = [("sparse ~2%", mlp([0.0175, 0.06, 0.25]), 0.3), ("dense", mlp(None), 2.0)]
    if args.run:
        cases += trained_cases(args.run)
    for name, model, target in cases:
        def svg() -> tuple:
            g = annotate(G.from_torch(model, (28, 28), output_labels=labels), "unit")
            scene = graph_figure(g)
            return g, scene, scene.to_svg()

        g, scene, text = svg()
        t_svg = median_time(svg)
        t_png = median_time(scene.to_png)
        t_input = median_time(lambda: graph_figure(g, x=torch.rand(28, 28).double().numpy()).to_svg())
        ok = "ok" if t_svg <= target else "SLOW"
        print(f"{name:11s} edges={g.num_edges:6d}  build+bounds+layout+SVG median {t_svg:.3f} s "
              f"(target {target} s, {ok}); PNG {t_png:.3f} s; per-input SVG {t_input:.3f} s; "
              f"SVG {len(text) / 1e3:.0f} kB, PNG {scene.png_size()[0]}x{scene.png_size()[1]} px  [{RUNS} runs]")


if __name__ == "__main__":
    main()
