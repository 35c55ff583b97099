"""``python3 -m sparsescope`` and the ``sparsescope`` command: :func:`entry`.

This module stays light: its first work is to hold Ctrl-C (see
:mod:`sparsescope._interrupt`).  Worker processes (spawn, Dask) import it
without running the command line.
"""

import os
import sys


def entry() -> None:
    """Run :func:`sparsescope.cli.main` on ``sys.argv`` and end the process with its code."""
    try:
        from . import _interrupt

        _interrupt.hold()  # before any other import: Ctrl-C waits until the command is ready for it
        from .cli import main

        _interrupt.exit(main())
    except KeyboardInterrupt:  # before a hold took effect (or a second Ctrl-C while a message was printed)
        print("sparsescope: interrupted", file=sys.stderr)
        sys.stderr.flush()
        os._exit(130)


if __name__ == "__main__":
    entry()
