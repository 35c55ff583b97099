"""One mixed-integer program over a flowgraph: maximise or minimise a linear
function of some nodes' pre-activations over an input box, with HiGHS.

The encoding works on the generic :class:`~sparsescope.graph.Flowgraph` (any
layer whose edges come from any earlier layer, so an unrolled convolution is
the same code).  Only the *cone* of the objective is encoded: the nodes it
depends on, found by walking edges backwards.  What is already known keeps
the program small:

* a ReLU unit proven off (``pre_hi <= 0``) is the constant 0 and ends the walk;
* a node proven constant is folded into its consumers' constants;
* a ReLU unit proven on (``pre_lo >= 0``) or an identity node is one linear
  equality, with no binary;
* only a ReLU unit whose pre-activation bounds straddle 0 gets a binary
  ``d``, with the big-M rows of its bounds ``[l, u]``:
  ``a >= z, a >= 0, a <= z - l (1 - d), a <= u d``.  Tighter ``[l, u]``
  (exact ranges of earlier layers) give a tighter program.

The bounds given must be sound in exact arithmetic.  The result carries the
solver's witness (an input point, clipped into the box) and its proven dual
bound; :mod:`._ranges` checks the witness by evaluating it and pads the bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._errors import SparsescopeError
from ..graph import Flowgraph
from ._cuts import ReluRows, cut_magnitude, strengthen

MIP_TOL = 1e-6  # HiGHS' mip_feasibility_tolerance (default); the padding scales with it
CUT_MIN_BINARIES = 16  # programs with this many binaries get ideal ReLU cuts first (see _cuts)
CUT_ROUNDS = 3  # measured on the ~7% MLP: more rounds add rows that slow every node more than they save
_HEURISTICS_OFF = ("mip_detect_symmetry", "mip_heuristic_run_feasibility_jump", "mip_heuristic_run_rins",
              "mip_heuristic_run_rens", "mip_heuristic_run_root_reduced_cost", "mip_allow_restart")


@dataclass(frozen=True)
class Known:
    """What is known about every node before a solve, per layer ``(size,)`` float64.

    ``pre_lo``/``pre_hi``: sound bounds of the pre-activation in exact
    arithmetic; ``const``: the node's value where it is constant over the box,
    NaN elsewhere (inputs included: an input with ``lo == hi`` is constant).
    """

    pre_lo: dict[str, np.ndarray]
    pre_hi: dict[str, np.ndarray]
    const: dict[str, np.ndarray]


@dataclass(frozen=True)
class Solve:
    """The outcome of one program.

    ``status``: ``"optimal"``, ``"time"`` (time cap hit) or ``"failed"``;
    ``value``: the solver's best objective (None without a feasible point);
    ``dual``: its proven bound on the optimum (upper for max, lower for min);
    ``x``: the best input point (flat, clipped into the box) or None;
    ``binaries``/``size``: the program's size; ``pad``: a bound on how far the
    solver's tolerances can move the objective (see :func:`tolerance_pad`).
    """

    status: str
    value: float | None
    dual: float
    x: np.ndarray | None
    binaries: int
    size: int
    pad: float
    relaxed: int = 0


def cone(graph: Flowgraph, known: Known, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, bool ``(size,)``: the nodes the objective over ``targets`` (layer -> node
    indices) depends on, walking edges backwards and stopping at off and constant nodes."""
    need = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    for name, idx in targets.items():
        need[name][np.asarray(idx, dtype=np.int64)] = True
    for layer in reversed(graph.layers[1:]):
        here = need[layer.name]
        if not here.any():
            continue
        live = here[layer.dst]
        src = layer.src[live]
        src_layer = graph.layer(layer.source)
        useful = np.isnan(known.const[layer.source][src])
        if src_layer.kind == "affine" and src_layer.activation == "relu":
            useful &= known.pre_hi[layer.source][src] > 0
        need[layer.source][src[useful]] = True
    return need


