"""DQN on CartPole: the hand-written TD gradient equals autograd, training is deterministic
from the seed, pruned weights stay zero, and RL runs go through the run store and CLI.
Solving is the benchmark's job (bench/bench_dqn.py); these use tiny budgets."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conftest import fast_settings
from sparsescope import ConfigError
from sparsescope._config import from_dict, load_config
from sparsescope.cli import main
from sparsescope.models import MLPSpec, init_params
from sparsescope.rl import DQNConfig, EnvConfig, ReplayBuffer, env_info, evaluate_greedy, fit_dqn, q_function
from sparsescope.rl._dqn import td_gradients
from sparsescope.runs import RunStore, round_episode, round_flowgraph, run_control, run_experiment

TINY = """
name = "tiny"
seed = {seed}
[env]
name = "CartPole-v1"
num_envs = 2
[model]
sizes = [4, 8, 8, 2]
[rl]
budget_steps = 300
learning_starts = 100
buffer_size = 400
batch_size = 16
eps_steps = 200
eval_every = 150
eval_episodes = 4
[prune]
rates = {{ h1 = 0.5, h2 = 0.5, out = 0.5 }}
rounds = {rounds}
rewind_step = {rewind}
"""


def tiny(tmp_path, seed=0, rounds=3, rewind=0):
    p = tmp_path / f"tiny-{seed}-{rounds}-{rewind}.toml"
    p.write_text(TINY.format(seed=seed, rounds=rounds, rewind=rewind))
    return load_config(p)


SPEC = MLPSpec((4, 8, 8, 2))
CFG = DQNConfig(budget_steps=300, learning_starts=100, buffer_size=400, batch_size=16, eps_steps=200,
                eval_every=150, eval_episodes=4)


@fast_settings(30)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), st.integers(0, 2**31), st.floats(0.1, 3.0),
       st.booleans())
def test_td_gradients_equal_autograd(hidden, seed, delta, masked):
    sizes = (4, *hidden, 2)
    gen = torch.Generator().manual_seed(seed)
    ws = [torch.randn(o, i, generator=gen, dtype=torch.float64) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [torch.randn(o, generator=gen, dtype=torch.float64) for o in sizes[1:]]
    ms = [(torch.rand(w.shape, generator=gen) < 0.6).double() if masked else None for w in ws]
    ws = [w * m if m is not None else w for w, m in zip(ws, ms)]
    tws = [torch.randn_like(w) for w in ws]
    tbs = [torch.randn_like(b) for b in bs]
    B = 12
    batch = (torch.randn(B, 4, generator=gen, dtype=torch.float64), torch.randint(2, (B,), generator=gen),
             torch.rand(B, generator=gen, dtype=torch.float64), torch.randn(B, 4, generator=gen, dtype=torch.float64),
             (torch.rand(B, generator=gen) < 0.3).double())
    grads = [torch.zeros_like(p) for pair in zip(ws, bs) for p in pair]
    loss = td_gradients(ws, bs, tws, tbs, ms, grads, batch, 0.97, delta)
    # the oracle: autograd through an nn-style forward, torch's own Huber loss
    P = [p.clone().requires_grad_() for pair in zip(ws, bs) for p in pair]
    h = batch[0]
    for i in range(len(ws)):
        h = F.linear(h, P[2 * i], P[2 * i + 1])
        if i < len(ws) - 1:
            h = torch.relu(h)
    with torch.no_grad():
        t = batch[3]
        for i in range(len(ws)):
            t = F.linear(t, tws[i], tbs[i])
            if i < len(ws) - 1:
                t = torch.relu(t)
        y = batch[2] + 0.97 * (1 - batch[4]) * t.max(1).values
    ref = F.huber_loss(h.gather(1, batch[1][:, None])[:, 0], y, delta=delta)
    ref.backward()
    assert torch.allclose(loss, ref, rtol=1e-12, atol=1e-12)
    for k, (g, p) in enumerate(zip(grads, P)):
        want = p.grad
        if k % 2 == 0 and ms[k // 2] is not None:
            want = want * ms[k // 2]
        assert torch.allclose(g, want, rtol=1e-10, atol=1e-12), k


def test_replay_buffer_wraps_and_samples_deterministically():
    def filled(seed):
        buf = ReplayBuffer(5, 4, torch.Generator().manual_seed(seed))
        for k in range(3):
            x = np.full((3, 4), k, dtype=np.float32)
            buf.add(x, np.array([0, 1, 0]), np.ones(3), x + 1, np.array([0, 0, 1]))
        return buf

    buf = filled(1)
    assert buf.size == 5 and buf.pos == 4
    # ring order: batch 0 -> slots 0-2, batch 1 -> 3, 4, 0, batch 2 -> 1-3
    assert buf.obs[:, 0].tolist() == [1, 2, 2, 2, 1] and buf.next_obs[:, 0].tolist() == [2, 3, 3, 3, 2]
    assert buf.terminated.tolist() == [1, 0, 0, 1, 0] and buf.action.tolist() == [0, 0, 1, 0, 1]
    a, b = filled(7).sample(32), filled(7).sample(32)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(filled(8).sample(32)[0], a[0])


def test_fit_is_deterministic_and_keeps_pruned_weights_zero():
    params = init_params(SPEC, 1)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(s, generator=gen) < 0.5 for n, s in SPEC.kernel_shapes.items()}
    before = {k: v.clone() for k, v in params.items()}
    runs = [fit_dqn(SPEC, params, masks, EnvConfig(num_envs=3), CFG, seed=s, eval_seed=9) for s in (4, 4, 5)]
    assert all(torch.equal(params[k], before[k]) for k in params)  # inputs untouched
    a, b, c = runs
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert a.history == b.history and a.steps == b.steps and a.grad_steps == b.grad_steps
    assert not torch.equal(a.params["h1.weight"], c.params["h1.weight"])
    for n, m in masks.items():
        assert torch.all(a.params[f"{n}.weight"][~m] == 0)
        assert torch.any(a.params[f"{n}.weight"][m] != before[f"{n}.weight"][m])  # survivors trained
    # out of budget: recorded as not solved, with the steps used and a final evaluation
    assert not a.solved and a.steps_to_solve is None and a.steps >= CFG.budget_steps
    assert a.history[-1]["steps"] == a.steps and a.evaluation.returns.shape == (4,)
    assert a.grad_steps == (a.steps - CFG.learning_starts) // CFG.train_every + 1


def test_solved_stops_at_first_evaluation_reaching_max_return():
    cfg = DQNConfig(**{**CFG.__dict__, "max_return": 5.0})
    r = fit_dqn(SPEC, init_params(SPEC, 0), None, EnvConfig(num_envs=2), cfg, seed=0, eval_seed=0)
    assert r.solved and r.steps_to_solve == r.steps == r.history[0]["steps"] and len(r.history) == 1
    assert r.history[0]["steps"] >= max(cfg.learning_starts, cfg.eval_every)


def test_evaluate_greedy_follows_first_episodes_and_records_one():
    info = env_info("CartPole-v1")
    push_left = lambda x: torch.stack([torch.ones(len(x)), torch.zeros(len(x))], 1)  # noqa: E731
    ev = evaluate_greedy(info, push_left, 6, seed=3, record=True)
    again = evaluate_greedy(info, push_left, 6, seed=3, record=True)
    assert np.array_equal(ev.returns, again.returns) and ev.episode == again.episode
    ep = ev.episode
    assert ep["length"] == ep["return"] == ev.returns[0] and set(ep["actions"]) == {0}
    assert ep["inputs"] == ["cart position", "cart velocity", "pole angle", "pole angular velocity"]
    # always pushing left fails fast; every state acted on is inside the termination limits
    assert np.all(ev.returns < 100) and np.all(ev.returns >= 1)
    states = np.asarray(ep["states"])
    assert np.all(np.abs(states[:, 0]) <= np.float32(2.4)) and np.all(np.abs(states[:, 2]) <= np.float32(0.2095))
    assert np.all(ev.state_lo <= states.min(0)) and np.all(ev.state_hi >= states.max(0))
    assert states[0].tolist() == ep["states"][0]
    # Q-values recorded as the network gave them
    assert ep["q"][0] == [1.0, 0.0]
    # stopping at the first short episode: incomplete, and its minimum is the full run's minimum
    quick = evaluate_greedy(info, push_left, 6, seed=3, stop_below=500)
    assert not quick.complete and quick.returns.min() == ev.returns.min() and quick.mean < 500
    assert evaluate_greedy(info, push_left, 6, seed=3, stop_below=1).complete


def test_rl_config_parsing_and_errors(tmp_path):
    cfg = tiny(tmp_path)
    assert cfg.is_rl and cfg.env.name == "CartPole-v1" and cfg.rl.batch_size == 16 and cfg.dataset == "CartPole-v1"
    default = from_dict({"env": {}})
    assert default.model.sizes == (4, 64, 64, 2) and default.rl == DQNConfig()
    assert "env" not in from_dict({}).to_dict()  # dataset configs keep their dict and run id
    d = cfg.to_dict()
    assert d["env"]["num_envs"] == 2 and "train" not in cfg.identity()
    bad = [({"env": {"name": "Pong"}}, "unknown env.name"),
           ({"env": {}, "data": {"dataset": "mnist5k"}}, "remove its [data]"),
           ({"env": {}, "train": {"epochs": 3}}, "train.epochs does not apply"),
           ({"rl": {}}, "needs an [env]"),
           ({"env": {}, "rl": {"lr": -1}}, "rl.lr"),
           ({"env": {}, "rl": {"batch_sz": 3}}, "unknown key rl.batch_sz"),
           ({"env": {}, "rl": {"batch_size": 99, "buffer_size": 10}}, "larger than rl.buffer_size")]
    for doc, msg in bad:
        with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            from_dict(doc)
    with pytest.raises(ConfigError, match="must start with 4 inputs"):
        run_experiment(from_dict({"env": {}, "model": {"sizes": [3, 4, 2]}}), tmp_path / "runs")


def test_rl_run_rounds_resume_and_flowgraph(tmp_path):
    cfg = tiny(tmp_path, rewind=3)
    full = run_experiment(cfg, tmp_path / "a")
    part = run_experiment(cfg, tmp_path / "b", stop_after=1)
    assert part.trained_now == [0]
    rest = run_experiment(cfg, tmp_path / "b")
    assert rest.trained_now == [1, 2]
    sa, sb = RunStore(full.path), RunStore(rest.path)
    for r in range(3):
        for f in ("mask.safetensors", "weights.safetensors", "metrics.json", "episode.json"):
            assert (sa.round_dir(r) / f).read_bytes() == (sb.round_dir(r) / f).read_bytes(), (r, f)
    assert sa.read_round(0).rewind is not None
    m = sa.manifest()
    assert m["data"]["kind"] == "env" and m["data"]["inputs"][1] == "cart velocity"
    assert m["data"]["classes"] == ["left", "right"] and m["data"]["fingerprint"].startswith("env:CartPole-v1:")
    prev = None
    for r, mt in enumerate(full.rounds):
        rec = sa.read_round(r)
        assert mt["solved"] is False and mt["steps_to_solve"] is None and mt["steps"] >= 300
        assert mt["density"] == pytest.approx(0.5**r) and mt["weights_left"] == rec.mask.kept()
        assert mt["eval_episodes"] == 4 and len(mt["state_range"]["lo"]) == 4
        if prev is not None:
            assert all(not np.any(rec.mask[n] & ~prev.mask[n]) for n in rec.mask.names())
        prev = rec
        ep = round_episode(sa, r)
        assert ep["length"] == len(ep["states"]) and ep["return"] == ep["length"]
    g = round_flowgraph(sa)
    assert g.input.labels == ("cart position", "cart velocity", "pole angle", "pole angular velocity")
    assert g.output.labels == ("left", "right")
    assert g.bounds.box.startswith("env: |cart position| <= 2.4, |pole angle| <= 0.2094")
    lo, hi = g.bounds.lo["in"], g.bounds.hi["in"]
    sr = full.rounds[-1]["state_range"]
    assert hi[0] == -lo[0] == float(np.nextafter(np.float32(2.4), np.float32(3)))
    assert (lo[1], hi[1], lo[3], hi[3]) == (sr["lo"][1], sr["hi"][1], sr["lo"][3], sr["hi"][3])
    # the recorded episode is inside the box, and so are the network's values on it (bounds are sound)
    from sparsescope.graph import evaluate

    states = np.asarray(round_episode(sa, 2)["states"], dtype=np.float64)
    vals = evaluate(g, states).post
    for name, v in vals.items():
        assert np.all(v >= g.bounds.lo[name] - 1e-12) and np.all(v <= g.bounds.hi[name] + 1e-12), name
    q = q_function(cfg.model, sa.read_round(2).params)(torch.from_numpy(states).float()).double().numpy()
    assert np.allclose(vals["out"], q, atol=1e-5)
    assert np.allclose(np.asarray(round_episode(sa, 2)["q"]), q, atol=0)
    gd = round_flowgraph(sa, box="data")
    assert gd.bounds.lo["in"][0] == sr["lo"][0]
    ctl = run_control(sa.path, 2, "random-mask", seed=5)
    assert ctl["control"] == "random-mask" and ctl["kept_total"] == full.rounds[2]["kept_total"]


def test_rl_cli(tmp_path, capsys):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(seed=1, rounds=2, rewind=0))
    runs = str(tmp_path / "runs")
    assert main(["run", str(p), "--runs-dir", runs, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "solved" in out and "NO" in out and "return" in out
    assert main(["show", "tiny", "--runs-dir", runs]) == 0
    assert "CartPole-v1" in capsys.readouterr().out
    assert main(["graph", "tiny", "--runs-dir", runs, "--format", "json", "-o", str(tmp_path / "g.json")]) == 0
    doc = json.loads((tmp_path / "g.json").read_text())
    assert "termination limits" in json.dumps(doc)
    capsys.readouterr()
    assert main(["graph", "tiny", "--runs-dir", runs, "--box", "unit"]) == 2
    assert "does not apply" in capsys.readouterr().err
    assert main(["graph", "tiny", "--runs-dir", runs, "--input", "99999"]) == 2
    assert "greedy episode has" in capsys.readouterr().err
    # analyse takes the same box as graph: env by default and on request, never the [0, 1] unit box
    a_def, a_env = tmp_path / "a.json", tmp_path / "a-env.json"
    assert main(["analyse", "tiny", "--runs-dir", runs, "--exact", "-o", str(a_def)]) == 0
    assert main(["analyse", "tiny", "--runs-dir", runs, "--exact", "--box", "env", "-o", str(a_env)]) == 0
    assert a_def.read_bytes() == a_env.read_bytes()  # no wall time in the JSON: byte-identical
    docs = [json.loads(f.read_text()) for f in (a_def, a_env)]
    from sparsescope.runs import resolve_run

    g = round_flowgraph(resolve_run("tiny", runs))
    doc = docs[0]
    assert "termination limits" in json.dumps(doc["box"])
    assert g.bounds.lo["in"].min() < 0  # cart position reaches -2.4, outside the unit box
    for u in doc["exact"]["units"]:  # the interval bounds are graph's, over the env box
        layer, j = u["node"].rsplit(".", 1)
        lo, hi = u["interval"]
        assert (lo, hi) == (g.bounds.pre_lo[layer][int(j)], g.bounds.pre_hi[layer][int(j)]), u["node"]
        assert lo - 1e-9 <= u["exact"][0] <= u["exact"][1] <= hi + 1e-9
    capsys.readouterr()
    assert main(["analyse", "tiny", "--runs-dir", runs, "--box", "unit"]) == 2
    assert "does not apply" in capsys.readouterr().err


def test_rl_figures_report_and_page_name_inputs_actions_and_box(tmp_path):
    from sparsescope.render import graph_figure
    from sparsescope.viewer import write_run_page

    cfg = tiny(tmp_path, seed=2, rounds=3)
    res = run_experiment(cfg, tmp_path / "runs")
    store = RunStore(res.path)
    g = round_flowgraph(store)
    for kw in ({}, {"output": 1}, {"x": np.asarray(round_episode(store, 2)["states"][0])}):
        svg = graph_figure(g, **kw).to_svg()
        assert "termination limits" in svg and "visited by the greedy agent" in svg
        assert "right" in svg and ("pole angle" in svg or "cart velocity" in svg)
    # an input with no path to an output is named as ignored in the figure
    from sparsescope.analysis import analyse

    ignored = analyse(g).ignored_inputs
    if ignored:
        assert "ignored (no path to any output)" in graph_figure(g).to_svg()
    out = tmp_path / "rep"
    assert main(["report", res.run_id, "--runs-dir", str(tmp_path / "runs"), "-o", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "Greedy return against density" in page and "termination limits" in page and "solved" in page
    html = write_run_page(store, tmp_path / "v.html").read_text()
    assert "cart velocity" in html and "termination limits" in html


@pytest.mark.browser
def test_viewer_episode_mode_shows_each_step_state_and_q(tmp_path):
    """The page's episode timeline feeds step t's state to the graph; its output equals the recorded Q."""
    import os

    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_viewer_browser import ARGS, Session, wait_for

    from sparsescope.viewer import write_run_page

    cfg = tiny(tmp_path, seed=4, rounds=2)
    store = RunStore(run_experiment(cfg, tmp_path / "runs").path)
    path = write_run_page(store, tmp_path / "ep.html")
    ep = round_episode(store, 1)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        s = Session(b)
        s.page.goto(path.as_uri())
        wait_for(s.page, "window.sparsescope && window.sparsescope.ready && window.sparsescope.episodeStep", 60)
        api = "window.sparsescope"
        assert s.page.evaluate(f"{api}.episodeLength") == ep["length"]
        for t in sorted({0, ep["length"] // 2, ep["length"] - 1}):
            s.page.evaluate(f"{api}.episodeStep({t})")
            assert s.page.evaluate(f"{api}.input()") == ep["states"][t]
            q = s.page.evaluate(f"{api}.values().out")
            assert np.allclose(q, ep["q"][t], atol=1e-5)
            assert s.page.evaluate("document.getElementById('ep-label').textContent") == f"{t} / {ep['length'] - 1}"
            text = s.page.evaluate("document.getElementById('episode').textContent")
            assert "action taken: " + ep["actions_names"][ep["actions"][t]] in text
        assert "cart velocity" in s.page.evaluate("document.getElementById('ep-state').textContent")
        assert not s.errors and not s.requests
        b.close()
