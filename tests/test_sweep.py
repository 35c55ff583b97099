"""Sweeps: grid expansion, checks, resume, and byte-identical runs across executors (Dask for real)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sparsescope._errors import ConfigError
from sparsescope.cli import main
from sparsescope.study import load_sweep, run_sweep, sweep_from_dict

TINY = """
name = "tiny"
seeds = [0, 1]
datasets = ["mnist5k"]
controls = ["reinit", "random-mask"]
[experiment.model]
sizes = [784, 8, 8, 10]
[experiment.train]
epochs = 1
batch_size = 100
[experiment.prune]
rounds = 3
[schedules.layerwise]
rates = { h1 = 0.5, h2 = 0.3, out = 0.2 }
[schedules.global]
strategy = "global"
rate = 0.5
"""


def run_bytes(runs_dir: Path) -> dict[str, str]:
    """SHA-256 of every file that the training decides (masks, weights, metrics, init), by relative path.

    Left out: timing.json (wall times), DONE (it lists timing.json's checksum) and the
    manifest's creation time; hidden lock files.
    """
    import json

    out = {}
    for p in sorted(runs_dir.rglob("*")):
        if not p.is_file() or p.name in ("timing.json", "DONE") or p.name.startswith("."):
            continue
        data = p.read_bytes()
        if p.name == "manifest.json":
            m = json.loads(data)
            m.pop("created")
            data = json.dumps(m, sort_keys=True).encode()
        out[str(p.relative_to(runs_dir))] = hashlib.sha256(data).hexdigest()
    return out


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_expand_grid_and_merge_schedules(tiny):
    sweep = load_sweep(tiny)
    runs = sweep.runs()
    assert [(r.schedule, r.seed) for r in runs] == [("layerwise", 0), ("layerwise", 1), ("global", 0), ("global", 1)]
    assert len({r.run_id for r in runs}) == 4
    assert all(r.run_id.startswith(f"tiny-{r.schedule}-") for r in runs)
    g = runs[2].config.prune
    assert g.strategy == "global" and g.rate == 0.5 and g.rounds == 3
    assert runs[0].config.model.sizes == (784, 8, 8, 10) and runs[0].config.train.epochs == 1
    # a schedule's own stop replaces the default one
    doc = {"schedules": {"a": {"rates": {"h1": 0.2}, "target_density": 0.5}}, "experiment": {"prune": {"rounds": 3}}}
    s = sweep_from_dict(doc)
    assert s.runs()[0].config.prune.rounds is None and s.runs()[0].config.prune.target_density == 0.5


@pytest.mark.parametrize("text,needle", [
    ("seeds = [0]\n", "at least one [schedules.NAME]"),
    ("bogus = 1\n[schedules.a]\nrounds = 2\n", "unknown sweep key 'bogus'"),
    ("seeds = []\n[schedules.a]\nrounds = 2\n", "seeds"),
    ("seeds = [1, 1]\n[schedules.a]\nrounds = 2\n", "distinct"),
    ("controls = ['shuffle']\n[schedules.a]\nrounds = 2\n", "control kinds"),
    ("control_rounds = [0]\n[schedules.a]\nrounds = 2\n", "control_rounds"),
    ("[schedules.a]\nrates = { h9 = 0.2 }\nrounds = 2\n", "schedule a: prune names unknown layer(s) h9"),
    ("[schedules.'a b']\nrounds = 2\n", "schedule name"),
    ("[experiment]\nseed = 3\n[schedules.a]\nrounds = 2\n", "[experiment] takes"),
    ("[schedules.a\n", "not valid TOML"),
    ("# only a comment\n", "is empty"),
])
def test_bad_sweeps_are_one_line(tmp_path, text, needle, capsys):
    p = tmp_path / "s.toml"
    p.write_text(text)
    code = main(["sweep", str(p), "--runs-dir", str(tmp_path / "runs"), "--executor", "serial"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "runs").exists()


def test_unknown_executor_is_one_line(tiny, tmp_path, capsys):
    assert main(["sweep", str(tiny), "--runs-dir", str(tmp_path / "r"), "--executor", "mpi"]) == 2
    assert "unknown executor 'mpi'" in capsys.readouterr().err


def test_sweep_runs_skips_and_resumes(tiny, tmp_path):
    from sparsescope.runs import RunStore, run_control, run_experiment

    sweep = load_sweep(tiny)
    full = tmp_path / "full"
    res = run_sweep(sweep, full, executor="serial")
    # one task per (schedule, round): the 2 seeds' round and its 2 x 2 controls in one batched pass
    assert (res.tasks, res.trained, res.skipped) == (2 * 3, 4 * 3 + 4 * 2 * 2, 0)
    assert 0 < res.train_seconds <= res.task_seconds
    files = run_bytes(full)
    # every run has its rounds and a control of each kind at every pruned round
    for r in sweep.runs():
        store = RunStore(full / r.run_id)
        assert store.finished_rounds() == [0, 1, 2]
        assert sorted(p.name.split("-s")[0] for p in store.control_dirs()) == [
            "random-mask-r001", "random-mask-r002", "reinit-r001", "reinit-r002"]
    again = run_sweep(sweep, full, executor="serial")
    assert (again.tasks, again.trained, again.skipped) == (0, 0, 28)
    assert run_bytes(full) == files

    # the sweep's runs are ordinary runs: `run` and `control` one by one give the same bytes
    plain = tmp_path / "plain"
    for r in sweep.runs():
        run_experiment(r.config, plain)
        for rnd in (1, 2):
            for kind in ("reinit", "random-mask"):
                run_control(plain / r.run_id, rnd, kind)
    assert run_bytes(plain) == files

    # a sweep killed half way: one run stopped after a round, one control done, one run missing
    part = tmp_path / "part"
    first = sweep.runs()[0]
    run_experiment(first.config, part, stop_after=1)
    second = sweep.runs()[1]
    run_experiment(second.config, part)
    run_control(part / second.run_id, 2, "reinit")
    res = run_sweep(sweep, part, executor="serial")
    # layerwise resumes at round 1 (2 steps), global starts from scratch (3 steps)
    assert (res.tasks, res.trained, res.skipped) == (2 + 3, 28 - 5, 5)
    assert run_bytes(part) == files


@pytest.mark.slow
def test_dask_cluster_gives_the_same_bytes_as_local_processes(tiny, tmp_path):
    pytest.importorskip("distributed")
    one = tmp_path / "one.toml"
    one.write_text(TINY.split("[schedules.global]")[0])  # 2 seeds x 1 schedule x 2 controls
    sweep = load_sweep(one)
    run_sweep(sweep, tmp_path / "local", executor="local", workers=2)
    run_sweep(sweep, tmp_path / "dask", executor="dask", workers=2)
    a, b = run_bytes(tmp_path / "local"), run_bytes(tmp_path / "dask")
    # per run: init + manifest, 3 rounds and 4 controls of (mask, weights, metrics)
    assert len(a) == 2 * (2 + 3 * 3 + 4 * 3) and a == b


RL = """
name = "rl"
seeds = [3]
controls = ["reinit"]
[experiment.env]
name = "CartPole-v1"
num_envs = 2
[experiment.model]
sizes = [4, 8, 8, 2]
[experiment.rl]
budget_steps = 300
learning_starts = 100
buffer_size = 400
batch_size = 16
eps_steps = 200
eval_every = 150
eval_episodes = 4
[experiment.prune]
rounds = 2
[schedules.even]
rates = { h1 = 0.5, h2 = 0.5, out = 0.5 }
[schedules.inputs]
rates = { h1 = 0.7 }
"""


def test_rl_sweep_runs_seeds_x_schedules_as_ordinary_rl_runs(tmp_path):
    pytest.importorskip("gymnasium")
    from sparsescope.runs import RunStore, run_control, run_experiment

    sweep = sweep_from_dict(__import__("tomllib").loads(RL))
    assert sweep.datasets == ("CartPole-v1",) and all(r.config.is_rl for r in sweep.runs())
    res = run_sweep(sweep, tmp_path / "s", executor="serial")
    assert (res.trained, res.skipped) == (2 * 2 + 2, 0)  # 2 runs x 2 rounds, a reinit control of each round 1
    again = run_sweep(sweep, tmp_path / "s", executor="serial")
    assert (again.tasks, again.trained) == (0, 0)
    for r in sweep.runs():
        assert RunStore(tmp_path / "s" / r.run_id).finished_rounds() == [0, 1]
        run_experiment(r.config, tmp_path / "p")
        run_control(tmp_path / "p" / r.run_id, 1, "reinit")
    assert run_bytes(tmp_path / "s") == run_bytes(tmp_path / "p")


def test_rl_sweep_errors(tmp_path):
    with pytest.raises(ConfigError, match="remove datasets"):
        sweep_from_dict({"datasets": ["mnist"], "experiment": {"env": {"name": "CartPole-v1"}}, "schedules": {"a": {}}})
    with pytest.raises(ConfigError, match="environment's name"):
        sweep_from_dict({"experiment": {"rl": {}}, "schedules": {"a": {"rounds": 2}}})


def test_slurm_without_sbatch_falls_back_to_local_processes(monkeypatch, tmp_path):
    """No Slurm here: `slurm` says so and runs on local processes.  (Never run on a real Slurm cluster.)"""
    import concurrent.futures as cf

    from sparsescope.study import open_executor

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch on it
    said = []
    with open_executor("slurm", workers=1, log_dir=tmp_path, note=said.append) as ex:
        assert isinstance(ex.pool, cf.ProcessPoolExecutor)  # the local pool (its workers ignore Ctrl-C)
        assert ex.submit(abs, -3).result() == 3
    assert said == ["sparsescope: no Slurm here (sbatch not found); using the local executor"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # submitit's debug jobs leave log files open
def test_submitit_adapter_runs_a_sweep_like_serial(tiny, tmp_path):
    """The submitit path (jobs pickled by submitit, futures adapted) through submitit's in-process debug cluster."""
    submitit = pytest.importorskip("submitit")
    from sparsescope.study._executors import _SubmititExecutor

    one = tmp_path / "one.toml"
    one.write_text(TINY.split("[schedules.global]")[0].replace("seeds = [0, 1]", "seeds = [0]"))
    sweep = load_sweep(one)
    inner = submitit.AutoExecutor(folder=str(tmp_path / "jobs"), cluster="debug")
    res = run_sweep(sweep, tmp_path / "submitit", executor=_SubmititExecutor(inner))
    run_sweep(sweep, tmp_path / "serial", executor="serial")
    assert res.trained == 3 + 2 * 2 and run_bytes(tmp_path / "submitit") == run_bytes(tmp_path / "serial")


def test_shipped_sweeps_load():
    from sparsescope.study import search_from_dict

    root = Path(__file__).resolve().parent.parent / "configs" / "sweeps"
    study = load_sweep(root / "study.toml")
    assert len(study.runs()) == 9 and study.controls == ("reinit", "random-mask") and study.control_rounds == "all"
    search = load_sweep(root / "search.toml")
    assert len(search_from_dict(search.search).grid()) == 12 and search.datasets == ("mnist",)


def _die() -> None:
    os._exit(9)


def test_a_dead_worker_is_one_clear_error():
    from sparsescope._errors import SparsescopeError
    from sparsescope.study import open_executor

    with pytest.raises(SparsescopeError, match="worker process died"):
        with open_executor("local", workers=1) as ex:
            ex.submit(_die).result()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 2.5])
def test_ctrl_c_to_a_sweeps_process_group_is_one_line_and_no_worker_survives(tiny, tmp_path, delay):
    """A terminal's Ctrl-C reaches the parent and every worker: workers starting up or
    training must not print tracebacks or outlive the parent, which says one line (130)."""
    import signal
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "sparsescope", "--runs-dir", str(runs), "sweep", str(tiny)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    # wait until the parent has started its workers (the run store appears), then Ctrl-C the group
    t0 = time.monotonic()
    while not runs.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # the sweep finished before the signal: nothing to check
        return
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("sparsescope: ")][-1].startswith("sparsescope: interrupted")
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    alive = [line for line in ps.splitlines() if line.split()[1:2] and not line.split()[1].startswith("Z")]
    assert alive == [], f"workers left running: {alive}"  # zombies (already dead, awaiting reaping) don't count
