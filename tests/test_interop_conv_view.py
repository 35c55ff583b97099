"""Imported conv models on the conv page: ``view MODEL.onnx``, ``write_graph_page(from_torch(...))``.

A model with convolutions, imported from ONNX (torch's legacy exporter) or
from a torch module, must get the page a native conv run gets (channel view,
feature maps, drawing pad), and every value the page shows -- each feature-map
position and each output, on an embedded data row and on a drawn input --
must equal the torch model's float64 evaluation (and the onnx reference
evaluator's, in float32).  ``report MODEL.onnx`` must draw the conv figures.
"""

from __future__ import annotations

import copy
import numpy as np
import pytest
import torch

from onnx_models import export, reference
from sparsescope.cli import main
from sparsescope.graph import from_json
from sparsescope.interop import from_torch, open_model
from sparsescope.viewer import notebook_html, read_embedded, write_graph_page

from test_viewer_browser import browser, opened  # noqa: F401  (browser is a fixture)

N = 5


def _models():
    """(name, module, input shape): the smallest conv net, and one with two input channels, stride,
    padding and an average pool."""
    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 3))
    wide = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))
    return [("small", small.eval(), (1, 8, 8)), ("wide", wide.eval(), (2, 8, 8))]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("convview")
    out = []
    for name, m, shape in _models():
        path = export(m, torch.zeros(1, *shape), root / f"{name}.onnx", dynamo=False)
        data = np.random.default_rng(len(out)).uniform(0, 1, size=(N, *shape)).astype(np.float32)
        np.save(root / f"{name}.npy", data)
        out.append({"name": name, "module": m, "shape": shape, "onnx": path, "data": root / f"{name}.npy", "x": data})
    return root, out


def _torch_values(m: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Every module's output on ``x`` (float64), flattened per sample."""
    outs, h = [], torch.from_numpy(np.asarray(x, dtype=np.float64))
    with torch.no_grad():
        for mod in m.double():
            h = mod(h)
            outs.append(h.reshape(h.shape[0], -1).numpy().copy())
    m.float()
    return outs


def _page_values(page, graph) -> dict[str, np.ndarray]:
    """Each layer's values as the page shows them (``sparsescope.value(node id)``)."""
    out = {}
    for layer in graph.layers[1:]:
        ids = [layer.node_id(i) for i in range(layer.size)]
        out[layer.name] = np.asarray(page.evaluate("(ids) => ids.map((i) => sparsescope.value(i))", ids), dtype=np.float64)
    return out


def _check_values(page, graph, m: torch.nn.Module, x: np.ndarray) -> None:
    """The page's values on input ``x`` (flat) equal torch's, layer by layer (matched by size), and its outputs."""
    ref = _torch_values(m, x.reshape(1, *graph.input.shape if len(graph.input.shape) == 3 else (1, *graph.input.shape)))
    shown = _page_values(page, graph)
    for layer in graph.layers[1:]:
        want = [r[0] for r in ref if r.shape[1] == layer.size]
        assert want, layer.name
        assert any(np.allclose(shown[layer.name], w, rtol=0, atol=1e-9) for w in want), layer.name
    np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), ref[-1][0], rtol=0, atol=1e-9)


def _is_conv_page(text: str) -> bool:
    return 'id="view-channels"' in text and 'id="view-unrolled"' in text


