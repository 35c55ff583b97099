"""The hostile-file corpus: every file a user may be sent, made hostile, gives one line and exit 2.

The corpus is generated here (nothing binary is committed): configs, run
folders (manifest, DONE, metrics.json, timing.json, safetensors, round and
control folders, the lock file) and IDX data.  Every case runs the commands
that read what it breaks, in-process, from a working folder, and counts:

* ``tracebacks``: an exception escaping ``cli.main`` (or a second line on stderr);
* ``wrong_exit``: an exit code other than 2 (0 for the terminal cases);
* ``outside``: files or folders that appeared outside the working folder;
* ``temporaries``: ``.*.tmp`` left behind;
* ``control_chars``: control characters that reached the terminal.

Every count must be 0; the counts are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import traceback
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from conftest import TINY_CONFIG, make_tiny_run
from sparsescope import cli

RUN_CONFIG = TINY_CONFIG.format(name="hostile", rounds=3)  # also the IDX cases' config (test_hostile_inputs.py)
_CTRL_ERR = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CTRL_OUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
COUNTS: dict[str, dict[str, int]] = {}


class Tally:
    """Counts per corpus class; ``failures`` says which case and command broke which rule."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.c = dict(cases=0, commands=0, tracebacks=0, wrong_exit=0, outside=0, temporaries=0, control_chars=0,
                      user_files_deleted=0)
        self.failures: list[str] = []

    def bad(self, key: str, case: str, detail: str, n: int = 1) -> None:
        if n:
            self.c[key] += n
            self.failures.append(f"{case}: {key}: {detail}")

    def done(self) -> None:
        COUNTS[self.name] = self.c
        print(f"\nhostile corpus {self.name}: {self.c}")
        assert not self.failures, "\n".join(self.failures[:30])


def call(argv: list[str], capsys) -> tuple[int | None, str, str, str | None]:
    """Run ``sparsescope argv`` in-process: ``(exit code, stdout, stderr, traceback or None)``."""
    tb = None
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - exactly what the corpus looks for
        code, tb = None, traceback.format_exc()
    out, err = capsys.readouterr()
    return code, out, err, tb


def check_call(t: Tally, case: str, argv: list, capsys, expect: int = 2, needle: str | None = None) -> str:
    code, out, err, tb = call(argv, capsys)
    t.c["commands"] += 1
    what = f"{argv[0]} -> {code}: {err.strip()[:300]}"
    if tb:
        t.bad("tracebacks", case, tb[-600:])
        return err
    lines = [line for line in err.splitlines() if line.strip()]
    if expect == 2:
        if len(lines) != 1 or not lines[0].startswith("sparsescope: error:"):
            t.bad("tracebacks", case, f"not one error line: {what}")
        elif needle and needle not in lines[0]:
            t.bad("wrong_exit", case, f"expected {needle!r}: {what}")
    if code != expect:
        t.bad("wrong_exit", case, what)
    t.bad("control_chars", case, what, int(bool(_CTRL_ERR.search(err)) or bool(_CTRL_OUT.search(out))))
    return out


def snapshot(root: Path, skip: Path) -> set[Path]:
    out = set()
    for here, dirs, files in os.walk(root):
        if Path(here) == skip:
            dirs[:] = []
            continue
        out.update(Path(here) / n for n in dirs + files)
    return out


def temporaries(root: Path) -> list[Path]:
    return [p for p in snapshot(root, root / "-none-") if p.name.startswith(".") and p.name.endswith(".tmp")]


# -- the base run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory, slice_loaded):
    """A finished 3-round run with a reinit control of round 1 (on the mnist slice)."""
    cfg, run = make_tiny_run(tmp_path_factory.mktemp("hostile"), "hostile", 3)
    assert (run / "controls").is_dir()
    return cfg, run


def _json(p: Path):
    return json.loads(p.read_bytes())


def _write_json(p: Path, obj) -> None:
    p.write_text(json.dumps(obj))


def set_manifest(**changes):
    """A case that sets manifest fields (dotted keys; None deletes)."""

    def apply(run: Path, case: Path) -> None:
        m = _json(run / "manifest.json")
        for key, value in changes.items():
            *parents, last = key.split("__")
            d = m
            for k in parents:
                d = d[k]
            if value is None:
                d.pop(last, None)
            else:
                d[last] = value(case) if callable(value) else value
        _write_json(run / "manifest.json", m)

    return apply


