"""softmaxkit: exact and fast softmax primitives, cross-entropy losses and
softmax regression.

The flat public API.  Importing softmaxkit imports NumPy and SciPy only;
estimators and optional features load lazily on first use.
"""

from __future__ import annotations

from importlib import import_module

from .special import log_softmax, logsumexp, softmax, softmin

__version__ = "0.1.0"

# name -> module that defines it, imported on first attribute access
_LAZY = {}

__all__ = ["__version__", "softmax", "log_softmax", "logsumexp", "softmin", *_LAZY]


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'softmaxkit' has no attribute {name!r}")
    value = getattr(import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
