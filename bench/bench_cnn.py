"""Benchmarks of the study's CNN (configs/mnist-cnn.toml): training, graph pipeline, viewer.

* train: one epoch of the CNN (the default path: the compiled direct
  convolutions of train/_directconv.py, fused Adam; --autograd also times
  the autograd path after it) on --dataset
  (default mnist, the full 60,000 images; mnist5k if you pass it), against the
  compute floor: 6 x (multiply-adds of one forward pass) x samples FLOPs over
  the float32 matmul rate measured in the same run (512x512, one thread).
  Printed twice: wall time against the median wall rate, and the training
  thread's CPU time against the best CPU-time rate (on a machine shared with
  other jobs the CPU figures are the steadier pair), with the load average.
  Target: at most 3x the floor.
* graph: flowgraph + interval bounds + channel-view layout and SVG + the
  unrolled subgraph of output 7 as SVG, for the pruned CNN (--run RUN, its last
  round; default: the CNN with random masks of the study's counts 6/23/23/135).
  Target: at most 1 s.
* viewer: page size, first render and pan/zoom time per frame in headless
  chromium, on the channel view and on the unrolled view of the output with the
  largest subgraph, and (--dense-round N of --run) the unrolled view of a less
  pruned round with tens of thousands of edges.  With --run the page measured is
  the run's own (`sparsescope view RUN`: every round on the slider, 100 test
  images), and the time of a slider switch to the densest round is printed.  Targets: page <= 3 MB, first
  render <= 1.5 s, pan/zoom <= 33 ms a frame.

    python3 bench/bench_cnn.py [--only train|graph|viewer] [--autograd] [--run RUN --runs-dir DIR] [--dense-round N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "mnist-cnn.toml"


def matmul_rate(n: int = 512, reps: int = 20) -> tuple[float, float]:
    """(wall rate, CPU rate) of an n x n float32 matmul on this thread, FLOP/s: the median of
    ``reps`` wall times, and the best of ``reps`` thread CPU times (the rate when not preempted)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    walls, cpus = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.thread_time()
        a @ b
        walls.append(time.perf_counter() - t)
        cpus.append(time.thread_time() - c)
    return 2 * n**3 / statistics.median(walls), 2 * n**3 / max(min(cpus), 1e-9)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def bench_train(dataset: str, autograd: bool) -> None:
    from sparsescope import load_config
    from sparsescope.data import load
    from sparsescope.models import init_params
    from sparsescope.train import TrainConfig, fit
    from sparsescope.train._autograd import fit_sequential

    cfg = load_config(CONFIG)
    spec = cfg.model
    data = load(dataset)
    tc = TrainConfig(epochs=1, batch_size=cfg.train.batch_size, lr=cfg.train.lr)
    flops = 6 * spec.macs_per_sample() * len(data.x_train)
    from sparsescope.train._ckernels import status

    why = status()
    default = "direct kernels (the default)" if why == "ok" else f"autograd (the default here: kernels unavailable: {why})"
    paths = [(default, lambda: fit(spec, init_params(spec, 0), None, data, tc, seed=0))]
    if autograd:
        paths.append(("autograd (path='autograd')", lambda: fit_sequential(spec, init_params(spec, 0), None, data, tc, 0,
                                                                            None, None, path="autograd")))
    print(f"train: one epoch of the CNN on {dataset} ({len(data.x_train)} images, batch {cfg.train.batch_size}); "
          f"compute floor = {flops / 1e9:.1f} GFLOP (6 x forward multiply-adds) over the 512x512 matmul rate")
    for label, run in paths:
        load_before = _load()
        wall0, cpu0 = matmul_rate()
        res = run()
        wall1, cpu1 = matmul_rate()
        wall_rate, cpu_rate = max(wall0, wall1), max(cpu0, cpu1)
        wall_floor, cpu_floor = flops / wall_rate, flops / cpu_rate
        print(f"  {label}: wall {res.train_seconds:.2f} s vs floor {wall_floor:.2f} s ({wall_rate / 1e9:.1f} GFLOP/s, median "
              f"wall) -> {res.train_seconds / wall_floor:.1f}x (target <= 3x); CPU {res.train_cpu_seconds:.2f} s vs floor "
              f"{cpu_floor:.2f} s ({cpu_rate / 1e9:.1f} GFLOP/s, best CPU time) -> {res.train_cpu_seconds / cpu_floor:.1f}x; "
              f"load {load_before} -> {_load()}; test accuracy {100 * res.history[-1]['test_accuracy']:.1f}%")