def raw_file(rel: str, data: bytes | None = None, kind: str = "file", fix_done: bool = False):
    """A case that replaces ``RUN/rel`` with bytes, a folder, a FIFO or a link to /dev/zero."""

    def apply(run: Path, case: Path) -> None:
        p = run / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        if kind == "file":
            p.write_bytes(data)
            if fix_done:
                _fix_done(p)
        elif kind == "dir":
            p.mkdir()
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "devzero":
            p.symlink_to("/dev/zero")
        elif kind == "missing":
            pass

    return apply


def _fix_done(p: Path) -> None:
    """Update the round's DONE marker so the planted file passes its checksum (a hostile sender would)."""
    import hashlib

    done = p.parent / "DONE"
    d = _json(done)
    d["files"][p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    _write_json(done, d)


def metrics(round_: int = 2, file: str = "metrics.json", **changes):
    """A case that changes fields of a round's metrics.json (or timing.json) and fixes DONE."""

    def apply(run: Path, case: Path) -> None:
        p = run / "rounds" / f"{round_:03d}" / file
        m = _json(p)
        for k, v in changes.items():
            if v is None:
                m.pop(k, None)
            else:
                m[k] = v
        text = json.dumps(m).replace('"__NaN__"', "NaN")
        p.write_text(text)
        _fix_done(p)

    return apply


def tensors(file: str = "weights.safetensors", round_: int | None = 2, change=None, data: bytes | None = None):
    """A case that rewrites a safetensors file through ``change(dict) -> dict`` (or raw bytes), fixing
    DONE (rounds) or the manifest's init_sha256 (init)."""

    def apply(run: Path, case: Path) -> None:
        import hashlib

        p = run / file if round_ is None else run / "rounds" / f"{round_:03d}" / file
        new = data if data is not None else st_save(change(dict(st_load(p.read_bytes()))))
        p.write_bytes(new)
        if round_ is None:
            m = _json(run / "manifest.json")
            m["init_sha256"] = hashlib.sha256(new).hexdigest()
            _write_json(run / "manifest.json", m)
        else:
            _fix_done(p)

    return apply


def _retype(dtype, key="h1.weight"):
    return lambda t: {**t, key: t[key].to(dtype)}


def _huge_header() -> bytes:
    header = json.dumps({"h1.weight": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}})
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * 64


def rounds_change(fn):
    def apply(run: Path, case: Path) -> None:
        fn(run / "rounds", run)

    return apply


def _copy_round(src: str, dst: str):
    return rounds_change(lambda r, run: shutil.copytree(r / src, r / dst))


def _gap(r: Path, run: Path) -> None:
    shutil.rmtree(r / "001")


def _round_twice(r: Path, run: Path) -> None:
    shutil.rmtree(r / "002")
    shutil.copytree(r / "001", r / "002")


def _symlinked_round(r: Path, run: Path) -> None:
    shutil.rmtree(r / "002")
    (r / "002").symlink_to(r / "001")


def _control(fn):
    def apply(run: Path, case: Path) -> None:
        c = run / "controls"
        (src,) = [p for p in c.iterdir() if not p.name.startswith(".")]
        fn(c, src)

    return apply


