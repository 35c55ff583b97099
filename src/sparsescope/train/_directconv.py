"""Training steps of any :class:`SequentialSpec` through compiled direct convolutions.

Why: the study's CNN has 6-channel 3x3 convolutions.  As matmuls (im2col, or
what mkldnn and autograd run) every product has a side of 6 rows, and such
skinny products ran at 5-35 GFLOP/s on one thread of the 2-core test machine
against 93 for a square matmul, and im2col copies are memory-bound
(bench/bench_cnn_layers.py shows it per layer).  Here every map is kept
**batch-innermost**, ``(C, H, W, NB)`` with the batch padded to ``NB``, a
multiple of 16: then every convolution, of any stride, is a sum of SIMD
multiply-adds along the batch lanes, which the compiled kernels
(``_convkernels.cpp``, built by ``_ckernels``) run register-blocked at
65-87% of the square matmul's rate on the study's layers.  No im2col and no
transposes between layers: a convolution writes its output straight into the
next layer's input buffer (its zero-bordered interior when that layer pads).  Linear layers run
on transposed activations ``(features, NB)`` with torch's matmuls, average
pools as sums of strided views, ReLU and its backward in place.

Padding lanes (samples ``n..NB-1``) hold zeros on the input and get zero
loss gradient, so they add exactly nothing to any weight gradient.
Gradients are of the mean cross-entropy, masked (so pruned weights and their
Adam moments stay exactly zero, as on the autograd path); the tests hold
every step to autograd in float64 over random specs, masks and batches.
"""

from __future__ import annotations

import math

import torch

from ..models import SequentialSpec
from ._ckernels import kernels

LANES = 16  # the batch is padded to a multiple of this (two 8-float vectors; the kernels step by 2 vectors)
_threshold_backward_into = torch.ops.aten.threshold_backward.grad_input


