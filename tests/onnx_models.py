"""Helpers for the interop tests: export torch models to ONNX, hand-build ONNX graphs, run the oracles."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

Tensor = torch.Tensor


def export(model: torch.nn.Module, example: Tensor, path: Path, *, dynamo: bool, dynamic_batch: bool = False) -> Path:
    """``torch.onnx.export`` with the legacy (``dynamo=False``) or the default (dynamo) exporter."""
    kw: dict = {}
    if dynamic_batch:
        if dynamo:
            kw["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
        else:
            kw["input_names"], kw["dynamic_axes"] = ["x"], {"x": {0: "batch"}}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=dynamo, **kw)
    return path


def torch_out(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The torch oracle: ``model(x)`` with no grad, flattened per sample."""
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    return y.reshape(y.shape[0], -1).numpy()


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    """The onnx package's reference evaluator on one sample at a time (the oracle for hand-built graphs)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    ev = ReferenceEvaluator(model)
    name = model.graph.input[0].name
    return np.stack([np.asarray(ev.run(None, {name: xi[None]})[0]).reshape(-1) for xi in x])


def onnx_model(nodes, inits: dict[str, np.ndarray], in_shape, *, opset: int = 17, dtype=None, out_name="y",
               extra_inputs=(), extra_outputs=()):
    """A one-input, one-output ModelProto from nodes and numpy initializers."""
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.DOUBLE if dtype in (None, np.float64) else TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", elem, list(in_shape))
    y = helper.make_tensor_value_info(out_name, elem, None)
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, "g", [x, *extra_inputs], [y, *extra_outputs], tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def node(op: str, inputs, outputs, name: str | None = None, **attrs):
    from onnx import helper

    return helper.make_node(op, list(inputs), list(outputs), name=name or f"{op.lower()}_{outputs[0]}", **attrs)
