"""The simplified DAG (always-on units composed into their consumers, edges skipping
layers) and its certificate: the DAG computes what the torch model computes (float64,
tight) on random points of the box and on the witnesses, MLPs and unrolled convs alike;
every composition strictly lowers the edge count; a net built so that a composition
must happen gets it; the certificate replays to the same DAG and tampering is caught."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import fast_settings  # noqa: E402
from test_bounds import corners  # noqa: E402
from test_exact import make, nets  # noqa: E402

from sparsescope._errors import GraphError
from sparsescope.exact import (
    Box,
    CertificateError,
    analyse_box,
    analysis_dict,
    check_certificate,
    compose,
    dag_from_dict,
    dag_to_dict,
    evaluate_dag,
    exact_ranges,
    make_box,
    simplify,
)
from sparsescope.graph import from_arrays, from_torch

torch.set_num_threads(1)


def torch_out(model, x, shape):
    with torch.no_grad():
        return model.double()(torch.from_numpy(x.reshape(-1, *shape))).numpy()


def check_dag(model, graph, lo, hi, rng, shape):
    """Simplify over [lo, hi]; the DAG's outputs equal torch float64's on random points, corners
    and witnesses; compositions only ever lower the edge count; the certificate replays."""
    r = exact_ranges(graph, lo, hi, workers=1)
    s = simplify(graph, r)
    x = np.vstack([lo + (hi - lo) * rng.random((100, lo.size)), corners(lo, hi, rng, 16), r.witnesses])
    want = torch_out(model, x, shape)
    model.float()
    got = evaluate_dag(s.dag, x)[:, s.dag.outputs]
    scale = 1 + np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * scale)
    with torch.no_grad():
        want32 = model(torch.from_numpy(x.reshape(-1, *shape).astype(np.float32))).numpy()
    got32 = evaluate_dag(s.dag, x, np.float32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32[:, s.dag.outputs], want32, rtol=0, atol=1e-4 * scale)
    steps = [f for f in s.facts if f["fact"] == "composed"]
    for f in steps:
        assert f["edges"][1] < f["edges"][0]
    assert s.sizes["simplified"]["edges"] <= s.sizes["reduced"]["edges"] <= s.sizes["original"]["edges"]
    if steps:
        assert s.sizes["simplified"]["edges"] < s.sizes["reduced"]["edges"]
    # the edges of the DAG, seen from the ids: any earlier layer to a later one
    names = [n for n, _ in s.dag.layers]
    for a, b in zip(s.dag.src, s.dag.dst):
        assert names.index(s.dag.ids[a].split(".")[0].split("[")[0]) < names.index(s.dag.ids[b].split(".")[0].split("[")[0])
    return r, s


@fast_settings(12)
@given(case=nets())
def test_simplified_dag_is_the_torch_model_on_the_box(case):
    rng, model, graph, lo, hi = make(case)
    r, s = check_dag(model, graph, lo, hi, rng, (lo.size,))
    doc = json.loads(json.dumps(analysis_dict(_analysis(graph, lo, hi)), allow_nan=False))
    replay = check_certificate(graph, doc).dag  # the same float64 operations in the same order: bit for bit
    assert replay.ids == s.dag.ids and np.array_equal(replay.weight, s.dag.weight)
    assert np.array_equal(replay.bias, s.dag.bias)
    back = dag_from_dict(json.loads(json.dumps(dag_to_dict(s.dag))))
    assert dag_to_dict(back) == dag_to_dict(s.dag)


@st.composite
def conv_nets(draw):
    channels = draw(st.integers(1, 3))
    pool = draw(st.booleans())
    side = draw(st.sampled_from([5, 6]))
    density = draw(st.sampled_from([0.4, 0.7, 1.0]))
    shift = draw(st.sampled_from([0.0, 0.5]))  # positive biases: units that are always on
    return channels, pool, side, density, shift, draw(st.integers(0, 2**16))


@fast_settings(6)
@given(case=conv_nets())
def test_conv_dag_is_the_torch_model_on_the_box(case):
    channels, pool, side, density, shift, seed = case
    torch.manual_seed(seed)
    mods = [torch.nn.Conv2d(1, channels, 3), torch.nn.ReLU()]
    n = side - 2
    if pool and n % 2 == 0:
        mods.append(torch.nn.AvgPool2d(2))
        n //= 2
    model = torch.nn.Sequential(*mods, torch.nn.Flatten(), torch.nn.Linear(channels * n * n, 3)).eval()
    with torch.no_grad():
        model[0].weight.mul_((torch.rand(model[0].weight.shape) < density).float())
        model[0].bias.add_(shift)
        model[-1].weight.mul_((torch.rand(model[-1].weight.shape) < density).float())
    shape = (1, side, side)
    graph = from_torch(model, shape)
    rng = np.random.default_rng(seed)
    lo = rng.uniform(0, 0.5, graph.input.size)
    hi = lo + rng.uniform(0, 0.5, graph.input.size)
    r, s = check_dag(model, graph, lo, hi, rng, shape)
    assert graph.layers[1].node_id(0).endswith("[0,0,0]")  # unrolled ids such as c1[0,2,3] ...
    for nid in s.dag.ids:  # ... which the DAG keeps
        assert graph.node_id(*graph.locate(nid)) == nid
    doc = json.loads(json.dumps(analysis_dict(_analysis(graph, lo, hi))))
    check_certificate(graph, doc)


def _analysis(graph, lo, hi):
    from sparsescope.exact import Box

    return analyse_box(graph, Box("custom", lo, hi), exact=True)


def built_net():
    """2 inputs in [0, 1] -> h1 (3 ReLUs) -> out (2).  h1.0 = relu(2 x0 + 1) has one in-edge and is
    always on, so composing it turns in.0 -> h1.0 -> out.0 (2 edges) into in.0 -> out.0 (1 edge).
    h1.1 = relu(x0 - x1) switches; h1.2 = relu(-x1 - 1) is always off."""
    w1 = np.array([[2.0, 0.0], [1.0, -1.0], [0.0, -1.0]])
    b1 = np.array([1.0, 0.0, -1.0])
    w2 = np.array([[3.0, 1.0, 0.5], [0.0, 2.0, 0.0]])
    b2 = np.array([0.25, -0.5])
    return from_arrays([w1, w2], [b1, b2], ["relu", "identity"], (2,))


def test_a_unit_that_must_be_composed_is_composed():
    graph = built_net()
    lo, hi = np.zeros(2), np.ones(2)
    s = simplify(graph, exact_ranges(graph, lo, hi, workers=1))
    assert s.composed == ("h1.0",)
    facts = {(f["node"], f["fact"]) for f in s.facts}
    assert {("h1.0", "on"), ("h1.2", "off"), ("h1.0", "composed")} <= facts
    step = next(f for f in s.facts if f["fact"] == "composed")
    assert step["how"] == "on" and step["consumers"] == ["out.0"] and step["edges"] == [6, 5]
    d = s.dag
    assert d.ids == ("in.0", "in.1", "h1.1", "out.0", "out.1")
    edges = {(d.ids[a], d.ids[b]): w for a, b, w in zip(d.src, d.dst, d.weight)}
    assert edges == {("in.0", "h1.1"): 1.0, ("in.1", "h1.1"): -1.0, ("in.0", "out.0"): 6.0,
                     ("h1.1", "out.0"): 1.0, ("h1.1", "out.1"): 2.0}
    assert d.bias[d.ids.index("out.0")] == 3.25  # 0.25 + 3 * 1
    assert s.sizes["simplified"] == {"vertices": 5, "edges": 5} and s.sizes["reduced"]["edges"] == 6
    x = np.random.default_rng(0).random((50, 2))
    want = np.maximum(x @ graph.layers[1].dense_weight(2).T + graph.layers[1].bias, 0) @ \
        graph.layers[2].dense_weight(3).T + graph.layers[2].bias
    np.testing.assert_allclose(evaluate_dag(d, x)[:, d.outputs], want, rtol=0, atol=1e-12)
    # pure compose agrees with the greedy, and refuses a unit that is not linear
    with pytest.raises(GraphError, match="not a linear"):
        compose(d, "h1.1")


def tampered(doc):
    """(what, tampered copy) pairs: each must fail to re-check."""
    facts = doc["simplified"]["certificate"]
    idx = lambda node, fact: next(i for i, f in enumerate(facts) if f["node"] == node and f["fact"] == fact)  # noqa: E731

    def edit(fn):
        d = copy.deepcopy(doc)
        fn(d["simplified"])
        return d

    yield "a switching unit claimed off", edit(lambda s: s["certificate"].insert(0, {"node": "h1.1", "fact": "off",
                                                                                   "pre_hi": 0.0, "how": "interval"}))
    yield "the on fact of a composed unit dropped", edit(lambda s: s["certificate"].pop(idx("h1.0", "on")))
    yield "a composition's edge counts", edit(lambda s: s["certificate"][idx("h1.0", "composed")].update(edges=[6, 4]))
    yield "a weight of the DAG", edit(lambda s: s["dag"]["edges"][0].__setitem__(2, s["dag"]["edges"][0][2] * 1.001))
    yield "a bias of the DAG", edit(lambda s: s["dag"]["nodes"][-1].__setitem__("bias", 7.0))
    yield "an edge removed from the DAG", edit(lambda s: s["dag"]["edges"].pop())
    yield "the box widened", edit(lambda s: s["box"]["lo"].__setitem__(0, -5.0))
    yield "the composition left out", edit(lambda s: s["certificate"].pop(idx("h1.0", "composed")))
    yield "an off fact dropped", edit(lambda s: s["certificate"].pop(idx("h1.2", "off")))
    yield "an unknown fact", edit(lambda s: s["certificate"].insert(0, {"node": "h1.1", "fact": "gone"}))


def test_certificate_replays_and_tampering_is_caught():
    graph = built_net()
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    assert doc["version"] == 2 and doc["simplified"]["composed"] == ["h1.0"]
    check = check_certificate(graph, doc)
    assert check.counts["composed"] == 1 and check.counts["folded"] >= 1
    assert {**dag_to_dict(check.dag), "meta": None} == {**doc["simplified"]["dag"], "meta": None}
    assert check_certificate(graph, doc, prove=True).counts["trusted"] == 0
    for what, bad in tampered(doc):
        with pytest.raises(CertificateError):
            check_certificate(graph, bad)
        assert what


def test_witnessed_facts_are_reevaluated_and_a_wrong_witness_is_caught():
    """A net whose off and on facts need the solver (interval bounds cannot show them):
    the witness is re-evaluated; pointing a fact at another witness or value fails."""
    for seed in range(40):
        rng, model, graph, lo, hi = make((4, [6, 5, 2], [1.0, 1.0, 1.0], "unit", seed))
        doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
        solver = [i for i, f in enumerate(doc["simplified"]["certificate"]) if "witness" in f]
        if solver and len(doc["exact"]["witnesses"]) > 1:
            break
    else:
        pytest.skip("no solver-proven sign fact in these nets")
    assert check_certificate(graph, doc).counts["witnessed"] == len(solver)
    i = solver[0]
    for key, value in (("exact", doc["simplified"]["certificate"][i]["exact"] + 0.01),
                       ("witness", (doc["simplified"]["certificate"][i]["witness"] + 1) % len(doc["exact"]["witnesses"]))):
        bad = copy.deepcopy(doc)
        bad["simplified"]["certificate"][i][key] = value
        with pytest.raises(CertificateError):
            check_certificate(graph, bad)


def test_version_1_documents_still_replay():
    """A version-1 document (no box, no DAG, the reduced layered graph) re-checks given the box."""
    graph = built_net()
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    v1 = copy.deepcopy(doc)
    v1["version"] = 1
    sim = v1["simplified"]
    sim["certificate"] = [f for f in sim["certificate"] if f["fact"] != "composed"]
    for key in ("box", "dag", "composed"):
        sim.pop(key)
    sim["sizes"] = {"original": sim["sizes"]["original"], "simplified": sim["sizes"]["reduced"]}
    sim["composed_layers"] = []
    with pytest.raises(CertificateError, match="box"):
        check_certificate(graph, v1)
    assert check_certificate(graph, v1, box=(np.zeros(2), np.ones(2))).dag.num_edges == 6


def test_malformed_dag_documents_are_one_line_errors():
    d = dag_to_dict(simplify(built_net(), exact_ranges(built_net(), np.zeros(2), np.ones(2), workers=1)).dag)
    for bad in ({**d, "version": 9}, {**d, "edges": [["in.0", "nowhere.3", 1.0]]},
                {**d, "edges": [["out.0", "in.0", 1.0]]}, {**d, "nodes": d["nodes"][::-1]},
                {**d, "edges": [["in.0", "out.0", 0.0]]}, {**d, "layers": None}):
        with pytest.raises(GraphError):
            dag_from_dict(bad)


def test_identity_layers_are_composed_without_a_proof():
    """Hidden layers without activation are linear everywhere: their units compose (``how: identity``)
    where that saves edges, the DAG is still the torch model, and the certificate replays."""
    from test_bounds import random_mlp

    rng = np.random.default_rng(1)
    model = random_mlp(rng, (5,), [6, 4, 3], [0.4, 0.4, 1.0], torch.float32, relu_hidden=False)
    graph = from_torch(model, (5,))
    lo, hi = np.zeros(5), np.ones(5)
    r, s = check_dag(model, graph, lo, hi, rng, (5,))
    steps = [f for f in s.facts if f["fact"] == "composed"]
    assert steps and all(f["how"] == "identity" for f in steps)
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    assert check_certificate(graph, doc).counts["composed"] == len(steps)


def test_any_damage_to_a_certificate_is_a_certificate_error():
    """Random damage (keys dropped, values of the wrong type, lists cut, numbers nudged) either
    still re-checks or raises CertificateError: never another exception."""
    graph = built_net()
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    rng = np.random.default_rng(0)

    def spots(x, path=()):
        yield path
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        for k, v in items:
            yield from spots(v, (*path, k))

    places = [p for p in spots(doc["simplified"]) if p]
    for trial in range(150):
        bad = copy.deepcopy(doc)
        path = places[int(rng.integers(len(places)))]
        parent = bad["simplified"]
        for k in path[:-1]:
            parent = parent[k]
        old = parent[path[-1]]
        choice = trial % 4
        if choice == 0:
            parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop(path[-1])
        elif choice == 1:
            parent[path[-1]] = [None, "x", {}, 1e308, -1][trial % 5]
        elif choice == 2 and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[path[-1]] = old + 1
        elif isinstance(old, list) and old:
            parent[path[-1]] = old[:-1]
        try:
            check_certificate(graph, bad)
        except CertificateError:
            pass
    # every field but meta matters: a string in place of any of them is caught
    for path in places:
        if "meta" in path or (path[0] == "graph" and path[1:2] == ("bounds",)):
            continue
        bad = copy.deepcopy(doc)
        parent = bad["simplified"]
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = "x"
        with pytest.raises(CertificateError):
            check_certificate(graph, bad)
    for junk in (None, [], "x", {"format": "sparsescope.analysis", "version": 2}, {**doc, "simplified": 3}):
        with pytest.raises(CertificateError):
            check_certificate(graph, junk)


def _refresh_counts(doc):
    """Recompute ``ends_exact`` and ``widths`` from the units (as analysis_dict does), so a test can
    change a unit and leave only that change to be caught."""
    ex = doc["exact"]
    ex["ends_exact"] = sum(s == "exact" for u in ex["units"] for s in u["status"])
    for name, w in ex["widths"].items():
        us = [u for u in ex["units"] if u["node"].startswith(name + ".")]
        iw = np.array([u["interval"][1] - u["interval"][0] for u in us])
        ew = np.array([np.nan if None in u["exact"] else u["exact"][1] - u["exact"][0] for u in us])
        ok = np.isfinite(ew) & (ew > 1e-12)
        r = iw[ok] / ew[ok]
        w.update(compared=int(ok.sum()), interval_over_exact_mean=float(r.mean()) if r.size else None,
                 interval_over_exact_max=float(r.max()) if r.size else None)


def recorded_tampering(doc):
    """(field, what the error names, tampered copy): recorded numbers outside the certificate."""
    def edit(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d

    unit = lambda d, nid: next(u for u in d["exact"]["units"] if u["node"] == nid)  # noqa: E731

    def exact_hi(d):
        unit(d, "out.0")["exact"][1] = 100.0
        unit(d, "out.0")["bound"][1] = 100.0
        _refresh_counts(d)

    def no_witness(d):
        unit(d, "out.1")["witness"][1] = -1
    yield "exact end", "out.0: exact hi", edit(exact_hi)
    yield "exact without witness", "out.1: exact hi", edit(no_witness)
    yield "interval", "h1.1: recorded interval lo", edit(lambda d: unit(d, "h1.1")["interval"].__setitem__(0, -1.5))
    yield "bound tighter", "h1.1: bound hi", edit(lambda d: unit(d, "h1.1")["bound"].__setitem__(1, 0.9))
    yield "ends_exact", "'exact.ends_exact'", edit(lambda d: d["exact"].__setitem__("ends_exact", 9))
    yield "widths", "'exact.widths.out.interval_over_exact_max'", edit(
        lambda d: d["exact"]["widths"]["out"].__setitem__("interval_over_exact_max", 1.5))
    yield "structure vertices", "'structure.vertices'", edit(lambda d: d["structure"].__setitem__("vertices", 6))
    yield "ignored inputs", "'structure.ignored_inputs'", edit(lambda d: d["structure"].__setitem__("ignored_inputs", 1))
    yield "off list", "'interval_states.off' lists h1.1", edit(lambda d: d["interval_states"]["off"].append("h1.1"))
    yield "on list", "'interval_states.on' leaves out h1.0", edit(lambda d: d["interval_states"].__setitem__("on", []))
    yield "meta run", "is for run other round None, not run None round None", edit(
        lambda d: d["meta"].__setitem__("run", "other"))
    yield "meta round", "round 16", edit(lambda d: d["meta"].__setitem__("round", 16))
    yield "box arrays", "'simplified.box.hi' of in.1 is 0.5, but the box unit gives 1.0", edit(
        lambda d: d["simplified"]["box"]["hi"].__setitem__(1, 0.5))


def test_recorded_numbers_are_rechecked():
    """Tampering with any recorded number (exact ends, intervals, bounds, counts, structure,
    interval states, meta, box) fails with one line naming the field or unit; the file as written passes."""
    graph = built_net()
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    assert check_certificate(graph, doc).box == "unit" and "; box unit" in check_certificate(graph, doc).summary()
    check_certificate(graph, doc, prove=True)
    _refresh_counts(same := copy.deepcopy(doc))
    assert same == doc  # the helper recomputes what analysis_dict wrote
    for what, names, bad in recorded_tampering(doc):
        with pytest.raises(CertificateError) as e:
            check_certificate(graph, bad)
        msg = str(e.value)
        assert names in msg and "\n" not in msg and "np.float64" not in msg, (what, msg)
    # a box named unit whose arrays are another box's
    lo, hi = np.full(2, 0.25), np.ones(2)
    other = json.loads(json.dumps(analysis_dict(analyse_box(graph, Box("unit", lo, hi), exact=True))))
    with pytest.raises(CertificateError, match=r"'simplified.box.lo' of in.0 is 0.25, but the box unit gives 0.0"):
        check_certificate(graph, other)
    assert check_certificate(graph, other, box=(lo, hi)).dag


def test_a_bound_tighter_than_the_optimum_fails_with_prove():
    """An end recorded as a mere bound (no witness) cannot be re-evaluated: the plain check takes it,
    --prove finds it tighter than the witnessed optimum and names the unit."""
    graph = built_net()
    doc = json.loads(json.dumps(analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))))
    u = next(u for u in doc["exact"]["units"] if u["node"] == "out.0")
    u.update(exact=[u["exact"][0], None], status=["exact", "bound"], witness=[u["witness"][0], -1])
    u["bound"][1] = u["float32"][1] = 9.0  # the true maximum is 10.25
    _refresh_counts(doc)
    assert check_certificate(graph, doc).dag
    with pytest.raises(CertificateError, match=r"out.0: bound hi 9.0 is tighter than the witnessed 10.25"):
        check_certificate(graph, doc, prove=True)
