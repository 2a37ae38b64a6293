"""Fused linear layer + cross-entropy that never builds the ``N x K`` logits.

``linear_cross_entropy(X, W, target)`` is ``cross_entropy(X @ W.T + bias,
target)`` computed block by block: a block of rows of ``X`` gives a block of
logits, the cross-entropy row core (the compiled kernel when the dispatcher
offers one, else the NumPy ``_ce_rows``) turns it into per-row losses and
``d loss / d logits`` in place of the block, and the gradients are pushed
through the linear layer (``dX = G @ W``, ``dW += G.T @ X_b``, ``db += sum G``)
before the block is dropped.  Peak extra memory is one block of logits (two
without the compiled kernels), ``O(chunk_size * K)``, independent of ``N``.
"""

from __future__ import annotations

import numpy as np

from .. import _dispatch
from .._validation import as_float_array, check_choice_param, check_scalar_param
from ._cross_entropy import (
    _REDUCTIONS,
    _ce_rows,
    _check_labels,
    _check_probabilities,
    _check_weight,
)

__all__ = ["linear_cross_entropy"]

_OWNER = "linear_cross_entropy"
# default block: about this many logits: 32 MiB in float32 (the compiled row
# core writes the gradient over the logits), between 128 rows (efficient
# matrix products) and 1024 rows
_BLOCK_ELEMS = 1 << 23
_MIN_ROWS = 128
_MAX_ROWS = 1024


