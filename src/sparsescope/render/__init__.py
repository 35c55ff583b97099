"""Static figures (SVG and PNG, laid out in Python) and the report folder.

* :class:`Scene` -- a display list with ``to_svg()`` and ``to_png()``;
* :func:`graph_figure` -- the flowgraph, one output's subgraph, or one input's values;
* :func:`rounds_figures` -- accuracy against density and weights left over lottery rounds (matplotlib Figures);
* :func:`write_report` -- a self-contained folder with ``index.html``, figures and statistics;
* :func:`order_nodes` -- crossing-reducing order of units within layers (shared with the viewer).
"""

from ._graphfig import graph_figure
from ._layout import order_nodes
from ._plots import rounds_figures
from ._report import write_report
from ._scene import Scene

__all__ = ["Scene", "graph_figure", "order_nodes", "rounds_figures", "write_report"]
