"""The simplified-graph figure (render._dagfig): what the SVG draws is the DAG.

Read back from the SVG alone (``data-*`` of ``class="node"`` / ``class="edge"``),
the drawn graph rebuilt as a DAG computes what the torch model computes on
the box; every drawn edge is one of the DAG's, with its sign as colour and
width growing with ``|w|``; a skip edge runs in a lane above or below every
node of the columns it skips; bytes are deterministic and text is escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import torch
from hypothesis import given

from conftest import fast_settings  # noqa: E402
from test_exact import make, nets  # noqa: E402
from test_simplify_dag import built_net, torch_out  # noqa: E402

from sparsescope.exact import dag_from_dict, dag_to_dict, evaluate_dag, exact_ranges, simplify
from sparsescope.render import _colour as C
from sparsescope.render._dagfig import dag_figure

torch.set_num_threads(1)
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & \u0007'


def drawn(svg: str):
    """``(nodes, edges)`` as the SVG draws them: ``{id: element attrs}``, ``[(src, dst, w, attrs)]``."""
    root = ET.fromstring(svg.encode("utf-8"))
    nodes, edges = {}, []
    for el in root.iter():
        cls = el.get("class", "").split()
        if "node" in cls:
            assert el.get("data-node") not in nodes, "a node drawn twice"
            nodes[el.get("data-node")] = dict(el.attrib, tag=el.tag)
        elif "edge" in cls:
            edges.append((el.get("data-src"), el.get("data-dst"), float(el.get("data-w")), dict(el.attrib)))
    return nodes, edges


def as_dag_doc(svg: str, layers):
    """The sparsescope.dag JSON of the drawn graph (the layers are the columns' names and shapes)."""
    nodes, edges = drawn(svg)
    names = [n for n, _ in layers]

    def layer_of(nid):
        return re.match(r"^([A-Za-z][A-Za-z0-9_]*)", nid).group(1)

    order = sorted(nodes, key=lambda nid: (names.index(layer_of(nid)), [int(v) for v in re.findall(r"\d+", nid[len(layer_of(nid)):])]))
    return {"format": "sparsescope.dag", "version": 1, "meta": {},
            "layers": [{"name": n, "shape": list(s)} for n, s in layers],
            "nodes": [{"id": nid, "layer": layer_of(nid), "activation": nodes[nid]["data-activation"],
                       "bias": float(nodes[nid].get("data-bias", 0.0))} for nid in order],
            "edges": sorted(([a, b, w] for a, b, w, _ in edges), key=lambda e: (order.index(e[1]), order.index(e[0])))}


def check_figure(dag):
    """The figure's nodes and edges are the DAG's (ids, biases, activations, weights bit for bit);
    colour is the sign; width grows with |w|; skip edges bypass the columns they skip."""
    svg = dag_figure(dag, title="t").to_svg()
    nodes, edges = drawn(svg)
    assert set(nodes) == set(dag.ids)
    for i, nid in enumerate(dag.ids):
        assert nodes[nid]["data-activation"] == dag.activation[i]
        if dag.activation[i] != "input":
            assert float(nodes[nid]["data-bias"]) == dag.bias[i]
    want = {(dag.ids[a], dag.ids[b]): w for a, b, w in zip(dag.src.tolist(), dag.dst.tolist(), dag.weight.tolist())}
    got = {(a, b): w for a, b, w, _ in edges}
    assert len(got) == len(edges) and got == want
    layer_of = {nid: int(dag.layer[i]) for i, nid in enumerate(dag.ids)}
    widths = sorted((abs(w), float(at["stroke-width"])) for _, _, w, at in edges)
    assert all(b1 <= b2 for (_, b1), (_, b2) in zip(widths, widths[1:]))  # wider for larger |w|
    centre = {nid: (float(at.get("cx", 0)), float(at.get("cy", 0))) if at["tag"] == SVG + "circle" else
              (float(at["x"]) + float(at["width"]) / 2, float(at["y"]) + float(at["height"]) / 2)
              for nid, at in nodes.items()}
    for a, b, w, at in edges:
        assert at["stroke"] == C.sign_colour(w)
        skip = layer_of[b] - layer_of[a] > 1
        assert ("skip" in at["class"].split()) == skip
        pts = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", at["d"])]
        assert (pts[0], pts[1]) != (0, 0) and abs(pts[1] - centre[a][1]) < 1e-2 and abs(pts[-1] - centre[b][1]) < 1e-2
        if skip:
            lane = pts[7]  # the second waypoint: the lane the edge runs in past the skipped columns
            assert pts[13] == lane
            ys = [centre[n][1] for n in nodes if layer_of[a] < layer_of[n] < layer_of[b]]
            assert not ys or lane < min(ys) or lane > max(ys)
    return svg


def test_the_figure_of_a_composed_net_is_the_net():
    """h1.0 is composed: in.0 -> out.0 skips h1 and is drawn around h1.1; the graph read back from
    the SVG alone computes the torch model's outputs on the box."""
    graph = built_net()
    s = simplify(graph, exact_ranges(graph, np.zeros(2), np.ones(2), workers=1))
    svg = check_figure(s.dag)
    _, edges = drawn(svg)
    assert [(a, b) for a, b, _, at in edges if "skip" in at["class"]] == [("in.0", "out.0")]
    back = dag_from_dict(as_dag_doc(svg, s.dag.layers))
    assert {**dag_to_dict(back), "meta": None} == {**dag_to_dict(s.dag), "meta": None}
    x = np.random.default_rng(0).random((64, 2))
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(graph.layers[1].dense_weight(2)))
        model[0].bias.copy_(torch.tensor(graph.layers[1].bias))
        model[2].weight.copy_(torch.tensor(graph.layers[2].dense_weight(3)))
        model[2].bias.copy_(torch.tensor(graph.layers[2].bias))
    np.testing.assert_allclose(evaluate_dag(back, x)[:, back.outputs], torch_out(model, x, (2,)), rtol=0, atol=1e-12)


