"""The run store: resume after a crash gives identical results; corrupt runs are reported."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsescope import ConfigError, RunStoreError
from sparsescope._config import load_config
from sparsescope.runs import RunStore, list_runs, resolve_run, round_flowgraph, run_control, run_experiment


def _assert_same_runs(a: Path, b: Path, rounds: int):
    sa, sb = RunStore(a), RunStore(b)
    assert sa.finished_rounds() == sb.finished_rounds() == list(range(rounds))
    for r in range(rounds):
        ra, rb = sa.read_round(r), sb.read_round(r)
        assert ra.mask.equals(rb.mask)
        assert all(torch.equal(ra.params[k], rb.params[k]) for k in ra.params)
        # tensors on disk are byte-identical too
        for f in ("mask.safetensors", "weights.safetensors"):
            assert (sa.round_dir(r) / f).read_bytes() == (sb.round_dir(r) / f).read_bytes()


def test_round_contents_and_invariants(small_config, tmp_path, mnist5k):
    cfg = load_config(small_config(rounds=3))
    res = run_experiment(cfg, tmp_path / "runs", data=mnist5k)
    store = RunStore(res.path)
    init = store.init_params()
    prev = None
    for r in range(3):
        rec = store.read_round(r)
        m = rec.metrics
        assert m["round"] == r and m["kept_total"] == rec.mask.num_kept
        assert m["weights_left"] == rec.mask.kept() and len(m["history"]) == 1
        assert m["train_path"] == "flat"  # the MLP's hand-written path, recorded beside the masks
        for n in rec.mask.names():
            w = rec.params[f"{n}.weight"]
            assert torch.all(w[~torch.from_numpy(rec.mask[n].copy())] == 0)
            if prev is not None:
                assert not np.any(rec.mask[n] & ~prev.mask[n])
        prev = rec
    manifest = store.manifest()
    assert manifest["data"]["fingerprint"] == mnist5k.fingerprint
    assert set(manifest["versions"]) >= {"torch", "numpy", "sparsescope", "python"}
    assert sorted(init) == sorted(rec.params)


def test_resume_in_process_equals_uninterrupted(small_config, tmp_path, mnist5k):
    cfg = load_config(small_config(rounds=4))
    run_experiment(cfg, tmp_path / "a", data=mnist5k)
    part = run_experiment(cfg, tmp_path / "b", data=mnist5k, stop_after=2)
    assert part.trained_now == [0, 1]
    # a crash mid-write leaves a hidden temporary folder: resume must clean it
    junk = tmp_path / "b" / cfg.run_id / "rounds" / ".002.abc_1234.tmp"
    junk.mkdir()
    (junk / "weights.safetensors").write_bytes(b"half")
    again = run_experiment(cfg, tmp_path / "b", data=mnist5k)
    assert again.trained_now == [2, 3] and not junk.exists()
    _assert_same_runs(tmp_path / "a" / cfg.run_id, tmp_path / "b" / cfg.run_id, 4)
    assert run_experiment(cfg, tmp_path / "b", data=mnist5k).trained_now == []


@pytest.mark.slow
def test_kill_and_resume_with_the_cli(small_config, tmp_path):
    """SIGKILL a real `sparsescope run` mid-way, run it again: same masks and weights."""
    cfg_path = small_config(rounds=12)
    cfg = load_config(cfg_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "sparsescope", "run", str(cfg_path), "--quiet"]
    subprocess.run(cmd + ["--runs-dir", str(tmp_path / "a")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(cmd + ["--runs-dir", str(tmp_path / "b")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rounds = tmp_path / "b" / cfg.run_id / "rounds"
    deadline = time.time() + 60
    while time.time() < deadline and not (rounds / "001").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = RunStore(tmp_path / "b" / cfg.run_id).finished_rounds()
    assert done and len(done) < 12, "the kill should land mid-run"
    out = subprocess.run(cmd + ["--runs-dir", str(tmp_path / "b")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    _assert_same_runs(tmp_path / "a" / cfg.run_id, tmp_path / "b" / cfg.run_id, 12)


def test_same_seed_same_masks_other_seed_differs(small_config, tmp_path, mnist5k):
    a = run_experiment(load_config(small_config(name="s", seed=1, rounds=3)), tmp_path / "a", data=mnist5k)
    b = run_experiment(load_config(small_config(name="s", seed=1, rounds=3)), tmp_path / "b", data=mnist5k)
    c = run_experiment(load_config(small_config(name="s", seed=2, rounds=3)), tmp_path / "c", data=mnist5k)
    assert RunStore(a.path).read_round(2).mask.equals(RunStore(b.path).read_round(2).mask)
    assert not RunStore(a.path).read_round(2).mask.equals(RunStore(c.path).read_round(2).mask)


def test_rewinding_to_init_and_to_step_k(small_config, tmp_path, mnist5k):
    res = run_experiment(load_config(small_config(rounds=2)), tmp_path / "r", data=mnist5k)
    store = RunStore(res.path)
    # round 1 starts from init * mask: re-train it by hand and compare
    from sparsescope.train import fit

    cfg = load_config(small_config(rounds=2))
    rec = store.read_round(1)
    from sparsescope.runs import derive_seed

    masks = {n: torch.from_numpy(rec.mask[n].copy()) for n in rec.mask.names()}
    again = fit(cfg.model, store.init_params(), masks, mnist5k, cfg.train, seed=derive_seed(cfg.seed, "shuffle", 1))
    assert all(torch.equal(again.params[k], rec.params[k]) for k in rec.params)

    late = load_config(small_config(name="late", rounds=3))
    late = type(late)(**{**late.__dict__, "prune": type(late.prune)(**{**late.prune.__dict__, "rewind_step": 5})})
    res = run_experiment(late, tmp_path / "late", data=mnist5k)
    st = RunStore(res.path)
    r0, r2 = st.read_round(0), st.read_round(2)
    assert r0.rewind is not None and st.read_round(1).rewind is None
    # the snapshot is the weights after 5 steps of round 0 ...
    five = fit(late.model, st.init_params(), None, mnist5k,
               type(late.train)(**{**late.train.__dict__}), seed=derive_seed(late.seed, "shuffle", 0), snapshot_step=5)
    assert all(torch.equal(five.snapshot[k], r0.rewind[k]) for k in r0.rewind)
    # ... and round 2 retrains from them (masked), not from init
    masks = {n: torch.from_numpy(r2.mask[n].copy()) for n in r2.mask.names()}
    again = fit(late.model, r0.rewind, masks, mnist5k, late.train, seed=derive_seed(late.seed, "shuffle", 2))
    assert all(torch.equal(again.params[k], r2.params[k]) for k in r2.params)


def test_controls(small_config, tmp_path, mnist5k):
    res = run_experiment(load_config(small_config(rounds=3)), tmp_path / "r", data=mnist5k)
    rec = RunStore(res.path).read_round(2)
    m1 = run_control(res.path, 2, "reinit", data=mnist5k)
    m2 = run_control(res.path, 2, "random-mask", data=mnist5k)
    assert m1["weights_left"] == m2["weights_left"] == rec.mask.kept()
    dirs = RunStore(res.path).control_dirs()
    assert [d.name.split("-r")[0] for d in dirs] == ["random-mask", "reinit"]
    rm = RunStore(res.path).read_round_at(dirs[0], "c")
    assert rm.mask.kept() == rec.mask.kept() and not rm.mask.equals(rec.mask)
    rr = RunStore(res.path).read_round_at(dirs[1], "c")
    assert rr.mask.equals(rec.mask)
    assert run_control(res.path, 2, "reinit", data=mnist5k) == m1  # stored, not retrained
    from sparsescope.runs import derive_seed
    from sparsescope.train import fit

    cfg = load_config(small_config(rounds=3))
    masks = {n: torch.from_numpy(rm.mask[n].copy()) for n in rm.mask.names()}
    want = fit(cfg.model, RunStore(res.path).init_params(), masks, mnist5k, cfg.train,
               seed=derive_seed(cfg.seed, "shuffle", f"control-random-mask-{m2['seed']}", 2))
    assert all(torch.equal(want.params[k], rm.params[k]) for k in rm.params)
    other = run_control(res.path, 2, "reinit", seed=12345, data=mnist5k)
    assert other["seed"] == 12345 and other != m1
    with pytest.raises(ConfigError):
        run_control(res.path, 2, "shuffle", data=mnist5k)


def test_changed_config_or_data_is_refused(small_config, tmp_path, mnist5k):
    cfg = load_config(small_config(rounds=2))
    res = run_experiment(cfg, tmp_path / "r", data=mnist5k)
    man = res.path / "manifest.json"
    doc = json.loads(man.read_text())
    doc["data"]["fingerprint"] = "sha256:0"
    man.write_text(json.dumps(doc))
    with pytest.raises(RunStoreError, match="different data"):
        run_experiment(cfg, tmp_path / "r", data=mnist5k)


def test_corrupt_round_detected(small_config, tmp_path, mnist5k):
    res = run_experiment(load_config(small_config(rounds=2)), tmp_path / "r", data=mnist5k)
    w = res.path / "rounds" / "001" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    with pytest.raises(RunStoreError, match="corrupt or truncated"):
        RunStore(res.path).read_round(1)
    with pytest.raises(RunStoreError):
        round_flowgraph(RunStore(res.path), 1)
    (res.path / "manifest.json").write_text("{")
    with pytest.raises(RunStoreError, match="manifest.json is corrupt"):
        RunStore(res.path).manifest()


def test_list_and_resolve(small_config, tmp_path, mnist5k):
    a = run_experiment(load_config(small_config(name="one", rounds=1)), tmp_path, data=mnist5k)
    b = run_experiment(load_config(small_config(name="two", rounds=1)), tmp_path, data=mnist5k)
    assert [r.run_id for r in list_runs(tmp_path)] == [a.run_id, b.run_id]
    assert resolve_run("tw", tmp_path).path == b.path
    assert resolve_run(str(a.path), tmp_path).path == a.path
    with pytest.raises(RunStoreError, match="no run"):
        resolve_run("three", tmp_path)


def test_round_flowgraph_equals_torch(small_config, tmp_path, mnist5k):
    from sparsescope.graph import evaluate
    from sparsescope.models import build_mlp

    res = run_experiment(load_config(small_config(rounds=3)), tmp_path, data=mnist5k)
    store = RunStore(res.path)
    g = round_flowgraph(store, 2)
    rec = store.read_round(2)
    spec = load_config(small_config(rounds=3)).model
    model = build_mlp(spec, rec.params).double()
    x = mnist5k.x_test[:50].astype(np.float64)
    want = model(torch.from_numpy(x)).detach().numpy()
    assert np.abs(evaluate(g, x).post["out"] - want).max() <= 1e-12
    assert g.num_edges == rec.mask.num_kept - sum(int((rec.params[f"{n}.weight"][torch.from_numpy(rec.mask[n].copy())] == 0).sum()) for n in rec.mask.names())
    assert g.meta["round"] == 2 and g.output.labels == tuple(str(i) for i in range(10))


def test_identical_runs_give_identical_files(small_config, tmp_path, mnist5k):
    """Timings live in timing.json, so everything else of a round is byte-identical."""
    cfg = load_config(small_config(rounds=2))
    a = run_experiment(cfg, tmp_path / "a", data=mnist5k)
    b = run_experiment(cfg, tmp_path / "b", data=mnist5k)
    for r in range(2):
        for f in ("mask.safetensors", "weights.safetensors", "metrics.json"):
            assert (a.path / "rounds" / f"{r:03d}" / f).read_bytes() == (b.path / "rounds" / f"{r:03d}" / f).read_bytes()
    assert a.rounds[0]["train_seconds"] > 0  # timings are still reported


def test_threads_and_controls_do_not_change_the_run(small_config, tmp_path, mnist5k):
    base = load_config(small_config(rounds=2))
    more = load_config(small_config(rounds=2, extra="[controls]\nkinds = ['reinit']\nrounds = [1]\n"))
    assert base.run_id == more.run_id
    run_experiment(base, tmp_path, data=mnist5k)
    res = run_experiment(more, tmp_path, data=mnist5k)
    assert res.trained_now == [] and [d.name[:9] for d in RunStore(res.path).control_dirs()] == ["reinit-r0"]


def test_bad_controls_round_is_refused_before_anything_is_written(small_config, tmp_path, mnist5k):
    cfg = load_config(small_config(rounds=2, extra="[controls]\nkinds = ['reinit']\nrounds = [7]\n"))
    with pytest.raises(ConfigError, match="round 7"):
        run_experiment(cfg, tmp_path / "runs", data=mnist5k)
    assert not (tmp_path / "runs").exists()


def test_second_writer_is_refused(small_config, tmp_path, mnist5k):
    cfg = load_config(small_config(rounds=2))
    res = run_experiment(cfg, tmp_path, data=mnist5k, stop_after=1)
    with RunStore(res.path).lock():
        with pytest.raises(RunStoreError, match="another sparsescope process"):
            run_experiment(cfg, tmp_path, data=mnist5k)


def test_divergence_is_reported_and_not_stored(small_config, tmp_path, mnist5k, monkeypatch):
    from sparsescope.runs import _lottery

    real = _lottery.fit

    def nan_in_round_1(*args, **kw):
        res = real(*args, **kw)
        if kw["seed"] == _lottery.derive_seed(0, "shuffle", 1):
            res.params["h2.weight"][0, 0] = float("nan")
        return res

    monkeypatch.setattr(_lottery, "fit", nan_in_round_1)
    cfg = load_config(small_config(rounds=3))
    with pytest.raises(_lottery.TrainingDiverged, match="round 1: training diverged"):
        run_experiment(cfg, tmp_path, data=mnist5k)
    assert RunStore(tmp_path / cfg.run_id).finished_rounds() == [0]


def test_resolve_by_name_prefers_exact_name(small_config, tmp_path, mnist5k):
    a = run_experiment(load_config(small_config(name="mnist-mlp", rounds=1)), tmp_path, data=mnist5k)
    run_experiment(load_config(small_config(name="mnist-mlp-dense-l1", rounds=1)), tmp_path, data=mnist5k)
    assert resolve_run("mnist-mlp", tmp_path).path == a.path
    with pytest.raises(RunStoreError, match="ambiguous"):
        resolve_run("mnist", tmp_path)
