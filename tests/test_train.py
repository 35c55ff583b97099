"""Training: the hand-written backward + fused Adam equal autograd + torch.optim.Adam."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from sparsescope import ConfigError
from sparsescope.data import make_dataset
from sparsescope.models import MLPSpec, build_mlp, init_params
from sparsescope.train import TrainConfig, evaluate_model, fit

from conftest import fast_settings  # noqa: E402


def _tiny(n=300, n_test=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n + n_test, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n + n_test)
    return make_dataset("tiny", x[:n], y[:n], x[n:], y[n:], [str(i) for i in range(10)])


def _reference(spec, params, masks, data, cfg, seed):
    """Plain autograd + torch.optim.Adam, same shuffles and batches."""
    model = build_mlp(spec, params)
    lin = [m for m in model if isinstance(m, torch.nn.Linear)]
    if masks is not None:
        with torch.no_grad():
            for l, n in zip(lin, spec.layer_names):
                l.weight.mul_(masks[n].float())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    x = torch.from_numpy(data.x_train).reshape(len(data.x_train), -1)
    y = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            if masks is not None:
                for l, n in zip(lin, spec.layer_names):
                    l.weight.grad.mul_(masks[n].float())
            opt.step()
    return {f"{n}.{k}": getattr(l, k).detach() for l, n in zip(lin, spec.layer_names) for k in ("weight", "bias")}


@pytest.mark.parametrize("masked", [False, True])
def test_fit_matches_autograd_adam(masked):
    spec = MLPSpec((784, 12, 9, 10))
    params = init_params(spec, 3)
    data = _tiny()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-3)
    masks = None
    if masked:
        g = torch.Generator().manual_seed(0)
        masks = {n: torch.rand(s, generator=g) < 0.4 for n, s in spec.kernel_shapes.items()}
    got = fit(spec, params, masks, data, cfg, seed=11).params
    ref = _reference(spec, params, masks, data, cfg, 11)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=2e-5, rtol=1e-4), k


def test_pruned_weights_stay_exactly_zero_and_inputs_untouched():
    spec = MLPSpec((784, 16, 16, 10))
    params = init_params(spec, 0)
    before = {k: v.clone() for k, v in params.items()}
    g = torch.Generator().manual_seed(1)
    masks = {n: torch.rand(s, generator=g) < 0.1 for n, s in spec.kernel_shapes.items()}
    res = fit(spec, params, masks, _tiny(), TrainConfig(epochs=2), seed=0)
    for n in spec.layer_names:
        w = res.params[f"{n}.weight"]
        assert torch.all(w[~masks[n]] == 0)
        assert torch.count_nonzero(w[masks[n]]) == masks[n].sum()  # survivors trained
        assert not torch.equal(w[masks[n]], params[f"{n}.weight"][masks[n]])
    assert all(torch.equal(before[k], params[k]) for k in params)


def test_fit_is_deterministic_and_records_history():
    spec = MLPSpec((784, 8, 10))
    data = _tiny()
    a = fit(spec, init_params(spec, 0), None, data, TrainConfig(epochs=3), seed=5, snapshot_step=4)
    b = fit(spec, init_params(spec, 0), None, data, TrainConfig(epochs=3), seed=5, snapshot_step=4)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert all(torch.equal(a.snapshot[k], b.snapshot[k]) for k in a.snapshot)
    assert [h["epoch"] for h in a.history] == [1, 2, 3]
    loss, acc = evaluate_model(spec, a.params, data.x_test, data.y_test)
    assert a.history[-1]["test_loss"] == pytest.approx(loss) and a.history[-1]["test_accuracy"] == acc


def test_snapshot_is_weights_after_k_steps():
    spec = MLPSpec((784, 8, 10))
    data = _tiny(n=120)
    k = 2  # batch 60 -> 2 steps per epoch: the snapshot equals the state after epoch 1
    a = fit(spec, init_params(spec, 0), None, data, TrainConfig(epochs=2), seed=1, snapshot_step=k)
    b = fit(spec, init_params(spec, 0), None, data, TrainConfig(epochs=1), seed=1)
    assert all(torch.equal(a.snapshot[key], b.params[key]) for key in b.params)


def test_learns_mnist(mnist5k):
    spec = MLPSpec()
    res = fit(spec, init_params(spec, 0), None, mnist5k, TrainConfig(epochs=2), seed=0)
    assert res.history[-1]["test_accuracy"] > 0.8


@pytest.mark.parametrize("bad", [dict(epochs=-1), dict(batch_size=0), dict(lr=0.0), dict(lr=float("nan")), dict(threads=0)])
def test_bad_train_config(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_shape_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="inputs"):
        fit(MLPSpec((100, 10)), init_params(MLPSpec((100, 10)), 0), None, _tiny(), TrainConfig(epochs=1), seed=0)


def _column_mask(spec, keep_cols, density, seed):
    """Random masks whose layer 1 uses only ``keep_cols`` of the input columns (the rest all pruned)."""
    g = torch.Generator().manual_seed(seed)
    masks = {n: torch.rand(s, generator=g) < density for n, s in spec.kernel_shapes.items()}
    dead = torch.randperm(spec.sizes[0], generator=g)[: spec.sizes[0] - keep_cols]
    masks[spec.layer_names[0]][:, dead] = False
    return masks


@fast_settings(12)
@given(hidden=st.lists(st.integers(1, 12), min_size=0, max_size=3), keep=st.sampled_from([784, 500, 60]),
       density=st.sampled_from([1.0, 0.5, 0.1]), batch=st.integers(7, 40), seed=st.integers(0, 2**16))
def test_fast_path_matches_autograd_over_architectures_and_masks(hidden, keep, density, batch, seed):
    """Any depth (no hidden layer too), dense or masked, with and without layer-1 column compaction,
    a short last batch or not: the flat fast path equals autograd + torch.optim.Adam step for step."""
    from sparsescope.train._flat import kept_columns

    spec = MLPSpec((784, *hidden, 10))
    params = init_params(spec, seed)
    masks = None if keep == 784 and density == 1.0 else _column_mask(spec, keep, density, seed)
    if keep == 60:  # this mask must take the compacted path
        assert kept_columns(masks[spec.layer_names[0]].float(), 784) is not None
    data = _tiny(n=150, seed=seed % 7)
    cfg = TrainConfig(epochs=2, batch_size=batch, lr=1e-3)
    got = fit(spec, params, masks, data, cfg, seed=seed).params
    ref = _reference(spec, params, masks, data, cfg, seed)
    for k in ref:
        assert got[k].shape == ref[k].shape and got[k].is_contiguous()
        torch.testing.assert_close(got[k], ref[k], atol=2e-5, rtol=1e-4)


def test_compacted_fit_keeps_pruned_weights_and_moments_exactly_zero(adam_spy):
    """Layer-1 columns dropped by the compaction come back as exact zeros; every masked weight and
    both of its Adam moments stay exactly 0 through training, and survivors do train."""
    seen = adam_spy
    spec = MLPSpec((784, 16, 12, 10))
    masks = _column_mask(spec, 100, 0.3, 4)
    params = init_params(spec, 2)
    res = fit(spec, params, masks, _tiny(), TrainConfig(epochs=2, batch_size=32), seed=3)
    (adam,) = seen
    kept = masks["h1"].any(0)
    # the flat layout: per layer (out, in + 1), bias last; layer 1 holds only the kept input columns
    expect = [masks["h1"][:, kept], masks["h2"], masks["out"]]
    flat_mask = torch.cat([torch.cat([m, torch.ones(len(m), 1, dtype=torch.bool)], 1).flatten() for m in expect])
    flat = [torch.cat([t.flatten() for t in ts]) for ts in (adam.params, adam.m, adam.v)]
    assert flat[0].shape == flat_mask.shape  # so the columns really were dropped
    for t in flat:
        assert torch.all(t[~flat_mask] == 0)
    for n in spec.layer_names:
        w, m = res.params[f"{n}.weight"], masks[n]
        assert torch.all(w[~m] == 0) and torch.count_nonzero(w[m]) == m.sum()
        assert not torch.equal(w[m], params[f"{n}.weight"][m])
