"""The report folder: ``index.html`` with figures (SVG + PNG) and structure statistics.

The folder is built under a locked temporary name beside the target and
swapped into place in one step (``renameat2(RENAME_EXCHANGE)``), so at every
moment the old report or the new one is in place, never neither and never
half of one; a killed report's temporary is removed by the next report of
the same folder.  ``report-files.json`` lists every file the report wrote
with its SHA-256: a folder holding anything else (a user's notes, an edited
figure) is refused, never deleted.  The page uses no script and no network;
every string from the graph is HTML-escaped.  Bytes are deterministic: the
same inputs give the same files.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import exchange, temp_dir
from ..analysis import Structure, analyse, box_states, live_mask
from ..graph import Flowgraph, evaluate
from . import _colour as C
from ._convfig import is_conv_graph
from ._graphfig import fmt, graph_figure
from ._plots import rounds_figures
from ._scene import Scene, png_bytes

GENERATOR = "sparsescope report"
FILE_LIST = "report-files.json"
# what a report written before FILE_LIST existed may hold
_LEGACY = re.compile(r"index\.html|figures/(graph|accuracy|weights|ignored-inputs|sample-\d+|output-\d+)\.(svg|png)")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
.muted{color:#6b6b6b}table{border-collapse:collapse;margin:.6rem 0}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f2}td.l,th.l{text-align:left}figure{margin:1rem 0}figure img{max-width:100%;
border:1px solid #e4e4e4}figcaption{font-size:.9rem;color:#555}.grid{display:flex;flex-wrap:wrap;gap:1rem}
.grid figure{flex:1 1 520px}code{background:#f4f4f2;padding:0 .25rem}details{margin:.4rem 0}
img.mask{image-rendering:pixelated;width:168px;height:168px}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def write_report(
    folder: Path,
    graph: Flowgraph,
    *,
    rounds: list[dict],
    samples_x: np.ndarray,
    samples_y: np.ndarray,
    sample_index: int = 0,
    title: str,
    comparison: tuple[Any, Any] | None = None,
    exact: Any = None,
) -> Path:
    """Write the report to ``folder`` (replacing an earlier report there) and return ``folder/index.html``.

    ``samples_x``: ``(N, *input_shape)`` or ``(N, n_in)``; ``samples_y``: ``(N,)``
    labels; the per-input figure is drawn for ``samples_x[sample_index]``.
    A non-empty ``folder`` that is not a sparsescope report is refused.
    ``exact``: an exact :class:`sparsescope.exact.BoxAnalysis` of ``graph``
    adds a section (exact against interval bounds, the simplified graph).
    """
    folder = Path(folder)
    samples_x = np.asarray(samples_x)
    samples_y = np.asarray(samples_y).reshape(-1)
    if not 0 <= sample_index < len(samples_x):
        raise IndexError(f"sample_index {sample_index} is outside the {len(samples_x)} samples")
    if len(samples_y) != len(samples_x):
        raise ValueError(f"{len(samples_x)} samples but {len(samples_y)} labels")
    _check_target(folder)
    with temp_dir(folder) as tmp:  # also removes a killed report's temporaries
        _build(tmp, graph, rounds, samples_x, samples_y, sample_index, title, comparison, exact)
        _write_file_list(tmp)
        _check_target(folder)  # again: the user may have added a file while we drew
        _swap_into_place(tmp, folder)
    return folder / "index.html"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, Path]:
    """Every entry under ``root`` that is not a folder, by its ``/``-separated relative path
    (symbolic links included, never followed)."""
    out = {}
    for here, dirs, names in os.walk(root):
        for n in names + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            p = Path(here) / n
            out[p.relative_to(root).as_posix()] = p
    return out


def _write_file_list(root: Path) -> None:
    files = {rel: _sha(p) for rel, p in sorted(_files(root).items())}
    text = json.dumps({"generator": GENERATOR, "files": files}, indent=1, sort_keys=True) + "\n"
    (root / FILE_LIST).write_text(text, encoding="utf-8")


def _check_target(folder: Path) -> None:
    """Refuse to replace ``folder`` unless everything in it was written, unchanged, by a report."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise FileExistsError(f"{folder} exists and is not a folder; not replacing it")
    found = _files(folder) if folder.is_dir() else {}
    if not found:
        return
    listed = _recorded(folder)
    if listed is None:
        index = folder / "index.html"
        is_report = index.is_file() and not index.is_symlink() and GENERATOR in index.read_text(
            encoding="utf-8", errors="replace")[:2000]
        if not is_report:
            raise FileExistsError(f"{folder} is not empty and holds no sparsescope report; not replacing it")
        foreign = sorted(r for r in found if not _LEGACY.fullmatch(r) or found[r].is_symlink())
    else:
        foreign = sorted(r for r, p in found.items() if r != FILE_LIST and (
            r not in listed or p.is_symlink() or not p.is_file() or _sha(p) != listed[r]))
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise FileExistsError(f"{folder} holds files this report did not write or that changed since "
                              f"({', '.join(foreign[:3])}{more}); move them away or choose another folder")


