"""Print the tables and figures of docs/cnn-study.md from a CNN run (and an MLP run to compare with).

    python3 scripts/cnn_study_tables.py RUN [--mlp MLP_RUN] [--output 7] [--runs-dir DIR]

RUN / MLP_RUN: a run folder, name or id (as ``sparsescope show`` takes).
Everything is computed with the public API from the stored rounds, so the
doc's numbers can be checked against this output:

* the per-round table: weights per layer (metrics.json), test accuracy,
  output ``k``'s live subgraph (vertices / edges, ``analysis.analyse``'s
  ``per_output``: live vertices are on a path from an input, or a nonzero
  constant, to the output), the range of live vertices over all outputs, and
  output ``k`` in the channel view (channel nodes / channel edges / distinct
  kernel weights, ``analysis.channel_sizes``);
* the final round: the whole live graph, ignored pixels, dead positions, and
  output ``k`` counted several ways (``analysis.cone_sizes`` rules ``weight``,
  ``kernel``, ``window``; with and without the input pixels), each beside the
  study's 1,659 vertices for output 7;
* output ``k`` per round under the three cone rules (every 4th round, then
  every 2nd from the round nearest the study's size, and the last);
* with ``--mlp`` (repeatable): each MLP run's round of closest test accuracy
  (``analysis.matched_round``) beside the CNN's last round (weights left,
  live vertices and edges, per output), as ``report --compare`` shows it.

Shapes: every count is an integer; accuracies are printed as percentages.
Takes about a minute for the study's 17 rounds on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sparsescope.analysis import (  # noqa: E402
    analyse, channel_count, channel_sizes, channel_view, comparison_side, cone_sizes, matched_round,
)
from sparsescope.runs import resolve_run, round_flowgraph  # noqa: E402

STUDY_VERTICES = 1659  # the study's flowgraph of output 7 at 6 / 23 / 23 / 135 weights


def _n(v: int) -> str:
    """Thousands with commas, as the prose writes them."""
    return f"{v:,}"


def _rel(v: int) -> str:
    """``v`` against the study's 1,659: a signed percentage."""
    return f"{100 * (v - STUDY_VERTICES) / STUDY_VERTICES:+.0f}%"


def _weights(m: dict) -> str:
    return "/".join(str(c) for c in m["weights_left"].values())


def _dense_into(graph, k: int) -> int:
    """Nonzero weights of the output layer into output ``k``."""
    return int((graph.output.dst == k).sum())


def round_rows(store, k: int):
    """Per round: ``(metrics, graph, Structure, ChannelSizes of output k)``, computed lazily."""
    for m in store.round_metrics():
        g = round_flowgraph(store, m["round"])
        yield m, g, analyse(g), channel_sizes(g, k)


def per_round_table(rows, k: int) -> list[str]:
    names = "/".join(rows[0][0]["weights_left"])
    out = [f"| round | {names} | test acc | out.{k} vertices | out.{k} edges | vertices, all outputs (min-max) "
           f"| out.{k} channel view |", "|---|---|---|---|---|---|---|"]
    for i, (m, _, st, ch) in enumerate(rows):
        _, v, e = st.per_output[k]
        vs = [n for _, n, _ in st.per_output]
        w, acc, v_, e_ = _weights(m), f"{100 * m['test_accuracy']:.1f}%", str(v), str(e)
        if i == len(rows) - 1:
            w, acc, v_, e_ = (f"**{s}**" for s in (w, acc, v_, e_))
        out.append(f"| {m['round']} | {w} | {acc} | {v_} | {e_} | {min(vs)}-{max(vs)} | "
                   f"{ch.vertices}/{ch.edges}/{ch.weights} |")
    return out


