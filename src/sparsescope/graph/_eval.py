"""Evaluate a flowgraph on a batch of inputs, every node, in numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import GraphError
from ._flowgraph import Flowgraph


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Node values for a batch.

    ``post[name]`` is ``(batch, size)``: the node values (after the activation);
    ``pre[name]`` the affine sums before it.  For the input layer both hold
    the (flattened) inputs.
    """

    graph: Flowgraph
    pre: dict[str, np.ndarray]
    post: dict[str, np.ndarray]

    def value(self, node_id: str) -> np.ndarray:
        """Values of one node over the batch, ``(batch,)``."""
        name, index = self.graph.locate(node_id)
        return self.post[name][:, index]


def apply_activation(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0)
    return z


DENSE_LIMIT = 1 << 21  # a layer's (size x sources) matrix up to this many entries is stored dense


def layer_matrix(layer, sources: int, dtype=np.float64):
    """The layer's weights as a ``(size, sources)`` matrix: dense for small layers,
    a scipy CSR matrix for large sparse ones (an unrolled conv: 3,456 x 4,056
    dense would be 112 MB).  :func:`affine` applies either."""
    if layer.size * sources <= DENSE_LIMIT:
        return layer.dense_weight(sources, dtype)
    from scipy.sparse import csr_matrix

    return csr_matrix((layer.weight.astype(dtype), (layer.dst, layer.src)), shape=(layer.size, sources))


def affine(mat, a: np.ndarray) -> np.ndarray:
    """``a @ mat.T`` for ``a`` ``(batch, sources)``, with ``mat`` from :func:`layer_matrix`.

    A CSR product sums each output in edge order whatever the batch size.
    """
    if isinstance(mat, np.ndarray):
        return a @ mat.T
    return np.asarray((mat @ a.T).T)


def flatten_inputs(graph: Flowgraph, x: np.ndarray) -> np.ndarray:
    """``x`` as ``(batch, n_in)``; accepts ``(batch, *input_shape)``, ``(batch, n_in)`` or one sample."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise GraphError(f"inputs must be numbers, got dtype {x.dtype}")
    if x.dtype.kind in "iu":
        x = x.astype(np.float64)
    layer = graph.input
    n = layer.size
    if x.shape == layer.shape or x.shape == (n,):
        x = x.reshape(1, n)
    elif x.ndim >= 2 and x.shape[1:] in (layer.shape, (n,), (1, *layer.shape)):
        x = x.reshape(x.shape[0], n)  # e.g. (batch, 1, 28, 28) for a (28, 28) input, as a conv net takes it
    else:
        raise GraphError(f"inputs of shape {x.shape} do not fit input layer of shape {layer.shape}")
    return x


def evaluate(graph: Flowgraph, x: np.ndarray) -> Evaluation:
    """Run the flowgraph on ``x`` (``(batch, *input_shape)``), in ``x``'s float dtype.

    Uses the same arithmetic as the torch model (``x @ W.T + b`` with the
    pruned weights as zeros; sparse sums for large unrolled layers), so
    float64 results agree to rounding.
    """
    x = flatten_inputs(graph, x)
    dtype = x.dtype
    pre: dict[str, np.ndarray] = {graph.input.name: x}
    post: dict[str, np.ndarray] = {graph.input.name: x}
    sizes = {graph.input.name: graph.input.size}
    for layer in graph.layers[1:]:
        a = post[layer.source]
        z = affine(layer_matrix(layer, sizes[layer.source], dtype), a) + layer.bias.astype(dtype)
        pre[layer.name] = z
        post[layer.name] = apply_activation(layer.activation, z)
        sizes[layer.name] = layer.size
    return Evaluation(graph, pre, post)
