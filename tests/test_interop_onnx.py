"""from_onnx: torch -> ONNX (legacy and dynamo exporters) -> flowgraph equals torch; every op rule vs
the onnx reference evaluator; labels, determinism, bounds over user boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import fast_settings
from onnx_models import export, node, onnx_model, reference, save, torch_out
from sparsescope.bounds import annotate
from sparsescope.graph import evaluate, from_json, to_json
from sparsescope.interop import annotate_box, from_onnx, from_torch, parse_box

F32_TOL = 1e-6


def _mlp(seed: int, sizes: list[int], flat_input: bool, density: float = 1.0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = [] if flat_input else [torch.nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    m = torch.nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for lin in m:
            if isinstance(lin, torch.nn.Linear):
                lin.weight.mul_(torch.rand(lin.weight.shape, generator=gen) < density)
    return m.eval()


def _assert_roundtrip(model, in_shape, path, dynamo, *, dynamic_batch=False, seed=0):
    example = torch.zeros((1, *in_shape))
    export(model, example, path, dynamo=dynamo, dynamic_batch=dynamic_batch)
    graph = from_onnx(path)
    x = np.random.default_rng(seed).normal(size=(64, *in_shape)).astype(np.float32) * 2
    got = evaluate(graph, x.reshape(len(x), -1)).post["out"]
    want = torch_out(model, x)
    err = float(np.max(np.abs(got - want)))
    assert err <= F32_TOL, err
    assert got.dtype == np.float32
    # every nonzero weight of the torch model is one edge
    if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):  # (a conv makes an edge per position)
        nz = sum(int(torch.count_nonzero(p)) for n, p in model.named_parameters() if n.endswith("weight"))
        assert graph.num_edges == nz
    return graph, err


@fast_settings(12)
@given(
    hidden=st.lists(st.integers(1, 12), min_size=0, max_size=3),
    n_out=st.integers(1, 5),
    image=st.booleans(),
    density=st.sampled_from([1.0, 0.5, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_legacy_export_roundtrip_equals_torch(tmp_path_factory, hidden, n_out, image, density, seed):
    in_shape = (1, 3, 4) if image else (7,)
    n_in = int(np.prod(in_shape))
    model = _mlp(seed, [n_in, *hidden, n_out], flat_input=not image, density=density)
    path = tmp_path_factory.mktemp("legacy") / "m.onnx"
    graph, _ = _assert_roundtrip(model, in_shape, path, dynamo=False, seed=seed)
    names = [layer.name for layer in graph.layers]
    assert names == ["in", *[f"h{i + 1}" for i in range(len(hidden))], "out"]
    assert graph.input.shape == ((3, 4) if image else (7,))  # the batch axis and a single channel dropped
    # the same graph as reading the torch model directly (weights bit-identical, same edges)
    direct = from_torch(model, graph.input.shape)
    for a, b in zip(graph.layers[1:], direct.layers[1:]):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert a.activation == b.activation


@pytest.fixture(scope="module")
def dynamo_graphs(tmp_path_factory):
    """The default (dynamo) exporter, which is slow per call: a few models exported once."""
    pytest.importorskip("onnxscript")
    root = tmp_path_factory.mktemp("dynamo")
    cases = {}
    for name, model, in_shape, dyn in (
        ("mlp_image", _mlp(3, [16, 9, 7, 4], flat_input=False, density=0.6), (1, 4, 4), False),
        ("mlp_flat_dynbatch", _mlp(4, [10, 6, 3], flat_input=True), (10,), True),
        ("cnn", _cnn(5, channels=1, density=0.5), (1, 12, 12), False),
        ("cnn_rgb_dynbatch", _cnn(6, channels=2, stride=2, padding=0), (2, 12, 12), True),
    ):
        cases[name] = _assert_roundtrip(model, in_shape, root / f"{name}.onnx", True, dynamic_batch=dyn)
    return cases


def _cnn(seed: int, channels: int = 1, density: float = 1.0, stride: int = 1, padding: int = 1) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 3, 3, stride=stride, padding=padding), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(3, 4, 2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    m(torch.zeros(1, channels, 12, 12))  # materialise the lazy Linear
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in m:
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                layer.weight.mul_(torch.rand(layer.weight.shape, generator=gen) < density)
    return m.eval()


@fast_settings(8)
@given(channels=st.sampled_from([1, 2]), density=st.sampled_from([1.0, 0.4]), stride=st.sampled_from([1, 2]),
       padding=st.sampled_from([0, 1]), seed=st.integers(0, 2**16))
def test_legacy_export_cnn_roundtrip_equals_torch(tmp_path_factory, channels, density, stride, padding, seed):
    model = _cnn(seed, channels, density, stride, padding)
    path = tmp_path_factory.mktemp("cnn") / "m.onnx"
    graph, _ = _assert_roundtrip(model, (channels, 12, 12), path, dynamo=False, seed=seed)
    assert [layer.name for layer in graph.layers] == ["in", "c1", "p1", "c2", "out"]
    assert graph.input.shape == ((12, 12) if channels == 1 else (channels, 12, 12))
    assert graph.layer("c1").weight_shape == (3, channels, 3, 3) and graph.layer("p1").weight_shape == (2, 2)
    direct = from_torch(model, (channels, 12, 12))
    for a, b in zip(graph.layers[1:], direct.layers[1:]):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.weight_id if a.weight_id is not None else [], b.weight_id if b.weight_id is not None else [])


def test_dynamo_export_roundtrip_equals_torch(dynamo_graphs):
    g, err = dynamo_graphs["mlp_image"]
    assert err <= F32_TOL
    # the default exporter flattens with Reshape(allowzero=1), which onnx2torch cannot read
    assert any("view" in o or "Reshape" in o for o in sum(g.meta["layers"].values(), [])) or g.input.shape == (4, 4)
    for name in ("mlp_flat_dynbatch", "cnn", "cnn_rgb_dynbatch"):
        assert dynamo_graphs[name][1] <= F32_TOL, name
    assert [layer.name for layer in dynamo_graphs["cnn"][0].layers] == ["in", "c1", "p1", "c2", "out"]


class _ViewNet(torch.nn.Module):
    """``x.view(x.size(0), -1)``: with a dynamic batch the legacy exporter emits Shape/Gather/Concat."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(12, 5), torch.nn.Linear(5, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.view(x.size(0), -1))))


