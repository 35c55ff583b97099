"""Exact structure analysis (ignored inputs, dead units, constant outputs, subgraphs),
what the bounds prove over the input box (units always off / always on), and
readability measures (docs/readability.md)."""

from ._readability import (
    PER_OUTPUT_MEASURES,
    OutputReadability,
    Readability,
    crossing_count,
    description_bits,
    is_image_input,
    readability,
    switching_units,
)
from ._cones import CONE_RULES, ConeSizes, cone_sizes, conv_geometry
from ._channels import ChannelEdges, ChannelSizes, channel_count, channel_id, channel_of, channel_sizes, channel_view
from ._compare import ComparisonSide, comparison_side, matched_round, weights_per_layer
from ._states import BoxStates, box_states
from ._structure import Structure, analyse, constant_values, live_mask, reach_from_inputs, reach_to_outputs, subgraph

__all__ = [
    "BoxStates",
    "CONE_RULES",
    "ConeSizes",
    "cone_sizes",
    "conv_geometry",
    "ChannelEdges",
    "ChannelSizes",
    "ComparisonSide",
    "OutputReadability",
    "PER_OUTPUT_MEASURES",
    "Readability",
    "Structure",
    "analyse",
    "box_states",
    "channel_count",
    "channel_id",
    "channel_of",
    "channel_sizes",
    "channel_view",
    "comparison_side",
    "matched_round",
    "weights_per_layer",
    "constant_values",
    "crossing_count",
    "description_bits",
    "is_image_input",
    "live_mask",
    "reach_from_inputs",
    "reach_to_outputs",
    "readability",
    "subgraph",
    "switching_units",
]
