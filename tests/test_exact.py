"""Exact analysis: witnesses attain every exact end (checked in torch, float64), no
sampled, corner or adversarial point leaves the sound bounds (float64 and float32),
the ends are exact (a fine grid gets within its Lipschitz allowance), the simplified
graph computes the same outputs everywhere, robustness verdicts are backed by
verified counterexamples or by attacks that fail, and the CLI."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import fast_settings  # noqa: E402
from test_bounds import adversarial, corners, mnist, mnist_model, node_values, random_mlp  # noqa: E402

from sparsescope.cli import main
from sparsescope.exact import (
    adversarial_accuracy,
    analysis_dict,
    analyse_box,
    ball,
    exact_bounds,
    exact_ranges,
    make_box,
    robust_at,
    simplify,
)
from sparsescope.graph import evaluate, from_json, from_torch, to_json

torch.set_num_threads(1)
FAST = fast_settings(40)


@st.composite
def nets(draw, max_in=8):
    n_in = draw(st.integers(1, max_in))
    sizes = [*draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)), draw(st.integers(1, 3))]
    densities = [draw(st.sampled_from([0.3, 0.6, 1.0])) for _ in sizes]
    box = draw(st.sampled_from(["unit", "random", "partly-constant"]))
    return n_in, sizes, densities, box, draw(st.integers(0, 2**32 - 1))


def make(case):
    n_in, sizes, densities, box, seed = case
    rng = np.random.default_rng(seed)
    model = random_mlp(rng, (n_in,), sizes, densities, torch.float32)
    graph = from_torch(model, (n_in,))
    if box == "unit":
        lo, hi = np.zeros(n_in), np.ones(n_in)
    else:
        lo = (rng.normal(size=n_in)).astype(np.float32).astype(np.float64)
        hi = (lo + rng.exponential(size=n_in)).astype(np.float32).astype(np.float64)
        if box == "partly-constant":
            hi = np.where(rng.random(n_in) < 0.4, lo, hi)
    return rng, model, graph, lo, hi


def check_sound(model, graph, r, lo, hi, rng, what):
    """Points of the box never leave the exact-arithmetic bounds (torch float64)
    nor the float32-sound bounds (torch float32)."""
    pts = np.vstack([corners(lo, hi, rng), lo + (hi - lo) * rng.random((64, lo.size)),
                     adversarial(model, graph, lo, hi, rng, steps=10), r.witnesses])
    pts = np.clip(pts.astype(np.float32).astype(np.float64), lo, hi)
    for dtype, lo_b, hi_b in ((torch.float64, r.lo_bound, r.hi_bound), (torch.float32, r.bounds.pre_lo, r.bounds.pre_hi)):
        with torch.no_grad():
            vals = node_values(model.to(dtype), torch.from_numpy(pts).to(dtype))
        for name in r.layers:
            v = vals[(name, "pre")].double().numpy()
            assert np.all(v >= lo_b[name]) and np.all(v <= hi_b[name]), (what, dtype, name)
    model.to(torch.float32)


def check_witnesses(model, graph, r):
    """Every exact end has a witness in the box that attains it (torch, float64)."""
    with torch.no_grad():
        vals = node_values(model.to(torch.float64), torch.from_numpy(r.witnesses))
    model.to(torch.float32)
    for name in r.layers:
        v = vals[(name, "pre")].double().numpy() if len(r.witnesses) else None
        for side in ("lo", "hi"):
            status, wit, end = getattr(r, side + "_status")[name], getattr(r, side + "_witness")[name], getattr(r, side)[name]
            exact = status == "exact"
            assert np.all(wit[exact] >= 0), "an exact end without a witness"
            for j in np.flatnonzero(wit >= 0):
                assert abs(v[wit[j], j] - end[j]) <= 1e-9 * (1 + abs(end[j]))
            bound = getattr(r, side + "_bound")[name]
            # the witnessed end is inside the sound bound, and close to it when exact
            gap = (bound - end) if side == "hi" else (end - bound)
            assert np.all(gap[np.isfinite(end)] >= 0)
            assert np.all(gap[exact] <= 1e-3 * (1 + np.abs(end[exact])))
    for x in r.witnesses:
        assert np.all(x >= r.box_lo) and np.all(x <= r.box_hi)


@FAST
@given(case=nets())
def test_exact_ranges_are_witnessed_sound_and_inside_the_intervals(case):
    rng, model, graph, lo, hi = make(case)
    r = exact_ranges(graph, lo, hi)
    check_witnesses(model, graph, r)
    check_sound(model, graph, r, lo, hi, rng, "random net")
    assert r.count("exact")[0] == r.count("exact")[1]  # small programs always finish
    for name in r.layers:
        assert np.all(r.bounds.pre_lo[name] >= r.interval.pre_lo[name])
        assert np.all(r.bounds.pre_hi[name] <= r.interval.pre_hi[name])


@FAST
@given(case=nets(max_in=2))
def test_exact_ends_match_a_fine_grid(case):
    """With one or two inputs a 101 x 101 grid comes within its Lipschitz allowance of the true range:
    the exact ends are that close, where interval bounds can be far off."""
    rng, model, graph, lo, hi = make(case)
    r = exact_ranges(graph, lo, hi)
    axes = [np.linspace(a, b, 101) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, lo.size)
    ev = evaluate(graph, grid)
    step = (hi - lo) / 100
    for layer in graph.layers[1:]:
        v = ev.pre[layer.name]
        # per node: a Lipschitz bound in the max-norm is sum_i |d z / d x_i| <= row of the |W| product
        tol = (np.abs(layer.dense_weight(graph.layer(layer.source).size)) @ _lip_post(graph, layer.source, lo.size)) @ step / 2
        assert np.all(v.max(0) <= r.hi[layer.name] + 1e-9 * (1 + np.abs(r.hi[layer.name])))
        assert np.all(v.min(0) >= r.lo[layer.name] - 1e-9 * (1 + np.abs(r.lo[layer.name])))
        assert np.all(r.hi[layer.name] - v.max(0) <= tol + 1e-9), layer.name
        assert np.all(v.min(0) - r.lo[layer.name] <= tol + 1e-9), layer.name


def _lip_post(graph, name, n_in):
    """``(size, n_in)``: |d value / d x_i| bounds of layer ``name`` (product of |W|)."""
    if name == graph.input.name:
        return np.eye(n_in)
    layer = graph.layer(name)
    return np.abs(layer.dense_weight(graph.layer(layer.source).size)) @ _lip_post(graph, layer.source, n_in)


@FAST
@given(case=nets())
def test_simplified_graph_computes_the_same_outputs(case):
    rng, model, graph, lo, hi = make(case)
    r = exact_ranges(graph, lo, hi)
    s = simplify(graph, r)
    x = np.vstack([lo + (hi - lo) * rng.random((200, lo.size)), corners(lo, hi, rng), r.witnesses])
    a, b = evaluate(graph, x), evaluate(s.graph, x)
    out = graph.output.name
    scale = 1 + np.abs(a.pre[out]).max()
    np.testing.assert_allclose(b.post[out], a.post[out], rtol=0, atol=1e-9 * scale)
    assert s.graph.num_edges <= graph.num_edges
    # every certified fact holds at every point
    for f in s.facts:
        if f["fact"] == "composed":  # a step, not a claim about values (tests/test_simplify_dag.py)
            continue
        name, j = graph.locate(f["node"])
        if name == graph.input.name:
            if f["fact"] == "constant":
                assert np.all(x[:, j] == f["value"])
            continue
        pre = a.pre[name][:, j]
        if f["fact"] == "off":
            assert np.all(pre <= 1e-12 * (1 + abs(pre).max()))
        elif f["fact"] == "on":
            assert np.all(pre >= -1e-12 * (1 + abs(pre).max()))
        elif f["fact"] == "constant":
            np.testing.assert_allclose(a.post[name][:, j], f["value"], rtol=0, atol=1e-12 * (1 + abs(f["value"])))
        assert f["how"] in ("interval", "greedy", "milp", "constant", "structure", "no path to an output")


@FAST
@given(case=nets())
def test_ideal_cuts_change_no_end(case):
    """With the ideal ReLU cuts forced onto every program (they only tighten the
    relaxation), every end is the same value as without them, and still witnessed."""
    import sparsescope.exact._milp as milp

    rng, model, graph, lo, hi = make(case)
    plain = exact_ranges(graph, lo, hi, workers=1)
    saved = milp.CUT_MIN_BINARIES
    milp.CUT_MIN_BINARIES = 1
    try:
        cut = exact_ranges(graph, lo, hi, workers=1)
    finally:
        milp.CUT_MIN_BINARIES = saved
    check_witnesses(model, graph, cut)
    check_sound(model, graph, cut, lo, hi, rng, "with cuts")
    for name in cut.layers:
        for side in ("lo", "hi"):
            a, b = getattr(plain, side)[name], getattr(cut, side)[name]
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6 * (1 + np.abs(a).max()))


def test_ideal_cuts_are_valid_at_every_integer_point():
    """Each separated cut holds at the program's columns for real network points
    (inputs, ReLU outputs, on/off binaries): the cut is valid, whatever point it was cut at."""
    from sparsescope.exact._cuts import ReluRows, separate

    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(1, 6))
        L = rng.normal(size=m)
        U = L + rng.exponential(size=m)
        w = rng.normal(size=m)
        cst = float(rng.normal())
        # columns: 0..m-1 sources, m = a, m+1 = d; a fractional point to cut
        rows = ReluRows(np.array([m]), np.array([m + 1]), np.zeros(m, dtype=np.int64), np.arange(m), w, np.array([cst]))
        col_lo, col_hi = np.r_[L, 0.0, 0.0], np.r_[U, 1e9, 1.0]
        frac = np.r_[L + (U - L) * rng.random(m), rng.exponential() * 5, rng.random()]
        upper, starts, index, value = separate(rows, frac, col_lo, col_hi, tol=-np.inf)
        assert upper.size == 1
        v = L + (U - L) * rng.random((50, m))
        z = cst + v @ w
        pts = np.c_[v, np.maximum(z, 0), (z > 0).astype(float)]
        lhs = pts[:, index] @ value
        assert np.all(lhs <= upper[0] + 1e-9 * (1 + np.abs(pts).max() * np.abs(value).sum()))


def test_parallel_workers_give_the_same_answer():
    """Programs solved by a forked helper give byte-identical ranges and witnesses."""
    import sparsescope.exact._ranges as ranges_mod

    rng = np.random.default_rng(3)
    model = random_mlp(rng, (12,), [10, 8, 4], [0.6, 0.6, 1.0], torch.float32)
    graph = from_torch(model, (12,))
    lo, hi = np.zeros(12), np.ones(12)
    one = exact_ranges(graph, lo, hi, workers=1)
    original = ranges_mod.run_tasks
    ranges_mod.run_tasks = functools.partial(original, warm=0.0)  # helpers from the first program on
    import sparsescope.exact._robust as robust_mod

    x = rng.random((16, 12))
    y = evaluate(graph, x).pre["out"].argmax(1)
    acc1 = adversarial_accuracy(graph, x, y, 0.05, workers=1)
    robust_mod.run_tasks = functools.partial(original, warm=0.0)
    try:
        two = exact_ranges(graph, lo, hi, workers=2)
        acc2 = adversarial_accuracy(graph, x, y, 0.05, workers=2, images=range(100, 116))
    finally:
        ranges_mod.run_tasks = robust_mod.run_tasks = original
    assert acc1.verdicts == acc2.verdicts and [r.image for r in acc2.results] == list(range(100, 116))
    for a, b in zip(acc1.results, acc2.results):
        assert a.margin_bound == b.margin_bound
        np.testing.assert_array_equal(a.counterexample if a.counterexample is not None else [],
                                      b.counterexample if b.counterexample is not None else [])
    assert one.solves == two.solves > 0
    np.testing.assert_array_equal(one.witnesses, two.witnesses)
    for name in one.layers:
        for key in ("lo", "hi", "lo_bound", "hi_bound", "lo_status", "hi_status"):
            np.testing.assert_array_equal(getattr(one, key)[name], getattr(two, key)[name])


def test_a_foreign_highs_scheduler_does_not_break_the_programs():
    """Another HiGHS user in the process started the global scheduler with two threads:
    the programs (one thread) still finish, every end exact."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 2)
    h.addVar(0.0, 1.0)
    h.changeColIntegrality(0, highspy.HighsVarType.kInteger)
    h.changeColCost(0, 1.0)
    h.run()
    rng = np.random.default_rng(4)
    model = random_mlp(rng, (6,), [6, 5, 3], [1.0, 1.0, 1.0], torch.float32)
    graph = from_torch(model, (6,))
    r = exact_ranges(graph, np.zeros(6), np.ones(6), workers=1)
    assert r.solves > 0 and r.count("exact")[0] == r.count("exact")[1]