def test_legacy_dynamic_batch_shape_arithmetic_is_folded(tmp_path):
    torch.manual_seed(0)
    m = _ViewNet().eval()
    path = tmp_path / "view.onnx"
    export(m, torch.zeros(1, 3, 4), path, dynamo=False, dynamic_batch=True)
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Shape" in ops and "Concat" in ops  # the case this test is about
    g = from_onnx(path)
    x = np.random.default_rng(1).normal(size=(20, 3, 4)).astype(np.float32)
    assert np.max(np.abs(evaluate(g, x).post["out"] - torch_out(m, x))) <= F32_TOL


# -- each op rule against the onnx reference evaluator, in float64 -------------------------
def _rng_w(*shape, seed=0):
    w = np.random.default_rng(seed).normal(size=shape)
    w[np.abs(w) < 0.3] = 0.0  # some pruned weights
    return w


GEMM_CASES = [
    dict(transB=1), dict(transB=0), dict(transB=1, alpha=0.5, beta=-2.0), dict(transA=1, transB=1),
]


@pytest.mark.parametrize("attrs", GEMM_CASES)
def test_gemm_attributes(tmp_path, attrs):
    ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
    w = _rng_w(4, 6) if tb else _rng_w(6, 4)
    nodes = [node("Reshape", ["x", "col" if ta else "row"], ["r"]), node("Gemm", ["r", "w", "b"], ["y"], **attrs)]
    inits = {"w": w, "b": _rng_w(4, seed=1), "col": np.array([6, 1]), "row": np.array([1, 6])}
    path = save(onnx_model(nodes, inits, [1, 6]), tmp_path / "gemm.onnx")
    x = np.random.default_rng(2).normal(size=(9, 6))
    got = evaluate(from_onnx(path), x).post["out"]
    np.testing.assert_allclose(got, reference(path, x), rtol=0, atol=1e-12)


