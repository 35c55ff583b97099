"""Structure analysis against brute-force reachability and against the torch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from sparsescope._errors import GraphError
from sparsescope.analysis import analyse, live_mask, reach_from_inputs, reach_to_outputs, subgraph
from sparsescope.graph import evaluate, from_arrays, from_torch

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)

FAST = fast_settings(60)


@st.composite
def chains(draw):
    if draw(st.booleans()):
        input_shape = (draw(st.integers(1, 7)),)
    else:
        input_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    sizes = [*draw(st.lists(st.integers(1, 6), min_size=0, max_size=3)), draw(st.integers(1, 4))]
    densities = [draw(st.sampled_from([0.0, 0.15, 0.3, 0.6, 1.0])) for _ in sizes]
    seed = draw(st.integers(0, 2**32 - 1))
    return input_shape, sizes, densities, seed


def arrays(case):
    input_shape, sizes, densities, seed = case
    rng = np.random.default_rng(seed)
    n_prev = int(np.prod(input_shape))
    ws, bs = [], []
    for size, d in zip(sizes, densities):
        w = np.where(rng.random((size, n_prev)) < d, rng.normal(size=(size, n_prev)), 0.0)
        ws.append(w)
        bs.append(rng.normal(size=size))
        n_prev = size
    acts = ["relu"] * (len(sizes) - 1) + ["identity"]
    return ws, bs, acts


def torch_model(ws, bs, acts, input_shape):
    mods: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    for w, b, act in zip(ws, bs, acts):
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin, nn.ReLU()] if act == "relu" else [lin]
    return nn.Sequential(*mods).eval()


def brute_force(ws, outputs=None):
    """Reachability by explicit search over (layer, index) vertices, from the dense matrices.

    Returns (from_input, to_output): sets of vertices; layer 0 is the input.
    """
    n = [ws[0].shape[1]] + [w.shape[0] for w in ws]
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    pred: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for k, w in enumerate(ws):
        for j in range(w.shape[0]):
            for i in range(w.shape[1]):
                if w[j, i] != 0:
                    succ.setdefault((k, i), []).append((k + 1, j))
                    pred.setdefault((k + 1, j), []).append((k, i))

    def search(starts, nbrs):
        seen = set(starts)
        stack = list(starts)
        while stack:
            v = stack.pop()
            for u in nbrs.get(v, []):
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        return seen

    K = len(ws)
    outs = range(n[K]) if outputs is None else outputs
    return search([(0, i) for i in range(n[0])], succ), search([(K, j) for j in outs], pred)


def torch_constants(ws, bs, acts):
    """Every vertex's value at x = 0, from torch in float64: the value of the vertices with no input path."""
    out = {}
    a = torch.zeros(1, ws[0].shape[1], dtype=torch.float64)
    for i in range(a.shape[1]):
        out[(0, i)] = 0.0
    for k, (w, b, act) in enumerate(zip(ws, bs, acts)):
        a = torch.nn.functional.linear(a, torch.from_numpy(w), torch.from_numpy(b))
        if act == "relu":
            a = torch.relu(a)
        for j in range(a.shape[1]):
            out[(k + 1, j)] = float(a[0, j])
    return out


def names(ws):
    return ["in", *[f"h{k}" for k in range(1, len(ws))], "out"]