def test_time_cap_keeps_sound_bounds_and_claims_nothing_unproven():
    """A dense 10-20-20-5 net with a 1 ms cap per program (uncapped it takes seconds):
    ends the solver did not finish are 'bound', and every bound still holds."""
    rng = np.random.default_rng(2)
    model = random_mlp(rng, (10,), [20, 20, 5], [1.0, 1.0, 1.0], torch.float32)
    graph = from_torch(model, (10,))
    lo, hi = np.zeros(10), np.ones(10)
    r = exact_ranges(graph, lo, hi, time_limit=0.001)
    assert r.count("bound")[0] > 0
    check_witnesses(model, graph, r)
    check_sound(model, graph, r, lo, hi, rng, "capped")


@pytest.mark.parametrize("dense_first", [False, True])
def test_trained_mnist_net_exact_ranges_and_simplification(dense_first):
    x, _ = mnist()
    model = mnist_model(dense_first).to(torch.float32)
    graph = from_torch(model, (28, 28))
    box = make_box(graph, "data", x_train=x)
    r = exact_ranges(graph, box.lo, box.hi, box="data")
    assert r.count("exact")[0] == r.count("exact")[1]
    check_witnesses(model, graph, r)
    check_sound(model, graph, r, box.lo, box.hi, np.random.default_rng(0), "mnist")
    s = simplify(graph, r)
    xs = np.vstack([x.reshape(len(x), -1)[:500].astype(np.float64), r.witnesses])
    np.testing.assert_allclose(evaluate(s.graph, xs).post["out"], evaluate(graph, xs).post["out"], rtol=0, atol=1e-9)
    for name in r.layers:  # exact is never wider than interval
        assert np.all(r.hi[name] - r.lo[name] <= r.interval.pre_hi[name] - r.interval.pre_lo[name])


