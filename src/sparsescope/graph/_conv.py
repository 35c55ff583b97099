"""Unrolling convolutions and average pools into flowgraph layers.

A conv layer with kernel ``W`` of shape ``(O, I, k, k)``, stride ``s`` and
zero padding ``p`` on an input map ``(I, H, W_in)`` becomes a layer of shape
``(O, OH, OW)``: node ``c1[o,y,x]`` is ``act(b[o] + sum W[o,i,ky,kx] *
src[i, y*s-p+ky, x*s-p+kx])`` over the kernel positions that fall inside the
input (padding contributes zeros, so it makes no edge).  Every edge records
the flat index of the kernel weight it came from (``weight_id``), so all uses
of one shared weight can be shown together.  A pruned (zero) kernel weight
makes no edge at any position.

An average pool is the same picture with every weight ``1/k**2`` (its
``weight_id`` indexes the ``(k, k)`` window).  Flatten needs no layer: a
linear layer after it takes the map's nodes in row-major order, as
``torch.nn.Flatten`` does.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import GraphError
from ._flowgraph import Flowgraph, Layer


def map_shape(layer: Layer) -> tuple[int, int, int]:
    """A layer's nodes as a ``(C, H, W)`` feature map (an ``(H, W)`` input is one channel)."""
    if len(layer.shape) == 3:
        return layer.shape  # type: ignore[return-value]
    if len(layer.shape) == 2:
        return (1, *layer.shape)
    raise GraphError(f"layer {layer.name} of shape {layer.shape} is not a feature map (C, H, W) or image (H, W), "
                     "as a conv or pool layer (Conv2d, AvgPool2d) needs")


def conv_edges(weight: np.ndarray, in_shape: tuple[int, int, int], stride: int, padding: int
               ) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unrolled edges of a conv kernel ``(O, I, k, k)`` on an ``(I, H, W)`` map.

    Returns ``(out_shape, dst, src, weight, weight_id)`` with one edge per
    nonzero kernel weight and output position whose input position lies
    inside the map.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise GraphError(f"conv kernel must be (out, in, k, k), got shape {weight.shape}")
    o_n, i_n, k, _ = weight.shape
    c, h, w = in_shape
    if i_n != c:
        raise GraphError(f"conv kernel takes {i_n} channels but its input has {c}")
    if stride < 1 or padding < 0 or h + 2 * padding < k or w + 2 * padding < k:
        raise GraphError(f"conv kernel {k} (stride {stride}, padding {padding}) does not fit a {h}x{w} input")
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    ids = np.flatnonzero(weight.reshape(-1))
    o, i, ky, kx = np.unravel_index(ids, weight.shape)
    ys, xs = np.divmod(np.arange(oh * ow), ow)
    iy = ys[None, :] * stride - padding + ky[:, None]  # (nnz, positions)
    ix = xs[None, :] * stride - padding + kx[:, None]
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    dst = (o[:, None] * (oh * ow) + ys[None, :] * ow + xs[None, :])[inside]
    src = (i[:, None] * (h * w) + iy * w + ix)[inside]
    tie = np.broadcast_to(ids[:, None], inside.shape)[inside]
    return (o_n, oh, ow), dst, src, weight.reshape(-1)[tie], tie


def conv_layer(name: str, source: Layer, weight: np.ndarray, bias: np.ndarray, *, stride: int = 1,
               padding: int = 0, activation: str = "identity") -> Layer:
    """The unrolled conv layer ``name`` reading ``source`` (see the module doc)."""
    weight = np.asarray(weight, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(weight)) or not np.all(np.isfinite(bias)):
        raise GraphError(f"layer {name}: weights or biases are NaN or infinite")
    if weight.ndim != 4 or bias.shape != (weight.shape[0],):
        raise GraphError(f"layer {name}: bias shape {bias.shape} does not match kernel {weight.shape}")
    shape, dst, src, w, tie = conv_edges(weight, map_shape(source), stride, padding)
    return Layer(name, "affine", shape, activation=activation, source=source.name, bias=np.repeat(bias, shape[1] * shape[2]),
                 dst=dst, src=src, weight=w, weight_id=tie, weight_shape=tuple(weight.shape))


