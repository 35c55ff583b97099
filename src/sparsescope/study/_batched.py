"""Batched multi-ticket training: K masked MLPs of one architecture trained in one pass.

Each ticket keeps everything it has when trained alone: its own start weights
and mask, its own shuffle generator (so the same mini-batches in the same
order), its own Adam moments.  The parameters of all K tickets live in one
:class:`~sparsescope.train._flat.FlatMLP` (the single path's layout with a
ticket axis), and a step makes the same calls as the single path
(:func:`sparsescope.train._flat.train_epoch`) on K-stacked buffers:

* tickets that share their data order (equal shuffle seeds) run layer 1 as
  ONE wide product ``X (B, in+1) @ [W1_1; ...; W1_K]^T`` and its gradient as
  one product ``G (K*h1, B) @ X``: the per-call cost is paid once and the
  product runs near the matmul peak;
* tickets with their own orders gather all K batches with one
  ``index_select`` and use ``torch.bmm``;
* the later (small) layers use ``torch.bmm`` in both cases.

Every output element is computed as the single path computes it (same dot
products, the same elementwise kernels, Adam on one tensor per ticket and
layer), so a batched ticket equals the ticket trained alone bit for bit
(tested), whatever company it keeps: a run store does not depend on which
tickets were trained together.  A ticket whose mask lets the single path drop
layer-1 input columns (``_flat.kept_columns``) is trained by that path, alone.

Shapes: layer ``l`` weights ``(K, out, in + 1)`` (last column: bias),
activations ``(K, B, in + 1)`` (last column: ones).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from .._errors import ConfigError
from ..data import Dataset
from ..models import MLPSpec
from ..train import TrainConfig, TrainResult
from ..train._fit import _FusedAdam, _scores, evaluate_model, fit
from ..train._flat import FlatMLP, aligned, kept_columns


@torch.no_grad()
def fit_batched(
    spec: MLPSpec,
    params: Sequence[dict[str, torch.Tensor]],
    masks: Sequence[dict[str, torch.Tensor] | None],
    data: Dataset,
    config: TrainConfig,
    *,
    seeds: Sequence[int],
    snapshot_steps: Sequence[int | None] | None = None,
) -> list[TrainResult]:
    """Train K tickets at once; ticket ``k`` starts from ``params[k]`` under ``masks[k]``, shuffles with ``seeds[k]``.

    Ticket ``k``'s weights, snapshot and metrics are bit for bit those of
    ``fit(spec, params[k], masks[k], data, config, seed=seeds[k],
    snapshot_step=snapshot_steps[k])``, whatever the other tickets are (tested).
    Tickets with equal seeds share their mini-batches and take the wide
    layer-1 product.  Returns one :class:`TrainResult` per ticket, in order
    (per-epoch history included; ``train_seconds`` is the shared training
    time divided by the tickets trained together).  The inputs are never modified.
    """
    K = len(params)
    if not isinstance(spec, MLPSpec):
        raise ConfigError("batched training supports the MLP (model.sizes); train other models one by one")
    snaps = [None] * K if snapshot_steps is None else list(snapshot_steps)
    if not (K == len(masks) == len(seeds) == len(snaps)) or K == 0:
        raise ConfigError("fit_batched needs one start, mask and seed per ticket (and at least one ticket)")
    first = spec.layer_names[0]
    alone = [k for k in range(K) if masks[k] is not None and kept_columns(masks[k][first].float(), spec.sizes[0]) is not None]
    results: list[TrainResult | None] = [None] * K
    for k in alone:  # few input columns left: the single path's compacted layer 1 is the faster (and defining) one
        results[k] = fit(spec, params[k], masks[k], data, config, seed=seeds[k], snapshot_step=snaps[k])
    rest = [k for k in range(K) if k not in set(alone)]
    if rest:
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            together = _fit_batched(spec, [params[k] for k in rest], [masks[k] for k in rest], data, config,
                                    [int(seeds[k]) for k in rest], [snaps[k] for k in rest])
        finally:
            torch.set_num_threads(prev_threads)
        for k, res in zip(rest, together):
            results[k] = res
    return results  # type: ignore[return-value]


def _stack(spec: MLPSpec, params, masks):
    """``(ws, bs, ms)`` per layer with a leading ticket axis, weights multiplied by their mask (``ms[l]`` None: all dense)."""
    names = spec.layer_names
    ws = [torch.stack([p[f"{n}.weight"].detach().float() for p in params]) for n in names]
    bs = [torch.stack([p[f"{n}.bias"].detach().float() for p in params]) for n in names]
    ms = []
    for i, n in enumerate(names):
        if all(m is None or bool(m[n].all()) for m in masks):
            ms.append(None)
            continue
        m = torch.stack([torch.ones_like(ws[i][0]) if mk is None else mk[n].to(torch.float32) for mk in masks])
        ws[i].mul_(m)
        ms.append(m)
    return ws, bs, ms


class _Buffers:
    """Per-step tensors for K tickets and ``b`` rows, and the step's calls on them.

    ``ops``: ``(name, FLOPs, call)`` in the step's order, from gathering the
    rows to masking the gradients (``calls``: the calls alone; ``feed`` sets
    the step's rows first).  The names and FLOPs (2 x multiply-adds of the
    kernel weights, all tickets) are for ``bench/bench_study.py batched
    --profile``, which times each call.

    ``a[l]`` ``(K, b, in_l + 1)`` what layer ``l`` consumes (last column ones;
    shared-order mode: ``a[0]`` is ``(b, in + 1)``, one batch for all), ``h[l]``
    its first ``in_l`` columns, ``z[l]`` / ``g[l]`` ``(K, b, out_l)``
    pre-activations / loss gradients.  Shared-order mode computes layer 1 into
    ``z0 (b, K*h1)`` and takes its gradient from ``g0 (b, K*h1)`` (``g[0]`` is a
    ``(K, b, h1)`` view of it).  ``wide_ok``: the wide products agree with the
    single path (else the caller uses the gathered mode).
    """

    def __init__(self, net: FlatMLP, b: int, shared: bool) -> None:
        K, shapes, last = net.k, net.shapes, len(net.shapes) - 1
        relu, relu_back = torch.clamp_min, torch.ops.aten.threshold_backward.grad_input
        # a0 is only ever read by the products (whose rounding depends on where the OUTPUT sits, see
        # FlatMLP), so it stays contiguous and one index_select fills every ticket's rows
        a0 = torch.ones(b, shapes[0][1]) if shared else torch.ones(K, b, shapes[0][1])
        a = [a0] + [_tickets(K, b, i, 1.0) for (_, i) in shapes[1:]]
        z = [_tickets(K, b, o) for (o, _) in shapes]
        g = [_tickets(K, b, o) for (o, _) in shapes]
        wt = [w.transpose(1, 2) for w in net.w]
        # the logits, their softmax and gradient: contiguous where the last product still agrees (a narrow
        # output, e.g. 10 classes, is otherwise padded per ticket; contiguous, bmm and softmax run faster)
        top = torch.empty(K, b, shapes[-1][0])
        if (last > 0 or not shared) and _agrees("bmm", a[last], wt[last], top):
            z[last], g[last] = top, torch.empty_like(top)
        self.sm, self.logits = torch.empty_like(z[last]), z[last]
        self.x = a0[:, :-1] if shared else a0.view(K * b, -1)[:, :-1]
        h = [a0[..., :-1]] + [t[:, :, :-1] for t in a[1:]]
        self.g_last = g[last]
        # -onehot / b of the step's samples, made per step from their labels (a per-epoch table in every
        # ticket's order would be K x n x classes floats written and read back from beyond the cache)
        self.noh = torch.empty(b, shapes[-1][0]) if shared else torch.empty(K, b, shapes[-1][0])
        self.wide_ok = True
        if shared:
            width = shapes[0][0]
            z0, g0 = torch.empty(b, K * width), torch.empty(b, K * width)
            self.wide_ok = net.strides[0] == width * shapes[0][1]  # layer 1 of all tickets as one matrix
            w1 = net.flat[: K * width * shapes[0][1]].view(-1, shapes[0][1])
            g1 = net.grad[: K * width * shapes[0][1]].view(-1, shapes[0][1])
            self.wide_ok = (self.wide_ok and _agrees("wide", a0, w1.t(), z0, width)
                            and _agrees("wide-grad", g0.t(), a0, g1, width))
            pre0 = z0.view(b, K, -1).transpose(0, 1)
            g[0] = g0.view(b, K, -1).transpose(0, 1)
            first = lambda: torch.mm(a0, w1.t(), out=z0)  # noqa: E731
            grad0 = lambda: torch.mm(g0.t(), a0, out=g1)  # noqa: E731
        else:
            pre0 = z[0]
            first = _product(a0, wt[0], z[0]) if last > 0 else None
            grad0 = _product(g[0].transpose(1, 2), a0, net.g[0])
        ops = []  # (name, FLOPs of this call for all tickets, the call), in the step's order
        flops = lambda l: 2 * K * b * shapes[l][0] * (shapes[l][1] - 1)  # noqa: E731  (kernel weights only)
        ops.append(("gather rows", 0, lambda: torch.index_select(self._data, 0, self._idx, out=self.x)))
        ops.append(("loss targets", 0, self._targets))
        for l in range(last):
            ops.append((f"layer {l + 1} forward", flops(l), first if l == 0 else _product(a[l], wt[l], z[l])))
            ops.append((f"relu {l + 1}", 0, lambda pre=(pre0 if l == 0 else z[l]), post=h[l + 1]: relu(pre, 0, out=post)))
        ops.append((f"layer {last + 1} forward", flops(last), _product(a[last], wt[last], self.logits)))
        ops.append(("softmax", 0, lambda: torch.softmax(self.logits, 2, out=self.sm)))
        ops.append(("loss gradient", 0, lambda: torch.add(self.noh, self.sm, alpha=self._alpha, out=self.g_last)))
        for l in range(last, 0, -1):
            ops.append((f"layer {l + 1} weight grad", flops(l), _product(g[l].transpose(1, 2), a[l], net.g[l])))
            ops.append((f"layer {l + 1} input grad", flops(l), _product(g[l], net.w[l][:, :, :-1], z[l - 1])))
            ops.append((f"relu {l} backward", 0,
                        lambda up=z[l - 1], act=h[l], down=g[l - 1]: relu_back(up, act, 0, grad_input=down)))
        ops.append(("layer 1 weight grad", flops(0), grad0))
        if net.mask is not None:
            ops.append(("mask gradients", 0, lambda: net.grad.mul_(net.mask)))
        self.ops = ops
        self.calls = [op for _, _, op in ops]

    def feed(self, x: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor, alpha: float) -> None:
        """The next step: rows ``idx`` of the data ``x`` ``(n, in)`` (one batch, or K batches ticket
        after ticket), their labels ``(b, 1)`` (or ``(K, b, 1)``), and ``alpha = 1 / b``."""
        self._data, self._idx, self._labels, self._alpha = x, idx, labels, alpha

    def _targets(self) -> None:
        """``noh = -onehot / b`` of the step's samples: the values of the single path's table
        (``onehot * (-1/b)``: -1/b, and -0.0 elsewhere), for this step's rows only."""
        self.noh.fill_(-0.0).scatter_(-1, self._labels, -self._alpha)


