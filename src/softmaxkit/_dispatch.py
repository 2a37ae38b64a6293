"""Choice between the NumPy reference and the compiled kernels.

The calling layer (``special/``, ``losses/``) validates its input, then asks
``kernel(name, x)`` for a fast path.  ``None`` means: use the reference.

The rule lives here and nowhere else (it is filled in by the kernels work,
issue #6); until then every call takes the reference path.  The environment
variable ``SOFTMAXKIT_BACKEND=numpy`` always forces the reference path.
"""

from __future__ import annotations

import os

__all__ = ["kernel", "backend"]


def backend():
    """The backend requested by ``SOFTMAXKIT_BACKEND`` ("auto" by default)."""
    return os.environ.get("SOFTMAXKIT_BACKEND", "auto").strip().lower() or "auto"


def kernel(name, x):
    """Return a compiled implementation of ``name`` for the 2-D-or-more,
    last-axis, unmasked array ``x`` (already divided by the temperature),
    or None when the reference path should run."""
    return None