def final_round(rows, k: int) -> list[str]:
    m, g, st, ch = rows[-1]
    n_out = g.output.size
    inp = g.input.size
    live_inputs = inp - len(st.ignored_inputs)
    whole = channel_sizes(g)
    _, v, e = st.per_output[k]
    near = min(rows, key=lambda r: abs(r[2].per_output[k][1] - STUDY_VERTICES))
    out = [f"final round {m['round']}: weights {_weights(m)} ({m['kept_total']} in all), "
           f"test accuracy {100 * m['test_accuracy']:.2f}%",
           f"output {k}: {v} vertices, {e} edges; the study's {_n(STUDY_VERTICES)} is {STUDY_VERTICES / v:.1f} times that",
           f"round nearest the study's size for output {k}: round {near[0]['round']} ({_weights(near[0])}, "
           f"{100 * near[0]['test_accuracy']:.1f}%): {_n(near[2].per_output[k][1])} vertices; "
           f"{_dense_into(near[1], k)} of its {near[0]['weights_left'][g.output.name]} dense weights go into output {k}",
           f"output {k} at the final round keeps {_dense_into(g, k)} of the {m['weights_left'][g.output.name]} dense weights",
           f"whole live graph: {_n(st.vertices)} vertices, {_n(st.edges)} edges (of {_n(st.total_nodes)} nodes and "
           f"{_n(st.total_edges)} nonzero unrolled weights); without the input pixels {_n(st.vertices - live_inputs)} "
           f"({_rel(st.vertices - live_inputs)} against the study)",
           f"channel view of the whole graph: {whole.vertices} channel nodes, {whole.edges} channel edges, "
           f"{whole.weights} kernel weights",
           f"ignored pixels: {len(st.ignored_inputs)} of {inp}; dead hidden positions: {_n(len(st.dead_units))}",
           "", f"| count for output {k} at {_weights(m)} | vertices | edges | same count, outputs 0-{n_out - 1} (min-max) |",
           "|---|---|---|---|"]
    for rule, label in (("weight", "live graph = ancestors through the edges (`cone_sizes(rule=\"weight\")`)"),
                        ("kernel", "kernel-slice cone (`rule=\"kernel\"`)"),
                        ("window", "receptive field (`rule=\"window\"`)")):
        cones = [cone_sizes(g, j, rule) for j in range(n_out)]
        c = cones[k]
        if rule == "weight":  # the structural cone through the edges is the live graph on this net (checked)
            same = all(cs.vertices == st.per_output[j][1] and cs.edges == st.per_output[j][2]
                       for j, cs in enumerate(cones))
            out.insert(2, f"weight-rule cone equals the live graph for every output: {same}")
        vs = [cs.vertices for cs in cones]
        ws = [cs.vertices - cs.inputs for cs in cones]
        out.append(f"| {label} | {_n(c.vertices)} ({_rel(c.vertices)}) | {_n(c.edges)} | {_n(min(vs))}-{_n(max(vs))} |")
        out.append(f"| the same without the input pixels | {_n(c.vertices - c.inputs)} ({_rel(c.vertices - c.inputs)}) "
                   f"| | {_n(min(ws))}-{_n(max(ws))} |")
    nodes, _ = channel_view(g, [k])
    positions = sum(int(nodes[layer.name].sum()) * (layer.size // channel_count(layer)) for layer in g.layers)
    out.append(f"| channel view (`channel_sizes`): channel nodes / channel edges / kernel weights | {ch.vertices} "
               f"| {ch.edges} | {ch.weights} weights |")
    out.append(f"| every position of the channels in output {k}'s channel view | {_n(positions)} | | |")
    return out


def rules_table(rows, k: int) -> list[str]:
    near = min(range(len(rows)), key=lambda i: abs(rows[i][2].per_output[k][1] - STUDY_VERTICES))
    pick = sorted({i for i in range(0, near, 4)} | set(range(near, len(rows), 2)) | {len(rows) - 1})
    names = "/".join(rows[0][0]["weights_left"])
    out = [f"| round | {names} | live graph (ours) | ancestors through the edges | kernel-slice cone | receptive field |",
           "|---|---|---|---|---|---|"]
    for i in pick:
        m, g, st = rows[i][0], rows[i][1], rows[i][2]
        _, v, e = st.per_output[k]
        cells = [cone_sizes(g, k, r) for r in ("weight", "kernel", "window")]
        out.append(f"| {m['round']} | {_weights(m)} | {v} / {e} | "
                   + " | ".join(f"{c.vertices} / {c.edges}" for c in cells) + " |")
    return out


def comparison(rows, mlp_stores) -> list[str]:
    """The CNN's last round beside each MLP run's round of closest test accuracy."""
    m, g, _, _ = rows[-1]
    cnn = comparison_side(g)
    mlps = [comparison_side(round_flowgraph(st, matched_round(st.round_metrics(), float(m["test_accuracy"]))))
            for st in mlp_stores]
    sides = [cnn, *mlps]
    lw = lambda s: " / ".join(f"{n} {c}" for n, c in s.per_layer.items())  # noqa: E731
    row = lambda label, f: f"| {label} | " + " | ".join(f(s) for s in sides) + " |"  # noqa: E731
    out = []
    for s, st in zip(mlps, mlp_stores):
        low = min(st.round_metrics(), key=lambda r: r["test_accuracy"])
        out.append(f"MLP run {s.run}: round {s.round}, the closest test accuracy to the CNN's round {cnn.round}; "
                   f"its lowest of {len(st.finished_rounds())} rounds: {100 * low['test_accuracy']:.2f}% (round {low['round']})")
    out += ["", "| | " + " | ".join([f"CNN round {cnn.round}"] + [f"MLP `{s.run}` round {s.round}" for s in mlps]) + " |",
            "|---" * (len(sides) + 1) + "|",
            row("test accuracy", lambda s: f"{100 * s.accuracy:.2f}%"),
            row("weights left", lambda s: f"{_n(s.weights_left)} ({lw(s)})"),
            row("live vertices, all outputs", lambda s: _n(s.vertices)),
            row("live edges, all outputs", lambda s: _n(s.edges))]
    for j in range(len(cnn.per_output)):
        out.append(row(f"output {j}", lambda s: f"{s.per_output[j][1]} / {s.per_output[j][2]}"))
    out.append("")
    for s in mlps:
        out.append(f"ratios CNN / MLP {s.run}: weights {cnn.weights_left / s.weights_left:.2f}, "
                   f"vertices {cnn.vertices / s.vertices:.2f}, edges {cnn.edges / s.edges:.2f}")
    ch = cnn.channels or ()
    for what in ("vertices", "edges", "weights"):
        vals = [getattr(c, what) for c in ch]
        out.append(f"CNN channel view per output, {what}: {min(vals)}-{max(vals)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="the CNN run (folder, name or id)")
    ap.add_argument("--mlp", action="append", default=[], help="an MLP run to compare with at matched accuracy (repeatable)")
    ap.add_argument("--output", type=int, default=7, help="the output whose subgraph the tables follow (default 7)")
    ap.add_argument("--runs-dir", default="runs")
    a = ap.parse_args(argv)
    store = resolve_run(a.run, a.runs_dir)
    rows = list(round_rows(store, a.output))
    paths = sorted({m.get("train_path", "not recorded") for m, *_ in rows})
    print(f"run {store.manifest()['run_id']} ({store.path}); training path: {', '.join(paths)}")
    print()
    print("\n".join(per_round_table(rows, a.output)))
    print()
    print("\n".join(final_round(rows, a.output)))
    print()
    print("\n".join(rules_table(rows, a.output)))
    if a.mlp:
        print()
        print("\n".join(comparison(rows, [resolve_run(r, a.runs_dir) for r in a.mlp])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