def _fit_batched(spec, params, masks, data, config, seeds, snaps) -> list[TrainResult]:
    K, names = len(params), spec.layer_names
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if x.shape[1] != spec.sizes[0]:
        raise ConfigError(f"model takes {spec.sizes[0]} inputs but dataset {data.name} has {x.shape[1]}")
    if int(y.max()) >= spec.sizes[-1]:
        raise ConfigError(f"model has {spec.sizes[-1]} outputs but dataset {data.name} has label {int(y.max())}")
    net = FlatMLP(spec.sizes, *_stack(spec, params, masks))
    n, bsz, classes = x.shape[0], config.batch_size, spec.sizes[-1]
    shared = len(set(seeds)) == 1 and len(net.w) > 1  # one data order, and a hidden layer to widen
    adam = _FusedAdam(*net.adam_views(), config)
    gens = [torch.Generator().manual_seed(s) for s in (seeds[:1] if shared else seeds)]
    results = [TrainResult(params={}, path="flat") for _ in range(K)]  # the single path's bits
    for k in range(K):
        if snaps[k] == 0:
            results[k].snapshot = net.collect(names, k)
    events = {s for s in snaps if s}
    epoch_logits = torch.empty(K, n, classes)  # each ticket's training logits of one epoch, in its shuffled order
    full = _Buffers(net, min(bsz, n), shared)
    short = _Buffers(net, n % bsz, shared) if n % bsz else full
    if shared and not (full.wide_ok and short.wide_ok):  # the wide product would round differently here
        shared = False
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        full = _Buffers(net, min(bsz, n), shared)
        short = _Buffers(net, n % bsz, shared) if n % bsz else full
    train_seconds, cpu_seconds, step = 0.0, 0.0, 0
    for epoch in range(config.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (1 or K, n)
        labels = y.index_select(0, perms.view(-1)).view(len(perms), n, 1)  # in each order: read in sequence
        for s in range(0, n, bsz):
            e = min(s + bsz, n)
            buf = full if e - s == bsz else short
            if shared:
                _step(buf, x, perms[0, s:e], labels[0, s:e], 1.0 / (e - s))
            else:  # every ticket's batch, ticket after ticket
                _step(buf, x, perms[:, s:e].reshape(-1), labels[:, s:e], 1.0 / (e - s))
            epoch_logits[:, s:e] = buf.logits
            adam.step()
            step += 1
            if step in events:
                for k in range(K):
                    if snaps[k] == step:
                        results[k].snapshot = net.collect(names, k)
        train_seconds += time.perf_counter() - t0
        cpu_seconds += time.process_time() - c0
        for k in range(K):
            tr_loss, tr_acc = _scores(epoch_logits[k], labels[0 if shared else k].view(-1))
            te_loss, te_acc = evaluate_model(spec, net.collect(names, k), data.x_test, data.y_test)
            results[k].history.append({"epoch": epoch + 1, "train_loss": tr_loss, "train_accuracy": tr_acc,
                                       "test_loss": te_loss, "test_accuracy": te_acc})
    for k in range(K):
        if snaps[k] is not None and results[k].snapshot is None:
            results[k].snapshot = net.collect(names, k)
        results[k].params = net.collect(names, k)
        results[k].train_seconds, results[k].train_cpu_seconds = train_seconds / K, cpu_seconds / K
    return results


_PROBES: dict[tuple, bool] = {}


def _tickets(k: int, b: int, w: int, fill: float | None = None) -> torch.Tensor:
    """A ``(k, b, w)`` buffer whose tickets each start on a 64-byte boundary (as a buffer of the single path does)."""
    step = aligned(b * w)
    t = torch.empty(k * step).as_strided((k, b, w), (step, w, 1))
    if fill is not None:
        t.fill_(fill)
    return t


def _like(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random values in a tensor of ``t``'s shape and strides."""
    out = torch.empty_strided(t.shape, t.stride())
    out.as_strided((out.untyped_storage().nbytes() // 4,), (1,)).normal_(generator=gen)
    return out


def _agrees(kind: str, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, width: int = 0) -> bool:
    """Does the batched product give each ticket the bits of the single path's ``torch.mm``?

    Which kernel torch and MKL pick (so the rounding) depends on shapes and
    strides: small batched products take a loop of their own, and blocking can
    change with a product's width.  So it is settled once per layout, on random
    operands of exactly these shapes and strides, against ``torch.mm`` on the
    operands the single path passes (a contiguous ``(out, in + 1)`` weight seen
    transposed, contiguous ``(B, width)`` activations and gradients).
    ``kind``: ``"bmm"`` (``a (K, m, n) @ b (K, n, p)``); ``"wide"`` (layer 1
    forward, ``a (B, in+1) @ b (in+1, K*width)``); ``"wide-grad"`` (layer 1
    weight gradient, ``a (K*width, B) @ b (B, in+1)``).
    """
    key = (kind, width, *((tuple(t.shape), t.stride()) for t in (a, b, out)))
    if key not in _PROBES:
        gen = torch.Generator().manual_seed(0)
        pa, pb, po = _like(a, gen), _like(b, gen), torch.empty_strided(out.shape, out.stride())
        if kind == "bmm":
            torch.bmm(pa, pb, out=po)
            ok = all(torch.equal(torch.mm(pa[k], pb[k]), po[k]) for k in range(len(pa)))
        elif kind == "wide":
            torch.mm(pa, pb, out=po)
            cols = [slice(k * width, (k + 1) * width) for k in range(pb.shape[1] // width)]
            ok = all(torch.equal(torch.mm(pa, pb[:, c].t().contiguous().t()), po[:, c]) for c in cols)
        else:
            torch.mm(pa, pb, out=po)
            rows = [slice(k * width, (k + 1) * width) for k in range(pa.shape[0] // width)]
            ok = all(torch.equal(torch.mm(pa[r].t().contiguous().t(), pb), po[r]) for r in rows)
        _PROBES[key] = ok
    return _PROBES[key]


def _product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor):
    """``out[k] = a[k] @ b[k]`` for every ticket, as the single path's ``torch.mm`` computes it:
    one ``torch.bmm`` where it agrees (``_agrees``), else one ``torch.mm`` per ticket."""
    if _agrees("bmm", a, b, out):
        return lambda: torch.bmm(a, b, out=out)
    slices = [(a[k], b[k], out[k]) for k in range(len(a))]

    def loop() -> None:
        for ak, bk, ok in slices:
            torch.mm(ak, bk, out=ok)

    return loop


def _step(buf: _Buffers, x, idx, labels, alpha: float) -> None:
    """One forward/backward of every ticket into ``net.grad`` (masked); the logits land in ``buf.logits``."""
    buf.feed(x, idx, labels, alpha)
    for op in buf.calls:
        op()


__all__ = ["fit_batched"]
