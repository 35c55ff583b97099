"""DQN on a vectorised environment, with hand-written backward and the fused Adam kernel.

The Q-network is the project's MLP (``MLPSpec``): states in, one Q-value per
action out.  A step is tiny (a 64-transition batch through 4-64-64-2), so, as
in :mod:`sparsescope.train`, framework overhead sets the speed: no autograd,
no ``torch.optim``; the backward pass is written out (checked against
autograd in the tests) and one fused Adam call updates every parameter.
Pruned weights stay exactly zero: their gradient is masked before the step,
so Adam's moments stay zero and so does the update; the target network
copies the (masked) online weights.

Everything random comes from ``seed``: the environments' reset seed, the
epsilon-greedy draws (numpy ``PCG64``) and the replay sampling (a torch
generator); evaluation uses its own fixed ``eval_seed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..models import MLPSpec
from ..train import TrainConfig
from ..train._fit import _collect, _forward, _FusedAdam, masked_copies
from ._config import DQNConfig, EnvConfig
from ._env import Evaluation, evaluate_greedy, make_env
from ._replay import ReplayBuffer


@dataclass
class DQNResult:
    """One round of DQN training.

    ``solved``: the greedy agent's mean return reached ``max_return``;
    ``steps_to_solve``: environment transitions used until then (``None`` if
    not solved); ``steps``: transitions used in all; ``grad_steps``: Adam
    steps; ``evaluation``: the last greedy evaluation (of the returned
    parameters); ``history``: one entry per evaluation; ``snapshot``: the
    parameters at gradient step ``snapshot_step`` (late rewinding);
    ``train_seconds``: wall time of the loop, evaluations included.
    """

    params: dict[str, torch.Tensor]
    solved: bool
    steps_to_solve: int | None
    steps: int
    grad_steps: int
    evaluation: Evaluation
    history: list[dict[str, Any]] = field(default_factory=list)
    snapshot: dict[str, torch.Tensor] | None = None
    train_seconds: float = 0.0


def epsilon(config: DQNConfig, step: int) -> float:
    """Linear from ``eps_start`` at step 0 to ``eps_end`` at ``eps_steps``, then flat."""
    frac = min(1.0, step / config.eps_steps)
    return config.eps_start + frac * (config.eps_end - config.eps_start)


def huber_grad(diff: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean Huber loss of ``diff`` ``(B,)`` and its gradient with respect to ``diff``."""
    a = diff.abs()
    loss = torch.where(a < delta, 0.5 * diff * diff, delta * (a - 0.5 * delta)).mean()
    return loss, diff.clamp(-delta, delta) / diff.shape[0]


def td_gradients(ws, bs, tws, tbs, ms, grads, batch, gamma: float, delta: float) -> torch.Tensor:
    """Mean Huber TD loss of one batch; its gradients land in ``grads`` (``[w1, b1, w2, b2, ...]``).

    ``batch = (obs (B, n_in), action (B,), reward (B,), next_obs (B, n_in), terminated (B,))``;
    targets ``reward + gamma * (1 - terminated) * max_a target_Q(next_obs, a)`` are constants.
    Masked kernel gradients (``ms[l]`` float 0/1 ``(out, in)``) are zeroed.  Checked against autograd.
    """
    o, a, r, o2, d = batch
    y = r + gamma * (1.0 - d) * _forward(tws, tbs, o2)[0].amax(1)
    q, acts = _forward(ws, bs, o)
    loss, gd = huber_grad(q.gather(1, a[:, None])[:, 0] - y, delta)
    g = torch.zeros_like(q).scatter_(1, a[:, None], gd[:, None])
    for i in range(len(ws) - 1, -1, -1):
        gw, gb = grads[2 * i], grads[2 * i + 1]
        torch.mm(g.t(), acts[i], out=gw)
        torch.sum(g, 0, out=gb)
        if ms[i] is not None:
            gw.mul_(ms[i])
        if i > 0:
            g = torch.ops.aten.threshold_backward(torch.mm(g, ws[i]), acts[i], 0)
    return loss


