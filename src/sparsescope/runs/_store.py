"""The run store: one folder per run, one sub-folder per finished round.

::

    RUN/manifest.json              config, seeds, versions, data fingerprint
    RUN/init.safetensors           the initial parameters
    RUN/rounds/000/mask.safetensors     bool kernels kept (round 0: all)
    RUN/rounds/000/weights.safetensors  trained parameters (float32)
    RUN/rounds/000/rewind.safetensors   (round 0, rewind_step > 0 only)
    RUN/rounds/000/metrics.json    density, weights left, accuracy/loss curve
    RUN/rounds/000/timing.json     wall and training seconds (kept apart so that
                                   identical runs give identical metrics.json)
    RUN/rounds/000/DONE            sha256 of each file above: the completion marker
    RUN/controls/reinit-r005-sN/   lottery-ticket controls, same layout

A round is written in a hidden temporary folder, its DONE marker last, and
then renamed into place, so a round folder either is complete or does not
exist; a crash leaves at most a temporary folder, removed on resume.  A lock
file keeps two processes from writing one run at once.  Nothing is pickled:
tensors are safetensors, the rest JSON.

Reading a run's manifest, status and metrics needs no torch (``sparsescope
runs`` and ``show`` answer fast); torch is imported where tensors are read or
written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .._atomic import FILE_MODE, remove_stale, temp_dir, write_bytes
from .._errors import RunStoreError
from .._resources import check_memory
from .._untrusted import JSON_LIMIT, is_name, parse_json, read_json, read_limited, term
from ._schema import TIMING_KEYS, check_manifest, check_metrics, control_name, round_indices

if TYPE_CHECKING:
    import torch

    from ..prune import Mask

MANIFEST = "manifest.json"
LOCK_TRIES = 20  # x 50 ms: how long a writer waits for a lock held for an instant


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """safetensors bytes of CPU copies of ``tensors`` (deterministic for equal tensors)."""
    from safetensors.torch import save as st_save

    return st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def mask_tensors(mask: Mask) -> dict[str, torch.Tensor]:
    """A mask as bool tensors, one per layer."""
    import torch

    return {n: torch.from_numpy(mask[n].copy()) for n in mask.names()}


def load_tensors(data: bytes, what: str) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes; anything unreadable is a RunStoreError naming ``what``."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise RunStoreError(f"{what}: cannot read tensors: {term(exc)[:200]}") from None


def check_data(manifest: dict[str, Any], data: Any, path: Path) -> None:
    """Refuse to continue a run on data other than the data it was made on."""
    if manifest["data"]["fingerprint"] != data.fingerprint:
        raise RunStoreError(f"run {term(path)} was made on different data (fingerprint differs); not touching it")
    d = manifest["data"]
    if d["input_shape"] != list(data.input_shape) or d["classes"] != list(data.classes):
        raise RunStoreError(f"run {term(path)}: manifest.json describes data of shape {d['input_shape']} with "
                            f"{len(d['classes'])} classes, not {data.name}'s (corrupt)")


@dataclass(frozen=True)
class RoundRecord:
    """A finished round (or control) read back from disk and checked."""

    index: int
    path: Path
    mask: Mask
    params: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    rewind: dict[str, torch.Tensor] | None = None


def write_dir(final: Path, files: dict[str, bytes], *, marker: bool = True) -> None:
    """Write ``files`` into a locked temporary sibling of ``final`` (DONE marker last), then rename.

    Refuses to replace an existing folder: finished results are never overwritten.
    Temporaries of ``final`` left by a killed writer are removed first.
    """
    if final.exists() or final.is_symlink():
        raise RunStoreError(f"{term(final)} already exists; a finished result is never overwritten")
    with temp_dir(final) as tmp:
        for name, data in files.items():
            write_bytes(tmp / name, data)
        if marker:
            write_bytes(tmp / "DONE", _json_bytes({"files": {name: _sha(data) for name, data in files.items()}}))
        os.rename(tmp, final)


def read_checked(folder: Path, what: str, limit: int) -> dict[str, bytes]:
    """All files named in ``folder/DONE``, verified against their hashes.

    Names in DONE follow the config-name rule (no path can be smuggled in);
    each file is read only if it is a regular file of at most ``limit`` bytes.
    """
    if not (folder / "DONE").exists():
        raise RunStoreError(f"{what}: {term(folder)} has no DONE marker (incomplete; delete the folder to redo it)")
    done = read_json(folder / "DONE", f"{what}: DONE marker", RunStoreError)
    names = done.get("files") if isinstance(done, dict) else None
    if not isinstance(names, dict) or not all(is_name(k) and isinstance(v, str) for k, v in names.items()):
        raise RunStoreError(f"{what}: DONE marker in {term(folder)} is corrupt (delete the folder to redo it)")
    out = {}
    for name, digest in names.items():
        p = folder / name
        data = read_limited(p, limit, what, RunStoreError)
        if _sha(data) != digest:
            raise RunStoreError(f"{what}: {term(p)} is corrupt or truncated (checksum mismatch; delete "
                                f"{term(folder)} to redo it)")
        out[name] = data
    return out


def _metrics(files: dict[str, bytes], what: str, index: int | None) -> dict[str, Any]:
    if "metrics.json" not in files:
        raise RunStoreError(f"{what}: metrics.json is missing")
    m = parse_json(files["metrics.json"], f"{what}: metrics.json", RunStoreError)
    timing = parse_json(files["timing.json"], f"{what}: timing.json", RunStoreError) if "timing.json" in files else {}
    return check_metrics(m, timing, what, index)


class RunStore:
    """Read and write one run folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None  # checked once; a manifest is never rewritten

    @property
    def exists(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest, checked for the keys everything else relies on."""
        if self._manifest is not None:
            return self._manifest
        p = self.path / MANIFEST
        if not self.path.is_dir():
            raise RunStoreError(f"run {term(self.path)} does not exist")
        if not p.exists() and not p.is_symlink():
            raise RunStoreError(f"run {term(self.path)} has no {MANIFEST} (not a run folder, or corrupt)")
        m = read_json(p, f"run {term(self.path)}: {MANIFEST}", RunStoreError)
        check_manifest(m, self.path)
        self._manifest = m
        return m

    @staticmethod
    def create(path: Path, manifest: dict[str, Any], init: dict[str, torch.Tensor]) -> "RunStore":
        """Create the run folder atomically (manifest + init, or nothing)."""
        init_bytes = tensors_bytes(init)
        manifest = {**manifest, "init_sha256": _sha(init_bytes)}
        write_dir(Path(path), {"init.safetensors": init_bytes, MANIFEST: _json_bytes(manifest)}, marker=False)
        return RunStore(path)

    @contextlib.contextmanager
    def lock(self, name: str = ".lock") -> Iterator[None]:
        """Hold ``RUN/.lock`` (or ``RUN/name``) exclusively; a second writer gets a clear error, not a race.

        The lock file is opened without following a symbolic link and must be a
        regular file: a planted ``.lock`` link must not create or touch its target.
        Retries for about a second first: :meth:`is_running` probes the locks
        for an instant, and a writer starting at that instant must not fail.
        """
        p = self.path / name
        p.parent.mkdir(exist_ok=True)
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            why = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened ({exc.strerror})"
            raise RunStoreError(f"run {term(self.path)}: lock file {term(p)} {why}; not touching the run") from None
        fh = os.fdopen(fd, "r+b")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunStoreError(f"run {term(self.path)}: lock file {term(p)} is not a regular file")
            for attempt in range(LOCK_TRIES):
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == LOCK_TRIES - 1:
                        raise RunStoreError(f"run {term(self.path)} is being written by another sparsescope "
                                            "process") from None
                    time.sleep(0.05)
            yield
        finally:
            fh.close()

    def is_running(self) -> bool:
        """Whether another process holds one of the run's locks now (``RUN/.lock`` for the
        rounds, ``RUN/controls/.NAME.lock`` for one control)."""
        controls = self.path / "controls"
        locks = [self.path / ".lock", *(sorted(controls.glob(".*.lock")) if controls.is_dir() else [])]
        return any(_is_locked(p) for p in locks)

    def status(self) -> str:
        """``running`` (a process holds the lock), ``finished`` (every planned round and
        configured control is on disk) or ``interrupted`` (neither: run the config again to resume)."""
        if self.is_running():
            return "running"
        m = self.manifest()
        if len(self.finished_rounds()) < m["rounds_planned"]:
            return "interrupted"
        controls = m["config"].get("controls")
        controls = controls if isinstance(controls, dict) else {}
        names = {p.name for p in self.control_dirs()}
        for kind in controls.get("kinds", []):
            for r in controls.get("rounds", []):
                if not any(n.startswith(f"{kind}-r{int(r):03d}-s") for n in names):
                    return "interrupted"
        return "finished"

    def read_metrics_at(self, folder: Path, what: str) -> dict[str, Any]:
        """The metrics of one round or control folder, checked against DONE (no tensors read)."""
        return self._checked_metrics(read_checked(folder, what, self._file_limit(tensors=False)), folder, what)

    def _checked_metrics(self, files: dict[str, bytes], folder: Path, what: str) -> dict[str, Any]:
        """Metrics checked field by field; a round's must name its folder's round, a control's
        its folder's kind, round and seed."""
        index = None if folder.parent.name == "controls" else int(folder.name)
        metrics = _metrics(files, what, index)
        if index is None:
            kind, rnd, seed = control_name(folder.name, True, self.path)
            if (metrics.get("control"), metrics["round"], metrics.get("seed")) != (kind, rnd, seed):
                raise RunStoreError(f"{what}: metrics.json does not describe control {term(folder.name)}")
        return metrics

    def spec(self):
        """The run's model spec (``MLPSpec`` or ``SequentialSpec``), from the manifest."""
        from .._config import from_manifest
        from .._errors import ConfigError

        try:
            return from_manifest(self.manifest()).model
        except ConfigError as exc:
            raise RunStoreError(f"run {term(self.path)}: manifest.json holds a bad config ({exc})") from None

    def layer_names(self) -> list[str]:
        """Weight layer names in model order (``h1``, ``h2``, ``out``; ``c1`` ... for convolutions)."""
        return list(self.spec().layer_names)

    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for n, shape in self.spec().kernel_shapes.items():
            out[f"{n}.weight"], out[f"{n}.bias"] = tuple(shape), (shape[0],)
        return out

    def _checked_params(self, tensors: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
        """Parameters in model order, with the model's names, shapes, float dtype and finite values."""
        import torch

        shapes = self._param_shapes()
        if sorted(tensors) != sorted(shapes):
            raise RunStoreError(f"{what}: tensors {sorted(tensors)} do not match the model's {sorted(shapes)}")
        for k, shape in shapes.items():
            t = tensors[k]
            if tuple(t.shape) != shape or t.dtype not in (torch.float32, torch.float64):
                raise RunStoreError(f"{what}: {k} has shape {tuple(t.shape)} {t.dtype}, expected {shape} float32 "
                                    "or float64")
            if not torch.isfinite(t).all():
                raise RunStoreError(f"{what}: {k} contains NaN or infinity")
        return {k: tensors[k] for k in shapes}  # safetensors does not keep insertion order

    def init_params(self) -> dict[str, torch.Tensor]:
        m = self.manifest()
        p = self.path / "init.safetensors"
        data = read_limited(p, self._file_limit(), f"run {term(self.path)}", RunStoreError)
        if _sha(data) != m.get("init_sha256"):
            raise RunStoreError(f"run {term(self.path)}: init.safetensors is corrupt or truncated (checksum mismatch)")
        return self._checked_params(load_tensors(data, f"run {self.path}: init.safetensors"), "init.safetensors")

    def rewind_params(self) -> dict[str, torch.Tensor]:
        """The weights at step k of round 0, saved when ``prune.rewind_step > 0``."""
        rewind = self.read_round(0).rewind
        if rewind is None:
            raise RunStoreError(f"run {term(self.path)}: round 0 has no rewind weights")
        return rewind

    # -- rounds -----------------------------------------------------------------
    def round_dir(self, index: int) -> Path:
        return self.path / "rounds" / f"{index:03d}"

    def _entries(self, sub: str) -> list[tuple[str, bool]] | None:
        """``(name, is a real folder)`` of ``RUN/sub`` (symbolic links count as not a folder), or None."""
        d = self.path / sub
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise RunStoreError(f"run {term(self.path)}: {sub} is not a folder")
        if not d.is_dir():
            return None
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in os.scandir(d)]

    def finished_rounds(self) -> list[int]:
        """Indices of round folders present (complete by construction), sorted: exactly ``0..k-1``.

        A folder beyond the planned rounds, after a gap, or not named ``NNN``
        makes the whole store invalid (see ``_schema.round_indices``).
        """
        entries = self._entries("rounds")
        if entries is None:
            return []
        return round_indices(entries, self.path, int(self.manifest()["rounds_planned"]))

    def clean_temporaries(self) -> None:
        """Remove leftovers of a killed write (hidden ``.NAME.XXXXXXXX.tmp`` folders and files nobody holds)."""
        remove_stale(self.path.parent, self.path.name)
        for d in (self.path, self.path / "rounds", self.path / "controls"):
            remove_stale(d)

    def write_round(self, folder: Path, mask: Mask, params: dict[str, torch.Tensor], metrics: dict[str, Any],
                    rewind: dict[str, torch.Tensor] | None = None, extra: dict[str, bytes] | None = None) -> None:
        """Write one round (or control) folder atomically; timings go to timing.json.

        ``extra``: further files of the round (e.g. an RL round's ``episode.json``), checked by DONE too.
        """
        files = {
            "mask.safetensors": tensors_bytes(mask_tensors(mask)),
            "weights.safetensors": tensors_bytes(params),
            "metrics.json": _json_bytes({k: v for k, v in metrics.items() if k not in TIMING_KEYS}),
            "timing.json": _json_bytes({k: metrics[k] for k in TIMING_KEYS if k in metrics}),
        }
        if rewind is not None:
            files["rewind.safetensors"] = tensors_bytes(rewind)
        for name, data in (extra or {}).items():
            if name in files or "/" in name or name.startswith("."):
                raise ValueError(f"bad extra round file name {name!r}")
            files[name] = data
        write_dir(folder, files)

    def read_round_json(self, index: int, name: str) -> Any:
        """A JSON file of round ``index`` other than metrics (e.g. ``episode.json``), checked against DONE."""
        what = f"run {term(self.path.name)} round {index}"
        self.read_round(index)  # checks the round exists, with a clear error when it does not
        files = read_checked(self.round_dir(index), what, self._file_limit())
        if name not in files:
            raise RunStoreError(f"{what} has no {name}")
        return parse_json(files[name], f"{what}: {name}", RunStoreError)

    def read_round_at(self, folder: Path, what: str) -> RoundRecord:
        """Read and check one round (or control) folder."""
        import torch

        files = read_checked(folder, what, self._file_limit())
        metrics = self._checked_metrics(files, folder, what)
        for need in ("mask.safetensors", "weights.safetensors"):
            if need not in files:
                raise RunStoreError(f"{what}: {need} is missing from the DONE marker")
        params = self._checked_params(load_tensors(files["weights.safetensors"], f"{what} weights"), what)
        mask_t = load_tensors(files["mask.safetensors"], f"{what} mask")
        names = self.layer_names()
        if sorted(mask_t) != sorted(names):
            raise RunStoreError(f"{what}: mask layers {term(sorted(mask_t))} do not match the model's {names}")
        bad = [n for n in names if mask_t[n].dtype != torch.bool]
        if bad:
            raise RunStoreError(f"{what}: mask of {bad[0]} is {mask_t[bad[0]].dtype}, expected bool")
        from ..prune import Mask

        mask = Mask({n: mask_t[n].numpy().astype(bool) for n in names})
        mask.check_shapes({n: tuple(params[f"{n}.weight"].shape) for n in names})
        if metrics["weights_left"] != mask.kept():
            raise RunStoreError(f"{what}: metrics.json weights_left do not match the mask")
        rewind = None
        if "rewind.safetensors" in files:
            rewind = self._checked_params(load_tensors(files["rewind.safetensors"], f"{what} rewind"), what)
        return RoundRecord(int(metrics["round"]), folder, mask, params, metrics, rewind)

    def read_round(self, index: int) -> RoundRecord:
        folder = self.round_dir(index)
        done = self.finished_rounds()  # checks the whole rounds/ folder, not just this round
        if index not in done:
            raise RunStoreError(
                f"run {term(self.path.name)} has no finished round {index} (finished: {_ranges(done) or 'none'})"
            )
        return self.read_round_at(folder, f"run {term(self.path.name)} round {index}")

    def round_metrics(self) -> list[dict[str, Any]]:
        """Metrics (with timings) of every finished round, in order, verified against DONE."""
        out = [self.read_metrics_at(self.round_dir(i), f"run {term(self.path.name)} round {i}")
               for i in self.finished_rounds()]
        for i, m in enumerate(out[1:], 1):  # one table: the same layers and the same score in every round
            if sorted(m["weights_total"]) != sorted(out[0]["weights_total"]) or (
                    "test_accuracy" in m) != ("test_accuracy" in out[0]):
                raise RunStoreError(f"run {term(self.path.name)} round {i}: metrics.json describes another model "
                                    "than round 0's")
        return out

    def control_dirs(self) -> list[Path]:
        """Control folders ``KIND-rNNN-sSEED`` of finished rounds, sorted; anything else there is refused."""
        entries = self._entries("controls")
        if entries is None:
            return []
        done = set(self.finished_rounds())
        out = []
        for name, is_dir in entries:
            if name.startswith("."):
                continue
            _, rnd, _ = control_name(name, is_dir, self.path)
            if rnd not in done:
                raise RunStoreError(f"run {term(self.path)}: controls/{name} is for round {rnd}, which is not finished")
            out.append(self.path / "controls" / name)
        return sorted(out)

    def _file_limit(self, tensors: bool = True) -> int:
        """The most bytes a file of this run can hold: the float64 parameters plus headers,
        refused up front (with the figure) if that cannot fit in memory.  ``tensors=False``
        (reading metrics only, which must not load the model code): a quarter of the memory
        available."""
        if not tensors:
            from .._resources import available_memory

            return max(JSON_LIMIT, (available_memory() or 8 << 30) // 4)
        n = sum(_numel(s) for s in self._param_shapes().values())
        limit = max(JSON_LIMIT, 8 * n + (1 << 20))
        check_memory(f"run {term(self.path)} ({n:,} parameters)", 3 * limit, RunStoreError)
        return limit


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _is_locked(path: Path) -> bool:
    """Whether a process holds an flock on ``path`` (probed with a shared lock, released at once)."""
    try:  # never through a link, never blocking on a FIFO: a planted lock is not a lock
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # never locked (or unreadable): nobody is writing through it
        return False
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def _ranges(xs: list[int]) -> str:
    if not xs:
        return ""
    return f"{xs[0]}-{xs[-1]}" if xs == list(range(xs[0], xs[-1] + 1)) else ",".join(map(str, xs))


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
