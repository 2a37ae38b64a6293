"""Compiled fast paths (numba) for the softmax family and cross-entropy.

Private: the calling layers reach these only through
``softmaxkit._dispatch.kernel``, which imports this package on the first call
that wants a kernel (``import softmaxkit`` never imports numba).

``get(name)`` returns a Python callable with the contract of
``_dispatch.kernel``: ``softmax``/``log_softmax``/``logsumexp`` take a float32 or
float64 array (any ndim >= 1, last axis) and ``cross_entropy`` has exactly the
signature and returns of ``losses._cross_entropy._ce_rows``.

Threads.  The compiled functions are serial, ``nogil`` and ``cache=True``;
this module runs them on blocks of rows (or, for fewer rows than threads,
blocks of columns of each row) on softmaxkit's private thread pool
(``softmaxkit._pool``: ``n_threads() - 1`` workers plus the calling
thread).  That choice, instead of numba's ``parallel=True``/``prange``, is
deliberate:

- no numba threading layer is ever started, so there is nothing to abort
  when several Python threads (Dask's threaded scheduler, ``distributed``
  workers with ``processes=False``) call kernels at once -- numba's
  "workqueue" layer aborts the process then -- and nothing to kill a child
  forked after the parent used GNU OpenMP (numba's "omp" layer does);
  after a fork the child simply builds a new pool;
- serial kernels compile in about half the time of the ``prange`` versions,
  which matters for the first call on a cold cache.

``n_threads()`` is the package's thread rule (``softmaxkit._pool.max_threads``:
the CPUs, capped by BLAS's thread count as threadpoolctl sees it), further
capped by ``NUMBA_NUM_THREADS``.

Rows.  Rows of at most ``_narrow.NARROW_MAX`` (48) entries go to the
narrow-row kernels of ``_narrow.py`` (a tile of rows transposed so that each
SIMD lane holds one row; softmax family and cross-entropy with labels),
longer rows to the row kernels of ``_softmax.py`` and ``_cross_entropy.py``;
both follow the same formulas, accuracy scheme and edge-case table.  float32
input is evaluated in float64 and rounded once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
import numpy as np


def _invalidate_stale_cache():
    """Drop numba's on-disk cache when any kernel source changed.

    numba keys a cached function on its own file only: after an edit of
    ``_exp.py`` the cached ``family_rows`` of ``_softmax.py`` would still hold
    the old (inlined) exp.  A digest of all sources stored next to the cache
    detects that; the cache is then cleared and rebuilt on first use.
    """
    here = Path(__file__).parent
    cache_root = os.environ.get("NUMBA_CACHE_DIR")
    cache = here / "__pycache__" if not cache_root else None
    if cache is None or not cache.is_dir():
        return
    digest = hashlib.sha256()
    for src in sorted(here.glob("*.py")):
        digest.update(src.name.encode())
        digest.update(src.read_bytes())
    stamp = cache / "softmaxkit-kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # read-only install: numba falls back to its user cache dir
        pass


_invalidate_stale_cache()

from .. import _pool  # noqa: E402
from .._pool import run_tasks as _run_tasks  # noqa: E402
from ._cross_entropy import ce_labels, ce_probs  # noqa: E402
from ._softmax import (  # noqa: E402
    _count_max,
    _finish,
    _fix_row,
    _lse_out,
    _rest,
    _rest_store,
    _rowmax,
    family_rows,
)

__all__ = ["get", "n_threads"]

# below this many elements a call runs in the calling thread only
_MIN_PARALLEL = 1 << 15
# rows at least this wide are split into column blocks when rows < threads
_MIN_WIDE = 1 << 14

def n_threads():
    """Threads a kernel call uses: ``_pool.max_threads()``, at most
    ``NUMBA_NUM_THREADS``."""
    return max(1, min(int(numba.config.NUMBA_NUM_THREADS), _pool.max_threads()))


def _bounds(n, parts):
    """``parts`` near-equal ``(lo, hi)`` ranges covering ``range(n)``."""
    edges = np.linspace(0, n, parts + 1).round().astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(parts) if edges[i + 1] > edges[i]]


def _row_tasks(n, K):
    if n * K < _MIN_PARALLEL or n <= 1:
        return [(0, n)]
    T = n_threads()
    return [(0, n)] if T == 1 else _bounds(n, min(T, n))


def _rows(x):
    """C-contiguous, writeable 2-D view (or copy) of ``x``, last axis as columns.

    Read-only input is copied so that it never needs a second compiled
    signature."""
    K = x.shape[-1]
    n = int(np.prod(x.shape[:-1], dtype=np.int64))
    x2 = np.ascontiguousarray(x).reshape(n, K)
    if not x2.flags.writeable:
        x2 = x2.copy()
    return x2


def _family(x2, out, kind):
    n, K = x2.shape
    T = n_threads() if K >= _MIN_WIDE else 1
    if T > 1 and 0 < n < T:
        for i in range(n):
            _wide_row(x2, out, i, kind, T)
        return
    from . import _narrow  # rows of <= NARROW_MAX entries: several rows per SIMD vector

    fn = _narrow.narrow_rows if 0 < K <= _narrow.NARROW_MAX else family_rows
    _run_tasks(fn, [(x2, out, kind, lo, hi) for lo, hi in _row_tasks(n, K)])


def _wide_row(x, out, i, kind, T):
    """Row ``i`` of a few very wide rows, its columns split over the threads."""
    cols = _bounds(x.shape[1], T)
    ms = np.array(_run_tasks(_rowmax, [(x, i, lo, hi) for lo, hi in cols]))
    m = x.dtype.type(np.max(ms))  # NaN-propagating
    if not np.isfinite(m):
        _fix_row(x, out, i, kind, m)
        return
    if kind == 0:
        parts = _run_tasks(_rest_store, [(x, out, i, lo, hi, m) for lo, hi in cols])
    else:
        parts = _run_tasks(_rest, [(x, i, lo, hi, m) for lo, hi in cols])
    cnt = sum(_run_tasks(_count_max, [(x, i, lo, hi, m) for lo, hi in cols]))
    h = float(np.sum([p[0] for p in parts], dtype=np.longdouble) + (cnt - 1))
    lo_part = float(np.sum([p[1] for p in parts]))
    if kind == 2:
        _lse_out(out, i, m, h, lo_part)
        return
    rest = h + lo_part
    _run_tasks(_finish, [(x, out, i, kind, m, rest, lo, hi) for lo, hi in cols])


def softmax(x):
    x2 = _rows(x)
    out = np.empty_like(x2)
    _family(x2, out, 0)
    return out.reshape(x.shape)


def log_softmax(x):
    x2 = _rows(x)
    out = np.empty_like(x2)
    _family(x2, out, 1)
    return out.reshape(x.shape)


def logsumexp(x):
    x2 = _rows(x)
    if x2.dtype == np.float32:
        out = np.empty((x2.shape[0], 1), dtype=x2.dtype)
        _family(x2, out, 2)
        return out.reshape(x.shape[:-1])
    # float64: the kernel returns (result, m, h, l) per row, rest = h + l.
    # Where |result| < |m| the sum m + log1p(rest) cancels and is redone in
    # the extended type (where the platform has one), as the reference does.
    parts = np.empty((x2.shape[0], 4), dtype=np.float64)
    _family(x2, parts, 2)
    res = parts[:, 0]
    m = parts[:, 1]
    redo = np.isfinite(res) & (np.abs(res) < np.abs(m))
    if redo.any():
        wide = np.longdouble
        p = parts[redo]
        res[redo] = (p[:, 1].astype(wide) + np.log1p(p[:, 2].astype(wide) + p[:, 3])).astype(
            np.float64)
    return np.ascontiguousarray(res).reshape(x.shape[:-1])


def cross_entropy(z, target, weight=None, ignore_index=None, label_smoothing=0.0,
                  need_grad=True, *, overwrite_z=False, serial=False):
    """Compiled twin of ``softmaxkit.losses._cross_entropy._ce_rows``.

    ``overwrite_z=True`` (an extension used by ``linear_cross_entropy``) writes
    the gradient into ``z`` itself (C-contiguous, writeable) and returns it;
    ``serial=True`` runs in the calling thread only (its caller runs blocks
    in several threads).
    """
    inplace = bool(overwrite_z and need_grad and z.flags.c_contiguous and z.flags.writeable
                   and z.ndim == 2)
    if inplace:
        grad = z
    else:
        z = _rows(z)
        grad = None
    n, K = z.shape
    dt = z.dtype
    w = np.ones(K, dtype=dt) if weight is None else np.array(weight, dtype=dt, order="C")
    loss = np.empty(n, dtype=dt)
    wsum = np.empty(n, dtype=dt)
    if grad is None:
        grad = np.empty((n, K), dtype=dt) if need_grad else z  # z is never written then
    eps = float(label_smoothing)
    need = bool(need_grad)
    target = np.asarray(target)
    tasks = [(0, n)] if serial else _row_tasks(n, K)
    if target.ndim == 1:
        y = np.array(target, dtype=np.intp, order="C")
        has_ignore = ignore_index is not None
        ign = int(ignore_index) if has_ignore else 0
        wtot = float(np.sum(w, dtype=np.float64))
        from . import _narrow  # rows of <= NARROW_MAX classes: several rows per SIMD vector

        fn = _narrow.ce_labels_narrow if 0 < K <= _narrow.NARROW_MAX else ce_labels
        _run_tasks(fn, [(z, y, w, wtot, ign, has_ignore, eps, loss, wsum, grad, need,
                         inplace, lo, hi) for lo, hi in tasks])
    else:
        t = np.array(target, dtype=dt, order="C")
        _run_tasks(ce_probs, [(z, t, w, eps, loss, wsum, grad, need, inplace, lo, hi)
                              for lo, hi in tasks])
    return loss, wsum, (grad if need_grad else None)


_KERNELS = {
    "softmax": softmax,
    "log_softmax": log_softmax,
    "logsumexp": logsumexp,
    "cross_entropy": cross_entropy,
}


def get(name):
    """The compiled implementation of ``name``, or None if there is none."""
    return _KERNELS.get(name)
