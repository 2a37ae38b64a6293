"""Metrics for probabilistic classifiers: calibration (ECE, reliability
curve) and proper scoring rules (log loss, Brier score).

``y`` is always an array of class indices into the columns of ``proba``.
"""

from ._calibration import expected_calibration_error, reliability_curve
from ._scoring import brier_score, log_loss

__all__ = ["expected_calibration_error", "reliability_curve", "log_loss", "brier_score"]