@pytest.mark.browser
def test_view_model_onnx_is_the_conv_page_with_faithful_values(models, browser, tmp_path, capsys):  # noqa: F811
    root, ms = models
    for mdl in ms:
        html = tmp_path / f"{mdl['name']}.html"
        assert main(["view", str(mdl["onnx"]), "--box", f"data:{mdl['data']}", "-o", str(html)]) == 0
        text = html.read_text()
        assert _is_conv_page(text), mdl["name"]
        graph = from_json(read_embedded(text))
        assert graph.layers[1].shape[0] == mdl["module"][0].out_channels
        onnx_ref = reference(mdl["onnx"], mdl["x"])
        with opened(browser, html.as_uri()) as page:
            assert page.evaluate("sparsescope.state().view") == "channels"
            assert page.locator("#title").text_content() == mdl["name"] + " \u00b7 round 0"  # one round, as a model file is
            assert "density 100.00%" in page.locator("#subtitle").text_content()
            assert page.evaluate("sparsescope.samples().thumbs") == list(range(N))
            for k in range(N):
                page.locator("#thumbs canvas").nth(k).click()
                assert page.evaluate("sparsescope.state().input") == {"sample": k}
                x = np.asarray(page.evaluate("sparsescope.input()"))
                np.testing.assert_array_equal(x, mdl["x"][k].reshape(-1).astype(np.float64))
                _check_values(page, graph, mdl["module"], x)
                np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), onnx_ref[k], rtol=1e-5, atol=1e-5)
            # the channel view draws no position-level lines until a channel is expanded
            page.evaluate("sparsescope.set({mode: 'weights'})")
            assert "c1[0]" in page.evaluate("sparsescope.cards()") and page.evaluate("sparsescope.drawn()")["lines"] == 0
            page.evaluate("sparsescope.set({expand: sparsescope.cards().filter((c) => c.startsWith('in') || c === 'c1[0]')})")
            assert page.evaluate("sparsescope.drawn()")["lines"] > 0
            if mdl["shape"][0] == 1:  # the drawing pad paints a one-channel image
                pad = page.locator("#pad").bounding_box()
                page.mouse.move(pad["x"] + 0.3 * pad["width"], pad["y"] + 0.3 * pad["height"])
                page.mouse.down()
                page.mouse.move(pad["x"] + 0.7 * pad["width"], pad["y"] + 0.6 * pad["height"], steps=6)
                page.mouse.up()
                assert page.evaluate("sparsescope.state().input") == {"drawn": True}
                x = np.asarray(page.evaluate("sparsescope.input()"))
                assert x.shape == (64,) and (x > 0).sum() > 3
                _check_values(page, graph, mdl["module"], x)


@pytest.mark.browser
def test_from_torch_graph_page_is_the_conv_page(models, browser, tmp_path):  # noqa: F811
    _, ms = models
    mdl = ms[1]
    graph = open_model(mdl["onnx"]).graph  # the box's bounds; the torch import must give the same edges
    g = from_torch(mdl["module"], mdl["shape"])
    for a, b in zip(graph.layers, g.layers):
        assert a.shape == b.shape and np.array_equal(a.dst, b.dst) and np.array_equal(a.src, b.src)
    path = write_graph_page(tmp_path / "t.html", g, samples_x=mdl["x"].reshape(N, -1).astype(np.float64),
                            samples_y=np.zeros(N, dtype=np.int64), title="torch")
    assert _is_conv_page(path.read_text())
    with opened(browser, path.as_uri()) as page:
        page.locator("#thumbs canvas").nth(3).click()
        _check_values(page, g, mdl["module"], np.asarray(page.evaluate("sparsescope.input()")))
    assert _is_conv_page(__import__("html").unescape(notebook_html(g)))
    # a pruned model: the density shown counts kernel and matrix weights (torch's parameters)
    pruned = copy.deepcopy(mdl["module"])
    with torch.no_grad():
        for p in pruned.parameters():
            if p.ndim > 1:
                p.mul_(p.abs() > p.abs().median())
    ws = [p for p in pruned.parameters() if p.ndim > 1]
    want = sum(int((p != 0).sum()) for p in ws) / sum(p.numel() for p in ws)
    path = write_graph_page(tmp_path / "p.html", from_torch(pruned, mdl["shape"]), title="pruned")
    with opened(browser, path.as_uri()) as page:
        assert f"density {100 * want:.2f}% " in page.locator("#subtitle").text_content()
        assert page.evaluate("sparsescope.samples().thumbs") == []


def test_report_model_onnx_draws_the_conv_figures(models, tmp_path):
    root, ms = models
    mdl = ms[0]
    assert main(["report", str(mdl["onnx"]), "--box", f"data:{mdl['data']}", "-o", str(tmp_path / "rep")]) == 0
    names = {p.name for p in (tmp_path / "rep" / "figures").iterdir()}
    assert {"channels.svg", "kernels.svg", "feature-maps.svg"} <= names
    assert "Channel-level view" in (tmp_path / "rep" / "index.html").read_text()
