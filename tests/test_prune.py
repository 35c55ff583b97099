"""Pruning invariants: exact counts, magnitude order, masks only shrink, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsescope import ConfigError
from sparsescope.prune import Mask, PruneConfig, count_to_prune, planned_counts, prune, random_mask

SHAPES = {"h1": (6, 10), "h2": (5, 6), "out": (3, 5)}


@st.composite
def weights_and_mask(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ties = draw(st.booleans())
    w, m = {}, {}
    for n, s in SHAPES.items():
        # integer-valued weights make many exact ties in magnitude
        w[n] = (rng.integers(-3, 4, s) if ties else rng.normal(size=s)).astype(np.float32)
        m[n] = rng.random(s) < draw(st.floats(0.0, 1.0))
    return w, Mask(m)


def _check_magnitude_order(w, old, new, names):
    kept = np.concatenate([np.abs(w[n][new[n]]) for n in names])
    pruned = np.concatenate([np.abs(w[n][old[n] & ~new[n]]) for n in names])
    if kept.size and pruned.size:
        assert kept.min() >= pruned.max()


@settings(max_examples=150, deadline=None)
@given(weights_and_mask(), st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.9]), st.sampled_from([0.0, 0.2, 0.37]))
def test_layerwise_invariants(wm, r1, r2):
    w, mask = wm
    cfg = PruneConfig(rates={"h1": r1, "h2": r2, "out": 0.1}, rounds=3)
    new = prune(w, mask, cfg)
    for n in SHAPES:
        alive = int(mask[n].sum())
        rate = cfg.rates.get(n, 0.0)
        assert int(new[n].sum()) == alive - count_to_prune(rate, alive)  # exact count
        assert not np.any(new[n] & ~mask[n])  # masks only shrink
        _check_magnitude_order(w, mask, new, [n])  # per layer
    assert prune(w, mask, cfg).equals(new)  # deterministic
    if r1 == 0.0:
        assert np.array_equal(new["h1"], mask["h1"])  # a layer at rate 0 is untouched


@settings(max_examples=100, deadline=None)
@given(weights_and_mask(), st.sampled_from([0.1, 0.2, 0.5]))
def test_global_invariants(wm, rate):
    w, mask = wm
    cfg = PruneConfig(strategy="global", rate=rate, layers=("h1", "h2"), rounds=2)
    new = prune(w, mask, cfg)
    alive = int(mask["h1"].sum() + mask["h2"].sum())
    assert int(new["h1"].sum() + new["h2"].sum()) == alive - count_to_prune(rate, alive)
    _check_magnitude_order(w, mask, new, ["h1", "h2"])  # one threshold across layers
    assert np.array_equal(new["out"], mask["out"])  # excluded layer untouched
    for n in SHAPES:
        assert not np.any(new[n] & ~mask[n])


def test_tie_breaking_is_by_position():
    w = {"h1": np.ones((2, 3), np.float32), "h2": np.ones((1, 2), np.float32), "out": np.ones((1, 1), np.float32)}
    mask = Mask.ones({"h1": (2, 3), "h2": (1, 2), "out": (1, 1)})
    new = prune(w, mask, PruneConfig(rates={"h1": 0.5}, rounds=2))
    assert new["h1"].tolist() == [[False, False, False], [True, True, True]]


def test_global_tie_breaking_goes_by_layer_then_position():
    shapes = {"h1": (1, 3), "h2": (1, 2), "out": (1, 1)}
    w = {n: np.ones(s, np.float32) for n, s in shapes.items()}
    mask = Mask.ones(shapes)
    # layers listed out of model order: the model order still decides ties
    new = prune(w, mask, PruneConfig(strategy="global", rate=0.5, layers=("h2", "h1"), rounds=2))
    assert new["h1"].tolist() == [[False, False, False]] and new["h2"].tolist() == [[True, True]]
    assert new["out"].tolist() == [[True]]


def test_inputs_not_modified():
    rng = np.random.default_rng(0)
    w = {n: rng.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    mask = Mask.ones(SHAPES)
    before = {n: w[n].copy() for n in w}
    prune(w, mask, PruneConfig(rates={"h1": 0.5}, rounds=2))
    assert all(np.array_equal(before[n], w[n]) for n in w)
    assert mask.num_kept == sum(a * b for a, b in SHAPES.values())
    with pytest.raises(ValueError):
        mask["h1"][0, 0] = False  # read-only


def test_count_is_exact_rational():
    assert count_to_prune(0.2, 25088) == 5018  # 5017.6 -> 5018
    assert count_to_prune(0.1, 5) == 1  # 0.5 rounds half up exactly (0.1 read as 1/10)
    assert count_to_prune(0.0, 100) == 0


def test_planned_counts_and_target_density():
    totals = {"h1": 25088, "h2": 1024, "out": 320}
    plan = planned_counts(totals, PruneConfig(rates={"h1": 0.2, "h2": 0.2, "out": 0.1}, target_density=0.02))
    assert len(plan) == 19 and plan[-1] / 26432 <= 0.02 < plan[-2] / 26432 and plan[-1] == 519
    # a fixed number of rounds may prune nothing at all (e.g. seeds-only repeats)
    assert planned_counts(totals, PruneConfig(rates={}, rounds=3)) == [26432] * 3
    with pytest.raises(ConfigError, match="unreachable"):
        planned_counts(totals, PruneConfig(rates={"h1": 0.0, "h2": 0.2, "out": 0.1}, target_density=0.02))


def test_random_mask_keeps_counts():
    rng = np.random.default_rng(1)
    like = Mask({n: rng.random(s) < 0.3 for n, s in SHAPES.items()})
    a, b = random_mask(like, 7), random_mask(like, 7)
    assert a.equals(b) and a.kept() == like.kept()
    assert not random_mask(like, 8).equals(a)


@pytest.mark.parametrize("bad", [
    dict(rates={"h1": 1.0}, rounds=2), dict(rates={"h1": -0.1}, rounds=2), dict(rates={"h1": "x"}, rounds=2),
    dict(rates={}, rounds=0), dict(rates={}), dict(rates={}, rounds=2, target_density=0.1),
    dict(strategy="random", rounds=2), dict(rates={}, rounds=2, rewind_step=-1),
    dict(rates={"h1": True}, rounds=2), dict(rates={}, rounds=True), dict(strategy="global", layers=("h1", "h1"), rounds=2),
])
def test_bad_prune_config(bad):
    with pytest.raises(ConfigError):
        PruneConfig(**bad)


def test_nan_weights_rejected():
    w = {n: np.zeros(s, np.float32) for n, s in SHAPES.items()}
    w["h2"][0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        prune(w, Mask.ones(SHAPES), PruneConfig(rates={"h1": 0.2}, rounds=2))
