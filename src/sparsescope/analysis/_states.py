"""What the bounds prove about each ReLU unit over the input box.

Structure analysis (reachability) holds for every input whatsoever; these
statements hold for every input in the box the bounds were computed for
(by default every pixel in [0, 1]) and are exact in the same sense as the
bounds are sound: a unit reported "off" outputs exactly 0 for every input
in the box, so it and its outgoing edges can be deleted without changing
any value there; a unit reported "on" is a plain affine function there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph


@dataclass(frozen=True)
class BoxStates:
    """ReLU units always off / always on over ``box``, and nodes constant over it."""

    box: str
    off: tuple[str, ...]
    on: tuple[str, ...]
    constant: tuple[tuple[str, float], ...]


def box_states(graph: Flowgraph) -> BoxStates:
    """Classify units by their bounds; the graph must carry bounds (see ``bounds.annotate``)."""
    b = graph.bounds
    if b is None:
        raise GraphError("box_states needs a flowgraph with bounds (sparsescope.bounds.annotate)")
    off, on, const = [], [], []
    for layer in graph.layers[1:]:
        lo, hi = b.pre_lo[layer.name], b.pre_hi[layer.name]
        if layer.activation == "relu":
            off += [layer.node_id(i) for i in np.flatnonzero(hi <= 0)]
            on += [layer.node_id(i) for i in np.flatnonzero((lo >= 0) & (hi > 0))]
        vlo, vhi = b.lo[layer.name], b.hi[layer.name]
        const += [(layer.node_id(i), float(vlo[i])) for i in np.flatnonzero(vlo == vhi)]
    return BoxStates(b.box, tuple(off), tuple(on), tuple(const))
