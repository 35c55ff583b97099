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
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .._atomic import DIR_MODE, write_bytes
from .._errors import RunStoreError

if TYPE_CHECKING:
    import torch

    from ..prune import Mask

MANIFEST = "manifest.json"
RUN_FORMAT = "sparsescope.run"
RUN_VERSION = 1
LOCK_TRIES = 20  # x 50 ms: how long a writer waits for a lock held for an instant
TIMING_KEYS = ("train_seconds", "wall_seconds")
METRIC_KEYS = ("round", "density", "weights_left", "weights_total", "kept_total", "history")
SCORE_KEYS = ("test_accuracy", "eval_return")  # a dataset round has the first, an RL round the second


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
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise RunStoreError(f"{what}: cannot read tensors: {exc}") from None


def check_data(manifest: dict[str, Any], data: Any, path: Path) -> None:
    """Refuse to continue a run on data other than the data it was made on."""
    if manifest["data"]["fingerprint"] != data.fingerprint:
        raise RunStoreError(f"run {path} was made on different data (fingerprint differs); not touching it")


@dataclass(frozen=True)
class RoundRecord:
    """A finished round (or control) read back from disk and checked."""

    index: int
    path: Path
    mask: Mask
    params: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    rewind: dict[str, torch.Tensor] | None = None


def _make_tmp_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, DIR_MODE)  # mkdtemp makes 0700
    return tmp


def write_dir(final: Path, files: dict[str, bytes], *, marker: bool = True) -> None:
    """Write ``files`` into a temporary sibling of ``final`` (DONE marker last), then rename.

    Refuses to replace an existing folder: finished results are never overwritten.
    """
    if final.exists():
        raise RunStoreError(f"{final} already exists; a finished result is never overwritten")
    tmp = _make_tmp_dir(final)
    try:
        for name, data in files.items():
            write_bytes(tmp / name, data)
        if marker:
            write_bytes(tmp / "DONE", _json_bytes({"files": {name: _sha(data) for name, data in files.items()}}))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_checked(folder: Path, what: str) -> dict[str, bytes]:
    """All files named in ``folder/DONE``, verified against their hashes."""
    try:
        done = json.loads((folder / "DONE").read_bytes())
        names = done["files"]
        if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
            raise TypeError
    except FileNotFoundError:
        raise RunStoreError(f"{what}: {folder} has no DONE marker (incomplete; delete the folder to redo it)") from None
    except (ValueError, KeyError, TypeError, IsADirectoryError, UnicodeDecodeError):
        raise RunStoreError(f"{what}: DONE marker in {folder} is corrupt (delete the folder to redo it)") from None
    out = {}
    for name, digest in names.items():
        p = folder / name
        if "/" in name or name.startswith(".") or not p.is_file():
            raise RunStoreError(f"{what}: {p} is missing")
        data = p.read_bytes()
        if _sha(data) != digest:
            raise RunStoreError(f"{what}: {p} is corrupt or truncated (checksum mismatch; delete {folder} to redo it)")
        out[name] = data
    return out


def _metrics(files: dict[str, bytes], what: str) -> dict[str, Any]:
    try:
        m = json.loads(files["metrics.json"])
        timing = json.loads(files["timing.json"]) if "timing.json" in files else {}
    except KeyError:
        raise RunStoreError(f"{what}: metrics.json is missing") from None
    except (ValueError, UnicodeDecodeError):
        raise RunStoreError(f"{what}: metrics.json is corrupt") from None
    if not isinstance(m, dict) or not isinstance(timing, dict) or any(k not in m for k in METRIC_KEYS):
        raise RunStoreError(f"{what}: metrics.json lacks the round's metrics")
    score = [k for k in SCORE_KEYS if k in m]
    if len(score) != 1 or not isinstance(m[score[0]], (int, float)) or not isinstance(m["weights_left"], dict):
        raise RunStoreError(f"{what}: metrics.json is malformed")
    return {**m, **{k: float(timing.get(k, 0.0)) for k in TIMING_KEYS}}


