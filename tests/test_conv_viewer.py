"""The conv viewer's round slider, test-image numbering, drawing pad and export, in headless chromium.

The slider's rounds ride compactly (``_convembed``) and the page unrolls them
itself: each round's unrolled edges, weights, biases and bounds must equal that
round's flowgraph exactly, for convolutions with stride and padding and an
average pool; the header must name the round on the slider.
"""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn as nn

from sparsescope.analysis import live_mask
from sparsescope.bounds import annotate
from sparsescope.graph import evaluate, from_torch
from sparsescope.viewer._convpage import build_conv_page, write_conv_page

from test_viewer_browser import browser, opened  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser
PICK = np.array([9, 2, 33, 480])
DENSITY = (1.0, 0.5, 0.25, 0.1)
HOSTILE = "<img src=x onerror=alert(1)>"
LABELS = [str(k) for k in range(4)] + [HOSTILE, "ctl\x01\ufffe"] + [str(k) for k in range(6, 10)]


def _rounds():
    """Four rounds of one conv net (stride 2 + padding 1, padding 1, an average pool), nested masks."""
    torch.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(196, 10))
    gen = torch.Generator().manual_seed(4)
    score = {k: torch.rand(p.shape, generator=gen) for k, p in m.named_parameters() if k.endswith("weight")}
    w0 = {k: p.detach().clone() for k, p in m.named_parameters()}
    graphs, metrics = [], []
    for r, d in enumerate(DENSITY):
        with torch.no_grad():
            for k, p in m.named_parameters():
                if k in score:
                    p.copy_(w0[k] * (score[k] < d))
                else:
                    p.copy_(w0[k] + 0.01 * r)  # biases move between rounds too
        g = annotate(from_torch(m, (28, 28), output_labels=LABELS, meta={"run": "convrun", "round": r}), "unit")
        graphs.append(g)
        metrics.append({"round": r, "density": d, "weights_left": {"c": int(sum(layer.num_edges for layer in g.layers[1:]))},
                        "test_accuracy": 0.5 + 0.1 * r})
    return graphs, metrics


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    from sparsescope.data import load

    graphs, metrics = _rounds()
    data = load("mnist5k")
    x, y = data.x_test[PICK].astype(np.float64), data.y_test[PICK]
    rounds = [graphs[0], None, graphs[2], graphs[3]]  # round 1 left out, as view --rounds 0,2,3 does
    path = write_conv_page(tmp_path_factory.mktemp("convview") / "v.html", rounds, metrics, current=3, samples_x=x,
                           samples_y=y, samples_index=PICK, title="convrun")
    return {"graphs": graphs, "x": x, "y": y, "url": path.as_uri(), "metrics": metrics}


@pytest.fixture
def page(browser, conv):  # noqa: F811
    with opened(browser, conv["url"]) as p:
        yield p


def _same_graph(page, g) -> None:
    got = page.evaluate("sparsescope.graph()")
    assert [d["name"] for d in got] == [layer.name for layer in g.layers[1:]]
    for layer, d in zip(g.layers[1:], got):
        assert np.array_equal(d["dst"], layer.dst) and np.array_equal(d["src"], layer.src), layer.name
        assert np.array_equal(d["weight"], layer.weight) and np.array_equal(d["bias"], layer.bias), layer.name
        if layer.weight_id is not None:
            assert np.array_equal(d["weight_id"], layer.weight_id), layer.name
        assert np.array_equal(d["lo"], g.bounds.lo[layer.name]) and np.array_equal(d["hi"], g.bounds.hi[layer.name]), layer.name


def test_pages_are_deterministic_and_reject_mismatched_rounds(conv):
    g = conv["graphs"]
    kw = dict(samples_x=conv["x"], samples_y=conv["y"], samples_index=PICK, title="t")
    assert build_conv_page(g, conv["metrics"], current=1, **kw) == build_conv_page(g, conv["metrics"], current=1, **kw)
    with pytest.raises(ValueError, match="metrics"):
        build_conv_page(g[:2], conv["metrics"], current=1, **kw)
    with pytest.raises(ValueError, match="current round"):
        build_conv_page([g[0], None, g[2], g[3]], conv["metrics"], current=1, **kw)


