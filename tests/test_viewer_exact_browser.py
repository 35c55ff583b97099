"""``view RUN --exact`` in headless Debian chromium: the selection card shows each unit's exact
range beside its interval bounds, equal (to the 4 digits shown) to ``analyse RUN --exact``'s."""

from __future__ import annotations

import base64
import json
import re
import zlib
import xml.etree.ElementTree as ET

import numpy as np

import pytest

from sparsescope.cli import main
from sparsescope.exact import Box, analyse_box, analysis_dict
from sparsescope.graph import evaluate, from_arrays
from sparsescope.viewer import read_embedded, write_page
from sparsescope.viewer._simplified import simplified_doc

from test_viewer_browser import HOSTILE, opened, browser  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser
NUM = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"


def _card_rows(page) -> dict[str, str]:
    """The selection card's rows, ``{term: text}``."""
    return dict(page.evaluate("Array.from(document.querySelectorAll('#sel dt')).map(dt => "
                              "[dt.textContent, dt.nextElementSibling.textContent])"))


def test_card_shows_the_exact_range_that_analyse_finds(browser, tmp_path, small_config, capsys):  # noqa: F811
    runs = str(tmp_path / "runs")
    assert main(["run", str(small_config(rounds=3)), "--runs-dir", runs, "--quiet"]) == 0
    page_path = tmp_path / "exact.html"
    assert main(["view", "small", "--runs-dir", runs, "--exact", "--samples", "0-3", "-o", str(page_path)]) == 0
    capsys.readouterr()
    assert main(["analyse", "small", "--runs-dir", runs, "--exact", "--format", "json"]) == 0
    full = json.loads(capsys.readouterr().out)
    units = full["exact"]["units"]
    # a few units of every layer whose two ends are exact and not both zero
    picked = {}
    for u in units:
        layer = u["node"].rsplit(".", 1)[0]
        if u["status"] == ["exact", "exact"] and u["exact"] != [0.0, 0.0] and len(picked.get(layer, [])) < 3:
            picked.setdefault(layer, []).append(u)
    assert len(picked) >= 2, picked
    with opened(browser, page_path.as_uri()) as page:
        for u in (u for us in picked.values() for u in us):
            page.evaluate(f"sparsescope.select({json.dumps(u['node'])})")
            rows = _card_rows(page)
            assert "exact sum" in rows, (u["node"], rows)
            m = re.match(rf"\[{NUM}, {NUM}\] exact, witnessed; sound \[{NUM}, {NUM}\]", rows["exact sum"])
            assert m, rows["exact sum"]
            lo, hi, slo, shi = map(float, m.groups())
            assert lo == pytest.approx(u["exact"][0], rel=6e-4, abs=1e-12), u["node"]
            assert hi == pytest.approx(u["exact"][1], rel=6e-4, abs=1e-12), u["node"]
            assert slo == pytest.approx(u["float32"][0], rel=6e-4) and shi == pytest.approx(u["float32"][1], rel=6e-4)
            assert "bounds" in rows  # the interval bounds sit beside it
        # the panel counts every unit the bounds prove off, as analyse does, and how many are drawn
        figs = page.locator("#figures").text_content()
        assert re.search(rf"always off{len(full['interval_states']['off'])} \(\d+ drawn;", figs), figs
        # the certificate and the simplified sizes are the opened round's (round 2 of 0-2): only there
        fact = full["simplified"]["certificate"][0]
        page.evaluate(f"sparsescope.select({json.dumps(fact['node'])})")
        here = _card_rows(page)["certificate"]
        assert "round 2 only" not in here and "vertices" in page.locator("#figures").text_content(), (fact, here)
        page.evaluate("sparsescope.set({round: 0})")
        figs = page.locator("#figures").text_content()
        assert _card_rows(page)["certificate"] == "exact analysis: round 2 only" and "vertices" not in figs
        assert "simplifiedexact analysis: round 2 only" in figs and page.locator("#graph-simp").is_disabled()



