"""Sequential (conv) models: config, autograd training vs torch.optim.Adam, per-layer prune targets,
the lottery driver and run store on a conv net, and its round flowgraph vs torch."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sparsescope import ConfigError, load_config
from sparsescope._config import from_dict, from_manifest
from sparsescope.data import make_dataset
from sparsescope.graph import evaluate
from sparsescope.models import SequentialSpec, build_model, forward, init_params, sequential_from_table
from sparsescope.prune import Mask, PruneConfig, planned_counts, prune
from sparsescope.runs import RunStore, resolve_run, round_flowgraph, run_control, run_experiment
from sparsescope.train import TrainConfig, evaluate_model, fit
from sparsescope.train._autograd import fit_sequential

torch.set_num_threads(1)

STUDY_LAYERS = [
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "conv", "channels": 6, "kernel": 3}, {"type": "relu"},
    {"type": "flatten"}, {"type": "linear", "features": 10},
]
SMALL_LAYERS = [
    {"type": "conv", "channels": 3, "kernel": 5, "stride": 2}, {"type": "relu"},
    {"type": "conv", "channels": 4, "kernel": 3, "padding": 1}, {"type": "relu"},
    {"type": "avgpool", "kernel": 2}, {"type": "flatten"}, {"type": "linear", "features": 10},
]


def spec_of(layers, shape=(1, 28, 28)) -> SequentialSpec:
    return sequential_from_table({"kind": "sequential", "input_shape": list(shape), "layers": layers})


def test_study_cnn_spec():
    spec = load_config("configs/mnist-cnn.toml").model
    assert spec.layer_names == ("c1", "c2", "c3", "out")
    assert {n: math.prod(s) for n, s in spec.kernel_shapes.items()} == {"c1": 54, "c2": 324, "c3": 324, "out": 29040}
    assert spec.kernel_shapes["out"] == (10, 2904)
    assert spec.output_shape == (10,)


@pytest.mark.parametrize("layers, message", [
    ([{"type": "conv", "channels": 2, "kernel": 3}, {"type": "linear", "features": 10}], "flatten"),
    ([{"type": "conv", "channels": 2, "kernel": 40}], "does not fit"),
    ([{"type": "relu"}, {"type": "conv", "channels": 2, "kernel": 3}], "must follow"),
    ([{"type": "conv", "channels": 2, "kernel": 3, "dilation": 2}], "unknown key"),
    ([{"type": "maxpool", "kernel": 2}], "type must be one of"),
    ([{"type": "conv", "channels": 0, "kernel": 3}], "channels"),
    ([{"type": "conv", "channels": 2, "kernel": 3, "name": "in"}], "name"),
    ([{"type": "conv", "channels": 2, "kernel": 3, "name": "a"}, {"type": "conv", "channels": 2, "kernel": 3, "name": "a"}], "twice"),
    ([{"type": "flatten"}], "at least one"),
    ("conv", "non-empty list"),
])
def test_bad_sequential_specs(layers, message):
    with pytest.raises(ConfigError, match=message):
        spec_of(layers)


def test_config_round_trip_and_mlp_configs_unchanged():
    doc = {"name": "c", "model": {"kind": "sequential", "input_shape": [1, 28, 28], "layers": SMALL_LAYERS},
           "prune": {"rates": {"c1": 0.2, "out": 0.2}, "targets": {"c1": 10, "out": 0.05}}}
    cfg = from_dict(doc)
    manifest = {"config": cfg.to_dict()}
    again = from_manifest(manifest)
    assert again.identity() == cfg.identity() and again.run_id == cfg.run_id
    assert again.model == cfg.model and cfg.model.layer_names == ("c1", "c2", "out")
    # an MLP config's dict has neither a model kind nor prune targets: its run id is what it was
    mlp = from_dict({"name": "m", "model": {"sizes": [784, 8, 10]}, "prune": {"rates": {"h1": 0.2}, "rounds": 2}})
    assert "kind" not in mlp.to_dict()["model"] and "targets" not in mlp.to_dict()["prune"]
    with pytest.raises(ConfigError, match="unknown key model.sizes"):
        from_dict({"model": {"kind": "sequential", "sizes": [1, 2], "input_shape": [1], "layers": []}})
    with pytest.raises(ConfigError, match="unknown layer"):
        from_dict({"model": {"kind": "sequential", "input_shape": [1, 28, 28], "layers": SMALL_LAYERS},
                   "prune": {"rates": {"h1": 0.2}, "rounds": 2}})


def _tiny(n=120, n_test=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n + n_test, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n + n_test)
    return make_dataset("tiny", x[:n], y[:n], x[n:], y[n:], [str(i) for i in range(10)])


def _reference(spec, params, masks, data, cfg, seed):
    """nn.Sequential + autograd + torch.optim.Adam, same shuffles and batches."""
    model = build_model(spec, params)
    named = {n: getattr(model, n) for n in spec.layer_names}
    if masks is not None:
        with torch.no_grad():
            for n, m in named.items():
                m.weight.mul_(masks[n].float())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    x = torch.from_numpy(data.x_train).reshape(len(data.x_train), *spec.input_shape)
    y = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            if masks is not None:
                for n, m in named.items():
                    m.weight.grad.mul_(masks[n].float())
            opt.step()
    return {f"{n}.{k}": getattr(m, k).detach() for n, m in named.items() for k in ("weight", "bias")}


@pytest.mark.parametrize("path", ["direct", "autograd"])
@pytest.mark.parametrize("masked", [False, True])
def test_sequential_fit_matches_torch_adam(masked, path):
    spec = spec_of(SMALL_LAYERS)
    params = init_params(spec, 3)
    data = _tiny()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=2e-3)
    masks = None
    if masked:
        g = torch.Generator().manual_seed(0)
        masks = {n: torch.rand(s, generator=g) < 0.5 for n, s in spec.kernel_shapes.items()}
    got = fit_sequential(spec, params, masks, data, cfg, 11, None, None, path=path).params
    ref = _reference(spec, params, masks, data, cfg, 11)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=3e-5, rtol=1e-4), k


def test_masked_weights_and_adam_moments_stay_exactly_zero(adam_spy):
    seen = adam_spy
    spec = spec_of(SMALL_LAYERS)
    params = init_params(spec, 1)
    before = {k: v.clone() for k, v in params.items()}
    g = torch.Generator().manual_seed(2)
    masks = {n: torch.rand(s, generator=g) < 0.3 for n, s in spec.kernel_shapes.items()}
    res = fit(spec, params, masks, _tiny(), TrainConfig(epochs=1, batch_size=16), seed=0)
    adam = seen[-1]
    for i, n in enumerate(spec.layer_names):
        off = ~masks[n]
        assert torch.all(res.params[f"{n}.weight"][off] == 0)
        assert torch.all(adam.m[2 * i][off] == 0) and torch.all(adam.v[2 * i][off] == 0)
        assert torch.any(res.params[f"{n}.weight"][masks[n]] != before[f"{n}.weight"][masks[n]])
    for k in params:
        assert torch.equal(params[k], before[k])  # inputs untouched


def test_autograd_fit_learns_mnist(mnist5k):
    spec = spec_of([{"type": "conv", "channels": 4, "kernel": 5, "stride": 2}, {"type": "relu"},
                    {"type": "flatten"}, {"type": "linear", "features": 10}])
    res = fit(spec, init_params(spec, 0), None, mnist5k, TrainConfig(epochs=1, lr=3e-3), seed=0)
    assert res.history[-1]["test_accuracy"] > 0.8
    loss, acc = evaluate_model(spec, res.params, mnist5k.x_test, mnist5k.y_test)
    assert acc == res.history[-1]["test_accuracy"]


def test_prune_targets_stop_each_layer():
    cfg = PruneConfig(rates={"c1": 0.2, "c2": 0.2, "c3": 0.2, "out": 0.3},
                      targets={"c1": 6, "c2": 23, "c3": 23, "out": 135})
    counts = planned_counts({"c1": 54, "c2": 324, "c3": 324, "out": 29040}, cfg)
    assert counts[0] == 29742 and counts[-1] == 6 + 23 + 23 + 135
    rng = np.random.default_rng(0)
    shapes = {"c1": (6, 1, 3, 3), "c2": (6, 6, 3, 3), "c3": (6, 6, 3, 3), "out": (10, 2904)}
    mask = Mask.ones(shapes)
    for r in range(1, len(counts)):
        w = {n: rng.normal(size=s) for n, s in shapes.items()}
        new = prune(w, mask, cfg)
        assert new.num_kept == counts[r]
        for n in shapes:
            assert new.kept()[n] >= cfg.targets[n]
            assert not np.any(new[n] & ~mask[n])  # masks only shrink
        mask = new
    assert mask.kept() == {"c1": 6, "c2": 23, "c3": 23, "out": 135}
    # a density target is a count of that layer
    dens = PruneConfig(rates={"out": 0.5}, targets={"out": 0.01})
    assert planned_counts({"out": 1000}, dens)[-1] == 10
    with pytest.raises(ConfigError, match="no target"):
        PruneConfig(rates={"c1": 0.2, "out": 0.2}, targets={"c1": 3})
    with pytest.raises(ConfigError, match="layerwise"):
        PruneConfig(strategy="global", rate=0.2, rounds=2, targets={"c1": 3})


CNN_TOML = """
name = "tinycnn"
seed = {seed}
[data]
dataset = "mnist5k"
[model]
kind = "sequential"
input_shape = [1, 28, 28]
layers = [
  {{ type = "conv", channels = 3, kernel = 5, stride = 2 }},
  {{ type = "relu" }},
  {{ type = "conv", channels = 3, kernel = 3 }},
  {{ type = "relu" }},
  {{ type = "flatten" }},
  {{ type = "linear", features = 10 }},
]
[train]
epochs = 1
batch_size = 100
lr = 3e-3
[prune]
rates = {{ c1 = 0.3, c2 = 0.3, out = 0.5 }}
targets = {{ c1 = 20, c2 = 40, out = 300 }}
rewind_step = {rewind}
[controls]
kinds = ["reinit", "random-mask"]
rounds = [1]
"""


def _cnn_config(tmp_path, seed=0, rewind=0):
    p = tmp_path / f"cnn-{seed}-{rewind}.toml"
    p.write_text(CNN_TOML.format(seed=seed, rewind=rewind))
    return load_config(p)


def test_conv_lottery_run_store_resume_and_flowgraph(tmp_path, mnist5k):
    cfg = _cnn_config(tmp_path, rewind=3)
    totals = {n: math.prod(s) for n, s in cfg.model.kernel_shapes.items()}
    n_rounds = len(planned_counts(totals, cfg.prune))
    part = run_experiment(cfg, tmp_path / "a", data=mnist5k, stop_after=2)
    assert part.trained_now == [0, 1]
    full = run_experiment(cfg, tmp_path / "a", data=mnist5k)
    assert full.trained_now == list(range(2, n_rounds))
    ref = run_experiment(cfg, tmp_path / "b", data=mnist5k)
    sa, sb = RunStore(full.path), RunStore(ref.path)
    last = sa.read_round(n_rounds - 1)
    assert last.mask.kept() == {"c1": 20, "c2": 40, "out": 300}
    assert last.mask["c1"].shape == (3, 1, 5, 5)
    for r in range(n_rounds):
        a, b = sa.read_round(r), sb.read_round(r)
        assert a.mask.equals(b.mask)
        for k in a.params:
            assert torch.equal(a.params[k], b.params[k]), (r, k)
            if k.endswith(".weight"):
                assert torch.all(a.params[k][~torch.from_numpy(a.mask[k[:-7]].copy())] == 0)
    # survivors were rewound to step 3 of round 0: round 1 trains from there
    assert sa.read_round(0).rewind is not None
    # controls ran, with the round's per-layer counts
    ctl = sorted(p.name for p in sa.control_dirs())
    assert [c.split("-r")[0] for c in ctl] == ["random-mask", "reinit"]
    again = run_control(full.path, 1, "reinit")
    assert again["weights_left"] == sa.read_round(1).metrics["weights_left"]
    # the round's flowgraph is the stored torch model, on real test images
    g = round_flowgraph(resolve_run(full.path), n_rounds - 1)
    spec = cfg.model
    params = {k: v.double() * (torch.from_numpy(last.mask[k[:-7]].copy()) if k.endswith(".weight") else 1)
              for k, v in last.params.items()}
    x = mnist5k.x_test[:20].astype(np.float64)
    with torch.no_grad():
        want = forward(spec, params, torch.from_numpy(x).reshape(-1, 1, 28, 28)).numpy()
    np.testing.assert_allclose(evaluate(g, x).post["out"], want, atol=1e-12, rtol=0)
    assert g.layer("c1").weight_shape == (3, 1, 5, 5) and g.bounds is not None
    np.testing.assert_allclose(g.meta["test_accuracy"], sa.read_round(n_rounds - 1).metrics["test_accuracy"])


def test_conv_config_that_does_not_fit_the_data(tmp_path, mnist5k):
    text = CNN_TOML.format(seed=0, rewind=0).replace("input_shape = [1, 28, 28]", "input_shape = [1, 20, 20]")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match="does not fit"):
        run_experiment(load_config(p), tmp_path / "runs", data=mnist5k)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_conv_run_report_view_with_the_cli(tmp_path, capsys):
    from sparsescope.cli import main

    p = tmp_path / "cnn.toml"
    p.write_text(CNN_TOML.format(seed=0, rewind=0).replace("[controls]\nkinds = [\"reinit\", \"random-mask\"]\nrounds = [1]\n", ""))
    runs = str(tmp_path / "runs")
    assert main(["run", str(p), "--runs-dir", runs, "--quiet"]) == 0
    assert main(["graph", "tinycnn", "--runs-dir", runs, "-o", str(tmp_path / "g.svg")]) == 0
    assert 'class="channel"' in (tmp_path / "g.svg").read_text()
    assert main(["graph", "tinycnn", "--runs-dir", runs, "--format", "json", "-o", str(tmp_path / "g.json")]) == 0
    assert '"weight_id"' in (tmp_path / "g.json").read_text()
    assert main(["report", "tinycnn", "--runs-dir", runs, "--compare", "tinycnn", "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Channel-level view" in page and "Comparison at matched accuracy" in page
    assert main(["view", "tinycnn", "--runs-dir", runs, "-o", str(tmp_path / "v.html")]) == 0
    assert "conv" in (tmp_path / "v.html").read_text()[:20000].lower()


def test_rounds_record_their_training_path_and_resuming_on_another_path_warns(tmp_path, mnist5k, monkeypatch, capsys):
    from sparsescope.cli import main
    from sparsescope.train import _ckernels

    small = make_dataset("mnist5k", mnist5k.x_train[:300], mnist5k.y_train[:300], mnist5k.x_test[:100],
                         mnist5k.y_test[:100], mnist5k.classes)
    p = tmp_path / "cnn.toml"
    p.write_text(CNN_TOML.format(seed=0, rewind=0).replace('targets = { c1 = 20, c2 = 40, out = 300 }', "rounds = 3")
                 .replace('[controls]\nkinds = ["reinit", "random-mask"]\nrounds = [1]\n', ""))
    cfg, runs = load_config(p), tmp_path / "runs"
    assert _ckernels.kernels() is not None, _ckernels.status()  # the machine has g++: the default is direct
    run_experiment(cfg, runs, data=small, stop_after=1)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_ckernels, "_state", {})
    monkeypatch.setenv("SPARSESCOPE_CONV_KERNELS", "0")
    res = run_experiment(cfg, runs, data=small, stop_after=1)  # resumed where the kernels are off
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sparsescope: warning: ")
    assert "round 0 with direct" in err and "trains with autograd" in err and "not be bit-identical" in err
    store = RunStore(res.path)
    assert [store.read_round(r).metrics["train_path"] for r in (0, 1)] == ["direct", "autograd"]
    assert json.loads((res.path / "rounds" / "001" / "metrics.json").read_text())["train_path"] == "autograd"
    run_experiment(cfg, runs, data=small)  # round 2, still autograd: still one warning naming round 0 only
    assert "round 0 with direct" in capsys.readouterr().err
    assert main(["show", str(res.path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[-1] == "path" and [row.split()[-1] for row in table[2:5]] == ["direct", "autograd", "autograd"]


def test_cnn_study_tables_script(tmp_path, mnist5k, small_config, capsys):
    """scripts/cnn_study_tables.py (docs/cnn-study.md's tables) on a tiny conv run and an MLP run."""
    import importlib.util
    from pathlib import Path

    from sparsescope.analysis import analyse, channel_sizes, cone_sizes

    spec_ = importlib.util.spec_from_file_location("cnn_tables", Path(__file__).parents[1] / "scripts" / "cnn_study_tables.py")
    script = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(script)
    small = make_dataset("mnist5k", mnist5k.x_train[:300], mnist5k.y_train[:300], mnist5k.x_test[:100],
                         mnist5k.y_test[:100], mnist5k.classes)
    p = tmp_path / "cnn.toml"
    p.write_text(CNN_TOML.format(seed=0, rewind=0).replace('targets = { c1 = 20, c2 = 40, out = 300 }', "rounds = 2")
                 .replace('[controls]\nkinds = ["reinit", "random-mask"]\nrounds = [1]\n', ""))
    cnn = run_experiment(load_config(p), tmp_path / "runs", data=small)
    mlp = run_experiment(load_config(small_config(rounds=3)), tmp_path / "runs", data=small)
    capsys.readouterr()
    assert script.main([str(cnn.path), "--mlp", str(mlp.path), "--output", "3"]) == 0
    out = capsys.readouterr().out
    g = round_flowgraph(resolve_run(cnn.path), 1)
    st, ch, m = analyse(g), channel_sizes(g, 3), cnn.rounds[1]
    vs = [n for _, n, _ in st.per_output]
    w = "/".join(str(c) for c in m["weights_left"].values())
    assert (f"| 1 | **{w}** | **{100 * m['test_accuracy']:.1f}%** | **{st.per_output[3][1]}** | **{st.per_output[3][2]}** "
            f"| {min(vs)}-{max(vs)} | {ch.vertices}/{ch.edges}/{ch.weights} |") in out
    k = cone_sizes(g, 3, "kernel")
    assert f"| kernel-slice cone (`rule=\"kernel\"`) | {k.vertices:,} (" in out
    assert "training path: direct" in out and "weight-rule cone equals the live graph for every output: " in out
    accs = [r["test_accuracy"] for r in mlp.rounds]
    best = min(range(3), key=lambda i: (abs(accs[i] - m["test_accuracy"]), mlp.rounds[i]["kept_total"]))
    assert f"| | CNN round 1 | MLP `{mlp.run_id}` round {best} |" in out
