"""Figures add up: read the display list back and rebuild every drawn node from what is drawn.

For every drawn node, ``activation(bias + sum of the drawn incoming terms)`` must equal
the node's value in torch (float64), where the terms are the edge curves, the pixels of
first-layer weight tiles and the dot-product labels, and the bias is the card's.  Random
architectures, masks, bias-only units (constant units), outputs, inputs and figure options.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sparsescope import graph as G
from sparsescope.analysis import analyse, live_mask
from sparsescope.bounds import annotate
from sparsescope.render import Scene, graph_figure
from sparsescope.render import _colour as C

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)


@st.composite
def nets(draw):
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    else:
        shape = (draw(st.integers(1, 5)),)
    sizes = [*draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)), draw(st.integers(1, 4))]
    dens = [draw(st.sampled_from([0.1, 0.3, 0.6, 1.0])) for _ in sizes]
    return shape, sizes, dens, draw(st.integers(0, 2**31 - 1))


def _model(shape, sizes, dens, seed) -> torch.nn.Sequential:
    """A float64 MLP with masked weights; some hidden units lose every input (bias-only constants)."""
    rng = np.random.default_rng(seed)
    mods: list[torch.nn.Module] = [torch.nn.Flatten()]
    n_prev = int(np.prod(shape))
    for k, (n, d) in enumerate(zip(sizes, dens)):
        w = rng.normal(size=(n, n_prev)) * (rng.random((n, n_prev)) < d)
        b = rng.normal(size=n) * 0.5
        if k < len(sizes) - 1:
            cut = rng.random(n) < 0.3
            w[cut] = 0.0
            b[cut] = np.abs(b[cut]) * rng.choice([-1.0, 1.0], size=int(cut.sum()))
        lin = torch.nn.Linear(n_prev, n).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if k < len(sizes) - 1:
            mods.append(torch.nn.ReLU())
        n_prev = n
    return torch.nn.Sequential(*mods).eval()


def _torch_values(model: torch.nn.Sequential, g: G.Flowgraph, x: np.ndarray) -> dict[str, float]:
    """Every node's value in torch, by node id (post-activation)."""
    out: dict[str, float] = {}
    a = torch.from_numpy(x.reshape(1, -1))
    for i in range(g.input.size):
        out[g.input.node_id(i)] = float(a[0, i])
    layers = iter(g.layers[1:])
    with torch.no_grad():
        for m in list(model)[1:]:
            a = m(a)
            if isinstance(m, torch.nn.ReLU) or (isinstance(m, torch.nn.Linear) and m is list(model)[-1]):
                layer = next(layers)
                for j in range(layer.size):
                    out[layer.node_id(j)] = float(a[0, j])
    return out


def read_terms(scene: Scene, g: G.Flowgraph) -> tuple[dict[str, dict], dict[str, list[tuple[str, float]]]]:
    """From the display list only: cards (node -> data) and each node's drawn incoming terms (src id, w)."""
    cards: dict[str, dict] = {}
    terms: dict[str, list[tuple[str, float]]] = {}
    inp = g.input
    bars = [k for k, it in enumerate(scene.items) if it[3] == "colour-bar"]
    vmax = float(np.abs(scene.values_of(bars[0])).max()) if bars else None
    for k, (kind, _geo, style, cls, data, _title) in enumerate(scene.items):
        classes = (cls or "").split()
        if kind == "rect" and "node" in classes:
            assert data["node"] not in cards, "a node drawn twice"
            cards[data["node"]] = data
        elif kind == "path" and "edge" in classes:
            terms.setdefault(data["dst"], []).append((data["src"], float(data["w"])))
        elif kind == "text" and "dot" in classes and "src" in data:
            terms.setdefault(data["node"], []).append((data["src"], float(data["w"])))
        elif kind == "image" and "weights" in classes:
            tile = np.asarray(scene.values_of(k))
            assert np.array_equal(style, C.signed_tile(tile, vmax))  # the picture shows these numbers
            for i in np.flatnonzero(tile.reshape(-1)):
                terms.setdefault(data["node"], []).append((inp.node_id(int(i)), float(tile.reshape(-1)[i])))
    return cards, terms


def _act(g: G.Flowgraph, nid: str, z: float) -> float:
    return max(z, 0.0) if g.layer(g.locate(nid)[0]).activation == "relu" else z


