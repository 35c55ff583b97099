"""The viewer page in headless Debian chromium: values, subgraphs, rounds, escaping, export, links.

One browser for the module.  Every page load routes all requests and fails
the test on any that is not file:, data: or blob: (the page is self-contained).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsescope.analysis import subgraph
from sparsescope.bounds import annotate
from sparsescope.graph import evaluate, from_torch, to_json
from sparsescope.viewer import notebook_html, read_embedded, write_page

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
HOSTILE = "<img src=x onerror=alert(1)>"
TOL = 1e-5


def _model(seed: int, density: float) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for lin in (m[1], m[3], m[5]):
            lin.weight.mul_(torch.rand(lin.weight.shape, generator=gen) < density)
    return m


def _samples(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST test digits, as the CLI passes them (float32 pixels k/255 widened to float64)."""
    from sparsescope.data import load

    data = load("mnist5k")
    pick = np.random.default_rng(0).choice(len(data.x_test), n, replace=False)
    return data.x_test[pick].astype(np.float64), data.y_test[pick]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    labels = [str(k) for k in range(10)]
    labels[3] = HOSTILE
    labels[4] = "ctl\x01\x07\ufffe"  # characters XML cannot hold: SVG export must still parse
    rounds, metrics = [], []
    for r, d in enumerate((1.0, 0.3, 0.08, 0.02)):
        g = annotate(from_torch(_model(r, d), (28, 28), output_labels=labels, meta={"run": "t", "round": r}), "unit")
        left = {layer.name: layer.num_edges for layer in g.layers[1:]}
        rounds.append(g)
        metrics.append({"round": r, "density": sum(left.values()) / 26432, "weights_left": left,
                        "weights_total": {"h1": 25088, "h2": 1024, "out": 320}, "test_accuracy": 0.95 - 0.011 * r})
    x, y = _samples()
    path = write_page(tmp_path_factory.mktemp("viewer") / "view.html", rounds, metrics, current=3,
                      samples_x=x, samples_y=y, title="run " + HOSTILE)
    return {"rounds": rounds, "metrics": metrics, "x": x, "y": y, "path": path, "url": path.as_uri()}


@contextlib.contextmanager
def opened(browser, url: str):
    """A page of ``url`` once the viewer is ready; on exit, checks that it stayed clean."""
    s = Session(browser)
    try:
        yield s.open(url)
        s.check_clean()
    finally:
        s.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def wait_for(page, expr: str, timeout: float = 15.0) -> None:
    """Poll ``expr`` with page.evaluate (the page's CSP forbids the eval that wait_for_function's polling uses)."""
    import time

    end = time.monotonic() + timeout
    while not page.evaluate(f"!!({expr})"):
        if time.monotonic() > end:
            raise TimeoutError(f"{expr} not true after {timeout} s")
        time.sleep(0.02)


