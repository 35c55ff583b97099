"""gymnasium's own vectorised environments, seeded; greedy evaluation and recorded episodes.

gymnasium's ``CartPoleVectorEnv`` steps all copies in numpy at once.  It
resets a finished copy on the *next* step (``AutoresetMode.NEXT_STEP``): that
step returns the new episode's first state with reward 0, and is not a
transition.  :func:`evaluate_greedy` follows each copy's first episode only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .._errors import ConfigError
from ._config import EnvInfo, env_info

QFunction = Callable[[torch.Tensor], torch.Tensor]


def make_env(name: str, num_envs: int) -> Any:
    """A gymnasium vector env of ``num_envs`` copies (no wrappers: speed matters here)."""
    info = env_info(name)
    if info.name == "CartPole-v1":
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

        return CartPoleVectorEnv(num_envs=num_envs, max_episode_steps=int(info.max_return))
    raise ConfigError(f"no vectorised environment for {name!r}")  # pragma: no cover - ENVS lists only these


def env_fingerprint(name: str) -> str:
    """Identifies the environment's dynamics: its id and the gymnasium version that implements it."""
    import gymnasium

    return f"env:{name}:gymnasium-{gymnasium.__version__}"


@dataclass
class Evaluation:
    """Greedy evaluation over ``n`` fixed-seed episodes.

    ``returns``: float64 ``(n,)``; ``state_lo``/``state_hi``: per-input range of
    every state the agent acted on (float32 values as the network saw them);
    ``episode``: the recorded first episode (see :func:`episode_record`).
    """

    returns: np.ndarray
    state_lo: np.ndarray
    state_hi: np.ndarray
    episode: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.returns.mean())


@torch.no_grad()
def evaluate_greedy(info: EnvInfo, q: QFunction, episodes: int, seed: int, *, record: bool = False) -> Evaluation:
    """Run ``episodes`` episodes side by side, acting by ``argmax q(state)`` (ties: lowest action).

    Deterministic: the episodes' first states come from ``seed`` alone.  With
    ``record``, the first episode's states, Q-values and actions are kept.
    """
    env = make_env(info.name, episodes)
    obs, _ = env.reset(seed=int(seed))
    active = np.ones(episodes, dtype=bool)
    returns = np.zeros(episodes)
    lo = np.full(obs.shape[1], np.inf, dtype=np.float32)
    hi = np.full(obs.shape[1], -np.inf, dtype=np.float32)
    states, qs, acts = [], [], []
    try:
        while active.any():
            qv = q(torch.from_numpy(obs))
            act = qv.argmax(1).numpy()
            seen = obs[active]
            lo, hi = np.minimum(lo, seen.min(0)), np.maximum(hi, seen.max(0))
            if record and active[0]:
                states.append(obs[0].tolist())
                qs.append(qv[0].tolist())
                acts.append(int(act[0]))
            obs, rew, term, trunc, _ = env.step(act)
            returns += np.where(active, rew, 0.0)
            active &= ~(term | trunc)
    finally:
        env.close()
    ep = episode_record(info, states, qs, acts, seed, float(returns[0])) if record else {}
    return Evaluation(returns, lo, hi, ep)


def episode_record(info: EnvInfo, states: list, qs: list, actions: list, seed: int, ret: float) -> dict[str, Any]:
    """A greedy episode as plain JSON: ``states`` ``(T, n_in)`` as float32 values
    written exactly (float64 text of the float32), ``q`` ``(T, n_actions)``,
    ``actions`` ``(T,)``, with the input and action names."""
    return {
        "env": info.name,
        "seed": int(seed),
        "inputs": list(info.inputs),
        "actions_names": list(info.actions),
        "length": len(actions),
        "return": ret,
        "states": states,
        "q": qs,
        "actions": actions,
    }
