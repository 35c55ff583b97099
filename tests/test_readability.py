"""Readability measures against brute-force definitions, over random architectures and masks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sparsescope.analysis import analyse, box_states, crossing_count, live_mask, readability, reach_from_inputs
from sparsescope.bounds import annotate
from sparsescope.graph import Flowgraph, Layer, evaluate, from_arrays
from sparsescope.render import order_nodes

from conftest import fast_settings  # noqa: E402
from test_analysis import arrays  # noqa: E402

FAST = fast_settings(50)


@st.composite
def chains(draw):
    """Flat (rank 1), image (rank 2) and channel-image (rank 3) inputs, 1-4 affine layers."""
    rank = draw(st.integers(1, 3))
    input_shape = {1: lambda: (draw(st.integers(1, 7)),),
                   2: lambda: (draw(st.integers(1, 3)), draw(st.integers(1, 4))),
                   3: lambda: (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))}[rank]()
    sizes = [*draw(st.lists(st.integers(1, 6), min_size=0, max_size=3)), draw(st.integers(1, 4))]
    densities = [draw(st.sampled_from([0.0, 0.15, 0.3, 0.6, 1.0])) for _ in sizes]
    return input_shape, sizes, densities, draw(st.integers(0, 2**32 - 1))


def brute_crossings(order_a, order_b, src, dst):
    pa = {int(v): i for i, v in enumerate(order_a)}
    pb = {int(v): i for i, v in enumerate(order_b)}
    e = [(pa[int(s)], pb[int(d)]) for s, d in zip(src, dst)]
    return sum(1 for i in range(len(e)) for j in range(i + 1, len(e))
               if (e[i][0] - e[j][0]) * (e[i][1] - e[j][1]) < 0)


def gamma_bits(v: float) -> int:
    q = int(np.rint(v * 100))
    z = 2 * q if q >= 0 else -2 * q - 1
    return 2 * ((z + 1).bit_length() - 1) + 1


def slow_description_bits(g: Flowgraph, outputs) -> float:
    """The documented code, written out with exact binomials and evaluate() for the constants."""
    nodes, edges = live_mask(g, outputs, constants=False)
    fwd = reach_from_inputs(g)
    post = evaluate(g, np.zeros((1, g.input.size))).post
    bits = 0.0
    for layer in g.layers:
        n, live = layer.size, int(nodes[layer.name].sum())
        bits += math.log2(n + 1) + math.log2(math.comb(n, live))
        if layer.kind == "input":
            continue
        n_src = int(nodes[layer.source].sum())
        for i in np.flatnonzero(nodes[layer.name]):
            into = [e for e in range(layer.num_edges) if layer.dst[e] == i]
            live_in = [e for e in into if edges[layer.name][e]]
            bits += math.log2(n_src + 1) + math.log2(math.comb(n_src, len(live_in)))
            bits += sum(gamma_bits(layer.weight[e]) for e in live_in)
            folded = layer.bias[i] + sum(layer.weight[e] * post[layer.source][0, layer.src[e]]
                                         for e in into if not fwd[layer.source][layer.src[e]])
            bits += gamma_bits(folded)
    return bits


@FAST
@given(case=chains())
def test_measures_match_their_definitions(case):
    ws, bs, acts = arrays(case)
    g = annotate(from_arrays(ws, bs, acts, case[0]), "unit")
    r = readability(g)
    s = analyse(g)
    image = len(case[0]) >= 2
    assert r.image_input == image and r.box == "unit"
    states = box_states(g)
    stable = set(states.off) | set(states.on)
    first = g.layers[1].name
    for outputs, m in [(None, r)] + [([k], o) for k, o in enumerate(r.per_output)]:
        nodes, edges = live_mask(g, outputs, constants=False)
        n_in = int(nodes["in"].sum())
        n_first = int(edges[first].sum())
        all_v = sum(int(v.sum()) for v in nodes.values())
        all_e = sum(int(e.sum()) for e in edges.values())
        assert m.vertices == all_v - (n_in if image else 0)
        assert m.edges == all_e - (n_first if image else 0)
        assert m.inputs_used == n_in
        switching = [layer.node_id(i) for layer in g.layers[1:] if layer.activation == "relu"
                     for i in np.flatnonzero(nodes[layer.name]) if layer.node_id(i) not in stable]
        assert m.switching == len(switching)
        order = order_nodes(g, nodes, edges, fixed=("in",) if image else ())
        want = sum(brute_crossings(order[layer.source], order[layer.name], layer.src[edges[layer.name]],
                                   layer.dst[edges[layer.name]])
                   for layer in g.layers[1:] if not (image and layer.source == "in"))
        assert m.crossings == want
        assert abs(m.description_bits - slow_description_bits(g, outputs)) < 2e-3
    # analyse counts constant units as nodes with edges (the figures draw them); readability folds them
    if not s.constant_units:
        assert (r.vertices, r.edges) == (s.vertices - (r.inputs_used if image else 0), s.edges - r.image_edges)
        if not image:
            assert [(o.output, o.vertices, o.edges) for o in r.per_output] == list(s.per_output)
    if not image:
        assert r.image_edges == 0


@FAST
@given(case=chains())
def test_folded_live_graph_computes_the_same_outputs(case):
    """The graph the description length writes (live edges, folded biases) is the flowgraph's function."""
    from sparsescope.analysis._readability import _constants

    ws, bs, acts = arrays(case)
    g = from_arrays(ws, bs, acts, case[0])
    nodes, edges = live_mask(g, constants=False)
    fwd = reach_from_inputs(g)
    consts = _constants(g, fwd)
    layers = [g.input]
    for layer in g.layers[1:]:
        const_in = ~fwd[layer.source][layer.src]
        folded = layer.bias + np.bincount(layer.dst[const_in], weights=(layer.weight * consts[layer.source][layer.src])[const_in],
                                          minlength=layer.size)
        e = edges[layer.name]
        layers.append(replace(layer, bias=np.where(nodes[layer.name], folded, 0.0), dst=layer.dst[e], src=layer.src[e],
                              weight=layer.weight[e]))
    x = np.random.default_rng(case[3]).random((5, g.input.size))
    np.testing.assert_allclose(evaluate(Flowgraph(tuple(layers)), x).post["out"], evaluate(g, x).post["out"],
                               rtol=1e-12, atol=1e-12)


