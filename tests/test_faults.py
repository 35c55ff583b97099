"""Fault injection: SIGKILL before every file-system step of a command, then run it again.

Each command (``run`` from scratch, ``graph``, ``view``, ``report``) is first
run once while counting the steps that change the file system (opening a
file for writing, mkdir, rename, replace, unlink, rmdir, fsync, chmod, the
report's exchange).  Then, for every step ``k``, a forked child runs the same
command and kills itself with SIGKILL just before step ``k``; the parent
runs the command again and checks:

* the result is byte-identical to an uninterrupted run (for ``run``: every
  mask, weight, metrics and init file, and the manifest apart from its
  creation time);
* no temporary (``.*.tmp``) is left anywhere;
* for ``report`` over an earlier report: at the moment of the kill, a
  complete report (the old or the new) is in place.

The counts are printed (``pytest -s``) and recorded in ``FAULT_COUNTS``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sys
import traceback
import warnings
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, make_tiny_run
from sparsescope import cli

CONFIG = TINY_CONFIG.format(name="fault", rounds=2)

FAULT_COUNTS: dict[str, dict[str, int]] = {}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


class Injector:
    """Counts file-system steps; with ``kill_at=k`` it SIGKILLs the process before step ``k``."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.n = 0
        self.kill_at = kill_at
        self.kinds: list[str] = []

    def step(self, kind: str) -> None:
        if self.n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.n += 1
        self.kinds.append(kind)

    def install(self, setattr_) -> None:
        from sparsescope.render import _report

        def counted(kind, fn, when=lambda *a, **k: True):
            def wrapper(*a, **k):
                if when(*a, **k):
                    self.step(kind)
                return fn(*a, **k)

            return wrapper

        for name in ("mkdir", "rename", "replace", "unlink", "rmdir", "fchmod", "chmod"):
            setattr_(os, name, counted(name, getattr(os, name)))
        # a kill point, but not a real fsync: SIGKILL loses nothing from the page cache, and
        # skipping the flush to disk keeps hundreds of runs fast
        setattr_(os, "fsync", counted("fsync", lambda fd: None))
        setattr_(shutil, "rmtree", counted("rmtree", shutil.rmtree))
        setattr_(os, "open", counted("open", os.open, lambda path, flags, *a, **k: bool(flags & _WRITE_FLAGS)))

        def writes(file, mode="r", *a, **k):
            return isinstance(mode, str) and any(c in mode for c in "wax+")

        setattr_(io, "open", counted("open", io.open, writes))
        setattr_(_report, "exchange", counted("exchange", _report.exchange))


def _count_steps(argv: list[str], monkeypatch, kinds: bool = False):
    inj = Injector()
    with monkeypatch.context() as m:
        inj.install(m.setattr)
        assert cli.main(argv) == 0
    return inj.kinds if kinds else inj.n


