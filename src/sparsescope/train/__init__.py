"""Training: ``fit(spec, params, masks, data, TrainConfig) -> TrainResult``."""

from ._fit import TrainConfig, TrainResult, evaluate_model, fit

__all__ = ["TrainConfig", "TrainResult", "evaluate_model", "fit"]
