"""The report page of a convolutional round (called by ``write_report`` for graphs with feature maps).

Same folder contract as the MLP report (``index.html`` + ``figures/``, no
script, everything escaped, deterministic bytes); the figures are the conv
ones: the channel-level view, kernels, feature maps, one input's values,
and per output the channel view and the unrolled subgraph with the sizes of
both views.  A :class:`~sparsescope.analysis.ComparisonSide` pair adds the
study's MLP-vs-CNN table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis import CONE_RULES, ComparisonSide, analyse, box_states, channel_sizes, cone_sizes
from .._errors import GraphError
from ..graph import Flowgraph, evaluate
from . import _colour as C
from ._convfig import channel_figure, feature_maps_figure, kernel_figure, unrolled_figure
from ._graphfig import fmt
from ._scene import png_bytes

MAX_IDS = 60  # longest id list written out in full


def _ids(ids: tuple[str, ...] | list[str]) -> str:
    from ._report import _e

    shown = " ".join(ids[:MAX_IDS])
    more = f" \u2026 and {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else ""
    return f"<code>{_e(shown)}</code>{_e(more)}"


def build_conv_body(root: Path, graph: Flowgraph, xs: np.ndarray, ys: np.ndarray, k: int, title: str) -> list[str]:
    """The HTML body parts of a conv round's report (figures written under ``root/figures``)."""
    from ._report import _e, _figure, _label_of, _save, _sizes_html

    figures = root / "figures"
    st = analyse(graph)
    out = graph.output
    labels = out.labels or tuple(str(i) for i in range(out.size))
    body: list[str] = []
    meta = ", ".join(f"{_e(key)} = {_e(v)}" for key, v in graph.meta.items() if isinstance(v, (str, int, float)))
    body.append(f"<h1>{_e(title)}</h1>")
    if meta:
        body.append(f'<p class="muted">{meta}</p>')
    whole = channel_sizes(graph)
    body.append(f"<p>Channel view: <b>{whole.vertices}</b> channel nodes and <b>{whole.edges}</b> channel edges "
                f"using <b>{whole.weights}</b> live kernel weights; unrolled, the same live graph has "
                f"<b>{whole.unrolled_vertices}</b> vertices and <b>{whole.unrolled_edges}</b> edges.</p>")
    body.append(_sizes_html(graph, st))

    body.append("<h2>Channel-level view</h2>")
    svg, png = _save(figures, "channels", channel_figure(graph, title=f"{title}: channels"))
    body.append(_figure(svg, png, "One card per live channel (its live positions, shaded by the upper bound over "
                        f"the box '{graph.bounds.box if graph.bounds else 'none'}'); beside it, the kernel slice it "
                        "applies to each input channel: w = distinct weights, e = unrolled edges (positions) they make."))
    svg, png = _save(figures, "kernels", kernel_figure(graph, title=f"{title}: kernels"))
    body.append(_figure(svg, png, "Every conv kernel: rows are output channels, columns input channels; "
                        "green positive, red negative, grey pruned."))
    svg, png = _save(figures, "feature-maps", feature_maps_figure(graph, title=f"{title}: feature maps (weights mode)"))
    body.append(_figure(svg, png, "Feature maps in weights mode: live positions (on some input-to-output path), "
                        "darker where the upper bound is larger; light grey positions are dead."))

    x = np.asarray(xs[k], dtype=np.float64)
    ov = evaluate(graph, x[None]).post[out.name][0]
    pred = int(np.argmax(ov))
    body.append(f"<h2>One input: sample {k}</h2>")
    body.append(f"<p>Label <b>{_e(_label_of(ys[k], labels))}</b>, prediction <b>{_e(out.node_id(pred))} "
                f"\u201c{_e(labels[pred])}\u201d</b> ({fmt(ov[pred])}).</p>")
    svg, png = _save(figures, f"sample-{k}-maps", feature_maps_figure(graph, x=x, title=f"{title}: sample {k}"))
    body.append(_figure(svg, png, "Every feature map on this input (green positive, red negative)."))
    svg, png = _save(figures, f"sample-{k}-channels", channel_figure(graph, x=x, title=f"{title}: sample {k}, channels"))
    body.append(_figure(svg, png, "The channel view with this input's values."))
    rows = "".join(f'<tr><td class="l">{_e(out.node_id(i))}</td><td class="l">{_e(labels[i])}</td>'
                   f"<td>{fmt(ov[i])}</td></tr>" for i in range(out.size))
    body.append(f'<table><tr><th class="l">output</th><th class="l">label</th><th>value</th></tr>{rows}</table>')

    body.append("<h2>Per output</h2>")
    chans = [channel_sizes(graph, i) for i in range(out.size)]
    rows = []
    for i, (nid, v, e) in enumerate(st.per_output):
        c = chans[i]
        rows.append(f'<tr><td class="l">{_e(nid)}</td><td class="l">{_e(labels[i])}</td><td>{v}</td><td>{e}</td>'
                    f"<td>{c.vertices}</td><td>{c.edges}</td><td>{c.weights}</td></tr>")
    body.append('<table><tr><th class="l">output</th><th class="l">label</th><th>vertices</th><th>edges</th>'
                "<th>channel nodes</th><th>channel edges</th><th>kernel weights</th></tr>" + "".join(rows) + "</table>")
    body.append(cones_html(graph, labels))
    for i in range(out.size):
        name = f"{out.node_id(i)} \u201c{labels[i]}\u201d"
        svg, png = _save(figures, f"output-{i}-channels", channel_figure(graph, output=i, title=f"{title}: {name}, channels"))
        body.append(_figure(svg, png, f"Subgraph of {name}, channel view: {chans[i].vertices} channel nodes, "
                            f"{chans[i].edges} channel edges, {chans[i].weights} kernel weights."))
        svg, png = _save(figures, f"output-{i}-unrolled", unrolled_figure(graph, output=i, title=f"{title}: {name}, unrolled"))
        body.append(_figure(svg, png, f"Subgraph of {name}, unrolled: {st.per_output[i][1]} vertices, "
                            f"{st.per_output[i][2]} edges (every position a dot, every edge a line)."))

    body.append("<h2>Structure</h2>")
    inp = graph.input
    used = np.ones(inp.size, dtype=bool)
    for nid in st.ignored_inputs:
        used[graph.locate(nid)[1]] = False
    parts = [f"<p><b>{len(st.ignored_inputs)}</b> of {inp.size} inputs are ignored (no path to any output).</p>"]
    if len(inp.shape) == 2:
        (figures / "ignored-inputs.png").write_bytes(png_bytes(C.mask_tile(used.reshape(inp.shape))))
        parts.append('<figure><img class="mask" src="figures/ignored-inputs.png" alt="input mask">'
                     "<figcaption>Inputs used (dark) and ignored (light).</figcaption></figure>")
    per_layer: dict[str, int] = {}
    for nid in st.dead_units:
        per_layer[graph.locate(nid)[0]] = per_layer.get(graph.locate(nid)[0], 0) + 1
    dead = ", ".join(f"{_e(n)}: {c} of {graph.layer(n).size}" for n, c in per_layer.items()) or "none"
    parts.append(f"<p><b>{len(st.dead_units)}</b> dead hidden units (no path from an input or to an output): {dead}.</p>")
    if st.constant_outputs:
        rows_c = "".join(f'<tr><td class="l">{_e(nid)}</td><td>{v:.6g}</td></tr>' for nid, v in st.constant_outputs)
        parts.append(f"<p><b>{len(st.constant_outputs)}</b> constant outputs (no path from any input):</p>"
                     f'<table><tr><th class="l">output</th><th>value</th></tr>{rows_c}</table>')
    else:
        parts.append("<p>No constant outputs.</p>")
    if graph.bounds is not None:
        bs = box_states(graph)
        parts.append(f"<p>Over the input box <code>{_e(bs.box)}</code>, by the bounds: <b>{len(bs.off)}</b> ReLU units "
                     f"are always off (exactly 0 there){': ' + _ids(bs.off) if bs.off else ''}; <b>{len(bs.on)}</b> "
                     "are always on (affine there).</p>")
    body.append("\n".join(parts))
    return body


