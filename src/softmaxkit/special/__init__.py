"""Softmax-family primitives and their derivatives (pure NumPy reference)."""

from ._derivatives import log_softmax_vjp, softmax_jacobian, softmax_jvp, softmax_vjp
from ._sigmoid import log_sigmoid, sigmoid
from ._softmax import log_softmax, logsumexp, softmax, softmin

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmin",
    "softmax_jacobian",
    "softmax_vjp",
    "softmax_jvp",
    "log_softmax_vjp",
    "sigmoid",
    "log_sigmoid",
]
