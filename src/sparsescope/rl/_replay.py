"""A replay buffer of transitions in preallocated tensors, sampled by a seeded generator."""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions ``(state, action, reward, next_state, terminated)``.

    States are float32 ``(n_in,)``.  ``terminated`` is 1.0 only when the
    episode ended by failure (no bootstrap); a truncated episode's last
    transition bootstraps from its next state like any other.  Sampling draws
    uniformly with replacement from ``generator``, so the same seed and the
    same insertions give the same batches.
    """

    def __init__(self, capacity: int, n_in: int, generator: torch.Generator) -> None:
        self.capacity = int(capacity)
        self.obs = torch.zeros(self.capacity, n_in)
        self.next_obs = torch.zeros(self.capacity, n_in)
        self.action = torch.zeros(self.capacity, dtype=torch.int64)
        self.reward = torch.zeros(self.capacity)
        self.terminated = torch.zeros(self.capacity)
        self.size = 0
        self.pos = 0
        self.gen = generator

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Append a batch of ``k`` transitions (arrays with leading dimension ``k``)."""
        k = len(action)
        idx = (self.pos + torch.arange(k)) % self.capacity
        self.obs[idx] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.next_obs[idx] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.action[idx] = torch.from_numpy(np.asarray(action, dtype=np.int64))
        self.reward[idx] = torch.from_numpy(np.asarray(reward, dtype=np.float32))
        self.terminated[idx] = torch.from_numpy(np.asarray(terminated, dtype=np.float32))
        self.pos = (self.pos + k) % self.capacity
        self.size = min(self.size + k, self.capacity)

    def sample(self, batch: int) -> tuple[torch.Tensor, ...]:
        """``(obs (B, n_in), action (B,), reward (B,), next_obs (B, n_in), terminated (B,))``."""
        idx = torch.randint(self.size, (batch,), generator=self.gen)
        return (self.obs.index_select(0, idx), self.action.index_select(0, idx), self.reward.index_select(0, idx),
                self.next_obs.index_select(0, idx), self.terminated.index_select(0, idx))
