"""The run store and the lottery-ticket driver.

Finding, listing and reading runs needs no torch; the driver (``run_experiment``,
``run_control``, ``derive_seed``, ``RunResult``) loads it on first use.
"""

from ._query import RunInfo, list_runs, resolve_run, round_flowgraph, round_table, run_data
from ._store import RoundRecord, RunStore

_LAZY = ("RunResult", "derive_seed", "run_control", "run_experiment")


def __getattr__(name: str):
    if name in _LAZY:
        from . import _lottery

        return getattr(_lottery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RoundRecord",
    "RunInfo",
    "RunResult",
    "RunStore",
    "derive_seed",
    "list_runs",
    "resolve_run",
    "round_flowgraph",
    "round_table",
    "run_control",
    "run_data",
    "run_experiment",
]
