"""Read an ONNX model file into a flowgraph: ``from_onnx(path)``.

The file is parsed with PyPI ``onnx`` (protobuf only: no onnx runtime, no
shape inference) and checked before anything is built:

* one float input whose axes are all fixed except the first (the batch
  axis: the flowgraph is the model on one sample, so it is taken as 1);
* a supported opset of the default domain;
* every tensor's declared shape matches the bytes it holds, sizes stay under
  :data:`~sparsescope.interop._chain.MAX_EDGES`;
* external data (``data_location = EXTERNAL``) is read only from a plain file
  inside the model's own folder -- a path that leaves it (``..``, absolute, a
  symlink out) is refused without being opened.

Then the nodes are walked in file order through the op table of
:mod:`._onnx_ops`; any op outside it is an error naming the op and the node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph
from ._chain import MAX_EDGES, Chain

MIN_OPSET = 7  # Gemm without broadcast flags, Dropout without is_test
MAX_FILE_BYTES = 2**31  # protobuf's own limit; larger models keep weights as external data
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16,
           11: np.float64}
_FLOAT_INPUTS = {1: "float32", 10: "float16", 11: "float64"}


class OnnxError(GraphError):
    """An ONNX file that cannot be read or holds something the flowgraph cannot express."""


@dataclass
class Data:
    """A tensor computed from the model input: a flat vector of one sample, in row-major order of ``shape``.

    ``shape`` is the ONNX shape with the batch axis taken as 1; ``used_by``
    names the node that consumed it (a chain has one consumer per tensor).
    """

    shape: tuple[int, ...]
    made_by: str
    used_by: str | None = None


def from_onnx(
    path: str | os.PathLike,
    *,
    input_labels: Sequence[str] | None = None,
    output_labels: Sequence[str] | None = None,
) -> Flowgraph:
    """The flowgraph of the ONNX model at ``path`` (no bounds; see :func:`sparsescope.bounds.annotate`).

    Layers are named ``h1``, ``h2`` ... (dense), ``c1`` ... (convolutions),
    ``p1`` ... (pooling), the last ``out``; ``meta["layers"]`` maps each to
    the ONNX nodes it came from.  Raises :class:`OnnxError` (a
    :class:`~sparsescope.GraphError`) naming the file and the node for a
    malformed file, an unsupported op, NaN weights or a shape mismatch.
    """
    path = Path(path)
    model = read_model(path)
    try:
        return _build(model, path, input_labels, output_labels)
    except GraphError as exc:
        raise type(exc)(f"{path.name}: {exc}") from None


def read_model(path: Path) -> Any:
    """The parsed ``ModelProto``, external data not loaded (see :func:`tensor`)."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        raise OnnxError(f"no model file {path}")
    if not path.is_file():
        raise OnnxError(f"{path} is not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise OnnxError(f"{path.name} is {size} bytes, more than an ONNX file can hold")
    if size == 0:
        raise OnnxError(f"{path.name} is empty")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, TypeError, UnicodeDecodeError) as exc:
        raise OnnxError(f"{path.name} is not a readable ONNX model (truncated or corrupt?): "
                        f"{type(exc).__name__}: {_one_line(exc)}") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxError(f"{path.name} is not an ONNX model with a graph (truncated or not ONNX?)")
    return model


def opset(model: Any) -> int:
    """The default-domain opset version, checked to be one this reader knows."""
    import onnx

    versions = {o.domain: o.version for o in model.opset_import}
    if "" not in versions and "ai.onnx" not in versions:
        raise OnnxError("the model imports no version of the standard ONNX operators (opset_import is empty)")
    v = int(versions.get("", versions.get("ai.onnx", 0)))
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= v <= newest:
        raise OnnxError(f"opset {v} is not supported (this reads opsets {MIN_OPSET} to {newest})")
    return v


def tensor(t: Any, folder: Path, what: str) -> np.ndarray:
    """A ``TensorProto`` as a numpy array, its declared shape checked against the data it holds.

    External data is read only from a regular file inside ``folder``.
    """
    from onnx import numpy_helper

    if t.data_type not in _DTYPES:
        raise OnnxError(f"{what} has element type {t.data_type}, not a plain number type this reader knows")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise OnnxError(f"{what} declares a negative dimension {dims}")
    count = 1
    for d in dims:
        count *= d
    if count > MAX_EDGES:
        raise OnnxError(f"{what} declares shape {dims} ({count} values), more than an import accepts")
    dtype = np.dtype(_DTYPES[t.data_type])
    if t.HasField("data_location") and t.data_location == 1:  # EXTERNAL
        raw = _external(t, folder, what, count * dtype.itemsize)
        arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    else:
        held = _held(t, dtype)
        if held != count:
            raise OnnxError(f"{what} declares shape {dims} ({count} values) but holds {held}")
        try:
            arr = numpy_helper.to_array(t)
        except Exception as exc:  # onnx raises assorted types for bad payloads
            raise OnnxError(f"{what} cannot be decoded: {type(exc).__name__}: {_one_line(exc)}") from None
    return np.asarray(arr).reshape(dims)


