"""The report's exact-analysis section: exact against interval bounds per layer,
the outputs' ranges, and the exactly simplified graph as a figure."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._dagfig import dag_figure
from ._graphfig import graph_figure


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def exact_section(a: Any, figures: Path, save: Callable[[Path, str, Any], tuple[str, str]],
                  figure: Callable[[str, str, str], str], title: str,
                  draw: Callable[[Any, str], Any] | None = None) -> str:
    """HTML for a :class:`sparsescope.exact.BoxAnalysis` made with ``exact=True``.

    ``draw(graph, title)`` draws the simplified graph (default: the unit-level
    flowgraph figure; a conv report passes its channel-level figure).
    """
    r, sim = a.ranges, a.simplified
    exact, total = r.count("exact")
    parts = ["<h2>Exact analysis</h2>",
             f"<p>Over the input box <code>{_e(a.box.spec)}</code>: <b>{exact}</b> of {total} range ends are exact, "
             f"each attained by a witness input ({r.solves} mixed-integer programs, up to {r.max_binaries} binaries, "
             f"at most {r.time_limit:g} s each). Width of the interval bounds over the exact range, per layer:</p>"]
    rows = []
    for name in r.layers:
        iw = r.interval.pre_hi[name] - r.interval.pre_lo[name]
        ew = r.hi[name] - r.lo[name]
        ok = np.isfinite(ew) & (ew > 1e-12)
        ratio = iw[ok] / ew[ok]
        mean = f"{ratio.mean():.3f}" if ratio.size else "-"
        mx = f"{ratio.max():.3f}" if ratio.size else "-"
        iwm = f"{iw[ok].mean():.4g}" if ok.any() else "-"
        ewm = f"{ew[ok].mean():.4g}" if ok.any() else "-"
        ends = int(np.sum(r.lo_status[name] == "exact") + np.sum(r.hi_status[name] == "exact"))
        rows.append(f'<tr><td class="l">{_e(name)}</td><td>{int(ok.sum())}</td><td>{iwm}</td><td>{ewm}</td>'
                    f"<td>{mean}</td><td>{mx}</td><td>{ends} / {2 * ew.size}</td></tr>")
    parts.append('<table><tr><th class="l">layer</th><th>non-constant units</th><th>interval width (mean)</th>'
                 '<th>exact width (mean)</th><th>ratio mean</th><th>ratio max</th><th>exact ends</th></tr>'
                 + "".join(rows) + "</table>")
    out = a.graph.output
    rows = []
    for j in range(out.size):
        rows.append(f'<tr><td class="l">{_e(out.node_id(j))}</td>'
                    f"<td>[{r.interval.pre_lo[out.name][j]:.4g}, {r.interval.pre_hi[out.name][j]:.4g}]</td>"
                    f"<td>[{r.lo[out.name][j]:.4g}, {r.hi[out.name][j]:.4g}]</td>"
                    f"<td>{_e(r.lo_status[out.name][j])} / {_e(r.hi_status[out.name][j])}</td></tr>")
    parts.append('<table><tr><th class="l">output</th><th>interval</th><th>exact</th><th>status</th></tr>'
                 + "".join(rows) + "</table>")
    o, m, n = sim.sizes["original"], sim.sizes["reduced"], sim.sizes["simplified"]
    kinds: dict[str, int] = {}
    for f in sim.facts:
        kinds[f["fact"]] = kinds.get(f["fact"], 0) + 1
    parts.append(f"<p>The exactly simplified graph computes the same outputs everywhere in the box. Certified "
                 f"facts: {_e(', '.join(f'{k} {v}' for k, v in sorted(kinds.items())))}.</p>")
    parts.append('<table><tr><th class="l">graph</th><th>live vertices</th><th>live edges</th><th class="l">what</th></tr>'
                 f'<tr><td class="l">original</td><td>{o["vertices"]}</td><td>{o["edges"]}</td><td class="l">'
                 f'({o["total_edges"]} edges in all)</td></tr>'
                 f'<tr><td class="l">reduced</td><td>{m["vertices"]}</td><td>{m["edges"]}</td><td class="l">'
                 "units proven off, constant or unused removed</td></tr>"
                 f'<tr><td class="l">simplified</td><td>{n["vertices"]}</td><td>{n["edges"]}</td><td class="l">'
                 f"{len(sim.composed)} always-on units composed into their consumers"
                 + (f" ({_e(', '.join(sim.composed[:12]))}{', ...' if len(sim.composed) > 12 else ''})" if sim.composed else "")
                 + "</td></tr></table>")
    draw = draw or (lambda g, t: graph_figure(g, title=t))
    svg, png = save(figures, "simplified", draw(sim.graph, f"{title}: simplified over {a.box.spec}"))
    parts.append(figure(svg, png, "The reduced graph: units proven off removed, constant units folded into "
                        "their consumers' biases; bounds are the exact analysis' sound bounds"
                        + (" (the compositions, whose edges skip layers, are in the figure below)."
                           if sim.composed else ".")))
    svg, png = save(figures, "simplified-dag", dag_figure(sim.dag, title=f"{title}: simplified graph over {a.box.spec}",
                                                          ranges=_ranges_by_id(sim.dag, r), sizes=sim.sizes,
                                                          box=a.box.spec))
    o, m, n = sim.sizes["original"], sim.sizes["reduced"], sim.sizes["simplified"]
    parts.append(figure(svg, png, f"The simplified graph: {len(sim.composed)} always-on units composed into their "
                        "consumers, whose edges then skip layers (drawn around the layers they skip). Live "
                        f"vertices/edges: original {o['vertices']}/{o['edges']}, reduced {m['vertices']}/{m['edges']}, "
                        f"simplified {n['vertices']}/{n['edges']}. Every node equals its bias plus its incoming edges "
                        "(then ReLU where it has one) and computes its original value everywhere in the box."))
    return "\n".join(parts)


def _ranges_by_id(dag: Any, r: Any) -> dict[str, tuple[float, float]]:
    """``{node id: (lo, hi)}``: the exact analysis' range of every non-input node of ``dag``."""
    names = [name for name, _ in dag.layers]
    out = {}
    for i, nid in enumerate(dag.ids):
        name = names[int(dag.layer[i])]
        if name in r.lo:
            k = int(dag.index[i])
            out[nid] = (float(r.lo[name][k]), float(r.hi[name][k]))
    return out