def _recorded(folder: Path) -> dict[str, str] | None:
    """The file list of the report in ``folder``, or None if there is none (or it is unreadable)."""
    p = folder / FILE_LIST
    if not p.is_file() or p.is_symlink() or p.stat().st_size > (16 << 20):
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("generator") == GENERATOR else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    return files


def _swap_into_place(tmp: Path, folder: Path) -> None:
    """Put the finished ``tmp`` at ``folder``; an old report there ends up at ``tmp`` and is deleted.

    With an existing report the two names are exchanged atomically, so one
    of the two reports is always in place.  Where the file system cannot
    exchange, the old report is renamed aside first (a short window with
    neither) and put back if the second rename fails.
    """
    if not folder.exists():
        os.rename(tmp, folder)
        return
    if exchange(tmp, folder):
        shutil.rmtree(tmp, ignore_errors=True)  # the old report, checked by _check_target
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    os.rename(folder, aside)  # onto the empty folder just made: a name the next report cleans up
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(aside, folder)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _save(figures: Path, stem: str, scene: Any) -> tuple[str, str]:
    """Write a :class:`Scene` or a matplotlib Figure (the round plots) as SVG and PNG."""
    if isinstance(scene, Scene):
        svg, png = scene.to_svg(), scene.to_png()
    else:
        from ._mpl import png_bytes, svg_text

        svg, png = svg_text(scene), png_bytes(scene)
    (figures / f"{stem}.svg").write_text(svg, encoding="utf-8")
    (figures / f"{stem}.png").write_bytes(png)
    return f"figures/{stem}.svg", f"figures/{stem}.png"


def _figure(svg: str, png: str, caption: str) -> str:
    return (f'<figure><a href="{_e(svg)}"><img src="{_e(svg)}" alt="{_e(caption)}" loading="lazy"></a>'
            f'<figcaption>{_e(caption)} \u2014 <a href="{_e(svg)}">SVG</a> \u00b7 <a href="{_e(png)}">PNG</a>'
            "</figcaption></figure>")


