"""The ``sparsescope`` command: thin commands over the API.

Each command parses its options and calls one API function.  A user's
mistake (a :class:`SparsescopeError`) prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from typing import Sequence

from . import __version__, _interrupt
from ._errors import SparsescopeError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every user error
        _interrupt.release()  # a Ctrl-C held during parsing wins over the mistake: one line either way
        self.exit(2, f"sparsescope: error: {message} (see '{self.prog} --help')\n")


def _runs_dir(p: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    # Accepted before and after the command: the top-level parser sets the default,
    # a command's own option (default SUPPRESS) overrides it only when given.
    p.add_argument("--runs-dir", default=default, metavar="DIR", help="where runs live (default: ./runs)")


def _run_round(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run id, config name, id prefix or folder; or a model file MODEL.onnx")
    p.add_argument("--round", type=int, default=None, metavar="N", help="round (default: the last finished)")
    p.add_argument("--labels", default=None, metavar="FILE.json",
                   help='model files: input/output names, {"inputs": [...], "outputs": [...]}')


def _box(p: argparse.ArgumentParser) -> None:
    p.add_argument("--box", default=None, metavar="BOX",
                   help="input box for the bounds: unit (every input in [0, 1], default for datasets), data (a run's "
                        "training data range), env (an RL run's termination limits and visited velocities, its default); "
                        "for model files also LO,HI (every input in [LO, HI]; write --box=-1,1 for a negative LO) or "
                        "data:FILE.npy (per-input range of your samples)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used to check that each is documented)."""
    parser = _Parser(prog="sparsescope", description="Train, lottery-ticket prune and read small networks as exact flowgraphs.")
    parser.add_argument("--version", action="version", version=f"sparsescope {__version__}")
    _runs_dir(parser, "runs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run (or resume) an experiment from a TOML config",
                       description="Train and prune every round of CONFIG; resumes an interrupted run; prints the round table.")
    p.add_argument("config", metavar="CONFIG.toml")
    _runs_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("runs", help="list runs, one per line, newest last", description="List the runs under --runs-dir.")
    _runs_dir(p)

    p = sub.add_parser("show", help="print a run's round table", description="Print the round table of RUN (id, id prefix or path).")
    p.add_argument("run", metavar="RUN")
    _runs_dir(p)

    p = sub.add_parser("control", help="train a lottery-ticket control for one round",
                       description="reinit: same mask, fresh initialisation; random-mask: random mask with the same per-layer counts.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--round", type=int, required=True, metavar="N")
    p.add_argument("--kind", choices=["reinit", "random-mask"], required=True)
    p.add_argument("--seed", type=int, default=None)
    _runs_dir(p)

    p = sub.add_parser("graph", help="write the flowgraph of a round as SVG, PNG or JSON",
                       description="Write the flowgraph of RUN at --round (default: last) as a figure or as JSON (docs/flowgraph-schema.md).")
    _run_round(p)
    p.add_argument("--output", type=int, default=None, metavar="K", help="only the subgraph of output K")
    p.add_argument("--input", type=int, default=None, metavar="I", help="per-input figure for test image I")
    p.add_argument("--format", choices=["svg", "png", "json"], default=None,
                   help="svg, png or json (default: from the -o extension, else svg)")
    p.add_argument("--shared-scale", action="store_true", help="one colour scale (with a colour bar) for all weight tiles")
    p.add_argument("--hide-off", action="store_true", help="leave out units proven always off over the box (default: grey)")
    _box(p)
    p.add_argument("-o", dest="out", default=None, metavar="FILE",
                   help="output file, '-' for standard output (default: derived from the run, in .)")
    _runs_dir(p)

    p = sub.add_parser("report", help="write a folder with all figures and statistics of a round",
                       description="Write an index page with the figures and structure statistics of RUN at --round.")
    _run_round(p)
    p.add_argument("--input", type=int, default=0, metavar="I", help="test image for the per-input figure (default 0)")
    _box(p)
    p.add_argument("--compare", default=None, metavar="RUN",
                   help="add a table comparing this round with RUN's round of closest test accuracy (e.g. MLP vs CNN)")
    p.add_argument("--exact", action="store_true", help="add the exact analysis: exact vs interval bounds, simplified graph")
    p.add_argument("-o", dest="out", default=None, metavar="DIR",
                   help="output folder (default: reports/RUN-rN, or reports/RUN-rN-data with --box data)")
    _runs_dir(p)

    p = sub.add_parser("view", help="write the single-file interactive viewer",
                       description="Write one self-contained HTML file to explore RUN's flowgraphs offline.")
    _run_round(p)
    p.add_argument("--samples", default=None, metavar="LIST",
                   help="test images to embed, by test-set index: e.g. 0-99 or 3,7,11 (default: 100 spread over the test set)")
    p.add_argument("--rounds", default=None, metavar="LIST",
                   help="rounds to embed for the round slider: e.g. 0-16 or 0,8,16 (default: every finished round)")
    p.add_argument("-o", dest="out", default=None, metavar="FILE",
                   help="output file, '-' for standard output (default: RUN-rN.html in .)")
    p.add_argument("--exact", action="store_true",
                   help="the opened round with its exact ranges (witnessed) beside the interval bounds in the node cards")
    _box(p)
    _runs_dir(p)
    _study_commands(sub)

    p = sub.add_parser("analyse", help="what holds over an input box: structure, bounds, exact ranges, simplification",
                       description="Analyse RUN at --round over an input box: structure and interval box states; with "
                                   "--exact the exact range of every unit (MILP, HiGHS) with witnesses, the exactly "
                                   "simplified graph and its certificate; for a ball, the robustness verdict.")
    _run_round(p)
    p.add_argument("--exact", action="store_true", help="exact ranges, simplified graph and certificate")
    p.add_argument("--box", default=None, metavar="unit|data|env|ball:IMAGE:EPS",
                   help="every pixel in [0, 1] (default for datasets), the training data's range, the environment's "
                        "box (default for RL runs, as in graph/report/view), or the L-inf ball of radius EPS "
                        "around test image IMAGE (clipped to [0, 1]); for MODEL.onnx: unit, LO,HI or data:FILE.npy")
    p.add_argument("--robust", type=float, default=None, metavar="EPS",
                   help="exact adversarial accuracy: decide every --samples test image's L-inf ball of radius EPS "
                        "(robust, not robust with a counterexample, misclassified, or unknown at the time cap)")
    p.add_argument("--samples", default=None, metavar="LIST",
                   help="with --robust: test images by index, e.g. 0-999 or 3,7,11 (default 0-99)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="S", help="seconds per program (default 10)")
    p.add_argument("--check", default=None, metavar="FILE.json",
                   help="re-check the certificate of an analysis JSON of RUN (round: --round or the file's) and "
                        "print one line; exit 2 if it does not hold")
    p.add_argument("--prove", action="store_true", help="with --check: prove the solver's facts again (MILP)")
    p.add_argument("--format", choices=["text", "json"], default=None,
                   help="text (default) or json; follows -o's extension (.json, .txt)")
    p.add_argument("-o", dest="out", default=None, metavar="FILE", help="write to FILE ('-' or none: standard output)")
    _runs_dir(p)
    return parser


def _study_commands(sub) -> None:
    """``sweep``, ``study`` and ``search``: many runs at once (sparsescope.study)."""
    executor = dict(default="local", metavar="KIND",
                    help="local (default: one process per core), serial, dask (a local Dask cluster), "
                         "dask:ADDRESS, slurm[:PARTITION] (submitit; local without Slurm)")
    p = sub.add_parser("sweep", help="run a grid of experiments: seeds x schedules x datasets x controls",
                       description="Expand SWEEP.toml into ordinary runs in the run store and train every missing "
                                   "round and control on an executor; finished work is skipped, so a killed sweep resumes.")
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("--executor", **executor)
    p.add_argument("--workers", type=int, default=None, metavar="N", help="processes (default: one per core)")
    _runs_dir(p)

    p = sub.add_parser("study", help="write the study report of a sweep (HTML, CSV, JSON)",
                       description="Measure every round and control of SWEEP's finished runs and write one HTML report: "
                                   "accuracy vs density with controls, accuracy vs readability with the frontier, "
                                   "per-class readability, every run; all numbers also as CSV and JSON.")
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("-o", dest="out", default=None, metavar="DIR", help="output folder (default: reports/study-NAME)")
    p.add_argument("--floor", type=float, default=None, metavar="SCORE",
                   help="floor of the finding: test accuracy (default: [study] accuracy_floor, else 0.9); for an RL "
                        "sweep the evaluation return (default: [study] return_floor, else the env's reward_threshold)")
    p.add_argument("--measure", default=None, metavar="M", help="readability measure of the finding (default out_edges)")
    p.add_argument("--executor", **executor)
    p.add_argument("--workers", type=int, default=None, metavar="N", help="processes (default: one per core)")
    _runs_dir(p)

    p = sub.add_parser("search", help="search per-layer pruning rates minimising a readability measure at an accuracy floor",
                       description="Successive halving over the [search] grid of SWEEP.toml (layerwise rates): every "
                                   "candidate is an ordinary run; finalists are trained with every seed.")
    p.add_argument("sweep", metavar="SWEEP.toml")
    p.add_argument("-o", dest="out", default=None, metavar="FILE", help="result JSON (default: reports/search-NAME.json)")
    p.add_argument("--floor", type=float, default=None, metavar="ACC", help="accuracy floor (default: [study] accuracy_floor)")
    p.add_argument("--measure", default=None, metavar="M", help="readability measure (default: [study] measure, else out_edges)")
    p.add_argument("--executor", **executor)
    p.add_argument("--workers", type=int, default=None, metavar="N", help="processes (default: one per core)")
    _runs_dir(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0, 2 for a user's mistake, 130 when interrupted).

    Start-up (parsing, and the imports the command needs: torch takes a
    second) runs with Ctrl-C held; it is let in at one point, inside the
    handlers below (see :mod:`sparsescope._interrupt`), so Ctrl-C at any
    moment is one line and 130.  Messages go through ``term`` so names read
    from a run cannot drive the terminal.
    """
    outer = _interrupt.hold()  # True under the entry point, which held it from its first line
    from ._untrusted import term

    try:
        try:
            args = build_parser().parse_args(argv)
            from . import _commands

            _commands.start_up(args)
        finally:
            _interrupt.release()  # a Ctrl-C held so far is raised here
        code = getattr(_commands, "cmd_" + args.command)(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except SparsescopeError as exc:
        print(f"sparsescope: error: {term(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave: unwritable, a file where a folder goes, ...
        where = f": {_user_path(exc.filename)}" if exc.filename else ""
        print(f"sparsescope: error: {term(exc.strerror or exc)}{term(where)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _interrupt.hold()  # a second Ctrl-C waits: the entry point exits without it, a caller gets it below
        print("sparsescope: interrupted (finished rounds are kept; run again to resume)", file=sys.stderr)
        return _interrupt.INTERRUPTED
    finally:
        if not outer:  # called as a function: give the caller its Ctrl-C back
            _interrupt.release()


def _user_path(name) -> str:
    """The path the user asked for, not our temporary beside it: ``d/.x.svg.ab12cd34.tmp`` -> ``d/x.svg``
    (``_atomic`` writes through such temporaries, so an OSError names them)."""
    from ._atomic import TMP_SUFFIX, tmp_pattern

    name = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)
    head, sep, base = name.rpartition("/")
    if tmp_pattern().fullmatch(base):
        return head + sep + base[1:-len(".12345678" + TMP_SUFFIX)]
    return name


def _silence_stdout() -> None:
    """The reader of our stdout has gone (``show | head -1``): end quietly.

    Point stdout at /dev/null so that the interpreter's final flush does not
    print "Exception ignored ... BrokenPipeError" on the way out.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    from .__main__ import entry

    entry()
