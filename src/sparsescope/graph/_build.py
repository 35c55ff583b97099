"""Build a flowgraph from arrays or a torch model (convolutions unroll in ``_conv``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._errors import GraphError
from ._conv import from_steps
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
    """Read an ``nn.Sequential`` of ``Conv2d``/``AvgPool2d``/``Flatten``/``Linear``/``ReLU``/``Identity``.

    The model is only read (its weights are copied out as float64).  Layers
    are named ``c1``.. (conv), ``p1``.. (pool), ``h1``.. (linear) and the last
    one ``out``.  Conv2d must be square with one stride and padding, no
    groups or dilation, zero padding mode; AvgPool2d without padding or
    ceil mode.  Any other module raises :class:`GraphError` naming it.
    """
    import torch.nn as nn

    steps: list[dict[str, Any]] = []
    count = {"c": 0, "p": 0, "h": 0}
    modules = list(model.children()) if isinstance(model, nn.Sequential) else [model]

    def add(kind: str, prefix: str, **kw: Any) -> None:
        count[prefix] += 1
        steps.append({"kind": kind, "name": f"{prefix}{count[prefix]}", "activation": "identity", **kw})

    def arr(t: Any) -> np.ndarray:
        return t.detach().cpu().double().numpy().copy()

    for m in modules:
        if isinstance(m, nn.Linear):
            add("linear", "h", weight=arr(m.weight),
                bias=np.zeros(m.out_features) if m.bias is None else arr(m.bias))
        elif isinstance(m, nn.Conv2d):
            k, s, p = m.kernel_size, m.stride, m.padding
            if (isinstance(p, str) or k[0] != k[1] or s[0] != s[1] or p[0] != p[1] or m.groups != 1
                    or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros"):
                raise GraphError("Conv2d must have a square kernel, one stride and padding, no groups or dilation, "
                                 "and zero padding")
            add("conv", "c", weight=arr(m.weight), stride=int(s[0]), padding=int(p[0]),
                bias=np.zeros(m.out_channels) if m.bias is None else arr(m.bias))
        elif isinstance(m, nn.AvgPool2d):
            k, s = m.kernel_size, m.stride if m.stride is not None else m.kernel_size
            k = k if isinstance(k, int) else k[0] if k[0] == k[1] else None
            s = s if isinstance(s, int) else s[0] if s[0] == s[1] else None
            if k is None or s is None or m.padding not in (0, (0, 0)) or m.ceil_mode or m.divisor_override:
                raise GraphError("AvgPool2d must have a square kernel and stride, no padding, ceil mode or divisor")
            add("avgpool", "p", kernel=int(k), stride=int(s))
        elif isinstance(m, nn.ReLU):
            if not steps or steps[-1]["activation"] != "identity":
                raise GraphError("ReLU must follow a Linear, Conv2d or AvgPool2d layer")
            steps[-1]["activation"] = "relu"
        elif isinstance(m, nn.Flatten):
            if steps and steps[-1]["kind"] == "linear":
                raise GraphError("Flatten is only supported before the first Linear layer or after Conv2d/AvgPool2d")
            # a Linear reads its source's nodes in row-major order, as Flatten leaves them
        elif isinstance(m, nn.Identity):
            pass
        else:
            raise GraphError(f"unknown layer type {type(m).__name__}: the flowgraph supports "
                             "Linear, Conv2d, AvgPool2d, ReLU, Flatten")
    if not steps:
        raise GraphError("the model has no Linear or Conv2d layer")
    steps[-1]["name"] = "out"
    return from_steps(steps, input_shape, output_labels=output_labels, meta=meta)