def test_gemm_with_data_as_b(tmp_path):
    a = _rng_w(3, 5)
    m = onnx_model([node("Gemm", ["a", "x"], ["y"], transB=1)], {"a": a}, [1, 5])
    path = save(m, tmp_path / "gemm_b.onnx")
    x = np.random.default_rng(3).normal(size=(4, 5))
    g = from_onnx(path)
    np.testing.assert_allclose(evaluate(g, x).post["out"], reference(path, x), rtol=0, atol=1e-12)


def test_matmul_add_relu_reshape_chain(tmp_path):
    nodes = [
        node("Reshape", ["x", "s0"], ["f"], allowzero=0),
        node("MatMul", ["f", "w1"], ["m1"]),
        node("Add", ["m1", "b1"], ["a1"]),
        node("Relu", ["a1"], ["r1"]),
        node("Identity", ["r1"], ["i1"]),
        node("Reshape", ["i1", "s1"], ["z"], allowzero=1),  # allowzero=1 without zeros: a plain reshape
        node("Flatten", ["z"], ["fz"], axis=1),
        node("MatMul", ["fz", "w2"], ["m2"]),
        node("Sub", ["m2", "c2"], ["y"]),
    ]
    inits = {"s0": np.array([0, -1]), "w1": _rng_w(12, 8), "b1": _rng_w(8, seed=4), "s1": np.array([1, 2, 4]),
             "w2": _rng_w(8, 3, seed=5), "c2": _rng_w(1, 3, seed=6)}
    path = save(onnx_model(nodes, inits, [1, 3, 4]), tmp_path / "chain.onnx")
    g = from_onnx(path)
    assert [layer.name for layer in g.layers] == ["in", "h1", "out"]
    assert g.layer("h1").activation == "relu"
    x = np.random.default_rng(7).normal(size=(11, 3, 4))
    np.testing.assert_allclose(evaluate(g, x).post["out"], reference(path, x), rtol=0, atol=1e-12)


def test_relu_on_the_input_and_constant_shift(tmp_path):
    nodes = [node("Relu", ["x"], ["r"]), node("Add", ["c", "r"], ["a"]), node("Relu", ["a"], ["y"])]
    path = save(onnx_model(nodes, {"c": np.array([-0.5, 0.25, 1.0])}, [1, 3]), tmp_path / "shift.onnx")
    g = from_onnx(path)
    x = np.random.default_rng(8).normal(size=(30, 3))
    np.testing.assert_allclose(evaluate(g, x).post["out"], reference(path, x), rtol=0, atol=1e-12)


def test_matmul_per_row_and_weight_on_the_left(tmp_path):
    nodes = [node("MatMul", ["x", "w"], ["m"]), node("MatMul", ["a", "m"], ["y"])]
    inits = {"w": _rng_w(4, 3), "a": _rng_w(2, 5, seed=9)}
    path = save(onnx_model(nodes, inits, [1, 5, 4]), tmp_path / "rows.onnx")  # a 5x4 sample
    g = from_onnx(path)
    assert g.input.shape == (5, 4) and g.output.shape == (2, 3)
    x = np.random.default_rng(10).normal(size=(6, 5, 4))
    np.testing.assert_allclose(evaluate(g, x).post["out"], reference(path, x), rtol=0, atol=1e-12)


