"""The MLP: a spec, a deterministic initialisation, and the torch module."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .._errors import ConfigError

ACTIVATIONS = ("relu",)


@dataclass(frozen=True)
class MLPSpec:
    """Layer sizes from input to output, e.g. ``(784, 32, 32, 10)``, and the hidden activation."""

    sizes: tuple[int, ...] = (784, 32, 32, 10)
    activation: str = "relu"

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or any((not isinstance(s, int)) or isinstance(s, bool) or s <= 0 for s in sizes):
            raise ConfigError(f"model sizes must be at least two positive integers, got {list(sizes)}")
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


def init_params(spec: MLPSpec, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic float32 parameters ``{name.weight: (out, in), name.bias: (out,)}``.

    Same distribution as torch's default ``nn.Linear`` init (uniform in
    ``+-1/sqrt(fan_in)`` for weights and biases), drawn from a private
    generator so the global RNG is never touched.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params: dict[str, torch.Tensor] = {}
    for name, (fan_out, fan_in) in spec.kernel_shapes.items():
        bound = 1.0 / fan_in**0.5
        params[f"{name}.weight"] = (torch.rand(fan_out, fan_in, generator=gen) * 2 - 1) * bound
        params[f"{name}.bias"] = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
    return params


def build_mlp(spec: MLPSpec, params: dict[str, torch.Tensor] | None = None, *, seed: int = 0) -> nn.Sequential:
    """An ``nn.Sequential(Flatten, Linear, ReLU, ..., Linear)`` holding copies of ``params``.

    Module names follow the layer names (``h1``, ``h2``, ``out``) so that
    ``state_dict`` keys are ``h1.weight`` etc., the same keys as the run store.
    """
    params = init_params(spec, seed) if params is None else params
    mods: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    names = spec.layer_names
    for i, name in enumerate(names):
        fan_out, fan_in = spec.kernel_shapes[name]
        lin = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.copy_(params[f"{name}.weight"])
            lin.bias.copy_(params[f"{name}.bias"])
        mods.append((name, lin))
        if i < len(names) - 1:
            mods.append((f"{name}_act", nn.ReLU()))
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(mods))
