"""Reinforcement learning: environments, replay, DQN training, greedy episodes.

``EnvConfig``/``DQNConfig`` need neither torch nor gymnasium; the training
code loads them on first use.
"""

from ._config import ENVS, DQNConfig, EnvConfig, EnvInfo, env_info

_LAZY = {
    "DQNResult": "_dqn", "fit_dqn": "_dqn", "q_function": "_dqn", "epsilon": "_dqn", "huber_grad": "_dqn",
    "Evaluation": "_env", "evaluate_greedy": "_env", "make_env": "_env", "env_fingerprint": "_env",
    "ReplayBuffer": "_replay",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DQNConfig", "ENVS", "EnvConfig", "EnvInfo", "env_info", *_LAZY]