def _crafted():
    """A 4-input MLP made to simplify in every way: h1.0 = relu(x0 + 1) is always on and composable
    (a skip edge in -> h2), h2.1 = relu(h1.1 - h1.2 - 0.1) with h1.1 = h1.2 = relu(x1) is always off,
    which only an exact program proves (with a witness), h1.3 = relu(-x3 - 1) is off by intervals, and
    h1.5 = relu(x0 + x1 + x2 + x3 + 0.5) is always on but feeds three units (composing it costs edges)."""
    w1 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, -1], [0, 0, 1, 1.0], [1, 1, 1, 1]])
    b1 = np.array([1, 0, 0, -1, -0.5, 0.5])
    w2 = np.array([[2, 0, 0, 0, 0, 1], [0, 1, -1, 0, 0, 0], [0, 0, 0, 1, 1.5, 1], [0, 0, 0, 0, -1.25, -1]])
    b2 = np.array([0, -0.1, 0, 0.25])
    w3 = np.array([[1, 1, 1, 0], [0, 1, -2, 1], [0.5, 0, 0, 1]])
    b3 = np.array([0.125, 0, -1])
    return from_arrays([w1, w2, w3], [b1, b2, b3], ["relu", "relu", "identity"], (2, 2),
                       output_labels=["a", HOSTILE, "c"], meta={"run": "crafted " + HOSTILE, "round": 0})


def test_simplified_view_draws_exactly_the_simplified_graph(browser, tmp_path):  # noqa: F811
    g0 = _crafted()
    a = analyse_box(g0, Box("unit", np.zeros(4), np.ones(4)), exact=True)
    sim = a.simplified
    assert sim.composed and any("witness" in f for f in sim.facts)  # the case this test is about
    full = analysis_dict(a)
    doc, doc_exact = full["simplified"], full["exact"]
    path = write_page(tmp_path / "s.html", [a.graph], [{"round": 0, "density": 1.0, "test_accuracy": None}], current=0,
                      samples_x=np.zeros((0, 4)), samples_y=np.zeros(0, dtype=np.int64), title="crafted " + HOSTILE,
                      simplified=simplified_doc(a))
    html = path.read_text()
    assert HOSTILE not in html and "<img" not in html  # every string of the page's data escaped
    block = json.loads(read_embedded(html, "simplified"))
    raw = zlib.decompressobj(-15).decompress(base64.b64decode(block["z"]))
    assert json.loads(raw)["dag"] == doc["dag"] and json.loads(raw)["facts"] == doc["certificate"]
    want_nodes = {n["id"]: (n["activation"], n["bias"]) for n in doc["dag"]["nodes"]}
    want_edges = {(s_, d, w) for s_, d, w in doc["dag"]["edges"]}
    assert any(s_.startswith("in") and not d.startswith("h1") for s_, d, _ in want_edges)  # a skip edge
    with opened(browser, path.as_uri()) as page:
        assert page.evaluate("sparsescope.simplified().on") is False
        page.locator("#graph-simp").click()
        page.locator("#inedges").check()
        st = page.evaluate("sparsescope.simplified()")
        assert st["on"] and st["sizes"] == doc["sizes"] and st["composed"] == doc["composed"] == ["h1.0"]
        figures = page.locator("#figures").text_content()
        o, n = doc["sizes"]["original"], doc["sizes"]["simplified"]
        assert f"{n['vertices']} vertices, {n['edges']} edges (original {o['vertices']}, {o['edges']}" in figures
        svg = page.evaluate("sparsescope.svgText()")
        assert "exactly simplified graph" in svg and HOSTILE not in svg and ET.fromstring(svg) is not None
        # the page's graph is the DAG: biases and activations of every node, every edge (own or skip) and its weight
        nodes, edges = page_dag(page, g0, want_nodes)
        assert nodes == {k: v for k, v in want_nodes.items() if not k.startswith("in")} and edges == want_edges
        # what is drawn: the DAG's hidden and output nodes, and every edge
        assert {p["id"] for p in page.evaluate("sparsescope.placed()")} == {k for k in want_nodes if not k.startswith("in")}
        assert {tuple(e) for e in page.evaluate("sparsescope.drawnEdges()")} == {(d, s_) for s_, d, _ in want_edges}
        # values: the simplified graph computes the original's outputs at a drawn input
        x = [0.3, 0.9, 0.2, 0.6]
        page.evaluate(f"sparsescope.setDrawn({x})")
        want = evaluate(g0, np.array([x])).post["out"][0]
        assert np.allclose(page.evaluate("sparsescope.values()")["out"], want, rtol=0, atol=1e-12)
        # the certificate per unit: a linear unit's card, a composed unit's, an off unit's with its witness
        lin = next(k for k, (act, _) in want_nodes.items() if act == "linear" and k.startswith("h"))
        page.evaluate(f"sparsescope.select({json.dumps(lin)})")
        assert "always on over box" in _card_rows(page)["certificate"]
        comp = doc["composed"][0]
        page.evaluate(f"sparsescope.select({json.dumps(comp)})")
        assert "composed into" in " ".join(t for k, t in _card_list(page) if k == "certificate")
        off = next(f for f in doc["certificate"] if f["fact"] == "off" and "witness" in f)
        page.locator("#graph-orig").click()
        page.evaluate(f"sparsescope.select({json.dumps(off['node'])})")
        text = " ".join(t for k, t in _card_list(page) if k == "certificate")
        assert "always off" in text and f"witness input #{off['witness']}" in text and "mixed-integer" in text, text
        page.locator("#sel button", has_text="load witness").click()
        wit = np.zeros(4)  # the analysis JSON's witness: inputs not listed sit at the box's low end (0)
        for nid, v in doc_exact["witnesses"][off["witness"]].items():
            wit[g0.locate(nid)[1]] = v
        got = np.asarray(page.evaluate("sparsescope.input()"))
        assert np.array_equal(got, wit)
        pre = evaluate(g0, got[None]).pre["h2"][0][g0.locate(off["node"])[1]]  # the witness attains the proven maximum
        assert pre == pytest.approx(off["exact"], abs=1e-12) and pre <= 0
        page.locator("#graph-simp").click()
        url, shown = page.evaluate("location.href"), {p["id"] for p in page.evaluate("sparsescope.placed()")}
        assert "s=1" in url and shown > {k for k in want_nodes if not k.startswith("in")}  # removed units shown too (u=1)
    with opened(browser, url) as again:  # the link reopens the simplified view
        assert again.evaluate("sparsescope.simplified().on") is True
        assert {p["id"] for p in again.evaluate("sparsescope.placed()")} == shown


