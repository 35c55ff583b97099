"""Datasets held in memory: ``Dataset(x_train, y_train, x_test, y_test, meta)``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split in memory.

    ``x_*`` are float32 ``(N, *input_shape)`` with pixels scaled to [0, 1];
    ``y_*`` int64 ``(N,)``.  ``fingerprint`` is a SHA-256 over the raw bytes
    of all four arrays (recorded in every run, so a run can tell whether it
    is being resumed on the same data).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return "sha256:" + h.hexdigest()


def make_dataset(name: str, x_train, y_train, x_test, y_test, classes, **meta: Any) -> Dataset:
    """Build a Dataset from uint8 or float images; uint8 are scaled by 1/255."""

    def scale(x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint8:
            out = x.astype(np.float32)
            out /= np.float32(255.0)  # in place: the same float32 quotients without a second 188 MB array
            return out
        return np.ascontiguousarray(x, dtype=np.float32)

    return Dataset(
        name,
        scale(x_train),
        np.ascontiguousarray(y_train, dtype=np.int64),
        scale(x_test),
        np.ascontiguousarray(y_test, dtype=np.int64),
        tuple(classes),
        dict(meta),
    )