ALL = ["show", "graph-json", "graph-svg", "view", "report", "control", "run"]
READS_TENSORS = ["graph-json", "graph-svg", "view", "report", "control"]
READS_CONFIG = [c for c in ALL if c != "show"]  # show needs no model (and loads no numpy)
DEEP = b"[" * 100_000 + b"]" * 100_000
CASES = {
    # manifest: names that would build paths, terminal text, missing/mistyped fields, hostile JSON
    "run_id climbs out": (set_manifest(run_id="../../outside/x"), ALL),
    "run_id absolute": (set_manifest(run_id=lambda case: str(case / "abs" / "x")), ALL),
    "run_id escape sequence": (set_manifest(run_id="a\x1b[2Jb"), ALL),
    "run_id newline": (set_manifest(run_id="a\nrun forged\tline"), ALL),
    "run_id number": (set_manifest(run_id=5), ALL),
    "run_id missing": (set_manifest(run_id=None), ALL),
    "created missing": (set_manifest(created=None), ALL),
    "created number": (set_manifest(created=5), ALL),
    "created escape": (set_manifest(created="\x1b]0;pwned\x07"), ALL),
    "data.name missing": (set_manifest(data__name=None), ALL),
    "data.name number": (set_manifest(data__name=7), ALL),
    "input_shape missing": (set_manifest(data__input_shape=None), ALL),
    "input_shape string": (set_manifest(data__input_shape="28x28"), ALL),
    "input_shape negative": (set_manifest(data__input_shape=[28, -28]), ALL),
    "input_shape float": (set_manifest(data__input_shape=[28, 28.0]), ALL),
    "input_shape huge": (set_manifest(data__input_shape=[2**40, 2**40]), ALL),
    "input_shape wrong": (set_manifest(data__input_shape=[27, 28]), READS_TENSORS),
    "classes numbers": (set_manifest(data__classes=list(range(10))), ALL),
    "classes string": (set_manifest(data__classes="0123456789"), ALL),
    "rounds_planned string": (set_manifest(rounds_planned="3"), ALL),
    "rounds_planned negative": (set_manifest(rounds_planned=-1), ALL),
    "rounds_planned bool": (set_manifest(rounds_planned=True), ALL),
    "rounds_planned huge": (set_manifest(rounds_planned=10**30), ALL),
    "config missing": (set_manifest(config=None), ALL),
    "config list": (set_manifest(config=[]), ALL),
    "config sizes string": (set_manifest(config__model__sizes="abc"), READS_CONFIG),
    "config lr string": (set_manifest(config__train__lr="fast"), READS_CONFIG),
    "config name climbs": (set_manifest(config__name="../x"), ALL),
    "model too big for memory": (set_manifest(config__model__sizes=[784, 100000, 100000, 100000, 10]), READS_CONFIG),
    "format wrong": (set_manifest(format="other"), ALL),
    "version 99": (set_manifest(version=99), ALL),
    "init_sha256 number": (set_manifest(init_sha256=5), ALL),
    "manifest deep nesting": (raw_file("manifest.json", DEEP), ALL),
    "manifest NaN": (raw_file("manifest.json", b'{"format": NaN}'), ALL),
    "manifest huge int": (raw_file("manifest.json", b'{"version": ' + b"9" * 5000 + b"}"), ALL),
    "manifest not UTF-8": (raw_file("manifest.json", b'{"format": "\xff\xfe"}'), ALL),
    "manifest empty": (raw_file("manifest.json", b""), ALL),
    "manifest 20 MiB": (raw_file("manifest.json", b" " * (20 << 20) + b"{}"), ALL),
    "manifest is a folder": (raw_file("manifest.json", kind="dir"), ALL),
    "manifest is a FIFO": (raw_file("manifest.json", kind="fifo"), ALL),
    "manifest is /dev/zero": (raw_file("manifest.json", kind="devzero"), ALL),
    # DONE markers
    "DONE missing": (raw_file("rounds/002/DONE", kind="missing"), ALL),
    "DONE deep nesting": (raw_file("rounds/002/DONE", DEEP), ALL),
    "DONE files list": (raw_file("rounds/002/DONE", b'{"files": []}'), ALL),
    "DONE names parent": (raw_file("rounds/002/DONE", b'{"files": {"../../manifest.json": "00"}}'), ALL),
    "DONE names absolute": (raw_file("rounds/002/DONE", b'{"files": {"/etc/passwd": "00"}}'), ALL),
    "DONE names hidden": (raw_file("rounds/002/DONE", b'{"files": {".lock": "00"}}'), ALL),
    "DONE is a folder": (raw_file("rounds/002/DONE", kind="dir"), ALL),
    "DONE is a FIFO": (raw_file("rounds/002/DONE", kind="fifo"), ALL),
    "DONE 20 MiB": (raw_file("rounds/002/DONE", b" " * (20 << 20)), ALL),
    "weights file is /dev/zero": (raw_file("rounds/002/weights.safetensors", kind="devzero"), ALL),
    # metrics.json and timing.json (DONE updated to match, as a hostile sender would)
    "metrics round string": (metrics(round="2"), ALL),
    "metrics round other": (metrics(round=1), ALL),
    "metrics round missing": (metrics(round=None), ALL),
    "metrics density string": (metrics(density="x"), ALL),
    "metrics density NaN": (metrics(density="__NaN__"), ALL),
    "metrics density 2": (metrics(density=2.0), ALL),
    "metrics density missing": (metrics(density=None), ALL),
    "metrics accuracy NaN": (metrics(test_accuracy="__NaN__"), ALL),
    "metrics accuracy string": (metrics(test_accuracy="99%"), ALL),
    "metrics weights_left empty": (metrics(weights_left={}), ALL),
    "metrics weights_left negative": (metrics(weights_left={"h1": -1, "out": 1}), ALL),
    "metrics kept_total wrong": (metrics(kept_total=7), ALL),
    "metrics history string": (metrics(history="x"), ALL),
    "metrics train_path unknown": (metrics(train_path="\x1b[31mgpu"), ["show"]),
    "metrics is a list": (raw_file("rounds/002/metrics.json", b"[]", fix_done=True), ALL),
    "metrics deep nesting": (raw_file("rounds/002/metrics.json", DEEP, fix_done=True), ALL),
    "timing string": (metrics(file="timing.json", train_seconds="slow"), ALL),
    "timing negative": (metrics(file="timing.json", wall_seconds=-1), ALL),
    # safetensors
    "weights float8": (tensors(change=_retype(torch.float8_e4m3fn)), READS_TENSORS),
    "weights float16": (tensors(change=_retype(torch.float16)), READS_TENSORS),
    "weights bfloat16": (tensors(change=_retype(torch.bfloat16)), READS_TENSORS),
    "weights int32": (tensors(change=_retype(torch.int32)), READS_TENSORS),
    "weights NaN": (tensors(change=lambda t: {**t, "out.bias": torch.full_like(t["out.bias"], float("nan"))}),
                    READS_TENSORS),
    "weights extra tensor": (tensors(change=lambda t: {**t, "h9.weight": torch.zeros(2)}), READS_TENSORS),
    "weights missing tensor": (tensors(change=lambda t: {k: v for k, v in t.items() if k != "out.bias"}),
                               READS_TENSORS),
    "weights wrong shape": (tensors(change=lambda t: {**t, "out.bias": torch.zeros(3)}), READS_TENSORS),
    "weights garbage": (tensors(data=b"\x01" * 100), READS_TENSORS),
    "weights header claims 40 GB": (tensors(data=_huge_header()), READS_TENSORS),
    "mask float32": (tensors("mask.safetensors", change=_retype(torch.float32, "h1")), READS_TENSORS),
    "mask float8": (tensors("mask.safetensors", change=_retype(torch.float8_e5m2, "h1")), READS_TENSORS),
    "mask wrong layers": (tensors("mask.safetensors", change=lambda t: {"x": t["h1"]}), READS_TENSORS),
    "init float8": (tensors("init.safetensors", None, change=_retype(torch.float8_e4m3fn)), ["run", "control"]),
    # round and control folders
    "round beyond the plan": (_copy_round("001", "003"), ALL),
    "round 025 copied in": (_copy_round("001", "025"), ALL),
    "round after a gap": (rounds_change(_gap), ALL),
    "round listed twice": (rounds_change(_round_twice), ALL),
    "round folder is a link": (rounds_change(_symlinked_round), ALL),
    "round named abc": (rounds_change(lambda r, run: (r / "abc").mkdir()), ALL),
    "round named 1": (rounds_change(lambda r, run: (r / "1").mkdir()), ALL),
    "round is a file": (rounds_change(lambda r, run: (r / "003").write_text("x")), ALL),
    "rounds is a file": (raw_file("rounds", b"x"), ALL),
    "control named junk": (_control(lambda c, src: (c / "junk").mkdir()), ["show"]),
    "control of an unfinished round": (_control(lambda c, src: shutil.copytree(src, c / "reinit-r009-s1")), ["show"]),
    "control under another name": (_control(lambda c, src: shutil.copytree(src, c / "reinit-r001-s5")), ["show"]),
    # the lock file
    "lock links outside": (raw_file(".lock", kind="missing"), ["run"]),
    "lock is a folder": (raw_file(".lock", kind="dir"), ["run"]),
    "lock is a FIFO": (raw_file(".lock", kind="fifo"), ["run"]),
    "control lock links outside": (raw_file("controls/.random-mask-r002-s7.lock", kind="missing"), ["control"]),
    "control lock is a FIFO": (raw_file("controls/.random-mask-r002-s7.lock", kind="fifo"), ["control"]),
}