class RunStore:
    """Read and write one run folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest, checked for the keys everything else relies on."""
        p = self.path / MANIFEST
        if not self.path.is_dir():
            raise RunStoreError(f"run {self.path} does not exist")
        try:
            m = json.loads(p.read_bytes())
        except FileNotFoundError:
            raise RunStoreError(f"run {self.path} has no {MANIFEST} (not a run folder, or corrupt)") from None
        except (ValueError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise RunStoreError(f"run {self.path}: {MANIFEST} is corrupt ({exc})") from None
        if not isinstance(m, dict) or m.get("format") != RUN_FORMAT:
            raise RunStoreError(f"run {self.path}: {MANIFEST} is not a sparsescope run manifest")
        if m.get("version") != RUN_VERSION:
            raise RunStoreError(f"run {self.path}: unsupported run version {m.get('version')!r}")
        try:
            model = m["config"]["model"]
            ok = (isinstance(m["run_id"], str) and isinstance(model, dict)
                  and isinstance(model.get("sizes", model.get("layers")), list)
                  and isinstance(m["data"]["fingerprint"], str) and isinstance(m["data"]["input_shape"], list)
                  and isinstance(m["data"]["classes"], list) and isinstance(m["rounds_planned"], int))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise RunStoreError(f"run {self.path}: {MANIFEST} is missing required fields (corrupt)")
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

        Retries for about a second first: :meth:`is_running` probes the locks
        for an instant, and a writer starting at that instant must not fail.
        """
        target = self.path / name
        target.parent.mkdir(exist_ok=True)
        fh = open(target, "a+b")
        try:
            for attempt in range(LOCK_TRIES):
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == LOCK_TRIES - 1:
                        raise RunStoreError(f"run {self.path} is being written by another sparsescope process") from None
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
        return _metrics(read_checked(folder, what), what)

    def spec(self):
        """The run's model spec (``MLPSpec`` or ``SequentialSpec``), from the manifest."""
        from .._config import from_manifest

        return from_manifest(self.manifest()).model

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
            if tuple(t.shape) != shape or not t.dtype.is_floating_point:
                raise RunStoreError(f"{what}: {k} has shape {tuple(t.shape)} {t.dtype}, expected {shape} float")
            if not torch.isfinite(t).all():
                raise RunStoreError(f"{what}: {k} contains NaN or infinity")
        return {k: tensors[k] for k in shapes}  # safetensors does not keep insertion order

    def init_params(self) -> dict[str, torch.Tensor]:
        m = self.manifest()
        p = self.path / "init.safetensors"
        if not p.is_file():
            raise RunStoreError(f"run {self.path}: init.safetensors is missing")
        data = p.read_bytes()
        if _sha(data) != m.get("init_sha256"):
            raise RunStoreError(f"run {self.path}: init.safetensors is corrupt or truncated (checksum mismatch)")
        return self._checked_params(load_tensors(data, f"run {self.path}: init.safetensors"), "init.safetensors")

    def rewind_params(self) -> dict[str, torch.Tensor]:
        """The weights at step k of round 0, saved when ``prune.rewind_step > 0``."""
        rewind = self.read_round(0).rewind
        if rewind is None:
            raise RunStoreError(f"run {self.path}: round 0 has no rewind weights")
        return rewind

    # -- rounds -----------------------------------------------------------------
    def round_dir(self, index: int) -> Path:
        return self.path / "rounds" / f"{index:03d}"

    def finished_rounds(self) -> list[int]:
        """Indices of round folders present (complete by construction), sorted."""
        d = self.path / "rounds"
        if d.exists() and not d.is_dir():
            raise RunStoreError(f"run {self.path}: {d} is not a folder")
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 3)

    def clean_temporaries(self) -> None:
        """Remove leftovers of a killed write (hidden ``.*.tmp`` folders and files)."""
        for d in (self.path, self.path / "rounds", self.path / "controls"):
            if d.is_dir():
                for p in d.iterdir():
                    if p.name.startswith(".") and p.name.endswith(".tmp"):
                        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

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
        what = f"run {self.path.name} round {index}"
        self.read_round(index)  # checks the round exists, with a clear error when it does not
        files = read_checked(self.round_dir(index), what)
        if name not in files:
            raise RunStoreError(f"{what} has no {name}")
        try:
            return json.loads(files[name])
        except (ValueError, UnicodeDecodeError):
            raise RunStoreError(f"{what}: {name} is corrupt") from None

    def read_round_at(self, folder: Path, what: str) -> RoundRecord:
        """Read and check one round (or control) folder."""
        files = read_checked(folder, what)
        metrics = _metrics(files, what)
        for need in ("mask.safetensors", "weights.safetensors"):
            if need not in files:
                raise RunStoreError(f"{what}: {need} is missing from the DONE marker")
        params = self._checked_params(load_tensors(files["weights.safetensors"], f"{what} weights"), what)
        mask_t = load_tensors(files["mask.safetensors"], f"{what} mask")
        names = self.layer_names()
        if sorted(mask_t) != sorted(names):
            raise RunStoreError(f"{what}: mask layers {sorted(mask_t)} do not match the model's {names}")
        from ..prune import Mask

        mask = Mask({n: mask_t[n].numpy().astype(bool) for n in names})
        mask.check_shapes({n: tuple(params[f"{n}.weight"].shape) for n in names})
        rewind = None
        if "rewind.safetensors" in files:
            rewind = self._checked_params(load_tensors(files["rewind.safetensors"], f"{what} rewind"), what)
        return RoundRecord(int(metrics["round"]), folder, mask, params, metrics, rewind)

    def read_round(self, index: int) -> RoundRecord:
        folder = self.round_dir(index)
        if not folder.is_dir():
            done = self.finished_rounds()
            raise RunStoreError(
                f"run {self.path.name} has no finished round {index} (finished: {_ranges(done) or 'none'})"
            )
        return self.read_round_at(folder, f"run {self.path.name} round {index}")

    def round_metrics(self) -> list[dict[str, Any]]:
        """Metrics (with timings) of every finished round, in order, verified against DONE."""
        return [self.read_metrics_at(self.round_dir(i), f"run {self.path.name} round {i}") for i in self.finished_rounds()]

    def control_dirs(self) -> list[Path]:
        d = self.path / "controls"
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []


def _is_locked(path: Path) -> bool:
    """Whether a process holds an flock on ``path`` (probed with a shared lock, released at once)."""
    try:
        fh = open(path, "rb")
    except OSError:  # never locked (or unreadable): nobody is writing through it
        return False
    with fh:
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
