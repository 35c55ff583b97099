"""Structural cones (analysis/_cones.py): each coarse rule equals the plain ancestor cone of a
graph whose kernels were filled in accordingly, over random conv nets; stride and padding are
read back from the edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sparsescope._errors import GraphError
from sparsescope.analysis import CONE_RULES, cone_sizes, conv_geometry, live_mask, reach_to_outputs
from sparsescope.graph import from_steps

from conftest import fast_settings  # noqa: E402


@st.composite
def nets(draw):
    """(steps, input shape, true (stride, padding) per conv) of a random pruned conv net with a dense head."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 10)), draw(st.integers(3, 10))
    steps, geometry, shape = [], {}, (c, h, w)
    for j in range(draw(st.integers(1, 3))):
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        if draw(st.integers(0, 4)) == 0:
            if shape[1] < k or shape[2] < k:
                continue
            steps.append({"kind": "avgpool", "name": f"p{j}", "kernel": k, "stride": s, "activation": "identity"})
            shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
            continue
        p = draw(st.integers(0, min(2, k - 1)))
        if shape[1] + 2 * p < k or shape[2] + 2 * p < k:
            continue
        o = draw(st.integers(1, 4))
        density = draw(st.sampled_from([0.1, 0.3, 0.6, 1.0]))
        wgt = rng.normal(size=(o, shape[0], k, k)) * (rng.random((o, shape[0], k, k)) < density)
        steps.append({"kind": "conv", "name": f"c{j}", "weight": wgt, "bias": rng.normal(size=o), "stride": s,
                      "padding": p, "activation": "relu"})
        geometry[f"c{j}"] = (s, p)
        shape = (o, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
    assume(geometry)
    n_in = int(np.prod(shape))
    head = rng.normal(size=(draw(st.integers(1, 3)), n_in)) * (rng.random((1, n_in)) < draw(st.sampled_from([0.2, 1.0])))
    steps.append({"kind": "linear", "name": "out", "weight": head, "bias": rng.normal(size=head.shape[0])})
    return steps, (c, h, w), geometry


def _filled(steps, rule, graph):
    """The same net with kernels filled in: ``kernel`` every slice with an edge in ``graph`` (a
    surviving weight that touches the map somewhere), ``window`` all slices."""
    out = []
    for st_ in steps:
        if st_["kind"] == "conv":
            w = st_["weight"]
            if rule == "window":
                full = np.ones_like(w)
            else:
                layer = graph.layer(st_["name"])
                o, i, _, _ = np.unravel_index(layer.weight_id, layer.weight_shape)
                full = np.zeros_like(w)
                full[o, i] = 1.0
            st_ = {**st_, "weight": full}
        out.append(st_)
    return out


@fast_settings(80)
@given(nets(), st.sampled_from(CONE_RULES))
def test_each_rule_is_the_ancestor_cone_of_the_filled_graph(net, rule):
    steps, shape, geometry = net
    g = from_steps(steps, shape)
    ref = from_steps(_filled(steps, rule, g) if rule != "weight" else steps, shape)
    for k in range(g.output.size):
        try:
            got = cone_sizes(g, k, rule)
        except GraphError as e:
            assert "do not determine" in str(e)  # too few edges to read the stride back: said, not guessed
            continue
        bwd = reach_to_outputs(ref, [k])
        assert got.vertices == sum(int(v.sum()) for v in bwd.values())
        assert got.edges == sum(int(bwd[layer.name][layer.dst].sum()) for layer in ref.layers[1:])
        assert got.inputs == int(bwd["in"].sum())
        assert dict(got.per_layer) == {name: int(v.sum()) for name, v in bwd.items()}
        if rule == "weight":
            continue
        finer = cone_sizes(g, k, "weight" if rule == "kernel" else "kernel")
        assert got.vertices >= finer.vertices and got.edges >= finer.edges  # coarser rules only add


@fast_settings(60)
@given(nets())
def test_conv_geometry_is_read_back_from_the_edges(net):
    steps, shape, geometry = net
    g = from_steps(steps, shape)
    for name, (s, p) in geometry.items():
        layer = g.layer(name)
        try:
            got = conv_geometry(g, layer)
        except GraphError as e:
            assert "do not determine" in str(e)
            continue
        if layer.num_edges and layer.shape[1] > 1 and layer.shape[2] > 1:
            assert got == (s, p)
        elif layer.num_edges:
            assert got[1] == p


def test_study_sized_example_by_hand():
    # one input channel 5x5, conv 1 -> 2 channels 3x3 with one weight each, dense head reading c[0,1,1] only
    w = np.zeros((2, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0  # channel 0 reads the top-left of its window
    w[1, 0, 2, 2] = 1.0
    head = np.zeros((1, 18))
    head[0, 0 * 9 + 1 * 3 + 1] = 1.0  # c[0, 1, 1]
    g = from_steps([{"kind": "conv", "name": "c", "weight": w, "bias": np.zeros(2), "activation": "relu"},
                    {"kind": "linear", "name": "out", "weight": head, "bias": np.zeros(1)}], (5, 5))
    weight, kernel, window = (cone_sizes(g, 0, r) for r in CONE_RULES)
    assert (weight.vertices, weight.edges, weight.inputs) == (3, 2, 1)  # in[1,1] -> c[0,1,1] -> out.0
    assert (kernel.vertices, kernel.edges, kernel.inputs) == (11, 10, 9)  # the whole 3x3 window of in
    assert window == kernel.__class__("window", 11, 10, 9, kernel.per_layer)  # one input channel: same
    nodes, _ = live_mask(g, [0])
    assert weight.vertices == sum(int(v.sum()) for v in nodes.values())
    with pytest.raises(GraphError, match="unknown cone rule"):
        cone_sizes(g, 0, "pixels")
    with pytest.raises(GraphError, match="out of range"):
        cone_sizes(g, 3)
    with pytest.raises(GraphError, match="not a conv layer"):
        conv_geometry(g, g.layer("out"))
