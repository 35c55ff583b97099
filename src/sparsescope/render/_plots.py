"""Plots over the rounds of a lottery-ticket run: accuracy against density, weights per round.

A minimal line-plot helper (axes, linear or log ticks, grid, series,
legend) drawing into a :class:`Scene`; input is plain round dicts.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import _colour as C
from ._scene import Scene

W, H = 680.0, 420.0
LEFT, RIGHT, TOP, BOTTOM = 74.0, 120.0, 56.0, 58.0


def _nice_linear(lo: float, hi: float, n: int = 6) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step - 1e-9) * step
    out, v = [], start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _log_ticks(lo: float, hi: float) -> list[float]:
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1,) if b - a > 3 else (1, 2, 5)
    ticks = [m * 10.0**e for e in range(a, b + 1) for m in mults]
    return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]


class _Axes:
    """Maps data to scene coordinates for one plot panel; ``log`` axes take values > 0."""

    def __init__(self, scene: Scene, xr: tuple[float, float], yr: tuple[float, float], *, xlog: bool = False,
                 ylog: bool = False, xreverse: bool = False) -> None:
        self.s, self.xr, self.yr, self.xlog, self.ylog, self.xrev = scene, xr, yr, xlog, ylog, xreverse
        self.x0, self.x1, self.y0, self.y1 = LEFT, W - RIGHT, H - BOTTOM, TOP

    def _t(self, v: float, r: tuple[float, float], log: bool) -> float:
        if log:
            v = max(v, r[0])
            return (math.log10(v) - math.log10(r[0])) / (math.log10(r[1]) - math.log10(r[0]))
        return (v - r[0]) / (r[1] - r[0])

    def px(self, v: float) -> float:
        t = self._t(v, self.xr, self.xlog)
        return self.x0 + (1 - t if self.xrev else t) * (self.x1 - self.x0)

    def py(self, v: float) -> float:
        return self.y0 + self._t(v, self.yr, self.ylog) * (self.y1 - self.y0)

    def frame(self, xticks: list[float], yticks: list[float], xfmt: Callable[[float], str],
              yfmt: Callable[[float], str], xlabel: str, ylabel: str) -> None:
        s = self.s
        s.rect(self.x0, self.y1, self.x1 - self.x0, self.y0 - self.y1, fill="#fbfbfa", stroke="#bbbbbb")
        for t in xticks:
            x = self.px(t)
            s.line(x, self.y1, x, self.y0, stroke="#e4e4e4", width=1)
            s.line(x, self.y0, x, self.y0 + 4, stroke="#888888", width=1)
            s.text(x, self.y0 + 14, xfmt(t), size=10, fill=C.MUTED, anchor="middle", cls="tick")
        for t in yticks:
            y = self.py(t)
            s.line(self.x0, y, self.x1, y, stroke="#e4e4e4", width=1)
            s.line(self.x0 - 4, y, self.x0, y, stroke="#888888", width=1)
            s.text(self.x0 - 7, y, yfmt(t), size=10, fill=C.MUTED, anchor="end", cls="tick")
        s.text((self.x0 + self.x1) / 2, self.y0 + 36, xlabel, size=11, fill=C.INK, anchor="middle")
        s.text(18, (self.y0 + self.y1) / 2, ylabel, size=11, fill=C.INK, anchor="middle", rotate=True)


def _pct(v: float) -> str:
    p = 100 * v
    return f"{p:.3g}%" if p < 1 else f"{p:.0f}%" if p >= 10 else f"{p:.2g}%"


def _count(v: float) -> str:
    if v >= 1000:
        k = v / 1000
        return f"{k:.0f}k" if k >= 10 or k == int(k) else f"{k:.1f}k"
    return f"{v:.0f}"


def _empty(title: str) -> Scene:
    s = Scene(W, H)
    s.text(LEFT, 24, title, size=15, bold=True, cls="title")
    s.text(W / 2, H / 2, "no rounds recorded", size=12, fill=C.MUTED, anchor="middle")
    return s


def _check(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rounds:
        for key in ("round", "density", "weights_left"):
            if key not in r:
                raise ValueError(f"round record {r.get('round', '?')} has no {key!r}")
        if "test_accuracy" not in r and "eval_return" not in r:
            raise ValueError(f"round record {r.get('round', '?')} has no 'test_accuracy' (or RL 'eval_return')")
    return sorted(rounds, key=lambda r: int(r["round"]))


def accuracy_figure(rounds: list[dict[str, Any]]) -> Scene:
    """Test accuracy (%) against density (fraction of weights left), log x, densest on the left."""
    rl = bool(rounds) and "eval_return" in rounds[0]
    if rl:  # an RL run: the greedy agent's mean return (solved rounds reach the maximum)
        return _return_figure(_check(rounds))
    title = "Test accuracy against density"
    rounds = _check(rounds)
    if not rounds:
        return _empty(title)
    d = np.array([max(float(r["density"]), 1e-6) for r in rounds])
    acc = np.array([100 * float(r["test_accuracy"]) for r in rounds])
    s = Scene(W, H)
    s.text(LEFT, 22, title, size=15, bold=True, cls="title")
    s.text(LEFT, 40, "each point is one pruning round (r0 = dense); x is log scale, pruning goes left to right",
           size=10, fill=C.MUTED)
    dlo, dhi = float(d.min()) / 1.25, min(float(d.max()) * 1.25, 1.25)
    lo, hi = float(acc.min()), float(acc.max())
    span = max(hi - lo, 2.0)
    ylo, yhi = max(0.0, lo - 0.15 * span), min(100.0, hi + 0.15 * span)
    ax = _Axes(s, (dlo, dhi), (ylo, yhi), xlog=True, xreverse=True)
    ax.frame(_log_ticks(dlo, dhi), _nice_linear(ylo, yhi), _pct, lambda v: f"{v:g}", "weights remaining (density)",
             "test accuracy (%)")
    pts = [(ax.px(a), ax.py(b)) for a, b in zip(d, acc)]
    s.polyline(pts, stroke=C.SERIES[0], width=2, cls="series accuracy")
    for (x, y), r, a in zip(pts, rounds, acc):
        s.circle(x, y, 3.5, fill=C.SERIES[0], stroke="#ffffff", cls="point",
                 data={"round": int(r["round"]), "accuracy": f"{a:.2f}"}, title=f"round {int(r['round'])}: {a:.2f}%")
        s.text(x, y - 11, f"r{int(r['round'])}", size=9, fill=C.MUTED, anchor="middle")
    best = int(np.argmax(acc))
    s.text(W - RIGHT + 10, TOP + 8, f"best {acc[best]:.2f}%", size=10, fill=C.INK)
    s.text(W - RIGHT + 10, TOP + 22, f"at {_pct(d[best])} (r{int(rounds[best]['round'])})", size=10, fill=C.MUTED)
    s.text(W - RIGHT + 10, TOP + 42, f"last {acc[-1]:.2f}%", size=10, fill=C.INK)
    s.text(W - RIGHT + 10, TOP + 56, f"at {_pct(d[-1])}", size=10, fill=C.MUTED)
    return s


def _return_figure(rounds: list[dict[str, Any]]) -> Scene:
    """An RL run's greedy mean return against density; unsolved rounds drawn hollow and named."""
    title = "Greedy return against density"
    d = np.array([max(float(r["density"]), 1e-6) for r in rounds])
    ret = np.array([float(r["eval_return"]) for r in rounds])
    s = Scene(W, H)
    s.text(LEFT, 22, title, size=15, bold=True, cls="title")
    s.text(LEFT, 40, "mean return of the greedy agent over the fixed evaluation episodes, one point per round "
           "(filled: solved); x log scale", size=10, fill=C.MUTED)
    dlo, dhi = float(d.min()) / 1.25, min(float(d.max()) * 1.25, 1.25)
    yhi = max(float(ret.max()), 1.0) * 1.1
    ax = _Axes(s, (dlo, dhi), (0.0, yhi), xlog=True, xreverse=True)
    ax.frame(_log_ticks(dlo, dhi), _nice_linear(0.0, yhi), _pct, lambda v: f"{v:g}", "weights remaining (density)",
             "greedy mean return")
    pts = [(ax.px(a), ax.py(b)) for a, b in zip(d, ret)]
    s.polyline(pts, stroke=C.SERIES[0], width=2, cls="series return")
    for (x, y), r, v in zip(pts, rounds, ret):
        ok = bool(r.get("solved"))
        s.circle(x, y, 3.5, fill=C.SERIES[0] if ok else "#ffffff", stroke=C.SERIES[0], cls="point",
                 data={"round": int(r["round"]), "return": f"{v:.1f}"},
                 title=f"round {int(r['round'])}: {v:.1f}" + ("" if ok else " (not solved)"))
        s.text(x, y - 11, f"r{int(r['round'])}", size=9, fill=C.MUTED, anchor="middle")
    solved = [int(r["round"]) for r in rounds if r.get("solved")]
    s.text(W - RIGHT + 10, TOP + 8, f"solved {len(solved)} of {len(rounds)}", size=10, fill=C.INK)
    if solved:
        last = max(solved)
        s.text(W - RIGHT + 10, TOP + 22, f"sparsest solved r{last}", size=10, fill=C.MUTED)
        s.text(W - RIGHT + 10, TOP + 36, f"at {_pct(d[[int(r['round']) for r in rounds].index(last)])}", size=10,
               fill=C.MUTED)
    return s


