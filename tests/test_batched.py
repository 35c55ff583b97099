"""Batched multi-ticket training equals separate training (same masks, starts and shuffles) within float tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsescope.models import MLPSpec, init_params
from sparsescope.prune import Mask, random_mask
from sparsescope.runs._store import mask_tensors
from sparsescope.study._batched import fit_batched, train_controls_batched
from sparsescope.train import TrainConfig, fit


def _masks(spec, k):
    dense = Mask.ones(spec.kernel_shapes)
    # different densities per ticket: dense, and random masks pruned to ~50% / ~10% of each layer
    out = [None]
    for d, seed in ((0.5, 1), (0.1, 2))[: k - 1]:
        rng = np.random.default_rng(seed)
        out.append({n: torch.from_numpy(rng.random(s) < d) for n, s in spec.kernel_shapes.items()})
    return out[:k] + [mask_tensors(random_mask(dense, 5))] * max(0, k - 3)


def test_batched_equals_separate(mnist5k):
    spec = MLPSpec((784, 16, 12, 10))
    cfg = TrainConfig(epochs=2, batch_size=64)  # 4000 = 62 x 64 + 32: a short last batch too
    starts = [init_params(spec, s) for s in (0, 1, 2)]
    masks = _masks(spec, 3)
    seeds = [11, 12, 13]
    snapshot = [{k: v.clone() for k, v in p.items()} for p in starts]
    batched = fit_batched(spec, starts, masks, mnist5k, cfg, seeds=seeds)
    for p, q in zip(starts, snapshot):  # inputs untouched
        assert all(torch.equal(p[k], q[k]) for k in p)
    for k in range(3):
        alone = fit(spec, starts[k], masks[k], mnist5k, cfg, seed=seeds[k])
        for name, w in alone.params.items():
            torch.testing.assert_close(batched[k].params[name], w, rtol=0, atol=2e-5)
            if name.endswith("weight") and masks[k] is not None:  # pruned weights stay exactly zero
                assert torch.all(batched[k].params[name][~masks[k][name.split(".")[0]]] == 0)
        for hb, ha in zip(batched[k].history, alone.history):
            assert hb["epoch"] == ha["epoch"]
            assert abs(hb["train_loss"] - ha["train_loss"]) < 1e-4 and abs(hb["test_loss"] - ha["test_loss"]) < 1e-4
            assert abs(hb["test_accuracy"] - ha["test_accuracy"]) <= 2e-3  # at most a borderline image or two
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
        assert ra.metrics["trainer"] == "batched" and ra.metrics["seed"] == rb.metrics["seed"]
        for k in rb.params:
            torch.testing.assert_close(ra.params[k], rb.params[k], rtol=0, atol=2e-5)
        assert ra.metrics["test_accuracy"] == pytest.approx(rb.metrics["test_accuracy"], abs=2e-3)
