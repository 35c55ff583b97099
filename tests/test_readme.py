"""Every code block of the README runs as written.

The README's blocks are parsed out of the file (fenced ```lang blocks and
indented 4-space blocks), so a block that is edited is the block that is
tested.  Substitutions, and only these, keep the fast tests fast:

* the shipped configs and sweeps are copied with ``mnist5k`` and one epoch
  (same names, same pruning, so the same rounds exist), a sweep with one
  seed and controls at round 18 only (see ``QUICK``);
* ``bash scripts/setup.sh`` (installs packages) is syntax-checked, not run;
  ``python3 -m pytest`` is this suite itself and is not run again;
* a line whose file argument is a placeholder (``SWEEP.toml``) runs its
  command's ``--help``;
* the benchmark scripts are run with ``--help`` (they take minutes); the
  ``sparsescope`` commands run in this process through ``cli.main``.

The Python API block also runs verbatim on the real configs (full MNIST) in
one slow test.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every block: fenced blocks keep their language,
    indented blocks (after a blank line, outside fences) get ``"indented"``."""
    blocks: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            blocks.append((fence.group(1), "\n".join(lines[i + 1 : j]) + "\n"))
            i = j + 1
            continue
        if line.startswith("    ") and line.strip() and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            while not lines[j - 1].strip():
                j -= 1
            blocks.append(("indented", "\n".join(l[4:] for l in lines[i:j]) + "\n"))
            i = j
            continue
        i += 1
    return blocks


def blocks(lang: str) -> list[str]:
    return [code for kind, code in code_blocks(README.read_text(encoding="utf-8")) if kind == lang]


def shell_lines() -> list[str]:
    """The command lines of the indented blocks that are shell commands (comments dropped)."""
    out = []
    for code in blocks("indented"):
        for line in code.splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd.split(" ")[0] in ("python3", "bash", "sparsescope"):
                out.append(cmd)
    return out


QUICK = [  # (what the shipped configs say, what the quick copies say)
    ('dataset = "mnist"', 'dataset = "mnist5k"'),
    ('datasets = ["mnist"]', 'datasets = ["mnist5k"]'),
    ("epochs = 3", "epochs = 1"),
    ("seeds = [0, 1, 2]", "seeds = [0]"),
    ('control_rounds = "all"', "control_rounds = [18]"),
    ("accuracy_floor = 0.95", "accuracy_floor = 0.5"),  # 1 epoch on 4,000 images stays below 95%
]


def quick_project(tmp: Path) -> Path:
    """A working folder with configs/ holding quick copies of the shipped configs and sweeps
    (mnist5k, 1 epoch; a sweep: one seed, controls at round 18 only)."""
    for src in sorted((ROOT / "configs").rglob("*.toml")):
        text = src.read_text(encoding="utf-8")
        for old, new in QUICK:  # exact strings: 'dataset = "mnist"' does not touch "mnist5k"
            text = text.replace(old, new)
        dst = tmp / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text, encoding="utf-8")
    return tmp


def test_readme_has_the_blocks_it_should():
    langs = [kind for kind, _ in code_blocks(README.read_text(encoding="utf-8"))]
    assert langs.count("python") == 1 and langs.count("toml") == 1
    cmds = shell_lines()
    assert cmds[0] == "bash scripts/setup.sh && python3 -m sparsescope run configs/mnist-mlp.toml"
    assert any(c.startswith("python3 -m sparsescope view") for c in cmds)
    assert "fashion-mlp.toml" in README.read_text(encoding="utf-8")  # every shipped config is listed
    for cfg in (ROOT / "configs").glob("*-mlp*.toml"):  # every shipped MLP config is listed
        assert f"configs/{cfg.name}" in README.read_text(encoding="utf-8"), cfg.name


