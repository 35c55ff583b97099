"""How to train one round (no torch needed to read or check it)."""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import need_float, need_int
from .._errors import ConfigError


# The training paths a round can record (``TrainResult.path``, metrics.json ``train_path``):
# "flat": the MLP's hand-written backward (``_flat``; the batched sweep trainer computes the same bits);
# "direct": the compiled direct convolutions (``_directconv``); "autograd": torch autograd (``_autograd``).
# Paths differ in float rounding, so the same run trained by two paths can end with different masks.
TRAIN_PATHS = ("flat", "direct", "autograd")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one round. ``threads`` is torch's intra-op thread count."""

    epochs: int = 3
    batch_size: int = 60
    lr: float = 1.2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    threads: int = 1

    def __post_init__(self) -> None:
        need_int("train.epochs", self.epochs, 1, 10_000)
        need_int("train.batch_size", self.batch_size, 1, 1_000_000)
        need_float("train.lr", self.lr, 0.0, 10.0, lo_open=True)
        need_float("train.eps", self.eps, 0.0, 1.0, lo_open=True)
        need_int("train.threads", self.threads, 1, 256)
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else None
        if betas is None or len(betas) != 2:
            raise ConfigError(f"train.betas must be two numbers, got {self.betas!r}")
        for b in betas:
            need_float("train.betas", b, 0.0, 1.0, hi_open=True)
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
