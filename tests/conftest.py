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


# a 2-layer MLP with a reinit control of round 1: for tests that run commands hundreds of times
TINY_CONFIG = """
name = "{name}"
seed = 0
[data]
dataset = "mnist5k"
[model]
sizes = [784, 8, 10]
[train]
epochs = 1
batch_size = 100
[prune]
rates = {{ h1 = 0.5, out = 0.2 }}
rounds = {rounds}
[controls]
kinds = ["reinit"]
rounds = [1]
"""


def make_tiny_run(root, name: str, rounds: int):
    """Run TINY_CONFIG under ``root/runs`` with the CLI; returns ``(config path, run folder)``."""
    from sparsescope import cli

    cfg = root / f"{name}.toml"
    cfg.write_text(TINY_CONFIG.format(name=name, rounds=rounds))
    assert cli.main(["run", str(cfg), "--runs-dir", str(root / "runs"), "--quiet"]) == 0
    (run,) = (root / "runs").iterdir()
    return cfg, run


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


@pytest.fixture(scope="session")
def mnist_slice(mnist5k):
    """Every 8th image of mnist5k (500 train, 125 test), still named mnist5k: for tests that
    run a command hundreds of times."""
    from sparsescope.data import make_dataset

    d = mnist5k
    return make_dataset("mnist5k", d.x_train[::8], d.y_train[::8], d.x_test[::8], d.y_test[::8], d.classes)


@pytest.fixture(scope="module")
def slice_loaded(mnist_slice):
    """While the module runs, loading "mnist5k" (by any command, in this process and its forked
    children) gives ``mnist_slice``."""
    import sparsescope.data
    import sparsescope.runs._lottery as lottery

    real = sparsescope.data.load
    fake = lambda name: mnist_slice if name == "mnist5k" else real(name)  # noqa: E731
    mp = pytest.MonkeyPatch()
    mp.setattr(sparsescope.data, "load", fake)
    mp.setattr(lottery, "load", fake)
    yield mnist_slice
    mp.undo()


@pytest.fixture
def adam_spy(monkeypatch):
    """Every ``_FusedAdam`` the trainers create, in order (to read their moments after a fit)."""
    from sparsescope.train import _fit

    seen = []

    class Spy(_fit._FusedAdam):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self)

    monkeypatch.setattr(_fit, "_FusedAdam", Spy)
    return seen
