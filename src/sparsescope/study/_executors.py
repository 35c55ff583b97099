"""Executors in the ``concurrent.futures`` style for sweeps and searches.

``open_executor(spec)`` is a context manager yielding an object with
``submit(fn, *args) -> concurrent.futures.Future``:

* ``local`` (default): one process per core (``spawn``), one torch thread each;
* ``serial``: in this process, one task at a time (debugging, tiny sweeps);
* ``dask`` or ``dask:local``: a local Dask cluster, one single-threaded worker
  process per core (configured by :data:`DASK_WORKER_CONFIG`); ``dask:ADDRESS``
  (e.g. ``dask:tcp://host:8786``): an existing Dask scheduler, whose workers
  are started by their owner (see docs/sweeps.md for the settings that matter).
  Needs the ``dask`` extra (``dask[distributed]``);
* ``slurm`` or ``slurm:PARTITION``: Slurm jobs through ``submitit`` (the
  ``slurm`` extra); without ``sbatch`` on the PATH it says so and falls back
  to ``local``.  Tested: the fallback, and the submitit adapter through
  submitit's in-process ``debug`` cluster; NOT tested on a real Slurm cluster.

Task functions must be importable module-level functions (they are pickled
by reference), and scripts that open a process executor need an
``if __name__ == "__main__":`` guard, as for any ``multiprocessing`` code.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from .._errors import ConfigError, SparsescopeError

EXECUTORS = ("local", "serial", "dask", "slurm")

# A local Dask cluster's workers, configured for training loops (measured in bench/bench_study.py):
# * Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's adaptive
#   mmap threshold: every tensor above 128 KiB is then a fresh mmap, about 25,000 page faults and
#   1.6x the CPU per batched step.  Only the thread limits are kept.
# * The worker's statistical profiler samples the task thread every 10 ms (it needs the GIL the
#   training loop dispatches with); off.
DASK_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
}


def one_thread() -> None:
    """Worker start-up: one OpenMP/torch thread per process (more is slower on a shared box)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


class _QuietWorkers(cf.Executor):
    """A process pool whose workers never see Ctrl-C.

    A terminal's Ctrl-C goes to the whole process group.  A spawned worker
    caught while importing would print a ``KeyboardInterrupt`` traceback, and
    one caught in a task would die mid-step.  Workers are started (lazily, at
    ``submit``) with SIGINT blocked, a mask they inherit and keep; the parent
    alone handles Ctrl-C (one line, exit 130) and stops them (``_stop_workers``).
    Finished rounds are on disk, so a stopped task is redone on resume.
    """

    def __init__(self, pool: cf.ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.pool.submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Terminate ``pool``'s worker processes and let it go without waiting for its tasks."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


class SerialExecutor(cf.Executor):
    """Runs each task at ``submit`` in this process; exceptions land in the future."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future like a pool would
            fut.set_exception(exc)
        return fut


class _SubmititExecutor(cf.Executor):
    """submitit jobs seen as ``concurrent.futures`` futures (one waiter thread per job)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        job = self.inner.submit(fn, *args, **kwargs)
        fut: cf.Future = cf.Future()

        def wait() -> None:
            try:
                fut.set_result(job.result())
            except BaseException as exc:  # noqa: BLE001
                fut.set_exception(exc)

        threading.Thread(target=wait, daemon=True).start()
        return fut


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def parse_executor(spec: str) -> tuple[str, str]:
    """``"dask:tcp://h:8786"`` -> ``("dask", "tcp://h:8786")``; checks the kind."""
    kind, _, arg = (spec or "local").partition(":")
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {spec!r} (expected local, serial, dask[:ADDRESS] or slurm[:PARTITION])")
    if kind in ("local", "serial") and arg:
        raise ConfigError(f"executor {kind} takes no address, got {spec!r}")
    return kind, arg


@contextlib.contextmanager
def open_executor(spec: str | cf.Executor = "local", *, workers: int | None = None, log_dir: str | os.PathLike | None = None,
                  note: Callable[[str], None] | None = None) -> Iterator[cf.Executor]:
    """An executor for ``spec`` (see the module docstring), shut down on exit; an ``Executor``
    object is used as it is (and left running).

    ``workers``: processes for ``local`` and a local Dask cluster (default: one
    per core); ``log_dir``: where submitit keeps its job files.
    """
    if isinstance(spec, cf.Executor):  # any concurrent.futures-style executor the caller runs
        yield spec
        return
    kind, arg = parse_executor(spec)
    n = workers or default_workers()
    say = note or (lambda msg: print(msg, file=sys.stderr))
    if kind == "serial":
        yield SerialExecutor()
        return
    if kind == "slurm" and shutil.which("sbatch") is None:
        say("sparsescope: no Slurm here (sbatch not found); using the local executor")
        kind = "local"
    if kind == "local":
        import multiprocessing as mp

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=one_thread)
        try:
            yield _QuietWorkers(pool)
        except cf.process.BrokenProcessPool:
            _stop_workers(pool)
            raise SparsescopeError("a worker process died (killed, or out of memory); run the same command "
                                   "again to resume: finished rounds and controls are kept") from None
        except BaseException:  # Ctrl-C (or any error) in the parent: the workers must not outlive it
            _stop_workers(pool)
            raise
        else:
            pool.shutdown(wait=True)
        return
    if kind == "dask":
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("executor dask needs Dask: pip install 'sparsescope[dask]' (dask[distributed])") from None
        if arg in ("", "local"):
            import dask

            os.environ["OMP_NUM_THREADS"] = "1"
            with dask.config.set(DASK_WORKER_CONFIG), \
                    LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                client.run(one_thread)
                yield client.get_executor(pure=False)
        else:
            try:
                client = Client(arg, timeout=10)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {arg}: {exc}") from None
            with client:
                client.run(one_thread)
                yield client.get_executor(pure=False)
        return
    try:
        import submitit
    except ImportError:
        raise ConfigError("executor slurm needs submitit: pip install 'sparsescope[slurm]'") from None
    folder = Path(log_dir or "runs") / ".submitit"
    inner = submitit.AutoExecutor(folder=str(folder))
    inner.update_parameters(timeout_min=240, cpus_per_task=1, **({"slurm_partition": arg} if arg else {}))
    yield _SubmititExecutor(inner)
