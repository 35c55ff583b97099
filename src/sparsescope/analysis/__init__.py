"""Exact structure analysis: ignored inputs, dead units, constant outputs, subgraphs."""

from ._structure import Structure, analyse, live_mask, reach_from_inputs, reach_to_outputs, subgraph

__all__ = ["Structure", "analyse", "live_mask", "reach_from_inputs", "reach_to_outputs", "subgraph"]
