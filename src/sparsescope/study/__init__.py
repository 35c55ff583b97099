"""Studies across many runs: sweeps over executors, batched tickets, the study report, schedule search.

* :func:`load_sweep` / :func:`run_sweep` -- a grid of seeds x schedules x datasets x
  controls as ordinary runs in the run store, on any ``concurrent.futures``-style executor;
* :func:`open_executor` -- ``local`` processes, ``serial``, ``dask[:ADDRESS]``, ``slurm``;
* :func:`fit_batched` -- K tickets of one MLP trained in one pass (``torch.baddbmm``);
* :func:`collect` / :func:`write_study` -- readability of every round and control, the
  HTML/CSV/JSON study report; the figures as matplotlib ``Figure`` objects;
* :func:`search_schedule` -- successive halving over layerwise rates for the smallest
  readability measure at an accuracy floor.
"""

from ._executors import EXECUTORS, open_executor
from ._batched import fit_batched
from ._steps import train_controls_batched
from ._collect import StudyData, collect
from ._figures import accuracy_density_figure, measure_figure, per_class_figure, svg_text
from ._report import study_tables, write_study
from ._search import SearchConfig, SearchResult, search_from_dict, search_schedule
from ._sweep import SweepConfig, SweepResult, SweepRun, expand, load_sweep, run_sweep, sweep_from_dict

__all__ = [
    "SearchConfig",
    "SearchResult",
    "StudyData",
    "search_from_dict",
    "search_schedule",
    "accuracy_density_figure",
    "fit_batched",
    "train_controls_batched",
    "collect",
    "measure_figure",
    "per_class_figure",
    "study_tables",
    "svg_text",
    "write_study",
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
