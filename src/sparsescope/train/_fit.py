"""Training the MLP: Adam on in-memory tensors, with hand-written backward.

At batch 60 the MLP's step is tiny (about 6.5 MFLOP), so the fixed cost of
each torch call matters as much as arithmetic.  This loop therefore avoids
autograd and ``DataLoader``: the MLP's parameters live in one flat buffer
with the biases folded into the weight matrices (``_flat``), the backward
pass is three calls per layer (checked against autograd in the tests),
gradients land in preallocated buffers, pruned gradients are zeroed with one
multiply, and one fused Adam kernel updates every parameter.  Data is
reshuffled once per epoch.  Pruned weights stay exactly zero: their gradient
is masked before the step, so Adam's moments stay zero and so does the update.
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
    the CPU time over the same span (0 where not measured), which other
    processes on a busy machine do not inflate.  ``path``: which training code
    computed the gradients (``train.TRAIN_PATHS``); paths differ in float
    rounding, so a run records it beside its masks."""

    params: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    snapshot: dict[str, torch.Tensor] | None = None
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    path: str = ""


def training_path(spec: MLPSpec | SequentialSpec) -> str:
    """The path :func:`fit` takes for ``spec`` on this machine (one of ``TRAIN_PATHS``).

    A SequentialSpec takes the direct kernels when they build here (g++, and
    ``SPARSESCOPE_CONV_KERNELS`` not 0), else autograd; an MLP always ``"flat"``.
    """
    if isinstance(spec, SequentialSpec):
        from ._directconv import supported

        return "direct" if supported(spec, torch.float32) else "autograd"
    return "flat"


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
    path below, a ``SequentialSpec`` the direct-convolution or autograd path (``_autograd``).
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
    from ._flat import FlatMLP, kept_columns, neg_onehot_table, train_epoch

    names = spec.layer_names
    x = torch.from_numpy(np.ascontiguousarray(data.x_train)).reshape(len(data.x_train), -1)
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    if x.shape[1] != spec.sizes[0]:
        raise ConfigError(f"model takes {spec.sizes[0]} inputs but dataset {data.name} has {x.shape[1]}")
    if int(y.max()) >= spec.sizes[-1]:
        raise ConfigError(f"model has {spec.sizes[-1]} outputs but dataset {data.name} has label {int(y.max())}")
    ws, bs, ms = masked_copies(spec, params, masks)
    cols = kept_columns(ms[0], spec.sizes[0])
    net = FlatMLP(spec.sizes, *([None if t is None else t.unsqueeze(0) for t in ts] for ts in (ws, bs, ms)), cols)
    if cols is not None:
        x = x.index_select(1, cols)  # the unused pixels only ever meet pruned weights
    n, bsz = x.shape[0], config.batch_size
    total = math.ceil(n / bsz) * config.epochs
    adam = _FusedAdam(*net.adam_views(), config)
    onehot, scale = neg_onehot_table(y, spec.sizes[-1], bsz)
    gen = torch.Generator().manual_seed(int(seed))
    result = TrainResult(params={}, path="flat")
    if snapshot_step == 0:
        result.snapshot = net.collect(names)
    events = set(range(50, total + 1, 50)) | {total} if on_step is not None else set()
    if snapshot_step is not None and snapshot_step > 0:
        events.add(snapshot_step)

    def on_event(step: int) -> None:
        if step == snapshot_step:
            result.snapshot = net.collect(names)
        if on_step is not None and (step % 50 == 0 or step == total):
            on_step(step, total)

    step = 0
    train_seconds = cpu_seconds = 0.0
    epoch_logits = torch.empty(n, spec.sizes[-1])  # the training logits of one epoch, in shuffled order
    for epoch in range(config.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(n, generator=gen)
        noh = onehot.index_select(0, perm).mul_(scale)  # -onehot / batch size, in shuffled order
        step = train_epoch(net, adam, x, perm, noh, epoch_logits, bsz, step, events, on_event)
        train_seconds += time.perf_counter() - t0
        cpu_seconds += time.process_time() - c0
        tr_loss, tr_acc = _scores(epoch_logits, y.index_select(0, perm))
        te_loss, te_acc = evaluate_model(spec, net.collect(names), data.x_test, data.y_test)
        result.history.append(
            {"epoch": epoch + 1, "train_loss": tr_loss, "train_accuracy": tr_acc, "test_loss": te_loss, "test_accuracy": te_acc}
        )
    if snapshot_step is not None and result.snapshot is None:
        result.snapshot = net.collect(names)
    result.params = net.collect(names)
    result.train_seconds, result.train_cpu_seconds = train_seconds, cpu_seconds
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
        self.step_count, self._one = torch.zeros((), dtype=torch.float32), torch.ones(())
        self.steps = [self.step_count] * len(params)
        self.kw = dict(
            amsgrad=False, lr=float(config.lr), beta1=float(config.betas[0]), beta2=float(config.betas[1]),
            weight_decay=0.0, eps=float(config.eps), maximize=False,
        )

    def step(self) -> None:
        self.step_count.add_(self._one)  # a tensor, not the int 1: no scalar wrapping per step
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
