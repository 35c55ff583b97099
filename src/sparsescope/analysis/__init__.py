"""Exact structure analysis (ignored inputs, dead units, constant outputs, subgraphs)
and what the bounds prove over the input box (units always off / always on)."""

from ._states import BoxStates, box_states
from ._structure import Structure, analyse, constant_values, live_mask, reach_from_inputs, reach_to_outputs, subgraph

__all__ = ["BoxStates", "Structure", "box_states", "analyse", "constant_values", "live_mask", "reach_from_inputs", "reach_to_outputs", "subgraph"]
