"""Greedy composition of linear units into their consumers, on a :class:`~._dag.Dag`.

A linear hidden unit ``u`` (identity activation, or a ReLU proven always on
over the box) with ``a`` in-edges and ``c`` out-edges computes an affine
function of its sources; composing it into its consumers (:func:`._dag.compose`)
removes its ``a + c`` edges and adds one edge per (source, consumer) pair not
already joined.  :func:`compose_greedy` visits the linear units in node order
(by layer, then index) and composes each one whose composition strictly lowers
the edge count *at that moment* (counts are recomputed after every composition,
since compositions interact: a consumer may itself be linear and be composed
later, taking the new skip edges with it); it repeats the visit until a whole
pass composes nothing.  Deterministic: the order and the arithmetic are fixed.

The work happens on a mutable adjacency (dicts per node) for speed; every step
is the same float64 arithmetic as :func:`._dag.compose`, so replaying the
recorded steps with that pure function gives the same graph to the last bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._dag import Dag, _subset


class _Adjacency:
    """In-edges and out-edges of every node as dicts ``{other position: weight}``."""

    def __init__(self, dag: Dag) -> None:
        n = dag.num_nodes
        self.ins: list[dict[int, float]] = [{} for _ in range(n)]
        self.outs: list[dict[int, float]] = [{} for _ in range(n)]
        for s, d, w in zip(dag.src.tolist(), dag.dst.tolist(), dag.weight.tolist()):
            self.ins[d][s] = w
            self.outs[s][d] = w
        self.bias = dag.bias.tolist()
        self.alive = [True] * n
        self.edges = dag.num_edges

    def gain(self, u: int) -> int:
        """Edges after composing ``u`` minus edges before (negative: fewer)."""
        srcs = self.ins[u]
        new = sum(1 for c in self.outs[u] for s in srcs if s not in self.ins[c])
        return new - len(srcs) - len(self.outs[u])

    def compose(self, u: int) -> None:
        srcs, b_u = self.ins[u], self.bias[u]
        for c, w_cu in self.outs[u].items():
            self.bias[c] = self.bias[c] + w_cu * b_u
            ins_c = self.ins[c]
            del ins_c[u]
            for s, w_us in srcs.items():
                add = w_cu * w_us
                v = ins_c[s] + add if s in ins_c else add
                if v != 0:
                    ins_c[s] = v
                    self.outs[s][c] = v
                else:
                    ins_c.pop(s, None)
                    self.outs[s].pop(c, None)
        for s in srcs:
            del self.outs[s][u]
        self.ins[u], self.outs[u], self.alive[u] = {}, {}, False
        self.edges = sum(len(d) for d in self.ins)

    def to_dag(self, dag: Dag) -> Dag:
        keep = np.array(self.alive, dtype=bool)
        pairs = sorted((d, s) for d in range(len(self.ins)) for s in self.ins[d])
        dst = np.array([p[0] for p in pairs], dtype=np.int64)
        src = np.array([p[1] for p in pairs], dtype=np.int64)
        w = np.array([self.ins[d][s] for d, s in pairs], dtype=np.float64)
        return _subset(dag, keep, np.array(self.bias, dtype=np.float64), src, dst, w)


def compose_greedy(dag: Dag, reasons: dict[str, str]) -> tuple[Dag, list[dict[str, Any]]]:
    """Compose linear hidden units while that strictly lowers the edge count (module docstring).

    ``reasons``: per linear unit id, why it is linear (``"on"``: a ReLU proven
    always on, see its fact; ``"identity"``: no activation).  Returns the new
    DAG and one record per composition, in the order applied:
    ``{"node", "fact": "composed", "how", "sources", "consumers", "edges": [before, after]}``
    (``sources``: how many; ``consumers``: their ids; ``edges``: the DAG's edge
    count before and after).
    """
    adj = _Adjacency(dag)
    last = len(dag.layers) - 1
    cand = [k for k in range(dag.num_nodes)
            if dag.activation[k] == "linear" and 0 < dag.layer[k] < last]
    records: list[dict[str, Any]] = []
    changed = True
    while changed:
        changed = False
        for u in cand:
            if not adj.alive[u] or adj.gain(u) >= 0:
                continue
            before = adj.edges
            rec = {"node": dag.ids[u], "fact": "composed", "how": reasons.get(dag.ids[u], "identity"),
                   "sources": len(adj.ins[u]), "consumers": [dag.ids[c] for c in sorted(adj.outs[u])]}
            adj.compose(u)
            records.append({**rec, "edges": [before, adj.edges]})
            changed = True
    return adj.to_dag(dag), records