def weights_figure(rounds: list[dict[str, Any]]) -> Scene:
    """Weights left per layer (log y) against round, with the total dashed."""
    title = "Weights left per layer"
    rounds = _check(rounds)
    if not rounds:
        return _empty(title)
    layers = list(rounds[0]["weights_left"].keys())
    for r in rounds[1:]:
        layers += [k for k in r["weights_left"] if k not in layers]
    xs = np.array([int(r["round"]) for r in rounds], dtype=float)
    series = {k: np.array([float(r["weights_left"].get(k, 0)) for r in rounds]) for k in layers}
    series["total"] = np.sum([series[k] for k in layers], axis=0) if layers else np.zeros(len(rounds))
    positive = np.concatenate([v[v > 0] for v in series.values()])
    positive = positive if positive.size else np.array([1.0])
    ylo, yhi = 10 ** math.floor(math.log10(positive.min())), 10 ** math.ceil(math.log10(max(positive.max(), 10)))
    s = Scene(W, H)
    s.text(LEFT, 22, title, size=15, bold=True, cls="title")
    s.text(LEFT, 40, "nonzero weights in each layer after each round (log scale)", size=10, fill=C.MUTED)
    xlo, xhi = float(xs.min()), float(xs.max())
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1
    pad = 0.04 * (xhi - xlo)
    ax = _Axes(s, (xlo - pad, xhi + pad), (ylo, yhi), ylog=True)
    step = max(1, int(math.ceil((xhi - xlo) / 10)))
    xticks = [float(t) for t in range(int(xlo), int(xhi) + 1, step)]
    ax.frame(xticks, _log_ticks(ylo, yhi), lambda v: f"{v:.0f}", _count, "round", "weights left")
    ly = TOP + 8
    for i, (name, ys) in enumerate(series.items()):
        colour = "#444444" if name == "total" else C.SERIES[i % len(C.SERIES)]
        pts = [(ax.px(a), ax.py(b)) for a, b in zip(xs, ys)]
        s.polyline(pts, stroke=colour, width=2, dash=name == "total", cls=f"series weights-{name}")
        for (x, y), v in zip(pts, ys):
            s.circle(x, y, 3 if v > 0 else 2.5, fill=colour if v > 0 else "#ffffff", stroke=colour, cls="point",
                     title=f"{name}: {int(v)}")
        s.line(W - RIGHT + 10, ly, W - RIGHT + 30, ly, stroke=colour, width=2, dash=name == "total")
        label = f"{name}  {_count(ys[-1])}"
        s.text(W - RIGHT + 35, ly, label, size=10, fill=C.INK)
        ly += 16
    total0 = rounds[0].get("weights_total")
    if isinstance(total0, dict) and total0:
        s.text(W - RIGHT + 10, ly + 8, f"of {_count(sum(float(v) for v in total0.values()))} at start", size=9,
               fill=C.MUTED)
    return s


def rounds_figures(rounds: list[dict[str, Any]]) -> dict[str, Scene]:
    """``{"accuracy": ..., "weights": ...}`` figures for a run's round records.

    Each record: ``{"round", "density", "weights_left": {layer: int}, "weights_total": {...},
    "test_accuracy"}`` (accuracy as a fraction in [0, 1]).
    """
    return {"accuracy": accuracy_figure(rounds), "weights": weights_figure(rounds)}