@FAST
@given(case=chains())
def test_structure_matches_brute_force_reachability(case):
    ws, bs, acts = arrays(case)
    input_shape = case[0]
    g = from_arrays(ws, bs, acts, input_shape)
    s = analyse(g)
    fwd, bwd = brute_force(ws)
    layer_names = names(ws)
    K = len(ws)

    # reach_* agree with the search
    rf, rb = reach_from_inputs(g), reach_to_outputs(g)
    for k, name in enumerate(layer_names):
        for i in range(g.layer(name).size):
            assert rf[name][i] == ((k, i) in fwd)
            assert rb[name][i] == ((k, i) in bwd)

    ignored = tuple(g.input.node_id(i) for i in range(g.input.size) if (0, i) not in bwd)
    assert s.ignored_inputs == ignored
    # a vertex with no path from an input is a constant: torch at x = 0 gives its value
    const = torch_constants(ws, bs, acts)

    def live(v, to):
        return v in to and (v in fwd or const[v] != 0)

    dead = tuple(
        g.layer(layer_names[k]).node_id(i)
        for k in range(1, K)
        for i in range(ws[k - 1].shape[0])
        if not live((k, i), bwd)
    )
    assert s.dead_units == dead
    const_units = [(g.layer(layer_names[k]).node_id(i), const[(k, i)]) for k in range(1, K)
                   for i in range(ws[k - 1].shape[0]) if live((k, i), bwd) and (k, i) not in fwd]
    assert [c[0] for c in s.constant_units] == [c[0] for c in const_units]
    np.testing.assert_allclose([c[1] for c in s.constant_units], [c[1] for c in const_units], rtol=0, atol=1e-12)
    const_idx = [j for j in range(ws[-1].shape[0]) if (K, j) not in fwd]
    assert [c[0] for c in s.constant_outputs] == [g.output.node_id(j) for j in const_idx]

    # live vertices: reach an output, and reach from an input or are a nonzero constant; outputs always;
    # live edges join two live vertices
    def counts(to, outs):
        vs = {v for v in to if live(v, to)} | {(K, j) for j in outs}
        es = sum(1 for k, w in enumerate(ws) for j, i in zip(*np.nonzero(w)) if (k, i) in vs and (k + 1, j) in vs)
        return len(vs), es

    assert (s.vertices, s.edges) == counts(bwd, range(ws[-1].shape[0]))
    assert s.total_nodes == sum(w.shape[0] for w in ws) + ws[0].shape[1] == g.num_nodes
    assert s.total_edges == sum(int(np.count_nonzero(w)) for w in ws) == g.num_edges

    # per output: the same counts restricted to paths into that output
    assert len(s.per_output) == ws[-1].shape[0]
    for j, (oid, nv, ne) in enumerate(s.per_output):
        assert oid == g.output.node_id(j)
        _, bj = brute_force(ws, [j])
        assert (nv, ne) == counts(bj, [j])
        nodes, edges = live_mask(g, [j])
        assert sum(int(v.sum()) for v in nodes.values()) == nv
        assert sum(int(e.sum()) for e in edges.values()) == ne

    # per-output subgraph: exactly the edges into ancestors of that output, ids kept
    for j in range(ws[-1].shape[0]):
        sub = subgraph(g, j)
        _, bj = brute_force(ws, [j])
        assert sub.meta["subgraph_of"] == g.output.node_id(j)
        assert list(sub.node_ids()) == list(g.node_ids())
        for k, (layer, w) in enumerate(zip(sub.layers[1:], ws)):
            want = sorted((int(jj), int(i)) for jj, i in zip(*np.nonzero(w)) if (k + 1, jj) in bj)
            assert list(zip(layer.dst.tolist(), layer.src.tolist())) == want
            np.testing.assert_array_equal(layer.weight, [w[a, b] for a, b in want])
            np.testing.assert_array_equal(layer.bias, bs[k])


@FAST
@given(case=chains(), xseed=st.integers(0, 2**31))
def test_ignored_inputs_and_constant_outputs_hold_in_torch(case, xseed):
    ws, bs, acts = arrays(case)
    input_shape = case[0]
    g = from_arrays(ws, bs, acts, input_shape)
    model = torch_model(ws, bs, acts, input_shape)
    s = analyse(g)
    rng = np.random.default_rng(xseed)
    x = rng.normal(size=(8, *input_shape)) * 3
    ignored = [g.locate(i)[1] for i in s.ignored_inputs]
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
        # changing ignored inputs, however wildly, never changes any output
        for _ in range(3):
            x2 = x.reshape(8, -1).copy()
            x2[:, ignored] = rng.normal(size=(8, len(ignored))) * 1e3
            y2 = model(torch.from_numpy(x2.reshape(x.shape))).numpy()
            np.testing.assert_array_equal(y2, y)
        # constant outputs read their value for any input
        for oid, value in s.constant_outputs:
            j = g.locate(oid)[1]
            np.testing.assert_allclose(y[:, j], value, rtol=0, atol=1e-12)
            np.testing.assert_allclose(evaluate(g, x).post["out"][:, j], value, rtol=0, atol=1e-12)
    # dead units with no path to an output never influence one: cutting them out keeps
    # every output bit for bit; dead units with no path from an input are constant 0
    _, bwd = brute_force(ws)
    ws2 = [w.copy() for w in ws]
    rec = {}
    for uid in s.dead_units:
        name, i = g.locate(uid)
        k = int(name[1:])
        if (k, i) not in bwd:
            ws2[k][:, i] = 0.0
        else:
            rec[(name, i)] = None
    y3 = evaluate(from_arrays(ws2, bs, acts, input_shape), x).post["out"]
    np.testing.assert_array_equal(y3, evaluate(g, x).post["out"])
    ev = evaluate(g, x)
    for name, i in rec:
        np.testing.assert_array_equal(ev.post[name][:, i], 0.0)
    # constant units read their value for every input
    for uid, value in s.constant_units:
        assert value != 0
        np.testing.assert_allclose(ev.value(uid), value, rtol=0, atol=1e-12)


