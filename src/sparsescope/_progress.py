"""A small progress bar on stderr (redrawn in place on a terminal, sparse lines otherwise)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Call with ``(label, step, total)``; prints to stderr, never to stdout."""

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.label = None
        self.t0 = time.perf_counter()

    def __call__(self, label: str, step: int, total: int) -> None:
        if label != self.label:
            if self.label is not None and self.tty:
                self.stream.write("\n")
            self.label, self.t0 = label, time.perf_counter()
        done = step >= total
        if self.tty:
            fill = int(self.width * step / max(total, 1))
            bar = "#" * fill + "-" * (self.width - fill)
            self.stream.write(f"\r{label:<18} [{bar}] {step}/{total} {time.perf_counter() - self.t0:5.1f}s")
            self.stream.flush()
        elif done:
            self.stream.write(f"{label}: {total} steps in {time.perf_counter() - self.t0:.2f}s\n")

    def close(self) -> None:
        if self.tty and self.label is not None:
            self.stream.write("\n")
            self.stream.flush()
