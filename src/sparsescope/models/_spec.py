"""The MLP's spec (no torch needed to read or check one)."""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import ConfigError

ACTIVATIONS = ("relu",)


@dataclass(frozen=True)
class MLPSpec:
    """Layer sizes from input to output, e.g. ``(784, 32, 32, 10)``, and the hidden activation."""

    sizes: tuple[int, ...] = (784, 32, 32, 10)
    activation: str = "relu"

    def __post_init__(self) -> None:
        if not isinstance(self.sizes, (list, tuple)):
            raise ConfigError(f"model.sizes must be a list of layer sizes, got {self.sizes!r}")
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or any((not isinstance(s, int)) or isinstance(s, bool) or not 0 < s <= 100_000 for s in sizes):
            raise ConfigError(f"model.sizes must be at least two integers in [1, 100000], got {list(sizes)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r} (expected one of: {', '.join(ACTIVATIONS)})")
        object.__setattr__(self, "sizes", sizes)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``h1`` .. ``hK`` then ``out``: the names of the weight layers (and of flowgraph layers)."""
        n = len(self.sizes) - 1
        return tuple(f"h{i + 1}" for i in range(n - 1)) + ("out",)

    @property
    def kernel_shapes(self) -> dict[str, tuple[int, int]]:
        """``name -> (out, in)`` like ``nn.Linear.weight``."""
        return {name: (self.sizes[i + 1], self.sizes[i]) for i, name in enumerate(self.layer_names)}

    @property
    def num_kernel_weights(self) -> int:
        return sum(o * i for o, i in self.kernel_shapes.values())

    @property
    def num_biases(self) -> int:
        return sum(self.sizes[1:])
