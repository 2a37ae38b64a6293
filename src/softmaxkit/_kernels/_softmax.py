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
  accumulated in float64 (float64 input: ``x_j - m`` is corrected by its
  TwoSum rounding error, as in the reference; float32 input: everything is
  evaluated in float64 and each result rounded once to float32, see the
  float32 section below), so ``sum exp(x - m) = 1 + rest``; softmax is
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

from ._exp import expneg_f64_for_f32, fexpneg, fmaximum, like

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
    fewer than 2**23 terms per row cannot overflow: ``_dispatch.kernel`` sends
    longer float64 rows to the reference) and the remainders carry
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


def _rest_loop64(x, i, lo, hi, m):
    """``_rest`` of float64 ``x`` (inlined into ``_rest``, whose fast-math
    flags it gets)."""
    acc_hi = 0
    acc_lo = 0.0
    for j in range(lo, hi):
        s, err, e = shift_exp(x[i, j], m)
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
    return np.float64(acc_hi) * _UNFIX, acc_lo


def _rest_d(x, i, lo, hi, m):  # pragma: no cover - replaced by the overload inside numba
    raise NotImplementedError


@overload(_rest_d, inline="always")
def _ol_rest_d(x, i, lo, hi, m):
    return _rest_loop32 if x.dtype == types.float32 else _rest_loop64


@njit(cache=True, fastmath={"reassoc", "nsz"}, **_OPTS)
def _rest(x, i, lo, hi, m):
    """Sum of exp(x_j - m) over x_j != m on row ``i``, columns [lo, hi), as
    an unevaluated float64 pair ``(h, l)`` (float64 ``x``: see
    ``split_sum_term``, ``h`` is a multiple of 2**-40, exact below 2**13;
    float32 ``x``: ``h`` is 0, see ``_rest_loop32``)."""
    return _rest_d(x, i, lo, hi, m)


@njit(cache=True, **_OPTS)
def _count_max(x, i, lo, hi, m):
    """Count of x[i, j] == m on columns [lo, hi) (a separate pass over cached
    data is cheaper than counting inside the exp loop)."""
    cnt = 0
    for j in range(lo, hi):
        cnt += 1 if x[i, j] == m else 0
    return cnt


