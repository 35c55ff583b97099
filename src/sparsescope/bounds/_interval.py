"""Interval bounds of every node of a flowgraph over an input box.

Interval arithmetic in centre-radius form: for an affine node with source
intervals of centre ``c`` and radius ``r``, the sum lies in
``W c + b +- (|W| r + slack)``.  ``slack`` is a rigorous bound on the
floating-point rounding of that computation (``(n + 2) * eps * sum|terms|``,
with ``eps`` of the dtype the model is evaluated in), added everywhere except
for a zero-width box evaluated in float64.  (A node whose sources are all
points inside a wider box still rounds: in float32, or in another summation
order, e.g. torch's.)  So:

* the bounds contain every value the network computes for inputs in the box
  (exact arithmetic, float64, or float32 when ``eval_dtype=float32``);
* a zero-width box gives ``lo == hi ==`` exactly what :func:`evaluate` gives,
  because the centre path is the same arithmetic.
"""

from __future__ import annotations

import numpy as np

from .._errors import GraphError
from ..graph import Bounds, Flowgraph
from ..graph._eval import affine, apply_activation, flatten_inputs, layer_matrix


def unit_box(graph: Flowgraph) -> tuple[np.ndarray, np.ndarray]:
    """Every input in [0, 1]: ``(lo, hi)``, each float64 ``(n_in,)``."""
    n = graph.input.size
    return np.zeros(n), np.ones(n)


def data_box(graph: Flowgraph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-input min and max over a data set ``x`` ``(N, *input_shape)``."""
    flat = flatten_inputs(graph, x).astype(np.float64)
    if flat.shape[0] == 0:
        raise GraphError("cannot take a data box of zero samples")
    return flat.min(axis=0), flat.max(axis=0)


def interval_bounds(
    graph: Flowgraph,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    box: str = "custom",
    eval_dtype: type = np.float64,
) -> Bounds:
    """Bounds of every node when each input ``i`` ranges over ``[lo[i], hi[i]]``."""
    n = graph.input.size
    lo = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1)
    if lo.shape != (n,) or hi.shape != (n,):
        raise GraphError(f"input box must have {n} entries per side, got {lo.size} and {hi.size}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise GraphError("input box has NaN or infinite ends")
    if np.any(lo > hi):
        raise GraphError("input box has lo > hi")
    eps = float(np.finfo(eval_dtype).eps)
    # A zero-width box evaluated in float64 is the one case with no rounding
    # allowance: its bounds are exactly what evaluate() gives for that point.
    exact = np.array_equal(lo, hi) and np.dtype(eval_dtype) == np.float64
    name0 = graph.input.name
    out_lo, out_hi = {name0: lo.copy()}, {name0: hi.copy()}
    pre_lo, pre_hi = {name0: lo.copy()}, {name0: hi.copy()}
    sizes = {name0: n}
    for layer in graph.layers[1:]:
        slo, shi = out_lo[layer.source], out_hi[layer.source]
        w = layer_matrix(layer, sizes[layer.source])
        aw = abs(w)
        point = slo == shi
        c = np.where(point, slo, (slo + shi) / 2)
        r = np.where(point, 0.0, (shi - slo) / 2)
        zc = affine(w, c[None, :])[0] + layer.bias  # evaluate()'s arithmetic on a batch of one
        zr = affine(aw, r[None, :])[0]
        fan_in = np.bincount(layer.dst, minlength=layer.size)
        # Rounding: of the float sum (model side, eval_dtype) and of this
        # centre/radius computation (float64); both bounded by gamma * sum|terms|.
        mag = affine(aw, (np.abs(c) + r)[None, :])[0] + np.abs(layer.bias)
        gamma = (fan_in + 2) * eps + 4 * (fan_in + 2) * np.finfo(np.float64).eps
        slack = 0.0 if exact else gamma * mag + zr * 4 * np.finfo(np.float64).eps
        # a node with no incoming edge is its bias, exactly, in any arithmetic
        slack = np.where(fan_in == 0, 0.0, slack)
        zlo, zhi = zc - zr - slack, zc + zr + slack
        pre_lo[layer.name], pre_hi[layer.name] = zlo, zhi
        out_lo[layer.name] = apply_activation(layer.activation, zlo)
        out_hi[layer.name] = apply_activation(layer.activation, zhi)
        sizes[layer.name] = layer.size
    return Bounds(box, out_lo, out_hi, pre_lo, pre_hi)


def annotate(
    graph: Flowgraph,
    box: str = "unit",
    *,
    data: np.ndarray | None = None,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    eval_dtype: type = np.float64,
) -> Flowgraph:
    """The flowgraph with bounds attached.

    ``box="unit"``: every input in [0, 1]; ``"data"``: per-input min/max of
    ``data``; ``"custom"``: the given ``lo``/``hi``.
    """
    if box == "unit":
        lo, hi = unit_box(graph)
    elif box == "data":
        if data is None:
            raise GraphError("box 'data' needs the training data")
        lo, hi = data_box(graph, data)
    elif box == "custom":
        if lo is None or hi is None:
            raise GraphError("box 'custom' needs lo and hi")
    else:
        raise GraphError(f"unknown box {box!r} (expected unit, data or custom)")
    return graph.with_bounds(interval_bounds(graph, lo, hi, box=box, eval_dtype=eval_dtype))