def tolerance_pad(graph: Flowgraph, known: Known, need: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray,
                  objective: dict[str, np.ndarray], tol: float = 10 * MIP_TOL,
                  binary_coef: dict[str, np.ndarray] | None = None) -> float:
    """How far a solution within the solver's tolerances can be from a true one, in objective units.

    Each variable may violate its bounds and rows by ``tol`` (ten times HiGHS'
    tolerance), and a binary may be off by ``tol``, which moves a ReLU output
    by ``tol * max(|l|, |u|)``; those errors propagate along the cone's edges
    like an interval radius.  Used to pad bounds that no witness attains.
    ``binary_coef``: per layer ``(size,)``, larger coefficients that a unit's
    binary has in some row (the cuts of :mod:`._cuts`), where they exceed the bounds.
    """
    err = {graph.input.name: np.where(need[graph.input.name], tol * (1 + np.abs(lo) + np.abs(hi)), 0.0)}
    for layer in graph.layers[1:]:
        e_src = err[layer.source]
        e = np.zeros(layer.size)
        np.add.at(e, layer.dst, np.abs(layer.weight) * e_src[layer.src])
        m = np.maximum(np.abs(known.pre_lo[layer.name]), np.abs(known.pre_hi[layer.name]))
        if binary_coef and layer.name in binary_coef:
            m = np.maximum(m, binary_coef[layer.name])
        e = e + tol * (1 + np.abs(layer.bias) + m)
        err[layer.name] = np.where(need[layer.name], e, 0.0)
    total = 0.0
    for name, coef in objective.items():
        total += float(np.abs(coef) @ err[name])
    return total + tol


_QUIET: list[bool] = []


def _import_highspy():
    try:
        import highspy
    except ImportError:
        raise SparsescopeError("exact analysis needs HiGHS: pip install highspy") from None
    return highspy


def _highs():
    """A silent HiGHS instance.  The first one prints a banner on the C level
    (standard output, whatever ``output_flag`` says): swallow it, so a JSON
    answer on standard output stays clean."""
    import os
    import sys

    highspy = _import_highspy()
    if not _QUIET:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _QUIET.append(True)
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # one thread, set before any run: HiGHS' thread scheduler is global and refuses
    # a later instance asking for fewer threads than the first one started
    h.setOptionValue("threads", 1)
    return h


def solve(graph: Flowgraph, known: Known, lo: np.ndarray, hi: np.ndarray, objective: dict[str, np.ndarray],
          *, senses: tuple[str, ...] = ("max", "min"), time_limit: float = 10.0, const: float = 0.0) -> list[Solve]:
    """Optimise ``const + sum_layer objective[layer] @ pre[layer]`` over the box ``[lo, hi]``.

    ``objective`` maps layer names to coefficient vectors ``(size,)`` on
    those layers' pre-activations; one program is built and solved once per
    sense (``"max"``, ``"min"``), each within ``time_limit`` seconds.
    Requires ``highspy``.
    """
    highspy = _import_highspy()
    results = []
    for sense in senses:
        # first with every ReLU the objective pushes down (along all its paths) relaxed to its
        # lower envelope: a relaxation, so its bound is sound; when the witness does not attain
        # it (the relaxation was not tight), solve again with every binary
        sv = _solve_one(highspy, graph, known, lo, hi, objective, sense, time_limit, const, relax=True)
        if sv.relaxed and not _attained(graph, objective, const, sv, sense):
            sv = _solve_one(highspy, graph, known, lo, hi, objective, sense, time_limit, const)
        results.append(sv)
    return results


def _attained(graph: Flowgraph, objective: dict[str, np.ndarray], const: float, sv: Solve, sense: str) -> bool:
    """Does the witness of ``sv`` reach its proven bound (within the padding)?"""
    if sv.status != "optimal" or sv.x is None or not np.isfinite(sv.dual):
        return False
    from ..graph import evaluate

    ev = evaluate(graph, sv.x[None])
    v = const + sum(float(c @ ev.pre[name][0]) for name, c in objective.items())
    return (sv.dual - v <= sv.pad) if sense == "max" else (v - sv.dual <= sv.pad)


