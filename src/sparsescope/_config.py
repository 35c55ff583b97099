"""Experiment configs: a TOML file -> :class:`ExperimentConfig`, checked field by field.

Unknown keys, wrong types and impossible values raise :class:`ConfigError`
naming the key, so a typo never silently runs the defaults.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ._checks import MAX_SEED, need_int
from ._errors import ConfigError
from ._untrusted import check_name, read_limited, term
from .models import MLPSpec, SequentialSpec, sequential_from_table
from .prune import PruneConfig
from .rl import DQNConfig, EnvConfig
from .train import TrainConfig

CONTROL_KINDS = ("reinit", "random-mask")


@dataclass(frozen=True)
class ControlsConfig:
    """Lottery-ticket controls to train after the main rounds.

    ``kinds``: ``reinit`` (same mask, fresh random initialisation) and/or
    ``random-mask`` (random mask, same per-layer counts, the run's initial
    weights); ``rounds``: which rounds get them (empty: none).
    """

    kinds: tuple[str, ...] = ()
    rounds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        kinds = tuple(self.kinds)
        bad = [k for k in kinds if k not in CONTROL_KINDS]
        if bad:
            raise ConfigError(f"unknown control kind(s) {bad} (expected {', '.join(CONTROL_KINDS)})")
        rounds = tuple(self.rounds)
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in rounds):
            raise ConfigError(f"controls.rounds must be non-negative integers, got {list(rounds)}")
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "rounds", rounds)


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    dataset: str = "mnist5k"
    model: MLPSpec | SequentialSpec = field(default_factory=MLPSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=lambda: PruneConfig(rates={"h1": 0.2, "h2": 0.2, "out": 0.1}, target_density=0.02))
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    env: EnvConfig | None = None  # set: a reinforcement-learning run ([env] + [rl]) instead of a dataset
    rl: DQNConfig | None = None

    def __post_init__(self) -> None:
        if self.env is not None and self.rl is None:
            object.__setattr__(self, "rl", DQNConfig())
        if self.rl is not None and self.env is None:
            raise ConfigError("[rl] needs an [env] section naming the environment")
        check_name("name", self.name, ConfigError)
        need_int("seed", self.seed, 0, MAX_SEED)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"data.dataset must be a dataset name, got {self.dataset!r}")
        self.prune.check_layers(list(self.model.layer_names))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.model, SequentialSpec):
            d["model"] = self.model.to_dict()
        else:
            d["model"]["sizes"] = list(self.model.sizes)
        d["train"]["betas"] = list(self.train.betas)
        d["prune"]["rates"] = dict(self.prune.rates)
        d["prune"]["layers"] = None if self.prune.layers is None else list(self.prune.layers)
        if self.prune.targets:  # only when set, so configs without targets keep their run ids
            d["prune"]["targets"] = dict(self.prune.targets)
        else:
            d["prune"].pop("targets", None)
        d["controls"] = {"kinds": list(self.controls.kinds), "rounds": list(self.controls.rounds)}
        if self.env is None:  # dataset runs keep the dict (and so the run id) they always had
            d.pop("env")
            d.pop("rl")
        return d

    @property
    def is_rl(self) -> bool:
        return self.env is not None

    def identity(self) -> dict[str, Any]:
        """The part of the config that decides the rounds' masks and weights.

        Leaves out ``train.threads`` (speed only) and ``controls`` (trained
        after the rounds), so changing them resumes the same run.
        """
        d = self.to_dict()
        d["train"] = {k: v for k, v in d["train"].items() if k != "threads"}
        if self.is_rl:
            d.pop("train")  # an RL run trains by [rl]; only train.threads applies, and it is speed only
        d.pop("controls")
        return d

    @property
    def digest(self) -> str:
        """8 hex digits of SHA-256 over :meth:`identity`: part of the run id."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.digest}"


def _section(doc: dict, key: str, cls: type, rename: dict[str, str] | None = None) -> dict[str, Any]:
    raw = doc.get(key, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{key}] must be a table")
    allowed = {f.name for f in fields(cls)}
    rename = rename or {}
    out = {}
    for k, v in raw.items():
        name = rename.get(k, k)
        if name not in allowed:
            raise ConfigError(f"unknown key {key}.{k} (allowed: {', '.join(sorted(allowed))})")
        out[name] = v
    return out