class Session:
    """A page with request, console and dialog watchers."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        self.requests, self.errors, self.dialogs = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def open(self, url):
        self.page.goto(url)
        wait_for(self.page, "window.sparsescope && window.sparsescope.ready")
        return self.page

    def check_clean(self):
        assert self.errors == [], self.errors
        assert self.requests == [], self.requests
        assert self.dialogs == [], self.dialogs

    def close(self):
        self.context.close()


@pytest.fixture
def session(browser):
    s = Session(browser)
    yield s
    s.check_clean()
    s.close()


def _assert_values(page, graph, x):
    got = page.evaluate("sparsescope.values()")
    ev = evaluate(graph, np.asarray(x, dtype=np.float64)[None])
    for layer in graph.layers:
        diff = np.max(np.abs(np.asarray(got[layer.name]) - ev.post[layer.name][0]))
        assert diff <= TOL, (layer.name, diff)


def test_loads_clean_and_embeds_the_contract(session, run):
    page = session.open(run["url"])
    assert page.evaluate("document.getElementById('flowgraph').textContent") == to_json(run["rounds"][3]).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    assert read_embedded(run["path"].read_text()) == to_json(run["rounds"][3])
    labels = list(run["rounds"][3].output.labels)
    assert labels[3] == HOSTILE
    got = page.evaluate("JSON.parse(document.getElementById('flowgraph').textContent).layers[3].labels")
    assert got == labels


def test_values_match_python_for_twenty_test_images(session, run):
    page = session.open(run["url"])
    g = run["rounds"][3]
    page.locator("#thumbs canvas").nth(0).click()
    assert page.evaluate("sparsescope.state().input") == {"sample": 0}
    for i in range(20):
        page.evaluate(f"sparsescope.set({{mode: 'input', input: {{sample: {i}}}}})")
        assert np.array_equal(page.evaluate("sparsescope.input()"), run["x"][i].reshape(-1))
        _assert_values(page, g, run["x"][i])
        pred = int(np.argmax(evaluate(g, run["x"][i][None]).post["out"][0]))
        info = page.locator("#input-info").text_content()
        assert f"#{i} " in info and "predicted " + g.output.labels[pred] in info and "true " + g.output.labels[run["y"][i]] in info


def test_values_match_python_for_a_drawn_digit(session, run):
    page = session.open(run["url"])
    box = page.locator("#pad").bounding_box()
    pts = [(0.3, 0.2), (0.5, 0.25), (0.55, 0.5), (0.45, 0.8), (0.6, 0.85)]
    page.mouse.move(box["x"] + pts[0][0] * box["width"], box["y"] + pts[0][1] * box["height"])
    page.mouse.down()
    for px, py in pts[1:]:
        page.mouse.move(box["x"] + px * box["width"], box["y"] + py * box["height"], steps=4)
    page.mouse.up()
    x = np.asarray(page.evaluate("sparsescope.input()"))
    assert x.shape == (784,) and (x > 0).sum() > 20 and x.max() == 1.0
    for r in (3, 1):  # the exact current round and a compact one
        page.evaluate(f"sparsescope.set({{round: {r}}})")
        _assert_values(page, run["rounds"][r], x.reshape(28, 28))


def test_choosing_an_output_shows_exactly_its_subgraph(session, run):
    page = session.open(run["url"])
    for r in (3, 2):
        page.evaluate(f"sparsescope.set({{round: {r}}})")
        g = run["rounds"][r]
        for k in (0, 3, 7):
            page.select_option("#output", str(k))
            sub = subgraph(g, k)
            want = {(layer.name, int(d), int(s)) for layer in sub.layers[1:] for d, s in zip(layer.dst, layer.src)}
            got = {tuple(e) for e in page.evaluate("sparsescope.visibleEdges()")}
            assert got == want
        page.select_option("#output", "")
        assert len(page.evaluate("sparsescope.visibleEdges()")) == g.num_edges


def test_round_slider_changes_graph_and_figures(session, run):
    page = session.open(run["url"])
    before = page.locator("#figures").text_content()
    page.locator("#round").fill("1")
    assert page.evaluate("sparsescope.state().round") == 1
    after = page.locator("#figures").text_content()
    assert after != before and f"{run['metrics'][1]['weights_left']['h1']:,}" in after
    assert f"{100 * run['metrics'][1]['test_accuracy']:.2f} %" in after
    g = run["rounds"][1]
    for got, layer in zip(page.evaluate("sparsescope.graph()"), g.layers[1:]):
        assert got["dst"] == layer.dst.tolist() and got["src"] == layer.src.tolist()
        assert got["weight"] == layer.weight.tolist() and got["bias"] == layer.bias.tolist()
        for k in ("lo", "hi", "pre_lo", "pre_hi"):
            assert got[k] == getattr(g.bounds, k)[layer.name].tolist()
    page.locator("#round").fill("0")  # the dense round, all-ones mask
    assert len(page.evaluate("sparsescope.visibleEdges()")) == run["rounds"][0].num_edges


def test_hostile_label_and_title_render_as_text(session, run):
    page = session.open(run["url"])
    page.select_option("#output", "3")
    page.evaluate("sparsescope.select('out.3')")
    page.evaluate("sparsescope.set({mode: 'input', input: {sample: 0}})")
    page.locator("#view").hover(position={"x": 300, "y": 300})
    page.wait_for_timeout(100)
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert HOSTILE in page.locator("#title").text_content()
    assert HOSTILE in page.title()
    assert HOSTILE in page.locator("#sel").text_content()
    assert HOSTILE in page.locator("#output").text_content()
    assert HOSTILE in page.evaluate("sparsescope.svgText()").replace("&lt;", "<").replace("&gt;", ">")
    assert session.dialogs == []


def test_png_and_svg_export_download(session, run, tmp_path):
    from PIL import Image

    page = session.open(run["url"])
    with page.expect_download() as dl:
        page.click("#png")
    png = tmp_path / "view.png"
    dl.value.save_as(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.size[0] >= 600 and len(np.unique(np.asarray(img.convert("L")))) > 10
    with page.expect_download() as dl:
        page.click("#svg")
    svg = tmp_path / "view.svg"
    dl.value.save_as(svg)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(root) > 50


def test_url_hash_reopens_the_view(session, run, browser):
    page = session.open(run["url"])
    page.evaluate("sparsescope.set({round: 2, out: 5, mode: 'input', input: {sample: 4}})")
    page.evaluate("sparsescope.select('h2.7')")
    state = page.evaluate("sparsescope.state()")
    url = page.url
    assert "#" in url and "r=2" in url
    other = Session(browser)
    try:
        p2 = other.open(url)
        assert p2.evaluate("sparsescope.state()") == state
        assert p2.locator("#output").input_value() == "5"
        _assert_values(p2, run["rounds"][2], run["x"][4])
        shot = Path(os.environ.get("SPARSESCOPE_SHOTS", run["path"].parent)) / "viewer.png"
        p2.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        other.check_clean()
    finally:
        other.close()
    # a drawn input travels in the link too
    page.evaluate("sparsescope.setDrawn(Array.from({length: 784}, (_, k) => (k % 29 === 0 ? 1 : 0)))")
    third = Session(browser)
    try:
        p3 = third.open(page.url)
        assert p3.evaluate("sparsescope.input()") == [1.0 if k % 29 == 0 else 0.0 for k in range(784)]
        third.check_clean()
    finally:
        third.close()


def test_notebook_iframe_renders(session, run):
    page = session.page
    page.set_content(notebook_html(run["rounds"][3]))
    frame = page.frames[1]
    wait_for(frame, "window.sparsescope && window.sparsescope.ready")
    assert frame.evaluate("sparsescope.graph()")[0]["weight"] == run["rounds"][3].layers[1].weight.tolist()


def test_panning_a_dense_graph_settles_to_a_full_drawing(session, run):
    """Large graphs move a snapshot while panning; once the motion stops the canvas
    must be exactly a fresh full drawing of the new view."""
    page = session.open(run["url"])
    page.locator("#round").fill("0")  # the dense round
    canvas = "document.querySelector('canvas')"
    page.mouse.move(450, 400)
    page.mouse.down()
    page.mouse.move(520, 440, steps=6)
    page.mouse.up()
    page.wait_for_timeout(400)
    settled = page.evaluate(f"{canvas}.toDataURL()")
    view = page.evaluate("sparsescope.state()")
    page.evaluate("sparsescope.set({})")  # forces a full redraw of the same view
    page.wait_for_timeout(100)
    assert page.evaluate("sparsescope.state()") == view
    assert page.evaluate(f"{canvas}.toDataURL()") == settled


@pytest.mark.parametrize("bad", ["#sel=%", "#r=%E0%A4%A", "#sel=constructor.0", "#sel=toString[0]", "#m=i&i=s-1",
                                 "#m=i&i=s0.5", "#o=99&r=-1&m=zz&e=%ZZ", "#sel=" + HOSTILE])
def test_bad_links_fall_back_to_a_working_page(session, run, bad):
    page = session.open(run["url"] + bad)
    st = page.evaluate("sparsescope.state()")
    assert st["round"] in range(len(run["rounds"])) and st["sel"] in (None, "h1.0")
    assert st["mode"] == "weights" and st["input"] is None  # no half-valid input
    assert page.evaluate("sparsescope.frames()") > 0


def test_find_survives_prototype_names(session, run):
    page = session.open(run["url"])
    for text in ("constructor.0", "hasOwnProperty[0]", "__proto__.1", "h1.0"):
        page.locator("#find-id").fill(text)
        page.locator("#find-id").press("Enter")
    assert page.evaluate("sparsescope.state()")["sel"] == "h1.0"