def _rest_store_loop64(x, out, i, lo, hi, m):
    """``_rest_store`` of float64 ``x`` (inlined into ``_rest_store``)."""
    acc_hi = 0
    acc_lo = 0.0
    for j in range(lo, hi):
        s, err, e = shift_exp(x[i, j], m)
        out[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
    return np.float64(acc_hi) * _UNFIX, acc_lo


def _rest_store_loop32(x, out, i, lo, hi, m):
    """``_rest_store`` of float32 ``x``: stores nothing (``_finish``
    recomputes the exponentials: storing them as float32 would round twice)."""
    return _rest_d(x, i, lo, hi, m)


def _rest_store_d(x, out, i, lo, hi, m):  # pragma: no cover - replaced inside numba
    raise NotImplementedError


@overload(_rest_store_d, inline="always")
def _ol_rest_store_d(x, out, i, lo, hi, m):
    return _rest_store_loop32 if x.dtype == types.float32 else _rest_store_loop64


@njit(cache=True, fastmath={"reassoc", "nsz"}, **_OPTS)
def _rest_store(x, out, i, lo, hi, m):
    """As ``_rest``; for float64 ``x`` also stores exp(x_j - m) in ``out[i,
    j]`` (float32: nothing is stored, ``_finish`` recomputes them)."""
    return _rest_store_d(x, out, i, lo, hi, m)


@njit(**_OPTS)
def _scale(out, i, lo, hi, c):
    outr = out[i, lo:hi]  # a view indexed from 0: see ``_softmax_store32``
    for j in range(outr.shape[0]):
        outr[j] = outr[j] * c


@njit(**_OPTS)
def _logsub(x, out, i, lo, hi, m, L):
    xr = x[i, lo:hi]
    outr = out[i, lo:hi]
    for j in range(xr.shape[0]):
        s, err, e = shift_exp_noexp(xr[j], m)
        outr[j] = (s - L) + err


@njit(**_OPTS)
def shift_exp_noexp(xj, m):
    """``(s, err, s)``: the TwoSum of ``xj - m`` as in ``shift_exp``, no exp."""
    s = xj - m
    bv = s - xj
    err = (xj - (s - bv)) - (m + bv)
    err = err if err == err else like(0.0, s)
    return s, err, s


# --------------------------------------------------------------------------
# float32: evaluated in float64, rounded once at the store
# --------------------------------------------------------------------------
# For float32 x_j and max m, ``x_j - m`` in float64 is exact unless their
# exponents are more than 29 apart; then its rounding error is at most
# 2**-53 |x_j - m|, a relative error of at most 2**-53 * 104 in exp(x_j - m)
# wherever that does not underflow float32 (x_j - m > -104): no TwoSum is
# needed.  The exp is ``expneg_f64_for_f32`` (relative error 2**-37.8), the
# sums are plain float64 sums (in any order, relative error at most K
# 2**-53 for K entries), and every result is one float64 expression rounded
# once to float32: within 0.5 + 2**-12 ulp of the exact value for rows of
# up to 2**16 entries (longer rows: at most K 2**-29 ulp more in the worst
# case), like the reference (which evaluates float32 input in float64 and
# rounds once).  Measured: 0.50005 ulp (tests/_kernels/test_softmax_kernels.py).


def _rest_loop32(x, i, lo, hi, m):
    """``_rest`` of float32 ``x`` (inlined into ``_rest``, which has the
    ``reassoc`` flag): ``(0.0, sum_{x_j != m} exp(x_j - m))``."""
    xr = x[i, lo:hi]  # 1-D views indexed from 0: see ``_softmax_store32``
    mm = np.float64(m)
    acc = 0.0
    for j in range(xr.shape[0]):
        s = np.float64(xr[j]) - mm
        e = expneg_f64_for_f32(s)
        acc += 0.0 if s == 0 else e
    return 0.0, acc


@njit(fastmath={"contract"}, **_OPTS)
def _softmax_store32(x, out, i, lo, hi, m, c):
    """``out[i, j] = float32(exp(x_j - m) * c)`` (float64 ``c``), the
    exponentials recomputed rather than stored as float32 by the sum pass
    (that would round twice).

    The loops of the float32 functions run over 1-D row views from 0: with
    ``x[i, j]`` for ``j`` in ``range(lo, hi)`` the index might be negative as
    far as LLVM knows (numba wraps negative indices), and the loop vectorises
    with gathers and scatters, 3-5x slower, wherever ``lo`` is not inlined
    as a constant."""
    xr = x[i, lo:hi]
    outr = out[i, lo:hi]
    mm = np.float64(m)
    for j in range(xr.shape[0]):
        outr[j] = np.float32(expneg_f64_for_f32(np.float64(xr[j]) - mm) * c)


@njit(**_OPTS)
def _logsub32(x, out, i, lo, hi, m, L):
    """``out[i, j] = float32((x_j - m) - L)`` in float64 (``L = log1p(rest)``)."""
    xr = x[i, lo:hi]
    outr = out[i, lo:hi]
    mm = np.float64(m)
    for j in range(xr.shape[0]):
        outr[j] = np.float32((np.float64(xr[j]) - mm) - L)


def _finish_softmax(x, out, i, lo, hi, m, rest):  # pragma: no cover - replaced inside numba
    raise NotImplementedError


@overload(_finish_softmax, inline="always")
def _ol_finish_softmax(x, out, i, lo, hi, m, rest):
    if x.dtype == types.float32:
        def impl32(x, out, i, lo, hi, m, rest):
            _softmax_store32(x, out, i, lo, hi, m, 1.0 / (1.0 + rest))
        return impl32

    def impl64(x, out, i, lo, hi, m, rest):
        _scale(out, i, lo, hi, like(1.0 / (1.0 + rest), x))
    return impl64


def _finish_log(x, out, i, lo, hi, m, rest):  # pragma: no cover - replaced inside numba
    raise NotImplementedError


@overload(_finish_log, inline="always")
def _ol_finish_log(x, out, i, lo, hi, m, rest):
    if x.dtype == types.float32:
        def impl32(x, out, i, lo, hi, m, rest):
            _logsub32(x, out, i, lo, hi, m, math.log1p(rest))
        return impl32

    def impl64(x, out, i, lo, hi, m, rest):
        _logsub(x, out, i, lo, hi, m, like(math.log1p(rest), x))
    return impl64


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
    """Write row ``i`` of a finite-max row on [lo, hi) (float64 softmax: out
    holds the exponentials, stored by ``_rest_store``; float32 softmax
    recomputes them)."""
    if kind == 0:
        _finish_softmax(x, out, i, lo, hi, m, rest)
    elif kind == 1:
        _finish_log(x, out, i, lo, hi, m, rest)


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


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _rest_buf32(x, buf, i, m):
    """``_rest_loop32`` of a whole row, also storing the float64 exponentials
    in ``buf`` (a row of scratch: cheaper than recomputing them)."""
    xr = x[i]
    mm = np.float64(m)
    acc = 0.0
    for j in range(xr.shape[0]):
        s = np.float64(xr[j]) - mm
        e = expneg_f64_for_f32(s)
        buf[j] = e
        acc += 0.0 if s == 0 else e
    return acc


@njit(**_OPTS)
def _scale_buf32(buf, out, i, c):
    outr = out[i]
    for j in range(outr.shape[0]):
        outr[j] = np.float32(buf[j] * c)


@njit(**_OPTS)
def _row32(x, out, i, kind, buf):
    """``_row`` for float32 ``x`` (``buf``: float64 scratch of one row)."""
    K = x.shape[1]
    m = _rowmax(x, i, 0, K)
    if not np.isfinite(m):
        _fix_row(x, out, i, kind, m)
        return
    if kind == 0:
        rest = _rest_buf32(x, buf, i, m) + (_count_max(x, i, 0, K, m) - 1)
        _scale_buf32(buf, out, i, 1.0 / (1.0 + rest))
        return
    h, l = _rest(x, i, 0, K, m)
    h = h + (_count_max(x, i, 0, K, m) - 1)
    if kind == 2:
        _lse_out(out, i, m, h, l)
    else:
        _finish(x, out, i, kind, m, h + l, 0, K)


def _rows_loop64(x, out, kind, lo, hi):
    for i in range(lo, hi):
        _row(x, out, i, kind)


def _rows_loop32(x, out, kind, lo, hi):
    buf = np.empty(x.shape[1] if kind == 0 else 0, dtype=np.float64)
    for i in range(lo, hi):
        _row32(x, out, i, kind, buf)


def _rows_d(x, out, kind, lo, hi):  # pragma: no cover - replaced by the overload inside numba
    raise NotImplementedError


@overload(_rows_d, inline="always")
def _ol_rows_d(x, out, kind, lo, hi):
    return _rows_loop32 if x.dtype == types.float32 else _rows_loop64


@njit(cache=True, **_OPTS)
def family_rows(x, out, kind, lo, hi):
    """softmax (kind 0), log_softmax (1) or logsumexp (2, into ``out[:, 0]``)
    of the rows ``lo:hi`` of ``x``."""
    _rows_d(x, out, kind, lo, hi)
