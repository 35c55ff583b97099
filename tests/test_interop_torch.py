"""from_torch: sequential models, models pruned with torch.nn.utils.prune and parametrize, state dicts
from safetensors and weights-only .pt files (never unpickled); the model is only read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.nn.utils import parametrize, prune

from sparsescope import GraphError
from sparsescope.graph import evaluate
from sparsescope.interop import from_torch, load_state_dict


def _net(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).to(dtype)


def _x(n=40, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 3, 4)) * 2


def _assert_faithful(graph, model, x, tol=1e-12):
    with torch.no_grad():
        want = model(torch.from_numpy(x).to(next(model.parameters()).dtype)).numpy()
    got = evaluate(graph, x.astype(want.dtype)).post["out"]
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_torch_prune_reads_orig_times_mask_and_leaves_the_model_alone():
    m = _net()
    prune.l1_unstructured(m[1], "weight", amount=0.6)
    prune.random_unstructured(m[3], "weight", amount=0.5)
    prune.l1_unstructured(m[5], "bias", amount=0.34)
    with torch.no_grad():  # changed after pruning, before any forward: the hook recomputes weight from these
        m[1].weight_orig.mul_(1.5)
    before = _snapshot(m)
    g = from_torch(m, (3, 4))
    _assert_faithful(g, m, _x())
    assert g.layer("h1").num_edges == int(m[1].weight_mask.sum())
    assert g.layer("h2").num_edges == int(m[3].weight_mask.sum())
    after = m.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


class _Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w):
        return w * self.mask


class _Scale(nn.Module):
    def forward(self, w):
        return 0.5 * w


def test_parametrize_reads_the_parametrized_weight():
    m = _net(1)
    gen = torch.Generator().manual_seed(3)
    parametrize.register_parametrization(m[1], "weight", _Mask((torch.rand(8, 12, generator=gen) < 0.3).double()))
    parametrize.register_parametrization(m[3], "weight", _Scale())
    parametrize.register_parametrization(m[3], "weight", _Mask((torch.rand(6, 8, generator=gen) < 0.5).double()))
    g = from_torch(m, (3, 4))
    _assert_faithful(g, m, _x(seed=2))
    assert g.layer("h1").num_edges == int(torch.count_nonzero(m[1].weight))


def test_pruned_cnn_with_pool():
    torch.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 3, 2, stride=2),
                      nn.ReLU(), nn.Flatten(), nn.Linear(12, 5)).double()
    prune.l1_unstructured(m[0], "weight", amount=0.5)
    parametrize.register_parametrization(m[3], "weight", _Mask((torch.rand(3, 4, 2, 2) < 0.5).double()))
    g = from_torch(m, (2, 8, 8))
    assert [layer.name for layer in g.layers] == ["in", "c1", "p1", "c2", "out"]
    assert g.layer("c1").shape == (4, 8, 8) and g.layer("c1").node_id(5) == "c1[0,0,5]"
    # every edge of a conv layer carries the kernel weight its id names
    for name, conv in (("c1", m[0]), ("c2", m[3])):
        layer = g.layer(name)
        kernel = conv.weight.detach().numpy().reshape(-1)
        np.testing.assert_array_equal(layer.weight, kernel[layer.weight_id])
    _assert_faithful(g, m, np.random.default_rng(3).normal(size=(10, 2, 8, 8)))


def test_float32_model():
    m = _net(2, torch.float32)
    prune.l1_unstructured(m[3], "weight", amount=0.7)
    _assert_faithful(from_torch(m, (3, 4)), m, _x().astype(np.float32), tol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 2)),                                    # ReLU on the input
    lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 2)),        # ReLU twice
    lambda: nn.Sequential(nn.Linear(3, 4), nn.Flatten(), nn.Linear(4, 2), nn.Identity()),  # Flatten between
    lambda: nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Dropout(0.5), nn.Linear(4, 2)),
    lambda: nn.Linear(3, 2),                                                               # a bare Linear
    lambda: nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1)),
])
def test_supported_arrangements_are_faithful(make):
    torch.manual_seed(0)
    m = make().double().eval()
    g = from_torch(m)  # input shape from the first Linear
    _assert_faithful(g, m, np.random.default_rng(0).normal(size=(30, 3)))


def test_linear_on_each_row():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(15, 2)).double()
    g = from_torch(m, (5, 4))
    assert g.layer("h1").shape == (5, 3)
    _assert_faithful(g, m, np.random.default_rng(0).normal(size=(10, 5, 4)))


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x) * 2


@pytest.mark.parametrize("make,match", [
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Tanh()), "Tanh"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Dropout()).train(), "training mode"),
    (lambda: _Custom(), "torch.onnx.export"),
    (lambda: nn.Sequential(nn.Flatten(0), nn.Linear(3, 2)), "batch axis"),
])
def test_unsupported_models_are_one_line(make, match):
    with pytest.raises(GraphError) as info:
        from_torch(make(), (3,))
    assert match in str(info.value) and "\n" not in str(info.value)


# -- weights from files ----------------------------------------------------------------------
def test_state_dict_of_a_pruned_model_from_pt_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    pruned = _net(4)
    prune.l1_unstructured(pruned[1], "weight", amount=0.8)
    prune.l1_unstructured(pruned[5], "weight", amount=0.5)
    torch.save(pruned.state_dict(), tmp_path / "w.pt")
    save_file({k: v.contiguous() for k, v in pruned.state_dict().items()}, str(tmp_path / "w.safetensors"))
    plain = _net(99)  # same architecture, other weights, not pruned
    before = _snapshot(plain)
    for name in ("w.pt", "w.safetensors"):
        g = from_torch(plain, (3, 4), state_dict=tmp_path / name)
        _assert_faithful(g, pruned, _x(seed=5))
        assert g.layer("h1").num_edges == int(pruned[1].weight_mask.sum())
    assert all(torch.equal(before[k], plain.state_dict()[k]) for k in before)  # loaded into a copy
    # into a model pruned the same way, the names match directly
    also = _net(98)
    prune.identity(also[1], "weight")
    prune.identity(also[5], "weight")
    _assert_faithful(from_torch(also, (3, 4), state_dict=load_state_dict(tmp_path / "w.pt")), pruned, _x(seed=6))


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_objects_are_never_run(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"w": Payload()}, fh)
    torch.save({"weight": Payload()}, tmp_path / "evil2.pt")
    for f in (p, tmp_path / "evil2.pt"):
        with pytest.raises(GraphError) as info:
            load_state_dict(f)
        assert "\n" not in str(info.value)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize("content,match", [
    (b"garbage", "not a readable"),
    (b"", "not a readable"),
])
def test_corrupt_weight_files(tmp_path, content, match):
    for suffix in (".pt", ".safetensors"):
        p = tmp_path / f"bad{suffix}"
        p.write_bytes(content)
        with pytest.raises(GraphError, match=match):
            load_state_dict(p)


def test_state_dict_that_does_not_fit_or_has_nan(tmp_path):
    m = _net()
    sd = m.state_dict()
    for change, match in ((("1.weight", torch.zeros(3, 3, dtype=torch.float64)), "'1.weight' has shape (3, 3)"),
                          (("3.bias", torch.full((6,), float("nan"), dtype=torch.float64)), "'3.bias' has NaN"),
                          (("9.weight", torch.zeros(2)), "unused entries ['9.weight']")):
        bad = dict(sd)
        bad[change[0]] = change[1]
        with pytest.raises(GraphError, match=match.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            from_torch(m, (3, 4), state_dict=bad)
    missing = dict(sd)
    del missing["5.weight"]
    with pytest.raises(GraphError, match="no entry '5.weight'"):
        from_torch(m, (3, 4), state_dict=missing)
    with pytest.raises(GraphError, match="must be .safetensors"):
        p = tmp_path / "w.npz"
        p.write_bytes(b"x")
        load_state_dict(p)


def test_state_dict_of_a_parametrized_model():
    m = _net(5)
    gen = torch.Generator().manual_seed(4)
    parametrize.register_parametrization(m[3], "weight", _Mask((torch.rand(6, 8, generator=gen) < 0.4).double()))
    other = _net(6)
    parametrize.register_parametrization(other[3], "weight", _Mask(torch.ones(6, 8, dtype=torch.float64)))
    g = from_torch(other, (3, 4), state_dict=m.state_dict())  # the mask buffer comes from the state dict too
    _assert_faithful(g, m, _x(seed=7))
    assert g.layer("h2").num_edges == int(torch.count_nonzero(m[3].weight))