def test_slider_moves_header_and_graph_to_each_embedded_round(page, conv):
    assert page.evaluate("sparsescope.slider()") == [0, 2, 3]
    assert page.locator("#title").text_content() == "convrun \u00b7 round 3"
    _same_graph(page, conv["graphs"][3])
    for pos, r in ((0, 0), (1, 2)):
        page.locator("#round").fill(str(pos))  # the user's slider: an input event
        assert page.locator("#title").text_content() == f"convrun \u00b7 round {r}"
        assert f"density {100 * DENSITY[r]:.2f}%" in page.locator("#subtitle").text_content()
        assert page.evaluate("sparsescope.state().round") == r
        _same_graph(page, conv["graphs"][r])
        sizes = page.evaluate("sparsescope.sizes()")
        assert sizes["edges"] <= sum(layer.num_edges for layer in conv["graphs"][r].layers[1:])
    page.evaluate("sparsescope.set({round: 1})")  # not embedded: the page stays where it is
    assert page.evaluate("sparsescope.state().round") == 2


def test_samples_are_numbered_by_test_index_and_values_follow_the_round(page, conv):
    assert page.evaluate("sparsescope.samples().thumbs") == PICK.tolist()
    page.locator("#thumbs canvas").nth(2).click()
    assert page.evaluate("sparsescope.state().input") == {"sample": 33}
    assert "test image #33 " in page.locator("#input-info").text_content()
    for pos, r in ((2, 3), (0, 0)):
        page.locator("#round").fill(str(pos))
        want = evaluate(conv["graphs"][r], conv["x"][2][None]).post["out"][0]
        np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), want, rtol=0, atol=1e-9)


def test_drawing_pad_feeds_the_graph(page, conv):
    pad = page.locator("#pad").bounding_box()
    page.mouse.move(pad["x"] + 30, pad["y"] + 30)
    page.mouse.down()
    page.mouse.move(pad["x"] + 110, pad["y"] + 100, steps=8)
    page.mouse.up()
    st = page.evaluate("sparsescope.state()")
    assert st["mode"] == "input" and st["input"] == {"drawn": True} and st["inputName"] == "drawn input"
    x = np.asarray(page.evaluate("sparsescope.input()"))
    assert x.shape == (784,) and x.max() == 1.0 and (x > 0).sum() > 10
    want = evaluate(conv["graphs"][3], x[None]).post["out"][0]
    np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), want, rtol=0, atol=1e-9)


def test_export_is_a_fitted_titled_png(page, conv):
    from PIL import Image

    page.evaluate("sparsescope.set({view: 'unrolled', output: 4})")
    page.mouse.wheel(0, -2000)  # the user's zoom is not the export's
    title = page.evaluate("sparsescope.exportTitle()")
    assert title[0] == "convrun \u00b7 round 3" and "density" in title[1] and "accuracy" in title[1]
    assert "unrolled view" in title[2] and "subgraph of out.4" in title[2]
    url = page.evaluate("sparsescope.pngDataURL()")
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"))
    assert img.shape == (2000, 3200)
    ink = img < 200
    assert ink[:130].any()  # the title block
    rows, cols = np.flatnonzero(ink[150:].any(axis=1)), np.flatnonzero(ink[150:].any(axis=0))
    assert rows.size and cols.size
    assert cols.min() > 20 and cols.max() < 3180 and rows.max() + 150 < 1990  # the whole graph inside the page
    assert (cols.max() - cols.min()) > 0.6 * 3200 or (rows.max() - rows.min()) > 0.6 * 1850  # fitted, not a corner


