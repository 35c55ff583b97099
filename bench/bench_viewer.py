"""Benchmark the viewer page in headless Debian chromium (software rendering).

Two graphs: a lottery run of a 784-32-32-10 MLP pruned 20% per round over 19
rounds (round 18 keeps about 2% of the weights, about 540) and a dense MLP
(26,432 edges, one round).  For each: page size, first render (navigation
start to the first frame drawn, and to the next animation frame), and
pan/zoom time per frame (median over animation frames; `draw` is the time in
the draw call, `frame` the interval between animation frames).

    python bench/bench_viewer.py [--repeat 5] [--samples 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sparsescope.bounds import annotate
from sparsescope.graph import from_torch
from sparsescope.viewer import write_page

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
LABELS = [str(k) for k in range(10)]


def mlp(seed: int, mask_density: float, mask_seed: int = 0) -> torch.nn.Module:
    """A 784-32-32-10 MLP; weights kept with nested masks (a lottery run keeps a subset each round)."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    gen = torch.Generator().manual_seed(mask_seed)
    with torch.no_grad():
        for lin in (m[1], m[3], m[5]):
            score = torch.rand(lin.weight.shape, generator=gen)
            lin.weight.mul_(score < mask_density)
    return m


def lottery(rounds: int, rate: float = 0.2):
    graphs, metrics = [], []
    for r in range(rounds):
        density = (1 - rate) ** r
        g = annotate(from_torch(mlp(100 + r, density), (28, 28), output_labels=LABELS, meta={"run": "bench", "round": r}), "unit")
        left = {layer.name: layer.num_edges for layer in g.layers[1:]}
        total = {"h1": 25088, "h2": 1024, "out": 320}
        graphs.append(g)
        metrics.append({"round": r, "density": sum(left.values()) / sum(total.values()), "weights_left": left,
                        "weights_total": total, "test_accuracy": 0.975 - 0.001 * r})
    return graphs, metrics


def samples(n: int):
    from sparsescope.data import load

    data = load("mnist5k")
    pick = np.linspace(0, len(data.x_test) - 1, n).round().astype(int)
    return data.x_test[pick].astype(np.float64), data.y_test[pick]


def measure(browser, path: Path, repeat: int, frames: int, in_edges: bool | None = None) -> dict:
    first, first_frame, wall, draw, frame, full_draw, full_frame = [], [], [], [], [], [], []
    for _ in range(repeat):
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(path.as_uri())
        while not page.evaluate("!!(window.sparsescope && window.sparsescope.ready)"):  # CSP: no eval-based polling
            time.sleep(0.01)
        wall.append(1000 * (time.perf_counter() - t))
        first.append(page.evaluate("sparsescope.firstRenderMs"))
        first_frame.append(page.evaluate("sparsescope.firstFrameMs"))
        if in_edges is not None:
            page.evaluate(f"sparsescope.set({{inEdges: {str(in_edges).lower()}}})")
        page.evaluate("sparsescope.benchPanZoom(10)")  # warm-up
        res = page.evaluate(f"sparsescope.benchPanZoom({frames})")
        draw.extend(res["draw"])
        frame.extend(res["frame"])
        page.wait_for_timeout(300)  # let the motion settle
        res = page.evaluate(f"sparsescope.benchPanZoom({frames}, true)")
        full_draw.extend(res["draw"])
        full_frame.extend(res["frame"])
        ctx.close()
    med = statistics.median
    return {"first_render_ms": med(first), "first_frame_ms": med(first_frame), "load_wall_ms": med(wall),
            "panzoom_draw_ms": med(draw), "panzoom_frame_ms": med(frame),
            "full_draw_ms": med(full_draw), "full_frame_ms": med(full_frame)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--samples", type=int, default=100, help="test images embedded in each page (default 100)")
    ap.add_argument("--rounds", type=int, default=19)
    ap.add_argument("--run", default=None, help="also the page `sparsescope view RUN` writes (all rounds, --samples test images)")
    ap.add_argument("--runs-dir", default="runs")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    x, y = samples(args.samples)
    tmp = Path(tempfile.mkdtemp(prefix="bench_viewer_"))
    graphs, metrics = lottery(args.rounds)
    t = time.perf_counter()
    sparse = write_page(tmp / "sparse.html", graphs, metrics, current=len(graphs) - 1, samples_x=x, samples_y=y, title="bench sparse")
    build_sparse = 1000 * (time.perf_counter() - t)
    dense_g = annotate(from_torch(mlp(7, 1.0), (28, 28), output_labels=LABELS, meta={"run": "dense"}), "unit")
    dm = {"round": 0, "density": 1.0, "weights_left": {"h1": 25088, "h2": 1024, "out": 320},
          "weights_total": {"h1": 25088, "h2": 1024, "out": 320}, "test_accuracy": 0.975}
    t = time.perf_counter()
    dense = write_page(tmp / "dense.html", [dense_g], [dm], current=0, samples_x=x, samples_y=y, title="bench dense")
    build_dense = 1000 * (time.perf_counter() - t)

    cases = [
        (f"sparse {graphs[-1].num_edges} edges, {len(graphs)} rounds, {args.samples} samples", sparse, build_sparse, None, 1.0, 1000),
        (f"dense {dense_g.num_edges} edges, 1 round, {args.samples} samples", dense, build_dense, None, None, 3000),
        (f"dense {dense_g.num_edges} edges, all input->h1 edges drawn", dense, build_dense, True, None, 3000),
    ]
    if args.run:
        from sparsescope.runs import resolve_run
        from sparsescope.viewer import write_run_page

        from sparsescope.runs import run_data

        store = resolve_run(args.run, args.runs_dir)
        n_test = len(run_data(store).x_test)
        pick = np.unique(np.linspace(0, n_test - 1, min(args.samples, n_test)).round().astype(int)).tolist()
        t = time.perf_counter()
        page = write_run_page(store, tmp / "run.html", samples=pick)
        build_run = 1000 * (time.perf_counter() - t)
        n_rounds = len(store.finished_rounds())
        dens = store.round_metrics()[-1]["density"]
        cases.insert(0, (f"run {store.path.name}: last round ({100 * dens:.2f}% density), {n_rounds} rounds, {len(pick)} samples",
                         page, build_run, None, 1.0, 1000))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ok = True
        for name, path, build_ms, in_edges, size_mb, first_target in cases:
            r = measure(browser, path, args.repeat, args.frames, in_edges)
            size = path.stat().st_size
            print(f"{name}:")
            print(f"  page size        {size / 1e6:.3f} MB ({size:,} bytes)" + (f"  target <= {size_mb} MB" if size_mb else ""))
            print(f"  build_page       {build_ms:.0f} ms (python)")
            print(f"  first render     {r['first_render_ms']:.0f} ms (next frame {r['first_frame_ms']:.0f} ms, load wall {r['load_wall_ms']:.0f} ms)  target <= {first_target} ms")
            print(f"  pan/zoom frame   {r['panzoom_frame_ms']:.1f} ms/frame (draw call {r['panzoom_draw_ms']:.1f} ms)  target <= 33 ms")
            print(f"  full redraw      {r['full_frame_ms']:.1f} ms/frame (draw call {r['full_draw_ms']:.1f} ms): "
                  "what a frame costs without the snapshot (heavy scenes move a snapshot while panning)")
            if size_mb and size > size_mb * 1e6 or r["first_frame_ms"] > first_target:
                ok = False
            if in_edges is None and size_mb and r["panzoom_frame_ms"] > 33:
                ok = False
        browser.close()
    print("medians of", args.repeat, "loads and", args.frames, "frames each;", "all targets met" if ok else "SOME TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
