"""The study's figures with matplotlib (Agg), written as deterministic SVG.

Each function returns a ``matplotlib.figure.Figure`` built from plain rows,
so a researcher can restyle it and save it as PDF; :func:`svg_text` writes
the byte-stable SVG the report embeds (fixed ``svg.hashsalt``, no date, text
kept as text).
"""

from __future__ import annotations

import math
from typing import Any

from ..render._mpl import STYLE as _STYLE
from ..render._mpl import mpl as _plt
from ..render._mpl import svg_text
from ._tables import MEASURES, aggregate, frontier

_LINES = {"ticket": "-", "reinit": "--", "random-mask": ":"}


def _colours(schedules: list[str]) -> dict[str, Any]:
    matplotlib, _ = _plt()
    cmap = matplotlib.colormaps["tab10"]
    return {s: cmap(i % 10) for i, s in enumerate(schedules)}


__all__ = ["accuracy_density_figure", "measure_figure", "per_class_figure", "svg_text"]


def accuracy_density_figure(rows: list[dict[str, Any]], schedules: list[str], score_label: str = "test accuracy"):
    """The score (``score_label``: test accuracy, or an RL agent's evaluation return) against density (log),
    ticket / reinit / random-mask, mean +- sd over seeds."""
    matplotlib, Figure = _plt()
    agg = aggregate(rows)
    datasets = sorted({r["dataset"] for r in rows})
    colours = _colours(schedules)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.4 * len(datasets), 4.2))
        for k, ds in enumerate(datasets):
            ax = fig.add_subplot(1, len(datasets), k + 1)
            for s in schedules:
                for variant, ls in _LINES.items():
                    pts = sorted((a for a in agg if a["dataset"] == ds and a["schedule"] == s and a["variant"] == variant),
                                 key=lambda a: a["round"])
                    if variant != "ticket":  # controls start from the same dense round 0
                        pts = [a for a in agg if a["dataset"] == ds and a["schedule"] == s and a["variant"] == "ticket"
                               and a["round"] == 0] + pts
                    if not pts:
                        continue
                    x = [100 * a["density_mean"] for a in pts]
                    y = [a["score_mean"] for a in pts]
                    sd = [a["score_std"] for a in pts]
                    ax.plot(x, y, ls, color=colours[s], marker="o" if variant == "ticket" else None, markersize=3,
                            label=f"{s} {variant}")
                    ax.fill_between(x, [a - b for a, b in zip(y, sd)], [a + b for a, b in zip(y, sd)],
                                    color=colours[s], alpha=0.12, linewidth=0)
            ax.set_xscale("log")
            ax.invert_xaxis()
            ax.set_xlabel("weights left (%)")
            ax.set_ylabel(score_label)
            ax.set_title(f"{ds}: {score_label} vs density (mean \u00b1 sd over seeds)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
    return fig


def measure_figure(rows: list[dict[str, Any]], schedules: list[str], floor: float | None = None,
                   score_label: str = "test accuracy"):
    """The score (``score_label``) against each readability measure (ticket rounds, mean +- sd over seeds), frontier marked.

    The frontier (black step line, circled points) joins the (schedule, round)
    points that no other point beats on both axes, across all schedules.
    """
    matplotlib, Figure = _plt()
    agg = [a for a in aggregate(rows) if a["variant"] == "ticket"]
    datasets = sorted({r["dataset"] for r in rows})
    colours = _colours(schedules)
    cols = 3
    nrow = math.ceil(len(MEASURES) / cols)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(4.2 * cols, 3.3 * nrow * len(datasets)))
        n = 0
        for ds in datasets:
            mine = [a for a in agg if a["dataset"] == ds]
            for key, label in MEASURES:
                n += 1
                ax = fig.add_subplot(nrow * len(datasets), cols, n)
                for s in schedules:
                    pts = [a for a in mine if a["schedule"] == s]
                    ax.errorbar([a[f"{key}_mean"] for a in pts], [a["score_mean"] for a in pts],
                                xerr=[a[f"{key}_std"] for a in pts], yerr=[a["score_std"] for a in pts],
                                fmt="o", markersize=3, color=colours[s], elinewidth=0.6, label=s)
                pts = [(a[f"{key}_mean"], a["score_mean"]) for a in mine]
                front = frontier(pts)
                if front:
                    fx = [pts[i][0] for i in front]
                    fy = [pts[i][1] for i in front]
                    ax.step(fx, fy, where="post", color="black", linewidth=0.8)
                    ax.plot(fx, fy, "o", markersize=7, markerfacecolor="none", markeredgecolor="black",
                            label="frontier")
                if floor is not None:
                    ax.axhline(floor, color="grey", linewidth=0.6, linestyle="--")
                xs = [p[0] for p in pts if p[0] == p[0]]
                if xs and min(xs) > 0 and max(xs) > 10 * min(xs):  # log only where the range spans decades
                    ax.set_xscale("log")
                ax.set_xlabel(label)
                ax.set_ylabel(score_label)
                ax.set_title(ds, fontsize=8)
                ax.grid(True, alpha=0.3)
                if n == 1:
                    ax.legend(fontsize=7)
        fig.tight_layout()
    return fig


def per_class_figure(classes: list[dict[str, Any]], chosen: dict[tuple[str, str, int], int], schedules: list[str]):
    """Per-class readability at each schedule's chosen rounds: edges and inputs used per output.

    ``chosen[(dataset, schedule, seed)] = round`` (the finding's choice per seed);
    bars are the mean over seeds, whiskers the sd.
    """
    matplotlib, Figure = _plt()
    colours = _colours(schedules)
    datasets = sorted({d for d, _, _ in chosen} | {c["dataset"] for c in classes}) or ["(no data)"]
    panels = (("edges", "edges in the output's subgraph"), ("inputs_used", "inputs used"),
              ("switching", "switching units"))
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(12, 3.2 * len(datasets)))
        for k, ds in enumerate(datasets):
            for p, (key, label) in enumerate(panels):
                ax = fig.add_subplot(len(datasets), len(panels), k * len(panels) + p + 1)
                width = 0.8 / max(len(schedules), 1)
                labels: list[str] = []
                for j, s in enumerate(schedules):
                    sel = [c for c in classes if c["dataset"] == ds and c["schedule"] == s and c["variant"] == "ticket"
                           and chosen.get((ds, s, c["seed"])) == c["round"]]
                    outs = sorted({c["output"] for c in sel}, key=lambda o: int(o.split(".")[-1]) if o.split(".")[-1].isdigit() else o)
                    if not outs:
                        continue
                    labels = [next(c["label"] or c["output"] for c in sel if c["output"] == o) for o in outs]
                    from ._tables import mean_std

                    stats = [mean_std(c[key] for c in sel if c["output"] == o) for o in outs]
                    xs = [i + (j - (len(schedules) - 1) / 2) * width for i in range(len(outs))]
                    ax.bar(xs, [m for m, _, _ in stats], width, yerr=[sd for _, sd, _ in stats], color=colours[s],
                           label=s, error_kw={"elinewidth": 0.6})
                ax.set_xticks(range(len(labels)))
                ax.set_xticklabels([str(x)[:10] for x in labels], fontsize=7)
                ax.set_ylabel(label)
                ax.set_title(f"{ds}: {label} per class", fontsize=8)
                if not labels:
                    ax.text(0.5, 0.5, "no round reaches the floor", ha="center", va="center",
                            transform=ax.transAxes, fontsize=8, color="#666666")
                elif p == 0:
                    ax.legend(fontsize=7)
        fig.tight_layout()
    return fig
