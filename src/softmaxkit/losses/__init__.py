"""Cross-entropy losses and the linear softmax loss built on the primitives.

Each module adds its public names here with one import line and extends
``__all__``.
"""

__all__ = []
