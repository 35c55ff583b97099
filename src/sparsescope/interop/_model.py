"""A model file as the CLI sees it: ``open_model(path, box=..., labels=...) -> ImportedModel``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph
from ._inputs import BoxSpec, annotate_box, check_labels, load_labels, load_samples, parse_box

MODEL_SUFFIXES = (".onnx",)
WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")


def is_model_file(name: str | os.PathLike) -> bool:
    """Whether a RUN argument names a model file (by its suffix) rather than a run."""
    return Path(name).suffix.lower() in MODEL_SUFFIXES + WEIGHT_SUFFIXES


@dataclass(frozen=True, eq=False)
class ImportedModel:
    """An imported model's flowgraph (with bounds over ``box``) and the user's samples, if any.

    ``samples``: float64 ``(N, n_in)`` from ``--box data:FILE.npy``, else ``None``.
    """

    graph: Flowgraph
    box: BoxSpec
    samples: np.ndarray | None
    stem: str


def open_model(path: str | os.PathLike, *, box: str | BoxSpec = "unit",
               labels: str | os.PathLike | None = None) -> ImportedModel:
    """Read a model file (ONNX), attach labels and bounds over ``box`` (see :func:`parse_box`)."""
    from ._onnx import from_onnx

    path = Path(path)
    spec = parse_box(box) if isinstance(box, str) else box
    suffix = path.suffix.lower()
    if suffix in WEIGHT_SUFFIXES:
        raise GraphError(f"{path.name} holds weights, not an architecture: load it in Python with "
                         "sparsescope.interop.from_torch(model, state_dict=PATH), or export the model to ONNX")
    if suffix not in MODEL_SUFFIXES:
        raise GraphError(f"{path.name}: a model file must be .onnx")
    ins, outs = load_labels(labels) if labels is not None else (None, None)
    graph = from_onnx(path)
    check_labels(graph, ins, outs)
    if ins is not None or outs is not None:
        graph = from_onnx(path, input_labels=ins, output_labels=outs)
    samples = load_samples(spec.path, graph) if spec.kind == "file" else None
    graph = annotate_box(graph, spec, samples=samples).with_meta(box=str(spec))
    return ImportedModel(graph, spec, samples, path.stem)