def _one_way(graph: Flowgraph, need: dict[str, np.ndarray], objective: dict[str, np.ndarray],
             targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, the objective's coefficient on each node's output where that output
    feeds the objective's sums only (NaN elsewhere).  Such a ReLU pushed one way by
    the objective needs no binary (see :func:`_solve_one`)."""
    feeds_var = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    coef_out = {layer.name: np.zeros(layer.size) for layer in graph.layers}
    for layer in graph.layers[1:]:
        var_nodes = need[layer.name].copy()
        if layer.name in objective and not any(lay.source == layer.name and need[lay.name].any()
                                               for lay in graph.layers[1:]):
            var_nodes[targets[layer.name]] = False
        hit = var_nodes[layer.dst]
        feeds_var[layer.source][layer.src[hit]] = True
        if layer.name in objective:
            c = objective[layer.name][layer.dst] * layer.weight
            np.add.at(coef_out[layer.source], layer.src, c)
    return {n: np.where(feeds_var[n], np.nan, coef_out[n]) for n in feeds_var}


def _path_sign(graph: Flowgraph, need: dict[str, np.ndarray], objective: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, the sign (+1/-1) of every path from each node's output to the
    objective, where all paths agree (ReLU and identity are non-decreasing), else NaN."""
    pos = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    neg = {layer.name: np.zeros(layer.size, dtype=bool) for layer in graph.layers}
    for layer in reversed(graph.layers[1:]):
        sp, sn = pos[layer.name].copy(), neg[layer.name].copy()  # signs of this layer's outputs
        if layer.name in objective:
            c = objective[layer.name]
            sp |= c > 0
            sn |= c < 0
        live = need[layer.name][layer.dst]
        d, src, w = layer.dst[live], layer.src[live], layer.weight[live]
        up = (sp[d] & (w > 0)) | (sn[d] & (w < 0))
        down = (sp[d] & (w < 0)) | (sn[d] & (w > 0))
        pos[layer.source][src[up]] = True
        neg[layer.source][src[down]] = True
    return {n: np.where(pos[n] & ~neg[n], 1.0, np.where(neg[n] & ~pos[n], -1.0, np.nan)) for n in pos}


def _solve_one(highspy, graph: Flowgraph, known: Known, lo: np.ndarray, hi: np.ndarray,
               objective: dict[str, np.ndarray], sense: str, time_limit: float, const: float,
               relax: bool = False) -> Solve:
    """Build and solve one program.  A ReLU whose output feeds only the objective,
    with a coefficient that pushes it down (``< 0`` when maximising, ``> 0`` when
    minimising), keeps only ``a >= z, a >= 0`` and no binary: the optimum lowers
    ``a`` to ``max(z, 0)`` anyway, so the relaxation has the same optimum."""
    maximise = sense == "max"
    targets = {name: np.flatnonzero(c) for name, c in objective.items()}
    need = cone(graph, known, targets)
    one_way = _one_way(graph, need, objective, targets)
    signs = _path_sign(graph, need, objective) if relax else None
    relaxed = 0
    # variable numbering: inputs, then one output variable per needed non-input node
    var: dict[str, np.ndarray] = {}
    col_lo: list[np.ndarray] = []
    col_hi: list[np.ndarray] = []
    n_col = 0
    inp = graph.input
    x_need = need[inp.name] & np.isnan(known.const[inp.name])
    var[inp.name] = np.full(inp.size, -1, dtype=np.int64)
    var[inp.name][x_need] = np.arange(n_col, n_col + int(x_need.sum()))
    n_col += int(x_need.sum())
    col_lo.append(lo[x_need])
    col_hi.append(hi[x_need])
    # rows in COO form: coefficient lists
    r_idx: list[np.ndarray] = []
    c_idx: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    row_lo: list[np.ndarray] = []
    row_hi: list[np.ndarray] = []
    n_row = 0
    binaries = 0
    integrality: list[np.ndarray] = [np.zeros(n_col, dtype=np.int64)]
    obj_cols: list[np.ndarray] = []
    obj_vals: list[np.ndarray] = []
    obj_const = const
    relus: list[ReluRows] = []
    relu_at: list[tuple[str, np.ndarray]] = []  # (layer, node indices) of each entry of relus
    cut_mag: dict[str, np.ndarray] = {}

    def affine(layer, nodes: np.ndarray):
        """Linear form of the pre-activation of ``nodes``: (row-local index, col, coef) and constants."""
        sel = np.isin(layer.dst, nodes)
        dst, src, w = layer.dst[sel], layer.src[sel], layer.weight[sel]
        pos = np.searchsorted(nodes, dst)
        cst = layer.bias[nodes].copy()
        sv = var[layer.source][src]
        cv = known.const[layer.source][src]
        has_c = ~np.isnan(cv)
        np.add.at(cst, pos[has_c], w[has_c] * cv[has_c])
        use = (sv >= 0) & ~has_c
        return pos[use], sv[use], w[use], cst

    for layer in graph.layers[1:]:
        if not need[layer.name].any():
            var[layer.name] = np.full(layer.size, -1, dtype=np.int64)
            continue
        c_here = known.const.get(layer.name)
        nodes = np.flatnonzero(need[layer.name] & (True if c_here is None else np.isnan(c_here)))
        if layer.name in objective:
            coef = objective[layer.name]
            tnodes = np.flatnonzero(coef)
            pos, cols, w, cst = affine(layer, tnodes)
            obj_cols.append(cols)
            obj_vals.append(w * coef[tnodes][pos])
            obj_const += float(coef[tnodes] @ cst)
            # the objective reads the targets' sums; their outputs need variables
            # only when a needed node further on reads them
            if not any(lay.source == layer.name and need[lay.name].any() for lay in graph.layers[1:]):
                nodes = np.setdiff1d(nodes, tnodes)
        if nodes.size == 0:
            var[layer.name] = np.full(layer.size, -1, dtype=np.int64)
            continue
        l = known.pre_lo[layer.name][nodes]
        u = known.pre_hi[layer.name][nodes]
        relu = layer.activation == "relu"
        if relu:
            keep = u > 0  # off units are 0: no variable
            nodes, l, u = nodes[keep], l[keep], u[keep]
        v = np.full(layer.size, -1, dtype=np.int64)
        v[nodes] = np.arange(n_col, n_col + nodes.size)
        a_cols = v[nodes]
        n_col += nodes.size
        if relu:
            col_lo.append(np.maximum(l, 0.0))
            col_hi.append(u.copy())
        else:
            col_lo.append(l.copy())
            col_hi.append(u.copy())
        integrality.append(np.zeros(nodes.size, dtype=np.int64))
        pos, cols, w, cst = affine(layer, nodes)
        linear = (l >= 0) if relu else np.ones(nodes.size, dtype=bool)
        # row a - sum w v = cst  (linear)   or   a - sum w v >= cst (unstable ReLU: a >= z)
        rows = n_row + np.arange(nodes.size)
        r_idx += [rows, rows[pos]]
        c_idx += [a_cols, cols]
        vals += [np.ones(nodes.size), -w]
        row_lo.append(cst.copy())
        row_hi.append(np.where(linear, cst, np.inf))
        n_row += nodes.size
        push = one_way[layer.name][nodes]
        down = ~np.isnan(push) & ((push <= 0) if maximise else (push >= 0))
        if signs is not None:  # relaxed: every unit the objective pushes down, through any path
            sg = signs[layer.name][nodes]
            more = ~np.isnan(sg) & ((sg < 0) if maximise else (sg > 0)) & ~down & ~linear
            relaxed += int(more.sum()) if relu else 0
            down = down | more
        unstable = np.flatnonzero(~linear & ~(down if relu else False))
        if unstable.size:
            k = unstable.size
            d_cols = n_col + np.arange(k)
            n_col += k
            binaries += k
            col_lo.append(np.zeros(k))
            col_hi.append(np.ones(k))
            integrality.append(np.ones(k, dtype=np.int64))
            lu, uu = l[unstable], u[unstable]
            on_unit = np.isin(pos, unstable)
            relus.append(ReluRows(a_cols[unstable], d_cols, np.searchsorted(unstable, pos[on_unit]),
                                  cols[on_unit], w[on_unit], cst[unstable]))
            relu_at.append((layer.name, nodes[unstable]))
            # a - z - l d <= -l   i.e.  a - sum w v - l d <= cst - l
            rows2 = n_row + np.arange(k)
            sel = np.isin(pos, unstable)
            local = np.searchsorted(unstable, pos[sel])
            r_idx += [rows2, rows2[local], rows2]
            c_idx += [a_cols[unstable], cols[sel], d_cols]
            vals += [np.ones(k), -w[sel], -lu]
            row_lo.append(np.full(k, -np.inf))
            row_hi.append(cst[unstable] - lu)
            n_row += k
            # a - u d <= 0
            rows3 = n_row + np.arange(k)
            r_idx += [rows3, rows3]
            c_idx += [a_cols[unstable], d_cols]
            vals += [np.ones(k), -uu]
            row_lo.append(np.full(k, -np.inf))
            row_hi.append(np.zeros(k))
            n_row += k
        var[layer.name] = v

    obj_cost = np.zeros(n_col)
    if obj_cols:
        np.add.at(obj_cost, np.concatenate(obj_cols), np.concatenate(obj_vals))
    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = n_row
    lp.col_cost_ = obj_cost
    lp.col_lower_ = np.concatenate(col_lo) if col_lo else np.zeros(0)
    lp.col_upper_ = np.concatenate(col_hi) if col_hi else np.zeros(0)
    lp.row_lower_ = np.concatenate(row_lo) if row_lo else np.zeros(0)
    lp.row_upper_ = np.concatenate(row_hi) if row_hi else np.zeros(0)
    lp.offset_ = obj_const
    if n_row:
        ri = np.concatenate(r_idx)
        ci = np.concatenate(c_idx)
        vv = np.concatenate(vals)
        order = np.lexsort((ri, ci))
        ri, ci, vv = ri[order], ci[order], vv[order]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(ci, np.arange(n_col + 1)).astype(np.int32)
        lp.a_matrix_.index_ = ri.astype(np.int32)
        lp.a_matrix_.value_ = vv
    ints = np.concatenate(integrality)
    if binaries:
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in ints]
    lp.sense_ = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
    h = _highs()
    started = time.perf_counter()
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    # HiGHS' primal heuristics, restarts and symmetry detection cost more than
    # they save on these programs (measured: 2-5x faster without, 2-32 binaries)
    for opt in _HEURISTICS_OFF:
        h.setOptionValue(opt, False)
    h.passModel(lp)
    if binaries >= CUT_MIN_BINARIES:
        c_lo, c_hi = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
        root = _highs()
        root.setOptionValue("time_limit", float(time_limit))
        lp.integrality_ = []
        root.passModel(lp)
        strengthen(root, h, relus, c_lo, c_hi, CUT_ROUNDS)
        for (layer_name, at), rows in zip(relu_at, relus):
            full = cut_mag.setdefault(layer_name, np.zeros(graph.layer(layer_name).size))
            full[at] = cut_magnitude(rows, c_lo, c_hi)
    h.setOptionValue("time_limit", max(float(time_limit) - (time.perf_counter() - started), 1e-3))
    pad = tolerance_pad(graph, known, need, lo, hi, objective, binary_coef=cut_mag)
    n_x = int(x_need.sum())
    _run_checked(highspy, h, obj_cost, obj_const)
    ms = h.getModelStatus()
    info = h.getInfo()
    status = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kTimeLimit: "time"}.get(ms, "failed")
    has_sol = info.primal_solution_status >= 2  # 2: a feasible point
    x, value = None, None
    if has_sol:
        x = lo.copy()  # inputs outside the cone do not matter: take the box's low end
        if n_col:
            x[x_need] = np.asarray(h.getSolution().col_value)[:n_x]
            value = float(info.objective_function_value)
        else:
            value = obj_const
        x = np.clip(x, lo, hi)
    none = np.inf if maximise else -np.inf
    if status == "failed":
        dual = none
    elif binaries:
        dual = float(info.mip_dual_bound)
    else:
        dual = value if (status == "optimal" and value is not None) else none
    if not np.isfinite(dual):
        dual = none
    return Solve(status, value, dual, x, binaries, n_col + n_row, pad, relaxed)


def _run_checked(highspy, h, cost: np.ndarray, offset: float) -> None:
    """``h.run()``, guarded against two HiGHS failure modes seen in practice.

    * An error status when HiGHS' global thread scheduler was started, by some
      earlier instance in this process, with more threads than ours asks for:
      reset the scheduler and run again.
    * A reported optimum whose returned columns give another objective value (a
      postsolve slip): run again without presolve.  The witness check would
      catch such a point anyway, but only by giving up the end's exactness.
    """
    if h.run() == highspy.HighsStatus.kError:
        highspy.Highs.resetGlobalScheduler(True)
        h.run()
    info = h.getInfo()
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal and info.primal_solution_status >= 2 and cost.size:
        col = np.asarray(h.getSolution().col_value)
        v = float(cost @ col) + offset
        ref = float(info.objective_function_value)
        if not abs(v - ref) <= 1e-7 * (1 + abs(ref) + float(np.abs(cost) @ np.abs(col))):
            h.setOptionValue("presolve", "off")
            h.run()