def _build(root: Path, graph: Flowgraph, rounds: list[dict], xs: np.ndarray, ys: np.ndarray, k: int,
           title: str, comparison: tuple[Any, Any] | None = None, exact: Any = None) -> None:
    if graph.bounds is None:
        from ..bounds import annotate

        graph = annotate(graph, "unit")
    figures = root / "figures"
    figures.mkdir()
    if is_conv_graph(graph):  # feature maps: the conv figures (channel view, kernels, unrolled subgraphs)
        from ._convreport import build_conv_body

        body = build_conv_body(root, graph, xs, ys, k, title)
        if exact is not None:
            from ._convfig import channel_figure
            from ._exact import exact_section

            body.append(exact_section(exact, figures, _save, _figure, title,
                                      draw=lambda g, t: channel_figure(g, title=t)))
        _finish(root, figures, body, rounds, title, comparison)
        return
    st = analyse(graph)
    out = graph.output
    labels = out.labels or tuple(str(i) for i in range(out.size))
    body: list[str] = []

    # -- overview -----------------------------------------------------------------
    meta = ", ".join(f"{_e(key)} = {_e(f'{v:.6g}' if isinstance(v, float) else v)}"
                     for key, v in graph.meta.items() if isinstance(v, (str, int, float)))
    body.append(f"<h1>{_e(title)}</h1>")
    if meta:
        body.append(f'<p class="muted">{meta}</p>')
    body.append(_sizes_html(graph, st))

    # -- whole graph --------------------------------------------------------------
    body.append("<h2>Flowgraph</h2>")
    svg, png = _save(figures, "graph", graph_figure(graph, title=f"{title}: flowgraph"))
    body.append(_figure(svg, png, "The whole live graph: every node drawn equals its bias plus its drawn incoming "
                        f"edges. Cards show each node's range <lo, hi> over the input box '{graph.bounds.box}' and "
                        "its bias b; constant (bias-only) units are drawn in blue; unused inputs and units that "
                        "contribute nothing are omitted."))

    if exact is not None:
        from ._exact import exact_section

        body.append(exact_section(exact, figures, _save, _figure, title))

    # -- one input ----------------------------------------------------------------
    x = xs[k]
    ev = evaluate(graph, np.asarray(x, dtype=np.float64)[None])
    ov = ev.post[out.name][0]
    pred = int(np.argmax(ov))
    body.append(f"<h2>One input: test image #{k}</h2>")
    body.append(f"<p>Label <b>{_e(_label_of(ys[k], labels))}</b>, prediction <b>{_e(out.node_id(pred))} "
                f"\u201c{_e(labels[pred])}\u201d</b> ({fmt(ov[pred])}).</p>")
    svg, png = _save(figures, f"sample-{k}", graph_figure(graph, x=x, input_index=k, input_label=_label_of(ys[k], labels)))
    body.append(_figure(svg, png, "Values [v] on this input; edge width shows |w x value carried|."))
    rows = "".join(f'<tr><td class="l">{_e(out.node_id(i))}</td><td class="l">{_e(labels[i])}</td>'
                   f"<td>{fmt(ov[i])}</td></tr>" for i in range(out.size))
    body.append(f'<table><tr><th class="l">output</th><th class="l">label</th><th>value</th></tr>{rows}</table>')

    # -- per output ---------------------------------------------------------------
    body.append("<h2>Per output</h2>")
    body.append("<p>Each output's live graph: the nodes and edges its figure below draws (constant units "
                "included), so every drawn node adds up; <i>interval lo</i>/<i>hi</i>: the output's interval bounds "
                "over the box (sound, possibly wider than the exact range; <code>--exact</code> gives the exact one).</p>")
    body.append(_per_output_html(graph, st, labels))
    for i in range(out.size):
        svg, png = _save(figures, f"output-{i}", graph_figure(graph, output=i,
                                                              title=f"{title}: {out.node_id(i)} \u201c{labels[i]}\u201d"))
        body.append(_figure(svg, png, f"Subgraph of {out.node_id(i)} \u201c{labels[i]}\u201d: its ancestors only."))

    # -- structure ----------------------------------------------------------------
    body.append("<h2>Structure</h2>")
    body.append(_structure_html(graph, st, figures))

    _finish(root, figures, body, rounds, title, comparison)


