import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist5k():
    from sparsescope.data import load

    return load("mnist5k")


SMALL_CONFIG = """
name = "{name}"
seed = {seed}
[data]
dataset = "mnist5k"
[model]
sizes = [784, 16, 16, 10]
[train]
epochs = 1
batch_size = 60
[prune]
rates = {{ h1 = 0.5, h2 = 0.3, out = 0.2 }}
rounds = {rounds}
"""


@pytest.fixture
def small_config(tmp_path):
    def make(name="small", seed=0, rounds=4, extra=""):
        p = tmp_path / f"{name}-{seed}-{rounds}.toml"
        p.write_text(SMALL_CONFIG.format(name=name, seed=seed, rounds=rounds) + extra)
        return p

    return make


def fast_settings(max_examples: int = 60):
    """Hypothesis settings for the property tests: bounded, reproducible, no deadline."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
