"""The run store and the lottery-ticket driver.

Finding, listing and reading runs needs no torch; the drivers (``run_experiment``,
``run_control``, ``derive_seed``, ``RunResult``, and the RL helpers) load it on first use.
"""

import importlib

from ._query import RunInfo, list_runs, resolve_run, round_flowgraph, round_table, run_data
from ._store import RoundRecord, RunStore

_LAZY = {  # name -> the private module that holds it (these import torch, or numpy through analysis)
    "compare_at_matched_accuracy": "_compare",
    "RunResult": "_lottery", "control_folder": "_lottery", "control_seed": "_lottery", "derive_seed": "_lottery",
    "run_control": "_lottery", "run_experiment": "_lottery",
    "is_rl_manifest": "_rl", "round_episode": "_rl",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "compare_at_matched_accuracy",
    "RoundRecord",
    "RunInfo",
    "RunResult",
    "RunStore",
    "control_folder",
    "control_seed",
    "derive_seed",
    "is_rl_manifest",
    "list_runs",
    "resolve_run",
    "round_episode",
    "round_flowgraph",
    "round_table",
    "run_control",
    "run_data",
    "run_experiment",
]
