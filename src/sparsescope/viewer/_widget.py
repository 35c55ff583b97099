"""``sparsescope.widget(graph)``: the viewer as a two-way Jupyter widget (PyPI ``anywidget``, optional).

The widget shows the single-file viewer page in a sandboxed frame and syncs
through ``postMessage`` (``bridge.js`` in the page, ``widget.js`` in the
notebook); everything is inline, so it works offline.

* Python sets ``round`` (index into the rounds given), ``output`` (an output
  node index, or ``None`` for all) and ``input`` (``n_in`` floats shown as the
  page's drawn input; ``[]`` for none);
* the page sets ``selected`` (the clicked node's id, ``""`` for none) and
  ``drawn`` (the input the user drew on the pad, ``n_in`` floats in [0, 1]).

A graph with feature maps (a conv layer) gets the conv page, as ``view`` gives a conv run.
``Flowgraph._repr_html_`` (a one-way inline page) stays as it is.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any, Sequence

import numpy as np

from .._errors import SparsescopeError
from ..graph import Flowgraph
from ._convpage import build_conv_page, conv_graph_metrics, has_feature_maps
from ._page import _graph_metrics, build_page

_CLASS: Any = None


def _widget_class() -> Any:
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        import anywidget
        import traitlets
    except ImportError:
        raise SparsescopeError("sparsescope.widget needs anywidget: pip install 'sparsescope[widget]'") from None

    class FlowgraphWidget(anywidget.AnyWidget):
        """The viewer of one or more rounds' flowgraphs, synced both ways (see the module doc)."""

        _esm = resources.files(__package__).joinpath("widget.js").read_text(encoding="utf-8")
        _page = traitlets.Unicode("").tag(sync=True)
        height = traitlets.Int(640).tag(sync=True)
        round = traitlets.Int(0).tag(sync=True)
        output = traitlets.Int(None, allow_none=True).tag(sync=True)
        input = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
        selected = traitlets.Unicode("").tag(sync=True)
        drawn = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)

        def __init__(self, graphs: Sequence[Flowgraph], height: int, **kw: Any) -> None:
            self._graphs = tuple(graphs)
            page_kw = dict(current=len(graphs) - 1, samples_x=np.zeros((0, graphs[0].input.size)),
                           samples_y=np.zeros(0, dtype=np.int64),
                           title=str(graphs[-1].meta.get("model", graphs[-1].meta.get("run", "flowgraph"))))
            if has_feature_maps(graphs[0]):  # feature maps: the conv page (channel view, unrolled subgraphs)
                page = build_conv_page(list(graphs), [conv_graph_metrics(g) for g in graphs], **page_kw)
            else:
                page = build_page(list(graphs), [_graph_metrics(g) for g in graphs], **page_kw)
            super().__init__(_page=page, height=int(height), round=len(graphs) - 1, **kw)

        @traitlets.validate("round")
        def _check_round(self, proposal: Any) -> int:
            r = proposal["value"]
            if not 0 <= r < len(self._graphs):
                raise traitlets.TraitError(f"round {r} is outside 0..{len(self._graphs) - 1}")
            return r

        @traitlets.validate("output")
        def _check_output(self, proposal: Any) -> int | None:
            k = proposal["value"]
            n = self._graphs[0].output.size
            if k is not None and not 0 <= k < n:
                raise traitlets.TraitError(f"output {k} is outside 0..{n - 1}")
            return k

        @traitlets.validate("input")
        def _check_input(self, proposal: Any) -> list[float]:
            x = [float(v) for v in np.asarray(proposal["value"], dtype=np.float64).reshape(-1)]
            n = self._graphs[0].input.size
            if x and (len(x) != n or not all(math.isfinite(v) for v in x)):
                raise traitlets.TraitError(f"input must be {n} finite numbers (or empty), got {len(x)}")
            return x

        @property
        def graph(self) -> Flowgraph:
            """The flowgraph of the round shown."""
            return self._graphs[self.round]

    _CLASS = FlowgraphWidget
    return _CLASS


def widget(graph: Flowgraph | Sequence[Flowgraph], *, height: int = 640, **traits: Any) -> Any:
    """A two-way notebook widget of ``graph`` (or of a list of rounds' flowgraphs of one architecture).

    ``traits`` set the initial ``round``/``output``/``input``.  Needs the
    optional ``anywidget`` (``pip install 'sparsescope[widget]'``).
    """
    graphs = [graph] if isinstance(graph, Flowgraph) else list(graph)
    if not graphs or not all(isinstance(g, Flowgraph) for g in graphs):
        raise SparsescopeError("sparsescope.widget takes a Flowgraph or a list of them")
    return _widget_class()(graphs, height, **traits)
