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

Before the replay, a version-2 document's recorded numbers are re-checked
(:func:`_check_exact` and friends): ``meta`` is the graph's, the box is the one
named and equals ``simplified.box``, ``structure`` and ``interval_states`` are
recomputed, every unit's interval equals interval arithmetic, every exact end
is attained at its witness, every end lies in its interval, ``ends_exact`` and
``widths`` are recomputed; with ``prove=True`` the exact ends and bounds are
compared with the ranges proven again.

Any failure raises :class:`CertificateError` naming the fact, unit or field.
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
    box: str | None = None

    def summary(self) -> str:
        """One line: what was re-checked how, and the size of the simplified graph it matched."""
        c = self.counts
        signs = c["interval"] + c["witnessed"] + c["proven"] + c["trusted"]
        return (f"certificate re-checked: {signs} sign facts ({c['interval']} by interval arithmetic, "
                f"{c['witnessed']} witnessed, {c['proven']} proven again, {c['trusted']} trusted), "
                f"{c['folded']} folded, {c['composed']} compositions replayed; the simplified graph "
                f"({self.dag.num_nodes} vertices, {self.dag.num_edges} edges) matches"
                + (f"; box {self.box}" if self.box else ""))


def _fail(msg: str) -> CertificateError:
    return CertificateError(f"certificate does not re-check: {msg}")


def _num(x: Any) -> str:
    """A number for an error line: the float's repr (never ``np.float64(...)``)."""
    try:
        return repr(float(x))
    except (TypeError, ValueError):
        return repr(x)[:40]


def _field(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise _fail(f"'{where}' is not an object")
    if key not in d:
        raise _fail(f"'{where}.{key}' is missing")
    return d[key]


def _box_name(doc: dict[str, Any]) -> str | None:
    b = doc.get("box")
    spec = b.get("spec") if isinstance(b, dict) else None
    return spec if isinstance(spec, str) else None


def _box(doc: dict[str, Any], graph: Flowgraph, box: tuple[np.ndarray, np.ndarray] | None):
    """The box: ``box`` when given (it must then equal ``simplified.box`` where recorded), else the
    recorded ``simplified.box`` (which must be the unit box when the document names ``unit``)."""
    n = graph.input.size
    b = doc["simplified"].get("box")
    rec = None
    if b is not None:
        rec = tuple(np.asarray(_field(b, k, "simplified.box"), dtype=np.float64).reshape(-1) for k in ("lo", "hi"))
        if rec[0].shape != (n,) or rec[1].shape != (n,):
            raise _fail(f"'simplified.box' has {rec[0].size} and {rec[1].size} entries, not the graph's {n} inputs")
    name = _box_name(doc)
    if box is None and name == "unit" and rec is not None:
        from ..bounds import unit_box

        box = unit_box(graph)
    if box is not None:
        lo, hi = (np.asarray(v, dtype=np.float64).reshape(-1) for v in box)
        if lo.shape != (n,) or hi.shape != (n,):
            raise _fail("the box does not fit the graph's input")
        if rec is not None:
            for side, want, got in (("lo", lo, rec[0]), ("hi", hi, rec[1])):
                bad = np.flatnonzero(want != got)
                if bad.size:
                    i = int(bad[0])
                    raise _fail(f"'simplified.box.{side}' of {graph.input.node_id(i)} is {_num(got[i])}, but the box "
                                f"{name or '?'} gives {_num(want[i])}")
    elif rec is None:
        raise _fail("the document records no box (version 1): pass box=(lo, hi)")
    else:
        lo, hi = rec
    if np.any(~(lo <= hi)):
        raise _fail("the box does not fit the graph's input")
    return lo, hi


_META = ("run", "round", "density", "test_accuracy")


def meta_mismatch(graph: Flowgraph, doc: dict[str, Any]) -> str | None:
    """``None`` when the document's ``meta`` (run, round, density, test accuracy) is the graph's,
    else what differs: ``for run X round R, not run Y round S`` or the first differing key."""
    from ..graph import plain_json

    meta = doc.get("meta")
    if not isinstance(meta, dict):
        return "has no 'meta'"
    have = plain_json(dict(graph.meta))
    if any(meta.get(k) != have.get(k) for k in ("run", "round")):
        return (f"is for run {meta.get('run')} round {meta.get('round')}, "
                f"not run {have.get('run')} round {have.get('round')}")
    for k in _META[2:]:
        a, b = meta.get(k), have.get(k)
        if a != b and not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)):
            return f"has meta.{k} {_num(a)}, but the graph's is {_num(b)}"
    return None


