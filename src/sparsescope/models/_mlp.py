"""The MLP as torch: a deterministic initialisation and the module."""

from __future__ import annotations

import torch
import torch.nn as nn

from ._sequential import SequentialSpec
from ._spec import MLPSpec

def init_params(spec: MLPSpec | SequentialSpec, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic float32 parameters ``{name.weight: (out, in), name.bias: (out,)}``.

    A :class:`SequentialSpec` is initialised by ``_torch.init_sequential``.

    Same distribution as torch's default ``nn.Linear`` init (uniform in
    ``+-1/sqrt(fan_in)`` for weights and biases), drawn from a private
    generator so the global RNG is never touched.
    """
    if isinstance(spec, SequentialSpec):
        from ._torch import init_sequential

        return init_sequential(spec, seed)
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