def from_dict(doc: dict[str, Any]) -> ExperimentConfig:
    """Build and check a config from parsed TOML (see configs/*.toml)."""
    top = {"name", "seed", "data", "model", "train", "prune", "controls", "env", "rl"}
    for k in doc:
        if k not in top:
            raise ConfigError(f"unknown top-level key {k!r} (allowed: {', '.join(sorted(top))})")
    if "env" in doc or "rl" in doc:
        return _rl_from_dict(doc)
    data = doc.get("data", {})
    if not isinstance(data, dict) or set(data) - {"dataset"}:
        raise ConfigError("[data] takes one key: dataset")
    dataset = data.get("dataset", "mnist5k")
    if not isinstance(dataset, str):
        raise ConfigError(f"data.dataset must be a string, got {dataset!r}")
    try:
        model = _model(doc)
        tr = _section(doc, "train", TrainConfig)
        if "betas" in tr:
            tr["betas"] = tuple(tr["betas"])
        train = TrainConfig(**tr)
        return ExperimentConfig(
            name=doc.get("name", "experiment"),
            seed=doc.get("seed", 0),
            dataset=dataset,
            model=model,
            train=train,
            prune=_prune(doc, model),
            controls=ControlsConfig(**_section(doc, "controls", ControlsConfig)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad config value: {exc}") from None


def _model(doc: dict[str, Any], default: MLPSpec | None = None) -> MLPSpec | SequentialSpec:
    table = doc.get("model", {})
    if isinstance(table, dict) and table.get("kind") == "sequential":
        if default is not None:
            raise ConfigError("an RL run takes an MLP model (model.sizes); model.kind 'sequential' is for datasets")
        return sequential_from_table(table)
    raw = _section(doc, "model", MLPSpec)
    if default is not None and "sizes" not in raw:
        raw["sizes"] = default.sizes
    return MLPSpec(**{k: (tuple(v) if k == "sizes" and isinstance(v, list) else v) for k, v in raw.items()})


def _rl_from_dict(doc: dict[str, Any]) -> ExperimentConfig:
    """An RL config: ``[env]`` and ``[rl]`` instead of ``[data]``; ``[train]`` takes only ``threads``."""
    if "env" not in doc:
        raise ConfigError("[rl] needs an [env] section naming the environment")
    if "data" in doc:
        raise ConfigError("a config with [env] trains on the environment; remove its [data] section")
    try:
        env = EnvConfig(**_section(doc, "env", EnvConfig))
        rl = DQNConfig(**_section(doc, "rl", DQNConfig))
        tr = _section(doc, "train", TrainConfig)
        other = sorted(set(tr) - {"threads"})
        if other:
            raise ConfigError(f"train.{other[0]} does not apply to an RL run (set it in [rl]); [train] takes only threads")
        info = env.info
        model = _model(doc, MLPSpec((len(info.inputs), 64, 64, len(info.actions))))
        return ExperimentConfig(
            name=doc.get("name", "experiment"),
            seed=doc.get("seed", 0),
            dataset=env.name,
            model=model,
            train=TrainConfig(**tr),
            prune=_prune(doc, model),
            controls=ControlsConfig(**_section(doc, "controls", ControlsConfig)),
            env=env,
            rl=rl,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad config value: {exc}") from None


def _prune(doc: dict[str, Any], model: MLPSpec | SequentialSpec) -> PruneConfig:
    """The [prune] section, with the defaults of the model's layers."""
    pr = _section(doc, "prune", PruneConfig)
    strategy = pr.get("strategy", "layerwise")
    unused = [k for k in (("rate", "layers") if strategy == "layerwise" else ("rates",)) if k in pr]
    if unused:
        raise ConfigError(f"prune.{unused[0]} does not apply to strategy {strategy!r}")
    if "rates" in pr and not isinstance(pr["rates"], dict):
        raise ConfigError("prune.rates must be a table of layer = rate")
    if "layers" in pr and pr["layers"] is not None:
        pr["layers"] = tuple(pr["layers"])
    if "rates" not in pr and pr.get("strategy", "layerwise") == "layerwise":
        pr["rates"] = {"h1": 0.2, "h2": 0.2, "out": 0.1} if model.layer_names == ("h1", "h2", "out") else {}
    if "targets" in pr and not isinstance(pr["targets"], dict):
        raise ConfigError("prune.targets must be a table of layer = kept count (integer) or density (float)")
    if "rounds" not in pr and "target_density" not in pr and not pr.get("targets"):
        pr["target_density"] = 0.02
    return PruneConfig(**pr)


def from_manifest(manifest: dict[str, Any]) -> ExperimentConfig:
    """The config a run was made with, from its manifest (``to_dict`` form)."""
    try:
        d = manifest["config"]
        doc = {"name": d["name"], "seed": d["seed"], "data": {"dataset": d["dataset"]},
               "model": d["model"], "train": d["train"], "controls": d.get("controls", {})}
        if d.get("env") is not None:
            doc.pop("data")
            doc.update(env=d["env"], rl=d["rl"], train={"threads": d["train"]["threads"]})
        doc["prune"] = {k: v for k, v in d["prune"].items() if v is not None}
        if doc["prune"].get("strategy") == "global":
            doc["prune"].pop("rates", None)
        else:
            doc["prune"].pop("rate", None)
        return from_dict(doc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"the run's manifest holds a malformed config ({type(exc).__name__}: {exc})") from None


CONFIG_LIMIT = 1 << 20  # a config is a few hundred bytes; a megabyte is plenty


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Parse a TOML file of at most 1 MiB; a missing, oversized or malformed file (including
    nesting deeper than the parser's stack) raises ConfigError naming ``what``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file {term(path)} does not exist")
    raw = read_limited(path, CONFIG_LIMIT, what, ConfigError)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {term(path)} is not valid TOML: {term(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{what} {term(path)} is nested too deeply") from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a TOML config; a missing, malformed, oversized or empty file raises ConfigError.

    An empty file (or one with only comments) is an error rather than a silent
    run of the defaults: it is far more often a truncated or wrong file.
    """
    doc = read_toml(path, "config")
    if not doc:
        raise ConfigError(f"config {term(path)} is empty; it must set at least a name "
                          "(start from configs/mnist-mlp.toml)")
    return from_dict(doc)
