"""Exact ranges of every hidden and output unit over an input box, with witnesses.

Layer by layer, in evaluation order, each node's pre-activation is
maximised and minimised over the box:

* a node whose every live source is constant is constant (``how="constant"``);
* a node fed by inputs only is affine in the box: its extremes are at the
  greedy vertex (``how="affine"``), no solver needed;
* any other node gets a mixed-integer program (``how="milp"``, see
  :mod:`._milp`), built on what the earlier layers proved: their exact ranges
  are the big-M constants, and units proven off or on need no binary.

Every extreme reported as ``exact`` comes with a witness input in the box;
the witness is evaluated (:func:`~sparsescope.graph.evaluate`, float64) and
*that* value is the reported end, so an exact end is a value the network
really takes.  Beside it is a sound outer bound (``lo_bound``/``hi_bound``):
the solver's proven dual bound, padded for its feasibility tolerances
(:func:`._milp.tolerance_pad`), never wider than the interval bounds.  An end
is ``exact`` when the solver proved optimality and its optimum lies within
that padding of the witness; when the per-solve time cap hits, the end keeps
the proven bound with status ``bound`` (and the best witness found, if any,
as an inner value).

All of this is exact arithmetic.  :attr:`ExactRanges.bounds` widens the
outer bounds by a propagated float32 rounding allowance, so they also hold
for the model evaluated in float32 or float64 (like the interval bounds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._errors import GraphError
from ..bounds import interval_bounds, rounding_slack
from ..graph import Bounds, Flowgraph, evaluate
from ..graph._eval import affine, apply_activation, layer_matrix
from ._milp import Known, Solve, solve
from ._parallel import run_tasks

STATUSES = ("exact", "bound")
HOWS = ("constant", "greedy", "milp", "interval")
_U64 = np.finfo(np.float64).eps / 2
_CHUNK = 512  # rows per block when many points go through the network at once


@dataclass(frozen=True, eq=False)
class ExactRanges:
    """Exact pre-activation ranges of every affine node over the box ``[box_lo, box_hi]``.

    Per layer name, float64 ``(size,)`` arrays:

    * ``lo``/``hi``: the witnessed ends (values the network takes; NaN if none found);
    * ``lo_bound``/``hi_bound``: sound outer bounds in exact arithmetic
      (equal to ``lo``/``hi`` up to the solver padding when exact);
    * ``lo_status``/``hi_status``: ``"exact"`` or ``"bound"`` (str arrays);
    * ``how``: ``"constant"``, ``"affine"``, ``"milp"`` or ``"interval"`` (str array);
    * ``lo_witness``/``hi_witness``: row of ``witnesses`` attaining ``lo``/``hi``, or -1.

    ``witnesses`` is ``(W, n_in)``: the distinct witness inputs (flat).
    ``interval`` holds the float32-sound interval bounds, ``bounds`` the
    float32-sound bounds derived from the exact ranges (never wider).
    ``solves``: programs solved; ``max_binaries``: the largest program's
    binaries; ``seconds``: wall time; ``time_limit``: the per-solve cap.
    """

    box: str
    box_lo: np.ndarray
    box_hi: np.ndarray
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    lo_bound: dict[str, np.ndarray]
    hi_bound: dict[str, np.ndarray]
    lo_status: dict[str, np.ndarray]
    hi_status: dict[str, np.ndarray]
    how: dict[str, np.ndarray]
    lo_witness: dict[str, np.ndarray]
    hi_witness: dict[str, np.ndarray]
    witnesses: np.ndarray
    interval: Bounds
    bounds: Bounds
    solves: int = 0
    max_binaries: int = 0
    seconds: float = 0.0
    time_limit: float = 0.0
    layers: tuple[str, ...] = field(default_factory=tuple)

    def count(self, status: str = "exact") -> tuple[int, int]:
        """``(ends with this status, all ends)`` over every hidden and output node."""
        hit = sum(int(np.sum(self.lo_status[n] == status) + np.sum(self.hi_status[n] == status)) for n in self.layers)
        total = sum(2 * self.lo[n].size for n in self.layers)
        return hit, total


def exact_ranges(
    graph: Flowgraph,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    box: str = "custom",
    time_limit: float = 10.0,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 2,
) -> ExactRanges:
    """The exact range of every hidden and output node over ``[lo, hi]`` (flat ``(n_in,)``).

    ``time_limit``: seconds per program (per node and direction); when it
    hits, that end keeps the solver's proven bound with status ``bound``.
    ``progress(layer, done, total)`` is called after each program.
    ``workers``: processes solving a layer's programs at once (see
    :mod:`._parallel`); the result does not depend on it.
    """
    start = time.perf_counter()
    lo = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1)
    iv32 = interval_bounds(graph, lo, hi, box=box)  # checks the box too
    iv64 = interval_bounds(graph, lo, hi, eval_dtype=np.float64)
    if np.array_equal(lo, hi):
        iv64 = iv32  # a zero-width float64 box is exact evaluation, not exact arithmetic: keep the slack
    name0 = graph.input.name
    known = Known(
        pre_lo={name0: lo.copy(), **{L.name: iv64.pre_lo[L.name].copy() for L in graph.layers[1:]}},
        pre_hi={name0: hi.copy(), **{L.name: iv64.pre_hi[L.name].copy() for L in graph.layers[1:]}},
        const={name0: np.where(lo == hi, lo, np.nan)},
    )
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in (
        "lo", "hi", "lo_bound", "hi_bound", "lo_status", "hi_status", "how", "lo_witness", "hi_witness")}
    witnesses: list[np.ndarray] = []
    solves = 0
    max_bin = 0
    names = []
    for layer in graph.layers[1:]:
        name = layer.name
        names.append(name)
        n = layer.size
        src = graph.layer(layer.source)
        ilo, ihi = known.pre_lo[name], known.pre_hi[name]
        r = {
            "lo": np.full(n, np.nan), "hi": np.full(n, np.nan),
            "lo_bound": ilo.copy(), "hi_bound": ihi.copy(),
            "lo_status": np.full(n, "bound", dtype=object), "hi_status": np.full(n, "bound", dtype=object),
            "how": np.full(n, "interval", dtype=object),
            "lo_witness": np.full(n, -1, dtype=np.int64), "hi_witness": np.full(n, -1, dtype=np.int64),
        }
        # 1. constants: every edge from a constant or an off source
        c_src = known.const[layer.source][layer.src]
        off_src = np.zeros(layer.num_edges, dtype=bool)
        if src.kind == "affine" and src.activation == "relu":
            off_src = known.pre_hi[layer.source][layer.src] <= 0
        live_edge = np.isnan(c_src) & ~off_src
        is_const = np.bincount(layer.dst[live_edge], minlength=n) == 0
        # 2. one interval step from the sources' proven ranges: a sound outer bound
        s_lo, s_hi = _post_range(src, known)
        wlo, whi = layer.weight * s_lo[layer.src], layer.weight * s_hi[layer.src]
        lo1, hi1 = layer.bias.copy(), layer.bias.copy()
        np.add.at(lo1, layer.dst, np.minimum(wlo, whi))
        np.add.at(hi1, layer.dst, np.maximum(wlo, whi))
        mag = np.abs(layer.bias).copy()
        np.add.at(mag, layer.dst, np.maximum(np.abs(wlo), np.abs(whi)))
        fan = np.bincount(layer.dst, minlength=n)
        pad1 = 2 * (fan + 3) * _U64 * mag
        r["lo_bound"] = np.maximum(ilo, lo1 - pad1)
        r["hi_bound"] = np.minimum(ihi, hi1 + pad1)
        for j in np.flatnonzero(is_const):
            r["lo"][j], r["hi"][j] = lo1[j], hi1[j]
            r["lo_status"][j] = r["hi_status"][j] = "exact"
            r["how"][j] = "constant"
            r["lo_witness"][j] = r["hi_witness"][j] = len(witnesses)  # any point: the box's low end
        if is_const.any():
            witnesses.append(lo.copy())
        # 3. the greedy point of each end: does it attain the one-step bound?
        free = np.flatnonzero(~is_const)
        tol = 1e-9 * (1 + mag)
        todo: dict[int, list[str]] = {}
        if free.size:
            xs = _greedy_points(graph, known, lo, hi, layer, free)
            pre = sparse_pre(graph, xs, name)
            k = free.size
            base = len(witnesses)
            witnesses += list(xs)
            for i, j in enumerate(free):
                v_hi, v_lo = float(pre[i, j]), float(pre[k + i, j])
                pad = max(pad1[j], tol[j])  # exact: the witness is within tol of the bound
                _settle(r, j, "hi", v_hi, base + i, hi1[j], pad, True)
                _settle(r, j, "lo", v_lo, base + k + i, lo1[j], pad, True)
                r["how"][j] = "greedy"
                miss = [side for side in ("hi", "lo") if r[side + "_status"][j] != "exact"]
                if miss:
                    todo[int(j)] = miss
        # 4. the rest: one program per node, for the ends still open
        pts: list[np.ndarray] = []
        plan: list[tuple[int, str, float, float, str]] = []  # node, side, dual, pad, solver status
        tasks = []
        for j, sides in todo.items():
            r["how"][j] = "milp"
            tasks += [(j, side) for side in sides]
        shared = (graph, known, lo, hi, name, time_limit)
        report = (lambda c: progress(name, c, len(tasks))) if progress else None
        for (j, side), sv in zip(tasks, run_tasks(_solve_end, shared, tasks, workers=workers, done=report)):
            solves += 1
            max_bin = max(max_bin, sv.binaries)
            if sv.x is not None:
                pts.append(sv.x)
            plan.append((j, side, sv.dual, sv.pad, sv.status if sv.x is not None else "nox:" + sv.status))
        # evaluate every witness once, then settle each end
        if plan:
            xs = np.vstack(pts) if pts else np.zeros((0, lo.size))
            pre = sparse_pre(graph, xs, name) if pts else None
            base = len(witnesses)
            witnesses += list(xs)
            pi = 0
            for j, side, dual, pad, st in plan:
                if st.startswith("nox:"):
                    if st == "nox:time" and np.isfinite(dual):
                        _tighten(r, j, side, dual, pad)
                    continue
                v = float(pre[pi, j])
                _settle(r, j, side, v, base + pi, dual, pad, st == "optimal")
                pi += 1
        for k in out:
            out[k][name] = r[k]
        known.pre_lo[name] = r["lo_bound"]
        known.pre_hi[name] = r["hi_bound"]
        cst = np.where(is_const, apply_activation(layer.activation, lo1), np.nan)
        known.const[name] = cst
    wit = _check_witnesses(graph, out, np.vstack(witnesses) if witnesses else np.zeros((0, lo.size)))
    env = float32_bounds(graph, iv32, out["lo_bound"], out["hi_bound"], box)
    return ExactRanges(box, lo, hi, **out, witnesses=wit, interval=iv32, bounds=env, solves=solves,
                       max_binaries=max_bin, seconds=time.perf_counter() - start, time_limit=time_limit,
                       layers=tuple(names))


def _solve_end(shared: tuple, task: tuple) -> Solve:
    """One end of one node: ``task = (node, "hi" | "lo")``."""
    graph, known, lo, hi, name, time_limit = shared
    j, side = task
    coef = np.zeros(graph.layer(name).size)
    coef[j] = 1.0
    (sv,) = solve(graph, known, lo, hi, {name: coef}, senses=("max" if side == "hi" else "min",),
                  time_limit=time_limit)
    return sv


def _check_witnesses(graph: Flowgraph, out: dict, wit: np.ndarray) -> np.ndarray:
    """Keep the witness rows in use, evaluate them with :func:`evaluate`, and check that
    each attains its recorded end (to 1e-9 relative); an end that does not loses
    its witness and its ``exact`` status.  Returns the kept rows (indices renumbered)."""
    used = np.unique(np.concatenate([out[k][n] for k in ("lo_witness", "hi_witness") for n in out["lo"]] + [np.zeros(0, np.int64)]))
    used = used[used >= 0]
    remap = np.full(len(wit) + 1, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    kept = wit[used]
    # evaluate in blocks, reading only the checked values (thousands of witnesses
    # through an unrolled convolution would not fit in memory at once)
    checks = []  # (layer, side, witness rows, units)
    for n in out["lo"]:
        for side in ("lo", "hi"):
            idx = remap[out[side + "_witness"][n]]
            out[side + "_witness"][n] = idx
            units = np.flatnonzero(idx >= 0)
            checks.append((n, side, idx[units], units))
    got = {(n, side): np.full(units.size, np.nan) for n, side, _, units in checks}
    for i in range(0, kept.shape[0], _CHUNK):
        ev = evaluate(graph, kept[i : i + _CHUNK])
        for n, side, rows, units in checks:
            here = (rows >= i) & (rows < i + _CHUNK)
            got[(n, side)][here] = ev.pre[n][rows[here] - i, units[here]]
    for n, side, _, units in checks:
        want = out[side][n][units]
        bad = units[~(np.abs(got[(n, side)] - want) <= 1e-9 * (1 + np.abs(want)))]
        out[side + "_witness"][n][bad] = -1
        out[side + "_status"][n][bad] = "bound"
    return kept


def _settle(r: dict, j: int, side: str, v: float, wi: int, dual: float, pad: float, optimal: bool) -> None:
    """Record one end: the witness value ``v`` (row ``wi``) and the proven bound ``dual``."""
    if side == "hi":
        outer = min(r["hi_bound"][j], max(dual, v) + pad) if np.isfinite(dual) else r["hi_bound"][j]
        if np.isnan(r["hi"][j]) or v > r["hi"][j]:
            r["hi"][j], r["hi_witness"][j] = v, wi
        r["hi_bound"][j] = max(outer, r["hi"][j])
        exact = optimal and np.isfinite(dual) and dual - v <= pad
        r["hi_status"][j] = "exact" if exact else "bound"
    else:
        outer = max(r["lo_bound"][j], min(dual, v) - pad) if np.isfinite(dual) else r["lo_bound"][j]
        if np.isnan(r["lo"][j]) or v < r["lo"][j]:
            r["lo"][j], r["lo_witness"][j] = v, wi
        r["lo_bound"][j] = min(outer, r["lo"][j])
        exact = optimal and np.isfinite(dual) and v - dual <= pad
        r["lo_status"][j] = "exact" if exact else "bound"


def sparse_pre(graph: Flowgraph, x: np.ndarray, upto: str) -> np.ndarray:
    """Pre-activations of layer ``upto`` for inputs ``x`` ``(B, n_in)``, float64, along the edges only.

    The same sums as :func:`evaluate` (CSR products for large layers),
    ``_CHUNK`` rows at a time so that thousands of points through an unrolled
    convolution stay within memory; every witness is re-checked with
    :func:`evaluate` at the end.
    """
    if upto not in {L.name for L in graph.layers[1:]}:
        raise GraphError(f"no layer named {upto!r}")
    x = np.asarray(x, dtype=np.float64)
    mats = {L.name: layer_matrix(L, graph.layer(L.source).size) for L in graph.layers[1:]}
    out = []
    for i in range(0, max(len(x), 1), _CHUNK):
        post = {graph.input.name: x[i : i + _CHUNK]}
        for layer in graph.layers[1:]:
            z = affine(mats[layer.name], post[layer.source]) + layer.bias
            if layer.name == upto:
                out.append(z)
                break
            post[layer.name] = apply_activation(layer.activation, z)
    return np.vstack(out)


def _post_range(layer, known: Known) -> tuple[np.ndarray, np.ndarray]:
    """Sound ranges of a layer's node values (after the activation); constants exact."""
    a = apply_activation(layer.activation, known.pre_lo[layer.name])
    b = apply_activation(layer.activation, known.pre_hi[layer.name])
    c = known.const.get(layer.name)
    if c is not None:
        a, b = np.where(np.isnan(c), a, c), np.where(np.isnan(c), b, c)
    return a, b


