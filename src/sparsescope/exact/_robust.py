"""Exact local robustness in an L-infinity ball (the question MIPVerify answers for MNIST).

An input ``x0`` of class ``y`` is robust at radius ``eps`` when no input of the
ball (clipped to [0, 1]) makes another class score at least as high:
``min over the ball of (out_y - out_k) > 0`` for every ``k != y``.  Per class
``k``, cheapest first: one interval step proves it; or the greedy point of the
margin is a counterexample; or a mixed-integer program decides (its witness is a
counterexample when the margin there is negative; its dual bound, padded for the
solver's tolerances, proves robustness when positive).  Counterexamples are
checked by evaluating them.  All in exact arithmetic; a margin within the
padding of 0 is reported ``unknown``, as is a program that hits the time cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..bounds import interval_bounds
from ..graph import Flowgraph, evaluate
from ._milp import Known, solve
from ._parallel import run_tasks
from ._ranges import _post_range, greedy_points

VERDICTS = ("robust", "not robust", "misclassified", "unknown")


@dataclass(frozen=True, eq=False)
class Robustness:
    """The verdict for one input at one radius.

    ``counterexample``: a verified input of the ball (flat) that another class
    wins (``adversarial_class``), or None; ``margin_bound``: a proven lower bound
    on the margin over the ball when robust; ``radius``: the largest radius
    proven robust by bisection (only when asked for); ``solves``: programs solved.
    """

    image: int | None
    label: int
    eps: float
    verdict: str
    counterexample: np.ndarray | None = None
    adversarial_class: int | None = None
    margin_bound: float | None = None
    radius: float | None = None
    solves: int = 0
    seconds: float = 0.0
    undecided: tuple[int, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        s = f"robustness of test image {self.image} (label {self.label}) at eps {self.eps:g}: {self.verdict}"
        if self.counterexample is not None:
            s += f"; counterexample classified {self.adversarial_class}"
        if self.radius is not None:
            s += f"; certified radius {self.radius:.4g}"
        return s

    def to_dict(self, graph: Flowgraph) -> dict[str, Any]:
        d: dict[str, Any] = {"image": self.image, "label": self.label, "eps": self.eps, "verdict": self.verdict,
                             "margin_bound": self.margin_bound, "radius": self.radius, "solves": self.solves}
        if self.counterexample is not None:
            d["adversarial_class"] = self.adversarial_class
            d["counterexample"] = [float(v) for v in self.counterexample]
        return d


def robust_at(graph: Flowgraph, x0: np.ndarray, label: int, eps: float, *, time_limit: float = 10.0,
              image: int | None = None) -> Robustness:
    """Decide robustness of ``x0`` (flat, in [0, 1]) with class ``label`` at radius ``eps``."""
    start = time.perf_counter()
    out = graph.output
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    clean = evaluate(graph, x0[None]).pre[out.name][0]
    if int(np.argmax(clean)) != label or np.sum(clean >= clean[label]) > 1:
        k = int(np.argmax(np.where(np.arange(out.size) == label, -np.inf, clean)))
        return Robustness(image, label, eps, "misclassified", x0.copy(), k, seconds=time.perf_counter() - start)
    lo, hi = np.clip(x0 - eps, 0.0, 1.0), np.clip(x0 + eps, 0.0, 1.0)
    iv = interval_bounds(graph, lo, hi, eval_dtype=np.float64)  # sound in exact arithmetic
    name0 = graph.input.name
    known = Known({name0: lo, **{L.name: iv.pre_lo[L.name] for L in graph.layers[1:]}},
                  {name0: hi, **{L.name: iv.pre_hi[L.name] for L in graph.layers[1:]}},
                  {name0: np.where(lo == hi, lo, np.nan)})
    for L in graph.layers[1:]:
        known.const[L.name] = np.full(L.size, np.nan)
    src = graph.layer(out.source)
    s_lo, s_hi = _post_range(src, known)
    w = out.dense_weight(src.size)
    others = [k for k in np.argsort(clean[label] - clean) if k != label]  # closest class first
    solves = 0
    undecided: list[int] = []
    bound = np.inf
    for k in others:
        coef = w[label] - w[k]
        m1 = out.bias[label] - out.bias[k] + float(np.sum(np.minimum(coef * s_lo, coef * s_hi)))
        mag = abs(out.bias[label]) + abs(out.bias[k]) + float(np.abs(coef) @ np.maximum(np.abs(s_lo), np.abs(s_hi)))
        pad1 = 1e-9 * (1 + mag)
        if m1 - pad1 > 0:
            bound = min(bound, m1 - pad1)
            continue
        obj = np.zeros(out.size)
        obj[label], obj[k] = 1.0, -1.0
        cand = greedy_points(graph, known, lo, hi, out.name, -obj[None])
        hit = _counterexample(graph, cand, label)
        if hit is not None:
            return Robustness(image, label, eps, "not robust", hit[0], hit[1], solves=solves,
                              seconds=time.perf_counter() - start)
        (sv,) = solve(graph, known, lo, hi, {out.name: obj}, senses=("min",), time_limit=time_limit)
        solves += 1
        if sv.x is not None:
            hit = _counterexample(graph, sv.x[None], label)
            if hit is not None:
                return Robustness(image, label, eps, "not robust", hit[0], hit[1], solves=solves,
                                  seconds=time.perf_counter() - start)
        if np.isfinite(sv.dual) and sv.dual - sv.pad > 0:
            bound = min(bound, sv.dual - sv.pad)
        else:
            undecided.append(int(k))
    verdict = "unknown" if undecided else "robust"
    return Robustness(image, label, eps, verdict, margin_bound=None if undecided else float(bound), solves=solves,
                      seconds=time.perf_counter() - start, undecided=tuple(undecided))


def _counterexample(graph: Flowgraph, xs: np.ndarray, label: int) -> tuple[np.ndarray, int] | None:
    """The first row of ``xs`` where another class scores at least as high as ``label``, checked by evaluation."""
    z = evaluate(graph, xs).pre[graph.output.name]
    for x, row in zip(xs, z):
        rival = np.where(np.arange(row.size) == label, -np.inf, row)
        k = int(np.argmax(rival))
        if row[k] >= row[label]:
            return x.copy(), k
    return None


def certify(graph: Flowgraph, x0: np.ndarray, label: int, eps: float, *, time_limit: float = 10.0,
            image: int | None = None, steps: int = 8) -> Robustness:
    """:func:`robust_at` at ``eps``, plus the certified radius: ``eps`` itself when robust,
    else the largest radius proven robust by ``steps`` bisection steps in ``[0, eps]``."""
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    res = robust_at(graph, x0, label, eps, time_limit=time_limit, image=image)
    solves = res.solves
    if res.verdict == "robust":
        radius = eps
    elif res.verdict == "misclassified":
        radius = None
    else:
        good, bad = 0.0, eps
        for _ in range(steps):
            mid = (good + bad) / 2
            r = robust_at(graph, x0, label, mid, time_limit=time_limit, image=image)
            solves += r.solves
            if r.verdict == "robust":
                good = mid
            else:
                bad = mid
        radius = good
    from dataclasses import replace

    return replace(res, radius=radius, solves=solves)


@dataclass(frozen=True, eq=False)
class AdversarialAccuracy:
    """Exact adversarial accuracy over test images at one radius.

    ``verdicts``: one per image; ``accuracy``: robust / images; ``clean``:
    correctly classified / images; ``unknown``: images left undecided;
    ``results``: the full :class:`Robustness` of each image (counterexamples,
    margin bounds), in the order given; ``time_limit``: seconds per program.
    """

    eps: float
    verdicts: tuple[str, ...]
    seconds: float
    solves: int
    results: tuple[Robustness, ...] = field(default_factory=tuple)
    time_limit: float = 0.0

    def counts(self) -> dict[str, int]:
        """Images per verdict, every verdict listed (in :data:`VERDICTS` order)."""
        return {v: self.verdicts.count(v) for v in VERDICTS}

    def summary(self) -> str:
        n = len(self.verdicts)
        c = self.counts()
        return (f"exact adversarial accuracy at eps {self.eps:g} over {n} test images: {self.accuracy * 100:.1f}% "
                f"(robust {c['robust']}, not robust {c['not robust']}, misclassified {c['misclassified']}, "
                f"unknown {c['unknown']}); clean accuracy {self.clean * 100:.1f}%; "
                f"{self.solves} programs, {self.seconds:.1f} s, cap {self.time_limit:g} s per program")

    def to_dict(self, graph: Flowgraph) -> dict[str, Any]:
        """Counts and per image the verdict with its evidence (:meth:`Robustness.to_dict`)."""
        return {"eps": self.eps, "images": len(self.verdicts), "accuracy": self.accuracy, "clean": self.clean,
                "counts": self.counts(), "solves": self.solves, "time_limit": self.time_limit, "results": [r.to_dict(graph) for r in self.results]}

    @property
    def accuracy(self) -> float:
        return self.verdicts.count("robust") / max(1, len(self.verdicts))

    @property
    def clean(self) -> float:
        return 1 - self.verdicts.count("misclassified") / max(1, len(self.verdicts))

    @property
    def unknown(self) -> int:
        return self.verdicts.count("unknown")


def adversarial_accuracy(graph: Flowgraph, x: np.ndarray, y: np.ndarray, eps: float, *, time_limit: float = 10.0,
                         progress: Callable[[int, int], None] | None = None, images: Sequence[int] | None = None,
                         workers: int = 2) -> AdversarialAccuracy:
    """Exact robustness of every test image ``x`` ``(N, *input_shape)`` with labels ``y`` at ``eps``.

    ``images``: the test-set index of each row (recorded in the results;
    default ``0..N-1``).  ``workers``: processes deciding images at once
    (:mod:`._parallel`); the verdicts do not depend on it.
    """
    start = time.perf_counter()
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    ids = list(range(len(flat))) if images is None else [int(i) for i in images]
    if len(ids) != len(flat) or len(y) != len(flat):
        raise ValueError(f"{len(flat)} images, {len(y)} labels and {len(ids)} indices")
    tasks = [(ids[i], flat[i], int(y[i])) for i in range(len(flat))]
    report = (lambda c: progress(c, len(tasks))) if progress else None
    results = run_tasks(_decide, (graph, float(eps), float(time_limit)), tasks, workers=workers, done=report)
    return AdversarialAccuracy(float(eps), tuple(r.verdict for r in results), time.perf_counter() - start,
                               sum(r.solves for r in results), tuple(results), float(time_limit))


def _decide(shared: tuple, task: tuple) -> Robustness:
    graph, eps, time_limit = shared
    image, x0, label = task
    return robust_at(graph, x0, label, eps, time_limit=time_limit, image=image)
