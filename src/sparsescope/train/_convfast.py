"""Hand-written forward and backward for any :class:`SequentialSpec` (no autograd).

The study's CNN has 6-channel 3x3 convolutions: as matmuls, every product has
one side of 6 rows, and BLAS runs such skinny products at a fraction of its
rate (measured on the 2-core test machine, one thread: 6 x 54 @ 54 x 34,560
at 15-30 GFLOP/s, 24 x 96 @ 96 x 8,640 at about 60).  So this path computes
each convolution **B x B output positions at a time** (B = 2 for narrow
layers): one im2col column holds the ``(s(B-1)+k)^2`` input patch of a block,
one row of the expanded kernel ``Wx (O*B*B, C*IB*IB)`` computes one output
channel at one position of the block (zeros where the kernel does not
reach).  That is 1.8x the multiply-adds of plain im2col for 3x3 kernels, at
about 4x the rate, and the im2col matrix shrinks from ``9C`` to ``16C`` rows
per four positions.

Layout: a feature map is kept **channel-first over the batch and blocked**,
``(C, B, B, N, HB, WB)`` with ``x[c, n, B*Y+dy, B*X+dx]`` at ``[c, dy, dx, n,
Y, X]`` (B = 1 is plain ``(C, N, H, W)``).  A convolution writes its output
in that layout straight from the matmul, and the next one reads its im2col
from it with one strided copy when the blocks line up (stride 1, no padding,
same B); otherwise the map is first turned plain (``B*B`` strided copies).
Positions a block grid adds past the map's edge ("overhang") hold finite
junk computed from zeros; no valid output reads them (their kernel entries
are zero) and their gradient is kept exactly zero.

Per convolution and step: im2col (one copy), ``Wx`` gathered from the
kernel (one ``index_select``), forward ``z = Wx @ cols + b``, weight gradient
``dz @ cols^T`` folded back onto the kernel (one ``index_add_``), bias
gradient a row sum, and (not for the first weight layer) the input gradient
``Wx^T @ dz`` scattered back with ``(IB/B)^2`` (aligned) or ``IB^2`` (plain)
slice-adds.  Average pooling and linear layers are as in torch / the MLP
fast path; ReLU is in place, and so is its backward (``threshold_backward`` on
the layer's output, written over the incoming gradient).  Everything runs in the parameters' dtype (the tests compare
with autograd in float64); weight gradients are masked, so pruned weights
and their Adam moments stay exactly zero.

Measured (one thread, the 2-core machine shared with other jobs, 23 Nov
2026): one step of the study's CNN on a fixed batch took 9.0 ms against
11.8 ms through autograd (load about 4), but whole epochs on the full MNIST
alternating with autograd took 13.3 and 14.8 s of CPU against 12.8 and
13.7 s (load 11-13): the im2col buffers (about 11 MB) lose more
to a contended cache than mkldnn's direct convolutions.  So this path is
opt-in (``fit_sequential(..., fast=True)``), not the default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..models import SequentialSpec

_threshold_backward_into = torch.ops.aten.threshold_backward.grad_input


def _relu_backward(g: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``g`` zeroed where the ReLU output ``out`` is 0, in place (every ``g`` here is a buffer or a
    fresh tensor this module owns; the op is elementwise, so writing over its input is safe)."""
    return _threshold_backward_into(g, out, 0, grad_input=g)
NARROW = 32  # convolutions with fewer output channels than this compute 2x2 output blocks
MAX_COLS_FLOATS = 1 << 26  # 256 MB of im2col buffers at float32: beyond that, train through autograd


def _spans(size: int, b: int) -> list[int]:
    """Valid rows of each block phase: phase ``d`` holds rows ``d, d+b, ...`` below ``size``."""
    return [len(range(d, size, b)) for d in range(b)]


def _to_plain(blk: torch.Tensor, dst: torch.Tensor, h: int, w: int) -> None:
    """Copy blocked ``(C, B, B, N, HB, WB)`` into a plain-indexed view ``dst (C, N, h, w)``."""
    b = blk.shape[1]
    hs, ws = _spans(h, b), _spans(w, b)
    for dy in range(b):
        for dx in range(b):
            dst[:, :, dy::b, dx::b].copy_(blk[:, dy, dx, :, : hs[dy], : ws[dx]])


def _to_blocked(src: torch.Tensor, blk: torch.Tensor, h: int, w: int) -> None:
    """Inverse of :func:`_to_plain` (``blk``'s overhang is left as it is)."""
    b = blk.shape[1]
    hs, ws = _spans(h, b), _spans(w, b)
    for dy in range(b):
        for dx in range(b):
            blk[:, dy, dx, :, : hs[dy], : ws[dx]].copy_(src[:, :, dy::b, dx::b])


