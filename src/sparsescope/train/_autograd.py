"""Training any :class:`SequentialSpec` (convolutions included) through autograd.

The MLP keeps its hand-written fast path (``_fit``); this path serves every
other spec.  Per step: forward with ``torch.nn.functional`` on the
parameter tensors, ``torch.autograd.grad`` for the gradients, masked
gradients zeroed in place, then the same fused Adam kernel as the MLP path
(``_FusedAdam``, no ``torch.optim`` import).  Weights are multiplied by their
mask before training and their gradients masked before every step, so a
pruned weight and its Adam moments stay exactly zero throughout.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ConfigError
from ..models import SequentialSpec
from ..models._torch import forward


@torch.no_grad()
def evaluate_sequential(spec: SequentialSpec, params: dict[str, torch.Tensor], x, y, *, chunk: int = 2000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``params`` on ``(x, y)`` (evaluated in chunks)."""
    xt = torch.as_tensor(np.asarray(x)).float().reshape(len(x), *spec.input_shape)
    yt = torch.as_tensor(np.asarray(y)).long()
    loss, correct = 0.0, 0
    for s in range(0, len(xt), chunk):
        logits = forward(spec, params, xt[s : s + chunk]).flatten(1)
        loss += F.cross_entropy(logits, yt[s : s + chunk], reduction="sum").item()
        correct += int((logits.argmax(1) == yt[s : s + chunk]).sum())
    n = max(len(xt), 1)
    return loss / n, correct / n


def fit_sequential(spec: SequentialSpec, params, masks, data, config, seed, snapshot_step, on_step):
    """The body of :func:`sparsescope.train.fit` for a SequentialSpec (same contract)."""
    from ._fit import TrainResult, _FusedAdam

    names = spec.layer_names
    keys = [f"{n}.{p}" for n in names for p in ("weight", "bias")]
    ps = {k: params[k].detach().clone().float().contiguous() for k in keys}
    ms = {n: None if masks is None else masks[n].to(torch.float32).reshape(ps[f"{n}.weight"].shape) for n in names}
    for n in names:
        if ms[n] is not None:
            ps[f"{n}.weight"].mul_(ms[n])
    x = torch.from_numpy(np.ascontiguousarray(data.x_train))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if math.prod(x.shape[1:]) != spec.num_inputs:
        raise ConfigError(f"model takes inputs of shape {list(spec.input_shape)} but dataset {data.name} has {list(x.shape[1:])}")
    if int(y.max()) >= spec.num_outputs:
        raise ConfigError(f"model has {spec.num_outputs} outputs but dataset {data.name} has label {int(y.max())}")
    x = x.reshape(len(x), *spec.input_shape)
    n, bsz = x.shape[0], config.batch_size
    total = math.ceil(n / bsz) * config.epochs
    plist = [ps[k] for k in keys]
    grads = [torch.zeros_like(p) for p in plist]
    adam = _FusedAdam(plist, grads, config)
    gen = torch.Generator().manual_seed(int(seed))
    result = TrainResult(params={})
    collect = lambda: {k: ps[k].detach().clone() for k in keys}  # noqa: E731
    if snapshot_step == 0:
        result.snapshot = collect()
    mask_list = [ms[k[:-7]] if k.endswith(".weight") else None for k in keys]
    step = 0
    train_seconds = 0.0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for start in range(0, n, bsz):
            idx = perm[start : start + bsz]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            with torch.enable_grad():
                for p in plist:
                    p.requires_grad_(True)
                logits = forward(spec, ps, xb).flatten(1)
                loss = F.cross_entropy(logits, yb)
                gs = torch.autograd.grad(loss, plist)
                for p in plist:
                    p.requires_grad_(False)
            for g, buf, m in zip(gs, grads, mask_list):
                buf.copy_(g)
                if m is not None:
                    buf.mul_(m)
            loss_sum += loss.detach().double() * idx.shape[0]
            correct += (logits.detach().argmax(1) == yb).sum()
            adam.step()
            step += 1
            if snapshot_step is not None and step == snapshot_step:
                result.snapshot = collect()
            if on_step is not None and (step % 50 == 0 or step == total):
                on_step(step, total)
        train_seconds += time.perf_counter() - t0
        te_loss, te_acc = evaluate_sequential(spec, ps, data.x_test, data.y_test)
        result.history.append({"epoch": epoch + 1, "train_loss": float(loss_sum) / n, "train_accuracy": float(correct) / n,
                               "test_loss": te_loss, "test_accuracy": te_acc})
    if snapshot_step is not None and result.snapshot is None:
        result.snapshot = collect()
    result.params = collect()
    result.train_seconds = train_seconds
    return result
