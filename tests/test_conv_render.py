"""Conv figures, the conv report and the conv viewer page (Python side and in headless chromium)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn as nn

from sparsescope.analysis import CONE_RULES, analyse, cone_sizes, channel_sizes, channel_view, comparison_side, live_mask
from sparsescope.bounds import annotate
from sparsescope.graph import evaluate, from_torch, to_json
from sparsescope.render import write_report
from sparsescope.render._convfig import channel_figure, feature_maps_figure, kernel_figure, unrolled_figure
from sparsescope.viewer import read_embedded
from sparsescope.viewer._convpage import build_conv_page, write_conv_page

HOSTILE = "<img src=x onerror=alert(1)>"


def study_like(seed=0, counts=(6, 23, 23, 135)):
    """The study's CNN with random masks of the study's final per-layer counts."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(),
                      nn.Flatten(), nn.Linear(2904, 10))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod, k in zip([m[0], m[2], m[4], m[7]], counts):
            keep = torch.zeros(mod.weight.numel(), dtype=torch.bool)
            keep[torch.randperm(keep.numel(), generator=gen)[:k]] = True
            mod.weight.mul_(keep.reshape(mod.weight.shape))
    labels = [str(i) for i in range(10)]
    labels[3] = HOSTILE
    return annotate(from_torch(m, (28, 28), output_labels=labels, meta={"run": "cnn", "round": 5, "test_accuracy": 0.8}))


@pytest.fixture(scope="module")
def graph():
    return study_like()


def _samples(n=6):
    from sparsescope.data import load

    data = load("mnist5k")
    pick = np.linspace(0, len(data.x_test) - 1, n).round().astype(int)
    return data.x_test[pick].astype(np.float64), data.y_test[pick]


def test_figures_count_what_the_analysis_counts(graph):
    nodes, edges = channel_view(graph)
    scene = channel_figure(graph)
    assert scene.count("channel") == sum(int(v.sum()) for v in nodes.values())
    assert scene.count("cedge") == sum(e.dst.size for e in edges.values())
    # one kernel slice per conv channel edge
    conv_edges = sum(e.dst.size for name, e in edges.items() if graph.layer(name).weight_id is not None)
    assert scene.count("kslice") == conv_edges
    for k in (0, 7):
        n_u, e_u = live_mask(graph, [k])
        u = unrolled_figure(graph, output=k)
        assert u.count("pos") == sum(int(v.sum()) for v in n_u.values()) == analyse(graph).per_output[k][1]
        assert u.count("edge") == sum(int(v.sum()) for v in e_u.values())
    kf = kernel_figure(graph)
    assert kf.count("kernel") == 6 * 1 + 6 * 6 + 6 * 6
    fm = feature_maps_figure(graph, x=_samples(1)[0][0])
    assert fm.count("fmap") == 1 + 6 + 6 + 6


def test_figures_are_deterministic_and_valid_svg(graph):
    for make in (lambda: channel_figure(graph, output=3), lambda: unrolled_figure(graph, output=3), lambda: kernel_figure(graph),
                 lambda: feature_maps_figure(graph)):
        a, b = make().to_svg(), make().to_svg()
        assert a == b
        ET.fromstring(a.encode())  # well-formed, labels escaped
        assert HOSTILE not in a


