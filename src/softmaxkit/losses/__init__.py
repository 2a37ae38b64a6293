"""Cross-entropy losses and the linear softmax loss built on the primitives.

Each module adds its public names here with one import line and extends
``__all__``.
"""

from ._cross_entropy import cross_entropy, cross_entropy_and_grad, cross_entropy_hvp, one_hot
from ._fused import linear_cross_entropy
from ._linear import LinearSoftmaxLoss

__all__ = ["cross_entropy", "cross_entropy_and_grad", "cross_entropy_hvp", "one_hot",
           "LinearSoftmaxLoss", "linear_cross_entropy"]
