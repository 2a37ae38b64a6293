"""softmaxkit: exact and fast softmax primitives, cross-entropy losses and
softmax regression.

The flat public API.  Importing softmaxkit imports NumPy only (plus the
pure-NumPy ``special`` and ``losses`` layers); estimators, metrics, model
files and optional features load lazily on first attribute access, so
``import softmaxkit`` never imports numba, scikit-learn, matplotlib, pandas,
pyarrow, dask or torch.
"""

from __future__ import annotations

from importlib import import_module

from . import losses as _losses
from . import special as _special
from .losses import *  # noqa: F403
from .special import *  # noqa: F403

__version__ = "0.1.0"

# public name -> module (relative to this package) that defines it; imported
# on first attribute access.
_LAZY = {
    "SoftmaxRegression": ".models",
    "OneVsRestLogistic": ".models",
    "TemperatureScaler": ".models",
    "summarize": ".models",
    "Summary": ".models",
    "PerfectSeparationWarning": ".models",
    "distillation_targets": ".models",
}
# sub-packages reachable as attributes after ``import softmaxkit``
_LAZY_MODULES = {"metrics", "io", "models", "solvers", "plotting", "cli", "distributed"}

__all__ = ["__version__", *_special.__all__, *_losses.__all__, *_LAZY]


def __getattr__(name):
    if name in _LAZY_MODULES:
        value = import_module(f".{name}", __name__)
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module 'softmaxkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | _LAZY_MODULES)
