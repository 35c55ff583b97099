"""A sequential model spec: any chain of conv / linear / avgpool / relu / flatten layers.

No torch is needed to read or check a spec.  The TOML form is::

    [model]
    kind = "sequential"
    input_shape = [1, 28, 28]          # (channels, height, width), or [n] for flat inputs
    layers = [
      { type = "conv", channels = 6, kernel = 3 },          # stride = 1, padding = 0 by default
      { type = "relu" },
      { type = "avgpool", kernel = 2 },                     # stride defaults to kernel
      { type = "flatten" },
      { type = "linear", features = 10 },
    ]

Weight layers get stable names that become parameter keys (``c1.weight``),
mask keys and flowgraph layer names: convolutions ``c1``, ``c2`` ...,
linear layers ``h1``, ``h2`` ... and the last weight layer ``out``; average
pools ``p1`` ...  A ``name`` key overrides the default.  ``relu`` applies to
the layer before it; ``flatten`` turns a (C, H, W) map into C*H*W features
in row-major order, as ``torch.nn.Flatten`` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .._checks import need_int
from .._errors import ConfigError

LAYER_TYPES = ("conv", "linear", "relu", "flatten", "avgpool")
_KEYS = {
    "conv": {"type", "name", "channels", "kernel", "stride", "padding"},
    "linear": {"type", "name", "features"},
    "avgpool": {"type", "name", "kernel", "stride"},
    "relu": {"type"},
    "flatten": {"type"},
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_RESERVED = {"in"}


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a :class:`SequentialSpec`.

    ``kind`` is one of :data:`LAYER_TYPES`; ``size`` is the output channels
    (conv) or features (linear); ``kernel``/``stride``/``padding`` apply to
    conv and avgpool (square kernels, symmetric zero padding).
    """

    kind: str
    name: str = ""
    size: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The TOML table form (what :func:`layer_from_table` reads back)."""
        if self.kind == "conv":
            return {"type": "conv", "name": self.name, "channels": self.size, "kernel": self.kernel,
                    "stride": self.stride, "padding": self.padding}
        if self.kind == "linear":
            return {"type": "linear", "name": self.name, "features": self.size}
        if self.kind == "avgpool":
            return {"type": "avgpool", "name": self.name, "kernel": self.kernel, "stride": self.stride}
        return {"type": self.kind}


@dataclass(frozen=True)
class SequentialSpec:
    """Input shape and the layers in order; see the module doc for the TOML form.

    Construction checks everything that can be checked without data:
    shapes chain (a conv needs a (C, H, W) input, a linear a flat one), every
    map keeps at least one position, names are unique, the last layer has
    weights.  ``activation`` is kept for symmetry with ``MLPSpec``.
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (list, tuple)) else None
        if not shape or len(shape) not in (1, 3) or any(
                isinstance(d, bool) or not isinstance(d, int) or not 0 < d <= 100_000 for d in shape):
            raise ConfigError(f"model.input_shape must be [channels, height, width] or [features], got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "layers", tuple(self.layers))
        if not any(layer.kind in ("conv", "linear") for layer in self.layers):
            raise ConfigError("model.layers needs at least one conv or linear layer")
        self.shapes  # checks the chain

    # -- derived ----------------------------------------------------------------------
    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Output shape after each layer (``(C, H, W)`` or ``(n,)``); raises ConfigError if they do not chain."""
        shape = self.input_shape
        out = []
        prev_kind = None
        for i, layer in enumerate(self.layers):
            where = f"model.layers[{i}] ({layer.kind})"
            if layer.kind in ("conv", "avgpool"):
                if len(shape) != 3:
                    raise ConfigError(f"{where} needs a (channels, height, width) input, got shape {list(shape)}")
                c, h, w = shape
                k, s = layer.kernel, layer.stride
                p = layer.padding if layer.kind == "conv" else 0
                oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                if h + 2 * p < k or w + 2 * p < k:
                    raise ConfigError(f"{where}: kernel {k} does not fit the {h}x{w} input (padding {p})")
                shape = (layer.size if layer.kind == "conv" else c, oh, ow)
            elif layer.kind == "linear":
                if len(shape) != 1:
                    raise ConfigError(f"{where} needs a flat input: add {{ type = \"flatten\" }} before it")
                shape = (layer.size,)
            elif layer.kind == "flatten":
                shape = (math.prod(shape),)
            elif layer.kind == "relu":
                if prev_kind not in ("conv", "linear", "avgpool"):
                    raise ConfigError(f"{where} must follow a conv, linear or avgpool layer")
            prev_kind = layer.kind
            out.append(shape)
        return out

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[-1]

    @property
    def weight_layers(self) -> tuple[LayerSpec, ...]:
        return tuple(layer for layer in self.layers if layer.kind in ("conv", "linear"))

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the weight layers in order (the prunable kernels)."""
        return tuple(layer.name for layer in self.weight_layers)

    @property
    def kernel_shapes(self) -> dict[str, tuple[int, ...]]:
        """``name -> weight shape`` as torch stores it: ``(out, in, k, k)`` for conv, ``(out, in)`` for linear."""
        shapes: dict[str, tuple[int, ...]] = {}
        prev = self.input_shape
        for layer, shape in zip(self.layers, self.shapes):
            if layer.kind == "conv":
                shapes[layer.name] = (layer.size, prev[0], layer.kernel, layer.kernel)
            elif layer.kind == "linear":
                shapes[layer.name] = (layer.size, prev[0])
            prev = shape
        return shapes

    @property
    def num_kernel_weights(self) -> int:
        return sum(math.prod(s) for s in self.kernel_shapes.values())

    @property
    def num_outputs(self) -> int:
        return math.prod(self.output_shape)

    @property
    def num_inputs(self) -> int:
        return math.prod(self.input_shape)

    def activation_after(self, index: int) -> str:
        """``"relu"`` when layer ``index`` is directly followed by a relu, else ``"identity"``."""
        nxt = self.layers[index + 1] if index + 1 < len(self.layers) else None
        return "relu" if nxt is not None and nxt.kind == "relu" else "identity"

    def macs_per_sample(self) -> int:
        """Multiply-adds of one forward pass through the weight layers (dense kernels)."""
        total = 0
        for layer, shape in zip(self.layers, self.shapes):
            if layer.kind in ("conv", "linear"):
                per_out = math.prod(self.kernel_shapes[layer.name][1:])
                total += math.prod(shape) * per_out
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "sequential", "input_shape": list(self.input_shape),
                "layers": [layer.to_dict() for layer in self.layers]}


