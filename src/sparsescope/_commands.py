"""The bodies of the CLI commands: each turns parsed options into one API call."""

from __future__ import annotations

import argparse
import sys

from pathlib import Path

from ._atomic import write_bytes, write_text
from ._errors import SparsescopeError
from ._untrusted import check_name, term


_TORCH = ("torch", "safetensors.torch")  # numpy comes with torch
_START_UP = {  # command -> what its work imports, loaded while Ctrl-C is held (sparsescope._interrupt)
    "runs": ("sparsescope.runs",),
    "show": ("sparsescope.runs",),
    "run": _TORCH + ("sparsescope._config", "sparsescope._progress", "sparsescope.runs._lottery"),
    "control": _TORCH + ("sparsescope._progress", "sparsescope.runs._lottery"),
    "graph": _TORCH + ("PIL.Image", "sparsescope.runs", "sparsescope.render", "sparsescope.interop"),
    "report": _TORCH + ("PIL.Image", "matplotlib.figure", "sparsescope.runs._compare", "sparsescope.render"),
    "view": _TORCH + ("PIL.Image", "sparsescope.runs", "sparsescope.viewer"),
    "analyse": _TORCH + ("sparsescope.exact",),
    "sweep": _TORCH + ("sparsescope.study",),
    "study": _TORCH + ("sparsescope.study",),
    "search": _TORCH + ("sparsescope.study", "sparsescope.study._search"),
}


def start_up(args: argparse.Namespace) -> None:
    """Check what is cheap to check, then import what ``args.command`` needs, C extensions first;
    ``cli.main`` calls it with Ctrl-C held.

    An interrupt inside torch's or numpy's initialisers can leave them
    half-imported or abort the process; here none can arrive.  A mistyped
    run, config or ``-o`` is reported first, without waiting for torch.  A
    module that is not installed is left for the command to report.
    """
    import importlib

    _cheap_checks(args)
    names = _START_UP.get(args.command, ())
    if getattr(args, "exact", False):
        names += ("highspy",)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _cheap_checks(args: argparse.Namespace) -> None:
    """The mistakes :func:`start_up` reports before the heavy imports: ``-o``, the run, the config."""
    if args.command in ("report", "study"):
        _outside_runs(args.out)
    elif args.command in ("graph", "view", "analyse", "search"):
        _check_out_file(args.out)
    if args.command in ("graph", "report", "view", "analyse", "control") and args.run:
        if args.command == "control" or not _model_file(args):
            from .runs import resolve_run

            resolve_run(args.run, args.runs_dir)
    elif args.command == "run":
        from ._config import load_config

        load_config(args.config)


def _default_name(stem: str, suffix: str = "") -> str:
    """An output name derived from a run (its id is checked on reading; checked again here):
    one path component, so it lands in the folder it is meant for and nowhere else."""
    return check_name("output name", stem, SparsescopeError, 200) + suffix


def _box_suffix(store, box: str | None) -> str:
    """``-BOX`` for an output name made over a box other than the run's default (``unit``, or ``env``
    for an RL run), else ``""``: a report or page over another box never overwrites the default's."""
    default = "env" if store.manifest()["data"].get("kind") == "env" else "unit"
    return "" if box in (None, default) else f"-{box}"


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
    runs = "" if args.runs_dir == "runs" else f" --runs-dir {args.runs_dir}"
    print("next:")
    print(f"  python3 -m sparsescope report {result.run_id}{runs}   # figures + statistics -> reports/{result.run_id}-rNNN/index.html")
    print(f"  python3 -m sparsescope view {result.run_id}{runs}     # one offline HTML page to explore every round")
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
            cells = [r.run_id, r.created, r.dataset, f"{r.rounds_done}/{r.rounds_planned} rounds", r.status, r.path]
        print("\t".join(term(c) for c in cells))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a run's round table and its controls."""
    from .runs import resolve_run, round_table

    store = resolve_run(args.run, args.runs_dir)
    m = store.manifest()
    print(f"run {term(m['run_id'])}  dataset {term(m['data']['name'])}  created {term(m['created'])}  "
          f"{len(store.finished_rounds())}/{m['rounds_planned']} rounds  {store.status()}")
    print(round_table(store.round_metrics()))
    controls = store.control_dirs()
    if controls:
        print("controls:")
        for c in controls:
            mt = store.read_metrics_at(c, f"control {c.name}")
            path = f"  path {mt['train_path']}" if "train_path" in mt else ""
            print(f"  {term(c.name)}: density {100 * mt['density']:.2f}%  {_score(mt)}{path}")
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