def _greedy_points(graph: Flowgraph, known: Known, lo: np.ndarray, hi: np.ndarray, layer, nodes: np.ndarray) -> np.ndarray:
    """For each node, the input that pushes every ancestor the way the node wants:
    rows ``0..k-1`` maximise ``nodes``, rows ``k..2k-1`` minimise them."""
    k = nodes.size
    demand = np.zeros((2 * k, layer.size))
    demand[np.arange(k), nodes] = 1.0
    demand[k + np.arange(k), nodes] = -1.0
    return greedy_points(graph, known, lo, hi, layer.name, demand)


def greedy_points(graph: Flowgraph, known: Known, lo: np.ndarray, hi: np.ndarray, name: str,
                  demand: np.ndarray) -> np.ndarray:
    """One input per row of ``demand`` ``(T, size of layer name)``: the point of the box
    that pushes every ancestor the way ``demand @ pre[name]`` wants to go up.

    Walking back, a source is pushed up when the weighted demands on it (weight
    times its range width) sum positive, down when negative; ReLU and identity
    are monotone, so that is the way to push its own sources.  When the cone is
    a tree there is no conflict and the point attains the interval bound
    exactly; otherwise it is a candidate that the caller checks.
    """
    from scipy.sparse import csr_matrix

    names = [L.name for L in graph.layers]
    upto = names.index(name)
    # sparse demands: a unit's demand reaches only its cone (a conv unit's receptive field)
    dem = {name: csr_matrix(np.asarray(demand, dtype=np.float64))}
    for L in reversed(graph.layers[1 : upto + 1]):
        d = dem.pop(L.name, None)
        if d is None:
            continue
        d = d.sign()
        d.eliminate_zeros()
        src = graph.layer(L.source)
        s_lo, s_hi = _post_range(src, known) if src.kind == "affine" else (lo, hi)
        width = np.where(s_hi > s_lo, s_hi - s_lo, 0.0)
        w = csr_matrix((L.weight * width[L.src], (L.dst, L.src)), shape=(L.size, src.size))
        push = d @ w
        dem[src.name] = push if src.name not in dem else dem[src.name] + push
    out = np.tile(lo, (len(demand), 1))
    d = dem.get(graph.input.name)
    if d is not None:
        d = d.tocoo()
        up = d.data > 0
        out[d.row[up], d.col[up]] = hi[d.col[up]]
    return out