def _argv(cmd: str, run: Path, cfg: Path, runs: Path) -> list:
    r = ["--runs-dir", runs]
    return {
        "show": ["show", run, *r],
        "graph-json": ["graph", run, "--format", "json", *r],
        "graph-svg": ["graph", run, *r],
        "view": ["view", run, *r],
        "report": ["report", run, *r],
        "control": ["control", run, "--round", 2, "--kind", "random-mask", "--seed", 7, *r],
        "run": ["run", cfg, "--quiet", *r],
    }[cmd]


def test_hostile_run_folders(base, tmp_path, capsys, monkeypatch):
    cfg, run0 = base
    t = Tally("run folders")
    for i, (case, (mutate, commands)) in enumerate(CASES.items()):
        root = tmp_path / f"c{i:03d}"
        runs = root / "runs"
        shutil.copytree(run0.parent, runs, symlinks=True)
        run = runs / run0.name
        work = root / "work"
        work.mkdir()
        (root / "outside").mkdir()
        mutate(run, root)
        if case == "lock links outside":
            (run / ".lock").symlink_to(root / "outside" / "planted")
        if case == "control lock links outside":
            (run / "controls" / ".random-mask-r002-s7.lock").symlink_to(root / "outside" / "planted")
        before = snapshot(root, work)
        monkeypatch.chdir(work)
        t.c["cases"] += 1
        for cmd in commands:
            check_call(t, f"{case} [{cmd}]", _argv(cmd, run, cfg, runs), capsys)
        new = snapshot(root, work) - before - {run / ".lock"}
        t.bad("outside", case, f"new paths {sorted(map(str, new))[:5]}", len(new))
        t.bad("temporaries", case, "left behind", len(temporaries(root)))
    t.done()


