"""Cross-entropy forward and gradient in one pass over the logits (numba).

The twin of ``softmaxkit.losses._cross_entropy._ce_rows`` (contract 1): per
row, with ``m = max(z)``, ``rest`` and ``L = log1p(rest)`` as in the softmax
kernels (so ``-log_softmax(z)_j = (m - z_j) + L``), and the per-class
coefficients ``a_j`` of the loss ``-sum_j a_j log_softmax(z)_j``:

- labels: ``a_j = (1 - eps) w_y [j == y] + eps w_j / K``;
- probabilities: ``a_j = w_j ((1 - eps) t_j + eps / K)``;

the loss is ``C L + sum_{a_j != 0} a_j (m - z_j)`` with ``C = sum_j a_j``
(every term >= 0: no cancellation; ``0 * log 0 = 0``) and the gradient
``C softmax(z) - a``.  The exponentials are computed once: stored in the
gradient row, then scaled.  Rows whose max is NaN, +inf or -inf follow the
reference's edge-case semantics (``_nonfinite_row``).  Sums are in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._exp import like
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
        if inplace:
            acc, s2 = _pass_labels_inplace(z, i, m, w)
        else:
            acc, s2 = _pass_labels(z, grad, i, m, w, need_grad)
        rest = acc + (cnt - 1)
        L = math.log1p(rest)
        li = C * L
        if a != 0:
            li += a * dy
        if b != 0:
            li += b * s2
        loss[i] = like(li, loss)
        if need_grad:
            _grad_labels(grad, i, C / (1.0 + rest), b, w, yi, a)


@njit(cache=True, **_OPTS)
def ce_probs(z, t, w, eps, loss, wsum, grad, need_grad, inplace, lo, hi):
    """Cross-entropy rows ``lo:hi`` for probability targets ``t`` (``inplace``:
    ``grad`` is ``z``, as in ``ce_labels``)."""
    K = z.shape[1]
    c1 = 1.0 - eps
    c0 = eps / K if K > 0 else 0.0
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
        if inplace:
            acc, C, s2 = _pass_probs_inplace(z, t, i, m, w, c1, c0)
        else:
            acc, C, s2 = _pass_probs(z, t, grad, i, m, w, c1, c0, need_grad)
        rest = acc + (cnt - 1)
        loss[i] = like(C * math.log1p(rest) + s2, loss)
        if need_grad:
            _grad_probs(grad, i, C / (1.0 + rest), t, w, c1, c0)
