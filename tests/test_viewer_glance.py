"""The viewer at a glance, in headless Debian chromium: what the default view shows, the
selection card, input mode, the round slider, sample numbering, the magnifier and export."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sparsescope.analysis import box_states, live_mask
from sparsescope.bounds import annotate
from sparsescope.graph import evaluate, from_torch
from sparsescope.viewer import write_page

from test_viewer_browser import Session, opened, _model, browser, wait_for  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser
PICK = np.array([5, 17, 42, 400, 873])


@pytest.fixture(scope="module")
def glance(tmp_path_factory):
    from sparsescope.data import load

    labels = [str(k) for k in range(10)]
    rounds, metrics = [], []
    for r, d in enumerate((1.0, 0.2, 0.03)):
        m = _model(10 + r, d)
        if r == 2:
            import torch

            with torch.no_grad():  # a bias-only h2 unit with a positive value: live, a constant
                m[3].weight[7] = 0.0
                m[3].bias[7] = 0.25
                m[5].weight[:, 7] = 0.5
                # h2.3 proven always off over the unit box: nonpositive weights from h1 (>= 0), bias < 0
                m[3].weight[3] = -m[3].weight[3].abs()
                m[3].weight[3, :6] = -0.2
                m[3].bias[3] = -0.5
                m[5].weight[:, 3] = 0.3
        g = annotate(from_torch(m, (28, 28), output_labels=labels, meta={"run": "glance-run", "round": r}), "unit")
        left = {layer.name: layer.num_edges for layer in g.layers[1:]}
        rounds.append(g)
        metrics.append({"round": r, "density": sum(left.values()) / 26432, "weights_left": left,
                        "weights_total": {"h1": 25088, "h2": 1024, "out": 320}, "test_accuracy": 0.9 - 0.05 * r})
    data = load("mnist5k")
    x, y = data.x_test[PICK].astype(np.float64), data.y_test[PICK]
    path = write_page(tmp_path_factory.mktemp("glance") / "view.html", rounds, metrics, current=2, samples_x=x,
                      samples_y=y, samples_index=PICK, title="glance-run")
    return {"rounds": rounds, "x": x, "y": y, "url": path.as_uri()}


@pytest.fixture
def page(browser, glance):  # noqa: F811
    with opened(browser, glance["url"]) as p:
        yield p


def _live_ids(g, outputs=None) -> set[str]:
    nodes, _ = live_mask(g, outputs)
    return {layer.node_id(int(i)) for layer in g.layers[1:] for i in np.flatnonzero(nodes[layer.name])}


def test_opens_on_the_live_graph_fitted_and_toggles_unused_units(page, glance):
    g = glance["rounds"][2]
    placed = page.evaluate("sparsescope.placed()")
    assert {p["id"] for p in placed} == _live_ids(g) | {g.output.node_id(k) for k in range(10)}
    assert "h2.7" in {p["id"] for p in placed}  # the constant unit is live
    w, h = page.evaluate("[document.getElementById('view').clientWidth, document.getElementById('view').clientHeight]")
    assert all(0 <= p["x"] <= w and 0 <= p["y"] <= h for p in placed)  # fitted: everything on screen
    page.locator("#unused").check()
    placed = page.evaluate("sparsescope.placed()")
    assert len(placed) == sum(layer.size for layer in g.layers[1:])
    assert all(0 <= p["x"] <= w and 0 <= p["y"] <= h for p in placed)
    assert "u=1" in page.url


def test_card_beside_the_node_with_contributions_that_sum_to_the_value(page, glance):
    g = glance["rounds"][2]
    page.evaluate("sparsescope.set({mode: 'input', input: {sample: 42}})")
    ev = evaluate(g, glance["x"][2][None])
    nid = next(layer.node_id(int(i)) for layer in g.layers[2:3] for i in np.flatnonzero(ev.pre[layer.name][0] > 0.1))
    page.evaluate(f"sparsescope.select('{nid}')")
    rows = page.evaluate("Array.from(document.querySelectorAll('#sel table.contrib tr')).map(r => "
                         "[r.className, Array.from(r.cells).map(c => c.textContent)])")
    name, i = g.locate(nid)
    layer = g.layer(name)
    assert rows[1][0] == "bias" and float(rows[1][1][-1]) == pytest.approx(layer.bias[i], rel=1e-3)
    terms = [float(cells[-1]) for cls, cells in rows[1:] if cls in ("bias", "", "rest")]
    total = next(float(cells[-1]) for cls, cells in rows if cls == "sum" and cells[0] == "sum")
    assert total == pytest.approx(ev.pre[name][0, i], rel=1e-3)
    assert sum(terms) == pytest.approx(total, rel=2e-3, abs=1e-3)  # the rows (4 digits each) add up
    # the card is where the eye is: beside the node, on screen
    node = next(p for p in page.evaluate("sparsescope.placed()") if p["id"] == nid)
    card = page.locator("#card").bounding_box()
    stage = page.locator("#view").bounding_box()
    assert abs(card["y"] - stage["y"] - node["y"]) < 300 and min(abs(card["x"] - stage["x"] - node["x"]),
                                                                 abs(card["x"] + card["width"] - stage["x"] - node["x"])) < 400
    assert card["x"] >= stage["x"] and card["x"] + card["width"] <= stage["x"] + stage["width"] + 1


def test_input_mode_keeps_ids_beside_values_and_fades_outside_the_subgraph(page, glance):
    g = glance["rounds"][2]
    page.evaluate("sparsescope.set({mode: 'input', input: {sample: 17}, out: 3})")
    root = ET.fromstring(page.evaluate("sparsescope.svgText()"))
    texts = [(t.text or "", float(t.get("y")), t.get("fill")) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    ids = {s: (y, fill) for s, y, fill in texts if re.fullmatch(r"(h\d|out)\.\d+", s)}
    values = [(s, y) for s, y, _ in texts if s.startswith("[")]
    inside = _live_ids(g, [3])
    for nid, (y, fill) in ids.items():
        assert any(abs(vy - y) < 0.01 for _, vy in values), nid  # its [value] on the same line
        assert (fill == "#c9c9c9") == (nid not in inside), (nid, fill)  # faded text outside the subgraph
    assert any(n not in inside for n in ids) and any(n in inside for n in ids)
    # numbers at 4 significant digits
    assert all(re.fullmatch(r"\[-?(\d\.\d{3}(e[+-]\d+)?|\d{2}\.\d{2}|\d{3}\.\d|0\.\d{4}|0\.0\d{4}|0\.00\d{4}|0)\]", s) for s, _ in values)


def test_header_and_input_edges_follow_the_round_slider(page, glance):
    assert page.locator("#title").text_content() == "glance-run \u00b7 round 2"
    assert page.evaluate("sparsescope.state().inEdges") is True
    page.locator("#round").fill("0")  # dense: 25,088 input edges -> off
    assert page.locator("#title").text_content() == "glance-run \u00b7 round 0"
    assert page.evaluate("sparsescope.state().inEdges") is False
    page.locator("#round").fill("2")
    assert page.evaluate("sparsescope.state().inEdges") is True


def test_samples_are_numbered_by_their_test_set_index(page, glance):
    idx = page.evaluate("Array.from(document.querySelectorAll('#thumbs canvas')).map(c => +c.dataset.i)")
    assert idx == PICK.tolist()
    page.locator("#thumbs canvas").nth(1).click()
    assert page.evaluate("sparsescope.state().input") == {"sample": 17}
    assert "test image #17 " in page.locator("#input-info").text_content()
    assert "i=s17" in page.url
    got = page.evaluate("sparsescope.values()")
    want = evaluate(glance["rounds"][2], glance["x"][1][None]).post["out"][0]
    assert np.max(np.abs(np.asarray(got["out"]) - want)) <= 1e-5


def test_hover_magnifies_weight_tiles(page):
    tile = next(p for p in page.evaluate("sparsescope.placed()") if p["id"].startswith("h1."))
    stage = page.locator("#view").bounding_box()
    page.mouse.move(stage["x"] + tile["x"] + 5, stage["y"] + tile["y"])
    page.wait_for_timeout(100)
    widths = page.evaluate("Array.from(document.querySelectorAll('#tip canvas')).map(c => c.getBoundingClientRect().width)")
    assert widths and min(widths) >= 100


def test_export_is_fitted_and_titled(page, glance):
    page.evaluate("sparsescope.zoom(6); sparsescope.pan(-900, 400)")  # the user's view is not the export's
    svg = page.evaluate("sparsescope.svgText()")
    root = ET.fromstring(svg)
    w, h = float(root.get("width")), float(root.get("height"))
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "glance-run \u00b7 round 2" in texts and any("density" in t and "accuracy" in t for t in texts)
    circles = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter("{http://www.w3.org/2000/svg}circle")]
    assert circles and all(0 <= x <= w and 0 <= y <= h for x, y in circles)
    g = glance["rounds"][2]
    assert sum(1 for t in texts if re.fullmatch(r"out\.\d  \d", t)) == g.output.size


def test_units_proven_always_off_are_hatched_with_a_legend_entry(page, glance):
    g = glance["rounds"][2]
    placed = page.evaluate("sparsescope.placed()")
    off = set(box_states(g).off)
    shown_off = {p["id"] for p in placed if p["off"]}
    assert shown_off and shown_off == off & {p["id"] for p in placed}
    assert "always off" in page.locator("#figures").text_content()
    root = ET.fromstring(page.evaluate("sparsescope.svgText()"))
    ns = "{http://www.w3.org/2000/svg}"
    label_y = {t.text: float(t.get("y")) for t in root.iter(ns + "text") if t.text in {p["id"] for p in placed}}
    grey_y = [float(c.get("cy")) for c in root.iter(ns + "circle") if c.get("fill") == "#ececec"]
    grey_y += [float(r.get("y")) + float(r.get("height")) / 2 for r in root.iter(ns + "rect") if r.get("fill") == "#ececec"]
    for nid, y in label_y.items():  # every always-off unit drawn grey (hatched), no other unit
        assert any(abs(y - gy) < 0.6 for gy in grey_y) == (nid in shown_off), nid
    legend = [t.text for t in root.iter(ns + "text") if t.text and t.text.startswith("always off over box")]
    assert legend == [f"always off over box \u201cunit\u201d (ReLU, exactly 0): {len(shown_off)} units"]


def test_sample_values_equal_the_graph_input_figure(tmp_path, browser):  # noqa: F811
    """``view --samples`` numbers images by test-set index: the page's values for image N are
    the values ``graph --input N`` writes into its figure (data-value, full precision)."""
    from sparsescope import cli

    from conftest import make_tiny_run

    _, run = make_tiny_run(tmp_path, "tiny", 2)
    html, svg = tmp_path / "v.html", tmp_path / "g.svg"
    assert cli.main(["view", str(run), "--samples", "40,11,7", "-o", str(html)]) == 0
    assert cli.main(["graph", str(run), "--input", "11", "-o", str(svg)]) == 0
    want = {e.get("data-node"): float(e.get("data-value")) for e in ET.parse(svg).getroot().iter()
            if e.get("data-node") is not None and e.get("data-value") is not None}  # the node cards
    assert len(want) > 5
    s = Session(browser)
    try:
        page = s.open(html.as_uri())
        assert page.evaluate("Array.from(document.querySelectorAll('#thumbs canvas')).map(c => +c.dataset.i)") == [40, 11, 7]
        page.locator("#thumbs canvas").nth(1).click()
        assert "test image #11 " in page.locator("#input-info").text_content()
        got = page.evaluate("sparsescope.values()")
        for nid, v in want.items():
            layer, i = (nid.split(".")[0], int(nid.split(".")[1])) if "[" not in nid else (None, None)
            if layer is None:
                continue
            assert abs(got[layer][i] - v) <= 1e-9 * max(1.0, abs(v)), nid
        s.check_clean()
    finally:
        s.close()
