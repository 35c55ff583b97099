"""The hostile-file corpus, part two: configs and IDX data (helpers and run folders: test_hostile.py).

Each case runs the command that reads the hostile file, in-process, and
counts tracebacks, wrong exit codes, files outside the working folder and
temporaries left behind; every count must be 0 (printed with ``pytest -s``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from test_hostile import RUN_CONFIG, Tally, call, check_call, snapshot

# -- configs ----------------------------------------------------------------------------------------


def _config_cases() -> dict[str, bytes | str]:
    from sparsescope._resources import usable_cpus

    return {
        "empty": b"",
        "only comments": b"# nothing here\n\n   \n",
        "deep array": b"a = " + b"[" * 50_000 + b"]" * 50_000,
        "deep inline table": b"a = " + b"{b = " * 5_000 + b"1" + b"}" * 5_000,
        "2 MiB": b"#" * (2 << 20),
        "not UTF-8": b'name = "\xff"',
        "NUL byte": b'name = "a"\x00',
        "escape in key": b'"\\u001b[2J" = 1\n',
        "escape in name": b'name = "a\\u001b[2J"\n',
        "newline in name": b'name = "a\\nb"\n',
        "lr NaN": b"[train]\nlr = nan\n",
        "lr inf": b"[train]\nlr = inf\n",
        "epochs inf": b"[train]\nepochs = inf\n",
        "seed negative": b"seed = -1\n",
        "seed 2**64": b"seed = 18446744073709551616\n",
        "threads over the CPUs": f"[train]\nthreads = {usable_cpus() + 1}\n".encode(),
        "sizes need 900 GB": b"[model]\nsizes = [784, 100000, 100000, 100000, 10]\n[prune]\nrounds = 2\n"
                             b"rates = { h1 = 0.2 }\n",
        "rates string": b'[prune]\nrates = { h1 = "x" }\nrounds = 2\n',
        "controls rounds bool": b"[controls]\nkinds = ['reinit']\nrounds = [true]\n",
        "escape in layer name": b'[prune]\nrates = { "\\u001b]0;x\\u0007" = 0.2 }\nrounds = 2\n',
    }


def _config_kinds(root: Path) -> dict[str, Path]:
    out = {}
    d = root / "cfg-folder.toml"
    d.mkdir()
    out["config is a folder"] = d
    f = root / "cfg-fifo.toml"
    os.mkfifo(f)
    out["config is a FIFO"] = f
    z = root / "cfg-zero.toml"
    z.symlink_to("/dev/zero")
    out["config is /dev/zero"] = z
    return out


def test_hostile_configs(tmp_path, capsys, monkeypatch, slice_loaded):
    t = Tally("configs")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    paths = _config_kinds(tmp_path)
    for i, (case, text) in enumerate(_config_cases().items()):
        p = tmp_path / f"c{i}.toml"
        p.write_bytes(text)
        paths[case] = p
    before = snapshot(tmp_path, work)
    for case, p in paths.items():
        t.c["cases"] += 1
        needle = "is empty" if case in ("empty", "only comments") else None
        check_call(t, case, ["run", p, "--runs-dir", work / "runs", "--quiet"], capsys, needle=needle)
        if (work / "runs").exists():
            t.bad("outside", case, "a bad config wrote a run")
            shutil.rmtree(work / "runs")
    new = snapshot(tmp_path, work) - before
    t.bad("outside", "configs", f"new paths {sorted(map(str, new))[:5]}", len(new))
    t.done()


def test_empty_config_is_an_error_naming_the_file(tmp_path, capsys):
    p = tmp_path / "empty.toml"
    p.write_text("")
    code, _, err, tb = call(["run", p, "--runs-dir", tmp_path / "runs"], capsys)
    assert tb is None and code == 2
    assert err.strip() == f"sparsescope: error: config {p} is empty; it must set at least a name (start from configs/mnist-mlp.toml)"


def test_memory_refusal_names_the_figure(tmp_path, capsys, slice_loaded):
    p = tmp_path / "big.toml"
    p.write_bytes(_config_cases()["sizes need 900 GB"])
    code, _, err, _ = call(["run", p, "--runs-dir", tmp_path / "runs"], capsys)
    assert code == 2 and re.search(r"needs about [\d.]+ [GT]iB of memory but only [\d.]+ [GMT]iB is available", err), err
    assert not (tmp_path / "runs").exists()


def test_threads_the_system_cannot_start(monkeypatch):
    import threading

    from sparsescope import ConfigError
    from sparsescope._resources import check_threads

    assert check_threads(1) == 1

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr("sparsescope._resources.usable_cpus", lambda: 64)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(ConfigError, match="cannot start that many threads"):
        check_threads(8)


# -- IDX data ---------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray | None = None, *, shape=None, type_code=0x08, body: bytes | None = None) -> bytes:
    shape = tuple(arr.shape) if shape is None else tuple(shape)
    head = bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return head + (arr.astype(np.uint8).tobytes() if body is None else body)


def _idx_folder(folder: Path, **override) -> None:
    """A valid small MNIST-format folder, with some files replaced by ``override`` (name -> bytes or kind)."""
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (20, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 20)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 10)),
    }
    folder.mkdir()
    for name, data in {**files, **override}.items():
        gz = name.endswith(".gz")
        if gz:
            (folder / name[:-3]).unlink(missing_ok=True)
        p = folder / name
        if data == "fifo":
            os.mkfifo(p)
        elif data == "dir":
            p.mkdir()
        elif data == "devzero":
            p.symlink_to("/dev/zero")
        elif gz:
            with gzip.open(p, "wb", compresslevel=1) as fh:
                fh.write(data)
        else:
            p.write_bytes(data)


def _bomb() -> bytes:
    # the header promises 10 images; the stream holds 10 of them and then 64 MiB more
    return idx_bytes(shape=(10, 28, 28), body=bytes(64 << 20))


IMG = "train-images-idx3-ubyte"
LAB = "train-labels-idx1-ubyte"
IDX_CASES = {
    "images 4 dims": {IMG: idx_bytes(np.zeros((20, 1, 28, 28)))},
    "images 2 dims": {IMG: idx_bytes(np.zeros((20, 784)))},
    "images 0 dims": {IMG: idx_bytes(shape=(), body=b"")},
    "labels 2 dims": {LAB: idx_bytes(np.zeros((20, 1)))},
    "dims overflow": {IMG: idx_bytes(shape=(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), body=b"")},
    "dims promise 1.5 GB": {IMG: idx_bytes(shape=(2_000_000, 28, 28), body=b"")},
    "0 images": {IMG: idx_bytes(np.zeros((0, 28, 28))), LAB: idx_bytes(np.zeros(0))},
    "0-pixel images": {IMG: idx_bytes(np.zeros((20, 0, 28)))},
    "truncated header": {IMG: bytes([0, 0, 8, 3, 0, 0])},
    "float data type": {IMG: idx_bytes(np.zeros((20, 28, 28)), type_code=0x0D)},
    "bad magic": {IMG: b"PK\x03\x04" + bytes(100)},
    "trailing data": {IMG: idx_bytes(np.zeros((20, 28, 28))) + bytes(10 << 20)},
    "truncated data": {IMG: idx_bytes(np.zeros((20, 28, 28)))[:-7]},
    "gzip bomb": {IMG + ".gz": _bomb()},
    "gzip corrupt": {"placeholder": b""},
    "empty file": {IMG: b""},
    "labels out of range": {LAB: idx_bytes(np.full(20, 200))},
    "labels count differs": {LAB: idx_bytes(np.zeros(19))},
    "test images other shape": {"t10k-images-idx3-ubyte": idx_bytes(np.zeros((10, 14, 56)))},
    "images file is a FIFO": {IMG: "fifo"},
    "images file is a folder": {IMG: "dir"},
    "images file is /dev/zero": {IMG: "devzero"},
}


def test_hostile_idx_data(tmp_path, capsys, monkeypatch):
    t = Tally("IDX data")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ok = tmp_path / "valid"
    _idx_folder(ok)
    cfg_text = RUN_CONFIG.replace('"mnist5k"', '"idx:IDXDIR"').replace("rounds = 3", "rounds = 1").split("[controls]")[0]
    good = tmp_path / "good.toml"
    good.write_text(cfg_text.replace("IDXDIR", str(ok)))
    assert call(["run", good, "--runs-dir", work / "runs", "--quiet"], capsys)[0] == 0  # the baseline is fine
    shutil.rmtree(work / "runs")
    for i, (case, files) in enumerate(IDX_CASES.items()):
        folder = tmp_path / f"idx{i}"
        if case == "gzip corrupt":
            _idx_folder(folder)
            (folder / IMG).unlink()
            (folder / (IMG + ".gz")).write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
        else:
            _idx_folder(folder, **files)
        cfg = tmp_path / f"idx{i}.toml"
        cfg.write_text(cfg_text.replace("IDXDIR", str(folder)))
        before = snapshot(tmp_path, work)
        t.c["cases"] += 1
        check_call(t, case, ["run", cfg, "--runs-dir", work / "runs", "--quiet"], capsys)
        if (work / "runs").exists():
            t.bad("outside", case, "bad data wrote a run")
            shutil.rmtree(work / "runs")
        new = snapshot(tmp_path, work) - before
        t.bad("outside", case, f"new paths {sorted(map(str, new))[:5]}", len(new))
    t.done()