def pruned_graph(run: str | None, runs_dir: str, round_index: int | None = None):
    """(flowgraph without bounds, build function) of the pruned CNN."""
    from sparsescope.graph import from_steps, spec_steps

    if run is not None:
        from sparsescope.runs import resolve_run

        store = resolve_run(run, runs_dir)
        r = store.finished_rounds()[-1] if round_index is None else round_index
        rec = store.read_round(r)
        spec = store.spec()
        arr = {}
        for n in rec.mask.names():
            arr[f"{n}.weight"] = rec.params[f"{n}.weight"].double().numpy() * rec.mask[n]
            arr[f"{n}.bias"] = rec.params[f"{n}.bias"].double().numpy()
        shape = tuple(store.manifest()["data"]["input_shape"])
        return lambda: from_steps(spec_steps(spec, arr), shape, output_labels=[str(i) for i in range(10)],
                                  meta={"run": store.path.name, "round": r})
    from sparsescope import load_config
    from sparsescope.models import init_params

    spec = load_config(CONFIG).model
    p = init_params(spec, 0)
    rng = np.random.default_rng(0)
    arr = {}
    for (n, s), k in zip(spec.kernel_shapes.items(), (6, 23, 23, 135)):
        m = np.zeros(int(np.prod(s)), dtype=bool)
        m[rng.permutation(m.size)[:k]] = True
        arr[f"{n}.weight"] = p[f"{n}.weight"].double().numpy() * m.reshape(s)
        arr[f"{n}.bias"] = p[f"{n}.bias"].double().numpy()
    return lambda: from_steps(spec_steps(spec, arr), (28, 28), output_labels=[str(i) for i in range(10)],
                              meta={"run": "random-study-masks", "round": 0})


def bench_graph(build, repeat: int) -> None:
    from sparsescope.analysis import analyse
    from sparsescope.bounds import annotate
    from sparsescope.render._convfig import channel_figure, unrolled_figure

    annotate(build(), "unit")  # warm-up (imports, scipy)
    parts: dict[str, list[float]] = {"flowgraph": [], "bounds": [], "channel view + SVG": [], "output 7 unrolled + SVG": []}
    for _ in range(repeat):
        t = time.perf_counter()
        g = build()
        parts["flowgraph"].append(time.perf_counter() - t)
        t = time.perf_counter()
        g = annotate(g, "unit")
        parts["bounds"].append(time.perf_counter() - t)
        t = time.perf_counter()
        svg = channel_figure(g).to_svg()
        parts["channel view + SVG"].append(time.perf_counter() - t)
        t = time.perf_counter()
        svg7 = unrolled_figure(g, output=7).to_svg()
        parts["output 7 unrolled + SVG"].append(time.perf_counter() - t)
    total = sum(statistics.median(v) for v in parts.values())
    st = analyse(g)
    print(f"graph: {g!r}; output 7: {st.per_output[7][1]} vertices, {st.per_output[7][2]} edges; "
          f"SVG {len(svg) // 1024} KB + {len(svg7) // 1024} KB")
    for k, v in parts.items():
        print(f"  {k:26s} {1000 * statistics.median(v):8.1f} ms")
    print(f"  {'total':26s} {1000 * total:8.1f} ms (target <= 1000 ms)")


