"""The bodies of the CLI commands: each turns parsed options into one API call."""

from __future__ import annotations

import argparse
import sys

from pathlib import Path

import numpy as np

from ._atomic import write_bytes, write_text
from ._errors import SparsescopeError
from ._untrusted import check_name, term


def _default_name(stem: str, suffix: str = "") -> str:
    """An output name derived from a run (its id is checked on reading; checked again here):
    one path component, so it lands in the folder it is meant for and nowhere else."""
    return check_name("output name", stem, SparsescopeError, 200) + suffix


def cmd_run(args: argparse.Namespace) -> int:
    """Run or resume an experiment and print its round table."""
    import torch

    from ._config import load_config
    from ._progress import ProgressBar
    from .runs import round_table, run_experiment

    config = load_config(args.config)
    from ._resources import check_threads

    torch.set_num_threads(check_threads(config.train.threads))
    bar = None if args.quiet else ProgressBar()
    try:
        result = run_experiment(config, args.runs_dir, progress=bar)
    finally:
        if bar:
            bar.close()
    print(f"run {term(result.run_id)}: {term(result.path)}")
    print(round_table(result.rounds))
    trained = f"trained rounds {result.trained_now[0]}-{result.trained_now[-1]}" if result.trained_now else "all rounds were already finished"
    print(f"{trained}; training time {result.train_seconds:.2f}s")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, oldest first."""
    from .runs import list_runs

    runs = list_runs(args.runs_dir)
    if not runs:
        print(f"no runs under {term(args.runs_dir)}", file=sys.stderr)
    for r in runs:
        if r.error:
            cells = [r.run_id, f"(unreadable: {r.error})", r.path]
        else:
            cells = [r.run_id, r.created, r.dataset, f"{r.rounds_done}/{r.rounds_planned} rounds", r.path]
        print("\t".join(term(c) for c in cells))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a run's round table and its controls."""
    from .runs import resolve_run, round_table

    store = resolve_run(args.run, args.runs_dir)
    m = store.manifest()
    print(f"run {term(m['run_id'])}  dataset {term(m['data']['name'])}  created {term(m['created'])}  "
          f"{len(store.finished_rounds())}/{m['rounds_planned']} rounds")
    print(round_table(store.round_metrics()))
    controls = store.control_dirs()
    if controls:
        print("controls:")
        for c in controls:
            mt = store.read_round_at(c, f"control {c.name}").metrics
            print(f"  {term(c.name)}: density {100 * mt['density']:.2f}%  {_score(mt)}")
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    """Train one lottery-ticket control of a finished round."""
    from ._progress import ProgressBar
    from .runs import resolve_run, run_control

    store = resolve_run(args.run, args.runs_dir)
    bar = ProgressBar()
    try:
        mt = run_control(store.path, args.round, args.kind, seed=args.seed, progress=bar)
    finally:
        bar.close()
    print(f"control {args.kind} of round {args.round}: density {100 * mt['density']:.2f}%  "
          f"{_score(mt)}  (seed {mt['seed']})")
    return 0


def _score(mt: dict) -> str:
    """A round's score: test accuracy, or an RL round's greedy return and whether it solved."""
    if "eval_return" in mt:
        return f"greedy return {mt['eval_return']:.1f} ({'solved' if mt.get('solved') else 'NOT solved'})"
    return f"test acc {100 * mt['test_accuracy']:.1f}%"


def _round_graph(args: argparse.Namespace, box: str = "unit"):
    from .runs import resolve_run, round_flowgraph

    store = resolve_run(args.run, args.runs_dir)
    graph = round_flowgraph(store, args.round, box=box)
    return store, graph


def _test_image(store, index: int, round_index: int | None = None):
    """``(samples, x)``: the test set and test image ``index``; for an RL run, the states of the
    round's recorded greedy episode (labels: the actions taken) and its step ``index``."""
    from .runs import is_rl_manifest, run_data

    if is_rl_manifest(store.manifest()):
        from types import SimpleNamespace

        from .runs import round_episode

        rnd = store.finished_rounds()[-1] if round_index is None else round_index
        ep = round_episode(store, rnd)
        if not 0 <= index < ep["length"]:
            raise SparsescopeError(f"--input {index} is out of range: round {rnd}'s greedy episode has {ep['length']} steps")
        states = np.asarray(ep["states"], dtype=np.float32)
        data = SimpleNamespace(x_test=states, y_test=np.asarray(ep["actions"], dtype=np.int64))
        return data, states[index].astype(np.float64)
    data = run_data(store)
    if not 0 <= index < len(data.x_test):
        raise SparsescopeError(f"--input {index} is out of range: the test set has {len(data.x_test)} images")
    return data, data.x_test[index].astype(np.float64)


