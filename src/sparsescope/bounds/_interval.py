"""Interval bounds of every node of a flowgraph over an input box.

Interval arithmetic in centre-radius form: for an affine node with source
intervals of centre ``c`` and radius ``r``, the sum lies in
``W c + b +- (|W| r + slack)``.  ``slack`` is a rigorous bound on
floating-point rounding (:func:`rounding_slack`), added everywhere except
for a zero-width box evaluated in float64.

Which evaluations the bounds cover (``eval_dtype``, the least precise float
type the network may be evaluated in):

* ``float32`` (the default): exact real arithmetic, and every IEEE float32 or
  float64 evaluation of the network -- the torch model as users run it
  (``model(x)`` in float32 on the CPU), :func:`evaluate` in either dtype --
  in **any summation order**, with or without fused multiply-add, with
  weights, biases and inputs rounded to float32 first, with gradual
  underflow or flush-to-zero.  The rounding error of one node's sum of ``k``
  nonzero terms (its edges and its bias) is at most
  ``gamma_{k+2} * (|b| + sum |w| |a|)`` with ``gamma_n = n u / (1 - n u)``
  (``u = 2**-24``; two extra roundings for the weight and the input), plus
  an absolute term for underflow; a pruned (zero) weight adds an exact zero
  and so costs nothing.  Each layer's interval contains every value the
  previous layer can compute, so the error propagates soundly.
* ``float64``: exact arithmetic and float64 evaluation only (``u = 2**-53``);
  tighter, and a zero-width box then gives ``lo == hi ==`` exactly what
  :func:`evaluate` gives, because the centre path is the same arithmetic.

Not covered: reduced-precision modes (bfloat16/float16/TF32 matmuls, e.g.
``torch.set_float32_matmul_precision("medium")`` on hardware that honours
it), and float32 overflow (bounds beyond ~3e38).  The arithmetic of the
bounds themselves is float64, its own rounding included in ``slack``.
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


def rounding_slack(fan_in: np.ndarray, mag: np.ndarray, src_mag: np.ndarray, eval_dtype: type) -> np.ndarray:
    """A rigorous bound on how far a computed affine sum can be from the exact one.

    ``fan_in`` (int ``(size,)``): nonzero weights per node; ``mag``
    (``(size,)``): an upper bound on ``|b| + sum |w| |a|`` over the box;
    ``src_mag`` (``(size,)``): an upper bound on ``sum |a|`` over the node's
    edges (for the underflow term).  Covers the model's evaluation in
    ``eval_dtype`` or any more precise type, in any summation order (see the
    module docstring).
    """
    info = np.finfo(eval_dtype)
    u = float(info.eps) / 2
    tiny = float(info.tiny)  # smallest normal: bounds a flush-to-zero or subnormal loss
    n = fan_in.astype(np.float64) + 3  # terms (edges + bias) + weight and input rounding
    nu = n * u
    if np.any(nu >= 0.5):
        raise GraphError(f"a node has {int(fan_in.max())} inputs: too many for a rounding bound in {np.dtype(eval_dtype).name}")
    gamma = nu / (1 - nu)
    return gamma * mag + tiny * (2 * n + src_mag)


def _pattern(w):
    """1.0 where ``w`` (dense or CSR, from ``layer_matrix``) has an edge, else 0."""
    if isinstance(w, np.ndarray):
        return (w != 0).astype(np.float64)
    ones = w.copy()
    ones.data = np.ones_like(ones.data)
    return ones


def interval_bounds(
    graph: Flowgraph,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    box: str = "custom",
    eval_dtype: type = np.float32,
) -> Bounds:
    """Bounds of every node when each input ``i`` ranges over ``[lo[i], hi[i]]``.

    ``eval_dtype``: the least precise float type the network may be evaluated
    in (``float32``: covers float32 and float64; ``float64``: float64 only).
    """
    n = graph.input.size
    lo = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1)
    if lo.shape != (n,) or hi.shape != (n,):
        raise GraphError(f"input box must have {n} entries per side, got {lo.size} and {hi.size}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise GraphError("input box has NaN or infinite ends")
    if np.any(lo > hi):
        raise GraphError("input box has lo > hi")
    if np.dtype(eval_dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise GraphError(f"eval_dtype must be float32 or float64, got {np.dtype(eval_dtype).name}")
    # A zero-width box evaluated in float64 is the one case with no rounding
    # allowance: its bounds are exactly what evaluate() gives for that point.
    exact = np.array_equal(lo, hi) and np.dtype(eval_dtype) == np.float64
    u64 = np.finfo(np.float64).eps / 2
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
        if exact:
            slack = np.zeros(layer.size)
        else:
            amax = np.abs(c) + r
            # float64 rounding of mag itself (gamma_{k+2}) is absorbed by the factor
            mag = (affine(aw, amax[None, :])[0] + np.abs(layer.bias)) * (1 + 4 * (fan_in + 3) * u64)
            src_mag = affine(_pattern(w), amax[None, :])[0] * (1 + 4 * (fan_in + 3) * u64)
            slack = rounding_slack(fan_in, mag, src_mag, eval_dtype)
            # our own float64 arithmetic: zc and zr (gamma_k each), and the two
            # subtractions/additions that form the ends
            slack = slack + 2 * (fan_in + 3) * u64 * mag / (1 - (fan_in + 3) * u64)
            slack = (slack + 4 * u64 * (np.abs(zc) + zr)) * (1 + 8 * u64)
        zlo, zhi = zc - zr - slack, zc + zr + slack
        # a node with no incoming edge is its bias, exactly -- or, evaluated in
        # float32, the bias rounded to float32 (the same number for a float32 model)
        alone = fan_in == 0
        b_low = layer.bias.astype(eval_dtype).astype(np.float64)
        zlo = np.where(alone, np.minimum(layer.bias, b_low), zlo)
        zhi = np.where(alone, np.maximum(layer.bias, b_low), zhi)
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
    eval_dtype: type = np.float32,
) -> Flowgraph:
    """The flowgraph with bounds attached.

    ``box="unit"``: every input in [0, 1]; ``"data"``: per-input min/max of
    ``data``; ``"custom"``: the given ``lo``/``hi``.  The bounds cover
    float32 and float64 evaluation by default (``eval_dtype``, see the module
    docstring).
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
