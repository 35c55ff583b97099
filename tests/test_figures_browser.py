"""Static SVG figures in headless Debian chromium: text is measured right and fits its box.

The figures lay text out with shipped DejaVu Sans advance widths (render/_fonts.py) and
name that font in the SVG.  Here chromium draws them: every text element's drawn width
must match the laid-out width, and no text may run past its card or off the figure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from sparsescope import graph as G
from sparsescope.bounds import annotate
from sparsescope.render import graph_figure
from sparsescope.render._fonts import text_width
from sparsescope.render._mpl import svg_text

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
HAS_FONT = os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# every <text>: its box, content, size, weight; and for card text the card's box
MEASURE = """() => {
  const out = [];
  const cards = new Map();
  // the SVG is the document, at (0, 0) and scale 1: client rectangles are user units
  for (const r of document.querySelectorAll('rect.node')) cards.set(r.getAttribute('data-node'), r.getBoundingClientRect());
  const svg = document.querySelector('svg');
  for (const t of document.querySelectorAll('text')) {
    const b = t.getBoundingClientRect();  // after any rotation
    const node = t.getAttribute('data-node');
    const c = node !== null && cards.has(node) ? cards.get(node) : null;
    out.push({text: t.textContent, size: parseFloat(t.getAttribute('font-size')), bold: t.getAttribute('font-weight') === 'bold',
              len: t.getComputedTextLength(), x: b.x, y: b.y, w: b.width, h: b.height,
              card: c ? {x: c.x, y: c.y, w: c.width, h: c.height} : null, cls: t.getAttribute('class')});
  }
  return {items: out, width: svg.width.baseVal.value, height: svg.height.baseVal.value,
          family: getComputedStyle(document.querySelector('text')).fontFamily};
}"""


def _mlp(seed: int) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                            torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for lin, d in zip((m[1], m[3], m[5]), (0.018, 0.06, 0.25)):
            lin.weight.mul_((torch.rand(lin.weight.shape, generator=gen) < d).float())
        m[3].weight[5] = 0.0  # a bias-only unit: drawn as a constant card
        m[3].bias[5] = 0.3
    return m


@pytest.fixture(scope="module")
def figures():
    labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    g = annotate(G.from_torch(_mlp(0), (28, 28), output_labels=labels,
                              meta={"run": "fashion-mlp-0123abcd", "round": 18, "density": 0.0196, "test_accuracy": 0.727}), "unit")
    x = np.random.default_rng(1).random((28, 28)) * (np.random.default_rng(2).random((28, 28)) < 0.3)
    return {
        "whole": graph_figure(g),
        "output": graph_figure(g, output=9),
        "input": graph_figure(g, x=x, input_index=1234, input_label="Ankle boot", shared_scale=True),
        "hidden-off": graph_figure(g, off="hide"),
    }


@pytest.fixture(scope="module")
def page():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    if not HAS_FONT:
        pytest.skip("DejaVu Sans (Debian fonts-dejavu-core) is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = b.new_page()
        yield pg
        b.close()


@pytest.mark.parametrize("name", ["whole", "output", "input", "hidden-off"])  # round plots are matplotlib's
def test_text_is_measured_with_the_named_font_and_fits(page, figures, name, tmp_path):
    path = tmp_path / f"{name}.svg"
    fig = figures[name]
    # scenes write their own SVG; the round plots are matplotlib figures (text kept as text)
    path.write_text(fig.to_svg() if hasattr(fig, "to_svg") else svg_text(fig), encoding="utf-8")
    page.goto(path.as_uri())
    got = page.evaluate(MEASURE)
    assert "DejaVu Sans" in got["family"]
    assert got["items"]
    for t in got["items"]:
        if not t["text"]:
            continue
        # the browser draws exactly the width the layout assumed (kerning off, same advances)
        # (matplotlib lays out its own text with its copy of the same font: only the fit is checked there)
        if hasattr(fig, "to_svg"):
            want = text_width(t["text"], t["size"], t["bold"])
            assert abs(t["len"] - want) <= 0.01 * want + 0.5, (t["text"], t["len"], want)
        # nothing leaves the figure
        x0, x1 = t["x"], t["x"] + t["w"]
        assert x0 >= -0.5 and x1 <= got["width"] + 0.5, (t["text"], x0, x1, got["width"])
        assert t["y"] >= -0.5 and t["y"] + t["h"] <= got["height"] + 0.5, t["text"]
        # card text stays inside its card
        c = t["card"]
        if c is not None:
            assert c["x"] - 0.5 <= t["x"] and t["x"] + t["w"] <= c["x"] + c["w"] + 0.5, (t["text"], t, c)
            assert c["y"] - 0.5 <= t["y"] and t["y"] + t["h"] <= c["y"] + c["h"] + 0.5, (t["text"], t, c)