def comparison_html(a: ComparisonSide, b: ComparisonSide, label_a: str = "this run", label_b: str = "compared run") -> str:
    """The study's table: weights left, live vertices and edges (whole and per output) of two rounds."""
    from ._report import _e

    def cell(v: object) -> str:
        return "" if v is None else _e(v)

    head = (f'<tr><th class="l"></th><th>{_e(label_a)}<br><span class="muted">{_e(a.run)} r{a.round}</span></th>'
            f'<th>{_e(label_b)}<br><span class="muted">{_e(b.run)} r{b.round}</span></th></tr>')
    rows = [
        ("test accuracy", f"{100 * a.accuracy:.2f}%" if a.accuracy is not None else "",
         f"{100 * b.accuracy:.2f}%" if b.accuracy is not None else ""),
        ("weights left", a.weights_left, b.weights_left),
        ("weights per layer", " / ".join(f"{k} {v}" for k, v in a.per_layer.items()),
         " / ".join(f"{k} {v}" for k, v in b.per_layer.items())),
        ("live vertices (all outputs)", a.vertices, b.vertices),
        ("live edges (all outputs)", a.edges, b.edges),
    ]
    for i in range(max(len(a.per_output), len(b.per_output))):
        pa = a.per_output[i] if i < len(a.per_output) else None
        pb = b.per_output[i] if i < len(b.per_output) else None
        nid = (pa or pb)[0]  # type: ignore[index]
        rows.append((f"{nid}: vertices / edges", f"{pa[1]} / {pa[2]}" if pa else "", f"{pb[1]} / {pb[2]}" if pb else ""))
    for s, tag in ((a, "a"), (b, "b")):
        if s.channels is not None:
            rows.append((f"channel view ({tag}): nodes / edges / weights per output",
                         " ".join(f"{c.vertices}/{c.edges}/{c.weights}" for c in s.channels) if tag == "a" else "",
                         " ".join(f"{c.vertices}/{c.edges}/{c.weights}" for c in s.channels) if tag == "b" else ""))
    body = "".join(f'<tr><td class="l">{_e(r[0])}</td><td>{cell(r[1])}</td><td>{cell(r[2])}</td></tr>' for r in rows)
    return ("<h2>Comparison at matched accuracy</h2><p>The compared run's round is the one whose test accuracy is "
            "closest to this round's. Weights count trainable kernel weights; vertices and edges are those of the "
            "live (unrolled) flowgraph.</p>" f"<table>{head}{body}</table>")


