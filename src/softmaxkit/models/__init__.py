"""Estimators (scikit-learn API), calibration, inference and distillation."""

from ._calibration import TemperatureScaler
from ._distillation import distillation_targets
from ._inference import MarginalEffects, PerfectSeparationWarning, Summary, summarize
from ._ovr import OneVsRestLogistic
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "SoftmaxRegression",
    "OneVsRestLogistic",
    "TemperatureScaler",
    "summarize",
    "Summary",
    "MarginalEffects",
    "PerfectSeparationWarning",
    "distillation_targets",
]