def _relu_backward(g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``g`` zeroed where the ReLU output ``out`` is 0, in place."""
    return _threshold_backward_into(g, out, 0, grad_input=g)


def padded_batch(n: int) -> int:
    return LANES * math.ceil(n / LANES)


def supported(spec: SequentialSpec, dtype: torch.dtype) -> bool:
    """Whether this path trains ``spec`` in ``dtype`` (float32 or float64, kernels built)."""
    return dtype in (torch.float32, torch.float64) and kernels() is not None


class _Conv:
    """One convolution: geometry, its zero-bordered input buffer and the kernel calls."""

    def __init__(self, name, w, bias, mask, in_chw, out_chw, kernel, stride, padding, relu, first):
        self.name, self.w, self.bias, self.mask = name, w, bias, mask
        self.c, self.h, self.wd = in_chw
        self.o, self.oh, self.ow = out_chw
        self.k, self.s, self.p, self.relu, self.first = kernel, stride, padding, relu, first
        self.hp, self.wp = self.h + 2 * padding, self.wd + 2 * padding
        suffix = "f64" if w.dtype == torch.float64 else "f32"
        lib = kernels()
        self._fwd, self._wgrad, self._igrad = (getattr(lib, f"conv_{op}_{suffix}") for op in ("fwd", "wgrad", "igrad"))
        self.wt = torch.empty(self.c, kernel, kernel, self.o, dtype=w.dtype)  # tap-major weights
        # the weight gradient's scratch: one 32-byte vector per weight, then one offset per tap
        self.scratch = torch.empty(self.c * kernel * kernel * (self.o * 32 + 8), dtype=torch.uint8)
        self.bufs: dict[int, dict[str, torch.Tensor]] = {}

    def _buf(self, n: int) -> dict[str, torch.Tensor]:
        if n not in self.bufs:
            nb, dt = padded_batch(n), self.w.dtype
            d = {"x": torch.zeros(self.c, self.hp, self.wp, nb, dtype=dt)}  # the border stays zero
            if not self.first:
                d["dx"] = torch.empty(self.c, self.hp, self.wp, nb, dtype=dt)
            self.bufs[n] = d
        return self.bufs[n]

    def input_view(self, n: int) -> torch.Tensor:
        """Where the layer below writes this layer's input: the interior of the padded buffer."""
        x = self._buf(n)["x"]
        return x[:, self.p : self.p + self.h, self.p : self.p + self.wd]

    def forward(self, n: int, out: torch.Tensor) -> None:
        """This layer's input buffer -> ``out`` (a ``(O, OH, OW, NB)`` view with unit lane stride)."""
        x = self._buf(n)["x"]
        self.wt.copy_(self.w.permute(1, 2, 3, 0))
        self._fwd(x.data_ptr(), x.stride(0), x.stride(1), self.wt.data_ptr(), self.bias.data_ptr(), out.data_ptr(),
                  out.stride(0), out.stride(1), self.c, self.o, self.k, self.s, self.oh, self.ow, x.shape[-1], int(self.relu))

    def backward(self, n: int, g: torch.Tensor, out: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor) -> torch.Tensor | None:
        """``g``: gradient w.r.t. the output ``out`` (after ReLU; both ``(O, OH, OW, NB)`` views).  Writes
        the weight and bias gradients; returns the input gradient as a view, or ``None`` for the first layer."""
        d = self._buf(n)
        if self.relu:
            g = _relu_backward(g, out)
        x, nb = d["x"], d["x"].shape[-1]
        self._wgrad(x.data_ptr(), x.stride(0), x.stride(1), g.data_ptr(), g.stride(0), g.stride(1), gw.data_ptr(),
                    gb.data_ptr(), self.scratch.data_ptr(), self.c, self.o, self.k, self.s, self.oh, self.ow, nb)
        if self.mask is not None:
            gw.mul_(self.mask)
        if self.first:
            return None
        dx = d["dx"]
        dx.zero_()
        self._igrad(g.data_ptr(), g.stride(0), g.stride(1), self.wt.data_ptr(), dx.data_ptr(), dx.stride(0), dx.stride(1),
                    self.c, self.o, self.k, self.s, self.oh, self.ow, nb)
        return dx[:, self.p : self.p + self.h, self.p : self.p + self.wd]


def _pool_views(x: torch.Tensor, k: int, s: int, oh: int, ow: int):
    """The ``k*k`` strided views of ``x (C, H, W, NB)`` whose sum is the pool's window sum."""
    for ky in range(k):
        for kx in range(k):
            yield x[:, ky : ky + s * (oh - 1) + 1 : s, kx : kx + s * (ow - 1) + 1 : s]


class DirectStepper:
    """Gradients of the mean cross-entropy for a SequentialSpec, through the compiled kernels.

    ``params``: the training tensors (updated in place by the optimiser; this
    object keeps references); ``masks``: float 0/1 per weight layer or ``None``.
    :meth:`step` fills gradient buffers and returns the batch's logits ``(n, outputs)``.
    """

    def __init__(self, spec: SequentialSpec, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor | None]):
        self.spec, self.params, self.masks = spec, params, masks
        self.dtype = next(iter(params.values())).dtype
        # ops: ("conv", _Conv) | ("pool", k, s, relu, (c, oh, ow)) | ("flatten",) | ("linear", name, relu, first)
        self.ops: list[tuple] = []
        shape, first = spec.input_shape, True
        for i, (layer, out_shape) in enumerate(zip(spec.layers, spec.shapes)):
            relu = spec.activation_after(i) == "relu"
            if layer.kind == "conv":
                n = layer.name
                self.ops.append(("conv", _Conv(n, params[f"{n}.weight"], params[f"{n}.bias"], masks[n], shape, out_shape,
                                               layer.kernel, layer.stride, layer.padding, relu, first)))
                first = False
            elif layer.kind == "avgpool":
                self.ops.append(("pool", layer.kernel, layer.stride, relu, out_shape))
            elif layer.kind == "flatten":
                if len(shape) == 3:
                    self.ops.append(("flatten",))
            elif layer.kind == "linear":
                self.ops.append(("linear", layer.name, relu, first))
                first = False
            shape = out_shape
        if len(spec.output_shape) == 3:
            self.ops.append(("flatten",))  # the logits are the flattened last map
        self.shapes = [spec.input_shape] + [None] * len(self.ops)  # map shapes (C, H, W) after each op, or None
        self._bufs: dict[tuple, torch.Tensor] = {}

    def _own(self, key: tuple, shape: tuple[int, ...]) -> torch.Tensor:
        if key not in self._bufs:
            self._bufs[key] = torch.zeros(shape, dtype=self.dtype)
        return self._bufs[key]

    def _map_dest(self, k: int, n: int, chw: tuple[int, int, int]) -> torch.Tensor:
        """Where op ``k - 1`` (or the input, ``k = 0``) writes the map that op ``k`` reads."""
        if k < len(self.ops) and self.ops[k][0] == "conv":
            return self.ops[k][1].input_view(n)
        return self._own(("map", k, n), (*chw, padded_batch(n)))

    def forward(self, xb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(n, outputs)`` of ``xb (n, *input_shape)`` and the value feeding each op (and the last output)."""
        n, nb = xb.shape[0], padded_batch(xb.shape[0])
        if len(self.spec.input_shape) == 3:
            a = self._map_dest(0, n, self.spec.input_shape)
            a[..., :n].copy_(xb.reshape(n, *self.spec.input_shape).permute(1, 2, 3, 0))
        else:
            a = self._own(("flat-in", n), (self.spec.num_inputs, nb))
            a[:, :n].copy_(xb.reshape(n, -1).t())
        vals = [a]
        for k, op in enumerate(self.ops):
            kind = op[0]
            if kind == "conv":
                c = op[1]
                out = self._map_dest(k + 1, n, (c.o, c.oh, c.ow))
                c.forward(n, out)
                a = out
            elif kind == "pool":
                pk, ps, relu, chw = op[1], op[2], op[3], op[4]
                out = self._map_dest(k + 1, n, chw)
                views = _pool_views(a, pk, ps, chw[1], chw[2])
                out.copy_(next(views))
                for v in views:
                    out.add_(v)
                out.mul_(1.0 / (pk * pk))
                if relu:
                    out.relu_()
                a = out
            elif kind == "flatten":
                a = a.reshape(-1, nb)  # a view: a map feeding a flatten is its own contiguous buffer
            else:
                name, relu = op[1], op[2]
                a = torch.addmm(self.params[f"{name}.bias"].unsqueeze(1), self.params[f"{name}.weight"], a)
                if relu:
                    a.relu_()
            vals.append(a)
        return a[:, :n].t(), vals

    def step(self, xb: torch.Tensor, onehot: torch.Tensor, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fill ``grads[name.weight|bias]`` with d(mean CE)/d param for the batch; return its logits ``(n, outputs)``."""
        logits, vals = self.forward(xb)
        logits = logits.contiguous()
        n = xb.shape[0]
        g = self._own(("dlogits", n), (logits.shape[1], padded_batch(n)))  # zero on the padding lanes
        g[:, :n].copy_(torch.log_softmax(logits, 1).exp_().sub_(onehot).mul_(1.0 / n).t())
        for k in range(len(self.ops) - 1, -1, -1):
            op, out, inp = self.ops[k], vals[k + 1], vals[k]
            kind = op[0]
            if kind == "conv":
                c = op[1]
                g = c.backward(n, g, out, grads[f"{c.name}.weight"], grads[f"{c.name}.bias"])
            elif kind == "linear":
                name, relu, first = op[1], op[2], op[3]
                if relu:
                    g = _relu_backward(g, out)
                gw = grads[f"{name}.weight"]
                torch.mm(g, inp.t(), out=gw)
                torch.sum(g, 1, out=grads[f"{name}.bias"])
                if self.masks[name] is not None:
                    gw.mul_(self.masks[name])
                g = None if first else torch.mm(self.params[f"{name}.weight"].t(), g)
            elif kind == "flatten":
                g = g.view(inp.shape)
            else:  # pool
                pk, ps, relu, chw = op[1], op[2], op[3], op[4]
                if relu:
                    g = _relu_backward(g, out)
                dx = self._own(("dpool", k, n), inp.shape)
                dx.zero_()
                for v in _pool_views(dx, pk, ps, chw[1], chw[2]):
                    v.add_(g)
                g = dx.mul_(1.0 / (pk * pk))
            if g is None:
                break
        return logits
