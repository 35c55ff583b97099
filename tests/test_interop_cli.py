"""graph / report / view on MODEL.onnx: --box unit | LO,HI | data:FILE.npy, --labels FILE.json, and their errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from onnx_models import export
from sparsescope.cli import main
from sparsescope.graph import evaluate, from_json
from sparsescope.viewer import read_embedded

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3)).eval()
    path = export(m, torch.zeros(1, 1, 6, 6), root / "net.onnx", dynamo=False)
    data = np.random.default_rng(0).uniform(-1, 2, size=(30, 1, 6, 6)).astype(np.float32)
    np.save(root / "data.npy", data)
    (root / "labels.json").write_text(json.dumps({"outputs": ["cat", "dog", HOSTILE]}))
    return root, path, m, data


def _run(capsys, *argv):
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_graph_json_with_each_box(model, capsys, tmp_path):
    root, path, m, data = model
    for box, lo, hi in (("unit", 0.0, 1.0), ("-0.5,3", -0.5, 3.0)):
        rc, out, err = _run(capsys, "graph", path, "--format", "json", f"--box={box}", "-o", tmp_path / "g.json")
        assert rc == 0, err
        g = from_json((tmp_path / "g.json").read_text())
        assert np.all(g.bounds.lo["in"] == lo) and np.all(g.bounds.hi["in"] == hi)
        assert g.meta["box"] == ("unit" if box == "unit" else "-0.5,3")
    rc, out, err = _run(capsys, "graph", path, "--format", "json", "--box", f"data:{root / 'data.npy'}",
                        "-o", tmp_path / "d.json")
    g = from_json((tmp_path / "d.json").read_text())
    flat = data.reshape(30, -1).astype(np.float64)
    np.testing.assert_array_equal(g.bounds.lo["in"], flat.min(0))
    np.testing.assert_array_equal(g.bounds.hi["in"], flat.max(0))
    ev = evaluate(g, flat)
    for layer in g.layers:
        assert np.all(ev.post[layer.name] >= g.bounds.lo[layer.name])
        assert np.all(ev.post[layer.name] <= g.bounds.hi[layer.name])


def test_figures_report_and_view(model, capsys, tmp_path):
    root, path, m, data = model
    box = f"data:{root / 'data.npy'}"
    rc, out, err = _run(capsys, "graph", path, "--box", box, "--input", 4, "--format", "svg", "-o", tmp_path / "a.svg")
    assert rc == 0, err and (tmp_path / "a.svg").read_text().startswith("<svg")
    rc, out, err = _run(capsys, "report", path, "--labels", root / "labels.json", "-o", tmp_path / "rep")
    assert rc == 0, err
    page = (tmp_path / "rep" / "index.html").read_text()
    assert HOSTILE not in page and "dog" in page
    html = tmp_path / "v.html"
    rc, out, err = _run(capsys, "view", path, "--box", box, "--labels", root / "labels.json", "-o", html)
    assert rc == 0, err
    text = html.read_text()
    assert HOSTILE not in text
    g = from_json(read_embedded(text))
    assert g.output.labels == ("cat", "dog", HOSTILE)
    # the page embeds exactly what graph --format json writes, and it is byte-stable
    _run(capsys, "graph", path, "--format", "json", "--box", box, "--labels", root / "labels.json",
         "-o", tmp_path / "same.json")
    assert read_embedded(text) == (tmp_path / "same.json").read_text()
    first = text
    _run(capsys, "view", path, "--box", box, "--labels", root / "labels.json", "-o", html)
    assert html.read_text() == first


def test_model_file_mistakes_are_one_line(model, capsys, tmp_path):
    root, path, m, data = model
    np.save(tmp_path / "wrong.npy", np.zeros((4, 5)))
    np.save(tmp_path / "nan.npy", np.full((4, 36), np.nan))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with open(tmp_path / "pickle.npy", "wb") as fh:
        pickle.dump([1, 2], fh)
    (tmp_path / "bad.json").write_text('{"outputs": ["a"]}')
    (tmp_path / "junk.json").write_text("{nope")
    (tmp_path / "extra.json").write_text('{"outputs": ["a", "b", "c"], "colour": 1}')
    cases = [
        (["graph", path, "--box", "0,1,2"], "is not unit, data, LO,HI or data:FILE.npy"),
        (["graph", path, "--box", "2,1"], "lo is greater than hi"),
        (["graph", path, "--box", "nan,1"], "is not unit"),
        (["graph", path, "--box", "data"], "--box data needs sample data"),
        (["graph", path, "--box", "env"], "is not unit"),
        (["graph", path, "--box", f"data:{tmp_path / 'wrong.npy'}"], "holds shape (4, 5)"),
        (["graph", path, "--box", f"data:{tmp_path / 'nan.npy'}"], "NaN"),
        (["graph", path, "--box", f"data:{tmp_path / 'obj.npy'}"], "pickled objects are refused"),
        (["graph", path, "--box", f"data:{tmp_path / 'pickle.npy'}"], "pickle.npy"),
        (["graph", path, "--box", f"data:{tmp_path / 'none.npy'}"], "no data file"),
        (["graph", path, "--labels", tmp_path / "bad.json"], 'gives 1 "outputs" but the model has 3'),
        (["graph", path, "--labels", tmp_path / "junk.json"], "not valid JSON"),
        (["graph", path, "--labels", tmp_path / "extra.json"], "must be an object"),
        (["graph", path, "--input", 0], "--input on a model file"),
        (["graph", path, "--round", 1], "--round applies to runs"),
        (["graph", path, "--box", f"data:{root / 'data.npy'}", "--input", 30], "--input 30 is out of range"),
        (["graph", path, "--output", 3], "--output 3 is out of range"),
        (["view", tmp_path / "model.pt"], "holds weights, not an architecture"),
        (["report", tmp_path / "missing.onnx"], "no model file"),
        (["graph", "somerun", "--box", "0,1"], "a run takes unit, data or env"),
        (["graph", "somerun", "--labels", "x.json"], "--labels applies to model files"),
    ]
    for argv, expect in cases:
        rc, out, err = _run(capsys, *argv)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("sparsescope: error: "), (argv, err)
        assert expect in err, (argv, err)


def test_widget_traits_are_checked_and_anywidget_stays_optional(model):
    import subprocess
    import sys

    code = ("import sys, sparsescope, sparsescope.viewer, sparsescope.interop; "
            "sys.exit(1 if {'anywidget', 'onnx', 'torch'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    pytest.importorskip("anywidget")
    import traitlets

    import sparsescope
    from sparsescope.interop import from_onnx

    g = from_onnx(model[1])
    w = sparsescope.widget(g)
    assert (w.round, w.output, w.input, w.selected, w.drawn) == (0, None, [], "", [])
    w.output, w.input = 1, [0.5] * 36
    for name, bad in (("output", 3), ("round", 1), ("input", [0.0] * 35), ("input", [float("nan")] * 36)):
        with pytest.raises(traitlets.TraitError):
            setattr(w, name, bad)
    assert "sparsescope" in w._page and "bridge" not in w._page.split("<script>")[0]
    assert sparsescope.widget(g, output=2, height=300).output == 2  # the user's traits reach the widget
    with pytest.raises(sparsescope.SparsescopeError):
        sparsescope.widget([])


def test_analyse_a_model_file(model, capsys, tmp_path):
    root, path, m, data = model
    out = tmp_path / "a.json"
    rc, _, err = _run(capsys, "analyse", path, "--box=-1,2", "-o", out)
    assert rc == 0, err
    doc = json.loads(out.read_text())
    assert doc and "sparsescope: error" not in err
    rc, text, err = _run(capsys, "analyse", path, "--box", f"data:{root / 'data.npy'}", "--exact", "--time-limit", 5)
    assert rc == 0, err
    rc, _, err = _run(capsys, "analyse", path, "--box", "ball:0:0.1")
    assert rc == 2 and "needs a run's test images" in err and err.count("\n") == 1