def _svg(page):
    """The page's SVG export parsed: node rects ``{id: (x, y, w, h)}``, card rects ``{id: ...}``, line segments
    per layer ``[(x1, y1, x2, y2)]``, curve end points per layer, and the text."""
    text = page.evaluate("sparsescope.svgText()")
    root = ET.fromstring(text)  # well-formed: every string escaped
    ns = "{http://www.w3.org/2000/svg}"
    box = lambda e: tuple(float(e.get(k)) for k in ("x", "y", "width", "height"))  # noqa: E731
    nodes = {e.get("data-id"): box(e) for e in root.iter(ns + "rect") if e.get("class") == "node"}
    cards = {g.get("data-id"): box(g.find(ns + "rect")) for g in root.iter(ns + "g") if g.get("class") == "card"}
    lines, curves = [], []
    for e in root.iter(ns + "path"):
        nums = [float(v) for v in re.findall(r"-?[0-9.]+", e.get("d"))]
        if e.get("class") == "edges":
            lines += [(e.get("data-layer"), *nums[k:k + 4]) for k in range(0, len(nums), 4)]
        elif e.get("class") == "curves":  # M x1 y1 C c1 c2 x2 y2
            curves += [(e.get("data-layer"), nums[k], nums[k + 1], nums[k + 6], nums[k + 7]) for k in range(0, len(nums), 8)]
    return text, root, nodes, cards, lines, curves


def _at(rects, x, y):
    hit = [i for i, (rx, ry, w, h) in rects.items() if rx - 0.02 <= x <= rx + w + 0.02 and ry - 0.02 <= y <= ry + h + 0.02]
    assert len(hit) == 1, (x, y, hit)
    return hit[0]


def _chan(g, nid):
    """The card id of node ``nid``: its channel for a feature map, the layer for a plain 2-d input, itself otherwise."""
    name, i = g.locate(nid)
    layer = g.layer(name)
    if len(layer.shape) == 3:
        return f"{name}[{i // (layer.shape[1] * layer.shape[2])}]"
    return name if len(layer.shape) == 2 else nid


def test_svg_export_draws_exactly_the_pages_graph(page, conv):
    g = conv["graphs"][3]
    # unrolled, subgraph of out.4 (a hostile label): every live node a rect, every live edge a line
    page.evaluate("sparsescope.set({view: 'unrolled', output: 4})")
    text, root, nodes, cards, lines, curves = _svg(page)
    assert HOSTILE not in text and "&lt;img src=x" in text and text == page.evaluate("sparsescope.svgText()")
    assert root.get("data-view") == "unrolled" and root.get("data-output") == "4"
    live_n, live_e = live_mask(g, [4])
    assert set(nodes) == {layer.node_id(int(i)) for layer in g.layers for i in np.flatnonzero(live_n[layer.name])}
    want = {(layer.name, layer.node_id(int(d)), g.layer(layer.source).node_id(int(s)))
            for layer in g.layers[1:] for d, s in zip(layer.dst[live_e[layer.name]], layer.src[live_e[layer.name]])}
    got = [(name, _at(nodes, x2, y2), _at(nodes, x1, y1)) for name, x1, y1, x2, y2 in lines]
    assert len(got) == len(want) and set(got) == want and not curves
    # channel view, nothing expanded: one curve per live channel pair, from card to card
    page.evaluate("sparsescope.set({view: 'channels', output: null})")
    text, root, nodes, cards, lines, curves = _svg(page)
    live_n, live_e = live_mask(g)
    pairs = {(layer.name, _chan(g, layer.node_id(int(d))), _chan(g, g.layer(layer.source).node_id(int(s))))
             for layer in g.layers[1:] for d, s in zip(layer.dst[live_e[layer.name]], layer.src[live_e[layer.name]])}
    got = [(name, _at(cards, x2, y2), _at(cards, x1, y1)) for name, x1, y1, x2, y2 in curves]
    assert len(got) == len(pairs) and set(got) == pairs and not lines
    # the c1 and c2 channels expanded: lines between them, curves elsewhere, as the page draws them
    chs = [c for c in page.evaluate("sparsescope.cards()") if c.startswith(("c1[", "c2["))]
    page.evaluate(f"sparsescope.set({{expand: {json.dumps(chs)}}})")
    text, root, nodes, cards, lines, curves = _svg(page)
    drawn = page.evaluate("sparsescope.drawnEdges()")
    got = sorted((name, _at(nodes, x2, y2), _at(nodes, x1, y1)) for name, x1, y1, x2, y2 in lines)
    assert got == sorted(map(tuple, drawn["lines"])) and len(curves) == len(drawn["curves"]) and got
    assert {_chan(g, n) for n in nodes if n.startswith(("c1", "c2"))} == set(chs)


