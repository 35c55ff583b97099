"""What a run folder's JSON files must hold, checked field by field.

A run folder may come from someone else, so the manifest, ``metrics.json``,
``timing.json`` and the folder names are untrusted input: every field that
any command reads is checked here for presence, type and range, and a
failure is one :class:`RunStoreError` naming the file and the field.  Names
that end up in paths (the run id) follow the config-name rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._errors import RunStoreError
from ..train._config import TRAIN_PATHS
from .._untrusted import RUN_ID_MAX, check_name, is_int, is_name, is_number, need, term

RUN_FORMAT = "sparsescope.run"
RUN_VERSION = 1
MAX_ROUNDS = 1000  # round folders are NNN; the config refuses more rounds
MAX_INPUT = 10**8  # values per input: far above any image the models take
ISO_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
SHA_RE = re.compile(r"[0-9a-f]{64}")
ROUND_RE = re.compile(r"\d{3}")
CONTROL_RE = re.compile(r"([a-z][a-z0-9-]*)-r(\d{3})-s(\d{1,19})")
TIMING_KEYS = ("train_seconds", "wall_seconds")
SCORE_KEYS = ("test_accuracy", "eval_return")
TRAIN_PATHS = ("flat", "direct", "autograd")  # as sparsescope.train.TRAIN_PATHS (kept here: reading a run needs no torch)  # a dataset round has the first, an RL round the second


def _err(what: str, ok: bool, detail: str) -> None:
    need(what, ok, RunStoreError, detail)


def check_manifest(m: Any, where: Path) -> None:
    """Check a parsed manifest's fields (its ``config`` table is checked by ``RunStore.spec``,
    where the model is needed: reading the config loads numpy, which ``runs``/``show`` avoid)."""
    what = f"run {term(where)}: manifest.json"
    _err(what, isinstance(m, dict) and m.get("format") == RUN_FORMAT, "is not a sparsescope run manifest")
    _err(what, m.get("version") == RUN_VERSION, f"unsupported run version {term(repr(m.get('version')))[:40]}")
    missing = [k for k in ("run_id", "created", "config", "rounds_planned", "data", "init_sha256") if k not in m]
    _err(what, not missing, f"is missing required fields ({', '.join(missing)}; corrupt)")
    check_name(f"{what}: run_id", m["run_id"], RunStoreError, RUN_ID_MAX)
    _err(what, isinstance(m["created"], str) and ISO_RE.fullmatch(m["created"]) is not None,
         "created must be a UTC time like 2026-01-31T12:00:00Z")
    _err(what, is_int(m["rounds_planned"], 1, MAX_ROUNDS), f"rounds_planned must be an integer in [1, {MAX_ROUNDS}]")
    _err(what, isinstance(m["init_sha256"], str) and SHA_RE.fullmatch(m["init_sha256"]) is not None,
         "init_sha256 must be 64 hex digits")
    d = m["data"]
    _err(what, isinstance(d, dict), "data must be an object")
    _err(what, isinstance(d.get("name"), str) and 0 < len(d["name"]) <= 4096, "data.name must be a non-empty string")
    _err(what, isinstance(d.get("fingerprint"), str) and len(d["fingerprint"]) <= 200, "data.fingerprint must be a string")
    shape = d.get("input_shape")
    ok = isinstance(shape, list) and 1 <= len(shape) <= 4 and all(is_int(s, 1, MAX_INPUT) for s in shape)
    _err(what, ok, "data.input_shape must be a list of 1-4 positive integers")
    size = 1
    for s in shape:
        size *= s
    _err(what, size <= MAX_INPUT, f"data.input_shape {shape} has more than {MAX_INPUT} values")
    classes = d.get("classes")
    ok = isinstance(classes, list) and 1 <= len(classes) <= 100_000 and all(
        isinstance(c, str) and len(c) <= 200 for c in classes)
    _err(what, ok, "data.classes must be a list of 1-100000 strings")
    if d.get("kind") == "env":  # an RL run: the environment's input names and termination limits
        n = size
        ok = isinstance(d.get("inputs"), list) and len(d["inputs"]) == n and all(
            isinstance(x, str) and len(x) <= 200 for x in d["inputs"])
        _err(what, ok, "data.inputs must name every input")
        ok = isinstance(d.get("limits"), list) and len(d["limits"]) == n and all(
            x is None or is_number(x, 0.0) for x in d["limits"])
        _err(what, ok, "data.limits must be a non-negative number or null per input")
    _err(what, isinstance(m["config"], dict) and is_name(m["config"].get("name")), "config must be a table with a name")


def check_metrics(m: Any, timing: Any, what: str, index: int | None) -> dict[str, Any]:
    """Check ``metrics.json`` (and ``timing.json``) of round ``index``; returns them merged.

    ``weights_left``/``weights_total`` must name the same layers (the caller that
    reads the mask checks them against it).  ``index=None`` skips the round-number
    check (a control names its round itself).
    """
    what = f"{what}: metrics.json"
    _err(what, isinstance(m, dict), "is not an object")
    missing = [k for k in ("round", "density", "weights_left", "weights_total", "kept_total", "history") if k not in m]
    _err(what, not missing, f"lacks the round's metrics ({', '.join(missing)})")
    score = [k for k in SCORE_KEYS if k in m]
    _err(what, len(score) == 1, f"must hold exactly one of {', '.join(SCORE_KEYS)}")
    _err(what, is_int(m["round"], 0, MAX_ROUNDS - 1), "round must be an integer in [0, 999]")
    _err(what, index is None or m["round"] == index, f"says round {m['round']} but is stored as round {index}")
    _err(what, is_number(m["density"], 0.0, 1.0), "density must be a number in [0, 1]")
    if "test_accuracy" in m:
        _err(what, is_number(m["test_accuracy"], 0.0, 1.0), "test_accuracy must be a number in [0, 1]")
    else:
        _err(what, is_number(m["eval_return"]), "eval_return must be a finite number")
    layers = sorted(m["weights_total"]) if isinstance(m["weights_total"], dict) else []
    for key in ("weights_left", "weights_total"):
        v = m[key]
        ok = (isinstance(v, dict) and v and sorted(v) == layers and all(is_name(n) for n in v)
              and all(is_int(c, 0) for c in v.values()))
        _err(what, ok, f"{key} must map the same layer names to counts")
    _err(what, all(m["weights_left"][n] <= m["weights_total"][n] for n in layers), "weights_left exceeds weights_total")
    _err(what, m["kept_total"] == sum(m["weights_left"].values()) and is_int(m["kept_total"]),
         "kept_total must be the sum of weights_left")
    _err(what, isinstance(m["history"], list) and all(isinstance(h, dict) for h in m["history"]),
         "history must be a list of objects")
    for key in ("test_loss", "train_accuracy", "train_loss", "eval_return_min", "eval_return_max"):
        _err(what, key not in m or is_number(m[key]), f"{key} must be a finite number")
    _err(what, m.get("train_path", "flat") in TRAIN_PATHS, f"train_path must be one of {', '.join(TRAIN_PATHS)}")
    if "control" in m or "seed" in m:
        _err(what, isinstance(m.get("control"), str) and is_int(m.get("seed"), 0, 2**63 - 1),
             "control and seed must be a kind and a non-negative integer")
    _err(f"{what[:-len('metrics.json')]}timing.json", isinstance(timing, dict) and all(
        is_number(timing.get(k, 0.0), 0.0) for k in TIMING_KEYS), "times must be non-negative numbers")
    return {**m, **{k: float(timing.get(k, 0.0)) for k in TIMING_KEYS}}


def round_indices(names: list[tuple[str, bool]], run: Path, planned: int) -> list[int]:
    """The finished round indices from the entries of ``RUN/rounds`` (``(name, is a real folder)``).

    Hidden entries (temporaries) are skipped.  Anything else must be a folder
    ``NNN``; the indices must be ``0..k-1`` with ``k <= planned``: a round
    beyond the plan, or after a gap, was not written by this run, and every
    command refuses the store rather than show it.
    """
    out = []
    for name, is_dir in names:
        if name.startswith("."):
            continue
        _err(f"run {term(run)}", is_dir and ROUND_RE.fullmatch(name) is not None,
             f"rounds/{term(name)} is not a round folder (NNN); the store is invalid")
        out.append(int(name))
    out.sort()
    for i, r in enumerate(out):
        _err(f"run {term(run)}", r < planned, f"rounds/{r:03d} is beyond the {planned} planned rounds "
             f"(0-{planned - 1}); the store is invalid")
        _err(f"run {term(run)}", r == i, f"rounds/{r:03d} follows a gap (round {i} is missing); the store is invalid")
    return out


def control_name(name: str, is_dir: bool, run: Path) -> tuple[str, int, int]:
    """``(kind, round, seed)`` of a folder name ``KIND-rNNN-sSEED`` under ``RUN/controls``."""
    m = CONTROL_RE.fullmatch(name)
    ok = is_dir and m is not None and is_int(int(m.group(3)), 0, 2**63 - 1)
    _err(f"run {term(run)}", ok, f"controls/{term(name)} is not a control folder (KIND-rNNN-sSEED); the store is invalid")
    return m.group(1), int(m.group(2)), int(m.group(3))  # type: ignore[union-attr]
