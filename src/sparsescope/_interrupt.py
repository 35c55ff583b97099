"""Ctrl-C at any moment of the command line's start-up: one line, exit code 130.

Python turns SIGINT into a ``KeyboardInterrupt`` at whatever bytecode runs
next.  During start-up that is nearly always inside an import, and the import
machinery and C extensions do not all pass the exception on.  Sending SIGINT
to ``sparsescope run`` at random moments of its first second (before this
module existed) gave, besides the wanted line:

* a half-imported numpy left behind (a C initialiser turned the interrupt into
  ``ImportError: cannot load module more than once``), then an
  ``AttributeError: module 'numpy' has no attribute 'matrix'`` traceback;
* the interrupt swallowed by an import lock's weakref callback ("Exception
  ignored in ... KeyboardInterrupt"): the run went on and exited 0;
* ``Fatal Python error: Aborted`` (exit -6) with the main thread in
  ``torch/__init__.py`` importing ``torch.functional``;
* the right line, then death by SIGINT instead of exit 130: CPython remembers
  a ``KeyboardInterrupt`` that escaped code run by ``exec`` of a string
  (dataclasses and namedtuples build their methods so) and, at the end of
  ``python -m``, kills itself with SIGINT whatever exit code it was given.

So the entry point *holds* SIGINT from its first statement
(``pthread_sigmask``: the kernel keeps the signal pending, and every thread
started meanwhile, torch's included, inherits the mask) until the command has
imported what it needs (``_commands.start_up``).  ``release`` then lets a
pending Ctrl-C in at that one line, inside ``cli.main``'s handler, which
prints the line.  From there on a Ctrl-C interrupts the work at once, as
before (every write is atomic; a run resumes).  The process ends through
:func:`exit`, which holds Ctrl-C again (the work is over) and leaves with
``os._exit(130)`` after an interrupt, so that nothing in the interpreter's
teardown can change the code.

Not covered, as for any Python program: a SIGINT before the interpreter has
installed its handler kills the process silently (the shell shows 130), and
one during Python's own start-up (``site``, ``.pth`` files) before this
package's first line gives Python's traceback.
"""

from __future__ import annotations

import os
import signal
import sys

from typing import NoReturn

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C
_CAN = hasattr(signal, "pthread_sigmask")  # POSIX; elsewhere Ctrl-C is delivered as it comes


def hold() -> bool:
    """Keep SIGINT pending from now on (this thread and threads it starts).

    Returns whether it was held already (by the entry point, before ``cli.main``).
    """
    if not _CAN:
        return False
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def release() -> None:
    """Let SIGINT in again; one that came while held raises ``KeyboardInterrupt`` here."""
    if _CAN:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def exit(code: int) -> NoReturn:  # noqa: A001 - the process's exit, like sys.exit
    """End the process with ``code``, Ctrl-C held: the work is over, a late Ctrl-C changes nothing.

    (The interpreter's teardown takes a while after torch, and resets SIGINT
    to the default action on the way: a Ctrl-C there killed the finished
    command by signal.)  After an interrupt the command's ``with``/``finally``
    blocks have all run (temporaries removed, pools shut down), so only the
    two streams are flushed and the process leaves without the teardown.
    """
    hold()
    if code != INTERRUPTED:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed pipe or no stream: nothing more can be said
            pass
    os._exit(INTERRUPTED)