def bench_viewer(build, repeat: int, label: str, run_page=None) -> None:
    """``run_page(path)``: write the page to measure (the run's page, every round on its slider);
    default: a one-round page of ``build()`` with 20 test images."""
    from playwright.sync_api import sync_playwright

    from sparsescope.analysis import analyse
    from sparsescope.bounds import annotate
    from sparsescope.data import load
    from sparsescope.viewer._convpage import write_conv_page

    g = annotate(build(), "unit")
    data = load("mnist5k")
    pick = np.linspace(0, len(data.x_test) - 1, 20).round().astype(int)
    st = analyse(g)
    biggest = max(range(g.output.size), key=lambda k: st.per_output[k][2])
    with tempfile.TemporaryDirectory() as tmp:
        if run_page is not None:
            path = run_page(Path(tmp) / "v.html")
        else:
            path = write_conv_page(Path(tmp) / "v.html", g, [], samples_x=data.x_test[pick].astype(np.float64),
                                   samples_y=data.y_test[pick], title="bench")
        size = path.stat().st_size
        switch: list[float] = []
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            first, frames = [], {"channels": [], f"unrolled out.{biggest}": [], "unrolled all": []}
            intervals: dict[str, list[float]] = {k: [] for k in frames}
            full: dict[str, list[float]] = {k: [] for k in frames}
            drawn = {}
            for _ in range(repeat):
                page = b.new_page(viewport={"width": 1400, "height": 900})
                page.goto(path.as_uri())
                end = time.monotonic() + 60
                while not page.evaluate("!!(window.sparsescope && window.sparsescope.firstFrameMs)"):
                    if time.monotonic() > end:
                        raise TimeoutError("page did not render")
                    time.sleep(0.02)
                first.append(page.evaluate("sparsescope.firstFrameMs"))
                for key, opts in (("channels", "{view: 'channels', output: null}"),
                                  (f"unrolled out.{biggest}", f"{{view: 'unrolled', output: {biggest}}}"),
                                  ("unrolled all", "{view: 'unrolled', output: null}")):
                    page.evaluate(f"sparsescope.set({opts})")
                    page.evaluate("sparsescope.benchPanZoom(5)")
                    frames[key].append(page.evaluate("sparsescope.benchPanZoom(30)"))
                    intervals[key].append(page.evaluate("sparsescope.benchFrames(30, false)"))
                    full[key].append(page.evaluate("sparsescope.benchFrames(20, true)"))
                    drawn[key] = page.evaluate("sparsescope.drawn()")
                if run_page is not None:  # the round slider: unroll and show the densest round, then back
                    while not page.evaluate("sparsescope.ready"):
                        time.sleep(0.02)
                    page.evaluate("sparsescope.set({view: 'channels', output: null})")
                    for r in (page.evaluate("sparsescope.slider()")[0], page.evaluate("sparsescope.slider()")[-1]):
                        switch.append(page.evaluate(f"(() => {{ const t = performance.now(); sparsescope.set({{round: {r}}}); "
                                                    f"return performance.now() - t; }})()"))
                page.close()
            b.close()
    print(f"viewer ({label}): page {size / 1e6:.2f} MB (target <= 3 MB); first render {statistics.median(first):.0f} ms "
          "(navigation start to first frame; target <= 1500 ms)")
    if switch:
        print(f"  round slider: {max(switch):.0f} ms worst switch (to the densest round, unrolled in the page), "
              f"{min(switch):.0f} ms best")
    for k, v in frames.items():
        print(f"  pan/zoom {k:22s} {statistics.median(intervals[k]):6.1f} ms/frame while moving (target <= 33; 16.7 is "
              f"the 60 Hz cap), {statistics.median(full[k]):6.1f} ms/frame full redraw, {statistics.median(v):5.1f} ms in the "
              "draw call "
              f"[{drawn[k]['cards']} cards, {drawn[k]['lines']} lines, {drawn[k]['curves']} channel curves]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["train", "graph", "viewer"], default=None)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--run", default=None)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--dense-round", type=int, default=None, help="also benchmark the viewer on this round of --run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--autograd", action="store_true", help="also time the autograd training path")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("(one thread; the machine may be shared: compare each figure with the floor printed beside it)")
    build = pruned_graph(args.run, args.runs_dir)
    if args.only in (None, "graph"):
        bench_graph(build, args.repeat)
    if args.only in (None, "viewer"):
        run_page = None
        if args.run is not None:
            from sparsescope.runs import resolve_run
            from sparsescope.viewer import write_run_page

            store = resolve_run(args.run, args.runs_dir)
            run_page = lambda path: write_run_page(store, path)  # noqa: E731  (100 test images, every round)
        bench_viewer(build, max(1, args.repeat // 2), "pruned CNN" + (" run page, all rounds" if run_page else ""), run_page)
        if args.run is not None and args.dense_round is not None:
            bench_viewer(pruned_graph(args.run, args.runs_dir, args.dense_round), 1, f"round {args.dense_round}")
    if args.only in (None, "train"):
        bench_train(args.dataset, args.autograd)


if __name__ == "__main__":
    main()
