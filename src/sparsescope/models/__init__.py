"""Model specs and their torch modules."""

from ._mlp import MLPSpec, build_mlp, init_params

__all__ = ["MLPSpec", "build_mlp", "init_params"]