def test_link_reopens_the_same_view(page, conv, browser):  # noqa: F811
    page.locator("#round").fill("1")  # round 2
    page.evaluate("sparsescope.set({output: 7, sample: 33, mode: 'input'})")
    ch = next(c for c in page.evaluate("sparsescope.cards()") if c.startswith("c1["))
    page.evaluate(f"sparsescope.set({{expand: [{json.dumps(ch)}]}})")
    page.locator("#link").click()
    url = page.locator("#link-text").input_value()
    assert "#" in url and url == page.evaluate("location.href") and url.endswith(page.evaluate("sparsescope.hash()"))
    want = (page.evaluate("sparsescope.state()"), page.evaluate("sparsescope.expanded()"), page.evaluate("sparsescope.sizes()"),
            page.evaluate("sparsescope.outputs()"), page.evaluate("sparsescope.svgText()"))
    assert want[0]["round"] == 2 and want[0]["input"] == {"sample": 33} and want[1] == [ch]
    with opened(browser, url) as other:
        got = (other.evaluate("sparsescope.state()"), other.evaluate("sparsescope.expanded()"), other.evaluate("sparsescope.sizes()"),
               other.evaluate("sparsescope.outputs()"), other.evaluate("sparsescope.svgText()"))
        assert got == want
        other.evaluate("sparsescope.set({view: 'unrolled', drawn: new Float64Array(784).fill(0.5), mode: 'input'})")
        url2 = other.evaluate("location.href")
    with opened(browser, url2) as third:
        st = third.evaluate("sparsescope.state()")
        assert st["view"] == "unrolled" and st["input"] == {"drawn": True} and third.evaluate("sparsescope.input()") == [128 / 255] * 784
    with opened(browser, conv["url"] + "#r=9&o=99&x=%ZZ,nope&i=dAAA&sel=%E0") as bad:  # a bad link: a working page
        st = bad.evaluate("sparsescope.state()")
        assert st["round"] == 3 and st["output"] is None and bad.evaluate("sparsescope.expanded()") == []


def _crafted_conv():
    """A tiny conv net that simplifies: c1[0] = relu(x + 0.25) from one kernel weight is always on and
    composable (skip edges in -> c2); c1[1] = relu(0.5 - x) is neither on nor off; c2[1] is always on,
    and c2[1,1,1] (two sources, two consumers) stays as a linear unit."""
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m[0].weight[0, 0, 1, 1], m[0].bias[0] = 1.0, 0.25
        m[0].weight[1, 0, 0, 2], m[0].bias[1] = -1.0, 0.5
        m[2].weight[0, 0, 0, 0], m[2].weight[0, 1, 2, 1], m[2].bias[0] = 0.75, -1.5, 0.125
        m[2].weight[1, 0, 1, 2], m[2].weight[1, 1, 1, 1], m[2].bias[1] = -1.0, 2.0, 2.0
        m[5].weight.copy_(torch.tensor([[1, 0, -1, 0, 2, 0, 0, 1], [0, 1, 0, 0, 0, -1, 1, 0], [0.5, 0, 0, 2, 0, 0, 0, -1.0]]))
        m[5].bias.copy_(torch.tensor([0.0, 1.0, -0.5]))
    return from_torch(m, (6, 6), output_labels=["a", HOSTILE, "c"], meta={"run": "tiny", "round": 0})


