"""Model specs and their torch modules.

``MLPSpec`` (the MLP) and ``SequentialSpec`` (any chain of conv / linear /
avgpool / relu / flatten) need no torch; ``init_params``/``build_mlp``/
``build_model``/``forward`` load it on first use.
"""

from ._sequential import LAYER_TYPES, LayerSpec, SequentialSpec, sequential_from_table
from ._spec import ACTIVATIONS, MLPSpec

_LAZY = {"build_mlp": "_mlp", "init_params": "_mlp", "build_model": "_torch", "forward": "_torch"}

ModelSpec = MLPSpec | SequentialSpec


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ACTIVATIONS", "LAYER_TYPES", "LayerSpec", "MLPSpec", "ModelSpec", "SequentialSpec", "sequential_from_table", *_LAZY]