@pytest.mark.slow
def test_conv_report(graph, tmp_path):
    x, y = _samples()
    other = study_like(1, counts=(20, 80, 80, 900)).with_meta(run="other", round=2, test_accuracy=0.82)
    index = write_report(tmp_path / "rep", graph, rounds=[{"round": 0, "density": 1.0, "test_accuracy": 0.9,
                                                          "weights_left": {"c1": 54}, "kept_total": 54}],
                         samples_x=x, samples_y=y, sample_index=2, title="cnn " + HOSTILE,
                         comparison=(comparison_side(graph), comparison_side(other)))
    page = index.read_text()
    assert HOSTILE not in page and "&lt;img src=x" in page
    figs = sorted(p.name for p in (tmp_path / "rep" / "figures").iterdir())
    for stem in ("channels", "kernels", "feature-maps", "output-7-channels", "output-7-unrolled", "sample-2-maps"):
        assert f"{stem}.svg" in figs and f"{stem}.png" in figs
    st = analyse(graph)
    nid, v7, e7 = st.per_output[7]
    assert f"<td>{v7}</td><td>{e7}</td>" in page
    c7 = channel_sizes(graph, 7)
    assert f"<td>{c7.vertices}</td><td>{c7.edges}</td><td>{c7.weights}</td>" in page
    # the cone table: per output, per rule, vertices and edges equal analysis.cone_sizes
    cones = page.split("three ways to count", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr><td class="l">(out\.\d+)</td><td class="l">[^<]*</td>((?:<td>\d+</td>)+)</tr>', cones)
    assert [nid for nid, _ in rows] == [f"out.{i}" for i in range(10)]
    for i, (_, cells) in enumerate(rows):
        want = [n for r in CONE_RULES for c in [cone_sizes(graph, i, r)] for n in (c.vertices, c.edges)]
        assert [int(v) for v in re.findall(r"<td>(\d+)</td>", cells)] == want, i
    assert "1,659" in page
    assert "Comparison at matched accuracy" in page and "c1 6 / c2 23 / c3 23 / out 135" in page
    # same inputs, same bytes
    index2 = write_report(tmp_path / "rep2", graph, rounds=[], samples_x=x, samples_y=y, sample_index=2,
                          title="cnn " + HOSTILE)
    index3 = write_report(tmp_path / "rep3", graph, rounds=[], samples_x=x, samples_y=y, sample_index=2,
                          title="cnn " + HOSTILE)
    assert index2.read_bytes() == index3.read_bytes()


def test_conv_page_embeds_the_exact_graph(graph, tmp_path):
    x, y = _samples()
    html = build_conv_page(graph, [{"round": 5, "density": 0.01, "test_accuracy": 0.8}], samples_x=x, samples_y=y,
                           title="t " + HOSTILE)
    assert read_embedded(html) == to_json(graph)
    assert HOSTILE not in html
    assert html == build_conv_page(graph, [{"round": 5, "density": 0.01, "test_accuracy": 0.8}], samples_x=x,
                                   samples_y=y, title="t " + HOSTILE)
    with pytest.raises(ValueError, match="do not fit"):
        build_conv_page(graph, [], samples_x=np.zeros((2, 5)), samples_y=np.zeros(2), title="t")


# -- in the browser ------------------------------------------------------------------------------
from test_viewer_browser import browser, wait_for  # noqa: E402,F401  (one chromium fixture for every browser test)


@pytest.mark.browser
def test_conv_page_in_chromium(graph, tmp_path, browser):
    x, y = _samples()
    path = write_conv_page(tmp_path / "v.html", graph, [{"round": 5, "density": 0.01, "weights_left": {"c1": 6},
                                                        "test_accuracy": 0.8}], samples_x=x, samples_y=y, title="t")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    errors, requests = [], []
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
              else (requests.append(r.request.url), r.abort()))
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(path.as_uri())
    wait_for(page, "window.sparsescope && window.sparsescope.firstFrameMs", timeout=30)
    # opens on the channel view of the whole live graph; the sizes are Python's
    whole = channel_sizes(graph)
    sz = page.evaluate("sparsescope.sizes()")
    assert (sz["vertices"], sz["edges"]) == (whole.unrolled_vertices, whole.unrolled_edges)
    assert (sz["channelNodes"], sz["channelEdges"], sz["weights"]) == (whole.vertices, whole.edges, whole.weights)
    nodes, _ = channel_view(graph)
    assert page.evaluate("sparsescope.drawn()")["cards"] == sum(int(v.sum()) for v in nodes.values())
    assert page.evaluate("sparsescope.drawn()")["lines"] == 0
    # per output, unrolled: every live edge a line
    for k in (3, 7):
        page.evaluate(f"sparsescope.set({{view: 'unrolled', output: {k}}})")
        sz = page.evaluate("sparsescope.sizes()")
        c = channel_sizes(graph, k)
        assert (sz["vertices"], sz["edges"], sz["channelNodes"]) == (c.unrolled_vertices, c.unrolled_edges, c.vertices)
        assert page.evaluate("sparsescope.drawn()")["lines"] == c.unrolled_edges
    # expanding one channel in the channel view draws its edges position by position
    page.evaluate("sparsescope.set({view: 'channels', output: null})")
    first = [cid for cid in page.evaluate("sparsescope.cards()") if cid.startswith("c1[")][0]
    page.evaluate(f"sparsescope.set({{expand: ['in', {json.dumps(first)}]}})")
    assert page.evaluate("sparsescope.drawn()")["lines"] > 0
    # per-input values equal Python's evaluation
    for i in (0, 3):
        page.evaluate(f"sparsescope.set({{sample: {i}, mode: 'input'}})")
        ev = evaluate(graph, x[i][None])
        np.testing.assert_allclose(page.evaluate("sparsescope.outputs()"), ev.post["out"][0], atol=1e-9, rtol=0)
        nid = "c2[1,5,7]"
        np.testing.assert_allclose(page.evaluate(f"sparsescope.value({json.dumps(nid)})"), ev.value(nid)[0], atol=1e-12)
    page.mouse.move(600, 400)
    page.mouse.wheel(0, -200)
    assert errors == [] and requests == []
    ctx.close()


