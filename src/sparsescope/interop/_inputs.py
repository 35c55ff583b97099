"""What a user brings beside a model: the input box, sample data and labels.

* ``--box unit`` (every input in [0, 1]), ``--box LO,HI`` (every input in
  [LO, HI]) or ``--box data:FILE.npy`` (the per-input min and max over the
  samples in FILE, an array ``(N, *input_shape)`` or ``(N, n_in)``);
* ``--labels FILE.json``: ``{"inputs": [...], "outputs": [...]}`` (either
  key may be left out), one string per input / output node.

Files are read safely: ``np.load(allow_pickle=False)``, plain JSON, size
limits; any problem is one :class:`~sparsescope.DataError` line.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._errors import DataError
from ..graph import Flowgraph
from ._chain import layer_shape

MAX_LABELS_BYTES = 4 << 20
MAX_LABEL_CHARS = 200


@dataclass(frozen=True)
class BoxSpec:
    """A parsed ``--box``: ``kind`` is ``"unit"``, ``"range"`` (``lo``/``hi``), ``"data"`` (the run's
    training data) or ``"file"`` (``path``: an ``.npy`` of samples)."""

    kind: str
    lo: float = 0.0
    hi: float = 1.0
    path: Path | None = None

    def __str__(self) -> str:
        if self.kind == "range":
            return f"{self.lo:g},{self.hi:g}"
        if self.kind == "file":
            return f"data:{self.path}"
        return self.kind


def parse_box(text: str) -> BoxSpec:
    """``"unit"``, ``"data"``, ``"LO,HI"`` or ``"data:FILE.npy"`` as a :class:`BoxSpec`."""
    t = str(text).strip()
    if t in ("unit", "data"):
        return BoxSpec(t)
    if t.startswith("data:"):
        if not t[5:]:
            raise DataError("--box data:FILE.npy needs a file name")
        return BoxSpec("file", path=Path(t[5:]))
    parts = t.split(",")
    if len(parts) == 2:
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            lo = hi = math.nan
        if math.isfinite(lo) and math.isfinite(hi):
            if lo > hi:
                raise DataError(f"--box {t}: lo is greater than hi")
            return BoxSpec("range", lo=lo, hi=hi)
    raise DataError(f"--box {t!r} is not unit, data, LO,HI or data:FILE.npy")


def load_samples(path: str | os.PathLike, graph: Flowgraph) -> np.ndarray:
    """Samples from an ``.npy`` file as float64 ``(N, n_in)``, checked: numeric, finite, fitting the input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no data file {path}")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode=None)
    except ValueError as exc:  # pickled object arrays land here
        raise DataError(f"{path.name} is not a plain numeric .npy file (pickled objects are refused): {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name} is not a readable .npy file: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path.name} holds an archive, not one array; save one array with np.save")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path.name} holds {arr.dtype} values, not numbers")
    n = graph.input.size
    shape = graph.input.shape
    if arr.ndim >= 2 and layer_shape(arr.shape[1:]) in (shape, (n,)):  # (N, 1, 28, 28) fits (28, 28)
        flat = arr.reshape(arr.shape[0], n)
    elif layer_shape(arr.shape) in (shape, (n,)):
        flat = arr.reshape(1, n)
    else:
        raise DataError(f"{path.name} holds shape {arr.shape}; the model's input is {shape}: "
                        f"expected (N, {', '.join(map(str, shape))}) or (N, {n})")
    if flat.shape[0] == 0:
        raise DataError(f"{path.name} holds no samples")
    flat = flat.astype(np.float64)
    if not np.all(np.isfinite(flat)):
        raise DataError(f"{path.name} has NaN or infinite values")
    return flat


def annotate_box(graph: Flowgraph, spec: BoxSpec | str, *, samples: np.ndarray | None = None) -> Flowgraph:
    """``graph`` with interval bounds over the box ``spec`` (``"data"`` needs ``samples``)."""
    from ..bounds import annotate

    spec = parse_box(spec) if isinstance(spec, str) else spec
    n = graph.input.size
    if spec.kind == "unit":
        return annotate(graph, "unit")
    if spec.kind == "range":
        return annotate(graph, "custom", lo=np.full(n, spec.lo), hi=np.full(n, spec.hi))
    if spec.kind == "file":
        samples = load_samples(spec.path, graph) if samples is None else samples
    if samples is None:
        raise DataError("--box data needs sample data: for a model file give --box data:FILE.npy")
    return annotate(graph, "data", data=samples)


def load_labels(path: str | os.PathLike) -> tuple[list[str] | None, list[str] | None]:
    """``(input_labels, output_labels)`` from a JSON file ``{"inputs": [...], "outputs": [...]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no labels file {path}")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise DataError(f"{path.name} is larger than {MAX_LABELS_BYTES} bytes; a labels file is small")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not doc or set(doc) - {"inputs", "outputs"}:
        raise DataError(f'{path.name} must be an object with "inputs" and/or "outputs" lists of strings')
    return _strings(doc.get("inputs"), path, "inputs"), _strings(doc.get("outputs"), path, "outputs")


def _strings(value: object, path: Path, key: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise DataError(f'{path.name}: "{key}" must be a list of strings')
    if any(len(s) > MAX_LABEL_CHARS for s in value):
        raise DataError(f'{path.name}: a label in "{key}" is longer than {MAX_LABEL_CHARS} characters')
    return list(value)


def check_labels(graph: Flowgraph, inputs: Sequence[str] | None, outputs: Sequence[str] | None) -> None:
    """One clear line when a labels file does not fit the model."""
    for what, labels, layer in (("inputs", inputs, graph.input), ("outputs", outputs, graph.output)):
        if labels is not None and len(labels) != layer.size:
            raise DataError(f'the labels file gives {len(labels)} "{what}" but the model has {layer.size}')