def test_toml_block_is_the_default_config():
    from sparsescope._config import from_dict, load_config

    (block,) = blocks("toml")
    shown = from_dict(tomllib.loads(block))
    shipped = load_config(ROOT / "configs" / "mnist-mlp.toml")
    assert shown.identity() == shipped.identity() and shown.run_id == shipped.run_id


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_shell_blocks_run(tmp_path, monkeypatch, capsys):
    """Every command of the README, in order, in a fresh folder (quick configs; see module doc).

    ``python3 -m sparsescope ARGS`` runs in this process as ``cli.main(ARGS)``
    (one torch import, not one per command); a command line with a pipe runs
    in a real shell, which also checks that a closed pipe ends quietly.
    """
    from sparsescope.cli import main

    work = quick_project(tmp_path)
    monkeypatch.chdir(work)
    outputs = []
    for cmd in shell_lines():
        if cmd.startswith("bash scripts/setup.sh"):
            assert subprocess.run(["bash", "-n", ROOT / "scripts" / "setup.sh"]).returncode == 0
            cmd = cmd.split("&&", 1)[1].strip()
        if cmd.startswith("python3 -m pytest"):
            continue  # this very suite
        prefix = "python3 -m sparsescope "
        if cmd.startswith(prefix) and re.search(r"\b[A-Z]{3,}\.toml\b", cmd):
            # a syntax line with a placeholder file (SWEEP.toml), not a command: its --help must work
            cmd = prefix + cmd[len(prefix):].split()[0] + " --help"
        if cmd.startswith(("python3 bench/", "python3 scripts/")):  # minutes of benchmarking or seeds: check that the script starts
            monkeypatch.setattr(sys, "argv", [cmd.split()[1], "--help"])
            monkeypatch.syspath_prepend(str((ROOT / cmd.split()[1]).parent))  # as running the script puts its folder first
            with pytest.raises(SystemExit) as done:
                runpy.run_path(str(ROOT / cmd.split()[1]), run_name="__main__")
            assert done.value.code == 0
            out = capsys.readouterr().out
            assert "usage:" in out
        elif cmd.startswith(prefix) and "|" not in cmd:
            capsys.readouterr()
            try:
                code = main(shlex.split(cmd[len(prefix):]))
            except SystemExit as done:  # --help
                code = done.code
            out, err = capsys.readouterr()
            assert code == 0, f"{cmd}\n{err}"
        else:
            res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd.replace("python3", sys.executable, 1)],
                                 env=_env(), capture_output=True, text=True, timeout=600)
            out, err = res.stdout, res.stderr
            assert res.returncode == 0, f"{cmd}\n{err}"
            assert not err, f"{cmd}\n{err}"  # no traceback, no 'Exception ignored' from a closed pipe
        outputs.append((cmd, out))
    first = outputs[0][1].rstrip().splitlines()
    # the first command's output ends with where to look next
    assert first[-3] == "next:" and " report " in first[-2] and " view " in first[-1]
    assert "  18  " in outputs[0][1]  # the round table reaches round 18
    # the run store layout the README draws is what a run holds
    run = next(p for p in (work / "runs").iterdir() if p.name.startswith("mnist-mlp-"))
    (layout,) = [b for b in blocks("indented") if b.startswith("runs/RUN_ID/")]
    for line in layout.splitlines():
        rel = line.split()[0].removeprefix("runs/RUN_ID/")
        pattern = re.sub(r"NNN", "[0-9][0-9][0-9]", rel.rstrip("/")).replace("KIND", "*").replace("SEED", "*")
        assert list(run.glob(pattern)), f"README layout line {line!r} matches nothing in {run}"
    reports = sorted(p.name for p in (work / "reports").glob(f"{run.name}-*"))
    assert reports == [f"{run.name}-r018", f"{run.name}-r018-data"]  # the unit-box and the data-box report
    assert (work / "reports" / "study-study" / "index.html").is_file()  # and the study of the sweep


def _run_python_block(work: Path) -> subprocess.CompletedProcess:
    (block,) = blocks("python")
    return subprocess.run([sys.executable, "-c", block], cwd=work, env=_env(), capture_output=True, text=True,
                          timeout=1800)


def test_python_block_runs_on_quick_configs(tmp_path):
    res = _run_python_block(quick_project(tmp_path))
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) >= 3


@pytest.mark.slow
def test_python_block_runs_verbatim_on_full_mnist(tmp_path):
    """The block exactly as written, with the shipped configs: trains the default experiment on full MNIST."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    res = _run_python_block(tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "runs").is_dir()