def _model_file(args: argparse.Namespace) -> bool:
    """RUN names a model file (graph/report/view then go to _model_commands); else check run-only options."""
    from .interop import is_model_file

    if is_model_file(args.run):
        return True
    if args.box not in (None, "unit", "data", "env") and not (args.command == "analyse" and args.box.startswith("ball:")):
        raise SparsescopeError(f"--box {args.box}: a run takes unit, data or env (LO,HI and data:FILE.npy are for model files)")
    if args.labels is not None:
        raise SparsescopeError("--labels applies to model files; a run's labels come from its dataset")
    return False


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

        import numpy as np

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
    return data, data.x_test[index].astype("float64")


FORMATS = ("svg", "png", "json")


def _graph_format(out: str | None, given: str | None) -> str:
    """The figure format: from ``-o``'s extension; ``--format`` may only agree with it."""
    ext = Path(out).suffix.lower().lstrip(".") if out and out != "-" else ""
    if ext in FORMATS:
        if given is not None and given != ext:
            raise SparsescopeError(f"--format {given} contradicts -o {out} (a .{ext} file); give one or make them agree")
        return ext
    if given is None and ext:
        raise SparsescopeError(f"cannot tell the format from -o {out}: give --format svg, png or json")
    return given or "svg"


def _check_out_file(out: str | None) -> None:
    """``-o FILE`` must name a file we can create, checked before any work: not a folder, under
    folders (a file where a folder should be would only show after minutes of work), and not
    inside a run folder (:func:`_outside_runs`)."""
    if not out or out == "-":
        return
    path = Path(out)
    if path.is_dir():
        raise SparsescopeError(f"-o {out} is a folder: give a file name (e.g. {out.rstrip('/')}/NAME{path.suffix or '.EXT'})")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise SparsescopeError(f"-o {out}: {parent} is not a folder")
            break
    _outside_runs(out)


def _outside_runs(out: str | None) -> None:
    """An output (file or report folder) never goes inside a run folder: a finished round's
    metrics.json replaced by a figure would make the run corrupt for every command."""
    if not out or out == "-":
        return
    for parent in Path(out).resolve().parents:
        if (parent / "manifest.json").is_file():
            raise SparsescopeError(f"-o {out} is inside the run folder {parent}: write it elsewhere "
                                   "(a run's files are never replaced)")


def _write_out(out: str, data: str | bytes) -> None:
    """Write ``data`` atomically to ``out``, or to standard output when ``out`` is ``-``."""
    if out == "-":
        if isinstance(data, str):
            sys.stdout.write(data)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
    elif isinstance(data, str):
        write_text(Path(out), data)
    else:
        write_bytes(Path(out), data)


def cmd_graph(args: argparse.Namespace) -> int:
    """Write one flowgraph figure (svg/png) or the flowgraph JSON."""
    _check_out_file(args.out)
    if _model_file(args):
        from ._model_commands import model_graph

        return model_graph(args)
    store, graph = _round_graph(args, args.box)

    def sample(i: int):
        data, x = _test_image(store, i, args.round)
        classes, y = graph.output.labels, int(data.y_test[i])
        return x, classes[y] if classes and 0 <= y < len(classes) else str(y)

    return write_graph(args, graph, _default_name(f"{graph.meta['run']}-r{graph.meta['round']:03d}"), sample)


