"""softmax, log_softmax and logsumexp over the last axis of a C-contiguous
2-D array (numba).

One driver, ``family_rows(x, out, kind, lo, hi)``, serves the three
functions (``kind`` 0: softmax, 1: log_softmax, 2: logsumexp into ``out`` of
shape ``(n, 1)``), so only two signatures (float32, float64) are compiled.
Every function here is ``nogil``: ``softmaxkit._kernels`` runs blocks of rows
(or, for a few very wide rows, blocks of columns: ``_rowmax``, ``_rest``,
``_rest_store``, ``_finish``) on its own thread pool.

Per row, with ``m = max(x)`` (NaN-propagating):

- finite ``m``: ``rest = sum_{x_j != m} exp(x_j - m) + (count(x_j == m) - 1)``
  accumulated in float64 (``x_j - m`` is corrected by its TwoSum rounding
  error, as in the reference), so ``sum exp(x - m) = 1 + rest``; softmax is
  ``exp(x - m) / (1 + rest)``, log_softmax ``(x - m) - log1p(rest)`` (no
  cancellation: both terms are <= 0), logsumexp ``m + log1p(rest)`` -- the
  same formulas as the NumPy reference in ``softmaxkit.special._softmax``;
- ``m`` NaN, ``+inf`` or ``-inf``: the edge-case table of DESIGN.md section 2
  (``_fix_row``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._exp import fexpneg, fmaximum, like

_OPTS = {"error_model": "numpy", "nogil": True}


@njit(cache=True, **_OPTS)
def _rowmax(x, i, lo, hi):
    """NaN-propagating max of ``x[i, lo:hi]`` (-inf when empty)."""
    m = like(-np.inf, x)
    for j in range(lo, hi):
        m = fmaximum(m, x[i, j])
    return m


@njit(fastmath={"contract"}, **_OPTS)
def shift_exp(xj, m):
    """``(s, err, e)``: ``s = fl(xj - m)``, its rounding error ``err`` (TwoSum,
    ``xj - m == s + err`` exactly; 0 where not finite) and ``e = exp(s) * (1 +
    err)``, which is ``exp(xj - m)`` to within the exp's own error.

    Compiled without the ``reassoc`` flag: callers with ``reassoc`` inline it
    (LLVM keeps the flags of each instruction), so the TwoSum survives.  For
    finite ``m`` the error is finite unless ``xj = -inf`` (NaN then: 0).
    """
    s = xj - m
    bv = s - xj
    err = (xj - (s - bv)) - (m + bv)
    err = err if err == err else like(0.0, s)
    p = fexpneg(s)
    return s, err, p + p * err


_FIX = 2.0**40  # fixed-point scale of the exact part of the sums
_UNFIX = 2.0**-40


def split_sum_term(e):  # pragma: no cover - replaced by the overload inside numba
    return 0, float(e)


@overload(split_sum_term, inline="always")
def _ol_split_sum_term(e):
    """``(hi, lo)``: ``e`` as an int64 fixed-point part ``hi * 2**-40`` plus a
    float64 remainder ``lo`` in [0, 2**-40).

    The sums of the exponentials (each in [0, 1]) are reductions that LLVM
    may reorder (the ``reassoc`` flag, needed to vectorise them).  For
    float64, the fixed-point parts add up exactly in any order (integers;
    fewer than 2**23 terms per row cannot overflow) and the remainders carry
    at most ``n * 2**-40`` of the total, so the reordered sum is within
    about half an ulp of the exact one (the reference sums in the x87
    extended type for the same reason).  No floating-point identity can
    remove the float/int conversions, whatever the fast-math flags.  For
    float32 input a plain float64 sum is already far more accurate than
    needed: ``hi`` is 0 there.
    """
    if e == types.float32:
        return lambda e: (0, np.float64(e))

    def impl(e):
        h = np.int64(e * _FIX)
        return h, e - np.float64(h) * _UNFIX

    return impl


@njit(cache=True, fastmath={"reassoc", "nsz"}, **_OPTS)
def _rest(x, i, lo, hi, m):
    """Sum of exp(x_j - m) over x_j != m on row ``i``, columns [lo, hi), as
    an unevaluated float64 pair ``(h, l)`` (see ``split_sum_term``; ``h`` is
    a multiple of 2**-40, exact below 2**13)."""
    acc_hi = 0
    acc_lo = 0.0
    for j in range(lo, hi):
        s, err, e = shift_exp(x[i, j], m)
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
    return np.float64(acc_hi) * _UNFIX, acc_lo


@njit(cache=True, **_OPTS)
def _count_max(x, i, lo, hi, m):
    """Count of x[i, j] == m on columns [lo, hi) (a separate pass over cached
    data is cheaper than counting inside the exp loop)."""
    cnt = 0
    for j in range(lo, hi):
        cnt += 1 if x[i, j] == m else 0
    return cnt


@njit(cache=True, fastmath={"reassoc", "nsz"}, **_OPTS)
def _rest_store(x, out, i, lo, hi, m):
    """As ``_rest``, also storing exp(x_j - m) in ``out[i, j]``."""
    acc_hi = 0
    acc_lo = 0.0
    for j in range(lo, hi):
        s, err, e = shift_exp(x[i, j], m)
        out[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
    return np.float64(acc_hi) * _UNFIX, acc_lo


@njit(**_OPTS)
def _scale(out, i, lo, hi, c):
    for j in range(lo, hi):
        out[i, j] = out[i, j] * c


@njit(**_OPTS)
def _logsub(x, out, i, lo, hi, m, L):
    for j in range(lo, hi):
        s, err, e = shift_exp_noexp(x[i, j], m)
        out[i, j] = (s - L) + err


@njit(**_OPTS)
def shift_exp_noexp(xj, m):
    """``(s, err, s)``: the TwoSum of ``xj - m`` as in ``shift_exp``, no exp."""
    s = xj - m
    bv = s - xj
    err = (xj - (s - bv)) - (m + bv)
    err = err if err == err else like(0.0, s)
    return s, err, s


@njit(cache=True, **_OPTS)
def _fix_row(x, out, i, kind, m):
    """Edge-case table for a row whose max ``m`` is NaN, +inf or -inf."""
    K = x.shape[1]
    if kind == 2:
        out[i, 0] = m  # NaN -> NaN, +inf -> +inf, -inf (all -inf or empty) -> -inf
        for j in range(1, out.shape[1]):
            out[i, j] = 0
        return
    if m == np.inf:
        c = 0
        for j in range(K):
            if x[i, j] == np.inf:
                c += 1
        if kind == 0:
            hit = like(1.0 / c, x)
            miss = like(0.0, x)
        else:
            hit = like(-math.log(c), x)
            miss = like(-np.inf, x)
        for j in range(K):
            out[i, j] = hit if x[i, j] == np.inf else miss
    else:  # NaN anywhere, or every entry -inf: the whole row is NaN
        for j in range(K):
            out[i, j] = like(np.nan, x)


@njit(cache=True, **_OPTS)
def _finish(x, out, i, kind, m, rest, lo, hi):
    """Write row ``i`` of a finite-max row on [lo, hi) (softmax: out holds exp)."""
    if kind == 0:
        _scale(out, i, lo, hi, like(1.0 / (1.0 + rest), x))
    elif kind == 1:
        _logsub(x, out, i, lo, hi, m, like(math.log1p(rest), x))


@njit(**_OPTS)
def _row(x, out, i, kind):
    K = x.shape[1]
    m = _rowmax(x, i, 0, K)
    if not np.isfinite(m):
        _fix_row(x, out, i, kind, m)
        return
    if kind == 0:
        h, l = _rest_store(x, out, i, 0, K, m)
    else:
        h, l = _rest(x, i, 0, K, m)
    h = h + (_count_max(x, i, 0, K, m) - 1)
    if kind == 2:
        _lse_out(out, i, m, h, l)
    else:
        _finish(x, out, i, kind, m, h + l, 0, K)


@njit(cache=True, **_OPTS)
def _lse_out(out, i, m, h, l):
    """logsumexp of a finite-max row: ``m + log1p(rest)``; with a 4-column
    ``out`` (float64 input) also the parts ``(m, h, l)``, ``rest = h + l``,
    for the caller to redo the rows where the result is much smaller than
    ``m`` (cancellation) in extended precision."""
    if out.shape[1] == 4:
        out[i, 0] = m + math.log1p(h + l)
        out[i, 1] = m
        out[i, 2] = h
        out[i, 3] = l
    else:
        out[i, 0] = like(m + math.log1p(h + l), out)


@njit(cache=True, **_OPTS)
def family_rows(x, out, kind, lo, hi):
    """softmax (kind 0), log_softmax (1) or logsumexp (2, into ``out[:, 0]``)
    of the rows ``lo:hi`` of ``x``."""
    for i in range(lo, hi):
        _row(x, out, i, kind)