def _kill_child_at(k: int, argv: list[str], log: Path) -> str:
    """Fork; the child runs ``argv`` and SIGKILLs itself before step ``k``. Returns how it ended."""
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            Injector(k).install(setattr)
            code = cli.main(argv)
        except BaseException:
            with open(log, "a") as fh:
                fh.write(f"step {k} {argv}:\n{traceback.format_exc()}\n")
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    return f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"status {status}"


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def _digest_tree(root: Path, skip=("timing.json", "DONE", ".lock")) -> dict[str, str]:
    """sha256 of every file under ``root`` (run folders: the manifest without its creation time)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip:
            data = p.read_bytes()
            if p.name == "manifest.json":
                m = json.loads(data)
                m.pop("created", None)
                data = json.dumps(m, sort_keys=True).encode()
            out[p.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def _report_counts(command: str, steps: int, outcomes: list[str], tracebacks: int, temporaries: int,
                   mismatches: int, neither: int = 0) -> None:
    FAULT_COUNTS[command] = dict(steps=steps, kills=outcomes.count("killed"), tracebacks=tracebacks,
                                 temporaries_left=temporaries, results_differ=mismatches, neither_in_place=neither)
    print(f"\nfault injection {command}: {FAULT_COUNTS[command]}")


@pytest.mark.parametrize("controls", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_kill_run_before_every_step_then_resume(tmp_path, slice_loaded, monkeypatch, controls):
    """A 2-round run (with a control: the slow variant) killed before each of its steps."""
    cfg = tmp_path / "fault.toml"
    cfg.write_text(CONFIG if controls else CONFIG[:CONFIG.index("[controls]")])
    ref = tmp_path / "ref"
    assert cli.main(["run", str(cfg), "--runs-dir", str(ref), "--quiet"]) == 0
    want = _digest_tree(ref)
    assert any("controls/" in k for k in want) == controls and any("rounds/001/" in k for k in want)
    steps = _count_steps(["run", str(cfg), "--runs-dir", str(tmp_path / "count"), "--quiet"], monkeypatch)
    assert steps > 30, steps
    log = tmp_path / "child-errors.log"
    outcomes, temporaries, mismatches = [], 0, 0
    for k in range(steps):
        runs = tmp_path / f"k{k}"
        outcomes.append(_kill_child_at(k, ["run", str(cfg), "--runs-dir", str(runs), "--quiet"], log))
        assert cli.main(["run", str(cfg), "--runs-dir", str(runs), "--quiet"]) == 0, f"resume after kill at {k}"
        temporaries += len(_temporaries(runs))
        mismatches += _digest_tree(runs) != want
        shutil.rmtree(runs)
    tracebacks = log.read_text().count("Traceback") if log.exists() else 0
    _report_counts("run" + (" with a control" if controls else ""), steps, outcomes, tracebacks, temporaries, mismatches)
    assert outcomes == ["killed"] * steps
    assert (tracebacks, temporaries, mismatches) == (0, 0, 0)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, slice_loaded):
    base = tmp_path_factory.mktemp("faults")
    make_tiny_run(base, "fault", 2)
    return base


@pytest.mark.parametrize("command,out", [
    (["graph", "--format", "svg"], "g.svg"),
    (["graph", "--format", "png", "--input", "3"], "g.png"),
    (["view"], "v.html"),
])
def test_kill_graph_and_view_before_every_step(finished, tmp_path, command, out, monkeypatch):
    work = tmp_path / "work"
    argv = [command[0], "fault", *command[1:], "--runs-dir", str(finished / "runs"), "-o", str(work / out)]
    assert cli.main(argv) == 0
    want = (work / out).read_bytes()
    (work / out).unlink()
    steps = _count_steps(argv, monkeypatch)
    (work / out).unlink()
    log = tmp_path / "child-errors.log"
    outcomes, temporaries, mismatches = [], 0, 0
    for k in range(steps):
        outcomes.append(_kill_child_at(k, argv, log))
        assert cli.main(argv) == 0
        temporaries += len(_temporaries(work))
        mismatches += (work / out).read_bytes() != want
        (work / out).unlink()
    tracebacks = log.read_text().count("Traceback") if log.exists() else 0
    _report_counts(" ".join(command), steps, outcomes, tracebacks, temporaries, mismatches)
    assert outcomes == ["killed"] * steps
    assert (tracebacks, temporaries, mismatches) == (0, 0, 0)
    assert sorted(os.listdir(work)) == []


def _complete_report(folder: Path) -> bool:
    """True if ``folder`` holds a whole report: every file its list names, with that content."""
    listing = folder / "report-files.json"
    if not listing.is_file():
        return False
    files = json.loads(listing.read_text())["files"]
    return all((folder / r).is_file() and hashlib.sha256((folder / r).read_bytes()).hexdigest() == h
               for r, h in files.items())


def _stub_build(root, graph, rounds, xs, ys, k, title, *rest):
    """A stand-in for the report's figures: three small files whose bytes depend on the round."""
    from sparsescope.render._report import GENERATOR

    (root / "figures").mkdir()
    (root / "index.html").write_text(f'<meta name="generator" content="{GENERATOR}"><h1>{title}</h1>')
    (root / "figures" / "graph.svg").write_text(f"<svg><!-- {title} --></svg>")
    (root / "figures" / "graph.png").write_bytes(title.encode())


@pytest.mark.parametrize("real", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_kill_report_before_every_step(finished, tmp_path, monkeypatch, real):
    """Over an earlier report (of round 0): at every kill the old or the new report is in place.

    The fast variant replaces the figures by a stand-in writing three files, so that every
    step of the folder machinery (temporary, file list, exchange, removing the old report)
    is a kill point in seconds; the slow one draws the real report and kills at the steps
    around the exchange and a few of the ~100 figure writes.
    """
    from sparsescope.render import _report

    if not real:
        monkeypatch.setattr(_report, "_build", _stub_build)
    rep = tmp_path / "work" / "rep"
    base = ["report", "fault", "--runs-dir", str(finished / "runs"), "-o", str(rep)]
    assert cli.main(base + ["--round", "1"]) == 0
    want = _digest_tree(rep)
    assert cli.main(base + ["--round", "0"]) == 0
    old = _digest_tree(rep)
    assert old != want
    kinds = _count_steps(base + ["--round", "1"], monkeypatch, kinds=True)
    commit = kinds.index("exchange")
    chosen = list(range(len(kinds))) if not real else sorted(
        {0, 1, 2, commit // 2, commit - 2, commit - 1, commit, commit + 1, commit + 2, len(kinds) - 1})
    steps = len(chosen)
    log = tmp_path / "child-errors.log"
    outcomes, temporaries, mismatches, neither = [], 0, 0, 0
    for k in chosen:
        assert cli.main(base + ["--round", "0"]) == 0  # the old report
        outcomes.append(_kill_child_at(k, base + ["--round", "1"], log))
        neither += not (_complete_report(rep) and _digest_tree(rep) in (old, want))
        assert cli.main(base + ["--round", "1"]) == 0
        temporaries += len(_temporaries(rep.parent))
        mismatches += _digest_tree(rep) != want
    tracebacks = log.read_text().count("Traceback") if log.exists() else 0
    _report_counts("report" + (" (real figures)" if real else " (stand-in figures)"), steps, outcomes, tracebacks,
                   temporaries, mismatches, neither)
    assert outcomes == ["killed"] * steps
    assert (tracebacks, temporaries, mismatches, neither) == (0, 0, 0, 0)