def _check_structure(graph: Flowgraph, doc: dict[str, Any]) -> None:
    """``structure`` is :func:`~sparsescope.analysis.analyse` of the graph."""
    from ..analysis import analyse

    s = analyse(graph)
    want = {"vertices": s.vertices, "edges": s.edges, "total_nodes": s.total_nodes, "total_edges": s.total_edges,
            "ignored_inputs": len(s.ignored_inputs), "dead_units": list(s.dead_units),
            "constant_outputs": [{"node": n, "value": float(v)} for n, v in s.constant_outputs]}
    got = _field(doc, "structure", "")
    for k, v in want.items():
        g = _field(got, k, "structure")
        if k == "constant_outputs":
            ok = isinstance(g, list) and len(g) == len(v) and all(
                isinstance(c, dict) and c.get("node") == w["node"] and isinstance(c.get("value"), (int, float))
                and abs(float(c["value"]) - w["value"]) <= 1e-9 * (1 + abs(w["value"])) for c, w in zip(g, v))
            if not ok:
                raise _fail("'structure.constant_outputs' are not the graph's constant outputs")
        elif g != v or isinstance(g, bool):
            shown = (f"{len(g) if isinstance(g, list) else g!r}"[:40], len(v)) if isinstance(v, list) else (repr(g)[:40], v)
            raise _fail(f"'structure.{k}' is {shown[0]}, but the graph's is {shown[1]}")


def _pair(u: dict[str, Any], key: str, where: str, allow_null: bool = False) -> list[float]:
    v = _field(u, key, where)
    if not isinstance(v, list) or len(v) != 2 or not all(
            (x is None and allow_null) or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v):
        raise _fail(f"'{where}.{key}' is not a pair of numbers")
    return [np.nan if x is None else float(x) for x in v]


