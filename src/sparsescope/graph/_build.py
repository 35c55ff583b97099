"""Build a flowgraph from a torch model (the MLP now; new module kinds add a rule here)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._errors import GraphError
from ._flowgraph import Flowgraph, Layer


def from_arrays(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activations: Sequence[str],
    input_shape: Sequence[int],
    *,
    output_labels: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
    input_labels: Sequence[str] | None = None,
) -> Flowgraph:
    """A chain of affine layers: ``weights[i]`` is ``(out_i, in_i)`` like ``nn.Linear``.

    Zero weights (pruned or not) make no edge.  Layers are named ``h1``..``hK``
    and the last one ``out``; the input layer ``in`` has ``input_shape``.
    ``input_labels``/``output_labels`` name the input and output nodes (e.g.
    CartPole's state variables and actions).
    """
    if not (len(weights) == len(biases) == len(activations)) or not weights:
        raise GraphError("need one weight, bias and activation per layer")
    layers = [Layer("in", "input", tuple(input_shape), labels=None if input_labels is None else tuple(input_labels))]
    prev = layers[0]
    for i, (w, b, act) in enumerate(zip(weights, biases, activations)):
        w = np.asarray(w, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        last = i == len(weights) - 1
        name = "out" if last else f"h{i + 1}"
        if w.ndim != 2 or w.shape[1] != prev.size:
            raise GraphError(f"layer {name}: weight shape {w.shape} does not take {prev.size} inputs")
        if b.shape != (w.shape[0],):
            raise GraphError(f"layer {name}: bias shape {b.shape} does not match {w.shape[0]} units")
        if not np.all(np.isfinite(w)) or not np.all(np.isfinite(b)):
            raise GraphError(f"layer {name}: weights or biases are NaN or infinite")
        dst, src = np.nonzero(w)
        layer = Layer(
            name,
            "affine",
            (w.shape[0],),
            activation=act,
            source=prev.name,
            bias=b,
            dst=dst,
            src=src,
            weight=w[dst, src],
            labels=tuple(output_labels) if (last and output_labels is not None) else None,
        )
        layers.append(layer)
        prev = layer
    return Flowgraph(tuple(layers), meta=dict(meta or {}))


def from_torch(
    model: Any,
    input_shape: Sequence[int],
    *,
    output_labels: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Flowgraph:
    """Read an ``nn.Sequential`` of ``Flatten``/``Linear``/``ReLU``/``Identity`` modules.

    The model is only read (its weights are copied out as float64).  Any
    other module raises :class:`GraphError` naming it.
    """
    import torch.nn as nn

    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    acts: list[str] = []
    modules = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    for m in modules:
        if isinstance(m, nn.Linear):
            weights.append(m.weight.detach().cpu().double().numpy().copy())
            b = m.bias
            biases.append(np.zeros(m.out_features) if b is None else b.detach().cpu().double().numpy().copy())
            acts.append("identity")
        elif isinstance(m, nn.ReLU):
            if not acts or acts[-1] != "identity":
                raise GraphError("ReLU must follow a Linear layer")
            acts[-1] = "relu"
        elif isinstance(m, (nn.Flatten, nn.Identity)):
            if weights and isinstance(m, nn.Flatten):
                raise GraphError("Flatten is only supported before the first Linear layer")
        else:
            raise GraphError(f"unknown layer type {type(m).__name__}: the flowgraph supports Linear, ReLU, Flatten")
    if not weights:
        raise GraphError("the model has no Linear layer")
    return from_arrays(weights, biases, acts, input_shape, output_labels=output_labels, meta=meta)
