"""Training any :class:`SequentialSpec` (convolutions included).

The MLP keeps its own fast path (``_fit``); this loop serves every
SequentialSpec.  Per step the gradients come from the compiled direct
convolutions of :class:`~._directconv.DirectStepper` (the default, when the
kernels build; held to autograd by the tests) or from ``torch.autograd.grad``
over the functional forward (the fallback, and ``path="autograd"``).
Masked gradients are zeroed in place, then the same fused Adam kernel as the
MLP path steps (``_FusedAdam``, no ``torch.optim`` import).  Weights are
multiplied by their mask before training and their gradients masked before
every step, so a pruned weight and its Adam moments stay exactly zero.
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


def fit_sequential(spec: SequentialSpec, params, masks, data, config, seed, snapshot_step, on_step, *, path: str = "auto"):
    """The body of :func:`sparsescope.train.fit` for a SequentialSpec (same contract).

    ``path="auto"`` (the default): the compiled kernels of ``_directconv``
    when they are available (``_ckernels.status()``), else autograd;
    ``"direct"`` / ``"autograd"`` force one.  The direct path is about 2x
    faster per epoch of the study's CNN (bench/bench_cnn.py --autograd).
    Both share everything else: batches, masking, fused Adam.
    """
    from ._directconv import DirectStepper, supported
    from ._fit import TrainResult, _FusedAdam, _scores

    names = spec.layer_names
    keys = [f"{n}.{p}" for n in names for p in ("weight", "bias")]
    ps = {k: params[k].detach().clone().float().contiguous() for k in keys}
    ms = {n: None if masks is None else masks[n].to(torch.float32).reshape(ps[f"{n}.weight"].shape) for n in names}
    for n in names:
        if ms[n] is not None:
            ps[f"{n}.weight"].mul_(ms[n])
    ms = {n: None if m is None or bool(m.all()) else m for n, m in ms.items()}  # a full mask changes nothing
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
    gdict = dict(zip(keys, grads))
    adam = _FusedAdam(plist, grads, config)
    gen = torch.Generator().manual_seed(int(seed))
    result = TrainResult(params={})
    collect = lambda: {k: ps[k].detach().clone() for k in keys}  # noqa: E731
    if snapshot_step == 0:
        result.snapshot = collect()
    if path == "auto":
        path = "direct" if supported(spec, plist[0].dtype) else "autograd"
    result.path = path
    if path == "direct":
        stepper = DirectStepper(spec, ps, ms)
        onehot = F.one_hot(y, spec.num_outputs).to(plist[0].dtype)
        grad_step = lambda xb, yb, idx: stepper.step(xb, onehot.index_select(0, idx), gdict)  # noqa: E731
    elif path == "autograd":
        grad_step = lambda xb, yb, idx: _autograd_step(spec, ps, ms, keys, gdict, xb, yb)  # noqa: E731
    else:
        raise ValueError(f"unknown training path {path!r} (auto, direct or autograd)")
    epoch_logits = torch.empty(n, spec.num_outputs)  # the training logits of one epoch, in shuffled order
    step = 0
    train_seconds = train_cpu = 0.0
    for epoch in range(config.epochs):
        t0, c0 = time.perf_counter(), time.thread_time()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, bsz):
            idx = perm[start : start + bsz]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            epoch_logits[start : start + bsz] = grad_step(xb, yb, idx)
            adam.step()
            step += 1
            if snapshot_step is not None and step == snapshot_step:
                result.snapshot = collect()
            if on_step is not None and (step % 50 == 0 or step == total):
                on_step(step, total)
        train_seconds += time.perf_counter() - t0
        train_cpu += time.thread_time() - c0
        tr_loss, tr_acc = _scores(epoch_logits, y.index_select(0, perm))
        te_loss, te_acc = evaluate_sequential(spec, ps, data.x_test, data.y_test)
        result.history.append({"epoch": epoch + 1, "train_loss": tr_loss, "train_accuracy": tr_acc,
                               "test_loss": te_loss, "test_accuracy": te_acc})
    if snapshot_step is not None and result.snapshot is None:
        result.snapshot = collect()
    result.params = collect()
    result.train_seconds, result.train_cpu_seconds = train_seconds, train_cpu
    return result


def _autograd_step(spec, ps, ms, keys, gdict, xb, yb) -> torch.Tensor:
    """Gradients of the mean cross-entropy through autograd into ``gdict`` (masked); returns the logits."""
    plist = [ps[k] for k in keys]
    with torch.enable_grad():
        for p in plist:
            p.requires_grad_(True)
        logits = forward(spec, ps, xb).flatten(1)
        gs = torch.autograd.grad(F.cross_entropy(logits, yb), plist)
        for p in plist:
            p.requires_grad_(False)
    for k, g in zip(keys, gs):
        gdict[k].copy_(g)
        if k.endswith(".weight") and ms[k[:-7]] is not None:
            gdict[k].mul_(ms[k[:-7]])
    return logits.detach()
