"""CLI conventions: -o - and formats, --version, closed pipes, --runs-dir anywhere,
run status, ambiguous names, report folders per box, light runs/show, setup.sh's apt lock wait."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparsescope import __version__
from sparsescope.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "sparsescope", *map(str, args)], capture_output=True, env=env, **kw)


def one_line_error(res, needle: str) -> None:
    err = res.stderr.decode() if isinstance(res.stderr, bytes) else res.stderr
    assert res.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("sparsescope: error: ") and needle in err, err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished 3-round run named 'conv' (mnist5k, tiny)."""
    from conftest import SMALL_CONFIG

    base = tmp_path_factory.mktemp("conv")
    cfg = base / "c.toml"
    cfg.write_text(SMALL_CONFIG.format(name="conv", seed=0, rounds=3))
    assert main(["run", str(cfg), "--runs-dir", str(base / "runs"), "--quiet"]) == 0
    return base / "runs"


def test_version():
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.decode().strip() == f"sparsescope {__version__}"


def test_runs_dir_before_or_after_the_command(runs, capsys):
    for argv in (["--runs-dir", str(runs), "runs"], ["runs", "--runs-dir", str(runs)],
                 ["--runs-dir", "/nonexistent", "runs", "--runs-dir", str(runs)]):
        assert main(argv) == 0
        assert capsys.readouterr().out.startswith("conv-")
    assert main(["--runs-dir", str(runs), "show", "conv"]) == 0
    assert "density" in capsys.readouterr().out


def test_dash_o_writes_to_stdout_and_format_follows_extension(runs, tmp_path, capsysbinary):
    def run(*args):
        code = main([*map(str, args), "--runs-dir", str(runs)])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    json_file = tmp_path / "g.json"
    assert run("graph", "conv", "-o", json_file)[0] == 0  # json from the extension
    assert json_file.read_text().startswith('{"format":"sparsescope.flowgraph"')
    code, out, err = run("graph", "conv", "--format", "json", "-o", "-")
    assert code == 0 and out == json_file.read_bytes() and not err
    code, out, _ = run("graph", "conv", "--format", "png", "-o", "-")
    assert code == 0 and out.startswith(b"\x89PNG\r\n\x1a\n")
    code, out, _ = run("graph", "conv", "-o", "-")  # no extension, no --format: svg
    assert code == 0 and out.lstrip().startswith((b"<svg", b"<?xml"))
    assert run("graph", "conv", "-o", tmp_path / "f.PNG")[0] == 0
    assert (tmp_path / "f.PNG").read_bytes().startswith(b"\x89PNG")
    for args, needle in [(("--format", "svg", "-o", tmp_path / "x.png"), "--format svg contradicts -o"),
                         (("-o", tmp_path / "x.txt"), "cannot tell the format")]:
        code, out, err = run("graph", "conv", *args)
        assert code == 2 and err.count("\n") == 1 and needle in err and not out
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.txt").exists()
    code, out, _ = run("view", "conv", "-o", "-")
    assert code == 0 and out.lstrip().lower().startswith(b"<!doctype html")
    assert not list(Path.cwd().glob("conv-*.html"))
    code, out, err = run("report", "conv", "-o", "-")
    assert code == 2 and "report writes a folder" in err


