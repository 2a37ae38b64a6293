"""Plots (matplotlib, imported lazily): loss curve, confusion matrix,
reliability diagram, softmax vs temperature, softmax Jacobian.

Every function takes an optional Matplotlib ``ax`` and returns the Axes it
drew on, so they compose in notebooks; save with ``ax.figure.savefig(path)``.
"""

from ._plots import (
    plot_confusion_matrix,
    plot_loss_curve,
    plot_reliability_diagram,
    plot_softmax_jacobian,
    plot_softmax_temperature,
)

__all__ = [
    "plot_loss_curve",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_softmax_temperature",
    "plot_softmax_jacobian",
]