def pool_edges(in_shape: tuple[int, int, int], kernel: int, stride: int
               ) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unrolled edges of an average pool (no padding) on a ``(C, H, W)`` map: ``(out_shape, dst, src,
    weight, window)``, every weight ``1/kernel**2``, ``window`` the flat ``(ky, kx)`` position in the window."""
    c = in_shape[0]
    ones = np.zeros((c, c, kernel, kernel))
    ones[np.arange(c), np.arange(c)] = 1.0 / (kernel * kernel)
    shape, dst, src, wt, tie = conv_edges(ones, in_shape, stride, 0)
    return shape, dst, src, wt, tie % (kernel * kernel)


def pool_layer(name: str, source: Layer, kernel: int, stride: int | None = None, *, activation: str = "identity") -> Layer:
    """An average pool (no padding) as an affine layer with weights ``1/kernel**2`` per channel."""
    stride = kernel if stride is None else stride
    shape, dst, src, wt, window = pool_edges(map_shape(source), kernel, stride)
    return Layer(name, "affine", shape, activation=activation, source=source.name, bias=np.zeros(int(np.prod(shape))),
                 dst=dst, src=src, weight=wt, weight_id=window, weight_shape=(kernel, kernel))


def dense_layer(name: str, source: Layer, weight: np.ndarray, bias: np.ndarray, *, activation: str = "identity",
                labels: Sequence[str] | None = None) -> Layer:
    """A dense layer ``(out, in)`` reading every node of ``source`` (flattened row-major)."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or w.shape[1] != source.size:
        raise GraphError(f"layer {name}: weight shape {w.shape} does not take {source.size} inputs")
    if b.shape != (w.shape[0],):
        raise GraphError(f"layer {name}: bias shape {b.shape} does not match {w.shape[0]} units")
    if not np.all(np.isfinite(w)) or not np.all(np.isfinite(b)):
        raise GraphError(f"layer {name}: weights or biases are NaN or infinite")
    dst, src = np.nonzero(w)
    return Layer(name, "affine", (w.shape[0],), activation=activation, source=source.name, bias=b, dst=dst, src=src,
                 weight=w[dst, src], labels=None if labels is None else tuple(labels))


def from_steps(steps: Sequence[Mapping[str, Any]], input_shape: Sequence[int], *,
               output_labels: Sequence[str] | None = None, meta: dict[str, Any] | None = None) -> Flowgraph:
    """A flowgraph from a list of steps, each a dict with ``kind`` and its arrays:

    * ``{"kind": "conv", "name", "weight" (O, I, k, k), "bias", "stride", "padding", "activation"}``
    * ``{"kind": "linear", "name", "weight" (out, in), "bias", "activation"}``
    * ``{"kind": "avgpool", "name", "kernel", "stride", "activation"}``

    ``input_shape`` is the input layer's shape (``(28, 28)`` or ``(C, H, W)``);
    ``output_labels`` name the last layer's nodes.
    """
    if not steps:
        raise GraphError("need at least one layer")
    layers = [Layer("in", "input", tuple(input_shape))]
    for j, st in enumerate(steps):
        prev, last = layers[-1], j == len(steps) - 1
        act = st.get("activation", "identity")
        kind = st["kind"]
        if kind == "conv":
            layer = conv_layer(st["name"], prev, st["weight"], st["bias"], stride=int(st.get("stride", 1)),
                               padding=int(st.get("padding", 0)), activation=act)
        elif kind == "avgpool":
            layer = pool_layer(st["name"], prev, int(st["kernel"]), st.get("stride"), activation=act)
        elif kind == "linear":
            layer = dense_layer(st["name"], prev, st["weight"], st["bias"], activation=act)
        else:
            raise GraphError(f"unknown layer kind {kind!r} (expected conv, linear or avgpool)")
        if last and output_labels is not None:
            if len(output_labels) != layer.size:
                raise GraphError(f"{len(output_labels)} output labels for {layer.size} outputs")
            from dataclasses import replace

            layer = replace(layer, labels=tuple(output_labels))
        layers.append(layer)
    return Flowgraph(tuple(layers), meta=dict(meta or {}))


def spec_steps(spec: Any, params: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """The :func:`from_steps` list of a :class:`sparsescope.models.SequentialSpec` with
    ``params`` (``{name.weight, name.bias}`` as float64 numpy, pruned weights zeroed)."""
    steps: list[dict[str, Any]] = []
    for i, layer in enumerate(spec.layers):
        act = spec.activation_after(i)
        if layer.kind == "conv":
            steps.append({"kind": "conv", "name": layer.name, "weight": params[f"{layer.name}.weight"],
                          "bias": params[f"{layer.name}.bias"], "stride": layer.stride, "padding": layer.padding,
                          "activation": act})
        elif layer.kind == "linear":
            steps.append({"kind": "linear", "name": layer.name, "weight": params[f"{layer.name}.weight"],
                          "bias": params[f"{layer.name}.bias"], "activation": act})
        elif layer.kind == "avgpool":
            steps.append({"kind": "avgpool", "name": layer.name, "kernel": layer.kernel, "stride": layer.stride,
                          "activation": act})
    return steps
