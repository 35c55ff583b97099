"""The finding across seeds: which state inputs the pruned CartPole agents ignore.

    python scripts/rl_seeds.py [--config configs/cartpole-dqn.toml] [--seeds 0-4] [--runs-dir runs] [--table-only]

Runs (or resumes) the config once per seed -- the same config with only ``seed``
changed, so each is its own run in the run store -- and prints, per seed, the
final ticket (the sparsest round that still solved the task: greedy mean return
500 over the fixed evaluation episodes), its density, return and ignored inputs,
then per input in how many final tickets it is ignored.  ``--table-only`` just
reads the runs already there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sparsescope._config import load_config
from sparsescope._errors import SparsescopeError
from sparsescope.runs import RunStore, run_experiment
from sparsescope.runs._rl import ignored_inputs_table


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cartpole-dqn.toml")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    try:
        base = load_config(args.config)
        stores = []
        for s in _seeds(args.seeds):
            cfg = dataclasses.replace(base, seed=s)
            path = f"{args.runs_dir}/{cfg.run_id}"
            if not args.table_only:
                res = run_experiment(cfg, args.runs_dir)
                print(f"seed {s}: {res.path} ({len(res.rounds)} rounds)", file=sys.stderr)
            stores.append(RunStore(path))
        print(ignored_inputs_table(stores))
    except SparsescopeError as exc:
        print(f"sparsescope: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
