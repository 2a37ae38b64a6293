"""Softmax-family primitives and their derivatives (pure NumPy reference)."""

from ._softmax import log_softmax, logsumexp, softmax, softmin

__all__ = ["softmax", "log_softmax", "logsumexp", "softmin"]
