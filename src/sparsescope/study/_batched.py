"""Batched multi-ticket training: K masked MLPs of one architecture trained in one pass.

At the MLP's size a training step is dominated by per-call overhead, not
arithmetic (see :mod:`sparsescope.train._fit`), so K tickets (seeds, rounds
or controls) trained side by side with batched matrix products cost little
more than one.  Each ticket keeps everything it has when trained alone: its
own start weights and mask, its own shuffle generator (so the same
mini-batches in the same order), its own Adam moments; the batched step is
the same arithmetic as :func:`sparsescope.train.fit` with ``torch.bmm`` /
``torch.baddbmm`` in place of ``mm`` / ``addmm`` (float32, tested equal to
separate training within float tolerance).

Shapes: weights ``(K, out, in)``, biases ``(K, out)``, a batch ``(K, B, in)``.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ConfigError
from ..data import Dataset
from ..models import MLPSpec
from ..train import TrainConfig, TrainResult
from ..train._fit import _FusedAdam, evaluate_model


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
) -> list[TrainResult]:
    """Train K tickets at once; ticket ``k`` starts from ``params[k]`` under ``masks[k]``, shuffles with ``seeds[k]``.

    Returns one :class:`TrainResult` per ticket (per-epoch history included;
    ``train_seconds`` is the shared training time divided by K).  The inputs
    are never modified.
    """
    K = len(params)
    if not isinstance(spec, MLPSpec):
        raise ConfigError("batched training supports the MLP (model.sizes); train other models one by one")
    if not (K == len(masks) == len(seeds)) or K == 0:
        raise ConfigError("fit_batched needs one start, mask and seed per ticket (and at least one ticket)")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _fit_batched(spec, params, masks, data, config, list(seeds))
    finally:
        torch.set_num_threads(prev_threads)


def _fit_batched(spec, params, masks, data, config, seeds) -> list[TrainResult]:
    K = len(params)
    ws, bs, ms = _stack(spec, params, masks)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if x.shape[1] != spec.sizes[0]:
        raise ConfigError(f"model takes {spec.sizes[0]} inputs but dataset {data.name} has {x.shape[1]}")
    n, bsz = x.shape[0], config.batch_size
    plist = [p for pair in zip(ws, bs) for p in pair]
    grads = [torch.zeros_like(p) for p in plist]
    adam = _FusedAdam(plist, grads, config)
    onehot = F.one_hot(y, spec.sizes[-1]).to(torch.float32)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    results = [TrainResult(params={}) for _ in range(K)]
    last = len(ws) - 1
    relu_backward = torch.ops.aten.threshold_backward
    train_seconds = 0.0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (K, n)
        loss_sum = torch.zeros(K, dtype=torch.float32)
        correct = torch.zeros(K, dtype=torch.int64)
        for start in range(0, n, bsz):
            idx = perms[:, start : start + bsz]  # (K, B)
            b = idx.shape[1]
            flat = idx.reshape(-1)
            xb = x.index_select(0, flat).view(K, b, -1)
            yb = y.index_select(0, flat).view(K, b)
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
            logp = torch.log_softmax(h, 2)
            loss_sum -= (logp * ohb).sum((1, 2))
            correct += (h.argmax(2) == yb).sum(1)
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
        train_seconds += time.perf_counter() - t0
        for k in range(K):
            te_loss, te_acc = evaluate_model(spec, _split(spec, ws, bs, k), data.x_test, data.y_test)
            results[k].history.append({"epoch": epoch + 1, "train_loss": float(loss_sum[k]) / n,
                                       "train_accuracy": float(correct[k]) / n, "test_loss": te_loss,
                                       "test_accuracy": te_acc})
    for k in range(K):
        results[k].params = _split(spec, ws, bs, k)
        results[k].train_seconds = train_seconds / K
    return results


def train_controls_batched(run_path: str, kind: str, rounds: Sequence[int], *, data: Dataset | None = None) -> int:
    """Train the ``kind`` controls of ``rounds`` of a finished run in one batched pass.

    Masks, start weights and shuffle seeds are exactly those of
    :func:`sparsescope.runs.run_control`; only the arithmetic is batched, so
    the stored weights equal separately trained ones within float tolerance
    (their metrics say ``"trainer": "batched"``).  Existing controls are kept.
    Returns how many were trained.
    """
    from .._config import from_manifest
    from ..data import load
    from ..runs import RunStore, control_folder, control_seed, derive_seed
    from ..runs._lottery import control_start, round_metrics
    from ..runs._store import check_data, mask_tensors

    store = RunStore(run_path)
    manifest = store.manifest()
    config = from_manifest(manifest)
    todo = []
    for r in rounds:
        seed = control_seed(config, kind, r)
        folder = control_folder(store.path, r, kind, seed)
        if not folder.is_dir():
            todo.append((r, seed, folder))
    if not todo:
        return 0
    data = load(config.dataset) if data is None else data
    check_data(manifest, data, store.path)
    starts, masks, seeds, mask_objs = [], [], [], []
    for r, seed, _ in todo:
        mask, start = control_start(store, config, store.read_round(r).mask, kind, seed)
        starts.append(start)
        masks.append(mask_tensors(mask))
        mask_objs.append(mask)
        seeds.append(derive_seed(config.seed, "shuffle", f"control-{kind}-{seed}", r))
    t0 = time.perf_counter()
    results = fit_batched(config.model, starts, masks, data, config.train, seeds=seeds)
    wall = (time.perf_counter() - t0) / len(todo)
    for (r, seed, folder), mask, res in zip(todo, mask_objs, results):
        for k, v in res.params.items():
            if not torch.isfinite(v).all():
                from ..runs._lottery import TrainingDiverged

                raise TrainingDiverged(f"control {kind} of round {r}: training diverged ({k}); lower train.lr")
        metrics: dict[str, Any] = {**round_metrics(r, mask, res, wall), "control": kind, "seed": seed,
                                   "trainer": "batched"}
        with store.lock(f"controls/.{folder.name}.lock"):
            if not folder.is_dir():
                store.write_round(folder, mask, res.params, metrics)
    return len(todo)


__all__ = ["fit_batched", "train_controls_batched"]
