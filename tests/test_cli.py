"""The CLI: every command documented; every user mistake is one line and exit code 2."""

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest

from sparsescope.cli import build_parser, main

COMMANDS = ["run", "runs", "show", "control", "graph", "report", "view", "sweep", "study", "search", "analyse"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sparsescope", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _one_line_error(res, needle):
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert needle in lines[0], lines[0]


def test_every_command_has_help(capsys):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)
    for c in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([c, "--help"])
        assert e.value.code == 0
        assert "usage: sparsescope " + c in capsys.readouterr().out


@pytest.mark.parametrize("text,needle", [
    ("name = 'x'\n[prune\n", "not valid TOML"),
    ("name = 'x'\nbogus = 1\n", "unknown top-level key 'bogus'"),
    ("[train]\nepocs = 3\n", "unknown key train.epocs"),
    ("[train]\nlr = -1\n", "train.lr"),
    ("[data]\ndataset = 'cifar'\n", "unknown dataset 'cifar'"),
    ("[data]\ndataset = 'idx:/nonexistent/dir'\n", "does not exist"),
    ("[model]\nsizes = [784, 32, 10]\n[prune]\nrates = { h9 = 0.2 }\nrounds = 2\n", "unknown layer(s) h9"),
    ("[model]\nsizes = [100, 10]\n[prune]\nrates = { out = 0.2 }\nrounds = 2\n", "784"),
    ("[model]\nactivation = 'gelu'\n", "unknown activation"),
    ("[prune]\nrates = { h1 = 0.0, h2 = 0.0, out = 0.0 }\ntarget_density = 0.5\n", "unreachable"),
    ("name = '../../etc'\n", "name must be"),
    ("[train]\neps = 'x'\n", "train.eps"),
    ("[train]\neps = 0.0\n", "train.eps"),
    ("[train]\nbetas = [0.9]\n", "train.betas"),
    ("[train]\nthreads = true\n", "train.threads"),
    ("[train]\nepochs = 0\n", "train.epochs"),
    ("[train]\nepochs = 1.5\n", "train.epochs"),
    ("[train]\nbatch_size = true\n", "train.batch_size"),
    ("seed = 18446744073709551616\n", "seed"),
    ("[model]\nsizes = 'abc'\n", "model.sizes"),
    ("[prune]\nrates = [0.2, 0.2]\nrounds = 2\n", "prune.rates"),
    ("[prune]\nlayers = ['h1']\nrounds = 2\n", "prune.layers does not apply"),
    ("[prune]\nstrategy = 'global'\nrate = 0.2\nlayers = ['h1', 'h1']\nrounds = 2\n", "distinct"),
    ("[prune]\nrewind_step = 100000\nrounds = 2\n", "past the end of round 0"),
    ("[controls]\nkinds = ['shuffle']\n", "unknown control kind"),
    ("[controls]\nkinds = ['reinit']\nrounds = [99]\n", "round 99"),
    ("[data]\ndataset = 5\n", "data.dataset"),
])
def test_bad_configs(tmp_path, text, needle, capsys):
    p = tmp_path / "c.toml"
    p.write_text(text)
    code = main(["run", str(p), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "runs").exists(), "nothing written for a bad config"


def test_bad_paths_are_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[prune]\nrounds = 1\n[train]\nepochs = 1\n")
    for argv, needle in [
        (["run", str(cfg), "--runs-dir", str(afile), "--quiet"], "afile"),
        (["run", str(cfg), "--runs-dir", str(afile / "sub"), "--quiet"], "afile"),
        (["runs", "--runs-dir", str(afile)], "not a folder"),
        (["show", "", "--runs-dir", str(tmp_path)], "no run given"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("sparsescope: error:") and needle in err[0], err


def test_missing_config(tmp_path):
    _one_line_error(cli("run", tmp_path / "nope.toml"), "does not exist")


def test_usage_errors_are_one_line():
    _one_line_error(cli("graph"), "required")
    _one_line_error(cli("graph", "x", "--format", "gif"), "invalid choice")


def _write_idx(path, arr, gz=False):
    data = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as fh:
        fh.write(data)


def test_idx_folder_and_truncated_file(tmp_path):
    from sparsescope import DataError
    from sparsescope.data import load

    d = tmp_path / "idx"
    d.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28)), gz=True)
    _write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 30), gz=True)
    _write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28)))
    _write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10))
    data = load(f"idx:{d}")
    assert data.x_train.shape == (30, 28, 28) and data.x_test.shape == (10, 28, 28)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1
    raw = (d / "t10k-images-idx3-ubyte").read_bytes()
    (d / "t10k-images-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(DataError, match="truncated"):
        load(f"idx:{d}")


def test_fashion_missing_says_how_to_install(monkeypatch, tmp_path):
    from sparsescope import DataError
    from sparsescope.data import _sources

    monkeypatch.setattr(_sources, "FASHION_DIR", tmp_path / "none")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        _sources.load_fashion_mnist()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from conftest import SMALL_CONFIG

    base = tmp_path_factory.mktemp("cli")
    cfg = base / "c.toml"
    cfg.write_text(SMALL_CONFIG.format(name="clirun", seed=0, rounds=3))
    res = cli("run", cfg, "--runs-dir", base / "runs")
    assert res.returncode == 0, res.stderr
    return base, res


def test_run_show_runs(finished_run):
    base, res = finished_run
    assert "round" in res.stdout and "test acc" in res.stdout
    assert len([l for l in res.stdout.splitlines() if l.strip().split(" ")[0].isdigit()]) == 3
    runs = cli("runs", "--runs-dir", base / "runs")
    assert runs.returncode == 0 and runs.stdout.startswith("clirun-")
    show = cli("show", "clirun", "--runs-dir", base / "runs")
    assert show.returncode == 0 and "density" in show.stdout
    again = cli("run", base / "c.toml", "--runs-dir", base / "runs")
    assert again.returncode == 0 and "already finished" in again.stdout


def test_bad_run_arguments(finished_run, tmp_path):
    base, _ = finished_run
    runs = base / "runs"
    _one_line_error(cli("show", "nothing", "--runs-dir", runs), "no run 'nothing'")
    _one_line_error(cli("graph", "clirun", "--round", 9, "--runs-dir", runs, "-o", tmp_path / "g.svg"), "no finished round 9")
    _one_line_error(cli("graph", "clirun", "--output", 12, "--runs-dir", runs, "-o", tmp_path / "g.svg"), "--output 12")
    _one_line_error(cli("graph", "clirun", "--input", 99999, "--runs-dir", runs, "-o", tmp_path / "g.svg"), "--input 99999")
    assert not (tmp_path / "g.svg").exists()
    _one_line_error(cli("graph", "clirun", "--input", 3, "--format", "json", "--runs-dir", runs), "--input applies")
    _one_line_error(cli("graph", "clirun", "--format", "json", "--runs-dir", runs, "-o", tmp_path), "is a folder")
    _one_line_error(cli("control", "clirun", "--round", 1, "--kind", "reinit", "--seed", -1, "--runs-dir", runs), "seed")
    _one_line_error(cli("control", "clirun", "--round", 7, "--kind", "reinit", "--runs-dir", runs), "no finished round 7")


def test_corrupt_run_is_one_line(finished_run, tmp_path):
    import shutil

    base, _ = finished_run
    runs = tmp_path / "runs"
    shutil.copytree(base / "runs", runs)
    run = next(runs.iterdir())
    w = run / "rounds" / "002" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    _one_line_error(cli("graph", run.name, "--runs-dir", runs, "-o", tmp_path / "g.json", "--format", "json"), "corrupt or truncated")
    _one_line_error(cli("show", run.name, "--runs-dir", runs), "corrupt or truncated")
    assert not (tmp_path / "g.json").exists()
    (run / "rounds" / "001" / "DONE").unlink()
    _one_line_error(cli("show", run.name, "--runs-dir", runs), "DONE")
    (run / "manifest.json").write_text("not json")
    _one_line_error(cli("run", base / "c.toml", "--runs-dir", runs, "--quiet"), "manifest.json is corrupt")


def test_graph_json_is_deterministic(finished_run, tmp_path):
    base, _ = finished_run
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for p in (a, b):
        assert cli("graph", "clirun", "--format", "json", "--runs-dir", base / "runs", "-o", p).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    from sparsescope.graph import from_json, to_json

    assert to_json(from_json(a.read_text())) == a.read_text()


def test_figures_report_and_view_commands(finished_run, tmp_path, capsys):
    """graph/report/view on a finished run: files appear, and the same run gives the same bytes."""
    base, _ = finished_run
    runs = str(base / "runs")
    outs = {}
    for fmt, extra in [("svg", []), ("png", []), ("svg", ["--output", "3"]), ("png", ["--input", "5"]), ("json", ["--output", "1"])]:
        out = tmp_path / f"g-{fmt}-{len(outs)}.{fmt}"
        assert main(["graph", "clirun", "--format", fmt, "--runs-dir", runs, "-o", str(out), *extra]) == 0
        outs[out] = out.read_bytes()
        assert main(["graph", "clirun", "--format", fmt, "--runs-dir", runs, "-o", str(out), *extra]) == 0
        assert out.read_bytes() == outs[out], f"{fmt} {extra} is not deterministic"
    assert next(b for p, b in outs.items() if p.suffix == ".png").startswith(b"\x89PNG")
    from sparsescope.graph import from_json

    sub = from_json(next(b for p, b in outs.items() if p.suffix == ".json"))
    assert sub.meta["subgraph_of"] == "out.1"

    assert main(["report", "clirun", "--runs-dir", runs, "-o", str(tmp_path / "rep")]) == 0
    index = tmp_path / "rep" / "index.html"
    assert index.is_file() and "Structure" in index.read_text()

    a, b = tmp_path / "a.html", tmp_path / "b.html"
    assert main(["view", "clirun", "--runs-dir", runs, "-o", str(a)]) == 0
    assert main(["view", "clirun", "--round", "1", "--runs-dir", runs, "-o", str(b)]) == 0
    assert main(["view", "clirun", "--runs-dir", runs, "-o", str(tmp_path / "a2.html")]) == 0
    assert a.read_bytes() == (tmp_path / "a2.html").read_bytes()
    assert a.read_bytes() != b.read_bytes()
    from sparsescope.viewer import read_embedded

    assert from_json(read_embedded(b.read_text())).meta["round"] == 1
    capsys.readouterr()

    # the user picks the embedded test images; the page numbers them by test-set index
    c = tmp_path / "c.html"
    assert main(["view", "clirun", "--runs-dir", runs, "-o", str(c), "--samples", "3,7,11,0-1"]) == 0
    import json as _json

    assert _json.loads(read_embedded(c.read_text(), "sparsescope-data"))["samples"]["index"] == [3, 7, 11, 0, 1]
    for bad in ("5-2", "x", "0-99999999", "3,,4"):
        assert main(["view", "clirun", "--runs-dir", runs, "-o", str(tmp_path / "bad.html"), "--samples", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sparsescope: error: --samples") and err.count("\n") == 1, err
    assert not (tmp_path / "bad.html").exists()
    # the per-input figure names the test image and its true label; options reach the figure
    svg = tmp_path / "in5.svg"
    assert main(["graph", "clirun", "--runs-dir", runs, "-o", str(svg), "--input", "5", "--shared-scale", "--hide-off"]) == 0
    text = svg.read_text()
    assert "test image #5 (true label" in text and "colour-bar" in text


def test_view_rounds_picks_the_slider_rounds(finished_run, tmp_path, capsys):
    """view --rounds: only those rounds (and the opened one) ride in the page; a round that is not
    finished, or a malformed list, is one error line and exit 2."""
    import json as _json

    from sparsescope.viewer import read_embedded

    base, _ = finished_run
    runs = str(base / "runs")
    page = tmp_path / "r.html"
    assert main(["view", "clirun", "--runs-dir", runs, "-o", str(page), "--rounds", "0", "--round", "2"]) == 0
    data = _json.loads(read_embedded(page.read_text(), "sparsescope-data"))
    assert [m["round"] for m in data["metrics"]] == [0, 2] and data["current"] == 1  # round 1 left out
    capsys.readouterr()
    for bad, msg in (("0,9", "round 9 is out of range"), ("2-0", "runs backwards"), ("a", "expected indices")):
        assert main(["view", "clirun", "--runs-dir", runs, "-o", str(tmp_path / "bad.html"), "--rounds", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sparsescope: error: --rounds") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad.html").exists()


def test_view_exact_has_its_own_default_name(finished_run, tmp_path, monkeypatch, capsys):
    """view --exact without -o writes RUN-rNNN-exact.html beside the plain page RUN-rNNN.html, never over it
    (a rerun of the same command writes the same bytes again, as plain view does)."""
    base, _ = finished_run
    runs = str(base / "runs")
    monkeypatch.chdir(tmp_path)
    assert main(["view", "clirun", "--runs-dir", runs, "--rounds", "2", "--round", "2", "--samples", "0"]) == 0
    (plain,) = tmp_path.glob("*.html")
    before = plain.read_bytes()
    assert main(["view", "clirun", "--runs-dir", runs, "--rounds", "2", "--round", "2", "--samples", "0", "--exact"]) == 0
    assert {p.name for p in tmp_path.glob("*.html")} == {plain.name, plain.stem + "-exact.html"}
    assert plain.read_bytes() == before and 'id="simplified"' in (tmp_path / (plain.stem + "-exact.html")).read_text()
    assert capsys.readouterr().out.strip().endswith(plain.stem + "-exact.html")
    assert main(["view", "clirun", "--runs-dir", runs, "--rounds", "2", "--round", "2", "--samples", "0",
                 "--box", "data"]) == 0  # another box: its own page too
    assert {p.name for p in tmp_path.glob("*.html")} == {plain.name, plain.stem + "-exact.html", plain.stem + "-data.html"}
    assert plain.read_bytes() == before


def test_importing_sparsescope_loads_no_torch():
    code = "import sys, sparsescope, sparsescope.graph, sparsescope.analysis; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
