"""Estimators (scikit-learn API), calibration and inference.

Each module adds its public names here with one import line and extends
``__all__``.
"""

from ._softmax_regression import SoftmaxRegression

__all__ = ["SoftmaxRegression"]