def test_terminal_text_is_escaped(base, tmp_path, capsys, monkeypatch):
    """Names that are allowed but carry escape sequences reach the terminal escaped."""
    cfg, run0 = base
    t = Tally("terminal text")
    runs = tmp_path / "runs"
    shutil.copytree(run0.parent, runs, symlinks=True)
    evil = runs / "evil\x1b[2J\nhostile-00000000\tforged"
    shutil.copytree(run0, evil)
    set_manifest(data__name="mnist\x1b[31m\u202eevil\nforged")(evil, tmp_path)
    monkeypatch.chdir(tmp_path)
    t.c["cases"] += 2
    out = check_call(t, "runs", ["runs", "--runs-dir", runs], capsys, expect=0)
    if len(out.splitlines()) != 2:
        t.bad("control_chars", "runs", f"expected 2 lines: {out!r}")
    out = check_call(t, "show", ["show", evil, "--runs-dir", runs], capsys, expect=0)
    if "\\x1b[31m" not in out:
        t.bad("control_chars", "show", f"escape not shown as text: {out[:200]!r}")
    t.done()


# -- reports: never delete what the report did not write --------------------------------------------


def test_report_keeps_user_files(base, tmp_path, capsys, monkeypatch):
    cfg, run0 = base
    t = Tally("report folders")
    runs = run0.parent
    monkeypatch.chdir(tmp_path)

    def report(folder: Path, expect: int, case: str, *extra) -> None:
        t.c["cases"] += 1
        check_call(t, case, ["report", run0, "--runs-dir", runs, "-o", folder, *extra], capsys, expect=expect)

    def user_files_kept(case: str, files: dict[Path, bytes]) -> None:
        lost = [p for p, b in files.items() if not p.is_file() or p.read_bytes() != b]
        t.bad("user_files_deleted", case, f"{lost}", len(lost))

    rep = tmp_path / "rep"
    report(rep, 0, "first report")
    notes = {rep / "notes.txt": b"my notes", rep / "figures" / "mine.svg": b"<svg/>"}
    for p, b in notes.items():
        p.write_bytes(b)
    report(rep, 2, "report over user notes")
    user_files_kept("report over user notes", notes)
    for p in notes:
        p.unlink()
    report(rep, 0, "report again once the notes are gone", "--round", "1")

    edited = {rep / "index.html": b"<p>my edits</p>"}
    (rep / "index.html").write_bytes(b"<p>my edits</p>")
    report(rep, 2, "report over an edited page")
    user_files_kept("report over an edited page", edited)

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(mine)
    report(link, 2, "report into a link to a folder")
    report(mine, 2, "report into a user's folder")
    user_files_kept("report into a user's folder", {mine / "thesis.tex": b"precious"})

    legacy = tmp_path / "legacy"
    report(legacy, 0, "legacy report")
    (legacy / "report-files.json").unlink()
    report(legacy, 0, "report over a report without a file list")
    (legacy / "report-files.json").unlink()
    (legacy / "todo.md").write_bytes(b"todo")
    report(legacy, 2, "report over a legacy report with a user file")
    user_files_kept("legacy + user file", {legacy / "todo.md": b"todo"})
    t.bad("temporaries", "reports", "left behind", len(temporaries(tmp_path)))
    t.done()


# -- Ctrl-C during start-up -------------------------------------------------------------------------


def test_ctrl_c_while_parsing_or_importing_is_one_line(monkeypatch, capsys):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    for target in ("sparsescope.cli.build_parser", "sparsescope._commands.cmd_runs"):
        with monkeypatch.context() as m:
            m.setattr(target, interrupt)
            code, out, err, tb = call(["runs"], capsys)
        assert tb is None and code == 130 and err.count("\n") == 1 and "interrupted" in err, (target, err)


# SIGINT sent to a real process at random moments of its start-up and run: tests/test_sigint.py
