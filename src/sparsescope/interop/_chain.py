"""Lower a chain of imported operations into a flowgraph.

Both importers (ONNX and torch) walk their model in order and call one
method per operation on a :class:`Chain`:

* ``dense(w, b)``: ``y = w @ x + b`` on the flat current tensor (``w`` is
  ``(out, in)``, like ``nn.Linear``) -- a new affine layer;
* ``edges(...)``: the same with the weights given as edges (a layer that is
  sparse by construction: a matmul applied per row, a pooling);
* ``conv(...)`` / ``avgpool(...)``: a convolution or average pool of the
  current ``(C, H, W)`` map, unrolled with shared-weight ids;
* ``relu()``: the activation of the layer just made (a ReLU on the input, or
  after a reshape of a ReLU output, is handled too);
* ``add(c)``: a constant added to the current tensor (folded into the bias
  of the layer just made, else a new identity layer);
* ``reshape(shape)``: a new logical shape, same row-major order; layers
  keep the shape they were made with, so ids stay ``c1[ch,y,x]`` after a
  ``Flatten``.

The current tensor is always a flat vector of one sample, in row-major
order of its shape; every operation above is exact on that vector, so the
flowgraph computes what the model computes.  ``finish`` names the layers by
kind (``h1``, ``h2`` ... for dense layers, ``c1`` ... for convolutions,
``p1`` ... for pooling; the last one ``out``) and builds the
:class:`~sparsescope.graph.Flowgraph`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph, Layer, conv_edges, pool_edges

#: Largest layer (nodes) and edge count an import accepts: far above any model
#: the viewer can show, far below what would exhaust memory.
MAX_NODES = 1 << 24
MAX_EDGES = 1 << 27
PREFIX = {"dense": "h", "conv": "c", "pool": "p", "relu": "h", "shift": "h"}


def layer_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """An input's shape without its leading size-1 axes (the batch axis, a single channel).

    ``(1, 1, 28, 28) -> (28, 28)``, ``(1, 300) -> (300,)``, ``(1, 6, 12, 12) -> (6, 12, 12)``.
    """
    s = tuple(int(d) for d in shape)
    while len(s) > 1 and s[0] == 1:
        s = s[1:]
    return s or (1,)


def _drop_batch(shape: Sequence[int]) -> tuple[int, ...]:
    s = tuple(int(d) for d in shape)
    return s[1:] if len(s) > 1 and s[0] == 1 else s


@dataclass
class _Pending:
    kind: str
    shape: tuple[int, ...]
    source: int  # index of the source layer
    bias: np.ndarray
    dst: np.ndarray
    src: np.ndarray
    weight: np.ndarray
    activation: str = "identity"
    origin: list[str] = field(default_factory=list)
    weight_id: np.ndarray | None = None
    weight_shape: tuple[int, ...] | None = None


class Chain:
    """The layers made so far and the current tensor (a flat vector of ``size`` values).

    ``strip`` (ONNX shapes, which carry a batch axis of 1): layer shapes drop
    it and the input drops a single channel too (:func:`layer_shape`); else
    (torch shapes, per sample) shapes are kept as given.

    ``shape``: the current tensor's shape (the importer's own, batch axis
    included or not -- only its product and row-major order matter).
    ``fresh``: the current tensor is the affine output of the last layer, so
    a bias can be added to it or a ReLU applied in place.
    """

    def __init__(self, input_shape: Sequence[int], *, origin: str = "input", strip: bool = True) -> None:
        shape = tuple(int(d) for d in input_shape)
        if not shape or any(d <= 0 for d in shape):
            raise GraphError(f"input shape {shape} has an empty or unknown axis")
        # ONNX shapes carry the batch axis (taken as 1): layers drop it, the input an image's single channel too
        self._lead = (1,) if strip else ()
        self._shape_of = _drop_batch if strip else tuple
        self.input_shape = layer_shape(shape) if strip else shape
        self.input_origin = origin
        self.layers: list[_Pending] = []
        self.shape: tuple[int, ...] = shape
        self.fresh = False
        self._check_size(self.size, origin)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    # -- operations -----------------------------------------------------------
    def dense(self, w: np.ndarray, b: np.ndarray | None, out_shape: Sequence[int], *, kind: str = "dense",
              origin: str = "") -> None:
        """A dense affine layer ``w @ x + b``; ``w`` is ``(out, in)``, zeros make no edge."""
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.size:
            raise GraphError(f"{origin}: weight of shape {w.shape} does not take {self.size} inputs")
        dst, src = np.nonzero(w)
        self.edges(dst, src, w[dst, src], b, out_shape, kind=kind, origin=origin)

    def conv(self, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int, *, origin: str = "") -> None:
        """A 2-D convolution (kernel ``(O, I, k, k)``, zero padding) of the current ``(C, H, W)`` map,
        unrolled by :func:`sparsescope.graph.conv_edges` (each edge keeps its kernel weight's id)."""
        weight = np.asarray(weight, dtype=np.float64)
        if not np.all(np.isfinite(weight)):
            raise GraphError(f"{origin}: weights or biases are NaN or infinite")
        (o, oh, ow), dst, src, w, tie = conv_edges(weight, self.feature_map(origin), stride, padding)
        b = np.zeros(o) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
        if b.shape != (o,):
            raise GraphError(f"{origin}: a bias of {b.size} values for {o} channels")
        self.edges(dst, src, w, np.repeat(b, oh * ow), self._lead + (o, oh, ow), kind="conv", origin=origin,
                   weight_id=tie, weight_shape=tuple(weight.shape))

    def avgpool(self, kernel: int, stride: int, *, origin: str = "") -> None:
        """An average pool (no padding) of the current ``(C, H, W)`` map."""
        (c, oh, ow), dst, src, w, window = pool_edges(self.feature_map(origin), kernel, stride)
        self.edges(dst, src, w, None, self._lead + (c, oh, ow), kind="pool", origin=origin,
                   weight_id=window, weight_shape=(kernel, kernel))

    def feature_map(self, origin: str = "") -> tuple[int, int, int]:
        """The current tensor as ``(C, H, W)`` (a batch axis of 1 dropped, an ``(H, W)`` image is one channel)."""
        if self.shape[:len(self._lead)] != self._lead:
            raise GraphError(f"{origin}: needs a (1, channels, height, width) tensor, got shape {self.shape}")
        s = self.shape[len(self._lead):]
        if len(s) == 2:
            s = (1, *s)
        if len(s) != 3:
            raise GraphError(f"{origin}: needs a (channels, height, width) map, the tensor has shape {self.shape}")
        return s  # type: ignore[return-value]

    def edges(self, dst: np.ndarray, src: np.ndarray, weight: np.ndarray, b: np.ndarray | None,
              out_shape: Sequence[int], *, kind: str, origin: str = "", weight_id: np.ndarray | None = None,
              weight_shape: tuple[int, ...] | None = None) -> None:
        """An affine layer given as edges (``dst``/``src`` flat indices); zero weights are dropped.
        ``weight_id``/``weight_shape``: the shared kernel weight of each edge (see :class:`Layer`)."""
        out_shape = tuple(int(d) for d in out_shape)
        n = int(np.prod(out_shape, dtype=np.int64))
        self._check_size(n, origin)
        weight = np.asarray(weight, dtype=np.float64).reshape(-1)
        if weight.size > MAX_EDGES:
            raise GraphError(f"{origin}: {weight.size} weights are more than the {MAX_EDGES} an import accepts")
        bias = np.zeros(n) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
        if bias.size == 1 and n != 1:
            bias = np.full(n, bias[0])
        if bias.shape != (n,):
            raise GraphError(f"{origin}: a bias of {bias.size} values for {n} outputs")
        if not np.all(np.isfinite(weight)) or not np.all(np.isfinite(bias)):
            raise GraphError(f"{origin}: weights or biases are NaN or infinite")
        keep = weight != 0
        self.layers.append(_Pending(kind, self._shape_of(out_shape), len(self.layers), bias,
                                    np.asarray(dst, dtype=np.int64)[keep], np.asarray(src, dtype=np.int64)[keep],
                                    weight[keep], origin=[origin] if origin else [],
                                    weight_id=None if weight_id is None else np.asarray(weight_id)[keep],
                                    weight_shape=weight_shape))
        self.shape = out_shape
        self.fresh = True

    def relu(self, *, origin: str = "") -> None:
        """``max(x, 0)`` of the current tensor."""
        last = self.layers[-1] if self.layers else None
        if self.fresh and last is not None:
            last.activation = "relu"
            last.origin.append(origin)
            self.fresh = False
        elif last is not None and last.activation == "relu":
            last.origin.append(origin)  # relu(relu(x)) == relu(x)
        else:  # a ReLU of the input: an identity layer with the activation
            n = self.size
            idx = np.arange(n)
            self.edges(idx, idx, np.ones(n), None, self.shape, kind="relu", origin=origin)
            self.layers[-1].activation = "relu"
            self.fresh = False

    def add(self, c: np.ndarray, *, origin: str = "") -> None:
        """``x + c`` with ``c`` a constant broadcast to the current shape."""
        try:
            c = np.broadcast_to(np.asarray(c, dtype=np.float64), self.shape).reshape(-1)
        except ValueError:
            raise GraphError(f"{origin}: a constant of shape {np.shape(c)} does not broadcast to {self.shape}") from None
        if not np.all(np.isfinite(c)):
            raise GraphError(f"{origin}: the added constant is NaN or infinite")
        if self.fresh and self.layers:
            last = self.layers[-1]
            last.bias = last.bias + c
            last.origin.append(origin)
        else:
            n = self.size
            idx = np.arange(n)
            shape = self.shape
            self.edges(idx, idx, np.ones(n), c, shape, kind="shift", origin=origin)

    def reshape(self, shape: Sequence[int], *, origin: str = "") -> None:
        """A new logical shape with the same number of values (row-major order is kept)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise GraphError(f"{origin}: cannot reshape {self.size} values to {shape}")
        self.shape = shape

    # -- result ---------------------------------------------------------------
    def finish(self, *, input_labels: Sequence[str] | None = None, output_labels: Sequence[str] | None = None,
               meta: dict[str, Any] | None = None, origins: bool = True) -> Flowgraph:
        """The flowgraph; with ``origins``, ``meta["layers"]`` maps each layer to the model operations it came from."""
        if not self.layers:
            raise GraphError("the model computes nothing (no Linear/Gemm/MatMul/Conv layer)")
        names = ["in"]
        counts: dict[str, int] = {}
        for k, p in enumerate(self.layers):
            if k == len(self.layers) - 1:
                names.append("out")
            else:
                prefix = PREFIX[p.kind]
                counts[prefix] = counts.get(prefix, 0) + 1
                names.append(f"{prefix}{counts[prefix]}")
        layers = [Layer("in", "input", self.input_shape, labels=_labels(input_labels, "input"))]
        for k, p in enumerate(self.layers):
            last = k == len(self.layers) - 1
            layers.append(Layer(names[k + 1], "affine", p.shape, activation=p.activation, source=names[p.source],
                                bias=p.bias, dst=p.dst, src=p.src, weight=p.weight, weight_id=p.weight_id,
                                weight_shape=p.weight_shape,
                                labels=_labels(output_labels, "output") if last else None))
        meta = dict(meta or {})
        if origins:
            meta["layers"] = {"in": [self.input_origin]}
            meta["layers"].update({names[k + 1]: [o for o in p.origin if o] for k, p in enumerate(self.layers)})
        return Flowgraph(tuple(layers), meta=meta)

    def _check_size(self, n: int, origin: str) -> None:
        if n > MAX_NODES:
            raise GraphError(f"{origin}: a layer of {n} nodes is more than the {MAX_NODES} an import accepts")

def check_edges(n: int) -> None:
    if n > MAX_EDGES:
        raise GraphError(f"{n} weights are more than the {MAX_EDGES} an import accepts")


def left_data_edges(rows: int, k: int, w: np.ndarray, flat_x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Y[r, n] = sum_k X'[r, k] w[k, n]`` as edges; ``flat_x(r, k)`` is the data index of ``X'[r, k]``."""
    kk, nn = np.nonzero(w)
    check_edges(rows * kk.size)
    r = np.arange(rows)[:, None]
    n_out = w.shape[1]
    return (r * n_out + nn).ravel(), flat_x(r, kk[None, :]).ravel(), np.broadcast_to(w[kk, nn], (rows, kk.size)).ravel()


def right_data_edges(cols: int, a: np.ndarray, flat_x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Y[i, n] = sum_k a[i, k] X'[k, n]`` as edges; ``flat_x(k, n)`` is the data index of ``X'[k, n]``."""
    ii, kk = np.nonzero(a)
    check_edges(cols * ii.size)
    n = np.arange(cols)[:, None]
    return (ii[None, :] * cols + n).ravel(), flat_x(kk[None, :], n).ravel(), np.broadcast_to(a[ii, kk], (cols, ii.size)).ravel()



def _labels(labels: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if labels is None:
        return None
    return tuple(str(s) for s in labels)
