"""Iterative magnitude pruning as pure functions: ``prune(weights, mask, config) -> Mask``.

Counts are exact: a layer with ``n`` weights left and rate ``p`` loses
``floor(p * n + 1/2)`` weights, computed in exact rational arithmetic from the
rate as written.  Ties are broken by position: among equal magnitudes the
weight with the lower flat index (row-major; for global pruning, the earlier
layer first) is pruned first.  So the same weights and mask always give the
same new mask, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

import numpy as np

from .._errors import ConfigError
from ._mask import Mask

STRATEGIES = ("layerwise", "global")


def _check_rate(what: str, rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0 <= rate < 1) or not math.isfinite(rate):
        raise ConfigError(f"{what} must be a number in [0, 1), got {rate!r}")
    return float(rate)


@dataclass(frozen=True)
class PruneConfig:
    """How each round prunes.

    * ``strategy="layerwise"``: layer ``name`` loses ``rates[name]`` of its remaining
      weights per round (0.0 keeps it as it is; a layer missing from ``rates`` is not pruned);
    * ``strategy="global"``: the layers in ``layers`` (default: all) together lose ``rate``
      of their remaining weights, by one magnitude threshold across them.

    ``rounds`` counts trained rounds including the dense round 0; alternatively
    ``target_density`` runs rounds until the kept fraction is at most it.
    ``rewind_step``: survivors restart from their values at this training step
    of round 0 (0: the initial weights).
    """

    strategy: str = "layerwise"
    rates: Mapping[str, float] = field(default_factory=dict)
    rate: float = 0.2
    layers: tuple[str, ...] | None = None
    rounds: int | None = None
    target_density: float | None = None
    rewind_step: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"prune.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        object.__setattr__(self, "rates", {str(k): _check_rate(f"prune.rates.{k}", v) for k, v in dict(self.rates).items()})
        _check_rate("prune.rate", self.rate)
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(str(s) for s in self.layers))
        if (self.rounds is None) == (self.target_density is None):
            raise ConfigError("prune needs exactly one of 'rounds' or 'target_density'")
        if self.rounds is not None and (isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1):
            raise ConfigError(f"prune.rounds must be a positive integer, got {self.rounds!r}")
        if self.target_density is not None:
            td = self.target_density
            if isinstance(td, bool) or not isinstance(td, (int, float)) or not 0 < td <= 1:
                raise ConfigError(f"prune.target_density must be in (0, 1], got {td!r}")
        if isinstance(self.rewind_step, bool) or not isinstance(self.rewind_step, int) or self.rewind_step < 0:
            raise ConfigError(f"prune.rewind_step must be a non-negative integer, got {self.rewind_step!r}")

    def check_layers(self, names: list[str]) -> None:
        named = list(self.rates) if self.strategy == "layerwise" else list(self.layers or ())
        unknown = [n for n in named if n not in names]
        if unknown:
            raise ConfigError(f"prune names unknown layer(s) {', '.join(unknown)} (the model has {', '.join(names)})")


def count_to_prune(rate: float, alive: int) -> int:
    """``floor(rate * alive + 1/2)`` exactly, reading ``rate`` as its shortest decimal."""
    return math.floor(Fraction(repr(float(rate))) * alive + Fraction(1, 2))


def _order(absw: np.ndarray) -> np.ndarray:
    """Indices sorted by (magnitude, index): the pruning order."""
    return np.lexsort((np.arange(absw.size), absw))


def prune(weights: Mapping[str, np.ndarray], mask: Mask, config: PruneConfig) -> Mask:
    """The next mask: remove the smallest-magnitude surviving weights.

    ``weights[name]`` is the trained kernel ``(out, in)``; only positions the
    mask keeps are candidates, so masks only shrink.  Pure: no input changes.
    """
    names = mask.names()
    config.check_layers(names)
    new = {n: mask[n].copy() for n in names}
    absw = {}
    for n in names:
        w = np.asarray(weights[n])
        if w.shape != mask[n].shape:
            raise ConfigError(f"weights of layer {n} have shape {w.shape}, mask {mask[n].shape}")
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"weights of layer {n} contain NaN or infinity")
        absw[n] = np.abs(w.astype(np.float64)).reshape(-1)
    if config.strategy == "layerwise":
        for n in names:
            rate = config.rates.get(n, 0.0)
            alive = np.flatnonzero(mask[n].reshape(-1))
            k = count_to_prune(rate, alive.size)
            if k:
                drop = alive[_order(absw[n][alive])[:k]]
                new[n].reshape(-1)[drop] = False
    else:
        part = list(config.layers) if config.layers is not None else names
        alive = [np.flatnonzero(mask[n].reshape(-1)) for n in part]
        mags = np.concatenate([absw[n][a] for n, a in zip(part, alive)]) if part else np.zeros(0)
        k = count_to_prune(config.rate, mags.size)
        if k:
            drop = _order(mags)[:k]  # concatenation order = (layer order, flat index)
            offsets = np.cumsum([0] + [a.size for a in alive])
            for j, n in enumerate(part):
                sel = drop[(drop >= offsets[j]) & (drop < offsets[j + 1])] - offsets[j]
                new[n].reshape(-1)[alive[j][sel]] = False
    return Mask(new)


def planned_counts(totals: Mapping[str, int], config: PruneConfig, max_rounds: int = 2000) -> list[dict[str, int] | int]:
    """Kept weights before each round, without any weights (counts are data-free).

    Layerwise: a list of ``{layer: kept}``; global: totals per round are
    exact, the split between layers is not known in advance, so entries are
    the total kept.  Length: ``config.rounds``, or enough rounds to reach
    ``config.target_density``.
    """
    kept = dict(totals)
    grand = sum(totals.values())
    out: list = []
    part = list(config.layers) if config.layers is not None else list(totals)
    for r in range(max_rounds):
        out.append(dict(kept) if config.strategy == "layerwise" else sum(kept.values()))
        if config.rounds is not None and len(out) == config.rounds:
            return out
        if config.target_density is not None and sum(kept.values()) <= config.target_density * grand:
            return out
        if config.strategy == "layerwise":
            nxt = {n: c - count_to_prune(config.rates.get(n, 0.0), c) for n, c in kept.items()}
        else:
            alive = sum(kept[n] for n in part)
            k = count_to_prune(config.rate, alive)
            # the split is unknown; charge it to the first layers for the total only
            nxt = dict(kept)
            for n in part:
                take = min(k, nxt[n])
                nxt[n] -= take
                k -= take
        if nxt == kept:
            break
        kept = nxt
    lowest = sum(kept.values()) / grand if grand else 1.0
    raise ConfigError(
        f"prune.target_density {config.target_density} is unreachable with these rates: "
        f"the density stops at {lowest:.4f}"
    )


def random_mask(like: Mask, seed: int) -> Mask:
    """A random mask with exactly the same number of kept weights per layer as ``like``."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in like.names():
        m = np.zeros(like[n].size, dtype=bool)
        m[rng.permutation(like[n].size)[: int(like[n].sum())]] = True
        out[n] = m.reshape(like[n].shape)
    return Mask(out)
