"""Model specs and their torch modules.

``MLPSpec`` needs no torch; ``init_params``/``build_mlp`` load it on first use.
"""

from ._spec import ACTIVATIONS, MLPSpec

_LAZY = ("build_mlp", "init_params")


def __getattr__(name: str):
    if name in _LAZY:
        from . import _mlp

        return getattr(_mlp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ACTIVATIONS", "MLPSpec", *_LAZY]