def page_dag(page, g0, want_nodes: dict) -> tuple[dict, set]:
    """The page's graph (``sparsescope.graph()``) in the DAG's terms: ``{id: (activation, bias)}`` of the
    hidden and output nodes in ``want_nodes`` (any other node must have bias 0 and no in-edges), and
    every edge ``(source id, target id, weight)``, own or skip."""
    nodes, edges = {}, set()
    for lay in page.evaluate("sparsescope.graph()"):
        layer = g0.layer(lay["name"])
        for j in range(layer.size):
            nid = layer.node_id(j)
            if nid in want_nodes:
                nodes[nid] = ("linear" if lay["linear"][j] or layer.activation != "relu" else "relu", lay["bias"][j])
            else:
                assert lay["bias"][j] == 0 and j not in lay["dst"] and all(j not in k["dst"] for k in lay["skips"]), nid
        src = g0.layer(layer.source)
        edges |= {(src.node_id(s), layer.node_id(d), w) for d, s, w in zip(lay["dst"], lay["src"], lay["weight"])}
        for k in lay["skips"]:
            edges |= {(g0.layer(k["source"]).node_id(s), layer.node_id(d), w) for d, s, w in zip(k["dst"], k["src"], k["weight"])}
    return nodes, edges


def _card_list(page) -> list[tuple[str, str]]:
    return page.evaluate("Array.from(document.querySelectorAll('#sel dt')).map(dt => [dt.textContent, dt.nextElementSibling.textContent])")
