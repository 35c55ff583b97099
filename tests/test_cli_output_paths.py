"""``-o`` paths a new user gets wrong: one line naming *their* path, before any work, nothing left behind."""

from __future__ import annotations

import errno

import pytest

from sparsescope import cli


def _one_line(capsys, argv) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsescope: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize("command", [["graph", "somerun"], ["view", "somerun"], ["analyse", "somerun"]])
def test_o_naming_a_folder_is_refused_before_the_run_is_read(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "figs").mkdir()
    line = _one_line(capsys, [*command, "-o", "figs"])  # "somerun" does not exist: the -o check came first
    assert "-o figs is a folder: give a file name (e.g. figs/NAME.EXT)" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figs"]  # no temporary, nothing else


@pytest.mark.parametrize("command", [["graph", "somerun"], ["view", "somerun"], ["analyse", "somerun"]])
def test_o_under_a_file_is_refused_naming_the_file(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("mine")
    line = _one_line(capsys, [*command, "-o", "notes.md/sub/x.svg"])
    assert line.endswith("-o notes.md/sub/x.svg: notes.md is not a folder"), line
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_an_os_error_names_the_users_path_not_our_temporary(tmp_path, monkeypatch, capsys):
    from sparsescope import _commands

    def fails(args):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp_path / ".out.svg.ab12cd_9.tmp"))

    monkeypatch.setattr(_commands, "cmd_runs", fails)
    line = _one_line(capsys, ["runs"])
    assert line == f"sparsescope: error: Is a directory: {tmp_path / 'out.svg'}", line


@pytest.mark.parametrize("given,shown", [
    ("/d/.x.svg.ab12cd34.tmp", "/d/x.svg"),
    (".a.b.c.abcdefgh.tmp", "a.b.c"),
    (b"/d/.r.json.0a1b2c3d.tmp", "/d/r.json"),
    ("/d/.x.svg.ab12.tmp", "/d/.x.svg.ab12.tmp"),  # not one of ours: shown as it is
    ("README.md", "README.md"),
])
def test_user_path(given, shown):
    assert cli._user_path(given) == shown


@pytest.mark.parametrize("command", [["graph", "somerun"], ["view", "somerun"], ["analyse", "somerun"],
                                     ["report", "somerun"], ["study", "nosweep.toml"], ["search", "nosweep.toml"]])
@pytest.mark.parametrize("inside", ["rounds/002/metrics.json", "manifest.json", "rounds/new.svg", "x.svg", "rounds/002/report"])
def test_o_inside_a_run_folder_is_refused(tmp_path, monkeypatch, capsys, command, inside):
    """A finished round's file replaced by a figure would make the run corrupt for every command."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "r-12345678"
    (run / "rounds" / "002").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "rounds" / "002" / "metrics.json").write_text("finished")
    line = _one_line(capsys, [*command, "-o", f"runs/r-12345678/{inside}"])
    assert f"is inside the run folder {run}" in line, line
    assert (run / "rounds" / "002" / "metrics.json").read_text() == "finished"
    assert (run / "manifest.json").read_text() == "{}"


@pytest.mark.parametrize("argv", [["graph", "nothere"], ["analyse", "nothere", "--exact"], ["view", "x", "-o", "."],
                                  ["control", "nothere", "--round", "1", "--kind", "reinit"], ["run", "empty.toml"]])
def test_a_mistake_is_reported_before_torch_is_imported(tmp_path, argv):
    """Start-up imports torch with Ctrl-C held (sparsescope._interrupt); a mistyped run, config or -o
    must not wait for that second: it is checked first."""
    import subprocess
    import sys

    (tmp_path / "empty.toml").write_text("")
    code = ("import sys; from sparsescope.cli import main; c = main(sys.argv[1:]); "
            "print(c, 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.stdout.split() == ["2", "False"], (res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("sparsescope: error: "), res.stderr
