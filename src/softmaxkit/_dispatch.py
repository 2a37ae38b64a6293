"""Choice between the NumPy reference and the compiled kernels.

The calling layer (``special/``, ``losses/``) validates its input, then asks
``kernel(name, x)`` for a fast path; ``None`` means: use the reference.
``name`` is one of "softmax", "log_softmax", "logsumexp" (``x``: any ndim >=
1, reduced over the last axis, no mask, temperature already applied; the
callable maps ``x`` to the same-shape result, or ``x.shape[:-1]`` for
logsumexp) or "cross_entropy" (``x``: the ``(n, K)`` logits; the callable has
the signature and returns of ``losses._cross_entropy._ce_rows``).

The rule (this docstring is the one place it is written down)
--------------------------------------------------------------
``SOFTMAXKIT_BACKEND`` (read at every call) selects the mode:

- ``numpy``: always the reference.
- ``numba``: the kernel whenever it applies, whatever the size (the tests use
  this to run the kernels on small arrays); raises ImportError if numba is
  missing.
- ``auto`` (default, also when unset or empty): the kernel when it applies
  and ``x.size >= AUTO_MIN_SIZE`` (32768 elements), below which the call
  overhead and the reference's speed make the kernel not worthwhile; the
  reference when numba cannot be imported.

A kernel applies when ``name`` is known, ``x`` is float32 or float64 (other
dtypes were converted by the caller; float16 is computed in float32 there),
and ``x.ndim >= 1`` (``== 2`` for cross_entropy), and, for float64, rows (the
last axis) of at most ``MAX_ROW64`` (2**22) entries: the float64 kernels add
their exponentials in an int64 fixed-point accumulator
(``_kernels._softmax.split_sum_term``) that overflows past 2**23 terms near the
maximum, so longer rows take the reference (it adds in the extended type).
Threads are no
condition: the kernels are safe to call from many threads at once and in
forked children (see ``softmaxkit._kernels``).  Contiguity does not matter for the
choice: a non-C-contiguous ``x`` is copied to a C-contiguous one by the
kernel wrapper (one copy is far cheaper than the reference's temporaries).
Any other value of ``SOFTMAXKIT_BACKEND`` raises ValueError from every call that
asks for a kernel (the primitives and losses check it even where no kernel
applies, such as masked or other-axis calls).

Numba is imported on the first call that wants a kernel, never at ``import
softmaxkit``; the kernels are compiled on first use with ``cache=True`` (a
cold cache costs seconds once per machine; a warm one loads in a fraction
of a second, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["kernel", "backend", "AUTO_MIN_SIZE", "MAX_ROW64"]

AUTO_MIN_SIZE = 32768
MAX_ROW64 = 1 << 22
_BACKENDS = ("auto", "numpy", "numba")
_NAMES = ("softmax", "log_softmax", "logsumexp", "cross_entropy")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_kernels_module = None  # the imported softmaxkit._kernels, or False if numba is missing


def backend():
    """The backend requested by ``SOFTMAXKIT_BACKEND`` ("auto" by default)."""
    value = os.environ.get("SOFTMAXKIT_BACKEND", "auto").strip().lower() or "auto"
    if value not in _BACKENDS:
        raise ValueError(
            "The environment variable SOFTMAXKIT_BACKEND must be one of 'auto', 'numpy', "
            f"'numba'; got {value!r}."
        )
    return value


def _load():
    global _kernels_module
    if _kernels_module is None:
        try:
            from . import _kernels
        except ImportError:
            _kernels_module = False
        else:
            _kernels_module = _kernels
    return _kernels_module


def kernel(name, x):
    """Return a compiled implementation of ``name`` for the last-axis,
    unmasked array ``x`` (already divided by the temperature), or None when
    the reference path should run (the rule is in the module docstring)."""
    mode = backend()
    if mode == "numpy" or name not in _NAMES:
        return None
    dt = getattr(x, "dtype", None)
    ndim = getattr(x, "ndim", 0)
    if dt not in _FLOATS or ndim < 1 or (name == "cross_entropy" and ndim != 2):
        return None
    if dt == np.float64 and x.shape[-1] > MAX_ROW64:
        return None
    if mode == "auto" and x.size < AUTO_MIN_SIZE:
        return None
    mod = _load()
    if mod is False:
        if mode == "numba":
            raise ImportError(
                "SOFTMAXKIT_BACKEND=numba needs numba: pip install numba"
            )
        return None
    return mod.get(name)