@pytest.mark.parametrize("args", [["show", "conv"], ["runs"], ["graph", "conv", "--format", "json", "-o", "-"]])
def test_closed_pipe_ends_quietly(runs, args):
    """The reader goes away before the command writes (`show | head -1`): no traceback, no 'Exception ignored'."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.Popen([sys.executable, "-m", "sparsescope", *args, "--runs-dir", str(runs)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # long before the interpreter has started
    with p.stderr:
        err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0 and err == "", err
    res = subprocess.run(["bash", "-o", "pipefail", "-c",
                          f"{sys.executable} -m sparsescope {' '.join(args)} --runs-dir {runs} | head -c 1"],
                         capture_output=True, env=env, text=True)
    assert res.stderr == "", res.stderr


def test_status_finished_interrupted_running(runs, small_config, tmp_path, mnist5k):
    from sparsescope._config import load_config
    from sparsescope.runs import RunStore, list_runs, run_experiment

    res = run_experiment(load_config(small_config(name="half", rounds=3)), tmp_path, data=mnist5k, stop_after=1)
    status = {r.name: r.status for r in list_runs(tmp_path)}
    assert status == {"half": "interrupted"}
    out = cli("runs", "--runs-dir", tmp_path).stdout.decode()
    assert "1/3 rounds\tinterrupted" in out
    with RunStore(res.path).lock():  # as a training process holds it
        assert "\trunning\t" in cli("runs", "--runs-dir", tmp_path).stdout.decode()
        assert re.search(r"1/3 rounds\s+running", cli("show", "half", "--runs-dir", tmp_path).stdout.decode())
    with RunStore(res.path).lock("controls/.reinit-r000-s1.lock"):  # as a process training one control
        assert "\trunning\t" in cli("runs", "--runs-dir", tmp_path).stdout.decode()
    assert "3/3 rounds\tfinished" in cli("runs", "--runs-dir", runs).stdout.decode()
    assert re.search(r"3/3 rounds\s+finished", cli("show", "conv", "--runs-dir", runs).stdout.decode())
    run_experiment(load_config(small_config(name="half", rounds=3)), tmp_path, data=mnist5k)  # resume
    assert RunStore(res.path).status() == "finished"


def test_configured_controls_count_for_finished(small_config, tmp_path, mnist5k):
    from sparsescope._config import load_config
    from sparsescope.runs import RunStore, run_experiment

    cfg = load_config(small_config(name="ctl", rounds=2, extra='[controls]\nkinds = ["reinit"]\nrounds = [1]\n'))
    res = run_experiment(cfg, tmp_path, data=mnist5k)
    store = RunStore(res.path)
    assert store.status() == "finished"
    for p in store.control_dirs():
        import shutil

        shutil.rmtree(p)
    assert store.status() == "interrupted"


def test_a_name_shared_by_several_runs_lists_them(small_config, tmp_path, mnist5k):
    from sparsescope._config import load_config
    from sparsescope.runs import run_experiment

    a = run_experiment(load_config(small_config(name="twin", seed=1, rounds=1)), tmp_path, data=mnist5k)
    b = run_experiment(load_config(small_config(name="twin", seed=2, rounds=1)), tmp_path, data=mnist5k)
    res = cli("show", "twin", "--runs-dir", tmp_path)
    one_line_error(res, "run name 'twin' matches 2 runs")
    assert a.run_id in res.stderr.decode() and b.run_id in res.stderr.decode()
    assert cli("show", a.run_id, "--runs-dir", tmp_path).returncode == 0


def test_report_box_data_does_not_overwrite_the_unit_box_report(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "conv", "--runs-dir", str(runs)]) == 0
    unit = Path(capsys.readouterr().out.strip())
    assert main(["report", "conv", "--runs-dir", str(runs), "--box", "data"]) == 0
    data = Path(capsys.readouterr().out.strip())
    assert unit.parent != data.parent and unit.is_file() and data.is_file()
    assert unit.parent.name.endswith("-r002") and data.parent.name == unit.parent.name + "-data"


def test_runs_and_show_import_neither_torch_nor_numpy(runs):
    code = ("import sys; from sparsescope.cli import main; "
            f"main(['runs', '--runs-dir', {str(runs)!r}]); main(['show', 'conv', '--runs-dir', {str(runs)!r}]); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "False False", res.stderr


def test_run_ends_with_where_to_look_next(small_config, tmp_path):
    res = cli("run", small_config(name="nxt", rounds=1), "--runs-dir", tmp_path / "r", "--quiet")
    lines = res.stdout.decode().rstrip().splitlines()
    assert res.returncode == 0 and lines[-3] == "next:"
    assert re.fullmatch(rf"  python3 -m sparsescope report nxt-\w+ --runs-dir {tmp_path / 'r'} .*index.html", lines[-2])
    assert lines[-1].startswith("  python3 -m sparsescope view nxt-")


def _apt_wait_function() -> str:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    m = re.search(r"^apt_wait\(\) \{.*?^\}$", text, re.S | re.M)
    assert m, "setup.sh defines apt_wait"
    return m.group(0)


def _fake_apt(tmp_path: Path, locked_calls: int, message: str = "E: Could not get lock /var/lib/dpkg/lock-frontend") -> Path:
    fake = tmp_path / "fake-apt"
    fake.write_text(f"""#!/bin/bash
n=$(cat {tmp_path}/count 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/count
echo "$@" > {tmp_path}/args
if [ "$n" -lt {locked_calls} ]; then echo "{message}" >&2; exit 100; fi
echo installed
""")
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize("locked, wait, expect_rc, calls", [(2, 30, 0, 3), (1000, 1, 1, None)])
def test_setup_waits_for_a_held_apt_lock(tmp_path, locked, wait, expect_rc, calls):
    fake = _fake_apt(tmp_path, locked)
    script = f"lock_wait={wait}\n{_apt_wait_function()}\napt_wait {fake} install -y pkg"
    t0 = time.monotonic()
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "APT_LOCK_POLL": "0.05"})
    assert res.returncode == expect_rc, res.stderr
    if expect_rc == 0:
        assert res.stdout.strip() == "installed" and int((tmp_path / "count").read_text()) == calls
        assert "waiting for the apt/dpkg lock" in res.stderr
        assert f"DPkg::Lock::Timeout={wait}" in (tmp_path / "args").read_text()
    else:  # bounded: gives up after lock_wait seconds with apt's own message
        assert time.monotonic() - t0 < 30 and "Could not get lock" in res.stderr
        assert int((tmp_path / "count").read_text()) >= 2  # it did wait and retry before giving up


def test_setup_does_not_retry_other_apt_errors(tmp_path):
    fake = _fake_apt(tmp_path, 1000, message="E: Unable to locate package pkg")
    script = f"lock_wait=30\n{_apt_wait_function()}\napt_wait {fake} install -y pkg"
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "APT_LOCK_POLL": "0.05"})
    assert res.returncode == 1 and "Unable to locate package" in res.stderr
    assert int((tmp_path / "count").read_text()) == 1
