"""The run store and the lottery-ticket driver."""

from ._lottery import RunResult, control_folder, control_seed, derive_seed, run_control, run_experiment
from ._query import RunInfo, list_runs, resolve_run, round_flowgraph, round_table, run_data
from ._rl import is_rl_manifest, round_episode
from ._store import RoundRecord, RunStore

__all__ = [
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