def test_simplified_view_draws_exactly_the_simplified_conv_graph(browser, tmp_path):  # noqa: F811
    from sparsescope.exact import Box, analyse_box, analysis_dict
    from sparsescope.viewer._simplified import simplified_doc
    from test_viewer_exact_browser import page_dag

    g0 = _crafted_conv()
    a = analyse_box(g0, Box("unit", np.zeros(36), np.ones(36)), exact=True)
    doc = analysis_dict(a)["simplified"]
    assert doc["composed"], doc["sizes"]
    metrics = [{"round": r, "density": 1.0, "test_accuracy": None} for r in (0, 1)]  # analysed: round 1, the opened one
    path = write_conv_page(tmp_path / "s.html", [a.graph, a.graph], metrics, current=1,
                           samples_x=np.zeros((0, 36)), samples_y=np.zeros(0, dtype=np.int64), title="tiny " + HOSTILE,
                           simplified=simplified_doc(a))
    assert HOSTILE not in path.read_text()
    want_nodes = {n["id"]: (n["activation"], n["bias"]) for n in doc["dag"]["nodes"]}
    want_edges = {(s, d, w) for s, d, w in doc["dag"]["edges"]}
    assert any(s.startswith("in") and d.startswith("c2") for s, d, _ in want_edges)  # skip edges
    with opened(browser, path.as_uri()) as page:
        page.locator("#graph-simp").click()
        page.evaluate("sparsescope.set({view: 'unrolled'})")
        assert page.evaluate("sparsescope.simplified()")["on"]
        nodes, edges = page_dag(page, g0, want_nodes)
        assert nodes == {k: v for k, v in want_nodes.items() if not k.startswith("in")} and edges == want_edges
        # drawn (unrolled): every DAG edge a line, every DAG node a node of the SVG export
        assert {(s, d) for _, d, s in page.evaluate("sparsescope.drawnEdges().lines")} == {(s, d) for s, d, _ in want_edges}
        text, root, svg_nodes, cards, lines, curves = _svg(page)
        assert set(svg_nodes) == set(want_nodes) and len(lines) == len(want_edges) and "exactly simplified" in text
        linear = {e.get("data-id") for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("data-linear")}
        assert linear == {k for k, (act, _) in want_nodes.items() if act == "linear" and k.startswith("c")} and linear
        # values: the original's outputs
        x = np.linspace(0, 1, 36)
        page.evaluate(f"sparsescope.setDrawn({x.tolist()})")
        np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), evaluate(g0, x[None]).post["out"][0], rtol=0, atol=1e-12)
        # the certificate per unit (hover text); a composed unit keeps its facts
        comp = doc["composed"][0]
        assert "composed into" in page.evaluate(f"sparsescope.describe({json.dumps(comp)})") or comp not in want_nodes
        page.evaluate("sparsescope.set({simp: false})")
        assert "composed into" in page.evaluate(f"sparsescope.describe({json.dumps(comp)})")
        page.evaluate("sparsescope.set({simp: true})")
        url = page.evaluate("location.href")
        assert "s=1" in url
        # another round: none of the certificate's facts and no simplified sizes, a note instead
        page.evaluate("sparsescope.set({round: 0})")
        sizes = page.locator("#sizes").text_content()
        assert "composed into" not in page.evaluate(f"sparsescope.describe({json.dumps(comp)})")
        assert "exact analysis: round 1 only" in page.evaluate(f"sparsescope.describe({json.dumps(comp)})")
        assert "vertices" not in sizes.split("simplified")[1] and "round 1 only" in sizes and page.locator("#graph-simp").is_disabled()
    with opened(browser, url) as again:  # the link reopens the simplified view
        assert again.evaluate("sparsescope.simplified()")["on"] and again.evaluate("sparsescope.state().view") == "unrolled"
