"""Cross-entropy forward and gradient in one pass over the logits (numba).

The twin of ``softmaxkit.losses._cross_entropy._ce_rows`` (contract 1): per
row, with ``m = max(z)``, ``rest`` and ``L = log1p(rest)`` as in the softmax
kernels (so ``-log_softmax(z)_j = (m - z_j) + L``), and the per-class
coefficients ``a_j`` of the loss ``-sum_j a_j log_softmax(z)_j``:

- labels: ``a_j = (1 - eps) w_y [j == y] + eps w_j / K``;
- probabilities: ``a_j = w_j ((1 - eps) t_j + eps / K)``;

the loss is ``C L + sum_{a_j != 0} a_j (m - z_j)`` with ``C = sum_j a_j``
(every term >= 0: no cancellation; ``0 * log 0 = 0``) and the gradient
``C softmax(z) - a``.  float64: the exponentials are computed once, stored
in the gradient row, then scaled.  Rows whose max is NaN, +inf or -inf
follow the reference's edge-case semantics (``_nonfinite_row``).  Sums are
in float64.
float32 logits are evaluated entirely in float64 (the float32 section
below), every loss and gradient entry rounded once to float32.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._exp import expneg_f64_for_f32, like
from ._softmax import _UNFIX, _count_max, _rowmax, shift_exp, split_sum_term

_OPTS = {"error_model": "numpy", "nogil": True}


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_labels(z, g, i, m, w, store):
    """One pass: exp stored in g (if store); returns (acc, S2) where
    S2 = sum_{w_j != 0} w_j (m - z_j)."""
    acc_hi = 0
    acc_lo = 0.0
    s2 = 0.0
    for j in range(z.shape[1]):
        s, err, e = shift_exp(z[i, j], m)
        if store:
            g[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
        wj = np.float64(w[j])
        s2 += 0.0 if wj == 0 else -wj * np.float64(s)
    return np.float64(acc_hi) * _UNFIX + acc_lo, s2


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_labels_inplace(z, i, m, w):
    """``_pass_labels`` storing the exponentials over ``z`` itself.

    A separate function, not ``_pass_labels(z, z, ...)``: with two array
    arguments that overlap, LLVM's runtime alias check sends the loop to its
    scalar version (about 4x slower); ``z[i, j] = f(z[i, j])`` vectorises."""
    acc_hi = 0
    acc_lo = 0.0
    s2 = 0.0
    for j in range(z.shape[1]):
        s, err, e = shift_exp(z[i, j], m)
        z[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
        wj = np.float64(w[j])
        s2 += 0.0 if wj == 0 else -wj * np.float64(s)
    return np.float64(acc_hi) * _UNFIX + acc_lo, s2


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_probs_inplace(z, t, i, m, w, c1, c0):
    """``_pass_probs`` storing the exponentials over ``z`` (see
    ``_pass_labels_inplace``)."""
    acc_hi = 0
    acc_lo = 0.0
    C = 0.0
    s2 = 0.0
    for j in range(z.shape[1]):
        s, err, e = shift_exp(z[i, j], m)
        z[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
        a = np.float64(w[j]) * (c1 * np.float64(t[i, j]) + c0)
        C += a
        s2 += 0.0 if a == 0 else -a * np.float64(s)
    return np.float64(acc_hi) * _UNFIX + acc_lo, C, s2


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_probs(z, t, g, i, m, w, c1, c0, store):
    """As ``_pass_labels`` for probability targets: a_j = w_j (c1 t_j + c0);
    returns (acc, C, S2) with S2 = sum_{a_j != 0} a_j (m - z_j)."""
    acc_hi = 0
    acc_lo = 0.0
    C = 0.0
    s2 = 0.0
    for j in range(z.shape[1]):
        s, err, e = shift_exp(z[i, j], m)
        if store:
            g[i, j] = e
        eh, el = split_sum_term(e)
        acc_hi += 0 if s == 0 else eh
        acc_lo += 0.0 if s == 0 else el
        a = np.float64(w[j]) * (c1 * np.float64(t[i, j]) + c0)
        C += a
        s2 += 0.0 if a == 0 else -a * np.float64(s)
    return np.float64(acc_hi) * _UNFIX + acc_lo, C, s2


@njit(**_OPTS)
def _grad_labels(g, i, inv, b, w, y, a):
    for j in range(g.shape[1]):
        g[i, j] = like(np.float64(g[i, j]) * inv - b * np.float64(w[j]), g)
    if a != 0:
        g[i, y] = like(np.float64(g[i, y]) - a, g)


@njit(**_OPTS)
def _grad_probs(g, i, inv, t, w, c1, c0):
    for j in range(g.shape[1]):
        a = np.float64(w[j]) * (c1 * np.float64(t[i, j]) + c0)
        g[i, j] = like(np.float64(g[i, j]) * inv - a, g)


# --------------------------------------------------------------------------
# float32 logits: everything in float64 (x - m exact, the float64 exp of
# ``expneg_f64_for_f32``), each loss and gradient entry rounded once to
# float32 (see the float32 section of ``_softmax``).  The sum pass keeps the
# float64 exponentials in a row of scratch ``buf`` (storing them as float32
# in the gradient would round twice; recomputing them costs more); the
# gradient pass reads ``buf``, so it may write over the logits (in place)
# without an aliased loop.  Loops run over 1-D row views from 0 (see
# ``_softmax._softmax_store32``).
# --------------------------------------------------------------------------
@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_labels32(z, buf, i, m, w):
    """(rest without the max count, S2 = sum_{w_j != 0} w_j (m - z_j));
    ``buf[j] = exp(z_j - m)``."""
    zr = z[i]
    mm = np.float64(m)
    acc = 0.0
    s2 = 0.0
    for j in range(zr.shape[0]):
        s = np.float64(zr[j]) - mm
        e = expneg_f64_for_f32(s)
        buf[j] = e
        acc += 0.0 if s == 0 else e
        wj = np.float64(w[j])
        s2 += 0.0 if wj == 0 else -wj * s
    return acc, s2


@njit(fastmath={"reassoc", "nsz"}, **_OPTS)
def _pass_probs32(z, t, buf, i, m, w, c1, c0):
    """(rest without the max count, C = sum_j a_j, S2 = sum_{a_j != 0} a_j
    (m - z_j)); ``buf[j] = exp(z_j - m)``."""
    zr = z[i]
    tr = t[i]
    mm = np.float64(m)
    acc = 0.0
    C = 0.0
    s2 = 0.0
    for j in range(zr.shape[0]):
        s = np.float64(zr[j]) - mm
        e = expneg_f64_for_f32(s)
        buf[j] = e
        acc += 0.0 if s == 0 else e
        a = np.float64(w[j]) * (c1 * np.float64(tr[j]) + c0)
        C += a
        s2 += 0.0 if a == 0 else -a * s
    return acc, C, s2


@njit(fastmath={"contract"}, **_OPTS)
def _grad_labels32(buf, g, i, inv, b, w, y, a):
    """``g_j = exp(z_j - m) inv - b w_j - a [j == y]``."""
    gr = g[i]
    for j in range(gr.shape[0]):
        gr[j] = np.float32(buf[j] * inv - b * np.float64(w[j]))
    gr[y] = np.float32((buf[y] * inv - b * np.float64(w[y])) - a)


@njit(fastmath={"contract"}, **_OPTS)
def _grad_probs32(buf, g, t, i, inv, w, c1, c0):
    gr = g[i]
    tr = t[i]
    for j in range(gr.shape[0]):
        a = np.float64(w[j]) * (c1 * np.float64(tr[j]) + c0)
        gr[j] = np.float32(buf[j] * inv - a)


# dtype dispatch (resolved at compile time, inlined): float64 keeps its passes
def _row_buffer(z):  # pragma: no cover - replaced by the overload inside numba
    raise NotImplementedError


@overload(_row_buffer, inline="always")
def _ol_row_buffer(z):
    """float64 scratch of one row for float32 logits (none for float64)."""
    if z.dtype == types.float32:
        return lambda z: np.empty(z.shape[1], dtype=np.float64)
    return lambda z: np.empty(0, dtype=np.float64)


def _labels_pass(z, g, buf, i, m, w, store, inplace):  # pragma: no cover
    raise NotImplementedError


@overload(_labels_pass, inline="always")
def _ol_labels_pass(z, g, buf, i, m, w, store, inplace):
    if z.dtype == types.float32:
        return lambda z, g, buf, i, m, w, store, inplace: _pass_labels32(z, buf, i, m, w)

    def impl64(z, g, buf, i, m, w, store, inplace):
        if inplace:
            return _pass_labels_inplace(z, i, m, w)
        return _pass_labels(z, g, i, m, w, store)
    return impl64


def _labels_grad(g, buf, i, inv, b, w, y, a):  # pragma: no cover
    raise NotImplementedError


@overload(_labels_grad, inline="always")
def _ol_labels_grad(g, buf, i, inv, b, w, y, a):
    if g.dtype == types.float32:
        return lambda g, buf, i, inv, b, w, y, a: _grad_labels32(buf, g, i, inv, b, w, y, a)
    return lambda g, buf, i, inv, b, w, y, a: _grad_labels(g, i, inv, b, w, y, a)


def _probs_pass(z, t, g, buf, i, m, w, c1, c0, store, inplace):  # pragma: no cover
    raise NotImplementedError


@overload(_probs_pass, inline="always")
def _ol_probs_pass(z, t, g, buf, i, m, w, c1, c0, store, inplace):
    if z.dtype == types.float32:
        return lambda z, t, g, buf, i, m, w, c1, c0, store, inplace: _pass_probs32(
            z, t, buf, i, m, w, c1, c0)

    def impl64(z, t, g, buf, i, m, w, c1, c0, store, inplace):
        if inplace:
            return _pass_probs_inplace(z, t, i, m, w, c1, c0)
        return _pass_probs(z, t, g, i, m, w, c1, c0, store)
    return impl64


def _probs_grad(g, buf, t, i, inv, w, c1, c0):  # pragma: no cover
    raise NotImplementedError


@overload(_probs_grad, inline="always")
def _ol_probs_grad(g, buf, t, i, inv, w, c1, c0):
    if g.dtype == types.float32:
        return lambda g, buf, t, i, inv, w, c1, c0: _grad_probs32(buf, g, t, i, inv, w, c1, c0)
    return lambda g, buf, t, i, inv, w, c1, c0: _grad_probs(g, i, inv, t, w, c1, c0)


@njit(**_OPTS)
def _nonfinite_row(z, i, m, coef, g, need_grad):
    """Loss (float64) and gradient of ``-sum_j coef_j log_softmax(z)_j`` for a
    row whose max ``m`` is not finite, with the reference's semantics."""
    K = z.shape[1]
    if m != np.inf:  # NaN somewhere, or every logit -inf: undefined
        if need_grad:
            for j in range(K):
                g[i, j] = like(np.nan, g)
        return np.nan
    c = 0
    for j in range(K):
        if z[i, j] == np.inf:
            c += 1
    lq_hit = -math.log(c)
    C = 0.0
    loss = 0.0
    for j in range(K):
        C += coef[j]
        if z[i, j] == np.inf:
            loss -= coef[j] * lq_hit
        elif coef[j] != 0:
            loss = np.inf
    if need_grad:
        for j in range(K):
            sj = 1.0 / c if z[i, j] == np.inf else 0.0
            g[i, j] = like(C * sj - coef[j], g)
    return loss