def write_graph(args: argparse.Namespace, graph, stem: str, sample) -> int:
    """``graph``'s body for a run or a model file: write ``graph`` (or ``--output``'s subgraph) as
    svg/png/json to ``-o`` or ``STEM[-outK][-inI].FORMAT``; ``sample(i)`` is the ``--input i`` sample and
    its label, ``(x, label or None)``."""
    from .graph import to_json

    args.format = _graph_format(args.out, args.format)
    if args.input is not None and args.format == "json":
        raise SparsescopeError("--input applies to svg and png figures; the JSON holds the graph itself")
    if args.output is not None and not 0 <= args.output < graph.output.size:
        raise SparsescopeError(f"--output {args.output} is out of range: the model has {graph.output.size} outputs")
    stem += (f"-out{args.output}" if args.output is not None else "") + (
        f"-in{args.input}" if args.input is not None else "")
    out = args.out or f"{stem}.{args.format}"
    if args.format == "json":
        g = graph
        if args.output is not None:
            from .analysis import subgraph

            g = subgraph(graph, args.output).with_bounds(graph.bounds)
        _write_out(out, to_json(g))
    else:
        from .render import graph_figure

        x, where = None, {}
        if args.input is not None:
            x, label = sample(args.input)
            where = {"input_index": args.input, "input_label": label}
        from .render._convfig import channel_figure, is_conv_graph

        if is_conv_graph(graph):  # feature maps: the channel-level view (of one output's subgraph with --output)
            scene = channel_figure(graph, output=args.output, x=x, title=f"{graph.meta.get('run', '')} round "
                                   f"{graph.meta.get('round', '')}")
        else:
            scene = graph_figure(graph, output=args.output, x=x, shared_scale=args.shared_scale,
                                 off="hide" if args.hide_off else "mark", **where)
        _write_out(out, scene.to_svg() if args.format == "svg" else scene.to_png())
    if out != "-":
        print(term(out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report folder of a round."""
    _outside_runs(args.out)
    if _model_file(args):
        from ._model_commands import model_report

        return model_report(args)
    from .render import write_report

    if args.out == "-":
        raise SparsescopeError("report writes a folder (index.html and figures); -o - is only for graph and view")
    store, graph = _round_graph(args, args.box)
    data, _ = _test_image(store, args.input, args.round)
    rnd = graph.meta["round"]
    box = _box_suffix(store, args.box)
    out = Path(args.out or Path("reports") / _default_name(f"{graph.meta['run']}-r{rnd:03d}{box}"))
    comparison = None
    if getattr(args, "compare", None):
        from .runs import compare_at_matched_accuracy, resolve_run

        comparison = compare_at_matched_accuracy(graph, resolve_run(args.compare, args.runs_dir))
    exact = None
    if getattr(args, "exact", False):  # the exact analysis over the same box; its bounds are tighter
        from .exact import Box, analyse_box

        name0 = graph.input.name
        b = Box(graph.bounds.box, graph.bounds.lo[name0], graph.bounds.hi[name0])  # the box the bounds are over
        exact = analyse_box(graph.with_bounds(None), b, exact=True)
        graph = exact.graph
        out = out.with_name(out.name + "-exact") if not args.out else out
    index = write_report(out, graph, rounds=store.round_metrics(), samples_x=data.x_test.astype("float64"),
                         samples_y=data.y_test, sample_index=args.input,
                         title=f"{graph.meta['run']} round {rnd}", comparison=comparison, exact=exact)
    print(term(index))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    """Write the single-file interactive viewer."""
    _check_out_file(args.out)
    if _model_file(args):
        from ._model_commands import model_view

        return model_view(args)
    from .runs import resolve_run
    from .viewer import write_run_page

    store = resolve_run(args.run, args.runs_dir)
    rnd = store.finished_rounds()[-1] if args.round is None and store.finished_rounds() else args.round
    if args.out == "-":  # the page goes through a private temporary file, then to stdout
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            page = write_run_page(store, Path(tmp) / "page.html", round_index=args.round, box=args.box,
                                  samples=args.samples, rounds=getattr(args, "rounds", None),
                                  exact=getattr(args, "exact", False))
            _write_out("-", page.read_bytes())
        return 0
    exact = "-exact" if getattr(args, "exact", False) else ""  # an --exact page never replaces the plain page (as report)
    box = _box_suffix(store, args.box)
    out = Path(args.out or _default_name(f"{store.manifest()['run_id']}-r{rnd if rnd is not None else 0:03d}{box}{exact}",
                                         ".html"))
    print(term(write_run_page(store, out, round_index=args.round, box=args.box, samples=args.samples,
                              rounds=getattr(args, "rounds", None), exact=getattr(args, "exact", False))))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every missing round and control of a sweep."""
    from ._checks import need_int
    from .study import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    if args.workers is not None:
        need_int("--workers", args.workers, 1, 1024)
    note = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    res = run_sweep(sweep, args.runs_dir, executor=args.executor, workers=args.workers, note=note)
    print(f"sweep {sweep.name}: {len(res.runs)} runs, {res.trained} trainings (rounds and controls) in "
          f"{res.tasks} tasks, {res.skipped} already done, {res.wall_seconds:.1f} s wall")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """Write the study report of a sweep and print its finding."""
    import json

    from .study import load_sweep, write_study

    _outside_runs(args.out)
    sweep = load_sweep(args.sweep)
    out = Path(args.out or Path("reports") / f"study-{sweep.name}")
    index = write_study(sweep, args.runs_dir, out, floor=args.floor, measure=args.measure, executor=args.executor,
                        workers=args.workers)
    for line in json.loads((out / "finding.json").read_text())["finding_text"]:
        print(term(line))
    print(term(index))
    return 0


def cmd_analyse(args: argparse.Namespace) -> int:
    """Analyse a round over a box; text or JSON on standard output or -o FILE."""
    import json

    from .exact import analyse_run

    if not (args.time_limit > 0):
        raise SparsescopeError(f"--time-limit must be > 0 seconds, got {args.time_limit}")
    if args.check is not None or args.prove:
        return _analyse_check(args)
    _check_out_file(args.out)
    ext = {".json": "json", ".txt": "text"}.get(Path(args.out).suffix.lower()) if args.out and args.out != "-" else None
    if ext and args.format and args.format != ext:
        raise SparsescopeError(f"--format {args.format} contradicts -o {args.out}; give one or make them agree")
    fmt = ext or args.format or "text"
    if args.robust is not None or args.samples is not None:
        text = _analyse_robust(args, fmt)
    else:
        if _model_file(args):
            from ._model_commands import model_analyse

            a = model_analyse(args)
        else:
            a = analyse_run(args.run, args.runs_dir, round_index=args.round, box=args.box, exact=args.exact,
                            time_limit=args.time_limit)
        if fmt == "json":
            from .exact import analysis_dict, analysis_timing

            text = json.dumps(analysis_dict(a), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
            if analysis_timing(a):  # wall time is not in the JSON (byte-identical run to run)
                print(analysis_timing(a), file=sys.stderr)
        else:
            from .exact import analysis_text

            text = analysis_text(a)
    out = args.out or "-"
    _write_out(out, text + "\n")
    if out != "-":
        print(out)
    return 0


def _analyse_check(args: argparse.Namespace) -> int:
    """``analyse RUN --check FILE.json [--prove]``: replay the file's certificate on RUN's round."""
    from ._untrusted import read_json
    from .exact import CertificateError, check_certificate

    if args.check is None:
        raise SparsescopeError("--prove goes with --check FILE.json (the analysis whose certificate to prove)")
    given = [o for o, v in (("--exact", args.exact), ("--box", args.box), ("--robust", args.robust),
                            ("--samples", args.samples), ("-o", args.out), ("--format", args.format)) if v]
    if given:
        raise SparsescopeError(f"--check re-checks the box and facts FILE.json records; it takes no {given[0]}")
    doc = read_json(args.check, f"analysis {term(args.check)}", CertificateError, limit=1 << 28)
    if not isinstance(doc, dict) or doc.get("format") != "sparsescope.analysis":
        raise CertificateError(f"{term(args.check)} is not a sparsescope analysis JSON (analyse --exact --format json)")
    from .exact._certificate import meta_mismatch

    name = term(args.check)
    if not isinstance(doc.get("simplified"), dict):
        raise CertificateError(f"{name} has no certificate ('simplified': write it with analyse --exact --format json)")
    spec = doc.get("box", {}).get("spec") if isinstance(doc.get("box"), dict) else None
    if not isinstance(spec, str):
        raise CertificateError(f"{name} names no box ('box.spec')")
    if _model_file(args):
        from .interop import open_model

        if args.round is not None:
            raise SparsescopeError("--round applies to runs; a model file has one round")
        g = open_model(args.run, box=spec, labels=args.labels)
        graph = g.with_bounds(None)
        bad = meta_mismatch(graph, doc)
        if bad:
            raise CertificateError(f"{name} {bad}")
        box = (g.bounds.lo[g.input.name], g.bounds.hi[g.input.name])
    else:
        from .exact._box import make_box, parse_box
        from .runs import resolve_run, round_flowgraph, run_data

        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        rnd = args.round if args.round is not None else meta.get("round")
        if rnd is not None and not (isinstance(rnd, int) and not isinstance(rnd, bool)):
            raise CertificateError(f"{name}: meta.round is not a round number")
        store = resolve_run(args.run, args.runs_dir)
        graph = round_flowgraph(store, rnd).with_bounds(None)
        bad = meta_mismatch(graph, doc)  # another run or round: say so before any node error
        if bad:
            raise CertificateError(f"{name} {bad}")
        if spec in ("unit", "data", "env"):  # the box analyse_run uses (round_flowgraph's)
            g = round_flowgraph(store, rnd, box=spec)
            box = (g.bounds.lo[g.input.name], g.bounds.hi[g.input.name])
        else:
            try:
                parse_box(spec)
            except SparsescopeError:
                raise CertificateError(f"{name}: 'box.spec' {spec[:40]!r} is not a box") from None
            data = run_data(store)
            b = make_box(graph, spec, x_train=data.x_train, x_test=data.x_test, y_test=data.y_test)
            box = (b.lo, b.hi)
    print(check_certificate(graph, doc, box=box, prove=args.prove).summary())
    return 0


def _analyse_robust(args: argparse.Namespace, fmt: str) -> str:
    """``analyse RUN --robust EPS [--samples LIST]``: exact adversarial accuracy, as text or JSON."""
    import json

    from .exact import robust_dict, robust_run, robust_text

    if args.robust is None:
        raise SparsescopeError("--samples goes with --robust EPS (the images whose balls to decide)")
    if args.box not in (None, "unit"):
        raise SparsescopeError(f"--robust puts an L-inf ball around each --samples image; it cannot take --box {args.box}")
    if _model_file(args):
        raise SparsescopeError("--robust needs a run (its labelled test set), not a model file")
    samples = data = None
    if args.samples is not None:
        from .runs import resolve_run, run_data
        from .viewer._run import parse_samples

        data = run_data(resolve_run(args.run, args.runs_dir))
        samples = parse_samples(args.samples, len(data.x_test))
    graph, acc = robust_run(args.run, args.runs_dir, eps=args.robust, round_index=args.round, samples=samples,
                            time_limit=args.time_limit, data=data)
    if fmt == "json":  # wall time goes to standard error: the JSON is byte-identical run to run
        print(f"adversarial accuracy: {acc.solves} programs in {acc.seconds:.1f} s wall", file=sys.stderr)
        return json.dumps(robust_dict(graph, acc), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return robust_text(graph, acc)


def cmd_search(args: argparse.Namespace) -> int:
    """Search layerwise rates minimising a readability measure at an accuracy floor; write and print the result."""
    _check_out_file(args.out)
    import dataclasses
    import json

    from .study import load_sweep
    from .study._search import search_from_dict, search_schedule

    sweep = load_sweep(args.sweep)
    if not sweep.search:
        raise SparsescopeError(f"sweep {args.sweep} has no [search] table (rates = {{ layer = [rates to try] }})")
    floor = float(sweep.study.get("accuracy_floor", 0.9) if args.floor is None else args.floor)
    measure = args.measure or sweep.study.get("measure", "out_edges")
    note = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    res = search_schedule(sweep, search_from_dict(sweep.search), args.runs_dir, floor=floor, measure=measure,
                          executor=args.executor, workers=args.workers, note=note)
    out = Path(args.out or Path("reports") / f"search-{sweep.name}.json")
    doc = {"floor": floor, "measure": measure, **dataclasses.asdict(res)}
    write_text(out, json.dumps(doc, indent=1, sort_keys=True, default=str).replace("Infinity", "null") + "\n")
    if res.best is None:
        print(f"no candidate reaches test accuracy {floor} with every seed")
    else:
        b = res.best
        print(f"best rates {b['rates']}: {measure} {b['per_seed_best']:.1f} +- {b['per_seed_sd']:.1f} over "
              f"{b['seeds']} seeds at test accuracy >= {floor}")
    print(out)
    return 0
