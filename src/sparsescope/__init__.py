"""sparsescope: train small networks, lottery-ticket prune them, and read what
survives as an exact flowgraph.

``load_config(path) -> ExperimentConfig`` reads a TOML experiment config.
Subpackages (import what you need; importing ``sparsescope`` loads no torch):

* ``sparsescope.data``     offline datasets -> ``Dataset``
* ``sparsescope.models``   ``MLPSpec`` -> torch module
* ``sparsescope.train``    ``fit(...) -> TrainResult``
* ``sparsescope.prune``    ``Mask``, ``prune(weights, mask, config) -> Mask``
* ``sparsescope.runs``     the run store; ``run_experiment(config)``
* ``sparsescope.graph``    the ``Flowgraph`` IR, ``evaluate``, JSON
* ``sparsescope.bounds``   interval bounds over an input box
* ``sparsescope.analysis`` ignored inputs, dead units, constant outputs, subgraphs
* ``sparsescope.render``   static SVG/PNG figures and reports
* ``sparsescope.viewer``   the single-file interactive page; ``sparsescope.widget(graph)`` in Jupyter
"""

__version__ = "0.1.0"

from ._errors import ConfigError, DataError, GraphError, RunStoreError, SparsescopeError  # noqa: E402

_LAZY = ("ExperimentConfig", "load_config")  # the config code imports numpy; `sparsescope runs` needs neither


def widget(graph, **kw):
    """The two-way Jupyter widget of a flowgraph: :func:`sparsescope.viewer.widget` (needs ``anywidget``)."""
    from .viewer import widget as make

    return make(graph, **kw)


def __getattr__(name: str):
    if name in _LAZY:
        from . import _config

        return getattr(_config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataError",
    "ExperimentConfig",
    "GraphError",
    "RunStoreError",
    "SparsescopeError",
    "__version__",
    "load_config",
    "widget",
]
