"""Hand-written forward and backward for any :class:`SequentialSpec` (no autograd).

The study's CNN has 6-channel 3x3 convolutions: every product is a matmul
with one side of 6 rows, so per-call framework overhead and memory traffic,
not arithmetic, set the speed.  This path therefore does, per step, one
matmul per product and layer on preallocated buffers:

* Layout: feature maps are kept **channel-first over the batch**, ``(C, N,
  H, W)`` ("CNHW").  Then a convolution's im2col is one strided copy into
  ``cols (C*k*k, N*OH*OW)`` (rows ordered ``(c, i, j)`` as torch stores a
  kernel, columns ``(n, y, x)``), and

  - forward:        ``z (O, N*OH*OW) = W (O, C*k*k) @ cols + b``, already CNHW;
  - weight grad:    ``dW = dz @ cols^T``, bias grad ``db = dz.sum(1)``;
  - input grad:     ``dcols = W^T @ dz`` then col2im as ``k*k`` strided
    slice-adds into the (padded) input's gradient.  The first layer needs
    no input gradient and skips it.

  (Measured on the study's layer 2, one thread: this beats ``F.conv2d`` +
  ``convolution_backward`` and the full-correlation form of the input
  gradient; see bench/bench_cnn.py for the whole step.)
* Average pooling works on the CNHW map as is (pooling is per plane) via
  ``avg_pool2d`` and its backward op; ``flatten`` is a transpose to the
  batch-first ``(N, C*H*W)`` order torch uses; linear layers are as in the
  MLP fast path (``_fit``).
* ReLU is applied in place; its backward is ``threshold_backward`` on the
  layer's output (output > 0 exactly where the pre-activation is > 0).

Everything works in the parameters' dtype, so the tests compare it with
autograd in float64.  Masks are applied to the weight gradients, as on the
other paths, so pruned weights and their Adam moments stay exactly zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import SequentialSpec

_relu_backward = torch.ops.aten.threshold_backward


class _Conv:
    """One convolution: parameter views, geometry and per-batch-size buffers."""

    def __init__(self, name, w, b, mask, in_shape, out_shape, kernel, stride, padding, relu, first):
        self.name, self.w, self.b, self.mask = name, w, b, mask
        self.c, self.h, self.wd = in_shape
        self.o, self.oh, self.ow = out_shape
        self.k, self.s, self.p = kernel, stride, padding
        self.relu, self.first = relu, first
        self.w2 = w.view(self.o, -1)  # (O, C*k*k): shares storage with the trained parameter
        self.bufs: dict[int, dict[str, torch.Tensor]] = {}

    def _buf(self, n: int) -> dict[str, torch.Tensor]:
        if n not in self.bufs:
            kw = dict(dtype=self.w.dtype)
            hp, wp = self.h + 2 * self.p, self.wd + 2 * self.p
            q = n * self.oh * self.ow
            d = {"cols": torch.empty(self.c * self.k * self.k, q, **kw), "z": torch.empty(self.o, q, **kw)}
            if self.p:
                d["xp"] = torch.zeros(self.c, n, hp, wp, **kw)  # the border stays zero
            if not self.first:
                d["dcols"] = torch.empty(self.c * self.k * self.k, q, **kw)
                d["dxp"] = torch.empty(self.c, n, hp, wp, **kw)
            self.bufs[n] = d
        return self.bufs[n]

    def _patches(self, xp: torch.Tensor, n: int) -> torch.Tensor:
        """``(C, k, k, N, OH, OW)`` view of the padded input: patch element (i, j) of output (y, x)."""
        sc, sn, sh, sw = xp.stride()
        return xp.as_strided((self.c, self.k, self.k, n, self.oh, self.ow),
                             (sc, sh, sw, sn, sh * self.s, sw * self.s), xp.storage_offset())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """``a (C, N, H, W)`` -> output ``(O, N, OH, OW)`` (ReLU applied when the spec has one)."""
        n = a.shape[1]
        d = self._buf(n)
        xp = a
        if self.p:
            xp = d["xp"]
            xp[:, :, self.p : self.p + self.h, self.p : self.p + self.wd].copy_(a)
        d["cols"].view(self.c, self.k, self.k, n, self.oh, self.ow).copy_(self._patches(xp, n))
        z = torch.addmm(self.b.unsqueeze(1), self.w2, d["cols"], out=d["z"])
        if self.relu:
            z.relu_()
        return z.view(self.o, n, self.oh, self.ow)

    def backward(self, g: torch.Tensor, out: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor) -> torch.Tensor | None:
        """``g``: gradient w.r.t. this layer's output ``out (O, N, OH, OW)`` (after ReLU).  Writes the
        weight and bias gradients into ``gw``/``gb``; returns the input gradient ``(C, N, H, W)``
        (``None`` for the first layer)."""
        n = out.shape[1]
        d = self._buf(n)
        if self.relu:
            g = _relu_backward(g, out, 0)
        g2 = g.reshape(self.o, -1)
        torch.mm(g2, d["cols"].t(), out=gw.view(self.o, -1))
        torch.sum(g2, 1, out=gb)
        if self.mask is not None:
            gw.mul_(self.mask)
        if self.first:
            return None
        torch.mm(self.w2.t(), g2, out=d["dcols"])
        dc = d["dcols"].view(self.c, self.k, self.k, n, self.oh, self.ow)
        dxp = d["dxp"]
        dxp.zero_()
        span_y, span_x = self.s * (self.oh - 1) + 1, self.s * (self.ow - 1) + 1
        for i in range(self.k):
            for j in range(self.k):
                dxp[:, :, i : i + span_y : self.s, j : j + span_x : self.s].add_(dc[:, i, j])
        if self.p:
            return dxp[:, :, self.p : self.p + self.h, self.p : self.p + self.wd]
        return dxp


class ConvStepper:
    """Gradients of the mean cross-entropy for a SequentialSpec, by hand.

    ``params``: the training tensors ``{name.weight, name.bias}`` (updated in
    place by the optimiser; this object keeps views of them); ``masks``:
    float 0/1 per weight layer or ``None``.  :meth:`step` fills gradient
    buffers and returns the batch's logits.
    """

    def __init__(self, spec: SequentialSpec, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor | None]):
        self.spec = spec
        self.ops: list[tuple] = []  # ("conv", _Conv) | ("pool", k, s, relu) | ("flatten",) | ("linear", name, relu)
        self.masks = masks
        self.params = params
        shape = spec.input_shape
        first = True
        for i, (layer, out_shape) in enumerate(zip(spec.layers, spec.shapes)):
            relu = spec.activation_after(i) == "relu"
            if layer.kind == "conv":
                n = layer.name
                self.ops.append(("conv", _Conv(n, params[f"{n}.weight"], params[f"{n}.bias"], masks[n], shape, out_shape,
                                               layer.kernel, layer.stride, layer.padding, relu, first)))
                first = False
            elif layer.kind == "linear":
                self.ops.append(("linear", layer.name, relu, first))
                first = False
            elif layer.kind == "avgpool":
                self.ops.append(("pool", layer.kernel, layer.stride, relu))
            elif layer.kind == "flatten":
                self.ops.append(("flatten",))
            shape = out_shape
        if len(spec.output_shape) == 3:
            self.ops.append(("flatten",))  # the logits are the flattened last map, as forward() gives them

    def forward(self, xb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(N, outputs)`` of ``xb (N, *input_shape)`` and the value after each op."""
        n = xb.shape[0]
        if len(self.spec.input_shape) == 3:
            a = xb.view(n, *self.spec.input_shape).transpose(0, 1).contiguous()  # a free view when C = 1
            cnhw = True
        else:
            a, cnhw = xb.reshape(n, -1), False
        vals = [a]
        for op in self.ops:
            if op[0] == "conv":
                a = op[1].forward(a)
            elif op[0] == "pool":
                a = F.avg_pool2d(a, op[1], op[2])
                if op[3]:
                    a.relu_()
            elif op[0] == "flatten":
                a = a.transpose(0, 1).reshape(n, -1) if cnhw else a.reshape(n, -1)
                cnhw = False
            else:
                a = torch.addmm(self.params[f"{op[1]}.bias"], a, self.params[f"{op[1]}.weight"].t())
                if op[2]:
                    a.relu_()
            vals.append(a)
        return a, vals

    def step(self, xb: torch.Tensor, onehot: torch.Tensor, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fill ``grads[name.weight|bias]`` with d(mean CE)/d param for the batch; return its logits."""
        logits, vals = self.forward(xb)
        n = xb.shape[0]
        g = torch.log_softmax(logits, 1).exp_().sub_(onehot).mul_(1.0 / n)
        for k in range(len(self.ops) - 1, -1, -1):
            op, out, inp = self.ops[k], vals[k + 1], vals[k]
            if op[0] == "conv":
                c = op[1]
                g = c.backward(g, out, grads[f"{c.name}.weight"], grads[f"{c.name}.bias"])
            elif op[0] == "linear":
                name, relu, first = op[1], op[2], op[3]
                if relu:
                    g = _relu_backward(g, out, 0)
                gw = grads[f"{name}.weight"]
                torch.mm(g.t(), inp, out=gw)
                torch.sum(g, 0, out=grads[f"{name}.bias"])
                if self.masks[name] is not None:
                    gw.mul_(self.masks[name])
                g = None if first else torch.mm(g, self.params[f"{name}.weight"])
            elif op[0] == "pool":
                if op[3]:
                    g = _relu_backward(g, out, 0)
                g = torch.ops.aten.avg_pool2d_backward(g, inp, [op[1]] * 2, [op[2]] * 2, [0, 0], False, True, None)
            else:  # flatten: back to the layout of its input
                g = g.view(inp.shape[1], inp.shape[0], *inp.shape[2:]).transpose(0, 1).contiguous() if inp.dim() == 4 \
                    else g.view(inp.shape)
            if g is None:
                break
        return logits
