"""The flowgraph IR, evaluation and JSON: faithful to torch, deterministic, strict on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsescope._errors import GraphError
from sparsescope.analysis import subgraph
from sparsescope.bounds import annotate
from sparsescope.graph import (
    FORMAT,
    VERSION,
    Flowgraph,
    Layer,
    evaluate,
    from_arrays,
    from_dict,
    from_json,
    from_torch,
    to_dict,
    to_json,
)

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)

# Local settings only: no global profile is registered or loaded.
FAST = fast_settings(50)

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}
NP = {torch.float32: np.float32, torch.float64: np.float64}


# -- random pruned MLPs -------------------------------------------------------
@st.composite
def nets(draw, max_hidden=3):
    """(spec): input shape, layer sizes, activations, density mode, seed."""
    if draw(st.booleans()):
        input_shape = (draw(st.integers(1, 7)),)
    else:
        input_shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    hidden = draw(st.lists(st.integers(1, 7), min_size=0, max_size=max_hidden))
    sizes = [*hidden, draw(st.integers(1, 4))]
    acts = [draw(st.sampled_from(["relu", "relu", "identity"])) for _ in hidden] + ["identity"]
    # per layer: density, plus optional all-zero rows / columns / whole layer
    masks = [
        (
            draw(st.sampled_from([0.0, 0.3, 0.6, 1.0])),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for _ in sizes
    ]
    seed = draw(st.integers(0, 2**32 - 1))
    return input_shape, sizes, acts, masks, seed


def make_arrays(spec, dtype=np.float64):
    input_shape, sizes, acts, masks, seed = spec
    rng = np.random.default_rng(seed)
    n_prev = int(np.prod(input_shape))
    weights, biases = [], []
    for size, (density, zero_row, zero_col) in zip(sizes, masks):
        w = rng.normal(size=(size, n_prev)) * rng.uniform(0.3, 1.5)
        m = rng.random((size, n_prev)) < density
        if zero_row:
            m[rng.integers(size)] = False
        if zero_col:
            m[:, rng.integers(n_prev)] = False
        w = np.where(m, w, 0.0).astype(dtype)
        weights.append(w)
        biases.append((rng.normal(size=size) * 0.5).astype(dtype))
        n_prev = size
    return weights, biases, acts


def make_torch(spec, dtype=torch.float64):
    weights, biases, acts = make_arrays(spec, NP[dtype])
    input_shape = spec[0]
    mods: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    for w, b, act in zip(weights, biases, acts):
        lin = nn.Linear(w.shape[1], w.shape[0]).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        mods.append(nn.ReLU() if act == "relu" else nn.Identity())
    return nn.Sequential(*mods).eval()


def torch_values(model, x):
    """Per graph layer name: (pre, post) numpy arrays of every node, via forward hooks."""
    lins = [m for m in model if isinstance(m, nn.Linear)]
    record: dict[str, np.ndarray] = {}
    hooks = []
    for i, lin in enumerate(lins):
        name = "out" if i == len(lins) - 1 else f"h{i + 1}"
        hooks.append(lin.register_forward_hook(lambda m, a, o, name=name: record.__setitem__(name + ":pre", o.detach().numpy().copy())))
    mods = list(model)
    for j, m in enumerate(mods):
        if isinstance(m, (nn.ReLU, nn.Identity)) and j > 0 and isinstance(mods[j - 1], nn.Linear):
            i = lins.index(mods[j - 1])
            name = "out" if i == len(lins) - 1 else f"h{i + 1}"
            hooks.append(m.register_forward_hook(lambda m, a, o, name=name: record.__setitem__(name + ":post", o.detach().numpy().copy())))
    try:
        with torch.no_grad():
            y = model(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    return record, y.numpy()


def assert_faithful(graph, model, x, dtype):
    x = x.astype(NP[dtype])
    ev = evaluate(graph, x)
    rec, y = torch_values(model, x)
    tol = TOL[dtype]
    for layer in graph.layers[1:]:
        assert ev.pre[layer.name].dtype == NP[dtype]
        np.testing.assert_allclose(ev.pre[layer.name], rec[layer.name + ":pre"], rtol=0, atol=tol)
        np.testing.assert_allclose(ev.post[layer.name], rec[layer.name + ":post"], rtol=0, atol=tol)
    np.testing.assert_allclose(ev.post["out"], y, rtol=0, atol=tol)
    np.testing.assert_array_equal(ev.post["in"], x.reshape(x.shape[0], -1))
    return ev


def inputs_for(spec, seed, batch=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, *spec[0])) * 1.5


# -- faithfulness -------------------------------------------------------------
@FAST
@given(spec=nets(), dtype=st.sampled_from([torch.float32, torch.float64]), xseed=st.integers(0, 2**31))
def test_flowgraph_matches_torch_on_every_node(spec, dtype, xseed):
    model = make_torch(spec, dtype)
    graph = from_torch(model, spec[0])
    x = inputs_for(spec, xseed)
    ev = assert_faithful(graph, model, x, dtype)

    # every weight of the model is an edge, every pruned weight is not
    weights, _, _ = make_arrays(spec, NP[dtype])
    assert graph.num_edges == sum(int(np.count_nonzero(w)) for w in weights)
    assert [layer.name for layer in graph.layers] == ["in", *[f"h{i + 1}" for i in range(len(weights) - 1)], "out"]

    # transformations keep the values
    for g2 in (graph.with_meta(run="r1", round=3), annotate(graph), graph.with_bounds(None)):
        ev2 = evaluate(g2, x.astype(NP[dtype]))
        for name in ev.post:
            np.testing.assert_array_equal(ev2.post[name], ev.post[name])
            np.testing.assert_array_equal(ev2.pre[name], ev.pre[name])
    for k in range(graph.output.size):
        sub = subgraph(graph, k)
        assert [layer.shape for layer in sub.layers] == [layer.shape for layer in graph.layers]
        out_k = evaluate(sub, x.astype(NP[dtype])).post["out"][:, k]
        np.testing.assert_allclose(out_k, ev.post["out"][:, k], rtol=0, atol=TOL[dtype])
        _, y = torch_values(model, x.astype(NP[dtype]))
        np.testing.assert_allclose(out_k, y[:, k], rtol=0, atol=TOL[dtype])

    # JSON round trip: byte-identical text, identical evaluation, also with bounds
    for g2 in (graph, annotate(graph).with_meta(run="r", density=0.25, tags=("a", "b"))):
        text = to_json(g2)
        back = from_json(text)
        assert to_json(back) == text
        assert to_json(from_json(text.encode())) == text
        ev3 = evaluate(back, x.astype(NP[dtype]))
        ev4 = evaluate(g2, x.astype(NP[dtype]))
        for name in ev.post:
            np.testing.assert_array_equal(ev3.post[name], ev4.post[name])
            np.testing.assert_array_equal(ev3.pre[name], ev4.pre[name])
        if g2.bounds is not None:
            for part in ("lo", "hi", "pre_lo", "pre_hi"):
                for name in ev.post:
                    np.testing.assert_array_equal(getattr(back.bounds, part)[name], getattr(g2.bounds, part)[name])


@FAST
@given(spec=nets(), xseed=st.integers(0, 2**31))
def test_from_arrays_equals_from_torch_and_input_forms(spec, xseed):
    weights, biases, acts = make_arrays(spec)
    g1 = from_arrays(weights, biases, acts, spec[0])
    g2 = from_torch(make_torch(spec), spec[0])
    assert to_json(g1) == to_json(g2)
    x = inputs_for(spec, xseed, batch=3)
    n = int(np.prod(spec[0]))
    a = evaluate(g1, x).post["out"]
    # (batch, n) and one sample (input shape or flat) are accepted too
    np.testing.assert_allclose(evaluate(g1, x.reshape(3, n)).post["out"], a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(evaluate(g1, x[0]).post["out"][0], a[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(evaluate(g1, x[0].reshape(-1)).post["out"][0], a[0], rtol=0, atol=1e-12)
    # integer inputs are evaluated in float64
    xi = np.round(x).astype(np.int64)
    assert evaluate(g1, xi).post["out"].dtype == np.float64


def test_fully_pruned_network_is_constant_and_faithful():
    spec = ((2, 3), [4, 3], ["relu", "identity"], [(0.0, False, False), (0.0, False, False)], 7)
    for dtype in (torch.float32, torch.float64):
        model = make_torch(spec, dtype)
        graph = from_torch(model, spec[0])
        assert graph.num_edges == 0
        assert_faithful(graph, model, inputs_for(spec, 1), dtype)


def test_node_ids_and_locate():
    spec = ((3, 4), [5, 3], ["relu", "identity"], [(1.0, False, False), (1.0, False, False)], 3)
    weights, biases, acts = make_arrays(spec)
    g = from_arrays(weights, biases, acts, (3, 4), output_labels=["a", "b", "c"])
    ids = list(g.node_ids())
    assert ids[:5] == ["in[0,0]", "in[0,1]", "in[0,2]", "in[0,3]", "in[1,0]"]
    assert len(ids) == len(set(ids)) == g.num_nodes
    for layer in g.layers:
        for i in range(layer.size):
            nid = layer.node_id(i)
            assert g.locate(nid) == (layer.name, i)
            assert g.node_id(layer.name, i) == nid
    assert g.locate("in[2,3]") == ("in", 11)
    assert g.locate("h1.4") == ("h1", 4)
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    ev = evaluate(g, x)
    np.testing.assert_array_equal(ev.value("in[1,2]"), x[:, 1, 2])
    np.testing.assert_array_equal(ev.value("out.0"), ev.post["out"][:, 0])


def test_layer_edges_are_sorted_and_readonly():
    layer = Layer("h1", "affine", (3,), source="in", bias=np.zeros(3), dst=[2, 0, 0], src=[0, 1, 0], weight=[1.0, 2.0, 3.0])
    assert layer.dst.tolist() == [0, 0, 2]
    assert layer.src.tolist() == [0, 1, 0]
    assert layer.weight.tolist() == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError):
        layer.weight[0] = 5.0


# -- determinism and import hygiene --------------------------------------------
def test_same_model_gives_byte_identical_json():
    spec = ((28, 28), [16, 8, 4], ["relu", "relu", "identity"], [(0.1, True, True), (0.5, False, True), (0.7, True, False)], 11)
    texts = set()
    for _ in range(2):
        torch.manual_seed(0)
        g = from_torch(make_torch(spec, torch.float32), (28, 28), meta={"run": "x", "round": 2})
        texts.add(to_json(annotate(g)))
    assert len(texts) == 1
    text = texts.pop()
    assert "\n" not in text and text.isascii()
    doc = json.loads(text)
    assert list(doc) == ["format", "version", "meta", "layers", "bounds"]
    assert doc["format"] == FORMAT and doc["version"] == 1 < VERSION  # no shared weights: still version 1
    assert doc["layers"][0] == {"name": "in", "kind": "input", "shape": [28, 28]}
    assert list(doc["layers"][1]) == ["name", "kind", "shape", "activation", "source", "bias", "edges"]


def test_meta_is_plain_json():
    g = small_graph().with_meta(
        run="r", round=np.int64(3), density=np.float32(0.5), shape=np.array([2, 3]), nan=float("nan"), nested={"a": (1, 2)}
    )
    meta = json.loads(to_json(g))["meta"]
    assert meta == {"run": "r", "round": 3, "density": 0.5, "shape": [2, 3], "nan": None, "nested": {"a": [1, 2]}}
    assert to_json(from_json(to_json(g))) == to_json(g)


def test_import_graph_does_not_import_torch():
    code = (
        "import sys; import sparsescope.graph, sparsescope.bounds, sparsescope.analysis; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr or "importing sparsescope.graph imported torch"


# -- errors -------------------------------------------------------------------
def assert_graph_error(fn, *args, match=None, **kw):
    with pytest.raises(GraphError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    if match:
        assert match in msg, msg
    return msg


def small_graph():
    w1 = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    w2 = np.array([[0.5, 3.0]])
    return from_arrays([w1, w2], [np.zeros(2), np.ones(1)], ["relu", "identity"], (3,))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_weights_are_refused(bad):
    w = np.ones((2, 3))
    w[1, 2] = bad
    assert_graph_error(from_arrays, [w], [np.zeros(2)], ["identity"], (3,), match="NaN or infinite")
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.array([0.0, bad])], ["identity"], (3,), match="NaN or infinite")
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight[0, 0] = bad
    assert_graph_error(from_torch, nn.Sequential(lin), (3,), match="NaN or infinite")


def test_wrong_shapes_are_refused():
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(2)], ["identity"], (4,), match="weight shape")
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(3)], ["identity"], (3,), match="bias shape")
    assert_graph_error(from_arrays, [np.ones(3)], [np.zeros(1)], ["identity"], (3,))
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(2)], ["identity", "relu"], (3,))
    assert_graph_error(from_arrays, [], [], [], (3,))
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(2)], ["tanh"], (3,), match="activation")
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(2)], ["identity"], (3, 0))
    assert_graph_error(from_arrays, [np.ones((2, 3))], [np.zeros(2)], ["identity"], (3,), output_labels=["a"])
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert_graph_error(from_torch, model, (3, 5), match="takes 12 features")
    g = small_graph()
    for x in (np.zeros((2, 4)), np.zeros(4), np.zeros((2, 3, 1)), np.array(["a", "b", "c"]), np.zeros(3, dtype=bool)):
        assert_graph_error(evaluate, g, x)


@pytest.mark.parametrize(
    "model",
    [
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3)),
        lambda: nn.Sequential(nn.Linear(3, 2), nn.Tanh()),
        lambda: nn.Sequential(nn.Linear(3, 2), nn.Dropout()),
        lambda: nn.Sequential(nn.Flatten()),
        lambda: nn.Tanh(),
    ],
)
def test_unknown_or_misplaced_layers_are_refused(model):
    msg = assert_graph_error(from_torch, model(), (3,))
    assert msg


def test_unknown_layer_is_named():
    assert_graph_error(from_torch, nn.Sequential(nn.Conv2d(1, 2, 3)), (3,), match="Conv2d")
    assert_graph_error(from_torch, nn.Sequential(nn.Linear(3, 2), nn.Tanh()), (3,), match="Tanh")


def test_bad_node_ids_are_refused():
    g = from_arrays([np.ones((2, 6))], [np.zeros(2)], ["identity"], (2, 3))
    for bad in ("h9.0", "out.2", "out.-1", "out[2]", "in.3", "in[2,0]", "in[0,3]", "in[0]", "in[0,0,0]", "", "out", "out.x", "1.0", "out[0,0]"):
        assert_graph_error(g.locate, bad)
    assert_graph_error(g.locate, 3)
    for bad in ("h9.0", "out.5"):
        assert_graph_error(evaluate(g, np.zeros((1, 2, 3))).value, bad)
    assert_graph_error(g.layer, "nope")
    assert_graph_error(g.node_id, "out", 2)
    assert_graph_error(g.node_id, "out", -1)
    assert_graph_error(subgraph, g, 2)
    assert_graph_error(subgraph, g, -1)


def test_invalid_layers_and_graphs_are_refused():
    ok = dict(source="in", bias=np.zeros(2), dst=[0], src=[0], weight=[1.0])
    assert_graph_error(Layer, "h 1", "affine", (2,), **ok)
    assert_graph_error(Layer, "h1", "conv", (2,), **ok)
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "weight": [0.0]}, match="weight exactly 0")
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "dst": [0, 0], "src": [1, 1], "weight": [1.0, 2.0]}, match="duplicate")
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "dst": [2]})
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "dst": [-1]})
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "src": [0, 1]})
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "source": None})
    assert_graph_error(Layer, "h1", "affine", (2,), **{**ok, "bias": np.zeros(3)})
    assert_graph_error(Layer, "in", "input", (2,), dst=[0], src=[0], weight=[1.0])
    inp = Layer("in", "input", (3,))
    h = Layer("h1", "affine", (2,), **{**ok, "src": [5]})
    assert_graph_error(Flowgraph, (inp, h), match="source out of range")
    assert_graph_error(Flowgraph, (inp, Layer("h1", "affine", (2,), **{**ok, "source": "h2"})))
    assert_graph_error(Flowgraph, (Layer("h1", "affine", (2,), **ok),))
    assert_graph_error(Flowgraph, ())
    assert_graph_error(Flowgraph, (inp, inp))
    assert_graph_error(Flowgraph, (inp, Layer("x", "input", (2,))))


def _mutations(doc):
    """(description, broken document) pairs from a good document."""
    import copy

    def m(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d

    yield "format", m(lambda d: d.__setitem__("format", "other"))
    yield "no format", m(lambda d: d.pop("format"))
    for v in (3, 0, "1", None, 1.5, True, [1]):
        yield f"version {v!r}", m(lambda d, v=v: d.__setitem__("version", v))
    yield "no version", m(lambda d: d.pop("version"))
    yield "no layers", m(lambda d: d.pop("layers"))
    yield "layers not list", m(lambda d: d.__setitem__("layers", 5))
    yield "layers empty", m(lambda d: d.__setitem__("layers", []))
    yield "layer a string", m(lambda d: d["layers"].__setitem__(1, "h1"))
    yield "layer a list", m(lambda d: d["layers"].__setitem__(1, [1, 2]))
    yield "edges a list", m(lambda d: d["layers"][1].__setitem__("edges", [1, 2]))
    yield "edges a string", m(lambda d: d["layers"][1].__setitem__("edges", "x"))
    yield "shape a number", m(lambda d: d["layers"][0].__setitem__("shape", 3))
    yield "shape strings", m(lambda d: d["layers"][0].__setitem__("shape", ["a"]))
    yield "shape huge", m(lambda d: d["layers"][1].__setitem__("shape", [10**30]))
    yield "shape zero", m(lambda d: d["layers"][1].__setitem__("shape", [0]))
    yield "no name", m(lambda d: d["layers"][1].pop("name"))
    yield "bad kind", m(lambda d: d["layers"][1].__setitem__("kind", "conv"))
    yield "bad activation", m(lambda d: d["layers"][1].__setitem__("activation", "tanh"))
    yield "no source", m(lambda d: d["layers"][1].pop("source"))
    yield "unknown source", m(lambda d: d["layers"][1].__setitem__("source", "zz"))
    yield "source number", m(lambda d: d["layers"][1].__setitem__("source", 3))
    yield "no bias", m(lambda d: d["layers"][1].pop("bias"))
    yield "short bias", m(lambda d: d["layers"][1]["bias"].pop())
    yield "bias strings", m(lambda d: d["layers"][1].__setitem__("bias", ["a", "b"]))
    yield "bias null", m(lambda d: d["layers"][1]["bias"].__setitem__(0, None))
    yield "edge dst out of range", m(lambda d: d["layers"][1]["edges"]["dst"].__setitem__(0, 99))
    yield "edge src out of range", m(lambda d: d["layers"][1]["edges"]["src"].__setitem__(0, 99))
    yield "edge src negative", m(lambda d: d["layers"][1]["edges"]["src"].__setitem__(0, -1))
    yield "edge huge index", m(lambda d: d["layers"][1]["edges"]["src"].__setitem__(0, 10**30))
    yield "edge lengths", m(lambda d: d["layers"][1]["edges"]["weight"].pop())
    yield "zero weight", m(lambda d: d["layers"][1]["edges"]["weight"].__setitem__(0, 0.0))
    yield "labels count", m(lambda d: d["layers"][-1].__setitem__("labels", ["a", "b"]))
    yield "duplicate layer", m(lambda d: d["layers"].append(d["layers"][1]))
    yield "second input", m(lambda d: d["layers"].insert(1, d["layers"][0]))
    yield "meta not object", m(lambda d: d.__setitem__("meta", [1, 2]))
    yield "bounds not object", m(lambda d: d.__setitem__("bounds", [1]))
    yield "bounds no box", m(lambda d: d["bounds"].pop("box"))
    yield "bounds layer missing", m(lambda d: d["bounds"]["layers"].pop("h1"))
    yield "bounds layers list", m(lambda d: d["bounds"].__setitem__("layers", [1]))
    yield "bounds entry list", m(lambda d: d["bounds"]["layers"].__setitem__("h1", [1]))
    yield "bounds short", m(lambda d: d["bounds"]["layers"]["h1"]["lo"].pop())
    yield "bounds strings", m(lambda d: d["bounds"]["layers"]["h1"].__setitem__("hi", ["x", "y"]))
    yield "bounds lo > hi", m(lambda d: d["bounds"]["layers"]["h1"].__setitem__("lo", [1e9, 1e9]))


def good_doc():
    g = from_arrays(
        [np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]]), np.array([[0.5, 3.0]])],
        [np.zeros(2), np.ones(1)],
        ["relu", "identity"],
        (3,),
        output_labels=["yes"],
        meta={"run": "abc"},
    )
    return to_dict(annotate(g))


@pytest.mark.parametrize("what,doc", list(_mutations(good_doc())), ids=[w for w, _ in _mutations(good_doc())])
def test_malformed_documents_are_refused(what, doc):
    assert_graph_error(from_dict, doc)
    assert_graph_error(from_json, json.dumps(doc))


def test_wrong_version_message():
    doc = good_doc()
    doc["version"] = 3
    assert_graph_error(from_dict, doc, match="unsupported flowgraph version")


def test_version_1_documents_are_still_read():
    """A graph without version-2 features is written as version 1 and reads back the same."""
    g = annotate(small_graph())
    doc = to_dict(g)
    assert doc["version"] == 1
    back = from_dict(doc)
    assert to_json(back) == to_json(g)


def test_truncated_and_garbage_json_is_refused():
    text = to_json(annotate(small_graph()))
    assert from_json(text) is not None
    cuts = sorted(set(np.random.default_rng(0).integers(0, len(text), 60).tolist()) | {0, 1, len(text) - 1})
    for cut in cuts:
        assert_graph_error(from_json, text[:cut])
    for garbage in ("", "null", "[]", "42", '"x"', "{", "{}", b"\xff\xfe\x00", "NaN", "not json"):
        assert_graph_error(from_json, garbage)
    assert_graph_error(from_json, text.replace("1.0", "NaN", 1))
    assert_graph_error(from_json, text.replace("1.0", "Infinity", 1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats(allow_nan=True) | st.text(max_size=3),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_fuzzed_documents_load_or_raise_graph_error(data):
    doc = good_doc()
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        parent.pop(path[-1])
    else:
        parent[path[-1]] = data.draw(json_values)
    try:
        g = from_dict(doc)
    except GraphError as exc:
        assert "\n" not in str(exc)
        return
    # whatever loads is a valid graph that evaluates and serialises
    evaluate(g, np.zeros(g.input.shape))
    assert to_json(from_json(to_json(g))) == to_json(g)
