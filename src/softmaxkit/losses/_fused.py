"""Fused linear layer + cross-entropy that never builds the ``N x K`` logits.

``linear_cross_entropy(X, W, target)`` is ``cross_entropy(X @ W.T + bias,
target)`` computed block by block: a block of rows of ``X`` gives a block of
logits, the cross-entropy row core (the compiled kernel when the dispatcher
offers one, else the NumPy ``_ce_rows``) turns it into per-row losses and
``d loss / d logits`` in place of the block, and the gradients are pushed
through the linear layer (``dX = G @ W``, ``dW += G.T @ X_b``, ``db += sum G``)
before the block is dropped.  Dense inputs are processed by one thread per
CPU, each on its own block, so peak extra memory is one block of logits per
thread (two without the compiled kernels), ``O(threads * chunk_size * K)``,
independent of ``N``.  Blocks cover all classes: there is no class-blocked
path (online logsumexp over blocks of classes) for K so large that even a
``chunk_size``-row block does not fit.
"""

from __future__ import annotations

import os
import threading

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

# Default block of rows, chosen by a memory budget: the blocks of logits in
# flight (one per thread; the compiled row core writes the gradient over its
# block) together take at most 1/10 of the N x K logits, each between
# _MIN_ROWS rows (single-threaded BLAS near its peak) and _MAX_ROWS rows and at
# most _MAX_BLOCK_BYTES (peak memory independent of N).  Measured on 2 cores
# at N, d, K = 2048, 512, 32768: 64-row blocks cost 1.15x the CPU time of
# 128-row blocks, 256-row blocks 0.95x.
_BUDGET_FRACTION = 10
_MIN_ROWS = 64
_MAX_ROWS = 1024
_MAX_BLOCK_BYTES = 64 << 20