def _check_exact(graph: Flowgraph, doc: dict[str, Any], lo: np.ndarray, hi: np.ndarray, iv, proven) -> None:
    """The recorded exact ranges: intervals equal to interval arithmetic over the box, every
    exact end attained at its witness (in the box), every end inside the intervals and no
    tighter than a witnessed value, ``ends_exact`` and ``widths`` recomputed, and with
    ``proven`` (``prove=True``) the exact ends equal and the bounds no tighter than proven."""
    ex = _field(doc, "exact", "")
    units = _field(ex, "units", "exact")
    wits = _witnesses(doc, graph, lo)
    layers = graph.layers[1:]
    n = sum(L.size for L in layers)
    if not isinstance(units, list) or len(units) != n:
        raise _fail(f"'exact.units' lists {len(units) if isinstance(units, list) else 'no'} units, not the graph's {n}")
    for k, x in enumerate(wits):
        if np.any(x < lo) or np.any(x > hi):
            raise _fail(f"'exact.witnesses[{k}]' lies outside the box")
    at = _at_witnesses(graph, units, wits)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    n_exact = 0
    i = 0
    for L in layers:
        name = L.name
        a = arrays[name] = {k: np.full(L.size, np.nan) for k in ("ilo", "ihi", "elo", "ehi")}
        for j in range(L.size):
            u = units[i]
            i += 1
            nid = L.node_id(j)
            where = f"exact.units[{nid}]"
            if not isinstance(u, dict) or u.get("node") != nid:
                raise _fail(f"'exact.units' entry {i - 1} is not {nid}")
            ival = _pair(u, "interval", where)
            want = [float(iv.pre_lo[name][j]), float(iv.pre_hi[name][j])]
            for s, got, w in zip(("lo", "hi"), ival, want):
                if got != w:
                    raise _fail(f"{nid}: recorded interval {s} {_num(got)}, but interval arithmetic over the box "
                                f"gives {_num(w)}")
            ends = _pair(u, "exact", where, allow_null=True)
            bound = _pair(u, "bound", where)
            f32 = _pair(u, "float32", where)
            status = _field(u, "status", where)
            wit = _field(u, "witness", where)
            if not (isinstance(status, list) and len(status) == 2 and all(s in ("exact", "bound") for s in status)):
                raise _fail(f"{nid}: 'status' is not a pair of 'exact'/'bound'")
            if not (isinstance(wit, list) and len(wit) == 2 and all(isinstance(w, int) and not isinstance(w, bool)
                                                                    for w in wit)):
                raise _fail(f"{nid}: 'witness' is not a pair of indices")
            a["ilo"][j], a["ihi"][j] = ival
            a["elo"][j], a["ehi"][j] = ends
            for side, k in (("lo", 0), ("hi", 1)):
                e, b, w, st = ends[k], bound[k], wit[k], status[k]
                tol = 1e-9 * (1 + abs(e)) if np.isfinite(e) else 0.0
                if st == "exact":
                    n_exact += 1
                    if w < 0 or not np.isfinite(e):
                        raise _fail(f"{nid}: exact {side} recorded 'exact' without a witness")
                if w >= 0:
                    if w >= len(wits):
                        raise _fail(f"{nid}: witness {w} of its {side} is not in 'exact.witnesses'")
                    if not np.isfinite(e):
                        raise _fail(f"{nid}: witness {w} of its {side} has no recorded value")
                    v = float(at[name][j, k])
                    if abs(v - e) > tol:
                        raise _fail(f"{nid}: exact {side} {_num(e)}, but at witness {w} the sum is {_num(v)}")
                elif np.isfinite(e):
                    raise _fail(f"{nid}: exact {side} {_num(e)} has no witness")
                slack = 1e-9 * (1 + max(abs(ival[0]), abs(ival[1])))
                for what, x in (("exact", e), ("bound", b), ("float32", f32[k])):
                    if np.isfinite(x) and not ival[0] - slack <= x <= ival[1] + slack:
                        raise _fail(f"{nid}: {what} {side} {_num(x)} lies outside its interval "
                                    f"[{_num(ival[0])}, {_num(ival[1])}]")
                out = -1.0 if k == 0 else 1.0  # the side's outward direction
                if np.isfinite(e) and out * (b - e) < -tol:
                    raise _fail(f"{nid}: bound {side} {_num(b)} is tighter than its witnessed {_num(e)}")
                if out * (f32[k] - b) < 0:
                    raise _fail(f"{nid}: float32 {side} {_num(f32[k])} is tighter than its bound {_num(b)}")
                if proven is not None:
                    pe = float((proven.lo if k == 0 else proven.hi)[name][j])
                    pb = float((proven.lo_bound if k == 0 else proven.hi_bound)[name][j])
                    pst = (proven.lo_status if k == 0 else proven.hi_status)[name][j]
                    # both ends witnessed: they differ by at most the solver's gap (its padding)
                    ptol = max(1e-9 * (1 + abs(pe)), out * (pb - pe)) if np.isfinite(pe) else 0.0
                    if st == "exact" and pst == "exact" and abs(e - pe) > ptol:
                        raise _fail(f"{nid}: exact {side} {_num(e)}, but proven again it is {_num(pe)}")
                    if np.isfinite(pe) and out * (b - pe) < -1e-9 * (1 + abs(pe)):
                        raise _fail(f"{nid}: bound {side} {_num(b)} is tighter than the witnessed {_num(pe)} "
                                    f"proven again: unsound")
    for k, want in (("ends_exact", n_exact), ("ends", 2 * n)):
        got = _field(ex, k, "exact")
        if got != want or isinstance(got, bool):
            raise _fail(f"'exact.{k}' is {repr(got)[:40]}, but the units give {want}")
    widths = _field(ex, "widths", "exact")
    if not isinstance(widths, dict) or list(widths) != [L.name for L in layers]:
        raise _fail("'exact.widths' does not list the graph's layers")
    for L in layers:
        a = arrays[L.name]
        iw, ew = a["ihi"] - a["ilo"], a["ehi"] - a["elo"]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(ew) & (ew > 1e-12)
        ratio = iw[ok] / ew[ok]
        want = {"units": int(ew.size), "compared": int(ok.sum()),
                "interval_over_exact_mean": float(ratio.mean()) if ratio.size else None,
                "interval_over_exact_max": float(ratio.max()) if ratio.size else None}
        got = widths[L.name]
        for k, w in want.items():
            g = got.get(k, "missing") if isinstance(got, dict) else "missing"
            same = g == w if (w is None or isinstance(w, int)) else (
                isinstance(g, (int, float)) and abs(float(g) - w) <= 1e-12 * (1 + abs(w)))
            if not same or isinstance(g, bool):
                raise _fail(f"'exact.widths.{L.name}.{k}' is {_num(g) if g is not None else 'null'}, but the units give "
                            f"{_num(w) if w is not None else 'null'}")
    _check_states(graph, doc, arrays, units)


