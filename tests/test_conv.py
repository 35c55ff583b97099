"""Unrolled convolutions in the flowgraph: faithful to torch's conv2d, shared-weight ids,
JSON v2 round trips (v1 still read), sound bounds, structure on conv graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from sparsescope._errors import GraphError
from sparsescope.analysis import analyse, live_mask, subgraph
from sparsescope.bounds import annotate, interval_bounds
from sparsescope.graph import Layer, conv_edges, evaluate, from_json, from_steps, from_torch, to_dict, to_json

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)
FAST = fast_settings(40)
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}
NP = {torch.float32: np.float32, torch.float64: np.float64}


@st.composite
def conv_nets(draw):
    """(spec) of a random conv net: input (C, H, W), conv/pool layers, optional dense head, masks, seed."""
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    layers = []
    shape = (c, h, w)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool"]))
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 2))
        p = draw(st.integers(0, 2)) if kind == "conv" else 0
        if shape[1] + 2 * p < k or shape[2] + 2 * p < k:
            continue
        out_c = draw(st.integers(1, 4)) if kind == "conv" else shape[0]
        act = draw(st.sampled_from(["relu", "relu", "identity"]))
        layers.append((kind, out_c, k, s, p, act, draw(st.sampled_from([0.0, 0.4, 0.8, 1.0]))))
        shape = (out_c, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
    head = draw(st.one_of(st.none(), st.integers(1, 4)))
    return (c, h, w), layers, head, draw(st.sampled_from([0.0, 0.5, 1.0])), draw(st.integers(0, 2**31))


def make_model(spec, dtype):
    (c, h, w), layers, head, head_density, seed = spec
    gen = torch.Generator().manual_seed(seed)
    mods: list[nn.Module] = []
    chans = c
    has_weights = False
    for kind, out_c, k, s, p, act, density in layers:
        if kind == "conv":
            m = nn.Conv2d(chans, out_c, k, stride=s, padding=p)
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                m.weight.mul_(torch.rand(m.weight.shape, generator=gen) < density)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.3)
            has_weights = True
        else:
            m = nn.AvgPool2d(k, s)
        mods.append(m)
        chans = out_c
        if act == "relu":
            mods.append(nn.ReLU())
    if head is not None or not has_weights:
        mods.append(nn.Flatten())
        x = torch.zeros(1, c, h, w)
        n = nn.Sequential(*mods)(x).numel() if mods else c * h * w
        lin = nn.Linear(n, head or 2)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen))
            lin.weight.mul_(torch.rand(lin.weight.shape, generator=gen) < head_density)
        mods.append(lin)
    return nn.Sequential(*mods).to(dtype)


def torch_layers(model, x):
    """The value after every flowgraph layer (after its activation), flattened per sample."""
    outs = []
    h = x
    mods = list(model.children())
    for i, m in enumerate(mods):
        h = m(h)
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.AvgPool2d)):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if isinstance(nxt, nn.ReLU):
                continue
            outs.append(h.flatten(1))
        elif isinstance(m, nn.ReLU):
            outs.append(h.flatten(1))
    return outs


@FAST
@given(conv_nets(), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**31))
def test_unrolled_conv_equals_torch(spec, dtype, seed):
    model = make_model(spec, dtype)
    g = from_torch(model, spec[0])
    x = torch.rand((5, *spec[0]), generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 0.5
    with torch.no_grad():
        want = torch_layers(model, x)
    ev = evaluate(g, x.numpy())
    assert len(want) == len(g.layers) - 1
    for layer, t in zip(g.layers[1:], want):
        got = ev.post[layer.name]
        assert got.dtype == NP[dtype]
        scale = max(1.0, float(t.abs().max()))
        np.testing.assert_allclose(got, t.numpy(), atol=TOL[dtype] * scale, rtol=0)
    # the JSON round trip keeps every value and every tie
    g2 = from_json(to_json(g))
    assert to_json(g2) == to_json(g)
    np.testing.assert_array_equal(evaluate(g2, x.numpy()).post[g.output.name], ev.post[g.output.name])


@FAST
@given(conv_nets(), st.integers(0, 2**31))
def test_conv_edges_are_the_kernel_weights(spec, seed):
    """Every edge of an unrolled conv carries the kernel weight its weight_id names, at the position
    the convolution reads; each weight appears once per in-bounds output position."""
    model = make_model(spec, torch.float64)
    g = from_torch(model, spec[0])
    convs = [m for m in model.children() if isinstance(m, nn.Conv2d)]
    layers = [layer for layer in g.layers[1:] if layer.weight_shape is not None and len(layer.weight_shape) == 4]
    assert len(layers) == len(convs)
    for m, layer in zip(convs, layers):
        k = m.weight.detach().numpy()
        assert layer.weight_shape == k.shape
        np.testing.assert_array_equal(layer.weight, k.reshape(-1)[layer.weight_id])
        o, i, ky, kx = np.unravel_index(layer.weight_id, k.shape)
        oc, oy, ox = np.unravel_index(layer.dst, layer.shape)
        src_layer = g.layer(layer.source)
        sshape = src_layer.shape if len(src_layer.shape) == 3 else (1, *src_layer.shape)
        sc, sy, sx = np.unravel_index(layer.src, sshape)
        s, p = m.stride[0], m.padding[0]
        assert np.array_equal(oc, o) and np.array_equal(sc, i)
        assert np.array_equal(sy, oy * s - p + ky) and np.array_equal(sx, ox * s - p + kx)
        # an edge for every nonzero weight and every position inside the input
        nnz = np.flatnonzero(k.reshape(-1))
        counts = np.bincount(layer.weight_id, minlength=k.size)
        assert np.all(counts[k.reshape(-1) == 0] == 0)
        for wid in nnz[:5]:
            _, _, yy, xx = np.unravel_index(wid, k.shape)
            oh, ow = layer.shape[1:]
            rows = sum(0 <= y * s - p + yy < sshape[1] for y in range(oh))
            cols = sum(0 <= x * s - p + xx < sshape[2] for x in range(ow))
            assert counts[wid] == rows * cols


@FAST
@given(conv_nets(), st.integers(0, 2**31))
def test_conv_bounds_are_sound(spec, seed):
    """Sampled inputs, box corners and a gradient-ascent point stay inside the bounds, in float32 and float64."""
    rng = np.random.default_rng(seed)
    shape = spec[0]
    n = int(np.prod(shape))
    lo = rng.uniform(-1, 0.5, n)
    hi = lo + rng.uniform(0, 1, n) * (rng.random(n) < 0.8)
    for dtype in (torch.float64, torch.float32):
        model = make_model(spec, dtype)
        g = from_torch(model, shape)
        b = interval_bounds(g, lo, hi, eval_dtype=NP[dtype])
        xs = rng.uniform(lo, hi, (64, n))
        xs[:8] = np.where(rng.random((8, n)) < 0.5, lo, hi)
        x = torch.tensor(xs.reshape(-1, *shape), dtype=dtype, requires_grad=True)
        # one step of gradient ascent on a random output direction, projected back into the box
        out = model(x)
        (out * torch.randn(out.shape, dtype=dtype)).sum().backward()
        step = np.clip(xs + np.sign(x.grad.numpy().reshape(len(xs), n)) * (hi - lo), lo, hi)
        for batch in (xs, step):
            with torch.no_grad():
                vals = torch_layers(model, torch.tensor(batch.reshape(-1, *shape), dtype=dtype))
            for layer, v in zip(g.layers[1:], vals):
                v = v.double().numpy()
                assert np.all(v >= b.lo[layer.name] - 0.0) and np.all(v <= b.hi[layer.name] + 0.0), layer.name


def test_zero_width_box_gives_the_evaluated_values():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 2, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(2 * 3 * 3, 4)).double()
    g = from_torch(model, (2, 6, 6))
    x = np.random.default_rng(0).random(72)
    b = interval_bounds(g, x, x, eval_dtype=np.float64)
    ev = evaluate(g, x[None])
    for layer in g.layers:
        np.testing.assert_array_equal(b.lo[layer.name], ev.post[layer.name][0])
        np.testing.assert_array_equal(b.hi[layer.name], ev.post[layer.name][0])


def test_study_cnn_shapes_ids_and_sizes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(2904, 10))
    g = from_torch(model, (28, 28))
    assert [layer.shape for layer in g.layers] == [(28, 28), (6, 26, 26), (6, 24, 24), (6, 22, 22), (10,)]
    assert [layer.name for layer in g.layers] == ["in", "c1", "c2", "c3", "out"]
    assert g.node_id("c1", 2 * 676 + 5 * 26 + 7) == "c1[2,5,7]"
    assert g.locate("c3[5,21,21]") == ("c3", 2903)
    # dense kernels: every weight at every position (no padding: all inside)
    assert g.layer("c1").num_edges == 54 * 26 * 26
    assert g.layer("c2").num_edges == 324 * 24 * 24
    assert g.layer("out").weight_id is None
    doc = to_dict(g)
    assert doc["version"] == 2 and doc["layers"][1]["weight_shape"] == [6, 1, 3, 3]
    assert list(doc["layers"][1]["edges"]) == ["dst", "src", "weight", "weight_id"]


def test_padding_makes_no_edges():
    k = np.ones((1, 1, 3, 3))
    shape, dst, src, w, tie = conv_edges(k, (1, 4, 4), 1, 1)
    assert shape == (1, 4, 4)
    # corners see 4 pixels, edges 6, the inner 2x2 all 9
    assert np.bincount(dst).tolist() == [4, 6, 6, 4, 6, 9, 9, 6, 6, 9, 9, 6, 4, 6, 6, 4]


def test_ties_must_agree_and_fit():
    base = dict(name="c1", kind="affine", shape=(2,), source="in", bias=np.zeros(2), dst=[0, 1], src=[0, 1])
    Layer(**base, weight=[0.5, 0.5], weight_id=[3, 3], weight_shape=(1, 1, 2, 2))
    with pytest.raises(GraphError, match="same weight_id"):
        Layer(**base, weight=[0.5, 0.25], weight_id=[3, 3], weight_shape=(1, 1, 2, 2))
    with pytest.raises(GraphError, match="out of range"):
        Layer(**base, weight=[0.5, 0.5], weight_id=[3, 4], weight_shape=(1, 1, 2, 2))
    with pytest.raises(GraphError, match="go together"):
        Layer(**base, weight=[0.5, 0.5], weight_id=[3, 3])


def test_version_1_documents_still_read_and_mlps_stay_version_1():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    g = from_torch(model, (2, 2))
    doc = to_dict(g)
    assert doc["version"] == 1
    assert to_json(from_json(json.dumps(doc))) == to_json(g)
    conv = from_torch(nn.Sequential(nn.Conv2d(1, 1, 2)).double(), (3, 3))
    d2 = to_dict(conv)
    d2["version"] = 3
    with pytest.raises(GraphError, match="version"):
        from_json(json.dumps(d2))
    # a version-1 document cannot smuggle in ties
    d1 = to_dict(conv)
    d1["version"] = 1
    assert from_json(json.dumps(d1)).layer("out").weight_id is None


def test_unsupported_torch_layers_are_named():
    with pytest.raises(GraphError, match="MaxPool2d"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 2), nn.MaxPool2d(2)), (4, 4))
    with pytest.raises(GraphError, match="dilation"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 2, dilation=2)), (5, 5))
    with pytest.raises(GraphError, match="not a feature map"):
        from_steps([{"kind": "conv", "name": "c1", "weight": np.ones((1, 1, 1, 1)), "bias": [0.0]}], (4,))


def test_structure_on_a_pruned_conv_graph():
    """One surviving kernel weight per conv: reachability, per-output subgraph and dead units by hand."""
    w1 = np.zeros((2, 1, 3, 3))
    w1[0, 0, 1, 1] = 1.0  # channel 0 copies the centre; channel 1 has no weights (bias only: constant)
    w2 = np.zeros((1, 2, 3, 3))
    w2[0, 0, 0, 0] = 2.0
    head = np.zeros((2, 4))
    head[0, 3] = 1.0  # out.0 reads c2[0,1,1]; out.1 reads nothing
    g = from_steps([
        {"kind": "conv", "name": "c1", "weight": w1, "bias": [0.0, 0.5], "activation": "relu"},
        {"kind": "conv", "name": "c2", "weight": w2, "bias": [0.1], "activation": "relu"},
        {"kind": "linear", "name": "out", "weight": head, "bias": [0.0, -1.0]},
    ], (6, 6))
    st_ = analyse(g)
    # out.0 <- c2[0,1,1] <- c1[0,1,1] <- in[2,2]
    assert st_.per_output[0] == ("out.0", 4, 3)
    assert st_.per_output[1] == ("out.1", 1, 0)
    assert st_.constant_outputs == (("out.1", -1.0),)
    assert len(st_.ignored_inputs) == 35 and "in[2,2]" not in st_.ignored_inputs
    sub = subgraph(g, 0)
    assert sub.num_edges == 3
    nodes, edges = live_mask(g, [0])
    assert nodes["c1"].sum() == 1 and g.layer("c1").node_id(int(np.flatnonzero(nodes["c1"])[0])) == "c1[0,1,1]"
    x = np.random.default_rng(0).random((3, 36))
    np.testing.assert_array_equal(evaluate(sub, x).post["out"][:, 0], evaluate(g, x).post["out"][:, 0])
    gb = annotate(g)
    # channel 1 of c1 has no weights: exactly its bias everywhere
    assert np.all(gb.bounds.lo["c1"][16:] == 0.5) and np.all(gb.bounds.hi["c1"][16:] == 0.5)


def test_channel_view_by_hand():
    w1 = np.zeros((3, 1, 3, 3))
    w1[0, 0, 1, 1] = 1.0
    w1[0, 0, 0, 0] = -1.0  # two weights of kernel (c1[0] <- in)
    w1[2, 0, 2, 2] = 0.5  # c1[2] has a weight but nothing reads it: dead
    w2 = np.zeros((2, 3, 3, 3))
    w2[1, 0, 0, 1] = 2.0
    head = np.zeros((2, 2 * 2 * 2))
    head[1, 4] = 1.0  # out.1 reads c2[1,0,0]
    g = from_steps([
        {"kind": "conv", "name": "c1", "weight": w1, "bias": [0.0, 0.0, 0.0], "activation": "relu"},
        {"kind": "conv", "name": "c2", "weight": w2, "bias": [0.1, 0.0], "activation": "relu"},
        {"kind": "linear", "name": "out", "weight": head, "bias": [0.0, 0.0]},
    ], (6, 6))
    from sparsescope.analysis import channel_id, channel_sizes, channel_view

    nodes, edges = channel_view(g, [1])
    assert [channel_id(g.layer("c1"), c) for c in np.flatnonzero(nodes["c1"])] == ["c1[0]"]
    assert nodes["in"].tolist() == [True] and nodes["c2"].tolist() == [False, True]
    e1 = edges["c1"]
    # out.1 <- c2[1,0,0] <- c1[0,0,1] <- in[1,2] (w=1) and in[0,1] (w=-1): 2 unrolled edges, 2 weights
    assert (e1.dst.tolist(), e1.src.tolist(), e1.edges.tolist(), e1.weights.tolist()) == ([0], [0], [2], [2])
    sz = channel_sizes(g, 1)
    assert (sz.vertices, sz.edges, sz.weights) == (4, 3, 4)
    assert (sz.unrolled_vertices, sz.unrolled_edges) == (5, 4)
    assert analyse(g).per_output[1] == ("out.1", 5, 4)
    # the whole graph, not only the live part: c1[2] <- in has one weight used at 16 positions
    _, all_edges = channel_view(g, live_only=False)
    e = all_edges["c1"]
    i = list(zip(e.dst.tolist(), e.src.tolist())).index((2, 0))
    assert e.edges[i] == 16 and e.weights[i] == 1


@FAST
@given(conv_nets())
def test_channel_view_is_a_projection(spec):
    from sparsescope.analysis import channel_sizes, channel_view

    g = from_torch(make_model(spec, torch.float64), spec[0])
    st_ = analyse(g)
    for k in range(g.output.size):
        sz = channel_sizes(g, k)
        assert (g.output.node_id(k), sz.unrolled_vertices, sz.unrolled_edges) == st_.per_output[k]
        nodes, edges = channel_view(g, [k])
        assert sum(int(e.edges.sum()) for e in edges.values()) == sz.unrolled_edges
        assert sz.vertices <= sz.unrolled_vertices and sz.edges <= sz.unrolled_edges
        assert all(np.all(e.weights <= e.edges) and np.all(e.weights >= 1) for e in edges.values())
