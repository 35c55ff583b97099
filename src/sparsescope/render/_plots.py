"""Plots over the rounds of a lottery-ticket run, with matplotlib: accuracy against density, weights per round.

Input is plain round dicts; output ``matplotlib.figure.Figure`` objects
(restyle them, save them as PDF); the report writes them with
:func:`sparsescope.render._mpl.svg_text` / ``png_bytes`` (byte-stable).
"""

from __future__ import annotations

from typing import Any

from . import _colour as C
from ._mpl import STYLE, mpl, new_figure


def _check(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rounds:
        for key in ("round", "density", "weights_left", "test_accuracy"):
            if key not in r:
                raise ValueError(f"round record {r.get('round', '?')} has no {key!r}")
    return sorted(rounds, key=lambda r: int(r["round"]))


def _empty(title: str):
    matplotlib, _ = mpl()
    fig = new_figure(figsize=(6.8, 4.2))
    with matplotlib.rc_context(STYLE):
        ax = fig.add_subplot(1, 1, 1)
        ax.set_title(title, loc="left", fontweight="bold")
        ax.text(0.5, 0.5, "no rounds recorded", ha="center", va="center", color=C.MUTED, transform=ax.transAxes)
        ax.set_axis_off()
    return fig


def accuracy_figure(rounds: list[dict[str, Any]]):
    """Test accuracy (%) against density (% of weights left, log x, densest on the left); one point per round."""
    title = "Test accuracy against density"
    rounds = _check(rounds)
    if not rounds:
        return _empty(title)
    matplotlib, _ = mpl()
    d = [100 * max(float(r["density"]), 1e-6) for r in rounds]
    acc = [100 * float(r["test_accuracy"]) for r in rounds]
    fig = new_figure(figsize=(6.8, 4.2))
    with matplotlib.rc_context(STYLE):
        ax = fig.add_subplot(1, 1, 1)
        (line,) = ax.plot(d, acc, "-o", color=C.SERIES[0], markersize=4, linewidth=2)
        line.set_gid("accuracy")
        for x, y, r in zip(d, acc, rounds):
            ax.annotate(f"r{int(r['round'])}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=7, color=C.MUTED)
        ax.set_xscale("log")
        ax.invert_xaxis()
        pct = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}%")
        ax.xaxis.set_major_formatter(pct)
        ax.xaxis.set_minor_formatter(pct)
        best = max(range(len(acc)), key=lambda i: (acc[i], -i))
        ax.set_title(f"{title}\nbest {acc[best]:.2f}% at {d[best]:.3g}% (r{int(rounds[best]['round'])}); "
                     f"last {acc[-1]:.2f}% at {d[-1]:.3g}%", loc="left", fontsize=9)
        ax.set_xlabel("weights remaining (density, log scale; pruning goes left to right)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
    return fig


def weights_figure(rounds: list[dict[str, Any]]):
    """Weights left per layer (log y) against round, the total dashed."""
    title = "Weights left per layer"
    rounds = _check(rounds)
    if not rounds:
        return _empty(title)
    matplotlib, _ = mpl()
    layers = list(rounds[0]["weights_left"].keys())
    for r in rounds[1:]:
        layers += [k for k in r["weights_left"] if k not in layers]
    xs = [int(r["round"]) for r in rounds]
    series = {k: [int(r["weights_left"].get(k, 0)) for r in rounds] for k in layers}
    series["total"] = [sum(v) for v in zip(*(series[k] for k in layers))] if layers else [0] * len(rounds)
    fig = new_figure(figsize=(6.8, 4.2))
    with matplotlib.rc_context(STYLE):
        ax = fig.add_subplot(1, 1, 1)
        for i, (name, ys) in enumerate(series.items()):
            colour = "#444444" if name == "total" else C.SERIES[i % len(C.SERIES)]
            (line,) = ax.plot(xs, ys, "--" if name == "total" else "-", marker="o", markersize=3, color=colour,
                              linewidth=2, label=f"{name}  {ys[-1]}")
            line.set_gid(f"weights-{name}")
        if any(v > 0 for ys in series.values() for v in ys):
            ax.set_yscale("log")
        total0 = rounds[0].get("weights_total")
        sub = f" (of {sum(int(v) for v in total0.values())} at start)" if isinstance(total0, dict) and total0 else ""
        ax.set_title(f"{title}{sub}", loc="left", fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("weights left (log scale)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


def rounds_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"accuracy": Figure, "weights": Figure}`` for a run's round records.

    Each record: ``{"round", "density", "weights_left": {layer: int}, "weights_total": {...},
    "test_accuracy"}`` (accuracy as a fraction in [0, 1]).
    """
    return {"accuracy": accuracy_figure(rounds), "weights": weights_figure(rounds)}