STUDY_VERTICES_OUT7 = 1659  # the study's flowgraph of output 7 (issue 8)


def cones_html(graph: Flowgraph, labels) -> str:
    """Per output, the ancestor cone under each rule of :func:`~sparsescope.analysis.cone_sizes`
    (vertices and edges), with what each rule counts, beside the study's 1,659 for output 7."""
    from ._report import _e

    out = graph.output
    head = "".join(f"<th>{r}: vertices</th><th>{r}: edges</th>" for r in CONE_RULES)
    rows, unknown = [], set()
    for i in range(out.size):
        cells = ""
        for r in CONE_RULES:
            try:
                c = cone_sizes(graph, i, r)
                cells += f"<td>{c.vertices}</td><td>{c.edges}</td>"
            except GraphError as e:  # too few edges to read a conv's stride and padding back
                unknown.add(str(e))
                cells += "<td>\u2014</td><td>\u2014</td>"
        rows.append(f'<tr><td class="l">{_e(out.node_id(i))}</td><td class="l">{_e(labels[i])}</td>{cells}</tr>')
    return ("<h3>Ancestor cones of each output, three ways to count</h3>"
            "<p>How big an output's flowgraph is depends on what one counts as connected. "
            "<b>weight</b>: every node with a path to the output through the graph's edges (one edge per surviving "
            "kernel weight and position; on a pruned net this is the live graph above). "
            "<b>kernel</b>: a kernel slice with any surviving weight connects its two channels through its whole "
            "window at every position, as a kernel-by-kernel drawing does. "
            "<b>window</b>: every conv connects every input channel through its window (the receptive field, "
            "whatever the kernels hold). Dense layers and pools count their edges under every rule. "
            f"Vertices include the inputs and the output. The study reported {STUDY_VERTICES_OUT7:,} vertices "
            "for output 7 (its masks are not known, so which rule it counted is a reading, not a fact).</p>"
            '<table><tr><th class="l">output</th><th class="l">label</th>' + head + "</tr>" + "".join(rows) + "</table>"
            + "".join(f'<p class="muted">Not counted: {_e(m)}.</p>' for m in sorted(unknown)))