def _n_threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _block_rows(N, K, chunk_size, itemsize=4):
    if chunk_size is not None:
        return max(1, min(int(chunk_size), max(N, 1)))
    rows = min(_MAX_ROWS, max(_MIN_ROWS, N // (_BUDGET_FRACTION * _n_threads())))
    rows = min(rows, max(1, _MAX_BLOCK_BYTES // max(K * itemsize, 1)))
    return max(1, min(max(N, 1), rows))


def _ce_block(Z, target, weight, ignore_index, eps, need_grad, serial):
    """Row core on a block of logits; the compiled one overwrites Z with the
    gradient (one block of memory instead of two)."""
    fast = _dispatch.kernel("cross_entropy", Z)
    if fast is not None:
        return fast(Z, target, weight, ignore_index, eps, need_grad, overwrite_z=True,
                    serial=serial)
    return _ce_rows(Z, target, weight, ignore_index, eps, need_grad)


# below this many multiply-adds in all, one thread does everything: threads'
# start-up and BLAS's spinning cost more than they save on small products
# (measured: 25x slower at 32 x 32 x 2048 blocks on 2 cores)
_SMALL_GEMM = 1 << 26


def _fused_pass(X, W, b, target, weight, ignore_index, eps, row_scale, grad_scale,
                need_grad, need_dX, block):
    """Loop over row blocks.

    ``row_scale``: None or (N,) per-sample factors on loss and gradient;
    ``grad_scale``: a float applied to the gradients (1 / denominator of a
    mean; applied to dX, dW and db at the end, not to every block of G).
    Returns ``(loss_rows float64 (N,), wsum_total, dX, dW, db)``.

    Threads.  Dense inputs are processed by ``T`` (CPU count) threads, each
    taking the next block of rows and running its three products with
    single-threaded BLAS (they release the GIL) and the row core serially;
    only the sums over blocks (``dW += G.T @ X_b``, ``dbias``) are
    serialised, in block order (deterministic results).  On a shared machine
    this is far more robust than multithreaded BLAS, whose threads meet at a
    barrier inside every product (measured on 2 busy cores: one-thread sgemm
    steady at 80-100 GFLOP/s, two-thread sgemm 4-60 GFLOP/s on the same
    blocks).  ``Z = X_b W^T`` and ``dX_b = G W`` are NumPy matmuls into
    preallocated buffers (``out=``; NumPy releases the GIL around BLAS, and
    reads the transposed operands without copies); ``dW += G^T X_b`` is
    SciPy's gemm with ``beta=1`` on Fortran views (no ``(K, d)`` temporary;
    SciPy's f2py wrappers hold the GIL; these products are serialised anyway).
    Sparse ``X`` runs in the calling thread (SciPy's sparse products hold
    the GIL).
    """
    N = X.shape[0]
    K, d = W.shape
    block = max(1, min(block, N))
    nblocks = -(-N // block)
    sparse = not isinstance(X, np.ndarray)
    T = 1 if (sparse or N * K * d < _SMALL_GEMM) else min(_n_threads(), nblocks)
    dt = W.dtype
    dX = np.empty((N, d), dtype=dt) if (need_grad and need_dX) else None
    dW = np.zeros((K, d), dtype=dt) if need_grad else None
    db = np.zeros(K, dtype=np.float64) if (need_grad and b is not None) else None
    st = dict(loss_rows=np.empty(N, dtype=np.float64), dX=dX, dW=dW, db=db, next=0,
              lock=threading.Lock(), turn=threading.Condition(), turn_next=0, wsum=0.0,
              failed=False)
    args = (X, W, b, target, weight, ignore_index, eps, row_scale, need_grad, block, st, T > 1)
    if T == 1 and block * K * d >= _SMALL_GEMM:
        _worker(*args)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            _run_threads(_worker, args, T)
    wsum_total = st["wsum"]
    if need_grad and grad_scale != 1.0:
        g = dt.type(grad_scale)
        dW *= g
        if dX is not None:
            dX *= g
        if db is not None:
            db *= grad_scale
    if db is not None:
        db = db.astype(dt)
    return st["loss_rows"], wsum_total, dX, dW, db


def _run_threads(fn, args, T):
    """``fn(*args)`` in ``T`` threads (the calling one included); results in
    order; the first exception is re-raised."""
    if T == 1:
        return [fn(*args)]
    out = [None] * T
    errors = []

    def target(k):
        try:
            out[k] = fn(*args)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(k,), name="softmaxkit-fused")
               for k in range(1, T)]
    for t in threads:
        t.start()
    target(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def _worker(X, W, b, target, weight, ignore_index, eps, row_scale, need_grad, block, st,
            serial):
    """Take blocks of rows until none is left.

    The sums over blocks (``dW``, ``dbias``, the weight total) are added in
    block order, each block waiting for its turn (``st["turn"]``), so the
    results do not depend on which thread ran which block: bitwise the same
    from run to run."""
    N = X.shape[0]
    K = W.shape[0]
    dt = W.dtype
    sparse = not isinstance(X, np.ndarray)
    gemm = _blas(dt)
    db = st["db"]
    turn = st["turn"]
    zbuf = None if sparse else np.empty((min(block, N), K), dtype=dt)
    ones = np.ones(block, dtype=dt) if db is not None else None
    while True:
        with st["lock"]:
            s = st["next"]
            st["next"] = s + block
        if s >= N or st["failed"]:
            return
        try:
            _one_block(X, W, b, target, weight, ignore_index, eps, row_scale, need_grad, block,
                       st, serial, s, zbuf, ones, gemm, sparse)
        except BaseException:
            with turn:  # release the threads waiting for their turn
                st["failed"] = True
                turn.notify_all()
            raise


def _one_block(X, W, b, target, weight, ignore_index, eps, row_scale, need_grad, block, st,
               serial, s, zbuf, ones, gemm, sparse):
    """Rows ``s : s + block``: logits, row core, ``dX``; then, in its turn,
    the sums over blocks."""
    N = X.shape[0]
    dt = W.dtype
    loss_rows, dX, dW, db = st["loss_rows"], st["dX"], st["dW"], st["db"]
    turn = st["turn"]
    idx = s // block
    e = min(N, s + block)
    nb = e - s
    Xb = X[s:e]
    if sparse:
        Z = np.ascontiguousarray(Xb @ W.T, dtype=dt)
    else:
        Z = zbuf[:nb]
        np.matmul(Xb, W.T, out=Z)  # BLAS reads W.T as a transposed operand
    if b is not None:
        Z += b
    loss, wsum, G = _ce_block(Z, target[s:e], weight, ignore_index, eps, need_grad, serial)
    del Z
    if row_scale is not None:
        rs = row_scale[s:e]
        loss = loss * rs
    loss_rows[s:e] = loss
    wpart = float(np.sum(wsum, dtype=np.float64))
    colsum = None
    if need_grad:
        if row_scale is not None:
            G *= rs.astype(dt, copy=False)[:, None]
        if db is not None:
            colsum = np.matmul(ones[:nb], G)
        if dX is not None:
            np.matmul(G, W, out=dX[s:e])
    with turn:
        turn.wait_for(lambda: st["turn_next"] == idx or st["failed"])
        if st["failed"]:
            return
    st["wsum"] += wpart
    if colsum is not None:
        db += colsum
    if need_grad:
        if sparse:
            dW += np.asarray((Xb.T @ G).T)
        else:
            # dW.T (d, K) += Xb.T (d, nb) @ G (nb, K)
            _gemm_into(gemm, dW.T, Xb.T, G.T, trans_b=1, beta=1.0)
    with turn:
        st["turn_next"] = idx + 1
        turn.notify_all()


def _blas(dt):
    from scipy.linalg import blas

    return blas.sgemm if dt == np.float32 else blas.dgemm


def _gemm_into(gemm, c, a, b, trans_a=0, trans_b=0, beta=0.0):
    """``c = op(a) @ op(b) + beta * c`` in place; ``a``, ``b``, ``c``
    Fortran-contiguous (f2py copies nothing then)."""
    out = gemm(1.0, a, b, beta=beta, c=c, trans_a=trans_a, trans_b=trans_b, overwrite_c=1)
    if not np.shares_memory(out, c):  # pragma: no cover - f2py copied c
        c[...] = out


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
        Rows per block.  By default ``N / (10 T)`` for ``T`` threads (the
        CPU count; one block in flight per thread, so all blocks together
        are 1/10 of the ``N x K`` logits) clipped to [64, 1024] rows and to
        a block of at most 64 MiB.

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
    block = _block_rows(N, K, chunk_size, dt.itemsize)
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
    block = _block_rows(N, K, chunk_size, W.dtype.itemsize)
    target = np.asarray(target)
    if target.ndim == 2:
        target = np.ascontiguousarray(target, dtype=W.dtype)
    loss_rows, _, _, dW, db = _fused_pass(
        X, W, b, target, None, None, 0.0, rs, 1.0, need_grad, False, block)
    return float(np.sum(loss_rows)), dW, db