def layer_from_table(i: int, raw: Any, counters: dict[str, int], last_weight: bool) -> LayerSpec:
    """One ``model.layers`` entry -> LayerSpec (default names from ``counters``)."""
    where = f"model.layers[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table like {{ type = \"conv\", channels = 6, kernel = 3 }}")
    kind = raw.get("type")
    if kind not in LAYER_TYPES:
        raise ConfigError(f"{where}.type must be one of {', '.join(LAYER_TYPES)}, got {kind!r}")
    unknown = sorted(set(raw) - _KEYS[kind])
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]} for a {kind} layer (allowed: {', '.join(sorted(_KEYS[kind]))})")
    if kind in ("relu", "flatten"):
        return LayerSpec(kind)
    prefix = {"conv": "c", "linear": "h", "avgpool": "p"}[kind]
    counters[prefix] = counters.get(prefix, 0) + 1
    default = "out" if last_weight else f"{prefix}{counters[prefix]}"
    name = raw.get("name", default)
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ConfigError(f"{where}.name must be a plain identifier (not 'in'), got {name!r}")
    if kind == "conv":
        return LayerSpec("conv", name, need_int(f"{where}.channels", raw.get("channels"), 1, 4096),
                         need_int(f"{where}.kernel", raw.get("kernel"), 1, 64),
                         need_int(f"{where}.stride", raw.get("stride", 1), 1, 64),
                         need_int(f"{where}.padding", raw.get("padding", 0), 0, 64))
    if kind == "linear":
        return LayerSpec("linear", name, need_int(f"{where}.features", raw.get("features"), 1, 100_000))
    kernel = need_int(f"{where}.kernel", raw.get("kernel"), 1, 64)
    return LayerSpec("avgpool", name, 0, kernel, need_int(f"{where}.stride", raw.get("stride", kernel), 1, 64), 0)


def sequential_from_table(raw: Mapping[str, Any]) -> SequentialSpec:
    """``[model]`` with ``kind = "sequential"`` -> SequentialSpec (ConfigError naming any bad key)."""
    unknown = sorted(set(raw) - {"kind", "input_shape", "layers"})
    if unknown:
        raise ConfigError(f"unknown key model.{unknown[0]} for kind 'sequential' (allowed: input_shape, layers)")
    if "input_shape" not in raw or "layers" not in raw:
        raise ConfigError("a sequential model needs model.input_shape and model.layers")
    layers_raw = raw["layers"]
    if not isinstance(layers_raw, list) or not layers_raw:
        raise ConfigError("model.layers must be a non-empty list of layer tables")
    weighted = [i for i, r in enumerate(layers_raw) if isinstance(r, Mapping) and r.get("type") in ("conv", "linear")]
    last = weighted[-1] if weighted else -1
    counters: dict[str, int] = {}
    layers = tuple(layer_from_table(i, r, counters, i == last and r.get("type") == "linear")
                   for i, r in enumerate(layers_raw))
    names = [layer.name for layer in layers if layer.name]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"model.layers: layer name {dup[0]!r} is used twice")
    return SequentialSpec(tuple(raw["input_shape"]) if isinstance(raw["input_shape"], list) else raw["input_shape"], layers)