def _held(t: Any, dtype: np.dtype) -> int:
    if t.raw_data:
        if len(t.raw_data) % dtype.itemsize:
            return -1
        return len(t.raw_data) // dtype.itemsize
    for field in ("float_data", "int32_data", "int64_data", "double_data"):
        n = len(getattr(t, field))
        if n:
            return n
    return 0


def _external(t: Any, folder: Path, what: str, nbytes: int) -> bytes:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    if not loc:
        raise OnnxError(f"{what} is stored outside the file but names no location")
    rel = Path(loc)
    if rel.is_absolute() or ".." in rel.parts or loc.startswith(("/", "\\")) or "\\" in loc or ":" in loc:
        raise OnnxError(f"{what}: external data path {loc!r} leaves the model's folder; refusing to read it")
    base = folder.resolve()
    target = (base / rel).resolve()
    if base not in target.parents:
        raise OnnxError(f"{what}: external data path {loc!r} leaves the model's folder; refusing to read it")
    if not target.is_file():
        raise OnnxError(f"{what}: external data file {loc!r} is missing or not a file")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info.get("length", str(nbytes)))
    except ValueError:
        raise OnnxError(f"{what}: external data offset/length are not integers") from None
    if offset < 0 or length != nbytes:
        raise OnnxError(f"{what}: external data holds {length} bytes at offset {offset}, the shape needs {nbytes}")
    if offset + length > target.stat().st_size:
        raise OnnxError(f"{what}: external data file {loc!r} is shorter than offset + length")
    with open(target, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(length)
    if len(raw) != length:
        raise OnnxError(f"{what}: external data file {loc!r} ended early")
    return raw


def graph_input(model: Any) -> tuple[str, tuple[int, ...], str]:
    """The one model input that is not an initializer: ``(name, shape with batch 1, dtype name)``."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise OnnxError(f"the model has {len(inputs)} inputs ({names}); the flowgraph reads models with one")
    inp = inputs[0]
    tt = inp.type.tensor_type if inp.type.HasField("tensor_type") else None
    if tt is None or tt.elem_type not in _FLOAT_INPUTS:
        raise OnnxError(f"input {inp.name!r} is not a float tensor")
    if not tt.HasField("shape"):
        raise OnnxError(f"input {inp.name!r} has no declared shape; export with a fixed example input")
    dims = list(tt.shape.dim)
    if len(dims) < 2:
        raise OnnxError(f"input {inp.name!r} has rank {len(dims)}; export with a batch axis first")
    if dims[0].HasField("dim_value") and dims[0].dim_value > 1:
        raise OnnxError(f"input {inp.name!r} has a fixed batch of {dims[0].dim_value}; export it with batch size 1 "
                        "or a dynamic batch axis (the flowgraph is the model on one sample)")
    shape = [1]
    for k, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            label = d.dim_param if d.HasField("dim_param") else "?"
            raise OnnxError(f"input {inp.name!r} axis {k} has no fixed size ({label!r}); only the batch axis may vary")
        shape.append(int(d.dim_value))
    return inp.name, tuple(shape), _FLOAT_INPUTS[tt.elem_type]


def _build(model: Any, path: Path, input_labels, output_labels) -> Flowgraph:
    from ._onnx_ops import OPS, Context

    version = opset(model)
    g = model.graph
    if len(g.sparse_initializer):
        raise OnnxError("sparse initializers are not supported")
    name, shape, dtype = graph_input(model)
    chain = Chain(shape, origin=name)
    ctx = Context(chain=chain, opset=version, folder=path.parent)
    ctx.current = ctx.values[name] = Data(shape, made_by="input")
    for t in g.initializer:
        ctx.values[t.name] = tensor(t, path.parent, f"initializer {t.name!r}")
    for k, node in enumerate(g.node):
        label = f"node {node.name or '#' + str(k)!r} ({node.op_type})"
        if node.domain not in ("", "ai.onnx"):
            raise OnnxError(f"{label}: operator domain {node.domain!r} is not supported")
        rule = OPS.get(node.op_type)
        if rule is None:
            raise OnnxError(f"{label}: op {node.op_type} is not supported (the flowgraph reads "
                            f"{', '.join(sorted(OPS))})")
        try:
            rule(ctx, node)
        except GraphError as exc:
            raise OnnxError(f"{label}: {exc}") from None
    outputs = [o.name for o in g.output]
    if len(outputs) != 1:
        raise OnnxError(f"the model has {len(outputs)} outputs; the flowgraph reads models with one")
    out = ctx.values.get(outputs[0])
    if not isinstance(out, Data) or out is not ctx.current:
        raise OnnxError(f"output {outputs[0]!r} is not the last tensor computed from the input")
    producer = " ".join(s for s in (model.producer_name, model.producer_version) if s)
    meta = {"model": path.name, "format": "onnx", "opset": version, "input_dtype": dtype}
    if producer:
        meta["producer"] = producer
    return chain.finish(input_labels=input_labels, output_labels=output_labels, meta=meta)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")
