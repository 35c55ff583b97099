"""The flowgraph IR and the pure functions that build, evaluate and serialise it."""

from ._build import from_arrays, from_torch
from ._conv import conv_edges, from_steps, map_shape, pool_edges, spec_steps
from ._eval import Evaluation, evaluate
from ._flowgraph import ACTIVATIONS, Bounds, Flowgraph, Layer
from ._json import FORMAT, VERSION, from_dict, from_json, plain_json, to_dict, to_json

__all__ = [
    "ACTIVATIONS",
    "Bounds",
    "Evaluation",
    "FORMAT",
    "Flowgraph",
    "Layer",
    "VERSION",
    "evaluate",
    "conv_edges",
    "from_arrays",
    "from_steps",
    "map_shape",
    "pool_edges",
    "spec_steps",
    "from_dict",
    "from_json",
    "from_torch",
    "plain_json",
    "to_dict",
    "to_json",
]
