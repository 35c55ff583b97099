"""The single-file interactive HTML viewer of a run's flowgraphs.

``build_page``/``write_page`` make one self-contained page (no server, no
network): graph view, per-input values, rounds slider, PNG/SVG export.
``notebook_html`` wraps a single flowgraph for a Jupyter output cell.
``read_embedded`` returns the exact ``to_json`` text a page embeds.
"""

from ._embed import read_embedded
from ._page import build_page, notebook_html, write_page
from ._run import parse_samples, write_graph_page, write_run_page
from ._widget import widget

__all__ = ["build_page", "notebook_html", "parse_samples", "read_embedded", "write_graph_page", "write_page",
           "widget", "write_run_page"]
