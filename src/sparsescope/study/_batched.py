"""Batched multi-ticket training: K masked MLPs of one architecture trained in one pass.

At the MLP's size a training step is dominated by per-call overhead, not
arithmetic (see :mod:`sparsescope.train._fit`), so K tickets (seeds, rounds
or controls) trained side by side with batched matrix products cost little
more than one.  Each ticket keeps everything it has when trained alone: its
own start weights and mask, its own shuffle generator (so the same
mini-batches in the same order), its own Adam moments; the batched step is
the same arithmetic as :func:`sparsescope.train.fit` with ``torch.bmm`` /
``torch.baddbmm`` in place of ``mm`` / ``addmm``, and gives the same bits
(tested: weights, snapshot and metrics equal separate training exactly).

Shapes: weights ``(K, out, in)``, biases ``(K, out)``, a batch ``(K, B, in)``.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ConfigError
from ..data import Dataset
from ..models import MLPSpec
from ..train import TrainConfig, TrainResult
from ..train._fit import _FusedAdam, _scores, evaluate_model


def _stack(spec: MLPSpec, params: Sequence[dict[str, torch.Tensor]], masks: Sequence[dict[str, torch.Tensor] | None]):
    names = spec.layer_names
    ws = [torch.stack([p[f"{n}.weight"].detach().float() for p in params]).contiguous() for n in names]
    bs = [torch.stack([p[f"{n}.bias"].detach().float() for p in params]).contiguous() for n in names]
    ms = []
    for i, n in enumerate(names):
        if all(m is None for m in masks):
            ms.append(None)
            continue
        m = torch.stack([torch.ones_like(ws[i][0]) if mk is None else mk[n].to(torch.float32) for mk in masks])
        ws[i].mul_(m)
        ms.append(m.contiguous())
    return ws, bs, ms


def _split(spec: MLPSpec, ws, bs, k: int) -> dict[str, torch.Tensor]:
    return {f"{n}.{kind}": t[k].clone() for n, w, b in zip(spec.layer_names, ws, bs) for kind, t in (("weight", w), ("bias", b))}


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
    snapshot_step=snapshot_steps[k])``, whatever the other tickets are (tested):
    the batched products compute each slice as the single products do, Adam
    updates each ticket's slice as its own tensor, and the training loss is
    taken from the epoch's logits as :func:`fit` takes it.  So a run store does
    not depend on which tickets were trained together.
    Returns one :class:`TrainResult` per ticket (per-epoch history included;
    ``train_seconds`` is the shared training time divided by K).  The inputs
    are never modified.
    """
    K = len(params)
    if not isinstance(spec, MLPSpec):
        raise ConfigError("batched training supports the MLP (model.sizes); train other models one by one")
    snaps = [None] * K if snapshot_steps is None else list(snapshot_steps)
    if not (K == len(masks) == len(seeds) == len(snaps)) or K == 0:
        raise ConfigError("fit_batched needs one start, mask and seed per ticket (and at least one ticket)")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _fit_batched(spec, params, masks, data, config, list(seeds), snaps)
    finally:
        torch.set_num_threads(prev_threads)


def _fit_batched(spec, params, masks, data, config, seeds, snaps) -> list[TrainResult]:
    K = len(params)
    ws, bs, ms = _stack(spec, params, masks)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if x.shape[1] != spec.sizes[0]:
        raise ConfigError(f"model takes {spec.sizes[0]} inputs but dataset {data.name} has {x.shape[1]}")
    n, bsz = x.shape[0], config.batch_size
    plist = [p for pair in zip(ws, bs) for p in pair]
    grads = [torch.zeros_like(p) for p in plist]
    # one tensor per (parameter, ticket): the fused kernel then treats every ticket's slice as
    # fit treats its own tensor (same vector/tail split), which keeps the arithmetic bit-identical
    adam = _FusedAdam([p[k] for p in plist for k in range(K)], [g[k] for g in grads for k in range(K)], config)
    onehot = F.one_hot(y, spec.sizes[-1]).to(torch.float32)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    results = [TrainResult(params={}) for _ in range(K)]
    for k in range(K):
        if snaps[k] == 0:
            results[k].snapshot = _split(spec, ws, bs, k)
    last = len(ws) - 1
    relu_backward = torch.ops.aten.threshold_backward
    epoch_logits = torch.empty(K, n, spec.sizes[-1])  # each ticket's training logits of one epoch, shuffled order
    train_seconds = 0.0
    step = 0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (K, n)
        for start in range(0, n, bsz):
            idx = perms[:, start : start + bsz]  # (K, B)
            b = idx.shape[1]
            flat = idx.reshape(-1)
            xb = x.index_select(0, flat).view(K, b, -1)
            ohb = onehot.index_select(0, flat).view(K, b, -1)
            acts = [xb]
            h = xb
            for i in range(last + 1):
                z = torch.baddbmm(bs[i].unsqueeze(1), h, ws[i].transpose(1, 2))
                if i < last:
                    h = torch.relu(z)
                    acts.append(h)
                else:
                    h = z
            epoch_logits[:, start : start + b] = h
            logp = torch.log_softmax(h, 2)
            g = logp.exp_().sub_(ohb).mul_(1.0 / b)
            for i in range(last, -1, -1):
                gw, gb = grads[2 * i], grads[2 * i + 1]
                torch.bmm(g.transpose(1, 2), acts[i], out=gw)
                torch.sum(g, 1, out=gb)
                if ms[i] is not None:
                    gw.mul_(ms[i])
                if i > 0:
                    g = relu_backward(torch.bmm(g, ws[i]), acts[i], 0)
            adam.step()
            step += 1
            for k in range(K):
                if snaps[k] is not None and step == snaps[k]:
                    results[k].snapshot = _split(spec, ws, bs, k)
        train_seconds += time.perf_counter() - t0
        for k in range(K):
            tr_loss, tr_acc = _scores(epoch_logits[k], y.index_select(0, perms[k]))
            te_loss, te_acc = evaluate_model(spec, _split(spec, ws, bs, k), data.x_test, data.y_test)
            results[k].history.append({"epoch": epoch + 1, "train_loss": tr_loss, "train_accuracy": tr_acc,
                                       "test_loss": te_loss, "test_accuracy": te_acc})
    for k in range(K):
        if snaps[k] is not None and results[k].snapshot is None:
            results[k].snapshot = _split(spec, ws, bs, k)
        results[k].params = _split(spec, ws, bs, k)
        results[k].train_seconds = train_seconds / K
    return results


__all__ = ["fit_batched"]