@pytest.mark.slow
def test_conv_report_exact_section(graph, tmp_path):
    """``report --exact`` on a conv net: per layer the exact ends counted and the interval and exact
    widths side by side (the numbers of the analysis), the simplified graph as a channel figure,
    and the same bytes twice."""
    from sparsescope.exact import analyse_box, make_box

    g = graph.with_bounds(None)
    a = analyse_box(g, make_box(g, "unit"), exact=True)
    x, y = _samples(2)
    pages = []
    for name in ("e1", "e2"):
        index = write_report(tmp_path / name, a.graph, rounds=[], samples_x=x, samples_y=y, sample_index=1,
                             title="cnn " + HOSTILE, exact=a)
        pages.append(index.read_bytes())
        assert (tmp_path / name / "figures" / "simplified.svg").is_file()
    assert pages[0] == pages[1]
    page = pages[0].decode()
    assert "Exact analysis" in page and HOSTILE not in page
    r = a.ranges
    for name in r.layers:
        ends = int(np.sum(r.lo_status[name] == "exact") + np.sum(r.hi_status[name] == "exact"))
        ew = r.hi[name] - r.lo[name]
        ok = np.isfinite(ew) & (ew > 1e-12)
        iw = r.interval.pre_hi[name] - r.interval.pre_lo[name]
        assert (f'<td class="l">{name}</td><td>{int(ok.sum())}</td><td>{iw[ok].mean():.4g}</td>'
                f"<td>{ew[ok].mean():.4g}</td>") in page
        assert f"<td>{ends} / {2 * ew.size}</td>" in page
    svg = (tmp_path / "e1" / "figures" / "simplified.svg").read_text()
    assert svg.count("channel") > 0
    # beside it, the simplified DAG drawn edge for edge (skip edges too), the same bytes twice
    from test_dagfig import drawn

    dag_svg = (tmp_path / "e1" / "figures" / "simplified-dag.svg").read_text()
    assert dag_svg == (tmp_path / "e2" / "figures" / "simplified-dag.svg").read_text()
    d = a.simplified.dag
    assert sorted((s, t, w) for s, t, w, _ in drawn(dag_svg)[1]) == sorted(
        (d.ids[s], d.ids[t], w) for s, t, w in zip(d.src.tolist(), d.dst.tolist(), d.weight.tolist()))
    assert "simplified-dag.svg" in page