@fast_settings(40)
@given(net=nets(), data=st.data())
def test_every_drawn_node_is_its_bias_plus_its_drawn_terms(net, data):
    shape, sizes, dens, seed = net
    model = _model(shape, sizes, dens, seed)
    g = annotate(G.from_torch(model, shape), "unit")
    out = data.draw(st.one_of(st.none(), st.integers(0, sizes[-1] - 1)))
    off = data.draw(st.sampled_from(["mark", "hide"]))
    shared = data.draw(st.booleans())
    rng = np.random.default_rng(seed + 1)
    per_input = data.draw(st.booleans())
    x = rng.random(shape)
    scene = graph_figure(g, output=out, x=x if per_input else None, off=off, shared_scale=shared)
    cards, terms = read_terms(scene, g)
    inp = g.input
    drawn_inputs = {nid for nid in cards if nid.startswith(inp.name)}
    # what is drawn is the live graph (minus hidden always-off units)
    nodes, _ = live_mask(g, None if out is None else [out])
    live = {layer.node_id(int(i)) for layer in g.layers for i in np.flatnonzero(nodes[layer.name])}
    assert set(cards) - drawn_inputs <= live
    if off == "mark":
        assert set(cards) | {n for n in live if n.startswith(inp.name) and len(shape) == 2} == live
        st_ = analyse(g)
        if out is not None:
            n_edges = sum(len(v) for v in terms.values())
            assert n_edges == st_.per_output[out][2]  # the size table's definition is the figure's
    # rebuild every drawn node from its drawn terms; torch is the oracle
    xs = [x] if per_input else [x, rng.random(shape), np.zeros(shape), np.ones(shape)]
    for xv in xs:
        truth = _torch_values(model, g, xv)
        for nid, card in cards.items():
            if nid.startswith(inp.name + "[") or nid.startswith(inp.name + "."):
                continue
            z = float(card["bias"]) + sum(w * truth[src] for src, w in terms.get(nid, []))
            assert _act(g, nid, z) == pytest.approx(truth[nid], rel=1e-9, abs=1e-9), (nid, xv.tolist())
        if per_input:
            # the values the cards show are torch's, and they add up from the display list alone
            shown = {nid: float(c["value"]) for nid, c in cards.items()}
            for nid, v in shown.items():
                assert v == pytest.approx(truth[nid], rel=1e-12, abs=1e-12)
            for nid, card in cards.items():
                if nid.startswith(inp.name):
                    continue
                z = float(card["bias"]) + sum(w * shown.get(src, truth[src] if src.startswith(inp.name) else np.nan)
                                              for src, w in terms.get(nid, []))
                assert _act(g, nid, z) == pytest.approx(shown[nid], rel=1e-9, abs=1e-9)


def test_bias_only_unit_feeding_an_output_is_drawn_and_adds_up():
    # h1.1 has no inputs and relu(0.072) feeds out.0: the figure must draw it, or out.0 would not add up
    w1 = np.zeros((3, 4))
    w1[0, 0], w1[2, 1] = 1.5, -2.0
    w2 = np.array([[0.5, 2.0, 0.0]])
    g = annotate(G.from_arrays([w1, w2], [np.array([0.1, 0.072, 0.3]), np.array([-0.2])], ["relu", "identity"], (2, 2)), "unit")
    scene = graph_figure(g, x=np.array([[0.4, 0.0], [0.0, 0.0]]))
    cards, terms = read_terms(scene, g)
    assert "h1.1" in cards and "constant" in [it[3] for it in scene.items if it[4] and it[4].get("node") == "h1.1"][0]
    assert "h1.2" not in cards  # it feeds nothing
    assert sorted(terms["out.0"]) == [("h1.0", 0.5), ("h1.1", 2.0)]
    assert float(cards["out.0"]["value"]) == pytest.approx(-0.2 + 0.5 * (0.1 + 1.5 * 0.4) + 2.0 * 0.072)
    svg = scene.to_svg()
    assert "constant unit" in svg  # the figure says what the blue card is


def test_shared_scale_tiles_and_colour_bar():
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(4, 36)) * (rng.random((4, 36)) < 0.5)
    w1[1] *= 10  # one unit with large weights: on a shared scale the others fade
    g = annotate(G.from_arrays([w1, rng.normal(size=(2, 4))], [np.ones(4), np.zeros(2)], ["relu", "identity"], (6, 6)), "unit")
    scene = graph_figure(g, shared_scale=True)
    vmax = float(np.abs(w1).max())
    bars = [k for k, it in enumerate(scene.items) if it[3] == "colour-bar"]
    assert len(bars) == 1 and scene.values_of(bars[0]).max() == pytest.approx(vmax)
    for k, it in enumerate(scene.items):
        if it[0] == "image" and it[3] and "weights" in it[3]:
            assert np.array_equal(it[2], C.signed_tile(scene.values_of(k), vmax))
    own = graph_figure(g)
    assert not any(it[3] == "colour-bar" for it in own.items)