def cmd_graph(args: argparse.Namespace) -> int:
    """Write one flowgraph figure (svg/png) or the flowgraph JSON."""
    from .graph import to_json

    if args.input is not None and args.format == "json":
        raise SparsescopeError("--input applies to svg and png figures; the JSON holds the graph itself")
    store, graph = _round_graph(args, args.box)
    if args.output is not None and not 0 <= args.output < graph.output.size:
        raise SparsescopeError(f"--output {args.output} is out of range: the model has {graph.output.size} outputs")
    rnd = graph.meta["round"]
    stem = f"{graph.meta['run']}-r{rnd:03d}" + (f"-out{args.output}" if args.output is not None else "") + (
        f"-in{args.input}" if args.input is not None else "")
    out = Path(args.out or _default_name(stem, f".{args.format}"))
    if args.format == "json":
        g = graph
        if args.output is not None:
            from .analysis import subgraph

            g = subgraph(graph, args.output).with_bounds(graph.bounds)
        write_text(out, to_json(g))
    else:
        from .render import graph_figure

        x, where = None, {}
        if args.input is not None:
            data, x = _test_image(store, args.input, args.round)
            classes = graph.output.labels
            y = int(data.y_test[args.input])
            where = {"input_index": args.input, "input_label": classes[y] if classes and 0 <= y < len(classes) else str(y)}
        scene = graph_figure(graph, output=args.output, x=x, shared_scale=args.shared_scale,
                             off="hide" if args.hide_off else "mark", **where)
        if args.format == "svg":
            write_text(out, scene.to_svg())
        else:
            write_bytes(out, scene.to_png())
    print(term(out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report folder of a round."""
    from .render import write_report

    store, graph = _round_graph(args, args.box)
    data, _ = _test_image(store, args.input, args.round)
    rnd = graph.meta["round"]
    out = Path(args.out or Path("reports") / _default_name(f"{graph.meta['run']}-r{rnd:03d}"))
    index = write_report(out, graph, rounds=store.round_metrics(), samples_x=data.x_test.astype(np.float64),
                         samples_y=data.y_test, sample_index=args.input,
                         title=f"{graph.meta['run']} round {rnd}")
    print(term(index))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    """Write the single-file interactive viewer."""
    from .runs import resolve_run
    from .viewer import write_run_page

    store = resolve_run(args.run, args.runs_dir)
    rnd = store.finished_rounds()[-1] if args.round is None and store.finished_rounds() else args.round
    out = Path(args.out or _default_name(f"{store.manifest()['run_id']}-r{rnd if rnd is not None else 0:03d}", ".html"))
    print(term(write_run_page(store, out, round_index=args.round, box=args.box, samples=args.samples)))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every missing round and control of a sweep."""
    from ._checks import need_int
    from .study import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    if args.workers is not None:
        need_int("--workers", args.workers, 1, 1024)
    note = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    res = run_sweep(sweep, args.runs_dir, executor=args.executor, workers=args.workers, batched=args.batched, note=note)
    print(f"sweep {sweep.name}: {len(res.runs)} runs, {res.tasks} tasks run, {res.skipped} already done, "
          f"{res.wall_seconds:.1f} s wall")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """Write the study report of a sweep and print its finding."""
    import json

    from .study import load_sweep, write_study

    sweep = load_sweep(args.sweep)
    out = Path(args.out or Path("reports") / f"study-{sweep.name}")
    index = write_study(sweep, args.runs_dir, out, floor=args.floor, measure=args.measure, executor=args.executor,
                        workers=args.workers)
    for line in json.loads((out / "finding.json").read_text())["finding_text"]:
        print(term(line))
    print(term(index))
    return 0
