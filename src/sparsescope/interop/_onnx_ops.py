"""The ONNX op table: one rule per op type, each lowering one node onto the :class:`Chain`.

A value is either a constant (a numpy array: initializers, ``Constant``
nodes and everything computed from them alone, folded here -- the shape
arithmetic ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` of the
legacy exporter folds to a constant) or :class:`Data`: a tensor computed
from the model input.  Data flows in a chain: each data tensor feeds one
operation (``Shape`` only reads its shape), so branches and skip connections
are refused with the node named.

Rules on data: ``Gemm`` (``transA``/``transB``/``alpha``/``beta``),
``Conv`` and ``AveragePool`` (2-D, square, one stride and padding: unrolled
by :func:`sparsescope.graph.conv_edges`),
``MatMul`` (with a following ``Add`` folded into the bias), ``Add``/``Sub``
of a constant, ``Relu``, ``Flatten``, ``Reshape`` (``allowzero`` 0 and 1),
``Squeeze``/``Unsqueeze``, ``Identity``, ``Dropout`` (inference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._errors import GraphError
from ._chain import Chain, check_edges, left_data_edges, right_data_edges
from ._onnx import _DTYPES, Data, OnnxError, tensor


@dataclass
class Context:
    chain: Chain
    opset: int
    folder: Path
    values: dict[str, Any] = field(default_factory=dict)
    current: Data | None = None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        if a.type == a.TENSOR:
            out[a.name] = a.t  # decoded (and checked) by the rule that needs it
        else:
            out[a.name] = helper.get_attribute_value(a)
    return out


def _inputs(ctx: Context, node: Any) -> list[Any]:
    vals = []
    for name in node.input:
        if name == "":
            vals.append(None)
        elif name not in ctx.values:
            raise OnnxError(f"reads {name!r} before any node makes it (a missing input, or nodes out of order)")
        else:
            vals.append(ctx.values[name])
    return vals


def _const(v: Any, what: str) -> np.ndarray:
    if isinstance(v, Data):
        raise OnnxError(f"{what} is computed from the model input; it must be a constant")
    if v is None:
        raise OnnxError(f"{what} is missing")
    return v


def _take(ctx: Context, node: Any, v: Data) -> Data:
    """Consume the current data tensor (the chain's one live value)."""
    if v is not ctx.current:
        who = f" already used by node {v.used_by!r}" if v.used_by else ""
        raise OnnxError(f"reads a tensor made by node {v.made_by!r}{who}; branches and skip connections "
                        "are not supported (the flowgraph reads chains)")
    v.used_by = node.name or node.op_type
    return v


def _put(ctx: Context, node: Any, shape: tuple[int, ...]) -> None:
    d = Data(tuple(int(s) for s in shape), made_by=node.name or node.op_type)
    ctx.current = d
    ctx.values[node.output[0]] = d


def _set(ctx: Context, node: Any, value: np.ndarray) -> None:
    ctx.values[node.output[0]] = np.asarray(value)


def _floats(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise OnnxError(f"{what} is not numeric")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise OnnxError(f"{what} has NaN or infinite values")
    return a


def _where(node: Any) -> str:
    return node.name or node.op_type


# -- constants ------------------------------------------------------------------
def op_constant(ctx: Context, node: Any) -> None:
    a = _attrs(node)
    if "value" in a:
        _set(ctx, node, tensor(a["value"], ctx.folder, "its value"))
    elif "value_float" in a:
        _set(ctx, node, np.array(a["value_float"], dtype=np.float32))
    elif "value_floats" in a:
        _set(ctx, node, np.array(a["value_floats"], dtype=np.float32))
    elif "value_int" in a:
        _set(ctx, node, np.array(a["value_int"], dtype=np.int64))
    elif "value_ints" in a:
        _set(ctx, node, np.array(a["value_ints"], dtype=np.int64))
    else:
        raise OnnxError(f"a Constant with {', '.join(sorted(a)) or 'no value'} is not supported")


def op_shape(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    shape = np.array(x.shape if isinstance(x, Data) else np.shape(_const(x, "its input")), dtype=np.int64)
    a = _attrs(node)
    start, end = int(a.get("start", 0)), a.get("end")
    _set(ctx, node, shape[start: None if end is None else int(end)])


def _ints(v: Any, what: str) -> list[int]:
    arr = np.asarray(_const(v, what))
    if arr.dtype.kind not in "iu":
        raise OnnxError(f"{what} must be integers")
    return [int(i) for i in arr.reshape(-1)]


def _axes(ctx: Context, node: Any, vals: list[Any]) -> list[int] | None:
    if len(vals) > 1 and vals[1] is not None:
        return _ints(vals[1], "axes")
    a = _attrs(node).get("axes")
    return None if a is None else [int(i) for i in a]


def op_gather(ctx: Context, node: Any) -> None:
    x, idx = _inputs(ctx, node)[:2]
    x, idx = _const(x, "its data"), np.asarray(_const(idx, "its indices"))
    axis = int(_attrs(node).get("axis", 0))
    try:
        _set(ctx, node, np.take(x, idx.astype(np.int64), axis=axis))
    except (IndexError, ValueError, np.exceptions.AxisError) as exc:
        raise OnnxError(f"cannot gather: {exc}") from None


def op_concat(ctx: Context, node: Any) -> None:
    vals = [_const(v, "an input") for v in _inputs(ctx, node)]
    try:
        _set(ctx, node, np.concatenate([np.atleast_1d(v) for v in vals], axis=int(_attrs(node).get("axis", 0))))
    except (ValueError, np.exceptions.AxisError) as exc:
        raise OnnxError(f"cannot concatenate: {exc}") from None


def op_cast(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    to = int(_attrs(node).get("to", 0))
    if to not in _DTYPES:
        raise OnnxError(f"cast to element type {to} is not supported")
    _set(ctx, node, np.asarray(_const(x, "its input (a Cast of computed values)")).astype(_DTYPES[to]))


def op_slice(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node)
    x = np.asarray(_const(vals[0], "its data"))
    if ctx.opset < 10:
        a = _attrs(node)
        starts, ends, axes, steps = list(a["starts"]), list(a["ends"]), a.get("axes"), None
    else:
        starts, ends = _ints(vals[1], "starts"), _ints(vals[2], "ends")
        axes = _ints(vals[3], "axes") if len(vals) > 3 and vals[3] is not None else None
        steps = _ints(vals[4], "steps") if len(vals) > 4 and vals[4] is not None else None
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    try:
        for s, e, ax, st in zip(starts, ends, axes, steps):
            index[ax] = slice(s, e, st)
        _set(ctx, node, x[tuple(index)])
    except (IndexError, ValueError) as exc:
        raise OnnxError(f"cannot slice: {exc}") from None


def _arith(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[Context, Any], None]:
    def rule(ctx: Context, node: Any) -> None:
        a, b = _inputs(ctx, node)[:2]
        if isinstance(a, Data) or isinstance(b, Data):
            _data_arith(ctx, node, a, b)
            return
        try:
            _set(ctx, node, fn(np.asarray(_const(a, "A")), np.asarray(_const(b, "B"))))
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            raise OnnxError(f"cannot fold: {exc}") from None
    return rule


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise ZeroDivisionError("integer division by zero")
        return (np.trunc(a / b)).astype(np.result_type(a, b))
    return a / b


def _data_arith(ctx: Context, node: Any, a: Any, b: Any) -> None:
    op = node.op_type
    if isinstance(a, Data) and isinstance(b, Data):
        raise OnnxError(f"{op} of two computed tensors (a skip connection or a product) is not supported")
    if op not in ("Add", "Sub") or (op == "Sub" and not isinstance(a, Data)):
        raise OnnxError(f"{op} of a computed tensor is not supported (only adding or subtracting a constant)")
    x, c = (a, b) if isinstance(a, Data) else (b, a)
    c = _floats(_const(c, "the constant"), "the constant")
    x = _take(ctx, node, x)
    try:
        full = np.broadcast_shapes(x.shape, c.shape)
    except ValueError:
        full = None
    if full != x.shape:
        raise OnnxError(f"a constant of shape {list(c.shape)} does not broadcast to the tensor's shape {list(x.shape)}")
    ctx.chain.add(-c if op == "Sub" else c, origin=_where(node))
    _put(ctx, node, x.shape)


# -- shape-only ops on data -----------------------------------------------------
def op_identity(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    ctx.values[node.output[0]] = x  # data or constant: the same value under a new name


def op_dropout(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node)
    if len(vals) > 2 and vals[2] is not None and bool(np.asarray(_const(vals[2], "training_mode")).any()):
        raise OnnxError("Dropout in training mode is random; export the model in eval mode")
    if int(_attrs(node).get("is_test", 1)) == 0 and ctx.opset < 7:
        raise OnnxError("Dropout in training mode is random; export the model in eval mode")
    op_identity(ctx, node)
    if len(node.output) > 1 and node.output[1]:
        x = vals[0]
        shape = x.shape if isinstance(x, Data) else np.shape(x)
        ctx.values[node.output[1]] = np.ones(shape, dtype=bool)


def _reshape_to(ctx: Context, node: Any, x: Any, shape: tuple[int, ...]) -> None:
    if isinstance(x, Data):
        x = _take(ctx, node, x)
        ctx.chain.reshape(shape, origin=_where(node))
        _put(ctx, node, shape)
    else:
        _set(ctx, node, np.reshape(x, shape))


def _shape_of(x: Any) -> tuple[int, ...]:
    if x is None:
        raise OnnxError("its data input is missing")
    return x.shape if isinstance(x, Data) else tuple(np.shape(x))


def op_flatten(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    s = _shape_of(x)
    axis = int(_attrs(node).get("axis", 1))
    if not -len(s) <= axis <= len(s):
        raise OnnxError(f"axis {axis} is outside a tensor of rank {len(s)}")
    axis = axis + len(s) if axis < 0 else axis
    _reshape_to(ctx, node, x, (int(np.prod(s[:axis], dtype=np.int64)), int(np.prod(s[axis:], dtype=np.int64))))


def resolve_reshape(shape_in: tuple[int, ...], spec: list[int], allowzero: bool) -> tuple[int, ...]:
    """ONNX Reshape's target shape: ``0`` copies the input axis (unless ``allowzero``), ``-1`` is inferred."""
    out: list[int] = []
    infer = -1
    for i, d in enumerate(spec):
        if d == 0 and not allowzero:
            if i >= len(shape_in):
                raise OnnxError(f"shape {spec}: a 0 at axis {i} copies an axis the input does not have")
            out.append(shape_in[i])
        elif d == -1:
            if infer >= 0:
                raise OnnxError(f"shape {spec} has more than one -1")
            infer = i
            out.append(1)
        elif d < -1:
            raise OnnxError(f"shape {spec} has a negative size {d}")
        else:
            out.append(d)
    total = int(np.prod(shape_in, dtype=np.int64))
    known = int(np.prod(out, dtype=np.int64))
    if infer >= 0:
        if known == 0 or total % known:
            raise OnnxError(f"cannot reshape {list(shape_in)} ({total} values) to {spec}")
        out[infer] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise OnnxError(f"cannot reshape {list(shape_in)} ({total} values) to {spec}"
                        + (" (allowzero=1 makes 0 a size, not a copy)" if allowzero and 0 in spec else ""))
    return tuple(out)


def op_reshape(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node)
    x = vals[0]
    a = _attrs(node)
    spec = _ints(vals[1], "the target shape") if len(vals) > 1 else [int(d) for d in a.get("shape", [])]
    _reshape_to(ctx, node, x, resolve_reshape(_shape_of(x), spec, bool(a.get("allowzero", 0))))


def op_squeeze(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node)
    s = _shape_of(vals[0])
    axes = _axes(ctx, node, vals)
    if axes is None:
        new = tuple(d for d in s if d != 1)
    else:
        ax = {a % len(s) if -len(s) <= a < len(s) else -1 for a in axes}
        if -1 in ax or any(s[a] != 1 for a in ax):
            raise OnnxError(f"cannot squeeze axes {axes} of shape {list(s)}")
        new = tuple(d for i, d in enumerate(s) if i not in ax)
    _reshape_to(ctx, node, vals[0], new)


def op_unsqueeze(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node)
    s = list(_shape_of(vals[0]))
    axes = _axes(ctx, node, vals)
    if not axes:
        raise OnnxError("Unsqueeze needs axes")
    rank = len(s) + len(axes)
    ax = sorted(a % rank if -rank <= a < rank else -1 for a in axes)
    if -1 in ax or len(set(ax)) != len(ax):
        raise OnnxError(f"cannot unsqueeze axes {axes} of shape {s}")
    for a in ax:
        s.insert(a, 1)
    _reshape_to(ctx, node, vals[0], tuple(s))


def op_relu(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    if isinstance(x, Data):
        x = _take(ctx, node, x)
        ctx.chain.relu(origin=_where(node))
        _put(ctx, node, x.shape)
    else:
        _set(ctx, node, np.maximum(_const(x, "its input"), 0))


# -- affine ops -------------------------------------------------------------------
def op_gemm(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node) + [None]
    a_, b_, c_ = vals[0], vals[1], vals[2]
    at = _attrs(node)
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    ta, tb = bool(at.get("transA", 0)), bool(at.get("transB", 0))
    if not isinstance(a_, Data) and not isinstance(b_, Data):
        A = _floats(_const(a_, "A"), "A")
        B = _floats(_const(b_, "B"), "B")
        y = alpha * ((A.T if ta else A) @ (B.T if tb else B))
        if c_ is not None:
            y = y + beta * _floats(_const(c_, "C"), "C")
        _set(ctx, node, y.astype(np.float32))
        return
    if isinstance(a_, Data) and isinstance(b_, Data):
        raise OnnxError("a product of two computed tensors is not supported")
    if isinstance(a_, Data):
        x = _take(ctx, node, a_)
        if len(x.shape) != 2:
            raise OnnxError(f"Gemm needs a rank-2 A, got shape {list(x.shape)}")
        r, c = x.shape
        m, k = (c, r) if ta else (r, c)
        w = _floats(_const(b_, "B (the weight)"), f"weight {node.input[1]!r}")
        w = w.T if tb else w
        if w.ndim != 2 or w.shape[0] != k:
            raise OnnxError(f"weight {node.input[1]!r} of shape {list(w.shape)} (transB={int(tb)}) does not take "
                            f"{k} inputs")
        n = w.shape[1]
        dst, src, wt = left_data_edges(m, k, w, (lambda i, kk: kk * c + i) if ta else (lambda i, kk: i * c + kk))
    else:
        x = _take(ctx, node, b_)
        if len(x.shape) != 2:
            raise OnnxError(f"Gemm needs a rank-2 B, got shape {list(x.shape)}")
        r, c = x.shape
        k, n = (c, r) if tb else (r, c)
        w = _floats(_const(a_, "A (the weight)"), f"weight {node.input[0]!r}")
        w = w.T if ta else w
        if w.ndim != 2 or w.shape[1] != k:
            raise OnnxError(f"weight {node.input[0]!r} of shape {list(w.shape)} does not take {k} inputs")
        m = w.shape[0]
        dst, src, wt = right_data_edges(n, w, (lambda kk, j: j * c + kk) if tb else (lambda kk, j: kk * c + j))
    bias = None
    if c_ is not None:
        cv = _floats(_const(c_, "C (the bias)"), f"bias {node.input[2]!r}")
        try:
            bias = beta * np.broadcast_to(cv, (m, n))
        except ValueError:
            raise OnnxError(f"bias {node.input[2]!r} of shape {list(cv.shape)} does not broadcast to {[m, n]}") from None
    ctx.chain.edges(dst, src, alpha * wt, bias, (m, n), kind="dense", origin=_where(node))
    _put(ctx, node, (m, n))


def op_matmul(ctx: Context, node: Any) -> None:
    a_, b_ = _inputs(ctx, node)[:2]
    if not isinstance(a_, Data) and not isinstance(b_, Data):
        _set(ctx, node, np.matmul(_const(a_, "A"), _const(b_, "B")))
        return
    if isinstance(a_, Data) and isinstance(b_, Data):
        raise OnnxError("a product of two computed tensors is not supported")
    if isinstance(a_, Data):
        x = _take(ctx, node, a_)
        w = _floats(_const(b_, "B (the weight)"), f"weight {node.input[1]!r}")
        if w.ndim not in (1, 2):
            raise OnnxError(f"weight {node.input[1]!r} has rank {w.ndim}; MatMul with a rank-1 or rank-2 weight only")
        w2 = w[:, None] if w.ndim == 1 else w
        k = x.shape[-1]
        if w2.shape[0] != k:
            raise OnnxError(f"weight {node.input[1]!r} of shape {list(w.shape)} does not take {k} inputs")
        rows = int(np.prod(x.shape[:-1], dtype=np.int64))
        out = x.shape[:-1] + ((w2.shape[1],) if w.ndim == 2 else ())
        dst, src, wt = left_data_edges(rows, k, w2, lambda r, kk: r * k + kk)
    else:
        x = _take(ctx, node, b_)
        a = _floats(_const(a_, "A (the weight)"), f"weight {node.input[0]!r}")
        if a.ndim not in (1, 2):
            raise OnnxError(f"weight {node.input[0]!r} has rank {a.ndim}; MatMul with a rank-1 or rank-2 weight only")
        a2 = a[None, :] if a.ndim == 1 else a
        if len(x.shape) == 1:
            k, cols, batch = x.shape[0], 1, 1
        else:
            k, cols = x.shape[-2], x.shape[-1]
            batch = int(np.prod(x.shape[:-2], dtype=np.int64))
        if a2.shape[1] != k:
            raise OnnxError(f"weight {node.input[0]!r} of shape {list(a.shape)} does not take {k} inputs")
        m = a2.shape[0]
        d0, s0, wt0 = right_data_edges(cols, a2, lambda kk, j: kk * cols + j)
        check_edges(batch * d0.size)
        b = np.arange(batch)[:, None]
        dst, src = (b * m * cols + d0).ravel(), (b * k * cols + s0).ravel()
        wt = np.broadcast_to(wt0, (batch, wt0.size)).ravel()
        lead = x.shape[:-2] if len(x.shape) > 1 else ()
        out = lead + ((m,) if a.ndim == 2 else ()) + ((cols,) if len(x.shape) > 1 else ())
    ctx.chain.edges(dst, src, wt, None, out or (1,), kind="dense", origin=_where(node))
    _put(ctx, node, out or (1,))


def _same(values: list[int], what: str) -> int:
    if not values or len(set(values)) != 1:
        raise OnnxError(f"{what} {values} differ; the flowgraph reads square kernels with one stride and padding")
    return int(values[0])


def _window(node: Any, at: dict[str, Any], k_default: list[int] | None) -> tuple[int, int, int]:
    """``(kernel, stride, padding)`` of a 2-D Conv/AveragePool, refusing what the flowgraph cannot unroll."""
    pad_mode = at.get("auto_pad", b"NOTSET")
    pad_mode = pad_mode.decode() if isinstance(pad_mode, bytes) else str(pad_mode)
    if pad_mode not in ("NOTSET", "VALID"):
        raise OnnxError(f"auto_pad={pad_mode} is not supported; export with explicit pads")
    kernel = [int(v) for v in at.get("kernel_shape", k_default or [])]
    if len(kernel) != 2:
        raise OnnxError(f"kernel_shape {kernel} is not 2-D")
    if any(int(d) != 1 for d in at.get("dilations", [1, 1])):
        raise OnnxError(f"dilations {list(at['dilations'])} are not supported")
    k = _same(kernel, "kernel sizes")
    s = _same([int(v) for v in at.get("strides", [1, 1])], "strides")
    p = _same([int(v) for v in at.get("pads", [0, 0, 0, 0])], "pads")
    return k, s, p


def op_conv(ctx: Context, node: Any) -> None:
    vals = _inputs(ctx, node) + [None]
    x, w, b = vals[0], vals[1], vals[2]
    if not isinstance(x, Data):
        raise OnnxError("a Conv of constants is not supported")
    at = _attrs(node)
    if int(at.get("group", 1)) != 1:
        raise OnnxError(f"group={at['group']} (grouped or depthwise convolution) is not supported")
    w = _floats(_const(w, "W (the kernel)"), f"kernel {node.input[1]!r}")
    if w.ndim != 4:
        raise OnnxError(f"kernel {node.input[1]!r} of shape {list(w.shape)} is not a 2-D convolution kernel")
    k, s, p = _window(node, at, list(w.shape[2:]))
    if list(w.shape[2:]) != [k, k]:
        raise OnnxError(f"kernel_shape {[k, k]} does not match the kernel's shape {list(w.shape)}")
    bias = None if b is None else _floats(_const(b, "B (the bias)"), f"bias {node.input[2]!r}")
    _take(ctx, node, x)
    ctx.chain.conv(w, bias, s, p, origin=_where(node))
    _put(ctx, node, ctx.chain.shape)


def op_averagepool(ctx: Context, node: Any) -> None:
    (x,) = _inputs(ctx, node)[:1]
    if not isinstance(x, Data):
        raise OnnxError("an AveragePool of constants is not supported")
    at = _attrs(node)
    if int(at.get("ceil_mode", 0)):
        raise OnnxError("ceil_mode=1 is not supported")
    k, s, p = _window(node, at, None)
    if p:
        raise OnnxError(f"pads {list(at['pads'])} are not supported for AveragePool")
    _take(ctx, node, x)
    ctx.chain.avgpool(k, s, origin=_where(node))
    _put(ctx, node, ctx.chain.shape)


OPS: dict[str, Callable[[Context, Any], None]] = {
    "AveragePool": op_averagepool,
    "Conv": op_conv,
    "Add": _arith(np.add),
    "Cast": op_cast,
    "Concat": op_concat,
    "Constant": op_constant,
    "Div": _arith(_div),
    "Dropout": op_dropout,
    "Flatten": op_flatten,
    "Gather": op_gather,
    "Gemm": op_gemm,
    "Identity": op_identity,
    "MatMul": op_matmul,
    "Mul": _arith(np.multiply),
    "Relu": op_relu,
    "Reshape": op_reshape,
    "Shape": op_shape,
    "Slice": op_slice,
    "Squeeze": op_squeeze,
    "Sub": _arith(np.subtract),
    "Unsqueeze": op_unsqueeze,
}

__all__ = ["Context", "OPS", "GraphError", "resolve_reshape"]