def _block_rows(N, K, chunk_size):
    if chunk_size is not None:
        return max(1, min(int(chunk_size), max(N, 1)))
    rows = min(_MAX_ROWS, max(_MIN_ROWS, _BLOCK_ELEMS // max(K, 1)))
    return max(1, min(max(N, 1), rows))


def _add_GT_X(dW, G, Xb):
    """``dW += G.T @ Xb`` in place (BLAS gemm with beta=1: no (K, d) temporary)."""
    gemm = _blas(dW.dtype)
    # Fortran view: dW.T (d, K) += Xb.T (d, B) @ G (B, K), G passed as G.T with trans_b
    out = gemm(1.0, Xb.T, G.T, beta=1.0, c=dW.T, trans_b=1, overwrite_c=1)
    if not np.shares_memory(out, dW):  # pragma: no cover - BLAS copied c
        dW[...] = out.T


def _ce_block(Z, target, weight, ignore_index, eps, need_grad):
    """Row core on a block of logits; the compiled one overwrites Z with the
    gradient (one block of memory instead of two)."""
    fast = _dispatch.kernel("cross_entropy", Z)
    if fast is not None:
        return fast(Z, target, weight, ignore_index, eps, need_grad, overwrite_z=True)
    return _ce_rows(Z, target, weight, ignore_index, eps, need_grad)


def _blas(dt):
    from scipy.linalg import blas

    return blas.sgemm if dt == np.float32 else blas.dgemm


# below this many multiply-adds per block product, BLAS runs single-threaded:
# its threads' start-up and spinning cost more than they save on small
# products (measured: 25x slower at 32 x 32 x 2048 blocks on 2 cores)
_SMALL_GEMM = 1 << 26


def _fused_pass(X, W, b, target, weight, ignore_index, eps, row_scale, grad_scale,
                need_grad, need_dX, block):
    """As ``_fused_pass_impl``, with BLAS limited to one thread for small blocks."""
    if min(block, X.shape[0]) * W.shape[0] * W.shape[1] < _SMALL_GEMM:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        else:
            with threadpool_limits(1, user_api="blas"):
                return _fused_pass_impl(X, W, b, target, weight, ignore_index, eps, row_scale,
                                        grad_scale, need_grad, need_dX, block)
    return _fused_pass_impl(X, W, b, target, weight, ignore_index, eps, row_scale, grad_scale,
                            need_grad, need_dX, block)


def _fused_pass_impl(X, W, b, target, weight, ignore_index, eps, row_scale, grad_scale,
                     need_grad, need_dX, block):
    """Loop over row blocks.

    ``row_scale``: None or (N,) per-sample factors on loss and gradient;
    ``grad_scale``: a float applied to the gradients (1 / denominator of a
    mean).  Returns ``(loss_rows float64 (N,), wsum_total, dX, dW, db)``.
    """
    N = X.shape[0]
    K, d = W.shape
    dt = W.dtype
    sparse = not isinstance(X, np.ndarray)
    loss_rows = np.empty(N, dtype=np.float64)
    wsum_total = 0.0
    dX = np.empty((N, d), dtype=dt) if (need_grad and need_dX) else None
    dW = np.zeros((K, d), dtype=dt) if need_grad else None
    db = np.zeros(K, dtype=np.float64) if (need_grad and b is not None) else None
    WT = W.T
    for s in range(0, N, block):
        e = min(N, s + block)
        Xb = X[s:e]
        Z = Xb @ WT
        Z = np.ascontiguousarray(Z, dtype=dt)
        if b is not None:
            Z += b
        tb = target[s:e]
        loss, wsum, G = _ce_block(Z, tb, weight, ignore_index, eps, need_grad)
        del Z
        if row_scale is not None:
            rs = row_scale[s:e]
            loss = loss * rs
        loss_rows[s:e] = loss
        wsum_total += float(np.sum(wsum, dtype=np.float64))
        if not need_grad:
            continue
        if row_scale is not None:
            G *= rs.astype(dt, copy=False)[:, None]
        if grad_scale != 1.0:
            G *= dt.type(grad_scale)
        if db is not None:
            db += np.sum(G, axis=0, dtype=np.float64)
        if sparse:
            dW += np.asarray((Xb.T @ G).T)
        else:
            _add_GT_X(dW, G, Xb)
        if dX is not None:
            # G @ W as BLAS sees it (Fortran order, both transposed): several
            # times faster than np.matmul's call for this (short, wide) G
            dX[s:e] = _blas(dt)(1.0, G.T, W.T, trans_a=1, trans_b=1)
        del G
    if db is not None:
        db = db.astype(dt)
    return loss_rows, wsum_total, dX, dW, db


def _check_2d(a, name):
    aw, out_dtype = as_float_array(a, name)
    if aw.ndim != 2:
        raise ValueError(f"{name} of {_OWNER} must be a 2-D array; got shape {aw.shape}.")
    return aw, out_dtype


def linear_cross_entropy(X, W, target, *, bias=None, weight=None, ignore_index=None,
                         label_smoothing=0.0, reduction="mean", return_grad=False,
                         chunk_size=None):
    r"""Cross-entropy of the linear logits ``X @ W.T + bias``, without building them.

    Equal to ``cross_entropy(X @ W.T + bias, target, ...)`` (same semantics,
    reductions and validation), but the ``N x K`` logits never exist: rows
    are processed in blocks of ``chunk_size``, so the extra memory is a few
    blocks of logits whatever ``N`` is.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Inputs (features).
    W : array_like, shape (K, d)
        Weights, one row per class (the layout of ``coef_``).
    target : array_like, shape (N,) of int or shape (N, K) of float
        Class labels in ``[0, K)`` (or equal to ``ignore_index``), or
        probabilities (non-negative rows summing to 1).
    bias : array_like, shape (K,), optional
        Intercepts added to every row of logits.
    weight : array_like, shape (K,), optional
        Non-negative class weights, as in :func:`cross_entropy`.
    ignore_index : int, optional
        Label whose samples are left out (label targets only).
    label_smoothing : float in [0, 1], default 0.0
        The target becomes ``(1 - eps) * target + eps / K``.
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`cross_entropy` (the mean divides by the summed weights
        of the counted samples; a mean over no sample is 0.0).
    return_grad : bool, default False
        Also return the gradients of the (reduced) loss; with
        ``reduction="none"`` the gradients of ``sum(loss)``.
    chunk_size : int >= 1, optional
        Rows per block; by default ``2**23 / K`` clipped to [128, 1024] (a
        block of logits is 32 MiB in float32).

    Returns
    -------
    loss : float or ndarray of shape (N,)
    grads : tuple ``(dX, dW, dbias)``, only with ``return_grad=True``
        ``dX`` of shape (N, d), ``dW`` of shape (K, d), ``dbias`` of shape
        (K,) or None without ``bias``.

    Notes
    -----
    With ``Z = X W^T + b`` and ``G = d loss / d Z`` (softmax minus the
    target, weighted and divided as the reduction says), ``dX = G W``,
    ``dW = G^T X`` and ``dbias = sum_i G_i``; each block of ``G`` is pushed
    through these products and dropped.  The per-block row core is the
    compiled cross-entropy kernel when available (``softmaxkit._dispatch``).

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> X = np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]])
    >>> W = np.array([[0.2, -0.1], [0.0, 0.3], [-0.5, 0.1]])
    >>> y = np.array([1, 0, 2])
    >>> loss = smk.linear_cross_entropy(X, W, y)
    >>> bool(np.isclose(loss, smk.cross_entropy(X @ W.T, y)))
    True
    >>> loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, y, return_grad=True)
    >>> dX.shape, dW.shape, db is None
    ((3, 2), (3, 2), True)
    """
    Xw, x_dtype = _check_2d(X, "X")
    Ww, w_dtype = _check_2d(W, "W")
    N, d = Xw.shape
    K = Ww.shape[0]
    if Ww.shape[1] != d:
        raise ValueError(
            f"W of {_OWNER} must have shape (K, {d}) to match X of shape {Xw.shape}; "
            f"got shape {Ww.shape}."
        )
    if K == 0:
        raise ValueError(f"W of {_OWNER} must have at least one class (row); got shape {Ww.shape}.")
    dt = np.result_type(Xw.dtype, Ww.dtype)
    out_dtype = np.result_type(x_dtype, w_dtype)
    Xw = np.ascontiguousarray(Xw, dtype=dt)
    Ww = np.ascontiguousarray(Ww, dtype=dt)
    b = None
    if bias is not None:
        bw, _ = as_float_array(bias, "bias")
        if bw.shape != (K,):
            raise ValueError(f"bias of {_OWNER} must have shape ({K},); got shape {bw.shape}.")
        b = bw.astype(dt)
    reduction = check_choice_param(reduction, "reduction", _OWNER, _REDUCTIONS)
    eps = check_scalar_param(label_smoothing, "label_smoothing", _OWNER, kind=float,
                             low=0.0, high=1.0)
    ignore_index = check_scalar_param(ignore_index, "ignore_index", _OWNER, kind=int,
                                      allow_none=True)
    chunk_size = check_scalar_param(chunk_size, "chunk_size", _OWNER, kind=int, low=1,
                                    allow_none=True)
    w = _check_weight(weight, K, dt, _OWNER)

    t = np.asarray(target)
    if t.dtype.kind in "iu":
        if t.shape != (N,):
            raise ValueError(
                f"target of {_OWNER} has an integer dtype, so it holds class labels and must "
                f"have shape ({N},); got shape {t.shape}."
            )
        y, ign = _check_labels(t, K, ignore_index, _OWNER)
        tgt = np.ascontiguousarray(y)
        valid = tgt if ign is None else tgt[tgt != ign]
        denom = float(valid.size) if w is None else float(np.sum(w[valid], dtype=np.float64))
    elif t.dtype.kind == "f":
        if t.shape != (N, K):
            raise ValueError(
                f"target of {_OWNER} has a float dtype, so it holds probabilities and must "
                f"have shape ({N}, {K}); got shape {t.shape}."
            )
        if ignore_index is not None:
            raise ValueError(f"ignore_index of {_OWNER} applies to class labels only; "
                             "target holds probabilities.")
        tgt = np.ascontiguousarray(_check_probabilities(t, 1, dt, _OWNER))
        ign = None
        denom = float(N)
    else:
        raise TypeError(
            f"target of {_OWNER} must be integer class labels or float probabilities; "
            f"got dtype {t.dtype}."
        )

    grad_scale = 1.0
    if reduction == "mean":
        grad_scale = 1.0 / denom if denom > 0 else 0.0
    block = _block_rows(N, K, chunk_size)
    loss_rows, _, dX, dW, db = _fused_pass(
        Xw, Ww, b, tgt, w, ign, eps, None, grad_scale, return_grad, True, block)

    if reduction == "none":
        loss = loss_rows.astype(out_dtype)
    elif reduction == "sum":
        loss = out_dtype.type(np.sum(loss_rows))
    else:
        total = np.sum(loss_rows)
        if denom > 0:
            loss = out_dtype.type(total / denom)
        else:
            loss = out_dtype.type(np.nan if np.isnan(total) else 0.0)
    if not return_grad:
        return loss
    grads = (dX.astype(out_dtype, copy=False), dW.astype(out_dtype, copy=False),
             None if db is None else db.astype(out_dtype, copy=False))
    return loss, grads


def _linear_ce_sum(X, W, b, target, sample_weight, need_grad, chunk_size=None):
    """``sum_i s_i CE(X_i W^T + b, target_i)`` and its gradients in W and b.

    For ``LinearSoftmaxLoss``: ``X`` (n, d) float ndarray or scipy.sparse
    matrix, ``W`` (K, d) of X's dtype, ``b`` (K,) or None, ``target`` (n,)
    intp labels in [0, K) or (n, K) probabilities, ``sample_weight`` None or
    (n,).  Already validated.  Returns ``(loss_sum, dW, db)`` (``dW``/``db``
    None without ``need_grad``; ``db`` None when ``b`` is None); memory
    O(chunk * K) beyond the outputs.
    """
    if not isinstance(X, np.ndarray):
        X = X.tocsr()
    W = np.ascontiguousarray(W)
    N = X.shape[0]
    K = W.shape[0]
    rs = None
    if sample_weight is not None:
        rs = np.asarray(sample_weight, dtype=np.float64)
    block = _block_rows(N, K, chunk_size)
    target = np.asarray(target)
    if target.ndim == 2:
        target = np.ascontiguousarray(target, dtype=W.dtype)
    loss_rows, _, _, dW, db = _fused_pass(
        X, W, b, target, None, None, 0.0, rs, 1.0, need_grad, False, block)
    return float(np.sum(loss_rows)), dW, db
