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

from .._checks import need_float, need_int
from .._errors import ConfigError
from ._mask import Mask

STRATEGIES = ("layerwise", "global")


def _check_rate(what: str, rate: object) -> float:
    return need_float(what, rate, 0.0, 1.0, hi_open=True)


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

    ``targets`` (layerwise only) stops a layer at a kept count (an integer) or
    a density of that layer (a float in (0, 1]; the count is
    ``floor(density * total + 1/2)``): a round never prunes it below that.
    With targets and neither ``rounds`` nor ``target_density``, rounds run
    until no layer changes any more (every pruned layer needs a target then).
    """

    strategy: str = "layerwise"
    rates: Mapping[str, float] = field(default_factory=dict)
    rate: float = 0.2
    layers: tuple[str, ...] | None = None
    rounds: int | None = None
    target_density: float | None = None
    rewind_step: int = 0
    targets: Mapping[str, int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"prune.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        object.__setattr__(self, "rates", {str(k): _check_rate(f"prune.rates.{k}", v) for k, v in dict(self.rates).items()})
        _check_rate("prune.rate", self.rate)
        if self.layers is not None:
            layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else None
            if layers is None or not all(isinstance(n, str) for n in layers) or len(set(layers)) != len(layers):
                raise ConfigError(f"prune.layers must be a list of distinct layer names, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)
        targets = {}
        for k, v in dict(self.targets).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"prune.targets.{k} must be a kept count (integer) or a density (float), got {v!r}")
            targets[str(k)] = need_int(f"prune.targets.{k}", v, 0) if isinstance(v, int) else need_float(
                f"prune.targets.{k}", v, 0.0, 1.0, lo_open=True)
        object.__setattr__(self, "targets", targets)
        if targets and self.strategy != "layerwise":
            raise ConfigError("prune.targets applies to strategy 'layerwise' only")
        if self.rounds is not None and self.target_density is not None:
            raise ConfigError("prune needs exactly one of 'rounds' or 'target_density'")
        if self.rounds is None and self.target_density is None:
            if not targets:
                raise ConfigError("prune needs exactly one of 'rounds' or 'target_density' (or per-layer 'targets')")
            missing = [n for n, r in self.rates.items() if r > 0 and n not in targets]
            if missing:
                raise ConfigError(f"prune.targets has no target for pruned layer(s) {', '.join(missing)}; "
                                  "give one per layer or set rounds / target_density")
        if self.rounds is not None:
            need_int("prune.rounds", self.rounds, 1, 1000)
        if self.target_density is not None:
            need_float("prune.target_density", self.target_density, 0.0, 1.0, lo_open=True)
        need_int("prune.rewind_step", self.rewind_step, 0)

    def check_layers(self, names: list[str]) -> None:
        named = list(self.rates) + [n for n in self.targets if n not in self.rates] if self.strategy == "layerwise" else list(self.layers or ())
        unknown = [n for n in named if n not in names]
        if unknown:
            raise ConfigError(f"prune names unknown layer(s) {', '.join(unknown)} (the model has {', '.join(names)})")


def count_to_prune(rate: float, alive: int) -> int:
    """``floor(rate * alive + 1/2)`` exactly, reading ``rate`` as its shortest decimal."""
    return math.floor(Fraction(repr(float(rate))) * alive + Fraction(1, 2))


def target_count(config: PruneConfig, name: str, total: int) -> int:
    """The fewest weights layer ``name`` (of ``total``) may keep: its target as a count (0: none)."""
    t = config.targets.get(name)
    if t is None:
        return 0
    if isinstance(t, int):
        return min(t, total)
    return math.floor(Fraction(repr(float(t))) * total + Fraction(1, 2))


def layer_step(config: PruneConfig, name: str, alive: int, total: int) -> int:
    """How many of ``alive`` weights layer ``name`` loses this round (layerwise)."""
    k = count_to_prune(config.rates.get(name, 0.0), alive)
    return max(0, min(k, alive - target_count(config, name, total)))


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
            alive = np.flatnonzero(mask[n].reshape(-1))
            k = layer_step(config, n, alive.size, mask[n].size)
            if k:
                drop = alive[_order(absw[n][alive])[:k]]
                new[n].reshape(-1)[drop] = False
    else:
        part = [n for n in names if config.layers is None or n in config.layers]  # model order
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


def planned_counts(totals: Mapping[str, int], config: PruneConfig, max_rounds: int = 1000) -> list[int]:
    """Total kept weights before each round, computed without any weights.

    Counts depend only on counts (per layer for layerwise pruning, over the
    pruned layers for global pruning), never on the weights, so the number of
    rounds is known before training.  Length: ``config.rounds``, or the first
    round whose density is at most ``config.target_density``.
    """
    kept = dict(totals)
    grand = sum(totals.values())
    part = [n for n in totals if config.layers is None or n in config.layers]
    out: list[int] = []
    for _ in range(max_rounds):
        out.append(sum(kept.values()))
        if config.rounds is not None and len(out) == config.rounds:
            return out
        if config.target_density is not None and out[-1] <= config.target_density * grand:
            return out
        if config.strategy == "layerwise":
            nxt = {n: c - layer_step(config, n, c, totals[n]) for n, c in kept.items()}
        else:
            # the split between layers is unknown in advance; only the total matters here
            k = count_to_prune(config.rate, sum(kept[n] for n in part))
            nxt = dict(kept)
            for n in part:
                take = min(k, nxt[n])
                nxt[n] -= take
                k -= take
        if nxt == kept and config.rounds is None and config.target_density is None:
            return out  # every layer has reached its target (or cannot shrink further)
        if nxt == kept and config.target_density is not None:
            lowest = sum(kept.values()) / grand if grand else 1.0
            raise ConfigError(
                f"prune.target_density {config.target_density} is unreachable with these rates: "
                f"the density stops at {lowest:.4f}"
            )
        kept = nxt
    raise ConfigError(f"prune.target_density {config.target_density} needs more than {max_rounds} rounds")


def random_mask(like: Mask, seed: int) -> Mask:
    """A random mask with exactly the same number of kept weights per layer as ``like``."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in like.names():
        m = np.zeros(like[n].size, dtype=bool)
        m[rng.permutation(like[n].size)[: int(like[n].sum())]] = True
        out[n] = m.reshape(like[n].shape)
    return Mask(out)