@njit(cache=True, **_OPTS)
def ce_labels(z, y, w, wtot, ignore, has_ignore, eps, loss, wsum, grad, need_grad, inplace,
              lo, hi):
    """Cross-entropy rows ``lo:hi`` for integer labels ``y`` (module docstring).

    ``w`` holds the class weights (ones when there are none) and ``wtot`` their
    sum; ``grad`` is written only when ``need_grad`` (else it may be ``z``,
    which is then never written).  ``grad`` may also be ``z`` itself with
    ``need_grad``: every entry of a row is read before it is overwritten.
    """
    K = z.shape[1]
    b = eps / K if K > 0 else 0.0
    buf = _row_buffer(z)
    for i in range(lo, hi):
        yi = y[i]
        if has_ignore and yi == ignore:
            loss[i] = like(0.0, loss)
            wsum[i] = like(0.0, wsum)
            if need_grad:
                for j in range(K):
                    grad[i, j] = like(0.0, grad)
            continue
        wy = np.float64(w[yi])
        a = (1.0 - eps) * wy
        C = a + b * wtot
        m = _rowmax(z, i, 0, K)
        wsum[i] = w[yi]
        if not np.isfinite(m):
            coef = np.empty(K)
            for j in range(K):
                coef[j] = b * np.float64(w[j])
            coef[yi] += a
            loss[i] = like(_nonfinite_row(z, i, m, coef, grad, need_grad), loss)
            continue
        # read everything needed from row i of z before the pass: grad may be z
        cnt = _count_max(z, i, 0, K, m)
        dy = np.float64(m) - np.float64(z[i, yi])
        acc, s2 = _labels_pass(z, grad, buf, i, m, w, need_grad, inplace)
        rest = acc + (cnt - 1)
        L = math.log1p(rest)
        li = C * L
        if a != 0:
            li += a * dy
        if b != 0:
            li += b * s2
        loss[i] = like(li, loss)
        if need_grad:
            _labels_grad(grad, buf, i, C / (1.0 + rest), b, w, yi, a)


