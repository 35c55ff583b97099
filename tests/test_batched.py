"""Batched multi-ticket training equals separate training (same masks, starts and shuffles) bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsescope.models import MLPSpec, init_params
from sparsescope.prune import Mask, random_mask
from sparsescope.runs._store import TIMING_KEYS, mask_tensors
from sparsescope.study import fit_batched, train_controls_batched
from sparsescope.train import TrainConfig, fit


def _masks(spec, k):
    dense = Mask.ones(spec.kernel_shapes)
    # different densities per ticket: dense, and random masks pruned to ~50% / ~10% of each layer
    out = [None]
    for d, seed in ((0.5, 1), (0.1, 2))[: k - 1]:
        rng = np.random.default_rng(seed)
        out.append({n: torch.from_numpy(rng.random(s) < d) for n, s in spec.kernel_shapes.items()})
    return out[:k] + [mask_tensors(random_mask(dense, 5))] * max(0, k - 3)


def test_batched_equals_separate_bit_for_bit(mnist5k):
    spec = MLPSpec((784, 16, 12, 10))
    cfg = TrainConfig(epochs=2, batch_size=64)  # 4000 = 62 x 64 + 32: a short last batch too
    starts = [init_params(spec, s) for s in (0, 1, 2)]
    masks = _masks(spec, 3)
    seeds = [11, 12, 13]
    snaps = [None, 5, 0]
    snapshot = [{k: v.clone() for k, v in p.items()} for p in starts]
    batched = fit_batched(spec, starts, masks, mnist5k, cfg, seeds=seeds, snapshot_steps=snaps)
    for p, q in zip(starts, snapshot):  # inputs untouched
        assert all(torch.equal(p[k], q[k]) for k in p)
    # the same tickets in another grouping and order: nothing depends on the company a ticket keeps
    regrouped = fit_batched(spec, [starts[2], starts[0]], [masks[2], masks[0]], mnist5k, cfg, seeds=[13, 11],
                            snapshot_steps=[0, None])
    for k in range(3):
        alone = fit(spec, starts[k], masks[k], mnist5k, cfg, seed=seeds[k], snapshot_step=snaps[k])
        for name, w in alone.params.items():
            assert torch.equal(batched[k].params[name], w), (k, name)
            if name.endswith("weight") and masks[k] is not None:  # pruned weights stay exactly zero
                assert torch.all(batched[k].params[name][~masks[k][name.split(".")[0]]] == 0)
        assert batched[k].history == alone.history  # train and test metrics too, float for float
        if snaps[k] is None:
            assert batched[k].snapshot is None
        else:
            assert all(torch.equal(batched[k].snapshot[n], alone.snapshot[n]) for n in alone.snapshot)
    for got, k in zip(regrouped, (2, 0)):
        assert all(torch.equal(got.params[n], batched[k].params[n]) for n in got.params)
    # a different shuffle seed changes the result: the seeds really are per ticket
    other = fit_batched(spec, starts[:1], masks[:1], mnist5k, cfg, seeds=[99])[0]
    assert not torch.allclose(other.params["h1.weight"], batched[0].params["h1.weight"])


def test_batched_controls_match_run_control(small_config, tmp_path):
    from sparsescope import load_config
    from sparsescope.runs import RunStore, run_control, run_experiment

    cfg = load_config(small_config(rounds=3))
    res = run_experiment(cfg, tmp_path / "a")
    run_experiment(cfg, tmp_path / "b")
    for kind in ("reinit", "random-mask"):
        assert train_controls_batched(str(tmp_path / "a" / res.run_id), kind, [1, 2]) == 2
        assert train_controls_batched(str(tmp_path / "a" / res.run_id), kind, [1, 2]) == 0  # kept, not retrained
        for r in (1, 2):
            run_control(tmp_path / "b" / res.run_id, r, kind)
    a, b = RunStore(tmp_path / "a" / res.run_id), RunStore(tmp_path / "b" / res.run_id)
    assert [p.name for p in a.control_dirs()] == [p.name for p in b.control_dirs()]
    for pa, pb in zip(a.control_dirs(), b.control_dirs()):
        ra, rb = a.read_round_at(pa, "a"), b.read_round_at(pb, "b")
        assert all(np.array_equal(ra.mask[n], rb.mask[n]) for n in ra.mask.names())
        untimed = lambda m: {k: v for k, v in m.items() if k not in TIMING_KEYS}  # noqa: E731
        assert untimed(ra.metrics) == untimed(rb.metrics)  # no trace of the batching: the same metrics, float for float
        assert all(torch.equal(ra.params[k], rb.params[k]) for k in rb.params)
        assert (pa / "weights.safetensors").read_bytes() == (pb / "weights.safetensors").read_bytes()


def _assert_same(got, alone):
    assert all(torch.equal(got.params[n], alone.params[n]) for n in alone.params)
    assert got.history == alone.history
    assert (got.snapshot is None) == (alone.snapshot is None)
    if alone.snapshot is not None:
        assert all(torch.equal(got.snapshot[n], alone.snapshot[n]) for n in alone.snapshot)


@pytest.mark.parametrize("seeds", [[7] * 4, [7, 8, 9, 10]], ids=["shared-order", "own-orders"])
@pytest.mark.parametrize("sizes", [(784, 16, 12, 10), (784, 10), (784, 9, 7, 5, 10)])
def test_shared_order_takes_the_wide_product_and_still_equals_separate(mnist5k, sizes, seeds, monkeypatch):
    """Tickets with one seed share their batches (layer 1 as one wide mm), others gather theirs
    (bmm); one ticket whose mask leaves few input columns goes to the single path's compacted
    layer 1; odd widths put the per-ticket blocks off 64-byte lines unless padded; all equal fit bit for bit."""
    from sparsescope.study import _batched
    from sparsescope.train._flat import kept_columns

    spec = MLPSpec(sizes)
    cfg = TrainConfig(epochs=1, batch_size=48)  # 5000 images: a short last batch of 8
    starts = [init_params(spec, s) for s in (3, 4, 5, 6)]
    masks = _masks(spec, 3)
    few = {n: m.clone() for n, m in masks[2].items()}
    few["h1" if len(sizes) > 2 else "out"][:, 100:] = False  # 100 of 784 input columns left
    assert kept_columns(few["h1" if len(sizes) > 2 else "out"].float(), 784) is not None
    masks = masks + [few]
    wide = []

    class Spy(_batched._Buffers):
        def __init__(self, net, b, shared):
            super().__init__(net, b, shared)
            wide.append(shared and self.wide_ok)

    monkeypatch.setattr(_batched, "_Buffers", Spy)
    got = fit_batched(spec, starts, masks, mnist5k, cfg, seeds=seeds, snapshot_steps=[3, None, None, 0])
    if len(sizes) > 2 and sizes[1] == 16 and len(set(seeds)) == 1:  # this layout's wide products agree here
        assert set(wide) == {True}
    for k in range(4):
        _assert_same(got[k], fit(spec, starts[k], masks[k], mnist5k, cfg, seed=seeds[k],
                                 snapshot_step=[3, None, None, 0][k]))