def _finish(root: Path, figures: Path, body: list[str], rounds: list[dict], title: str,
            comparison: tuple[Any, Any] | None) -> None:
    """The rounds section, the optional comparison table, and the page itself."""
    body.append("<h2>Lottery-ticket rounds</h2>")
    figs = rounds_figures(rounds)
    body.append('<div class="grid">')
    score = "Greedy return" if rounds and "eval_return" in rounds[0] else "Test accuracy"
    for name, caption in (("accuracy", f"{score} against density"), ("weights", "Weights left per layer")):
        svg, png = _save(figures, name, figs[name])
        body.append(_figure(svg, png, caption))
    body.append("</div>")
    body.append(_rounds_html(rounds))
    if comparison is not None:
        from ._convreport import comparison_html

        body.append(comparison_html(*comparison))

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="generator" content="{GENERATOR}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")
    (root / "index.html").write_text(page, encoding="utf-8")


def _label_of(y: Any, labels: tuple[str, ...]) -> str:
    try:
        i = int(y)
    except (TypeError, ValueError):
        return str(y)
    return labels[i] if 0 <= i < len(labels) and str(i) != labels[i] else str(y)


def _sizes_html(graph: Flowgraph, st: Structure) -> str:
    rows = []
    nodes, edges = live_mask(graph)
    for layer in graph.layers:
        e_total = layer.num_edges
        e_live = int(edges[layer.name].sum()) if layer.name in edges else 0
        act = "" if layer.kind == "input" else layer.activation
        rows.append(f'<tr><td class="l">{_e(layer.name)}</td><td class="l">{_e("x".join(map(str, layer.shape)))}</td>'
                    f'<td class="l">{_e(act)}</td><td>{int(nodes[layer.name].sum())}</td><td>{layer.size}</td>'
                    f"<td>{e_live}</td><td>{e_total}</td></tr>")
    return (f"<p>Live graph: <b>{st.vertices}</b> vertices and <b>{st.edges}</b> edges "
            f"(of {st.total_nodes} nodes and {st.total_edges} nonzero weights).</p>"
            '<table><tr><th class="l">layer</th><th class="l">shape</th><th class="l">activation</th>'
            "<th>live nodes</th><th>nodes</th><th>live edges</th><th>edges</th></tr>" + "".join(rows) + "</table>")


def _per_output_html(graph: Flowgraph, st: Structure, labels: tuple[str, ...]) -> str:
    out = graph.output
    b = graph.bounds
    rows = []
    for i, (nid, v, e) in enumerate(st.per_output):
        lo, hi = b.lo[out.name][i], b.hi[out.name][i]
        rows.append(f'<tr><td class="l">{_e(nid)}</td><td class="l">{_e(labels[i])}</td><td>{v}</td><td>{e}</td>'
                    f"<td>{fmt(lo)}</td><td>{fmt(hi)}</td></tr>")
    return ('<table><tr><th class="l">output</th><th class="l">label</th><th>nodes drawn</th><th>edges drawn</th>'
            f"<th>interval lo</th><th>interval hi</th></tr>{''.join(rows)}</table>")