@njit(cache=True, **_OPTS)
def ce_probs(z, t, w, eps, loss, wsum, grad, need_grad, inplace, lo, hi):
    """Cross-entropy rows ``lo:hi`` for probability targets ``t`` (``inplace``:
    ``grad`` is ``z``, as in ``ce_labels``)."""
    K = z.shape[1]
    c1 = 1.0 - eps
    c0 = eps / K if K > 0 else 0.0
    buf = _row_buffer(z)
    for i in range(lo, hi):
        wsum[i] = like(1.0, wsum)
        if K == 0:
            loss[i] = like(0.0, loss)
            continue
        m = _rowmax(z, i, 0, K)
        if not np.isfinite(m):
            coef = np.empty(K)
            for j in range(K):
                coef[j] = np.float64(w[j]) * (c1 * np.float64(t[i, j]) + c0)
            loss[i] = like(_nonfinite_row(z, i, m, coef, grad, need_grad), loss)
            continue
        cnt = _count_max(z, i, 0, K, m)  # before the pass: grad may be z
        acc, C, s2 = _probs_pass(z, t, grad, buf, i, m, w, c1, c0, need_grad, inplace)
        rest = acc + (cnt - 1)
        loss[i] = like(C * math.log1p(rest) + s2, loss)
        if need_grad:
            _probs_grad(grad, buf, t, i, C / (1.0 + rest), w, c1, c0)
