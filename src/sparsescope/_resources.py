"""What the machine can give: memory and threads, checked before any work starts.

A config can pass every field check and still ask for more than the machine
has (``sizes = [784, 100000, 100000, 10]`` is ten billion weights).  Rather
than die half-way with a MemoryError or an OpenMP abort, the estimate is
made first and the refusal names the figure.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ._errors import ConfigError, SparsescopeError

# bytes per parameter while training one round: float32 weights, gradients,
# Adam's two moments, the float mask, the start weights (init or rewind), the
# round's snapshot, the previous round read back, and the safetensors bytes of
# what is written (measured peak on the MNIST MLP: ~40; rounded up)
TRAIN_BYTES_PER_PARAM = 48


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(what: str, need: int, error: type[SparsescopeError] = ConfigError) -> None:
    """Refuse, naming both figures, when ``need`` bytes exceed the memory available."""
    have = available_memory()
    if have is not None and need > have:
        raise error(f"{what} needs about {human_bytes(need)} of memory but only {human_bytes(have)} is available")


def model_parameters(spec: Any) -> int:
    """Parameters of a model spec (kernel weights + biases), computed from its sizes, no allocation."""
    kernels = sum(_prod(s) for s in spec.kernel_shapes.values())
    return kernels + int(getattr(spec, "num_biases", 0))


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def train_memory(spec: Any, batch_size: int) -> int:
    """Estimated peak bytes to train one round of ``spec`` (weights, optimizer state, activations)."""
    params = model_parameters(spec)
    units = sum(_prod(s[:1]) for s in spec.kernel_shapes.values())
    return TRAIN_BYTES_PER_PARAM * params + 16 * batch_size * units


def check_train_memory(spec: Any, batch_size: int) -> None:
    """Refuse a model that cannot be trained in the memory available (before anything is written)."""
    params = model_parameters(spec)
    check_memory(f"the model ({params:,} parameters) with batch_size {batch_size}", train_memory(spec, batch_size))


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(n: int) -> int:
    """``n`` if this process can run ``n`` compute threads, else a ConfigError.

    More threads than usable CPUs is refused (it only slows training down, and
    far more can exhaust the process limit, which OpenMP answers by aborting
    the process); the threads are also started once, so a limit on processes
    is reported here rather than as a crash inside torch.
    """
    cpus = usable_cpus()
    if n > cpus:
        raise ConfigError(f"train.threads = {n} but this process can use {cpus} CPU(s); set train.threads <= {cpus}")
    stop = threading.Event()
    started: list[threading.Thread] = []
    try:
        for _ in range(n - 1):
            t = threading.Thread(target=stop.wait, daemon=True)
            t.start()
            started.append(t)
    except RuntimeError as exc:
        raise ConfigError(f"train.threads = {n}: the system cannot start that many threads ({exc})") from None
    finally:
        stop.set()
        for t in started:
            t.join()
    return n
