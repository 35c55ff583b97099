"""How to train one DQN round, and which environment (no torch or gymnasium needed to read or check them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._checks import need_float, need_int
from .._errors import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What sparsescope knows about an environment: names of its inputs and actions,
    and the state limits at which an episode terminates (``inf``: none)."""

    name: str
    inputs: tuple[str, ...]
    actions: tuple[str, ...]
    limits: tuple[float, ...]
    max_return: float


# CartPole-v1 (gymnasium 1.x): an episode ends when |x| > 2.4 or |theta| > 12 degrees,
# or is truncated after 500 steps (return 500).
ENVS = {
    "CartPole-v1": EnvInfo(
        "CartPole-v1",
        ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
        ("left", "right"),
        (2.4, math.inf, 12 * 2 * math.pi / 360, math.inf),
        500.0,
    ),
}


def env_info(name: str) -> EnvInfo:
    if name not in ENVS:
        raise ConfigError(f"unknown env.name {name!r} (supported: {', '.join(ENVS)})")
    return ENVS[name]


@dataclass(frozen=True)
class EnvConfig:
    """``[env]``: the environment and how many copies run side by side while training."""

    name: str = "CartPole-v1"
    num_envs: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"env.name must be a string, got {self.name!r}")
        env_info(self.name)
        need_int("env.num_envs", self.num_envs, 1, 1024)

    @property
    def info(self) -> EnvInfo:
        return env_info(self.name)


@dataclass(frozen=True)
class DQNConfig:
    """``[rl]``: one DQN round (steps count environment transitions over all copies).

    The round trains until the greedy agent's mean return over ``eval_episodes``
    fixed-seed episodes reaches ``max_return`` (checked every ``eval_every``
    steps once learning started), or ``budget_steps`` run out (the round is then
    recorded as not solved).  Epsilon falls linearly from ``eps_start`` to
    ``eps_end`` over ``eps_steps``; one gradient step (Huber loss, Adam) per
    ``train_every`` steps; the target network is copied every ``target_every``
    gradient steps.
    """

    budget_steps: int = 100_000
    learning_starts: int = 1_000
    buffer_size: int = 50_000
    batch_size: int = 64
    lr: float = 1e-3
    gamma: float = 0.99
    train_every: int = 4
    target_every: int = 250
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_steps: int = 20_000
    eval_every: int = 5_000
    eval_episodes: int = 100
    max_return: float = 500.0
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        need_int("rl.budget_steps", self.budget_steps, 1, 10**9)
        need_int("rl.learning_starts", self.learning_starts, 0, 10**9)
        need_int("rl.buffer_size", self.buffer_size, 1, 10**8)
        need_int("rl.batch_size", self.batch_size, 1, 1_000_000)
        need_float("rl.lr", self.lr, 0.0, 10.0, lo_open=True)
        need_float("rl.gamma", self.gamma, 0.0, 1.0)
        need_int("rl.train_every", self.train_every, 1, 10**9)
        need_int("rl.target_every", self.target_every, 1, 10**9)
        need_float("rl.eps_start", self.eps_start, 0.0, 1.0)
        need_float("rl.eps_end", self.eps_end, 0.0, 1.0)
        need_int("rl.eps_steps", self.eps_steps, 1, 10**9)
        need_int("rl.eval_every", self.eval_every, 1, 10**9)
        need_int("rl.eval_episodes", self.eval_episodes, 1, 100_000)
        need_float("rl.max_return", self.max_return, 0.0, 1e9, lo_open=True)
        need_float("rl.huber_delta", self.huber_delta, 0.0, 1e9, lo_open=True)
        if self.batch_size > self.buffer_size:
            raise ConfigError(f"rl.batch_size {self.batch_size} is larger than rl.buffer_size {self.buffer_size}")