@functools.lru_cache(maxsize=1)
def sparse_trained_model():
    """784-32-16-10 with fixed random masks (10%, 30%, 50%), trained with the masks on
    (about 85% on the 5k MNIST sample): a net that classifies, for robustness."""
    x, y = mnist()
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    masks = [(torch.rand(m.weight.shape) < d).float() for m, d in zip(lins, (0.1, 0.3, 0.5))]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(4):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 100):
            with torch.no_grad():
                for m, k in zip(lins, masks):
                    m.weight.mul_(k)
            idx = perm[i : i + 100]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        for m, k in zip(lins, masks):
            m.weight.mul_(k)
    return model.eval()


@pytest.mark.slow
def test_robustness_verdicts_are_backed():
    x, y = mnist()
    model = sparse_trained_model()
    graph = from_torch(model, (28, 28))
    assert np.mean(evaluate(graph, x.astype(np.float64)).pre["out"].argmax(1) == y) > 0.7
    seen = set()
    for i in range(0, 5000, 250):
        flat = x[i].reshape(-1).astype(np.float64)
        r = robust_at(graph, flat, int(y[i]), 0.05, image=i)
        seen.add(r.verdict)
        assert r.verdict in ("robust", "not robust", "misclassified")
        if r.counterexample is not None:
            c = r.counterexample
            assert np.all(np.abs(c - flat) <= 0.05 + 1e-12) and np.all((c >= 0) & (c <= 1))
            with torch.no_grad():
                z = model.double()(torch.from_numpy(c.reshape(1, 28, 28))).numpy()[0]
            model.float()
            assert z[r.adversarial_class] >= z[int(y[i])]
        if r.verdict == "robust":  # a gradient attack finds nothing
            b = ball(graph, flat, 0.05)
            pts = adversarial(model, graph, b.lo, b.hi, np.random.default_rng(i), steps=10)
            model.float()
            z = evaluate(graph, pts).pre["out"]
            assert np.all(np.argmax(z, 1) == y[i])
    assert {"robust", "not robust"} <= seen
    acc = adversarial_accuracy(graph, x[::500], y[::500], 0.05)
    assert acc.unknown == 0 and 0 < acc.accuracy <= acc.clean