def test_used_input_is_not_ignored_and_changes_the_output():
    w1 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    w2 = np.array([[2.0, 5.0], [0.0, 0.0]])
    g = from_arrays([w1, w2], [np.zeros(2), np.array([0.0, 7.0])], ["relu", "identity"], (3,))
    s = analyse(g)
    assert s.ignored_inputs == ("in.1", "in.2")
    assert s.dead_units == ("h1.1",)
    assert s.constant_outputs == (("out.1", 7.0),)
    assert (s.vertices, s.edges) == (4, 2)
    assert s.per_output == (("out.0", 3, 2), ("out.1", 1, 0))
    y = evaluate(g, np.array([[0.0, 9.0, 9.0], [1.0, 9.0, 9.0]])).post["out"]
    assert y[0, 0] != y[1, 0]
    np.testing.assert_array_equal(y[:, 1], [7.0, 7.0])


def test_bias_only_unit_with_a_value_is_live_not_dead():
    # h1.1 has no inputs but relu(0.5) = 0.5 feeds out.0: out.0 = 2*h1.0 + 3*0.5 - 1, so it is drawn
    w1 = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    w2 = np.array([[2.0, 3.0, 4.0]])
    g = from_arrays([w1, w2], [np.array([0.0, 0.5, -0.2]), np.array([-1.0])], ["relu", "identity"], (2,))
    s = analyse(g)
    assert s.dead_units == ("h1.2",)  # relu(-0.2) = 0 contributes nothing
    assert s.constant_units == (("h1.1", 0.5),)
    nodes, edges = live_mask(g)
    assert nodes["h1"].tolist() == [True, True, False]
    assert edges["out"].tolist() == [True, True, False]
    assert (s.vertices, s.edges) == (4, 3)  # in.0, h1.0, h1.1, out.0
    x = np.array([[0.7, 5.0]])
    ev = evaluate(g, x)
    keep = edges["out"]
    drawn = g.output.bias[0] + sum(w * ev.post["h1"][0, i] for w, i in zip(g.output.weight[keep], g.output.src[keep]))
    assert drawn == ev.post["out"][0, 0] == 2 * 0.7 + 1.5 - 1


def test_mnist_like_model_analysis_is_consistent():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 5)).double()
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_((torch.rand_like(m.weight) < 0.1).double())
    g = from_torch(model, (8, 8))
    s = analyse(g)
    assert all(i.startswith("in[") for i in s.ignored_inputs)
    ws = [m.weight.detach().numpy() for m in model if isinstance(m, nn.Linear)]
    fwd, bwd = brute_force(ws)
    assert len(s.ignored_inputs) == sum(1 for i in range(64) if (0, i) not in bwd)


def test_bad_output_index_is_refused():
    g = from_arrays([np.ones((2, 3))], [np.zeros(2)], ["identity"], (3,))
    for bad in (2, -1, 10**6):
        with pytest.raises(GraphError):
            subgraph(g, bad)
        with pytest.raises(GraphError):
            reach_to_outputs(g, [bad])
        with pytest.raises(GraphError):
            live_mask(g, [bad])


def test_box_states_hold_on_samples_and_need_bounds():
    import pytest as _pytest

    from sparsescope._errors import GraphError as _GraphError
    from sparsescope.analysis import box_states
    from sparsescope.bounds import annotate
    from sparsescope.graph import evaluate as _evaluate
    from sparsescope.graph import from_arrays

    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(12, 6)) * (rng.random((12, 6)) < 0.5), rng.normal(size=(3, 12))]
    bs = [rng.normal(size=12) * 2, rng.normal(size=3)]
    ws[0][0] = 0.0  # h1.0: bias only, a constant
    bs[0] = bs[0].astype(np.float32).astype(np.float64)  # (in float32 evaluation too: a float32 bias)
    g = from_arrays(ws, bs, ["relu", "identity"], (6,))
    with _pytest.raises(_GraphError):
        box_states(g)
    g = annotate(g, "unit")
    st = box_states(g)
    ev = _evaluate(g, rng.random((2000, 6)))
    for nid in st.off:
        assert np.all(ev.value(nid) == 0)
    for nid in st.on:
        name, i = g.locate(nid)
        assert np.all(ev.pre[name][:, i] >= 0)
    consts = dict(st.constant)
    assert "h1.0" in consts and np.all(ev.value("h1.0") == consts["h1.0"])
    assert st.off or st.on  # the random net has some of each kind