def _tighten(r: dict, j: int, side: str, dual: float, pad: float) -> None:
    """No witness, but a proven bound (time cap): keep it if it beats the interval."""
    if side == "hi":
        r["hi_bound"][j] = min(r["hi_bound"][j], dual + pad)
    else:
        r["lo_bound"][j] = max(r["lo_bound"][j], dual - pad)


def float32_bounds(graph: Flowgraph, interval: Bounds, pre_lo: dict[str, np.ndarray], pre_hi: dict[str, np.ndarray],
                   box: str) -> Bounds:
    """Bounds that hold in float32 and float64 evaluation, from exact-arithmetic ones.

    A float32 evaluation differs from exact arithmetic at the same input by
    at most ``err``, propagated layer by layer: ``err = |W| err_source +
    rounding_slack`` (ReLU is 1-Lipschitz), the slack measured on the
    float32-sound ``interval`` bounds.  The result is intersected with them.
    """
    name0 = graph.input.name
    err = {name0: np.zeros(graph.input.size)}
    lo_, hi_ = {name0: interval.lo[name0]}, {name0: interval.hi[name0]}
    plo, phi = {name0: interval.pre_lo[name0]}, {name0: interval.pre_hi[name0]}
    for layer in graph.layers[1:]:
        slo, shi = interval.lo[layer.source], interval.hi[layer.source]
        amax = np.maximum(np.abs(slo), np.abs(shi))
        mag = np.abs(layer.bias).copy()
        np.add.at(mag, layer.dst, np.abs(layer.weight) * amax[layer.src])
        src_mag = np.zeros(layer.size)
        np.add.at(src_mag, layer.dst, amax[layer.src])
        fan = np.bincount(layer.dst, minlength=layer.size)
        e = rounding_slack(fan, mag * (1 + 1e-12), src_mag * (1 + 1e-12), np.float32)
        np.add.at(e, layer.dst, np.abs(layer.weight) * err[layer.source][layer.src])
        e = e * (1 + 1e-12)
        err[layer.name] = e
        a = np.maximum(pre_lo[layer.name] - e, interval.pre_lo[layer.name])
        b = np.minimum(pre_hi[layer.name] + e, interval.pre_hi[layer.name])
        if np.any(a > b):
            raise GraphError(f"layer {layer.name}: exact bounds disagree with the interval bounds")
        plo[layer.name], phi[layer.name] = a, b
        lo_[layer.name] = apply_activation(layer.activation, a)
        hi_[layer.name] = apply_activation(layer.activation, b)
    return Bounds(box, lo_, hi_, plo, phi)
