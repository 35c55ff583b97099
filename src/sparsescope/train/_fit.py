"""Training the MLP: Adam on in-memory tensors, with hand-written backward.

At batch 60 the MLP's step is tiny (about 9.5 MFLOP), so framework overhead,
not arithmetic, sets the speed.  This loop therefore avoids autograd and
``DataLoader``: the forward pass keeps its activations, the backward pass is
three lines per layer (checked against autograd in the tests), gradients land
in preallocated buffers, pruned gradients are zeroed in place, and one fused
Adam kernel updates every parameter.  Data is reshuffled once per epoch and
sliced.  Pruned weights stay exactly zero: their gradient is masked before the
step, so Adam's moments stay zero and so does the update.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ConfigError
from ..data import Dataset
from ..models import MLPSpec, SequentialSpec
from ._config import TrainConfig


@dataclass
class TrainResult:
    """Trained parameters (float32, same keys as the input), per-epoch metrics,
    the parameters at step ``snapshot_step`` (for late rewinding) and the
    wall time of training alone (no evaluation or I/O); ``train_cpu_seconds``:
    the CPU time of the training thread over the same span (0 where not measured)."""

    params: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    snapshot: dict[str, torch.Tensor] | None = None
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0


def _forward(ws, bs, x, out=None):
    """Logits and the activations each layer consumed (``acts[l]`` feeds layer ``l``);
    ``out``: where to write the logits ``(batch, classes)`` (default: a new tensor)."""
    acts = [x]
    h = x
    last = len(ws) - 1
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = torch.addmm(b, h, w.t(), out=out) if i == last and out is not None else torch.addmm(b, h, w.t())
        if i < last:
            h = torch.relu(z)
            acts.append(h)
        else:
            h = z
    return h, acts


def _scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``logits (N, classes)`` against labels ``y (N,)``."""
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).double().mean().item()
    return loss, acc


@torch.no_grad()
def evaluate_model(spec: MLPSpec | SequentialSpec, params: dict[str, torch.Tensor], x: np.ndarray | torch.Tensor, y) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``params`` on ``(x, y)``."""
    if isinstance(spec, SequentialSpec):
        from ._autograd import evaluate_sequential

        return evaluate_sequential(spec, params, x, y)
    names = spec.layer_names
    xt = torch.as_tensor(x).reshape(len(x), -1).float()
    yt = torch.as_tensor(y).long()
    logits, _ = _forward([params[f"{n}.weight"] for n in names], [params[f"{n}.bias"] for n in names], xt)
    return _scores(logits, yt)


@torch.no_grad()
def fit(
    spec: MLPSpec | SequentialSpec,
    params: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor] | None,
    data: Dataset,
    config: TrainConfig,
    *,
    seed: int,
    snapshot_step: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train copies of ``params`` (``{name.weight, name.bias}``) on ``data.x_train``.

    ``masks[name]`` is a bool ``(out, in)`` (or a conv's ``(out, in, k, k)``) per
    weight layer (``None``: dense).  An ``MLPSpec`` takes the hand-written fast
    path below, a ``SequentialSpec`` the autograd path (``_autograd``).
    Weights are multiplied by their mask before training, so a pruned weight
    is exactly 0 throughout.  ``seed`` drives the epoch shuffles only.
    ``on_step(step, total)`` is called every 50 steps and at the end.
    Returns new tensors; the inputs are never modified.
    """
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        if isinstance(spec, SequentialSpec):
            from ._autograd import fit_sequential

            return fit_sequential(spec, params, masks, data, config, seed, snapshot_step, on_step)
        return _fit(spec, params, masks, data, config, seed, snapshot_step, on_step)
    finally:
        torch.set_num_threads(prev_threads)