def test_json_version_2_keeps_exact_ranges():
    rng, model, graph, lo, hi = make((5, [6, 4, 3], [1.0, 1.0, 1.0], "unit", 7))
    r = exact_ranges(graph, lo, hi, box="unit")
    g = graph.with_bounds(exact_bounds(r))
    text = to_json(g)
    back = from_json(text)
    assert to_json(back) == text
    for name in r.layers:
        np.testing.assert_array_equal(back.bounds.exact[name]["hi"], r.hi[name])
        assert list(back.bounds.exact[name]["lo_status"]) == list(r.lo_status[name])
    doc = analysis_dict(analyse_box(graph, make_box(graph, "unit"), exact=True))
    assert doc["exact"]["ends_exact"] == doc["exact"]["ends"] and doc["simplified"]["certificate"] is not None
    json.dumps(doc, allow_nan=False)


def test_cli_analyse(tmp_path, small_config, capsys):
    from sparsescope.exact import check_certificate
    from sparsescope.runs import resolve_run, round_flowgraph

    runs = tmp_path / "runs"
    assert main(["run", str(small_config(rounds=7)), "--runs-dir", str(runs), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["analyse", "small", "--runs-dir", str(runs), "--exact"]) == 0
    text = capsys.readouterr().out
    assert "ends exact with witnesses" in text and "simplified:" in text
    outs = []
    for _ in range(2):  # two analyses of the same run: byte-identical JSON (wall time only on stderr)
        assert main(["analyse", "small", "--runs-dir", str(runs), "--exact", "--format", "json", "--box", "ball:3:0.05"]) == 0
        cap = capsys.readouterr()
        outs.append(cap.out)
        assert "s wall" in cap.err and "seconds" not in cap.out
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert doc["version"] == 2 and check_certificate(round_flowgraph(resolve_run("small", str(runs))), doc).dag
    assert doc["format"] == "sparsescope.analysis" and doc["box"]["image"] == 3
    assert doc["robustness"]["verdict"] in ("robust", "not robust", "misclassified")
    assert doc["simplified"]["sizes"]["simplified"]["edges"] <= doc["simplified"]["sizes"]["original"]["edges"]
    _check_cli_check(runs, tmp_path, doc, capsys)
    out = tmp_path / "a.json"
    assert main(["analyse", "small", "--runs-dir", str(runs), "--box", "data", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["box"]["name"] == "data"
    assert capsys.readouterr().out.strip() == str(out)
    rep = tmp_path / "rep"
    assert main(["report", "small", "--runs-dir", str(runs), "--exact", "-o", str(rep)]) == 0
    page = (rep / "index.html").read_text()
    assert "Exact analysis" in page and (rep / "figures" / "simplified.svg").is_file()
    capsys.readouterr()
    assert main(["analyse", "small", "--runs-dir", str(runs), "-o", "-", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "sparsescope.analysis"
    _check_cli_robust(runs, capsys)
    _check_view_exact(runs, tmp_path, capsys)
    for bad in (["--box", "ball:1"], ["--box", "ball:100000:0.1"], ["--box", "sphere"], ["--time-limit", "0"],
                ["-o", str(tmp_path / "x.json"), "--format", "text"], ["--samples", "0-9"],
                ["--robust", "0.1", "--box", "data"], ["--robust", "2"], ["--robust", "nan"],
                ["--robust", "0.1", "--samples", "0-100000"], ["--robust", "0.1", "--samples", "9-3"]):
        capsys.readouterr()
        assert main(["analyse", "small", "--runs-dir", str(runs), *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sparsescope: error:") and err.count("\n") == 1


def _check_cli_check(runs, tmp_path, doc, capsys):
    """``analyse RUN --check FILE [--prove]``: one line and exit 0 when the certificate holds (with
    the counts the API gives); one error line and exit 2 for a tampered, corrupt or foreign file."""
    from sparsescope.exact import check_certificate
    from sparsescope.runs import resolve_run, round_flowgraph

    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc))
    want = check_certificate(round_flowgraph(resolve_run("small", str(runs)), doc["meta"]["round"]), doc)
    for extra in ([], ["--prove"]):
        capsys.readouterr()
        assert main(["analyse", "small", "--runs-dir", str(runs), "--check", str(good), *extra]) == 0
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith("certificate re-checked:")
        assert f"{want.counts['composed']} compositions replayed" in out
        assert f"({want.dag.num_nodes} vertices, {want.dag.num_edges} edges) matches" in out
    node = next(n for n in doc["simplified"]["dag"]["nodes"] if n["activation"] != "input")
    tampered = json.loads(json.dumps(doc))
    next(n for n in tampered["simplified"]["dag"]["nodes"] if n["id"] == node["id"])["bias"] += 0.5
    bad = {"tampered": json.dumps(tampered), "corrupt": json.dumps(doc)[:200], "dag": json.dumps(doc["simplified"]["dag"]),
           "nan": json.dumps(doc).replace('"bias":', '"bias":NaN,"b":', 1)}

    def edit(fn):
        d = json.loads(json.dumps(doc))
        fn(d)
        return json.dumps(d)

    u = next(u for u in doc["exact"]["units"] if u["witness"][1] >= 0 and u["node"].startswith("out"))
    named = {"tampered": node["id"], "exact": f"{u['node']}: exact hi", "box": "'simplified.box.",
             "run": "run.json is for run other round", "interval": f"{u['node']}: recorded interval hi"}
    bad["exact"] = edit(lambda d: next(v for v in d["exact"]["units"] if v["node"] == u["node"])["exact"].__setitem__(1, 100.0))
    bad["interval"] = edit(lambda d: next(v for v in d["exact"]["units"]
                                          if v["node"] == u["node"])["interval"].__setitem__(1, 100.0))
    bad["box"] = edit(lambda d: d["box"].update(spec="ball:4:0.05", image=4))  # the arrays are ball 3's
    bad["run"] = edit(lambda d: d["meta"].__setitem__("run", "other"))
    for name, text in bad.items():
        (tmp_path / f"{name}.json").write_text(text)
        for extra in ([], ["--prove"]) if name in ("exact", "box") else ([],):
            capsys.readouterr()
            assert main(["analyse", "small", "--runs-dir", str(runs), "--check", str(tmp_path / f"{name}.json"),
                         *extra]) == 2, name
            err = capsys.readouterr().err
            assert err.startswith("sparsescope: error:") and err.count("\n") == 1, (name, err)
            assert "np.float64" not in err and "Traceback" not in err and "KeyError" not in err, err
            assert named.get(name, "") in err, (name, err)  # the failing node or field is named
    for extra in (["--prove"], ["--check", str(good), "--exact"], ["--check", str(good), "--round", "1"]):
        assert main(["analyse", "small", "--runs-dir", str(runs), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("sparsescope: error:") and err.count("\n") == 1
    assert f"good.json is for run {doc['meta']['run']} round {doc['meta']['round']}, not run {doc['meta']['run']} round 1" in err


def _check_view_exact(runs, tmp_path, capsys):
    """``view --exact``: the page embeds the opened round with the exact ranges the analysis finds."""
    from sparsescope.exact import analyse_run
    from sparsescope.viewer import read_embedded

    page = tmp_path / "exact.html"
    assert main(["view", "small", "--runs-dir", str(runs), "--exact", "--samples", "0-3", "-o", str(page)]) == 0
    capsys.readouterr()
    g = from_json(read_embedded(page.read_text()))
    r = analyse_run("small", str(runs), exact=True).ranges
    assert g.bounds.exact is not None
    for name in r.layers:
        np.testing.assert_array_equal(g.bounds.exact[name]["lo"], r.lo[name])
        np.testing.assert_array_equal(g.bounds.exact[name]["hi"], r.hi[name])
        assert list(g.bounds.exact[name]["hi_status"]) == list(r.hi_status[name])


def _check_cli_robust(runs, capsys):
    """``analyse RUN --robust EPS --samples LIST``: text and JSON agree; every counterexample
    lies in its ball and another class wins there (evaluated again here)."""
    from sparsescope.runs import resolve_run, round_flowgraph, run_data

    capsys.readouterr()
    assert main(["analyse", "small", "--runs-dir", str(runs), "--robust", "0.05", "--samples", "0-11,20"]) == 0
    text = capsys.readouterr().out
    assert "exact adversarial accuracy at eps 0.05 over 13 test images" in text
    assert main(["analyse", "small", "--runs-dir", str(runs), "--robust", "0.05", "--samples", "0-11,20",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    adv = doc["adversarial"]
    assert doc["box"]["images"] == [*range(12), 20] and adv["images"] == 13
    assert sum(adv["counts"].values()) == 13 and f"{adv['accuracy'] * 100:.1f}%" in text
    assert adv["accuracy"] == adv["counts"]["robust"] / 13
    store = resolve_run("small", str(runs))
    graph, data = round_flowgraph(store), run_data(store)
    for res in adv["results"]:
        x0 = data.x_test[res["image"]].reshape(-1).astype(np.float64)
        assert res["label"] == int(data.y_test[res["image"]])
        if res["verdict"] == "not robust":
            c = np.asarray(res["counterexample"])
            assert np.all(np.abs(c - x0) <= 0.05 + 1e-12) and np.all((c >= 0) & (c <= 1))
            z = evaluate(graph, c[None]).pre["out"][0]
            assert z[res["adversarial_class"]] >= z[res["label"]]
        elif res["verdict"] == "robust":
            assert res["margin_bound"] > 0


def test_conv_net_goes_through_the_same_code():
    """An unrolled conv net (shared weights, rank-3 feature maps): witnessed, sound, simplified equivalently."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[0].weight.mul_((torch.rand(model[0].weight.shape) < 0.6).float())
    graph = from_torch(model, (1, 6, 6))
    lo, hi = np.zeros(graph.input.size), np.ones(graph.input.size)
    r = exact_ranges(graph, lo, hi)
    assert r.count("exact")[0] == r.count("exact")[1]
    rng = np.random.default_rng(0)
    x = np.vstack([lo + (hi - lo) * rng.random((300, lo.size)), corners(lo, hi, rng), r.witnesses])
    with torch.no_grad():
        out = model.double()(torch.from_numpy(x.reshape(-1, 1, 6, 6))).numpy()
        wit = model(torch.from_numpy(r.witnesses.reshape(-1, 1, 6, 6))).numpy()
    model.float()
    name = graph.output.name
    assert np.all(out >= r.lo_bound[name]) and np.all(out <= r.hi_bound[name])
    for side in ("lo", "hi"):
        idx = getattr(r, side + "_witness")[name]
        np.testing.assert_allclose(wit[idx, np.arange(3)], getattr(r, side)[name], rtol=0, atol=1e-9)
    s = simplify(graph, r)
    np.testing.assert_allclose(evaluate(s.graph, x).post[name], evaluate(graph, x).post[name], rtol=0, atol=1e-9)
