"""DQN benchmark (a script, not a test): one solved round, and a whole IMP run.

    python bench/bench_dqn.py [--config configs/cartpole-dqn.toml] [--seed 0] [--skip-imp]
                              [--cleanrl LOG]

1. One dense round of the config (its [rl] settings and seed) trained until the
   greedy agent's mean return over 100 fixed-seed episodes is 500: prints the
   environment steps used and the CPU-seconds (process time, one thread),
   beside a compute floor: the same number of bare environment steps and
   gradient steps, timed in isolation (the loop cannot be faster than these).
   Target: <= 60 CPU-seconds.
2. The whole IMP run of the config (to <= 10% density): CPU-seconds in all and
   per round, solved or not.  Target: <= 10 minutes.

``--cleanrl LOG`` also prints, for comparison, what CleanRL's ``dqn.py`` (its
defaults: 4-120-84-2, 500k steps) logged when run here on the same seed, with
each line stamped with its CPU time (see docs/rl.md for the command): the first
training episode with return 500 and the CPU-seconds then.  (CleanRL does not
evaluate greedily; its episodes are epsilon-greedy training episodes, a weaker
criterion than ours: 100 greedy episodes of 500 in a row.)
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time

import numpy as np
import torch

from sparsescope._config import load_config
from sparsescope.models import init_params
from sparsescope.rl import ReplayBuffer, fit_dqn, make_env
from sparsescope.rl._dqn import td_gradients
from sparsescope.runs import derive_seed, run_experiment
from sparsescope.train import TrainConfig
from sparsescope.train._fit import _FusedAdam, masked_copies


def floor_seconds(cfg, steps: int, grad_steps: int) -> tuple[float, float]:
    """CPU-seconds of ``steps`` bare env transitions (random actions) and of ``grad_steps`` TD gradient + Adam steps."""
    n = cfg.env.num_envs
    env = make_env(cfg.env.name, n)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 2, (steps // n + 1, n))
    t0 = time.process_time()
    for a in acts:
        env.step(a)
    t_env = time.process_time() - t0
    spec = cfg.model
    ws, bs, ms = masked_copies(spec, init_params(spec, 0), None)
    tws, tbs = [w.clone() for w in ws], [b.clone() for b in bs]
    plist = [p for pair in zip(ws, bs) for p in pair]
    grads = [torch.zeros_like(p) for p in plist]
    adam = _FusedAdam(plist, grads, TrainConfig(lr=cfg.rl.lr))
    buf = ReplayBuffer(cfg.rl.buffer_size, spec.sizes[0], torch.Generator().manual_seed(0))
    x = rng.standard_normal((cfg.rl.buffer_size, spec.sizes[0])).astype(np.float32)
    buf.add(x, rng.integers(0, 2, len(x)), np.ones(len(x)), x, np.zeros(len(x)))
    t0 = time.process_time()
    with torch.no_grad():
        for _ in range(grad_steps):
            td_gradients(ws, bs, tws, tbs, ms, grads, buf.sample(cfg.rl.batch_size), cfg.rl.gamma, cfg.rl.huber_delta)
            adam.step()
    return t_env, time.process_time() - t0


def cleanrl_summary(path: str) -> str:
    first, last = None, None
    pat = re.compile(r"\[cpu ([\d.]+)\] global_step=(\d+), episodic_return=\[([\d.]+)\]")
    for line in open(path, encoding="utf-8"):
        m = pat.search(line)
        if m:
            last = m
            if first is None and float(m.group(3)) >= 500:
                first = m
    if first is None:
        return f"CleanRL dqn.py: no training episode reached 500 in the log (last: step {last and last.group(2)})"
    done = re.findall(r"\[cpu ([\d.]+)\] done", open(path, encoding="utf-8").read())
    total = f", whole 500k-step run {float(done[0]):.1f} CPU-s" if done else ""
    return (f"CleanRL dqn.py (defaults, 4-120-84-2): first training episode with return 500 at step "
            f"{int(first.group(2)):,} after {float(first.group(1)):.1f} CPU-s{total}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cartpole-dqn.toml")
    ap.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    ap.add_argument("--skip-imp", action="store_true")
    ap.add_argument("--cleanrl", default=None, metavar="LOG")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    seed = cfg.seed if args.seed is None else args.seed
    print(f"config {args.config}: Q-network {list(cfg.model.sizes)}, {cfg.env.num_envs} envs, seed {seed}; "
          f"machine shared with other jobs: CPU-seconds are the figure, wall time is noise")
    spec = cfg.model
    t0, w0 = time.process_time(), time.perf_counter()
    r = fit_dqn(spec, init_params(spec, seed), None, cfg.env, cfg.rl, seed=derive_seed(seed, "dqn", 0),
                eval_seed=derive_seed(seed, "eval"))
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    state = (f"solved after {r.steps_to_solve:,} steps" if r.solved
             else f"NOT solved in {r.steps:,} steps (greedy return {r.evaluation.mean:.1f})")
    print(f"one round: {state}, {r.grad_steps:,} gradient steps, {len(r.history)} greedy evaluations "
          f"of {cfg.rl.eval_episodes} episodes; {cpu:.1f} CPU-s ({wall:.1f} s wall)   target <= 60 CPU-s")
    t_env, t_grad = floor_seconds(cfg, r.steps, r.grad_steps)
    print(f"  floor: {r.steps:,} bare env steps {t_env:.1f} CPU-s + {r.grad_steps:,} bare gradient steps "
          f"{t_grad:.1f} CPU-s = {t_env + t_grad:.1f} CPU-s (the rest: action selection, replay, evaluations)")
    if args.cleanrl:
        print("  " + cleanrl_summary(args.cleanrl))
    if args.skip_imp:
        return
    with tempfile.TemporaryDirectory() as d:
        t0, w0 = time.process_time(), time.perf_counter()
        res = run_experiment(cfg, d)
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    last = res.rounds[-1]
    solved = [m["round"] for m in res.rounds if m["solved"]]
    print(f"IMP run: {len(res.rounds)} rounds to density {100 * last['density']:.1f}%, solved rounds {solved}; "
          f"{cpu:.1f} CPU-s ({wall:.1f} s wall)   target <= 600 s")
    for m in res.rounds:
        print(f"  round {m['round']:2d}  density {100 * m['density']:6.2f}%  "
              f"{'solved' if m['solved'] else 'NOT solved'} at {m['steps']:,} steps  return {m['eval_return']:.1f}  "
              f"{m['train_seconds']:.1f} s wall")


if __name__ == "__main__":
    main()
