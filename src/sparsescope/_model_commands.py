"""``graph``/``report``/``view``/``analyse`` on a model file (``MODEL.onnx``) instead of a run.

Each opens the model with :func:`sparsescope.interop.open_model` (labels,
bounds over ``--box``) and calls the same API a run's command calls.  The
samples a page or report shows are the rows of ``--box data:FILE.npy``;
their class labels there are the model's own predictions (a model file
carries no true labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._errors import SparsescopeError

MAX_PAGE_SAMPLES = 20


def _open(args: argparse.Namespace):
    from .interop import open_model

    if args.round is not None:
        raise SparsescopeError("--round applies to runs; a model file has one round")
    return open_model(args.run, box=args.box or "unit", labels=args.labels)


def _predictions(graph, x: np.ndarray) -> np.ndarray:
    from .graph import evaluate

    return np.argmax(evaluate(graph, x).post[graph.output.name], axis=1).astype(np.int64)


def _sample(model, index: int) -> np.ndarray:
    if model.samples is None:
        raise SparsescopeError("--input on a model file picks a row of --box data:FILE.npy; give that file")
    if not 0 <= index < len(model.samples):
        raise SparsescopeError(f"--input {index} is out of range: the data file has {len(model.samples)} samples")
    return model.samples[index]


def model_graph(args: argparse.Namespace) -> int:
    from ._commands import write_graph

    model = _open(args)
    return write_graph(args, model.graph, model.stem, lambda i: (_sample(model, i), None))


def model_report(args: argparse.Namespace) -> int:
    from .render import write_report

    model = _open(args)
    graph = model.graph
    if model.samples is not None:
        xs = model.samples
        _sample(model, args.input)
    else:  # no data: the centre of the box stands in as the one sample
        b = graph.bounds
        xs = ((b.lo[graph.input.name] + b.hi[graph.input.name]) / 2)[None]
        if args.input != 0:
            raise SparsescopeError("--input on a model file picks a row of --box data:FILE.npy; give that file")
    out = Path(args.out or Path("reports") / model.stem)
    index = write_report(out, graph, rounds=[], samples_x=xs, samples_y=_predictions(graph, xs),
                         sample_index=args.input, title=model.stem)
    print(index)
    return 0


def model_view(args: argparse.Namespace) -> int:
    from .viewer import write_graph_page

    model = _open(args)
    xs = ys = None
    if model.samples is not None:
        n = len(model.samples)
        pick = np.linspace(0, n - 1, min(MAX_PAGE_SAMPLES, n)).round().astype(int)
        xs = model.samples[pick]
        ys = _predictions(model.graph, xs)
    out = Path(args.out or f"{model.stem}.html")
    print(write_graph_page(out, model.graph, samples_x=xs, samples_y=ys, title=model.stem))
    return 0


def model_analyse(args: argparse.Namespace):
    """``analyse MODEL.onnx``: :func:`sparsescope.exact.analyse_box` over ``--box`` (unit, LO,HI or
    data:FILE.npy; a ball needs a run's test images)."""
    from .exact import analyse_box
    from .exact._box import Box

    if args.box and args.box.startswith("ball:"):
        raise SparsescopeError("--box ball:IMAGE:EPS needs a run's test images; for a model file give unit, LO,HI "
                               "or data:FILE.npy")
    model = _open(args)
    g = model.graph
    box = Box(g.bounds.box, g.bounds.lo[g.input.name], g.bounds.hi[g.input.name])
    g = g.with_bounds(None).with_meta(run=model.stem, round=0)  # a model file is one round
    return analyse_box(g, box, exact=args.exact, time_limit=args.time_limit)
