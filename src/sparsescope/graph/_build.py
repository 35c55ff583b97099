"""Build a flowgraph from arrays (``from_torch`` forwards to ``sparsescope.interop``; convolutions unroll in ``_conv``)."""

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
    input_shape: Sequence[int] | None = None,
    *,
    output_labels: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Flowgraph:
    """The flowgraph of a torch ``nn.Sequential``: :func:`sparsescope.interop.from_torch`
    (this name is kept for callers of ``sparsescope.graph``; the reader lives with the other importers)."""
    from ..interop import from_torch as read_torch

    return read_torch(model, input_shape, output_labels=output_labels, meta=meta)