class _Conv:
    """One convolution: geometry, the gather/scatter index of its expanded kernel, buffers per batch size."""

    def __init__(self, name, w, bias, mask, in_chw, in_block, out_chw, kernel, stride, padding, relu, first, block):
        self.name, self.w, self.bias, self.mask = name, w, bias, mask
        self.c, self.h, self.wd = in_chw
        self.o, self.oh, self.ow = out_chw
        self.k, self.s, self.p, self.relu, self.first, self.b = kernel, stride, padding, relu, first, block
        B, s, k = block, stride, kernel
        self.obh, self.obw = math.ceil(self.oh / B), math.ceil(self.ow / B)
        ib = s * (B - 1) + k
        aligned = B > 1 and in_block == B and s == 1 and padding == 0
        if aligned:
            ib = B * math.ceil(ib / B)
            hb_in, wb_in = math.ceil(self.h / B), math.ceil(self.wd / B)
            aligned = self.obh + ib // B - 1 <= hb_in and self.obw + ib // B - 1 <= wb_in
            ib = ib if aligned else s * (B - 1) + k
        self.aligned, self.ib = aligned, ib
        # padded plain input: room for the padding and for every block's patch
        self.hp = max(self.h + 2 * padding, s * B * (self.obh - 1) + ib)
        self.wp = max(self.wd + 2 * padding, s * B * (self.obw - 1) + ib)
        self.copy_in = not aligned and (self.hp, self.wp) != (self.h, self.wd)
        # Wx[(o, dy, dx), (c, a, b)] = W[o, c, a - s*dy, b - s*dx] where that lies in the kernel, else 0
        # (index numel(W) points at a zero slot)
        o_, dy, dx, c_, a, bb = torch.meshgrid(*(torch.arange(n) for n in (self.o, B, B, self.c, ib, ib)), indexing="ij")
        i, j = a - s * dy, bb - s * dx
        inside = (i >= 0) & (i < k) & (j >= 0) & (j < k)
        flat = ((o_ * self.c + c_) * k + i.clamp(0, k - 1)) * k + j.clamp(0, k - 1)
        self.gather = torch.where(inside, flat, torch.full_like(flat, w.numel())).reshape(-1)
        self.bias_index = torch.arange(self.o).repeat_interleave(B * B)
        self.wext = torch.zeros(w.numel() + 1, dtype=w.dtype)  # kernel + the zero slot
        self.wx = torch.empty(self.o * B * B, self.c * ib * ib, dtype=w.dtype)
        self.bx = torch.empty(self.o * B * B, 1, dtype=w.dtype)
        self.gwx = torch.empty_like(self.wx)
        self.gext = torch.zeros_like(self.wext)
        self.bufs: dict[int, dict[str, torch.Tensor]] = {}

    def out_shape(self, n: int) -> tuple[int, ...]:
        """The blocked output shape (B > 1; for B = 1 the output is plain ``(O, N, OH, OW)``)."""
        return (self.o, self.b, self.b, n, self.obh, self.obw)

    def cols_floats(self, n: int) -> int:
        """Size of the im2col buffer for a batch of ``n`` (the largest buffer this layer keeps)."""
        return self.c * self.ib * self.ib * n * self.obh * self.obw

    def _buf(self, n: int) -> dict[str, torch.Tensor]:
        if n not in self.bufs:
            kw = dict(dtype=self.w.dtype)
            q = n * self.obh * self.obw
            d = {"cols": torch.empty(self.c * self.ib * self.ib, q, **kw), "z": torch.empty(self.o * self.b * self.b, q, **kw)}
            if self.copy_in:
                d["xp"] = torch.zeros(self.c, n, self.hp, self.wp, **kw)  # the border stays zero
            if not self.first:  # the input gradient's columns reuse ``cols``: dead once dW is computed
                d["dx"] = (torch.empty(self.c, self.b, self.b, n, math.ceil(self.h / self.b), math.ceil(self.wd / self.b), **kw)
                           if self.aligned else torch.empty(self.c, n, self.hp, self.wp, **kw))
            self.bufs[n] = d
        return self.bufs[n]

    def _cols_view(self, x: torch.Tensor, n: int) -> tuple[tuple[int, ...], torch.Tensor]:
        """(shape to view ``cols`` as, the matching strided view of the input)."""
        B, ib = self.b, self.ib
        if self.aligned:  # x: (C, B, B, N, HB, WB); patch row a = a1*B + a0 sits in block Y + a1, phase a0
            sc, sdy, sdx, sn, sy, sx = x.stride()
            shape = (self.c, ib // B, B, ib // B, B, n, self.obh, self.obw)
            return shape, x.as_strided(shape, (sc, sy, sdy, sx, sdx, sn, sy, sx), x.storage_offset())
        sc, sn, sh, sw = x.stride()
        shape = (self.c, ib, ib, n, self.obh, self.obw)
        return shape, x.as_strided(shape, (sc, sh, sw, sn, self.s * B * sh, self.s * B * sw), x.storage_offset())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Input map (blocked when aligned, else plain ``(C, N, H, W)``) -> output ``(O, B, B, N, OBH, OBW)``."""
        n = a.shape[-3]
        d = self._buf(n)
        x = a
        if self.copy_in:
            x = d["xp"]
            x[:, :, self.p : self.p + self.h, self.p : self.p + self.wd].copy_(a)
        shape, view = self._cols_view(x, n)
        d["cols"].view(shape).copy_(view)
        self.wext[:-1].copy_(self.w.reshape(-1))
        torch.index_select(self.wext, 0, self.gather, out=self.wx.view(-1))
        torch.index_select(self.bias, 0, self.bias_index, out=self.bx.view(-1))
        z = torch.addmm(self.bx, self.wx, d["cols"], out=d["z"])
        if self.relu:
            z.relu_()
        return z.view(self.out_shape(n)) if self.b > 1 else z.view(self.o, n, self.oh, self.ow)

    def backward(self, g: torch.Tensor, out: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor) -> torch.Tensor | None:
        """``g``: gradient w.r.t. this layer's output ``out`` (after ReLU; zero on the overhang).  Writes
        the weight and bias gradients into ``gw``/``gb``; returns the input gradient in the input's
        layout (``None`` for the first weight layer)."""
        n = out.shape[-3]
        d = self._buf(n)
        if self.relu:
            g = _relu_backward(g, out)
        g2 = g.reshape(self.o * self.b * self.b, -1)
        torch.mm(g2, d["cols"].t(), out=self.gwx)
        self.gext.zero_()
        self.gext.index_add_(0, self.gather, self.gwx.view(-1))
        gw.view(-1).copy_(self.gext[:-1])
        torch.sum(g.reshape(self.o, -1), 1, out=gb)
        if self.mask is not None:
            gw.mul_(self.mask)
        if self.first:
            return None
        dcols = torch.mm(self.wx.t(), g2, out=d["cols"])
        dx, B, ib, oh, ow = d["dx"], self.b, self.ib, self.obh, self.obw
        if self.aligned:
            dc = dcols.view(self.c, ib // B, B, ib // B, B, n, oh, ow)
            # the first block offset is a copy, the rest adds: one pass over dx fewer than zero + adds
            dx[..., oh:, :].zero_()
            dx[..., :oh, ow:].zero_()
            dx[..., :oh, :ow].copy_(dc[:, 0, :, 0])
            for a1 in range(ib // B):
                for b1 in range(ib // B):
                    if a1 or b1:
                        dx[..., a1 : a1 + oh, b1 : b1 + ow].add_(dc[:, a1, :, b1])
            return dx
        dx.zero_()
        dc = dcols.view(self.c, ib, ib, n, oh, ow)
        step = self.s * B
        for i in range(ib):
            for j in range(ib):
                dx[:, :, i : i + step * (oh - 1) + 1 : step, j : j + step * (ow - 1) + 1 : step].add_(dc[:, i, j])
        return dx[:, :, self.p : self.p + self.h, self.p : self.p + self.wd]


class ConvStepper:
    """Gradients of the mean cross-entropy for a SequentialSpec, by hand.

    ``params``: the training tensors ``{name.weight, name.bias}`` (updated in
    place by the optimiser; this object keeps views of them); ``masks``:
    float 0/1 per weight layer or ``None``.  :meth:`step` fills gradient
    buffers and returns the batch's logits.  ``block``: the output block size
    of narrow convolutions (1 turns blocking off; tests use both).
    """

    def __init__(self, spec: SequentialSpec, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor | None],
                 *, block: int = 2):
        self.spec, self.params, self.masks = spec, params, masks
        # ops: ("conv", _Conv) | ("plain", c, h, w) | ("pool", k, s, relu) | ("flatten", c, h, w) | ("linear", name, relu, first)
        self.ops: list[tuple] = []
        shape, cur_block, first = spec.input_shape, 1, True
        for i, (layer, out_shape) in enumerate(zip(spec.layers, spec.shapes)):
            relu = spec.activation_after(i) == "relu"
            if layer.kind == "conv":
                n = layer.name
                b = block if layer.size < NARROW and min(out_shape[1:]) >= 2 else 1
                conv = _Conv(n, params[f"{n}.weight"], params[f"{n}.bias"], masks[n], shape, cur_block, out_shape,
                             layer.kernel, layer.stride, layer.padding, relu, first, b)
                if not conv.aligned and cur_block > 1:
                    self.ops.append(("plain", *shape))
                self.ops.append(("conv", conv))
                cur_block, first = b, False
            elif layer.kind == "avgpool":
                if cur_block > 1:
                    self.ops.append(("plain", *shape))
                self.ops.append(("pool", layer.kernel, layer.stride, relu))
                cur_block = 1
            elif layer.kind == "flatten":
                self.ops.append(("flatten", *shape) if len(shape) == 3 else ("flatten",))
            elif layer.kind == "linear":
                self.ops.append(("linear", layer.name, relu, first))
                first = False
            shape = out_shape  # (a relu is folded into the layer before it)
        if len(spec.output_shape) == 3:
            self.ops.append(("flatten", *spec.output_shape))  # the logits are the flattened last map, as forward() gives them
        self._grad_bufs: dict[tuple, torch.Tensor] = {}

    def cols_floats(self, n: int) -> int:
        """Floats of im2col buffers for a batch of ``n``, summed over the convolutions."""
        return sum(op[1].cols_floats(n) for op in self.ops if op[0] == "conv")

    def _zeroed(self, key: tuple, shape: tuple[int, ...], dtype) -> torch.Tensor:
        """A buffer zeroed once: blocked gradients whose overhang must stay zero."""
        if key not in self._grad_bufs:
            self._grad_bufs[key] = torch.zeros(shape, dtype=dtype)
        return self._grad_bufs[key]

    def forward(self, xb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(N, outputs)`` of ``xb (N, *input_shape)`` and the value after each op."""
        n = xb.shape[0]
        if len(self.spec.input_shape) == 3:
            a = xb.view(n, *self.spec.input_shape).transpose(0, 1).contiguous()  # a free view when C = 1
        else:
            a = xb.reshape(n, -1)
        vals = [a]
        for op in self.ops:
            kind = op[0]
            if kind == "conv":
                a = op[1].forward(a)
            elif kind == "plain":
                dst = torch.empty(op[1], n, op[2], op[3], dtype=a.dtype)
                _to_plain(a, dst, op[2], op[3])
                a = dst
            elif kind == "pool":
                a = F.avg_pool2d(a, op[1], op[2])
                if op[3]:
                    a.relu_()
            elif kind == "flatten":
                if len(op) == 1:
                    a = a.reshape(n, -1)
                else:
                    c, h, w = op[1:]
                    flat = torch.empty(n, c * h * w, dtype=a.dtype)
                    if a.dim() == 6:
                        _to_plain(a, flat.view(n, c, h, w).transpose(0, 1), h, w)
                    else:
                        flat.view(n, c, h, w).transpose(0, 1).copy_(a)
                    a = flat
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
            kind = op[0]
            if kind == "conv":
                c = op[1]
                g = c.backward(g, out, grads[f"{c.name}.weight"], grads[f"{c.name}.bias"])
            elif kind == "linear":
                name, relu, first = op[1], op[2], op[3]
                if relu:
                    g = _relu_backward(g, out)
                gw = grads[f"{name}.weight"]
                torch.mm(g.t(), inp, out=gw)
                torch.sum(g, 0, out=grads[f"{name}.bias"])
                if self.masks[name] is not None:
                    gw.mul_(self.masks[name])
                g = None if first else torch.mm(g, self.params[f"{name}.weight"])
            elif kind == "pool":
                if op[3]:
                    g = _relu_backward(g, out)
                g = torch.ops.aten.avg_pool2d_backward(g, inp, [op[1]] * 2, [op[2]] * 2, [0, 0], False, True, None)
            elif kind == "plain":
                blk = self._zeroed((k, n), inp.shape, g.dtype)
                _to_blocked(g, blk, op[2], op[3])
                g = blk
            elif len(op) == 1:  # flatten of a flat input
                g = g.view(inp.shape)
            else:  # flatten of a map: back to the map's layout
                c, h, w = op[1:]
                g4 = g.view(n, c, h, w).transpose(0, 1)
                if inp.dim() == 6:
                    blk = self._zeroed((k, n), inp.shape, g.dtype)
                    _to_blocked(g4, blk, h, w)
                    g = blk
                else:
                    g = g4.contiguous()
            if g is None:
                break
        return logits
