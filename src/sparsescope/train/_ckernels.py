"""The compiled direct-convolution kernels (``_convkernels.cpp``): build once, load with ctypes.

The kernels are plain C++ (GCC vector extensions, no torch headers), so a build
takes about 2 s with ``g++ -O3 -march=native`` and needs nothing but a C++
compiler (g++ is on every machine ``scripts/setup.sh`` targets; ``CXX``
overrides it).  The shared object is cached under
``$SPARSESCOPE_KERNEL_CACHE`` (default ``~/.cache/sparsescope/kernels``),
named by a hash of the source, the flags, the compiler and the CPU's flags, and
written atomically (two processes building at once both succeed), so a machine
builds each version once (about 2.3 s of CPU; loading a built one takes about
20 ms); a cached library that fails to load is built again.
``scripts/setup.sh`` builds it ahead.

:func:`kernels` returns the loaded library, or ``None`` when there is no
compiler or the build fails (``status()`` says why); training then falls back
to autograd, which is slower but gives the same gradients.
``SPARSESCOPE_CONV_KERNELS=0`` turns the kernels off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SOURCE = Path(__file__).with_name("_convkernels.cpp")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno")
_state: dict[str, object] = {}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def cache_dir() -> Path:
    env = os.environ.get("SPARSESCOPE_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparsescope" / "kernels"


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def library_path() -> Path | None:
    """Where the built kernels for this source, compiler and CPU live (``None``: no compiler)."""
    cxx = _compiler()
    if cxx is None:
        return None
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(FLAGS), cxx, version, _cpu_flags()]).encode()).hexdigest()
    return cache_dir() / f"convkernels-{key[:20]}.so"


def build(*, force: bool = False) -> Path:
    """Build the kernels if they are not cached yet (or ``force``); the library's path.

    Raises RuntimeError (or OSError) with the reason.  Builds go to a temporary
    file renamed into place; ones a killed process left behind (over an hour
    old) are removed here.
    """
    path = library_path()
    if path is None:
        raise RuntimeError("no C++ compiler (g++ / c++ / clang++; or set CXX)")
    if path.exists() and not force:
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in path.parent.glob(".build-*.so"):
        try:
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        proc = subprocess.run([_compiler(), *FLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"building {SOURCE.name} failed: {proc.stderr.strip()[-400:]}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _declare(lib: ctypes.CDLL) -> None:
    p, lg, i = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    for suffix in ("f32", "f64"):
        getattr(lib, f"conv_fwd_{suffix}").argtypes = [p, lg, lg, p, p, p, lg, lg] + [i] * 8
        getattr(lib, f"conv_wgrad_{suffix}").argtypes = [p, lg, lg, p, lg, lg, p, p, p] + [i] * 7
        getattr(lib, f"conv_igrad_{suffix}").argtypes = [p, lg, lg, p, p, lg, lg] + [i] * 7
        for name in ("fwd", "wgrad", "igrad"):
            getattr(lib, f"conv_{name}_{suffix}").restype = None


def kernels() -> ctypes.CDLL | None:
    """The loaded kernels (built on first use), or ``None`` if they are turned off or cannot be built."""
    if "lib" not in _state:
        lib, why = None, "ok"
        if os.environ.get("SPARSESCOPE_CONV_KERNELS", "1") == "0":
            why = "turned off (SPARSESCOPE_CONV_KERNELS=0)"
        else:
            try:
                try:
                    lib = ctypes.CDLL(str(build()))
                except OSError:  # a damaged cached library: build it again, once
                    lib = ctypes.CDLL(str(build(force=True)))
                _declare(lib)
            except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as e:
                lib, why = None, str(e)
        _state["lib"], _state["why"] = lib, why
    return _state["lib"]  # type: ignore[return-value]


def status() -> str:
    """``"ok"`` or why the kernels are not used."""
    kernels()
    return str(_state["why"])
