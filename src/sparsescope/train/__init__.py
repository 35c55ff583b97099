"""Training: ``fit(spec, params, masks, data, TrainConfig) -> TrainResult``.

``TrainConfig`` needs no torch; the training code (and torch) loads on first use.
"""

from ._config import TRAIN_PATHS, TrainConfig

_LAZY = ("TrainResult", "evaluate_model", "fit", "training_path")


def __getattr__(name: str):
    if name in _LAZY:
        from . import _fit

        return getattr(_fit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TRAIN_PATHS", "TrainConfig", *_LAZY]