def q_function(spec: MLPSpec, params: dict[str, torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``states (B, n_in) -> Q (B, n_actions)`` in float32, the way training computes it."""
    names = spec.layer_names
    ws = [params[f"{n}.weight"].float() for n in names]
    bs = [params[f"{n}.bias"].float() for n in names]
    return lambda x: _forward(ws, bs, x.float())[0]


def fit_dqn(
    spec: MLPSpec,
    params: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor] | None,
    env: EnvConfig,
    config: DQNConfig,
    *,
    seed: int,
    eval_seed: int,
    threads: int = 1,
    snapshot_step: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> DQNResult:
    """Train copies of ``params`` by DQN until solved or out of budget.

    ``masks[name]``: bool ``(out, in)`` per layer (``None``: dense); masked
    weights are zeroed first and stay zero.  ``on_step(steps, budget)`` is
    called after each evaluation.  The inputs are never modified.
    """
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            return _fit(spec, params, masks, env, config, seed, eval_seed, snapshot_step, on_step)
    finally:
        torch.set_num_threads(prev)


def _fit(spec, params, masks, envc, config, seed, eval_seed, snapshot_step, on_step) -> DQNResult:
    info = envc.info
    names = spec.layer_names
    ws, bs, ms = masked_copies(spec, params, masks)
    tws, tbs = [w.clone() for w in ws], [b.clone() for b in bs]
    plist = [p for pair in zip(ws, bs) for p in pair]
    grads = [torch.zeros_like(p) for p in plist]
    adam = _FusedAdam(plist, grads, TrainConfig(lr=config.lr))
    env_seed, act_seed, buf_seed = (int(s) for s in np.random.SeedSequence(int(seed)).generate_state(3, np.uint32))
    rng = np.random.Generator(np.random.PCG64(act_seed))
    buffer = ReplayBuffer(config.buffer_size, spec.sizes[0], torch.Generator().manual_seed(buf_seed))
    n_act = spec.sizes[-1]
    env = make_env(info.name, envc.num_envs)
    result = DQNResult({}, False, None, 0, 0, Evaluation(np.zeros(0), np.zeros(0), np.zeros(0)))
    if snapshot_step == 0:
        result.snapshot = _collect(names, ws, bs)
    gamma, delta, batch = float(config.gamma), float(config.huber_delta), config.batch_size
    q_now = lambda x: _forward(ws, bs, x)[0]  # noqa: E731
    t0 = time.perf_counter()
    try:
        obs, _ = env.reset(seed=env_seed)
        prev_done = np.zeros(envc.num_envs, dtype=bool)
        steps = grad_steps = 0
        next_train, next_eval = max(config.learning_starts, config.train_every), max(config.learning_starts, config.eval_every)
        loss_sum, loss_n = torch.zeros(()), 0
        evaluation = None
        while True:
            eps = epsilon(config, steps)
            explore = rng.random(envc.num_envs) < eps
            random_act = rng.integers(0, n_act, envc.num_envs)
            if explore.all():
                act = random_act
            else:
                act = np.where(explore, random_act, q_now(torch.from_numpy(obs)).argmax(1).numpy())
            nxt, rew, term, trunc, _ = env.step(act)
            valid = ~prev_done
            if valid.all():
                buffer.add(obs, act, rew, nxt, term)
            elif valid.any():
                buffer.add(obs[valid], act[valid], rew[valid], nxt[valid], term[valid])
            steps += int(valid.sum())
            prev_done = term | trunc
            obs = nxt
            while steps >= next_train:
                next_train += config.train_every
                loss_sum += td_gradients(ws, bs, tws, tbs, ms, grads, buffer.sample(batch), gamma, delta)
                loss_n += 1
                adam.step()
                grad_steps += 1
                if grad_steps % config.target_every == 0:
                    for t, s in zip(tws + tbs, ws + bs):
                        t.copy_(s)
                if snapshot_step is not None and grad_steps == snapshot_step:
                    result.snapshot = _collect(names, ws, bs)
            out_of_budget = steps >= config.budget_steps
            if steps >= next_eval or out_of_budget:
                while next_eval <= steps:
                    next_eval += config.eval_every
                evaluation = evaluate_greedy(info, q_now, config.eval_episodes, eval_seed, record=True)
                result.history.append({
                    "steps": steps, "grad_steps": grad_steps, "epsilon": eps,
                    "eval_return": evaluation.mean, "eval_return_min": float(evaluation.returns.min()),
                    "loss": float(loss_sum) / loss_n if loss_n else None,
                })
                loss_sum.zero_()
                loss_n = 0
                if on_step is not None:
                    on_step(min(steps, config.budget_steps), config.budget_steps)
                if evaluation.mean >= config.max_return:
                    result.solved, result.steps_to_solve = True, steps
                    break
            if out_of_budget:
                break
    finally:
        env.close()
    result.train_seconds = time.perf_counter() - t0
    if snapshot_step is not None and result.snapshot is None:
        result.snapshot = _collect(names, ws, bs)
    result.params = _collect(names, ws, bs)
    result.steps, result.grad_steps, result.evaluation = steps, grad_steps, evaluation
    return result
