"""Re-check a simplification certificate: replay it on the original flowgraph.

:func:`check_certificate` takes the original :class:`~sparsescope.graph.Flowgraph`
and the analysis JSON (``sparsescope.analysis``, version 2; version 1 with the
box passed in) and checks every step independently of :func:`~._simplify.simplify`:

1. each sign fact (``off``: the unit's sum ``<= 0`` over the box; ``on``: ``>= 0``)
   is re-proven when it says ``how: interval`` (interval arithmetic over the
   box); one proven by the solver (``greedy``/``milp``) has its witness
   re-evaluated: the witness lies in the box and the unit's sum there is the
   recorded extreme, on the right side of 0 and of the proven bound.  With
   ``prove=True`` the solver facts are proven again (:func:`~._ranges.exact_ranges`
   over the box), otherwise they are counted as ``trusted``;
2. constant inputs are checked against the box; then, on the original graph
   as a :class:`~._dag.Dag`, constants and off units are folded into their
   consumers' biases in the order listed (a ``constant`` unit must have no
   live source left, and its value must match), dead parts are dropped, units
   proven ``on`` are marked linear, and every ``composed`` step is applied
   (:func:`~._dag.compose`; the unit must be linear, the edge counts before
   and after must match, and after must be smaller);
3. the result must equal the recorded simplified graph: the same node ids,
   activations and edges, weights and biases equal to ``rtol`` (the replay
   does the same float64 operations in the same order, so they agree to the
   last bit; ``rtol`` leaves room for a tool that sums differently).

Any failure raises :class:`CertificateError` naming the fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import SparsescopeError
from ..bounds import interval_bounds
from ..graph import Flowgraph, evaluate, from_dict
from ._dag import Dag, _subset, compose, dag_from_dict, dag_from_flowgraph, prune, with_linear


class CertificateError(SparsescopeError):
    """A certificate that does not re-check (a fact false, a step not applicable, or a mismatch)."""


@dataclass(frozen=True, eq=False)
class CertificateCheck:
    """What :func:`check_certificate` re-checked: ``dag`` the replayed simplified graph;
    ``counts`` per kind of check: ``interval`` (sign facts re-proven by interval
    arithmetic), ``witnessed`` (solver facts whose witness was re-evaluated),
    ``proven`` (solver facts proven again with ``prove=True``), ``trusted``
    (solver facts accepted on the solver's word: no witness, ``prove=False``),
    ``folded``, ``composed``."""

    dag: Dag
    counts: dict[str, int]

    def summary(self) -> str:
        """One line: what was re-checked how, and the size of the simplified graph it matched."""
        c = self.counts
        signs = c["interval"] + c["witnessed"] + c["proven"] + c["trusted"]
        return (f"certificate re-checked: {signs} sign facts ({c['interval']} by interval arithmetic, "
                f"{c['witnessed']} witnessed, {c['proven']} proven again, {c['trusted']} trusted), "
                f"{c['folded']} folded, {c['composed']} compositions replayed; the simplified graph "
                f"({self.dag.num_nodes} vertices, {self.dag.num_edges} edges) matches")


def _fail(msg: str) -> CertificateError:
    return CertificateError(f"certificate does not re-check: {msg}")


def _box(doc: dict[str, Any], graph: Flowgraph, box: tuple[np.ndarray, np.ndarray] | None):
    if box is not None:
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(-1) for b in box)
    else:
        b = doc["simplified"].get("box")
        if b is None:
            raise _fail("the document records no box (version 1): pass box=(lo, hi)")
        lo, hi = np.asarray(b["lo"], dtype=np.float64), np.asarray(b["hi"], dtype=np.float64)
    if lo.shape != (graph.input.size,) or hi.shape != lo.shape or np.any(~(lo <= hi)):
        raise _fail("the box does not fit the graph's input")
    return lo, hi


def _witnesses(doc: dict[str, Any], graph: Flowgraph, lo: np.ndarray) -> list[np.ndarray]:
    out = []
    for w in (doc.get("exact") or {}).get("witnesses", []):
        x = lo.copy()
        for nid, v in w.items():
            x[graph.locate(nid)[1]] = float(v)
        out.append(x)
    return out


def _check_sign(f: dict[str, Any], graph: Flowgraph, lo, hi, iv, wits, proven, counts) -> None:
    name, j = graph.locate(f["node"])
    layer = graph.layer(name)
    if layer.kind != "affine" or layer.activation != "relu":
        raise _fail(f"{f['node']}: '{f['fact']}' is a fact about a ReLU unit")
    off = f["fact"] == "off"
    key = "pre_hi" if off else "pre_lo"
    bound = float(f[key])
    if (off and not bound <= 0) or (not off and not bound >= 0):
        raise _fail(f"{f['node']}: {key} {bound} does not make it {f['fact']}")
    how = f.get("how")
    if how == "interval":
        ivb = iv.pre_hi[name][j] if off else iv.pre_lo[name][j]
        if (off and not ivb <= 0) or (not off and not ivb >= 0):
            raise _fail(f"{f['node']}: interval arithmetic over the box gives {ivb}, not {f['fact']}")
        counts["interval"] += 1
        return
    if how not in ("greedy", "milp"):
        raise _fail(f"{f['node']}: unknown proof {how!r}")
    if proven is not None:
        pb = proven.hi_bound[name][j] if off else proven.lo_bound[name][j]
        if (off and not pb <= 0) or (not off and not pb >= 0):
            raise _fail(f"{f['node']}: proven again, its {key} is {pb}: not {f['fact']}")
        counts["proven"] += 1
    if "witness" in f:
        k, end = int(f["witness"]), float(f["exact"])
        if not 0 <= k < len(wits):
            raise _fail(f"{f['node']}: witness {k} is not in the document")
        x = wits[k]
        if np.any(x < lo) or np.any(x > hi):
            raise _fail(f"{f['node']}: witness {k} lies outside the box")
        v = float(evaluate(graph, x[None]).pre[name][0, j])
        if abs(v - end) > 1e-9 * (1 + abs(end)):
            raise _fail(f"{f['node']}: at witness {k} the sum is {v}, not the recorded {end}")
        if (off and not end <= bound) or (not off and not end >= bound):
            raise _fail(f"{f['node']}: the witnessed {end} lies beyond the proven {key} {bound}")
        counts["witnessed"] += 1
    elif proven is None:
        counts["trusted"] += 1


def check_certificate(graph: Flowgraph, doc: dict[str, Any], *, box: tuple[np.ndarray, np.ndarray] | None = None,
                      prove: bool = False, rtol: float = 1e-9) -> CertificateCheck:
    """Replay the certificate of analysis document ``doc`` on ``graph`` (module docstring).

    Returns the replayed simplified graph and what was checked; raises
    :class:`CertificateError` when anything does not re-check.  ``box``: the
    box as ``(lo, hi)`` (needed for version-1 documents, which do not record it).
    """
    try:
        version = doc.get("version")
        if doc.get("format") != "sparsescope.analysis" or version not in (1, 2) or "simplified" not in doc:
            raise _fail("not a sparsescope.analysis document (version 1 or 2) with a simplified graph")
        sim = doc["simplified"]
        if version == 1 and sim.get("composed_layers"):
            raise _fail("version 1 whole-layer compositions are not replayed")
        return _replay(graph, doc, sim, version, _box(doc, graph, box), prove, rtol)
    except CertificateError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, SparsescopeError) as e:
        raise _fail(f"malformed ({type(e).__name__}: {str(e)[:100]})") from None


def _replay(graph, doc, sim, version, box, prove, rtol) -> CertificateCheck:
    lo, hi = box
    iv = interval_bounds(graph, lo, hi)
    proven = None
    if prove:
        from ._ranges import exact_ranges

        proven = exact_ranges(graph, lo, hi)
    wits = _witnesses(doc, graph, lo)
    counts = dict.fromkeys(("interval", "witnessed", "proven", "trusted", "folded", "composed"), 0)
    dag = dag_from_flowgraph(graph)
    pos = {nid: k for k, nid in enumerate(dag.ids)}
    by_src = np.argsort(dag.src, kind="stable")
    out_at = np.searchsorted(dag.src[by_src], np.arange(dag.num_nodes + 1))
    last = len(dag.layers) - 1
    cut = np.zeros(dag.num_edges, dtype=bool)  # in-edges of outputs proven off
    in_at = np.searchsorted(dag.dst, np.arange(dag.num_nodes + 1))
    bias = dag.bias.copy()
    gone = np.zeros(dag.num_nodes, dtype=bool)
    on: set[str] = set()
    dead: list[str] = []
    facts = sim["certificate"]
    steps = [f for f in facts if f["fact"] == "composed"]
    if facts[len(facts) - len(steps):] != steps:
        raise _fail("compositions must come after every other fact")
    for f in facts[: len(facts) - len(steps)]:
        kind, nid = f["fact"], f["node"]
        if kind in ("off", "on"):
            _check_sign(f, graph, lo, hi, iv, wits, proven, counts)
        if kind == "on":
            on.add(nid)
        elif kind in ("off", "constant"):
            u = pos.get(nid)
            if u is None or gone[u]:
                raise _fail(f"{nid}: no such node, or folded twice")
            if kind == "constant":
                value = float(f["value"])
                if f.get("how") != ("box" if dag.layer[u] == 0 else "structure"):
                    raise _fail(f"{nid}: a constant {'input' if dag.layer[u] == 0 else 'unit'} is proven by "
                                f"{'the box' if dag.layer[u] == 0 else 'structure'}, not {f.get('how')!r}")
                if dag.layer[u] == 0:
                    i = dag.index[u]
                    if not lo[i] == hi[i] == value:
                        raise _fail(f"{nid}: the box does not fix it to {value}")
                else:
                    if not np.all(gone[dag.src[in_at[u]:in_at[u + 1]]]):
                        raise _fail(f"{nid}: claimed constant, but a live source still feeds it")
                    v = max(bias[u], 0.0) if dag.activation[u] == "relu" else bias[u]
                    if abs(v - value) > rtol * (1 + abs(value)) or abs(bias[u] - float(f["pre"])) > rtol * (1 + abs(bias[u])):
                        raise _fail(f"{nid}: its value is {v}, not the recorded {value}")
            else:
                value = 0.0
            if dag.layer[u] == last:  # an output stays, as the constant it is
                if kind == "off":
                    bias[u] = 0.0
                    cut[in_at[u]:in_at[u + 1]] = True
                continue
            for e in by_src[out_at[u]:out_at[u + 1]].tolist():  # fold into the consumers' biases, in edge order
                c = dag.dst[e]
                if not gone[c]:
                    bias[c] = bias[c] + dag.weight[e] * value
            gone[u] = True
            counts["folded"] += 1
        elif kind in ("unused", "ignored"):
            if f.get("how") != "no path to an output":
                raise _fail(f"{nid}: '{kind}' is shown by reachability, not {f.get('how')!r}")
            dead.append(nid)
        else:
            raise _fail(f"{nid}: unknown fact {kind!r}")
    e = ~gone[dag.src] & ~gone[dag.dst] & ~cut
    dag = _subset(dag, ~gone, bias, dag.src[e], dag.dst[e], dag.weight[e])
    dag = reduced = prune(with_linear(dag, on))
    _same(reduced, prune(dag_from_flowgraph(from_dict(sim["graph"]), linear=on)), rtol, "reduced graph")
    kept = set(reduced.ids)
    for nid in dead:
        if nid in kept:
            raise _fail(f"{nid}: claimed to reach no output, but it does")
    for f in steps:
        nid, (before, after) = f["node"], f["edges"]
        u = dag.position(nid)
        why = f.get("how")
        identity = why == "identity" and graph.layer(dag.layers[dag.layer[u]][0]).activation == "identity"
        if dag.activation[u] != "linear" or not ((why == "on" and nid in on) or identity):
            raise _fail(f"{nid}: composed, but it is not proven linear")
        if dag.num_edges != before:
            raise _fail(f"{nid}: {dag.num_edges} edges before its composition, not the recorded {before}")
        into, out = dag.dst == u, dag.src == u
        if f["sources"] != int(into.sum()) or f["consumers"] != [dag.ids[c] for c in dag.dst[out]]:
            raise _fail(f"{nid}: its sources or consumers are not the recorded ones")
        dag = compose(dag, nid)
        if dag.num_edges != after or not after < before:
            raise _fail(f"{nid}: {dag.num_edges} edges after its composition (recorded {after}, before {before})")
        counts["composed"] += 1
    dag = prune(dag)
    if version >= 2:
        _same(dag, dag_from_dict(sim["dag"]), rtol, "simplified graph")
        if sim["composed"] != [f["node"] for f in steps]:
            raise _fail("'composed' does not list the composition steps")
    _check_reported(graph, sim, reduced, dag, version, rtol)
    return CertificateCheck(dag, counts)


def _check_reported(graph: Flowgraph, sim: dict[str, Any], reduced: Dag, final: Dag, version: int, rtol: float) -> None:
    """The sizes, ignored inputs and constant outputs the document reports are those of the replay."""
    from ..analysis import analyse

    s0 = analyse(graph)
    sizes = sim["sizes"]
    want = {"original": {"vertices": s0.vertices, "edges": s0.edges, "total_edges": s0.total_edges},
            "reduced": {"vertices": reduced.num_nodes, "edges": reduced.num_edges,
                        "total_edges": reduced.num_edges}}
    want["simplified"] = {"vertices": final.num_nodes, "edges": final.num_edges}
    if version == 1:
        want = {"original": want["original"], "simplified": want["reduced"]}
    if sizes != want:
        raise _fail(f"the sizes {sizes} are not the replay's {want}")
    kept = set(reduced.ids)
    ignored = [graph.input.node_id(i) for i in range(graph.input.size) if graph.input.node_id(i) not in kept]
    if sim["ignored_inputs"] != ignored:
        raise _fail("'ignored_inputs' are not the inputs the replay drops")
    has_in = np.bincount(reduced.dst, minlength=reduced.num_nodes) > 0
    consts = [(reduced.ids[k], reduced.bias[k] if reduced.activation[k] != "relu" else max(reduced.bias[k], 0.0))
              for k in reduced.outputs if not has_in[k]]
    got = [(c["node"], float(c["value"])) for c in sim["constant_outputs"]]
    if [n for n, _ in got] != [n for n, _ in consts] or any(
            abs(a - b) > rtol * (1 + abs(b)) for (_, a), (_, b) in zip(got, consts)):
        raise _fail("'constant_outputs' are not the outputs the replay finds constant")


def _same(a: Dag, b: Dag, rtol: float, what: str) -> None:
    if a.ids != b.ids:
        missing = sorted(set(a.ids) ^ set(b.ids))[:3]
        raise _fail(f"the replay keeps other nodes than the recorded {what} (e.g. {', '.join(missing)})")
    if a.activation != b.activation:
        k = next(i for i, (x, y) in enumerate(zip(a.activation, b.activation)) if x != y)
        raise _fail(f"{a.ids[k]}: activation {a.activation[k]} in the replay, {b.activation[k]} in the {what}")
    if not (np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)):
        raise _fail(f"the replay has other edges than the recorded {what} ({a.num_edges} vs {b.num_edges})")
    for name, x, y in (("bias", a.bias, b.bias), ("weight", a.weight, b.weight)):
        bad = np.abs(x - y) > rtol * (1 + np.abs(y))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            where = a.ids[k] if name == "bias" else f"{a.ids[a.src[k]]} -> {a.ids[a.dst[k]]}"
            raise _fail(f"{name} of {where}: {x[k]!r} in the replay, {y[k]!r} in the recorded {what}")
