"""Independent programs on more than one core: the calling process plus forked helpers.

The programs of one layer do not depend on each other (each is built from
what earlier layers proved), so they can run anywhere.  :func:`run_tasks`
solves them in this process, and once they have taken longer than ``warm``
seconds (small problems never pay the cost of a helper) forks ``workers - 1``
helper processes that take tasks from the same list.  A fork shares the
caller's state (the graph and what is known) without copying or importing
anything; only the small task tuples and the results cross over.  Every
task's result is the same whichever process solved it (HiGHS is
deterministic, one thread), and results come back in task order, so the
outcome does not depend on scheduling.

Where ``fork`` is unavailable (not Linux), everything runs in this process.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

_STATE: list[Any] = []  # (fn, shared) while a pool is open; inherited by the forked helpers


def _call(index: int, task: Any) -> tuple[int, Any]:
    fn, shared = _STATE[0]
    return index, fn(shared, task)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_tasks(fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], *, workers: int = 2,
              warm: float = 0.3, done: Callable[[int], None] | None = None) -> list[Any]:
    """``[fn(shared, t) for t in tasks]``, on up to ``workers`` processes.

    ``fn`` must be a module-level function; ``shared`` is read-only.
    ``done(count)`` is called as results arrive.  Tasks run in list order in
    this process until ``warm`` seconds have passed; then helpers join.
    """
    results: list[Any] = [None] * len(tasks)
    start = time.perf_counter()
    nxt = 0
    count = 0
    while nxt < len(tasks) and (workers <= 1 or not can_fork() or time.perf_counter() - start < warm):
        results[nxt] = fn(shared, tasks[nxt])
        nxt += 1
        count += 1
        if done:
            done(count)
    if nxt == len(tasks):
        return results
    _STATE[:] = [(fn, shared)]
    try:
        with ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            pending: set[Future] = set()
            while nxt < len(tasks) or pending:
                # keep two tasks queued per helper, solve the next one here, collect what is done
                while nxt < len(tasks) and len(pending) < 2 * (workers - 1):
                    pending.add(pool.submit(_call, nxt, tasks[nxt]))
                    nxt += 1
                if nxt < len(tasks):
                    results[nxt] = fn(shared, tasks[nxt])
                    nxt += 1
                    count += 1
                    if done:
                        done(count)
                    finished = {f for f in pending if f.done()}
                else:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    i, res = f.result()
                    results[i] = res
                    count += 1
                    if done:
                        done(count)
                pending -= finished
    finally:
        _STATE.clear()
    return results