@fast_settings(8)
@given(case=nets())
def test_the_figure_draws_the_simplified_dag(case):
    rng, model, graph, lo, hi = make(case)
    s = simplify(graph, exact_ranges(graph, lo, hi, workers=1))
    svg = check_figure(s.dag)
    back = dag_from_dict(as_dag_doc(svg, s.dag.layers))
    x = lo + (hi - lo) * rng.random((32, lo.size))
    want = torch_out(model, x, (lo.size,))
    np.testing.assert_allclose(evaluate_dag(back, x)[:, back.outputs], want, rtol=0, atol=1e-10 * (1 + np.abs(want).max()))


def test_image_inputs_deterministic_bytes_and_escaping():
    """A 28x28 input is a panel of its used pixels; same DAG, same bytes; hostile text stays text."""
    doc = {"format": "sparsescope.dag", "version": 1, "meta": {},
           "layers": [{"name": "in", "shape": [28, 28]}, {"name": "h1", "shape": [3]}, {"name": "out", "shape": [2]}],
           "nodes": [{"id": "in[3,4]", "layer": "in", "activation": "input", "bias": 0.0},
                     {"id": "in[20,1]", "layer": "in", "activation": "input", "bias": 0.0},
                     {"id": "h1.0", "layer": "h1", "activation": "relu", "bias": 0.5},
                     {"id": "h1.2", "layer": "h1", "activation": "linear", "bias": -0.25},
                     {"id": "out.0", "layer": "out", "activation": "linear", "bias": 0.1},
                     {"id": "out.1", "layer": "out", "activation": "linear", "bias": 0.0}],
           "edges": [["in[3,4]", "h1.0", 1.5], ["in[20,1]", "h1.2", -2.0], ["in[3,4]", "out.0", 0.75],
                     ["h1.0", "out.0", -1.0], ["h1.2", "out.1", 3.0]]}
    dag = dag_from_dict(doc)
    check_figure(dag)
    sizes = {"original": {"vertices": 9, "edges": 7}, "reduced": {"vertices": 7, "edges": 6},
             "simplified": {"vertices": 6, "edges": 5}}
    a = dag_figure(dag, title=HOSTILE, sizes=sizes, box=HOSTILE, ranges={"h1.0": (0.5, 2.0)}).to_svg()
    assert a == dag_figure(dag, title=HOSTILE, sizes=sizes, box=HOSTILE, ranges={"h1.0": (0.5, 2.0)}).to_svg()
    assert "<script>" not in a and "&lt;script&gt;" in a
    nodes, _ = drawn(a)
    px = {nid: (float(nodes[nid]["cx"]), float(nodes[nid]["cy"])) for nid in ("in[3,4]", "in[20,1]")}
    assert px["in[3,4]"][1] < px["in[20,1]"][1] and px["in[3,4]"][0] > px["in[20,1]"][0]  # pixels at their places
    assert nodes["h1.2"]["tag"] == SVG + "rect" and nodes["h1.0"]["tag"] == SVG + "circle"  # linear units: squares
    assert "original 9/7, reduced 7/6, simplified 6/5" in a
    assert "[0.5, 2.0]" in a  # the range in the tooltip
    png = dag_figure(dag, title="t").to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
