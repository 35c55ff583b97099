"""Studies across many runs: sweeps over executors, batched tickets, the study report, schedule search.

* :func:`load_sweep` / :func:`run_sweep` -- a grid of seeds x schedules x datasets x
  controls as ordinary runs in the run store, on any ``concurrent.futures``-style executor;
* :func:`open_executor` -- ``local`` processes, ``serial``, ``dask[:ADDRESS]``, ``slurm``.
"""

from ._executors import EXECUTORS, open_executor
from ._sweep import SweepConfig, SweepResult, SweepRun, expand, load_sweep, run_sweep, sweep_from_dict

__all__ = [
    "EXECUTORS",
    "SweepConfig",
    "SweepResult",
    "SweepRun",
    "expand",
    "load_sweep",
    "open_executor",
    "run_sweep",
    "sweep_from_dict",
]