def test_squeeze_unsqueeze_dropout_and_folded_constants(tmp_path):
    nodes = [
        node("Unsqueeze", ["x", "ax"], ["u"]),          # (1, 1, 6)
        node("Squeeze", ["u", "ax"], ["s"]),            # (1, 6)
        node("Dropout", ["s"], ["d"]),
        node("Shape", ["d"], ["sh"]),
        node("Gather", ["sh", "zero"], ["n0"], axis=0),
        node("Unsqueeze", ["n0", "ax0"], ["n1"]),
        node("Concat", ["n1", "minus1"], ["spec"], axis=0),
        node("Reshape", ["d", "spec"], ["r"]),
        node("Gemm", ["r", "w", "b"], ["y"], transB=1),
    ]
    inits = {"ax": np.array([1]), "zero": np.array(0), "ax0": np.array([0]), "minus1": np.array([-1]),
             "w": _rng_w(2, 6), "b": np.zeros(2)}
    path = save(onnx_model(nodes, inits, ["N", 6]), tmp_path / "fold.onnx")
    g = from_onnx(path)
    x = np.random.default_rng(11).normal(size=(5, 6))
    np.testing.assert_allclose(evaluate(g, x).post["out"], reference(path, x), rtol=0, atol=1e-12)


# -- properties of the import --------------------------------------------------------------
def test_import_is_deterministic_and_survives_json(tmp_path):
    path = tmp_path / "m.onnx"
    export(_mlp(5, [16, 8, 3], flat_input=False, density=0.5), torch.zeros(1, 1, 4, 4), path, dynamo=False)
    a, b = to_json(from_onnx(path)), to_json(from_onnx(path))
    assert a == b
    g = from_json(a)
    assert g.meta["format"] == "onnx" and g.meta["model"] == "m.onnx"
    assert g.meta["layers"]["h1"] == ["/1/Gemm", "/2/Relu"]


def test_labels_reach_the_layers(tmp_path):
    path = tmp_path / "m.onnx"
    export(_mlp(6, [4, 3, 2], flat_input=True), torch.zeros(1, 4), path, dynamo=False)
    g = from_onnx(path, input_labels=list("abcd"), output_labels=["no", "yes"])
    assert g.input.labels == tuple("abcd") and g.output.labels == ("no", "yes")


@pytest.mark.parametrize("box", ["unit", "-1,2", "data"])
def test_bounds_over_user_boxes_contain_sampled_values(tmp_path, box):
    path = tmp_path / "m.onnx"
    model = _mlp(7, [16, 12, 6, 3], flat_input=False)
    export(model, torch.zeros(1, 1, 4, 4), path, dynamo=False)
    rng = np.random.default_rng(12)
    data = rng.uniform(-0.5, 1.5, size=(200, 4, 4)).astype(np.float32).astype(np.float64)  # as a user's .npy
    spec = parse_box(box)
    g = annotate_box(from_onnx(path), spec, samples=data.reshape(200, -1) if box == "data" else None)
    if box == "data":
        x = data
    else:
        lo, hi = (0.0, 1.0) if box == "unit" else (spec.lo, spec.hi)
        x = rng.uniform(lo, hi, size=(300, 4, 4))
        x[:100] = np.where(rng.random((100, 4, 4)) < 0.5, lo, hi)  # corners of the box
    for dtype in (np.float64, np.float32):
        ev = evaluate(g, x.astype(dtype))
        for layer in g.layers:
            v = ev.post[layer.name]
            assert np.all(v >= g.bounds.lo[layer.name]) and np.all(v <= g.bounds.hi[layer.name]), layer.name
    # and the torch model itself, in float32
    b32 = annotate(g, "custom", lo=g.bounds.lo["in"], hi=g.bounds.hi["in"], eval_dtype=np.float32).bounds
    y = torch_out(model, x.astype(np.float32)[:, None])
    assert np.all(y >= b32.lo["out"]) and np.all(y <= b32.hi["out"])