def test_hand_computed_example():
    # 2 named inputs -> 2 ReLU units -> 1 output; h1.0 <- in.1, h1.1 <- in.0: the two edges cross
    w1 = np.array([[0.0, 1.0], [1.0, 0.0]])
    w2 = np.array([[1.0, -1.0]])
    g = from_arrays([w1, w2], [np.array([-0.5, 0.25]), np.zeros(1)], ["relu", "identity"], (2,))
    r = readability(g)
    assert not r.image_input
    assert (r.vertices, r.edges, r.inputs_used) == (5, 4, 2)
    assert r.switching == 1  # h1.0 = relu(x1 - 0.5) switches over [0,1]; h1.1 = relu(x0 + 0.25) is always on
    # layout: barycenters put h1.1 (fed by in.0) above h1.0, removing the crossing
    assert r.crossings == 0
    assert crossing_count(np.array([0, 1]), np.array([0, 1]), np.array([1, 0]), np.array([0, 1])) == 1
    # bits: layers in(2 of 2), h1(2 of 2), out(1 of 1); per unit log2(3)+log2 C(2,1) or log2(3)+log2 C(2,2)
    counts = math.log2(3) * 2 + math.log2(2)
    struct = 2 * (math.log2(3) + 1) + (math.log2(3) + 0)
    nums = 4 * gamma_bits(1.0) + gamma_bits(-0.5) + gamma_bits(0.25) + gamma_bits(0.0)
    assert gamma_bits(1.0) == 2 * 7 + 1 and gamma_bits(0.0) == 1
    assert r.description_bits == round(counts + struct + nums, 3)


