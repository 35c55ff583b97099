"""A :class:`SequentialSpec` as torch: deterministic initialisation, a functional
forward pass and an ``nn.Sequential`` for interop and tests."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._sequential import SequentialSpec


def init_sequential(spec: SequentialSpec, seed: int) -> dict[str, torch.Tensor]:
    """Float32 ``{name.weight, name.bias}`` per weight layer, in layer order.

    torch's default distribution for ``nn.Conv2d``/``nn.Linear`` (uniform in
    ``+-1/sqrt(fan_in)``, fan_in = in_channels * k * k or in_features, for
    weights and biases), drawn from a private generator seeded with ``seed``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params: dict[str, torch.Tensor] = {}
    for name, shape in spec.kernel_shapes.items():
        fan_in = math.prod(shape[1:])
        bound = 1.0 / fan_in**0.5
        params[f"{name}.weight"] = (torch.rand(*shape, generator=gen) * 2 - 1) * bound
        params[f"{name}.bias"] = (torch.rand(shape[0], generator=gen) * 2 - 1) * bound
    return params


def forward(spec: SequentialSpec, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits for ``x`` of shape ``(batch, *spec.input_shape)`` (any float dtype of ``params``)."""
    h = x
    for layer in spec.layers:
        if layer.kind == "conv":
            h = F.conv2d(h, params[f"{layer.name}.weight"], params[f"{layer.name}.bias"],
                         stride=layer.stride, padding=layer.padding)
        elif layer.kind == "linear":
            h = F.linear(h, params[f"{layer.name}.weight"], params[f"{layer.name}.bias"])
        elif layer.kind == "relu":
            h = torch.relu(h)
        elif layer.kind == "flatten":
            h = h.flatten(1)
        elif layer.kind == "avgpool":
            h = F.avg_pool2d(h, layer.kernel, layer.stride)
    return h


def build_model(spec: SequentialSpec, params: dict[str, torch.Tensor] | None = None, *, seed: int = 0) -> nn.Sequential:
    """An ``nn.Sequential`` of ``Conv2d``/``Linear``/``ReLU``/``Flatten``/``AvgPool2d`` holding copies of ``params``.

    Weight modules carry the layer names, so ``state_dict`` keys equal the run store's (``c1.weight``).
    """
    params = init_sequential(spec, seed) if params is None else params
    mods: list[tuple[str, nn.Module]] = []
    prev = spec.input_shape
    for i, (layer, shape) in enumerate(zip(spec.layers, spec.shapes)):
        if layer.kind == "conv":
            m: nn.Module = nn.Conv2d(prev[0], layer.size, layer.kernel, layer.stride, layer.padding)
        elif layer.kind == "linear":
            m = nn.Linear(prev[0], layer.size)
        elif layer.kind == "relu":
            m = nn.ReLU()
        elif layer.kind == "flatten":
            m = nn.Flatten()
        else:
            m = nn.AvgPool2d(layer.kernel, layer.stride)
        if layer.kind in ("conv", "linear"):
            with torch.no_grad():
                m.weight.copy_(params[f"{layer.name}.weight"])
                m.bias.copy_(params[f"{layer.name}.bias"])
        mods.append((layer.name or f"{layer.kind}{i}", m))
        prev = shape
    return nn.Sequential(OrderedDict(mods))
