"""Fused linear layer + cross-entropy that never builds the ``N x K`` logits.

``linear_cross_entropy(X, W, target)`` is ``cross_entropy(X @ W.T + bias,
target)`` computed block by block: a block of rows of ``X`` gives a block of
logits, the cross-entropy row core (the compiled kernel when the dispatcher
offers one, else the NumPy ``_ce_rows``) turns it into per-row losses and
``d loss / d logits`` in place of the block, and the gradients are pushed
through the linear layer (``dX = G @ W``, ``dW += G.T @ X_b``, ``db += sum G``)
before the block is dropped.  Dense inputs are processed by as many threads as
BLAS may use (``softmaxkit._pool.max_threads``: the CPUs, capped by
``OMP_NUM_THREADS``, ``threadpool_limits`` and the like), each on its own
block, so peak extra memory is one block of logits per thread (two without the
compiled kernels), ``O(threads * chunk_size * K)``, independent of ``N``.

For K so large that a block of rows over all classes does not fit (or on
request, ``class_chunk_size``), each block of rows is swept twice over
blocks of classes (``_class_pass``): an online logsumexp (running max and
rescaled sum, float64 accumulators) with the target and smoothing terms of
the loss, then a second sweep that recomputes each block of logits, turns it
into its block of ``d loss / d logits`` and pushes it through the products.
Peak extra memory is then ``O(threads * rows * classes)``, independent of
``N`` and ``K`` (outputs aside), at the price of one more product
(``X_b W_c^T`` twice).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import _dispatch
from .._validation import as_float_array, check_choice_param, check_scalar_param, param_error
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
    from .._pool import max_threads

    return max_threads()


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

    Threads.  Dense inputs are processed by ``T`` (``_pool.max_threads()``: the
    CPUs, capped by BLAS's thread count) threads, each
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
        from .._pool import blas_limit

        with blas_limit(1):
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
        elif dW.size:
            # dW.T (d, K) += Xb.T (d, nb) @ G (nb, K); with no features (d = 0)
            # dW is empty and there is nothing to add (f2py's gemm refuses
            # zero-size operands)
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


# --------------------------------------------------------------------------- class blocks
#
# For K so large that even a _MIN_ROWS-row block of logits exceeds
# _MAX_BLOCK_BYTES (or on request, ``class_chunk_size``), each block of rows
# is swept twice over blocks of classes: a forward sweep keeps each row's
# running max and rescaled sum of exponentials (an online logsumexp, float64
# accumulators) with the target and smoothing pieces of the loss; a backward
# sweep recomputes every block of logits and turns it into its block of
# ``G = d loss / d Z`` (``coef * exp(z - lse) - a``) before pushing it through
# the products.  Threads take the class blocks of a row block one at a time
# (a thread slowed down by a busy machine holds up no one): their
# ``dW``/``dbias`` rows are disjoint; the forward partials and the ``dX``
# pieces are merged in class-block order whichever thread made them, so the
# results are bitwise the same from run to run.

# logits block per thread: rows x classes of at most this many bytes (the
# per-block NumPy passes then stay in the shared L3 cache).  Single-threaded
# sgemm at d = 128 (2-core VM, GFLOP/s of X_b W_c^T / G W_c / G^T X_b):
# 256 x 4096 blocks 76/90/86, 512 x 2048 82/93/89, 1024 x 1024 85/90/84,
# 128 x 8192 64/81/79; the NumPy passes (bias, max, exp, sums) add about 20%
# to the four products.
_CLASS_BLOCK_BYTES = 4 << 20
_CLASS_ROWS = 512
# class blocks a thread may run ahead of the oldest unmerged one, per thread
_AHEAD = 4


def _use_class_blocks(N, K, chunk_size, class_chunk_size, itemsize):
    """Class blocks on request, or when even a block of ``_MIN_ROWS`` rows (the
    fewest for which the products run near BLAS's peak; all rows if fewer)
    over all classes would exceed ``_MAX_BLOCK_BYTES``.  ``chunk_size`` does
    not decide: it sets the rows per block on either path."""
    if class_chunk_size is not None:
        return True
    return min(max(N, 1), _MIN_ROWS) * K * itemsize > _MAX_BLOCK_BYTES


def _class_block_shape(N, K, d, chunk_size, class_chunk_size, itemsize):
    """``(rows, classes)`` of a block: by default 512 rows and as many classes
    as keep the logits block and the ``classes x d`` product buffer within
    ``_CLASS_BLOCK_BYTES`` each."""
    rows = _CLASS_ROWS if chunk_size is None else int(chunk_size)
    rows = max(1, min(rows, max(N, 1)))
    if class_chunk_size is None:
        kc = _CLASS_BLOCK_BYTES // (max(rows, d, 1) * itemsize)
    else:
        kc = int(class_chunk_size)
    return rows, max(1, min(kc, K))


def _sweep(fn, T, nblocks, *args, acc=None):
    """One sweep over the class blocks: ``fn(k, *args, phase[, acc])`` in
    ``T`` threads (``k = 0`` in the calling one), taking blocks from one
    ``_Phase`` until none is left; the first exception is re-raised (the
    other threads stop at their next block)."""
    phase = _Phase(nblocks, _AHEAD * T)
    extra = (phase,) if acc is None else (phase, acc)
    if T == 1:
        fn(0, *args, *extra)
        return
    errors = []

    def target(k):
        try:
            fn(k, *args, *extra)
        except BaseException as exc:  # re-raised in the calling thread
            phase.fail()
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


def _no_op(_):
    return None


class _OnlineLSE:
    """Running max ``m``, rescaled sum ``ssum`` (``sum exp(z - m)``) and the
    linear sums of the forward sweep over one block of rows, float64; blocks
    are added in class-block order (deterministic)."""

    def __init__(self, nb, smooth, probs):
        self.m = np.full(nb, -np.inf)
        self.ssum = np.zeros(nb)
        self.swz = np.zeros(nb) if smooth else None
        self.spz = np.zeros(nb) if probs else None

    def add(self, part):
        mb, shift, sb, wz, pz = part
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            m_new = np.maximum(self.m, mb)  # NaN propagates
            fin = np.isfinite(m_new)
            old = np.where(self.ssum > 0, self.ssum * np.exp(self.m - m_new), 0.0)
            new = np.where(sb > 0, sb * np.exp(shift.astype(np.float64) - m_new), 0.0)
            self.ssum = np.where(fin, old + new, 0.0)
        self.m = m_new
        if wz is not None:
            self.swz += wz
        if pz is not None:
            self.spz += pz


class _Phase:
    """Class blocks handed out one at a time to the threads of one sweep, and
    per-block results merged in block order whichever thread made them.

    A block is handed out only while fewer than ``ahead`` blocks are
    waiting for an earlier one to be merged, which bounds the results held
    (``ahead`` pieces of ``O(rows)`` / ``O(rows * d)``)."""

    def __init__(self, nblocks, ahead):
        self.n = nblocks
        self.ahead = ahead
        self.cond = threading.Condition()
        self.next = 0
        self.merged = 0
        self.pending = {}
        self.failed = False

    def take(self):
        with self.cond:
            self.cond.wait_for(lambda: self.failed or self.next >= self.n
                               or self.next - self.merged < self.ahead)
            j = self.next
            if j >= self.n or self.failed:
                return None
            self.next = j + 1
            return j

    def merge(self, j, item, apply):
        with self.cond:
            self.pending[j] = item
            while self.merged in self.pending:
                apply(self.pending.pop(self.merged))
                self.merged += 1
            self.cond.notify_all()

    def fail(self):
        with self.cond:
            self.failed = True
            self.cond.notify_all()


class _ClassSweep:
    """State of the class-blocked pass (one instance per call)."""

    def __init__(self, X, W, b, target, weight, ignore_index, eps, row_scale, need_grad,
                 need_dX, rows, kc):
        self.X, self.W, self.b = X, W, b
        self.N = X.shape[0]
        self.K, self.d = W.shape
        self.dt = W.dtype
        self.sparse = not isinstance(X, np.ndarray)
        self.labels = target.ndim == 1
        self.target = target
        self.u = weight
        self.wtot = float(self.K) if weight is None else float(np.sum(weight, dtype=np.float64))
        self.ignore = ignore_index
        self.eps = float(eps)
        self.row_scale = row_scale
        self.need_grad = need_grad
        self.rows, self.kc = rows, kc
        self.nkb = -(-self.K // kc)
        small = self.N * self.K * self.d < _SMALL_GEMM
        self.T = 1 if (self.sparse or small) else min(_n_threads(), self.nkb)
        dt = self.dt
        self.dX = np.empty((self.N, self.d), dtype=dt) if (need_grad and need_dX) else None
        self.dW = np.zeros((self.K, self.d), dtype=dt) if need_grad else None
        self.db = np.zeros(self.K, dtype=np.float64) if (need_grad and b is not None) else None
        self.loss_rows = np.empty(self.N, dtype=np.float64)
        self.wsum = 0.0
        # per-thread buffers, allocated on first use by their thread
        self.bufs = [None] * self.T

    # -- helpers ---------------------------------------------------------------------------
    def _buffers(self, k):
        if self.bufs[k] is None:
            dt = self.dt
            self.bufs[k] = dict(
                z=np.empty(self.rows * self.kc, dtype=dt),
                dw=np.empty(self.kc * self.d, dtype=dt) if self.need_grad else None,
                ones=np.ones(self.rows, dtype=dt) if self.db is not None else None,
            )
        return self.bufs[k]

    def _logits(self, Xb, c0, c1, buf):
        nb = Xb.shape[0]
        Wc = self.W[c0:c1]
        if self.sparse:
            Z = np.ascontiguousarray(Xb @ Wc.T, dtype=self.dt)
        else:
            Z = buf["z"][:nb * (c1 - c0)].reshape(nb, c1 - c0)
            np.matmul(Xb, Wc.T, out=Z)  # BLAS reads Wc.T as a transposed operand
        if self.b is not None:
            Z += self.b[c0:c1]
        return Z

    # -- forward sweep ---------------------------------------------------------------------
    def forward(self, k, s, e, zy, phase, acc):
        """Thread ``k`` takes class blocks of rows ``s:e`` until none is left;
        each block's max ``mb``, sum of ``exp(z - shift)``, ``sum_c w_c z_c``
        (smoothing) and ``sum_c w_c p_c z_c`` (probability targets) are merged
        into ``acc`` in block order (``phase.merge``); the target logits go
        to ``zy``."""
        Xb = self.X[s:e]
        buf = self._buffers(k)
        yb = self.target[s:e] if self.labels else None
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            while (j := phase.take()) is not None:
                c0 = j * self.kc
                c1 = min(self.K, c0 + self.kc)
                Z = self._logits(Xb, c0, c1, buf)
                uc = None if self.u is None else self.u[c0:c1]
                if self.labels:
                    r = np.flatnonzero((yb >= c0) & (yb < c1))
                    if r.size:
                        zy[r] = Z[r, yb[r] - c0]
                    pz = None
                else:
                    Pc = self.target[s:e, c0:c1]
                    pz = np.einsum("ij,ij->i", Pc if uc is None else Pc * uc, Z)
                wz = None
                if self.eps > 0:
                    wz = Z.sum(axis=1) if uc is None else Z @ uc
                mb = Z.max(axis=1)
                # shift: the block's max, 0 where it is not finite (an all -inf
                # row of the block then sums to 0, never NaN)
                shift = np.where(np.isfinite(mb), mb, 0).astype(self.dt)
                Z -= shift[:, None]
                np.exp(Z, out=Z)
                phase.merge(j, (mb, shift, Z.sum(axis=1), wz, pz), acc.add)

    def row_terms(self, s, e, m, ssum, swz, spz, zy):
        """Per-row loss, the softmax coefficient ``A_i`` and the target
        coefficients; ``bad`` rows (non-finite pieces) are redone exactly."""
        eps, K = self.eps, self.K
        nb = e - s
        fin = np.isfinite(m)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            logs = np.log(ssum)
            lse = m + logs
            if self.labels:
                yb = self.target[s:e]
                valid = yb >= 0
                yv = np.where(valid, yb, 0)
                wy = np.ones(nb) if self.u is None else self.u[yv].astype(np.float64)
                wy = np.where(valid, wy, 0.0)
                cy = (1.0 - eps) * wy
                ok = fin & np.isfinite(zy)
                loss = cy * ((m - zy) + logs)
                A = cy.copy()
                wsum = wy
            else:
                Pb = self.target[s:e]
                pw = (Pb.sum(axis=1, dtype=np.float64) if self.u is None
                      else (Pb @ self.u).astype(np.float64))
                valid = np.ones(nb, dtype=bool)
                cy = np.full(nb, 1.0 - eps)
                ok = fin & np.isfinite(spz)
                loss = (1.0 - eps) * (pw * lse - spz)
                A = (1.0 - eps) * pw
                wsum = np.ones(nb)
            if eps > 0:
                ok &= np.isfinite(swz)
                loss = loss + (eps / K) * (self.wtot * lse - swz)
                A = A + (eps / K) * self.wtot
        bad = valid & ~ok
        f = np.ones(nb) if self.row_scale is None else self.row_scale[s:e]
        live = valid & ok
        loss = np.where(live, loss, 0.0) * f
        self.loss_rows[s:e] = loss
        self.wsum += float(np.sum(wsum))
        coef = np.where(live, A * f, 0.0)        # of exp(z - lse)
        cy = np.where(live, cy * f, 0.0)          # of the target (labels: its logit)
        smooth = np.where(live, (eps / K) * f, 0.0) if eps > 0 else None
        return dict(m=m, logs=logs, coef=coef, cy=cy, smooth=smooth, bad=np.flatnonzero(bad),
                    zrows=np.flatnonzero(~fin))

    # -- backward sweep --------------------------------------------------------------------
    def backward_terms(self, rt):
        """Per-row factors of the backward sweep, in the working dtype."""
        dt = self.dt
        coef = rt["coef"]
        # coef * exp(z - lse) = exp((z - m) - (log s - log coef)): m is exact in
        # the working dtype, the second shift small (one rounding, as in the
        # row core's z - m - log(sum)); coef 0 -> shift +inf -> 0
        live = coef != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            if (coef >= 0).all():
                shift = np.where(live, rt["logs"] - np.log(coef), np.inf)
                mult = None
            else:  # negative sample weights: multiply instead
                shift = np.where(live, rt["logs"], np.inf)
                mult = coef.astype(dt)[:, None]
        return dict(m=np.where(live, rt["m"], 0.0).astype(dt)[:, None],
                    shift=shift.astype(dt)[:, None], mult=mult, cy=rt["cy"].astype(dt),
                    smooth=None if rt["smooth"] is None else rt["smooth"].astype(dt)[:, None],
                    zrows=rt["zrows"])

    def backward(self, k, s, e, bt, phase):
        """Thread ``k`` takes class blocks of rows ``s:e`` until none is left:
        ``G_c = coef exp(z_c - lse) - a_c``, pushed through the products;
        the ``dX`` pieces are added in block order (``phase.merge``)."""
        Xb = self.X[s:e]
        buf = self._buffers(k)
        m, shift, mult, cy, smooth, zrows = (bt[key] for key in (
            "m", "shift", "mult", "cy", "smooth", "zrows"))
        yb = self.target[s:e] if self.labels else None
        dXb = None if self.dX is None else self.dX[s:e]
        while (j := phase.take()) is not None:
            c0 = j * self.kc
            c1 = min(self.K, c0 + self.kc)
            Z = self._logits(Xb, c0, c1, buf)
            with np.errstate(invalid="ignore", over="ignore"):
                Z -= m
                Z -= shift
                np.exp(Z, out=Z)
            if mult is not None:
                Z *= mult
            if zrows.size:
                Z[zrows] = 0  # rows with +inf / NaN logits: redone exactly or ignored
            uc = None if self.u is None else self.u[c0:c1]
            if self.labels:
                r = np.flatnonzero((yb >= c0) & (yb < c1))
                if r.size:
                    Z[r, yb[r] - c0] -= cy[r]
            else:
                Pc = self.target[s:e, c0:c1] * cy[:, None]
                if uc is not None:
                    Pc *= uc
                Z -= Pc
            if smooth is not None:
                if uc is None:
                    Z -= smooth
                else:
                    Z -= smooth * uc
            self._push(Z, Xb, c0, c1, buf)
            if dXb is not None:
                phase.merge(j, np.matmul(Z, self.W[c0:c1]), dXb.__iadd__)
            else:
                phase.merge(j, None, _no_op)  # the block is done

    def _push(self, G, Xb, c0, c1, buf):
        """``dW_c += G^T X_b``, ``dbias_c += sum_i G_i`` (rows of their own)."""
        if self.sparse:
            self.dW[c0:c1] += np.asarray(Xb.T @ G).T
        else:
            tmpw = buf["dw"][:(c1 - c0) * self.d].reshape(c1 - c0, self.d)
            np.matmul(G.T, Xb, out=tmpw)
            self.dW[c0:c1] += tmpw
        if self.db is not None:
            nb = G.shape[0]
            self.db[c0:c1] += np.matmul(buf["ones"][:nb], G)

    # -- rows redone exactly ---------------------------------------------------------------
    def redo(self, idx):
        """Rows ``idx`` (non-finite logits or loss pieces) through the row
        core on their full logits, a few rows at a time (memory
        ``_MAX_BLOCK_BYTES``): exactly the row path's values and edge cases."""
        step = max(1, _MAX_BLOCK_BYTES // (self.K * self.dt.itemsize))
        for i0 in range(0, idx.size, step):
            rows = idx[i0:i0 + step]
            Xr = self.X[rows]
            Z = np.ascontiguousarray(Xr @ self.W.T, dtype=self.dt)
            if self.b is not None:
                Z += self.b
            loss, _, G = _ce_block(Z, self.target[rows], self.u, self.ignore, self.eps,
                                   self.need_grad, True)
            del Z
            f = None if self.row_scale is None else self.row_scale[rows]
            self.loss_rows[rows] = loss if f is None else loss * f
            if not self.need_grad:
                continue
            if f is not None:
                G *= f.astype(self.dt)[:, None]
            if self.dX is not None:
                self.dX[rows] += np.asarray(G @ self.W)
            for c0 in range(0, self.K, self.kc):
                c1 = min(self.K, c0 + self.kc)
                self.dW[c0:c1] += np.asarray(Xr.T @ G[:, c0:c1]).T
            if self.db is not None:
                self.db += G.sum(axis=0, dtype=np.float64)


def _class_pass(X, W, b, target, weight, ignore_index, eps, row_scale, grad_scale, need_grad,
                need_dX, rows, kc):
    """``_fused_pass`` over blocks of rows and, inside each, blocks of ``kc``
    classes (online logsumexp); same arguments (``rows`` for ``block``) and
    returns.  Peak extra memory, whatever ``N`` and ``K`` (outputs and O(N)
    per-row vectors aside): per thread a ``rows x kc`` block of logits, a
    ``kc x d`` product buffer and at most ``_AHEAD`` pieces of ``rows x d``
    waiting to be merged."""
    cs = _ClassSweep(X, W, b, target, weight, ignore_index, eps, row_scale, need_grad,
                     need_dX, rows, kc)
    N = cs.N
    limit = cs.T > 1 or rows * kc * cs.d < _SMALL_GEMM
    # our threads, or products too small for BLAS's threads (as in the row path)
    from .._pool import blas_limit

    with blas_limit(1) if limit else contextlib.nullcontext():
        for s in range(0, N, rows):
            e = min(N, s + rows)
            zy = np.zeros(e - s) if cs.labels else None
            acc = _OnlineLSE(e - s, cs.eps > 0, not cs.labels)
            _sweep(cs.forward, cs.T, cs.nkb, s, e, zy, acc=acc)
            rt = cs.row_terms(s, e, acc.m, acc.ssum, acc.swz, acc.spz, zy)
            if need_grad:
                if cs.dX is not None:
                    cs.dX[s:e] = 0
                _sweep(cs.backward, cs.T, cs.nkb, s, e, cs.backward_terms(rt))
            if rt["bad"].size:
                cs.redo(s + rt["bad"])
    dX, dW, db = cs.dX, cs.dW, cs.db
    if need_grad and grad_scale != 1.0:
        g = cs.dt.type(grad_scale)
        dW *= g
        if dX is not None:
            dX *= g
        if db is not None:
            db *= grad_scale
    if db is not None:
        db = db.astype(cs.dt)
    return cs.loss_rows, cs.wsum, dX, dW, db


def _check_2d(a, name):
    if hasattr(a, "tocsr") and hasattr(a, "nnz"):
        raise TypeError(f"{name} of {_OWNER} must be a dense array; got a scipy.sparse "
                        f"{type(a).__name__}.  For sparse X, LinearSoftmaxLoss gives the loss, "
                        "its gradient in (W, b) and Hessian products without densifying X; "
                        "or pass X.toarray().")
    aw, out_dtype = as_float_array(a, name)
    if aw.ndim != 2:
        raise ValueError(f"{name} of {_OWNER} must be a 2-D array; got shape {aw.shape}.")
    return aw, out_dtype


def linear_cross_entropy(X, W, target, *, bias=None, weight=None, ignore_index=None,
                         label_smoothing=0.0, reduction="mean", return_grad=False,
                         chunk_size=None, class_chunk_size=None):
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
        Rows per block.  By default ``N / (10 T)`` for ``T`` threads (as many
        as BLAS may use, at most the CPUs; one block in flight per thread, so all blocks together
        are 1/10 of the ``N x K`` logits) clipped to [64, 1024] rows and to
        a block of at most 64 MiB; 512 rows on the class-blocked path.
    class_chunk_size : int >= 1, optional
        Classes per block: each block of rows is then processed over blocks
        of this many classes with an online logsumexp (two sweeps, see
        Notes), so the extra memory does not grow with ``K`` either.  By
        default this path is taken only when a block of 64 rows over all
        ``K`` classes would exceed 64 MiB (``K > 262144`` in float32), with
        blocks of about 4 MiB of logits.

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

    Class-blocked path.  With target coefficients ``a_ic`` (those of
    :func:`cross_entropy`: ``(1 - eps) w_y [c = y] + (eps / K) w_c`` for a
    label, ``w_c ((1 - eps) p_ic + eps / K)`` for probabilities) and
    ``A_i = sum_c a_ic``, the loss of a row is

    .. math:: \ell_i = A_i \,\mathrm{lse}(z_i) - \sum_c a_{ic} z_{ic},
              \qquad \mathrm{lse}(z_i) = m_i + \log \sum_c e^{z_{ic} - m_i},

    and a first sweep over blocks of classes accumulates the running max
    ``m_i``, the rescaled sum (``s <- s e^{m - m'} + sum_{block} e^{z - m'}``
    when the max grows to ``m'``), ``z_{i y_i}`` and ``sum_c a_ic z_ic`` in
    float64.  A second sweep recomputes each block of logits and forms
    ``G_c = A_i e^{z_c - lse_i} - a_c`` (the gradient of the rows' losses),
    so ``X W^T`` is computed twice.  Rows whose logits hold ``+inf`` or NaN,
    or whose loss terms are not finite (``-inf`` logits with a non-zero
    target coefficient or ``0 * log 0``) are recomputed with the row core on
    their full logits, so every edge case of :func:`cross_entropy` holds on
    both paths.  float32 losses agree with the row path to about 1e-6
    relative (the block sums of exponentials are float32; a tiny loss of a
    very confident row has an absolute error of about ``1e-7`` per block).

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

    Blocks of 2 classes (an online logsumexp) give the same values:

    >>> loss2, (dX2, dW2, _) = smk.linear_cross_entropy(X, W, y, return_grad=True,
    ...                                                 class_chunk_size=2)
    >>> bool(np.isclose(loss2, loss)), bool(np.allclose(dW2, dW))
    (True, True)
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
    class_chunk_size = check_scalar_param(class_chunk_size, "class_chunk_size", _OWNER,
                                          kind=int, low=1, allow_none=True)
    w = _check_weight(weight, K, dt, _OWNER)
    if not isinstance(return_grad, (bool, np.bool_)):
        raise param_error("return_grad", _OWNER, "a bool", return_grad, exc=TypeError)

    t = np.asarray(target)
    if t.dtype.kind == "f" and t.size == 0 and t.shape == (N,):
        t = t.astype(np.intp)  # an empty list of labels (``[]`` is float64 to NumPy)
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
    if _use_class_blocks(N, K, chunk_size, class_chunk_size, dt.itemsize):
        rows, kc = _class_block_shape(N, K, d, chunk_size, class_chunk_size, dt.itemsize)
        loss_rows, _, dX, dW, db = _class_pass(
            Xw, Ww, b, tgt, w, ign, eps, None, grad_scale, return_grad, True, rows, kc)
    else:
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


def _linear_ce_sum(X, W, b, target, sample_weight, need_grad, chunk_size=None,
                   class_chunk_size=None):
    """``sum_i s_i CE(X_i W^T + b, target_i)`` and its gradients in W and b.

    For ``LinearSoftmaxLoss``: ``X`` (n, d) float ndarray or scipy.sparse
    matrix, ``W`` (K, d) of X's dtype, ``b`` (K,) or None, ``target`` (n,)
    intp labels in [0, K) or (n, K) probabilities, ``sample_weight`` None or
    (n,).  Already validated.  Returns ``(loss_sum, dW, db)`` (``dW``/``db``
    None without ``need_grad``; ``db`` None when ``b`` is None); memory
    O(chunk * K) beyond the outputs, or O(chunk * class_chunk) on the
    class-blocked path (taken as in :func:`linear_cross_entropy`).
    """
    if not isinstance(X, np.ndarray):
        X = X.tocsr()
    W = np.ascontiguousarray(W)
    N = X.shape[0]
    K = W.shape[0]
    rs = None
    if sample_weight is not None:
        rs = np.asarray(sample_weight, dtype=np.float64)
    target = np.asarray(target)
    if target.ndim == 2:
        target = np.ascontiguousarray(target, dtype=W.dtype)
    if _use_class_blocks(N, K, chunk_size, class_chunk_size, W.dtype.itemsize):
        rows, kc = _class_block_shape(N, K, W.shape[1], chunk_size, class_chunk_size,
                                      W.dtype.itemsize)
        loss_rows, _, _, dW, db = _class_pass(
            X, W, b, target, None, None, 0.0, rs, 1.0, need_grad, False, rows, kc)
    else:
        block = _block_rows(N, K, chunk_size, W.dtype.itemsize)
        loss_rows, _, _, dW, db = _fused_pass(
            X, W, b, target, None, None, 0.0, rs, 1.0, need_grad, False, block)
    return float(np.sum(loss_rows)), dW, db
