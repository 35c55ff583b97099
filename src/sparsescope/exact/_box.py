"""Input boxes: the unit box, the training data's range, an L-infinity ball around one input."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .._errors import GraphError
from ..bounds import data_box, unit_box
from ..graph import Flowgraph
from ..graph._eval import flatten_inputs

_BALL = re.compile(r"^ball:(\d+):([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)$")


@dataclass(frozen=True, eq=False)
class Box:
    """A box of inputs: every input ``i`` in ``[lo[i], hi[i]]`` (float64 ``(n_in,)``).

    ``name``: ``"unit"``, ``"data"``, ``"ball"`` or ``"custom"``.  A ball also
    keeps its centre (flat), radius ``eps``, the test ``image`` index and its
    ``label``; it is the L-infinity ball clipped to the valid pixel range [0, 1].
    """

    name: str
    lo: np.ndarray
    hi: np.ndarray
    centre: np.ndarray | None = None
    eps: float | None = None
    image: int | None = None
    label: int | None = None

    @property
    def spec(self) -> str:
        """The text that names this box on the command line (``ball:IMAGE:EPS`` for a ball)."""
        return f"ball:{self.image}:{self.eps:g}" if self.name == "ball" else self.name


def ball(graph: Flowgraph, x: np.ndarray, eps: float, *, image: int | None = None, label: int | None = None) -> Box:
    """The L-infinity ball of radius ``eps`` around input ``x``, clipped to [0, 1]."""
    if not (np.isfinite(eps) and eps >= 0):
        raise GraphError(f"ball radius must be a finite number >= 0, got {eps!r}")
    c = flatten_inputs(graph, np.asarray(x, dtype=np.float64))[0]
    if np.any(c < 0) or np.any(c > 1):
        raise GraphError("the ball's centre is outside [0, 1]")
    return Box("ball", np.clip(c - eps, 0.0, 1.0), np.clip(c + eps, 0.0, 1.0), c, float(eps), image, label)


def parse_box(spec: str) -> tuple[str, int | None, float | None]:
    """``"unit"``/``"data"``/``"ball:IMAGE:EPS"`` -> ``(kind, image, eps)``; a bad spec raises GraphError."""
    if spec in ("unit", "data"):
        return spec, None, None
    m = _BALL.match(spec.strip())
    if not m:
        raise GraphError(f"bad box {spec!r}: expected unit, data or ball:IMAGE:EPS (e.g. ball:0:0.1)")
    return "ball", int(m.group(1)), float(m.group(2))


def make_box(graph: Flowgraph, spec: str, *, x_train: np.ndarray | None = None, x_test: np.ndarray | None = None,
             y_test: np.ndarray | None = None) -> Box:
    """The box named by ``spec``; ``data`` needs ``x_train``, a ball ``x_test`` (and ``y_test`` for its label)."""
    kind, image, eps = parse_box(spec)
    if kind == "unit":
        return Box("unit", *unit_box(graph))
    if kind == "data":
        if x_train is None:
            raise GraphError("box 'data' needs the training data")
        return Box("data", *data_box(graph, x_train))
    if x_test is None:
        raise GraphError("a ball box needs the test data")
    if not 0 <= image < len(x_test):
        raise GraphError(f"ball image {image} is out of range: the test set has {len(x_test)} images")
    label = None if y_test is None else int(y_test[image])
    return ball(graph, np.asarray(x_test[image], dtype=np.float64), eps, image=image, label=label)