def test_image_collapse_hides_pixel_edges_only():
    w1 = np.zeros((2, 4))
    w1[0, :3] = 1.0
    w1[1, 3] = -1.0
    g = from_arrays([w1, np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", "identity"], (2, 2))
    flat = from_arrays([w1, np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", "identity"], (4,))
    r, rf = readability(g), readability(flat)
    assert r.image_input and not rf.image_input
    assert (r.vertices, r.edges, r.image_edges) == (3, 2, 4)
    assert (rf.vertices, rf.edges, rf.image_edges) == (7, 6, 0)
    assert r.description_bits == rf.description_bits  # the same data, drawn differently


def test_deterministic_json():
    rng = np.random.default_rng(3)
    ws = [np.where(rng.random((6, 12)) < 0.4, rng.normal(size=(6, 12)), 0.0), rng.normal(size=(3, 6))]
    g = from_arrays(ws, [rng.normal(size=6), rng.normal(size=3)], ["relu", "identity"], (3, 4), output_labels=["a", "b", "c"])
    a = json.dumps(readability(g).to_dict(), sort_keys=True)
    assert a == json.dumps(readability(g).to_dict(), sort_keys=True)
    assert [o["label"] for o in json.loads(a)["per_output"]] == ["a", "b", "c"]


def test_generic_layers_unrolled_like_a_conv():
    """A layer with a 3-d shape and node ids like c1[ch,y,x] is measured like any other."""
    inp = Layer("in", "input", (1, 4, 4))
    dst, src, w = [], [], []
    for y in range(3):
        for x in range(3):
            for dy in range(2):
                for dx in range(2):
                    dst.append(y * 3 + x)
                    src.append((y + dy) * 4 + (x + dx))
                    w.append(0.5 if dx == dy else -0.25)
    c1 = Layer("c1", "affine", (1, 3, 3), activation="relu", source="in", bias=np.full(9, -0.1), dst=dst, src=src, weight=w)
    out = Layer("out", "affine", (2,), source="c1", bias=np.zeros(2), dst=[0, 0, 1], src=[0, 8, 4], weight=[1.0, 2.0, -1.0])
    g = Flowgraph((inp, c1, out))
    r = readability(g)
    assert r.image_input and r.vertices == 3 + 2 and r.edges == 3 and r.image_edges == 12
    assert [o.inputs_used for o in r.per_output] == [8, 4]
    assert c1.node_id(4) == "c1[0,1,1]"


def test_unrolled_conv_graph_from_the_conv_builder():
    """The conv builder's graphs (nodes c1[ch,y,x], shared kernel weights) are measured like any other."""
    from sparsescope.graph import from_steps

    w1 = np.zeros((2, 1, 3, 3))
    w1[0, 0, 1, 1] = 1.0
    w2 = np.zeros((1, 2, 3, 3))
    w2[0, 0, 0, 0] = 2.0
    head = np.zeros((2, 4))
    head[0, 3] = 1.0
    g = from_steps([
        {"kind": "conv", "name": "c1", "weight": w1, "bias": [0.0, 0.0], "activation": "relu"},
        {"kind": "conv", "name": "c2", "weight": w2, "bias": [0.1], "activation": "relu"},
        {"kind": "linear", "name": "out", "weight": head, "bias": [0.0, -1.0]},
    ], (6, 6))
    r = readability(g)
    o0 = r.per_output[0]
    # out.0 <- c2[0,1,1] <- c1[0,1,1] <- in[2,2]: the pixel edge is inside c1[0,1,1]'s image
    assert (o0.vertices, o0.edges, o0.inputs_used, o0.crossings) == (3, 2, 1, 0)
    assert (r.per_output[1].vertices, r.per_output[1].edges, r.per_output[1].inputs_used) == (1, 0, 0)
    assert r.image_edges == 1 and r.edges == 2


def test_study_cnn_pruned_matches_structure():
    import torch
    import torch.nn as nn

    from sparsescope.graph import from_torch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(432, 4))
    with torch.no_grad():
        for m in model:
            if hasattr(m, "weight"):
                m.weight.mul_((torch.rand_like(m.weight) < 0.2).float())
    g = from_torch(model.double(), (16, 16))
    r, s = readability(g), analyse(g)
    nodes, edges = live_mask(g, constants=False)
    assert r.image_input and r.inputs_used == int(nodes["in"].sum())
    assert r.vertices == sum(int(m.sum()) for k, m in nodes.items() if k != "in")
    assert r.image_edges == int(edges[g.layers[1].name].sum())
    assert r.edges == sum(int(e.sum()) for e in edges.values()) - r.image_edges
    order = order_nodes(g, nodes, edges, fixed=("in",))
    layer = g.layers[2]
    keep = edges[layer.name]
    assert crossing_count(order[layer.source], order[layer.name], layer.src[keep], layer.dst[keep]) == brute_crossings(
        order[layer.source], order[layer.name], layer.src[keep], layer.dst[keep])
    assert s.total_edges == g.num_edges


def test_q_network_with_named_inputs_is_not_collapsed():
    rng = np.random.default_rng(1)
    ws = [np.where(rng.random((8, 4)) < 0.5, rng.normal(size=(8, 4)), 0.0), rng.normal(size=(2, 8))]
    g = from_arrays(ws, [rng.normal(size=8), rng.normal(size=2)], ["relu", "identity"], (4,),
                    output_labels=["left", "right"], input_labels=["x", "v", "theta", "omega"])
    r = readability(annotate(g, "custom", lo=-np.ones(4), hi=np.ones(4)))
    nodes, edges = live_mask(g, constants=False)
    assert not r.image_input and r.box == "custom" and r.image_edges == 0
    assert (r.vertices, r.edges) == (sum(int(m.sum()) for m in nodes.values()), sum(int(e.sum()) for e in edges.values()))
    assert [o.label for o in r.per_output] == ["left", "right"]