def _at_witnesses(graph: Flowgraph, units: list, wits: list[np.ndarray], chunk: int = 256) -> dict[str, np.ndarray]:
    """Per layer ``(size, 2)``: each unit's float64 sum at the witness of its lo / hi end (NaN: none),
    evaluating the witnesses a chunk at a time (a conv net can have thousands)."""
    idx, i = {}, 0
    for L in graph.layers[1:]:
        w = np.full((L.size, 2), -1, dtype=np.int64)
        for j in range(L.size):
            u = units[i]
            i += 1
            ws = u.get("witness") if isinstance(u, dict) else None
            if isinstance(ws, list) and len(ws) == 2:
                for k in range(2):
                    if isinstance(ws[k], int) and not isinstance(ws[k], bool) and 0 <= ws[k] < len(wits):
                        w[j, k] = ws[k]
        idx[L.name] = w
    out = {name: np.full(w.shape, np.nan) for name, w in idx.items()}
    for start in range(0, len(wits), chunk):
        pre = evaluate(graph, np.stack(wits[start:start + chunk])).pre
        for name, w in idx.items():
            hit = (w >= start) & (w < start + chunk)
            rows, cols = np.nonzero(hit)
            out[name][rows, cols] = pre[name][w[rows, cols] - start, rows]
    return out


def _check_states(graph: Flowgraph, doc: dict[str, Any], arrays, units) -> None:
    """``interval_states`` are the ReLU units the recorded float32 bounds show off / on (box_states)."""
    f32 = {u["node"]: u["float32"] for u in units}
    off, on = [], []
    for L in graph.layers[1:]:
        if L.activation != "relu":
            continue
        for j in range(L.size):
            lo, hi = f32[L.node_id(j)]
            if hi <= 0:
                off.append(L.node_id(j))
            elif lo >= 0:
                on.append(L.node_id(j))
    st = _field(doc, "interval_states", "")
    for k, want in (("off", off), ("on", on)):
        got = _field(st, k, "interval_states")
        if got != want:
            extra = [x for x in got if x not in want] if isinstance(got, list) else []
            short = [x for x in want if not isinstance(got, list) or x not in got]
            why = (f"lists {extra[0]}, which the bounds do not show {k}" if extra else
                   f"leaves out {short[0]}" if short else "is out of order")
            raise _fail(f"'interval_states.{k}' {why}")


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
        if not isinstance(sim, dict):
            raise _fail("'simplified' is not an object")
        if "meta" in doc or version >= 2:
            bad = meta_mismatch(graph, doc)
            if bad:
                raise _fail(f"the document {bad}")
        lo, hi = _box(doc, graph, box)
        iv = interval_bounds(graph, lo, hi)
        proven = None
        if prove:
            from ._ranges import exact_ranges

            proven = exact_ranges(graph, lo, hi)
        if version >= 2:
            _check_structure(graph, doc)
            _check_exact(graph, doc, lo, hi, iv, proven)
        check = _replay(graph, doc, sim, version, (lo, hi), iv, proven, rtol)
        return CertificateCheck(check.dag, check.counts, _box_name(doc))
    except CertificateError:
        raise
    except KeyError as e:
        raise _fail(f"malformed: a required field {str(e.args[0])[:60]!r} is missing") from None
    except (AttributeError, TypeError, ValueError, IndexError, SparsescopeError) as e:
        raise _fail(f"malformed ({type(e).__name__}: {str(e)[:100]})") from None


def _replay(graph, doc, sim, version, box, iv, proven, rtol) -> CertificateCheck:
    lo, hi = box
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
        for part, w in want.items():
            got = sizes.get(part) if isinstance(sizes, dict) else None
            for k, v in w.items():
                g = got.get(k) if isinstance(got, dict) else None
                if g != v:
                    raise _fail(f"'simplified.sizes.{part}.{k}' is {repr(g)[:40]}, but the replay gives {v}")
        raise _fail("'simplified.sizes' has keys the replay does not give")
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
            raise _fail(f"{name} of {where}: {_num(x[k])} in the replay, {_num(y[k])} in the recorded {what}")
