"""Masks: which kernel weights of each layer survive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from .._errors import ConfigError


@dataclass(frozen=True, eq=False)
class Mask:
    """Bool arrays ``{layer name: (out, in)}`` (dense) or ``(out, in, kh, kw)``
    (conv, torch's kernel layout), True where the weight is kept.

    Frozen and read-only: pruning returns a new Mask.  Biases are never masked.
    """

    layers: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        fixed = {}
        for name, m in self.layers.items():
            a = np.array(m, dtype=bool, copy=True)
            if a.ndim not in (2, 4):
                raise ConfigError(f"mask of layer {name} must be 2-D (dense) or 4-D (conv), got shape {a.shape}")
            a.setflags(write=False)
            fixed[str(name)] = a
        object.__setattr__(self, "layers", fixed)

    @classmethod
    def ones(cls, shapes: Mapping[str, tuple[int, ...]]) -> "Mask":
        return cls({n: np.ones(s, dtype=bool) for n, s in shapes.items()})

    def __getitem__(self, name: str) -> np.ndarray:
        return self.layers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def names(self) -> list[str]:
        return list(self.layers)

    def kept(self) -> dict[str, int]:
        """Weights left per layer."""
        return {n: int(m.sum()) for n, m in self.layers.items()}

    def totals(self) -> dict[str, int]:
        return {n: int(m.size) for n, m in self.layers.items()}

    @property
    def num_kept(self) -> int:
        return sum(self.kept().values())

    @property
    def density(self) -> float:
        """Kept fraction of all kernel weights."""
        total = sum(self.totals().values())
        return self.num_kept / total if total else 1.0

    def check_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Raise ConfigError unless names and shapes match ``shapes`` exactly."""
        if list(self.layers) != list(shapes):
            raise ConfigError(f"mask layers {list(self.layers)} do not match model layers {list(shapes)}")
        for n, s in shapes.items():
            if self.layers[n].shape != tuple(s):
                raise ConfigError(f"mask of layer {n} has shape {self.layers[n].shape}, expected {tuple(s)}")

    def equals(self, other: "Mask") -> bool:
        return list(self.layers) == list(other.layers) and all(
            np.array_equal(self.layers[n], other.layers[n]) for n in self.layers
        )
