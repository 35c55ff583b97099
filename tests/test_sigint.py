"""Ctrl-C at any moment of the command line's start-up or run: one line, exit 130 (sparsescope._interrupt).

A real ``python3 -m sparsescope run`` is sent SIGINT at stratified random
moments after its entry point's first line (seen from outside: SIGINT appears
in the process's blocked set, /proc/PID/status), across the imports of
torch, numpy and safetensors and argument parsing, and after its run folder
appeared: data loading, the rounds, the control.
Every trial must end with exactly one line ``sparsescope: interrupted ...``
and code 130 (or, if the signal came after the work, the normal output and
0), no traceback, no ``.*.tmp`` left; some trials are resumed to the end.

Before the entry point's first line the process is Python's own: a SIGINT
there is the interpreter's business (killed silently before its handler
exists; a traceback from ``site``), so the clock starts at that line.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_CONFIG

TRIALS = 20  # half timed from the entry point's first line (start-up), half from the run folder's manifest
SPAN = {"start-up": 1.5, "run": 1.5}  # seconds; start-up (torch's import) takes a second or more
RESUME_EVERY = 5


def _held(pid: int) -> bool:
    """Whether SIGINT is in the main thread's blocked set (the entry point holds it first thing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _temporaries(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*") if p.name.endswith(".tmp")]


def _wait(proc: subprocess.Popen, ready) -> None:
    """Poll (every millisecond) until ``ready()``."""
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, ("ended while waiting", proc.returncode, proc.communicate())
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.001)


@pytest.fixture
def sigint_not_ignored():
    """A pytest started in the background ignores SIGINT, and so would its children: undo that here."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists() or not hasattr(signal, "pthread_sigmask"),
                    reason="needs Linux /proc and pthread_sigmask")
def test_sigint_at_random_moments_of_start_up_and_run(tmp_path, sigint_not_ignored):
    rng = random.Random(13)
    half = TRIALS // 2
    plan = [(phase, (i + rng.random()) * SPAN[phase] / half) for phase in SPAN for i in range(half)]
    rng.shuffle(plan)
    seen = {"before the run folder": 0, "mid-run": 0, "finished": 0}  # where the signal landed
    bad = []
    for i, (phase, delay) in enumerate(plan):
        root = tmp_path / f"t{i}"
        root.mkdir()
        (root / "c.toml").write_text(TINY_CONFIG.format(name="sigint", rounds=3))
        cmd = [sys.executable, "-m", "sparsescope", "run", "c.toml", "--quiet"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
        _wait(proc, lambda: _held(proc.pid))
        if phase == "run":  # from the moment the run folder has its manifest: data, rounds, controls
            _wait(proc, lambda: any((root / "runs").glob("*/manifest.json")))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        case = f"trial {i}, SIGINT {delay:.3f}s into {phase}: exit {proc.returncode}, stderr {err!r}"
        if proc.returncode == 130:
            if err.count("\n") != 1 or not err.startswith("sparsescope: interrupted"):
                bad.append(case)
            seen["mid-run" if (root / "runs").exists() else "before the run folder"] += 1
        elif proc.returncode == 0:  # the signal came after the work
            if err or "round" not in out:
                bad.append(case)
            seen["finished"] += 1
        else:
            bad.append(case)
        if "Traceback" in err or "Fatal" in err:
            bad.append(case)
        if _temporaries(root):
            bad.append(f"{case}: left {_temporaries(root)}")
        if i % RESUME_EVERY == 0:  # what was written is a valid, resumable run
            again = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
            if again.returncode != 0 or again.stderr or _temporaries(root):
                bad.append(f"{case}: resume gave {again.returncode} {again.stderr!r} {_temporaries(root)}")
    print(f"\nSIGINT trials: {TRIALS}, landed in {seen}")
    assert not bad, "\n".join(bad)
    assert seen["before the run folder"] >= 1 and seen["mid-run"] >= 1, seen  # both were hit


# -- the pieces, in-process and in small processes --------------------------------------------------


def test_a_held_ctrl_c_waits_and_is_raised_at_release():
    from sparsescope import _interrupt

    assert _interrupt.hold() is False
    try:
        signal.raise_signal(signal.SIGINT)  # this thread's: pending while held
        time.sleep(0.01)
        assert _interrupt.hold() is True  # nested: still held, nothing raised
    finally:
        with pytest.raises(KeyboardInterrupt):
            _interrupt.release()
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


@pytest.mark.parametrize("when", ["parsing", "imports", "help"])
def test_ctrl_c_during_main_start_up_is_one_line_and_130(monkeypatch, capsys, when):
    """A Ctrl-C held during parsing or the command's imports comes out at release, as the one line."""
    from sparsescope import _commands, cli

    def ctrl_c(*a, **k):
        signal.raise_signal(signal.SIGINT)

    argv = ["runs", "--help"] if when == "help" else ["runs"]
    target = {"parsing": "sparsescope.cli.build_parser", "imports": "sparsescope._commands.start_up",
              "help": "sparsescope.cli.build_parser"}[when]
    real = cli.build_parser if target.endswith("build_parser") else _commands.start_up
    monkeypatch.setattr(target, lambda *a, **k: (ctrl_c(), real(*a, **k))[1])
    ran = []
    monkeypatch.setattr(_commands, "cmd_runs", lambda args: ran.append(args) or 0)
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sparsescope: interrupted"), err
    assert not ran  # the command never started
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the caller has Ctrl-C back


def test_the_process_exits_130_even_when_cpython_would_die_by_sigint(tmp_path):
    """A KeyboardInterrupt that escaped exec'd source (as inside a dataclass being built) makes
    ``python -m`` kill itself with SIGINT at exit whatever code it was given; the entry point exits 130."""
    (tmp_path / "interrupted_in_exec.py").write_text(
        "import sys\n"
        "from sparsescope import _commands\n"
        "from sparsescope.__main__ import entry\n"
        "_commands.cmd_runs = lambda args: exec('raise KeyboardInterrupt')\n"
        "sys.argv = ['sparsescope', 'runs']\n"
        "entry()\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    proc = subprocess.run([sys.executable, "-m", "interrupted_in_exec"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sparsescope: interrupted"), proc.stderr
    plain = tmp_path / "plain.py"  # the same with sys.exit: CPython's own behaviour, which entry() avoids
    plain.write_text("import sys\ntry:\n    exec('raise KeyboardInterrupt')\nexcept KeyboardInterrupt:\n    sys.exit(130)\n")
    proc = subprocess.run([sys.executable, "-m", "plain"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == -signal.SIGINT, proc.returncode