def _fit(spec, params, masks, data, config, seed, snapshot_step, on_step) -> TrainResult:
    names = spec.layer_names
    ws, bs, ms = masked_copies(spec, params, masks)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if x.shape[1] != spec.sizes[0]:
        raise ConfigError(f"model takes {spec.sizes[0]} inputs but dataset {data.name} has {x.shape[1]}")
    if int(y.max()) >= spec.sizes[-1]:
        raise ConfigError(f"model has {spec.sizes[-1]} outputs but dataset {data.name} has label {int(y.max())}")
    n, bsz = x.shape[0], config.batch_size
    steps_per_epoch = math.ceil(n / bsz)
    total = steps_per_epoch * config.epochs
    plist = [p for pair in zip(ws, bs) for p in pair]
    grads = [torch.zeros_like(p) for p in plist]
    adam = _FusedAdam(plist, grads, config)
    onehot = F.one_hot(y, spec.sizes[-1]).to(torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    result = TrainResult(params={})
    if snapshot_step == 0:
        result.snapshot = _collect(names, ws, bs)
    last = len(ws) - 1
    step = 0
    train_seconds = 0.0
    relu_backward = torch.ops.aten.threshold_backward
    epoch_logits = torch.empty(n, spec.sizes[-1])  # the training logits of one epoch, in shuffled order
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, bsz):
            idx = perm[start : start + bsz]
            xb, ohb = x.index_select(0, idx), onehot.index_select(0, idx)
            # the logits land in the epoch's buffer: the training loss and accuracy come from it at the end
            logits, acts = _forward(ws, bs, xb, out=epoch_logits[start : start + bsz])
            logp = torch.log_softmax(logits, 1)
            # d(mean CE)/d logits = (softmax - onehot) / batch
            g = logp.exp_().sub_(ohb).mul_(1.0 / idx.shape[0])
            for i in range(last, -1, -1):
                gw, gb = grads[2 * i], grads[2 * i + 1]
                torch.mm(g.t(), acts[i], out=gw)
                torch.sum(g, 0, out=gb)
                if ms[i] is not None:
                    gw.mul_(ms[i])
                if i > 0:
                    g = relu_backward(torch.mm(g, ws[i]), acts[i], 0)
            adam.step()
            step += 1
            if snapshot_step is not None and step == snapshot_step:
                result.snapshot = _collect(names, ws, bs)
            if on_step is not None and (step % 50 == 0 or step == total):
                on_step(step, total)
        train_seconds += time.perf_counter() - t0
        tr_loss, tr_acc = _scores(epoch_logits, y.index_select(0, perm))
        te_loss, te_acc = evaluate_model(spec, _collect(names, ws, bs), data.x_test, data.y_test)
        result.history.append(
            {"epoch": epoch + 1, "train_loss": tr_loss, "train_accuracy": tr_acc, "test_loss": te_loss, "test_accuracy": te_acc}
        )
    if snapshot_step is not None and result.snapshot is None:
        result.snapshot = _collect(names, ws, bs)
    result.params = _collect(names, ws, bs)
    result.train_seconds = train_seconds
    return result


class _FusedAdam:
    """Adam (as ``torch.optim.Adam``, no weight decay) as one fused kernel call.

    ``torch.optim.Adam(fused=True)`` runs the same kernel; calling it directly
    skips about 25 us of per-step Python bookkeeping, a tenth of a step here.
    The tests check it against ``torch.optim.Adam`` step for step.
    """

    def __init__(self, params: list[torch.Tensor], grads: list[torch.Tensor], config: TrainConfig) -> None:
        self.params, self.grads = params, grads
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        # one step count shared by every parameter (they all step together): one add per step, not six
        self.step_count = torch.zeros((), dtype=torch.float32)
        self.steps = [self.step_count] * len(params)
        self.kw = dict(
            amsgrad=False, lr=float(config.lr), beta1=float(config.betas[0]), beta2=float(config.betas[1]),
            weight_decay=0.0, eps=float(config.eps), maximize=False,
        )

    def step(self) -> None:
        self.step_count.add_(1)
        torch._fused_adam_(self.params, self.grads, self.m, self.v, [], self.steps, **self.kw)


def masked_copies(spec: MLPSpec, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None):
    """Float32 copies ``(weights, biases, masks)`` per layer, the weights already multiplied by
    their float 0/1 mask (``masks[l]`` is ``None`` for a dense run)."""
    names = spec.layer_names
    ws = [params[f"{n}.weight"].detach().clone().float().contiguous() for n in names]
    bs = [params[f"{n}.bias"].detach().clone().float().contiguous() for n in names]
    ms = [None if masks is None else masks[n].to(torch.float32) for n in names]
    for w, m in zip(ws, ms):
        if m is not None:
            w.mul_(m)
    ms = [None if m is None or bool(m.all()) else m for m in ms]  # a full mask changes nothing: skip it
    return ws, bs, ms


def _collect(names, ws, bs) -> dict[str, torch.Tensor]:
    out = {}
    for n, w, b in zip(names, ws, bs):
        out[f"{n}.weight"] = w.detach().clone()
        out[f"{n}.bias"] = b.detach().clone()
    return out