def _structure_html(graph: Flowgraph, st: Structure, figures: Path) -> str:
    inp = graph.input
    parts = [f"<p><b>{len(st.ignored_inputs)}</b> of {inp.size} inputs are ignored (no path to any output).</p>"]
    if len(inp.shape) == 2:
        used = np.ones(inp.size, dtype=bool)
        for nid in st.ignored_inputs:
            used[graph.locate(nid)[1]] = False
        (figures / "ignored-inputs.png").write_bytes(png_bytes(C.mask_tile(used.reshape(inp.shape))))
        parts.append('<figure><img class="mask" src="figures/ignored-inputs.png" alt="input mask">'
                     "<figcaption>Inputs used (dark) and ignored (light).</figcaption></figure>")
    if st.ignored_inputs and inp.labels is not None:  # named inputs (an RL state): say which, by name
        names = ", ".join(f"<code>{_e(nid)}</code> \u201c{_e(inp.labels[graph.locate(nid)[1]])}\u201d"
                          for nid in st.ignored_inputs)
        parts.append(f"<p>Ignored: {names}.</p>")
    elif st.ignored_inputs:
        parts.append(f"<details><summary>ignored inputs</summary><p><code>{_e(' '.join(st.ignored_inputs))}</code>"
                     "</p></details>")
    parts.append(f"<p><b>{len(st.dead_units)}</b> dead hidden units (they contribute nothing to any output: no path "
                 "to an output, or no path from an input and a value of exactly 0)"
                 + (f": <code>{_e(' '.join(st.dead_units))}</code>" if st.dead_units else "") + ".</p>")
    if st.constant_units:
        rows = "".join(f'<tr><td class="l">{_e(nid)}</td><td>{v:.6g}</td></tr>' for nid, v in st.constant_units)
        parts.append(f"<p><b>{len(st.constant_units)}</b> constant hidden units (no path from an input, but a nonzero "
                     "value that reaches an output; drawn in the figures so every node adds up):</p>"
                     f'<table><tr><th class="l">unit</th><th>value</th></tr>{rows}</table>')
    if st.constant_outputs:
        rows = "".join(f'<tr><td class="l">{_e(nid)}</td><td>{v:.6g}</td></tr>' for nid, v in st.constant_outputs)
        parts.append(f"<p><b>{len(st.constant_outputs)}</b> constant outputs (no path from any input):</p>"
                     f'<table><tr><th class="l">output</th><th>value</th></tr>{rows}</table>')
    else:
        parts.append("<p>No constant outputs.</p>")
    if graph.bounds is not None:
        bs = box_states(graph)
        box = f"input box <code>{_e(bs.box)}</code>"
        parts.append(f"<p>Over the {box}, by the bounds: <b>{len(bs.off)}</b> ReLU units are always off "
                     "(exactly 0: removable without changing any value there)"
                     + (f": <code>{_e(' '.join(bs.off))}</code>" if bs.off else "")
                     + f"; <b>{len(bs.on)}</b> are always on (affine there)"
                     + (f": <code>{_e(' '.join(bs.on))}</code>" if bs.on else "") + ".</p>")
    return "\n".join(parts)


def _rounds_html(rounds: list[dict]) -> str:
    if not rounds:
        return '<p class="muted">No rounds recorded.</p>'
    layers: list[str] = []
    for r in rounds:
        layers += [k for k in r.get("weights_left", {}) if k not in layers]
    head = "".join(f"<th>{_e(n)}</th>" for n in layers)
    rows = []
    if "eval_return" in rounds[0]:
        return _rl_rounds_html(rounds, layers, head)
    for r in sorted(rounds, key=lambda r: int(r["round"])):
        cells = "".join(f"<td>{int(r['weights_left'].get(n, 0))}</td>" for n in layers)
        rows.append(f"<tr><td>{int(r['round'])}</td><td>{100 * float(r['density']):.3g}%</td>"
                    f"<td>{100 * float(r['test_accuracy']):.2f}%</td>{cells}</tr>")
    return (f"<table><tr><th>round</th><th>density</th><th>test accuracy</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _rl_rounds_html(rounds: list[dict], layers: list[str], head: str) -> str:
    """An RL run's rounds: density, solved or not, environment steps, greedy return (mean, min)."""
    rows = []
    for r in sorted(rounds, key=lambda r: int(r["round"])):
        cells = "".join(f"<td>{int(r['weights_left'].get(n, 0))}</td>" for n in layers)
        solved = "yes" if r.get("solved") else "<b>NO</b>"
        rows.append(f"<tr><td>{int(r['round'])}</td><td>{100 * float(r['density']):.3g}%</td><td>{solved}</td>"
                    f"<td>{int(r.get('steps', 0)):,}</td><td>{float(r['eval_return']):.1f}</td>"
                    f"<td>{float(r.get('eval_return_min', float('nan'))):.0f}</td>{cells}</tr>")
    return ("<table><tr><th>round</th><th>density</th><th>solved</th><th>env steps</th><th>greedy return</th>"
            f"<th>min</th>{head}</tr>" + "".join(rows) + "</table>")
