"""The compiled direct-convolution training path (train/_directconv.py, _convkernels.cpp) against autograd.

One step's logits and gradients are compared with ``torch.autograd`` in
float64 over random sequential specs (conv strides, paddings, kernel sizes,
more output channels than one register block, average pools, linear heads,
maps as outputs), random masks, inputs and batch sizes (padding lanes); whole
fits are compared with the autograd path in float32, must keep pruned weights
and their Adam moments exactly zero, and must be deterministic.  Without a
compiler the path falls back to autograd, bit for bit.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from sparsescope import ConfigError
from sparsescope.data import make_dataset
from sparsescope.models import forward, init_params, sequential_from_table
from sparsescope.train import TrainConfig, fit
from sparsescope.train import _ckernels
from sparsescope.train._autograd import fit_sequential
from sparsescope.train._directconv import DirectStepper

from conftest import fast_settings  # noqa: E402

torch.set_num_threads(1)


@st.composite
def specs(draw):
    """A random SequentialSpec: conv / avgpool blocks, then a flat head or a map as the output."""
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(4, 12)), draw(st.integers(4, 12))
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            layers.append({"type": "avgpool", "kernel": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 3))})
        else:
            wide = draw(st.integers(0, 5)) == 0  # more output channels than one register block (6)
            layers.append({"type": "conv", "channels": draw(st.integers(7, 14)) if wide else draw(st.integers(1, 6)),
                           "kernel": draw(st.integers(1, 4)), "stride": draw(st.integers(1, 2)),
                           "padding": draw(st.integers(0, 2))})
        if draw(st.booleans()):
            layers.append({"type": "relu"})
    if draw(st.integers(0, 3)):
        layers.append({"type": "flatten"})
        if draw(st.booleans()):
            layers += [{"type": "linear", "features": draw(st.integers(1, 6))}, {"type": "relu"}]
        layers.append({"type": "linear", "features": draw(st.integers(2, 5))})
    try:
        spec = sequential_from_table({"kind": "sequential", "input_shape": [c, h, w], "layers": layers})
    except ConfigError:
        assume(False)
    assume(spec.num_outputs <= 400)
    return spec


def _autograd(spec, params, x, y):
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits = forward(spec, leaves, x).flatten(1)
    grads = torch.autograd.grad(F.cross_entropy(logits, y), list(leaves.values()))
    return logits.detach(), dict(zip(leaves, grads))


@fast_settings(60)
@given(specs(), st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([1, 5, 16, 17, 40]), st.integers(0, 2**31))
def test_step_equals_autograd_in_float64(spec, density, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {k: v.double() for k, v in init_params(spec, seed % 1000).items()}
    masks = {}
    for n, shape in spec.kernel_shapes.items():
        m = (torch.rand(shape, generator=gen) < density).double() if density < 1 else None
        masks[n] = m
        if m is not None:
            params[f"{n}.weight"].mul_(m)
    x = torch.randn(batch, *spec.input_shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, spec.num_outputs, (batch,), generator=gen)
    stepper = DirectStepper(spec, params, masks)
    grads = {k: torch.full_like(v, float("nan")) for k, v in params.items()}
    onehot = F.one_hot(y, spec.num_outputs).double()
    for _ in range(2):  # the second step reuses every buffer
        logits = stepper.step(x, onehot, grads)
    ref_logits, ref = _autograd(spec, params, x, y)
    assert torch.allclose(logits, ref_logits, rtol=1e-10, atol=1e-12)
    for k, g in ref.items():
        if k.endswith(".weight") and masks[k[:-7]] is not None:
            g = g * masks[k[:-7]]
            assert torch.all(grads[k][masks[k[:-7]] == 0] == 0), k  # pruned: exactly zero
        assert torch.allclose(grads[k], g, rtol=1e-9, atol=1e-12), k


@pytest.mark.parametrize("table", [
    {"kind": "sequential", "input_shape": [7], "layers": [
        {"type": "linear", "features": 5}, {"type": "relu"}, {"type": "linear", "features": 3}]},
    {"kind": "sequential", "input_shape": [2, 5, 5], "layers": [
        {"type": "flatten"}, {"type": "linear", "features": 4}, {"type": "relu"}, {"type": "linear", "features": 3}]},
])
def test_flat_and_flatten_first_specs_equal_autograd(table):
    spec = sequential_from_table(table)
    params = {k: v.double() for k, v in init_params(spec, 4).items()}
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, *spec.input_shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, spec.num_outputs, (6,), generator=gen)
    grads = {k: torch.zeros_like(v) for k, v in params.items()}
    logits = DirectStepper(spec, params, {n: None for n in spec.layer_names}).step(
        x, F.one_hot(y, spec.num_outputs).double(), grads)
    ref_logits, ref = _autograd(spec, params, x, y)
    assert torch.allclose(logits, ref_logits, rtol=1e-12, atol=1e-14)
    for k, g in ref.items():
        assert torch.allclose(grads[k], g, rtol=1e-10, atol=1e-14), k


STUDY = {"kind": "sequential", "input_shape": [1, 28, 28], "layers": [
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "flatten"}, {"type": "linear", "features": 10}]}


def _data(n=150, n_test=20, seed=0, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n + n_test, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, n + n_test)
    return make_dataset("tiny", x[:n], y[:n], x[n:], y[n:], [str(i) for i in range(10)])


@pytest.mark.parametrize("masked", [False, True])
def test_direct_fit_equals_autograd_fit(masked, adam_spy):
    spec = sequential_from_table(STUDY)
    params = init_params(spec, 1)
    gen = torch.Generator().manual_seed(5)
    masks = {n: torch.rand(s, generator=gen) < 0.4 for n, s in spec.kernel_shapes.items()} if masked else None
    cfg = TrainConfig(epochs=2, batch_size=32, lr=2e-3)  # 150 images: the last batch of each epoch is smaller
    data = _data()
    fast = fit(spec, params, masks, data, cfg, seed=3, snapshot_step=4)  # the default: direct kernels
    adam = adam_spy[-1]
    slow = fit_sequential(spec, params, masks, data, cfg, 3, 4, None, path="autograd")
    for k in slow.params:
        assert torch.allclose(fast.params[k], slow.params[k], atol=2e-5, rtol=1e-4), k
        assert torch.allclose(fast.snapshot[k], slow.snapshot[k], atol=2e-5, rtol=1e-4), k
    for a, b in zip(fast.history, slow.history):
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=0.051)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
    if masked:
        for i, n in enumerate(spec.layer_names):
            off = ~masks[n]
            assert torch.all(fast.params[f"{n}.weight"][off] == 0)
            assert torch.all(adam.m[2 * i][off] == 0) and torch.all(adam.v[2 * i][off] == 0)
    assert fast.train_cpu_seconds > 0


def test_direct_fit_is_deterministic():
    spec = sequential_from_table(STUDY)
    params = init_params(spec, 0)
    data = _data(n=90)
    cfg = TrainConfig(epochs=1, batch_size=30)
    a = fit_sequential(spec, params, None, data, cfg, 7, None, None, path="direct")
    b = fit_sequential(spec, params, None, data, cfg, 7, None, None, path="direct")
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k]), k
    assert a.history == b.history


@pytest.mark.parametrize("how", ["turned off", "compiler fails"])
def test_without_kernels_training_falls_back_to_autograd(how, monkeypatch, tmp_path):
    monkeypatch.setattr(_ckernels, "_state", {})
    monkeypatch.setenv("SPARSESCOPE_KERNEL_CACHE", str(tmp_path))
    if how == "turned off":
        monkeypatch.setenv("SPARSESCOPE_CONV_KERNELS", "0")
    else:
        monkeypatch.setenv("CXX", "false")  # exits 1 without building anything
    assert _ckernels.kernels() is None
    assert ("SPARSESCOPE_CONV_KERNELS=0" if how == "turned off" else "failed") in _ckernels.status()
    assert not list(tmp_path.iterdir())  # no half-built library left behind
    spec = sequential_from_table(STUDY)
    data = _data(n=60)
    cfg = TrainConfig(epochs=1, batch_size=30)
    got = fit(spec, init_params(spec, 0), None, data, cfg, seed=2)
    ref = fit_sequential(spec, init_params(spec, 0), None, data, cfg, 2, None, None, path="autograd")
    for k in ref.params:
        assert torch.equal(got.params[k], ref.params[k]), k  # the autograd path, bit for bit


def test_a_damaged_cached_library_is_built_again(monkeypatch, tmp_path):
    real = _ckernels.build()  # the real library, built once for the whole suite
    fake = tmp_path / "fake-cxx"  # a "compiler" that copies it, so this test does not spend a build
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo fake 1.0; exit 0; }\n'
                    'while [ "$1" != -o ]; do shift; done\ncp "%s" "$2"\n' % real)
    fake.chmod(0o755)
    monkeypatch.setattr(_ckernels, "_state", {})
    monkeypatch.setenv("SPARSESCOPE_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", str(fake))
    path = _ckernels.library_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a shared object")
    stale = path.parent / ".build-old.so"
    stale.write_bytes(b"left by a killed build")
    os.utime(stale, (0, 0))
    assert _ckernels.kernels() is not None, _ckernels.status()
    assert path.read_bytes() == real.read_bytes() and not stale.exists()
