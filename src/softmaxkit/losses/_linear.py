"""Cross-entropy of a linear softmax model Z = X W^T + b: value, gradient and
Hessian-vector products with respect to (W, b), never forming the Jacobian."""

from __future__ import annotations

import numbers

import numpy as np

from .. import _dispatch
from ._cross_entropy import _ce_rows

__all__ = ["LinearSoftmaxLoss"]

# Memory rule (issue #6): when the n x K logits of X would take more than this
# many bytes (n * K * itemsize > 64 MiB), loss, gradient and Hessian products run
# over blocks of rows whose logits take at most this many bytes: the gradient
# through the fused ``losses._fused._linear_ce_sum``, the Hessian products by
# recomputing each block's probabilities from the cached ``coef`` (nothing n x K is
# kept).  Below it the whole logits are formed once and the probabilities cached.
# Tests lower it to exercise the blocked path on small data.
_MAX_LOGIT_BYTES = 64 << 20
# the explicit Hessian's (rows, K m) temporaries hold at most this many entries
_HESSIAN_CHUNK = 1 << 22


# Products on several threads.  With ``LinearSoftmaxLoss._threads`` > 1
# (SoftmaxRegression's fit sets it to ``_pool.max_threads()`` and runs BLAS in one
# thread meanwhile) the products with a large X run on consecutive row blocks of X
# (views, no copy) on softmaxkit's thread pool, one block per thread: SciPy's CSR
# products run in one thread (and release the GIL), and one-thread BLAS on row
# blocks beats multithreaded BLAS on these tall, thin products (50,000 x 100 X, 20
# columns, 2 cores: G^T X float64 4.7 ms against 6.3 ms with two BLAS threads and 9.1
# with one), whose idle threads also spin and take the cores from the compiled
# kernels.  X^T G sums the blocks' partial products in block order, so results do not
# depend on timing (they do on the number of threads, by rounding).
_SPARSE_PARALLEL_NNZ = 1 << 18
_DENSE_PARALLEL_SIZE = 1 << 18
# float32 X's float64 passes (``_loss_grad_state_cast``) cast one row block of at most
# this many entries (nonzeros) at a time: a 2 MiB float64 copy per thread, never X's
# (and, where the logits are kept, at most _MAX_LOGIT_BYTES of float64 logits at once)
_CAST_BLOCK_ENTRIES = 1 << 18


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _row_blocks(X, parts):
    """``(start, stop, view)`` for ``parts`` near-equal consecutive row blocks of the
    dense or CSR matrix ``X``; the views share X's memory."""
    n = X.shape[0]
    edges = np.linspace(0, n, parts + 1).round().astype(np.intp)
    blocks = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        if _is_sparse(X):
            lo, hi = X.indptr[a], X.indptr[b]
            # set on an empty matrix: SciPy's constructor copies a slice of less
            # than half its array (``prune``), which made every threaded pass copy
            # X's data and indices
            view = type(X)((int(b - a), X.shape[1]), dtype=X.dtype)
            view.indptr = X.indptr[a:b + 1] - lo
            view.indices = X.indices[lo:hi]
            view.data = X.data[lo:hi]
            for flag in ("_has_sorted_indices", "_has_canonical_format"):
                view.__dict__.pop(flag, None)   # recomputed from the new arrays
        else:
            view = X[a:b]
        blocks.append((int(a), int(b), view))
    return blocks


def _bounded_blocks(X, max_entries, max_rows=None, multiple=1):
    """``_row_blocks`` of dense or CSR X with at most ``max_entries`` entries
    (nonzeros) and ``max_rows`` rows each, their number a multiple of ``multiple``
    (as many blocks on every thread); CSC X (or no rows) is one block."""
    n = X.shape[0]
    if n == 0 or (_is_sparse(X) and X.format != "csr"):
        return [(0, n, X)]
    per_row = max(1, -(-X.nnz // n) if _is_sparse(X) else X.shape[1])
    rows = max(1, max_entries // per_row)
    if max_rows is not None:
        rows = max(1, min(rows, int(max_rows)))
    parts = -(-n // rows)
    parts = -(-parts // multiple) * multiple
    return _row_blocks(X, min(parts, n))


def _parallel(X, threads):
    """Whether the products with ``X`` run on ``threads`` row blocks."""
    if threads <= 1 or X.shape[0] < threads:
        return False
    if _is_sparse(X):
        return X.format == "csr" and X.nnz >= _SPARSE_PARALLEL_NNZ
    return isinstance(X, np.ndarray) and X.size >= _DENSE_PARALLEL_SIZE


def _dot(X, B, threads=1):
    """``X @ B`` as a C-contiguous (n, K) array in X's dtype (dense or sparse X; B
    dense (d, K))."""
    if not _parallel(X, threads):
        return np.ascontiguousarray(X @ B, dtype=X.dtype)
    from .._pool import run_tasks

    out = np.empty((X.shape[0], B.shape[1]), dtype=X.dtype)
    if _is_sparse(X):
        B = np.ascontiguousarray(B)

        def block(a, b, Xb):
            out[a:b] = Xb @ B
    else:
        B = B.astype(X.dtype, copy=False)

        def block(a, b, Xb):
            np.matmul(Xb, B, out=out[a:b])

    run_tasks(block, _row_blocks(X, threads))
    return out


def _xt_dot_serial(X, G):
    if _is_sparse(X):
        return np.asarray(X.T @ G)
    # (G^T X)^T: for C-contiguous X this is BLAS's fast layout (measured 1.7x
    # faster than X.T @ G for a 50,000 x 100 X and 20 columns)
    return (G.T @ X).T


def _xt_dot(X, G, threads=1):
    """X^T G as a (d, K) array (dense or sparse X)."""
    if not _parallel(X, threads):
        return _xt_dot_serial(X, G)
    from .._pool import run_tasks

    parts = run_tasks(lambda a, b, Xb: _xt_dot_serial(Xb, G[a:b]), _row_blocks(X, threads))
    out = np.array(parts[0])
    for part in parts[1:]:  # block order
        out += part
    return out


def _ce(z, target):
    """Contract 1 through the dispatcher: per-row loss and d loss / d z."""
    fast = _dispatch.kernel("cross_entropy", z)
    if fast is None:
        out = _ce_plain(z, target)
        if out is not None:
            return out
        fast = _ce_rows
    loss, _, grad = fast(z, target, None, None, 0.0, True)
    return loss, grad


def _ce_plain(z, target):
    """Per-row loss and gradient of finite logits by the plain max-shifted formula,
    computed in float64 (the fit's passes below the kernels' size: 3x faster than
    the compensated reference ``_ce_rows``, 0.17 against 0.5 ms for 1797 x 10
    logits, and within a few float64 ulp of it, far below any solver tolerance);
    None when a logit is not finite (the reference handles those)."""
    if z.shape[1] == 0:
        return None
    zz = z.astype(np.float64, copy=False)
    m = zz.max(axis=1)
    if not np.isfinite(m).all():
        return None
    E = zz - m[:, None]
    if target.ndim == 1:
        rows = np.arange(zz.shape[0])
        picked = E[rows, target]
    else:
        A = target.astype(np.float64, copy=False)
        mass = A.sum(axis=1)
        with np.errstate(invalid="ignore"):
            picked = np.einsum("ij,ij->i", A, E)
        if not np.isfinite(picked).all():  # 0 * -inf counts 0 (no mass on that class)
            with np.errstate(invalid="ignore"):
                picked = np.where(A != 0, A * E, 0.0).sum(axis=1)
    np.exp(E, out=E)
    total = E.sum(axis=1)
    lse = np.log(total)
    E /= total[:, None]
    if target.ndim == 1:
        loss = lse - picked
        E[rows, target] -= 1.0
    else:
        loss = lse * mass - picked
        E *= mass[:, None]
        E -= A
    return loss.astype(z.dtype, copy=False), E.astype(z.dtype, copy=False)


def _col_sums(G):
    """Column sums of the (n, K) array G (a GEMV: faster than ``G.sum(axis=0)``)."""
    return np.ones(G.shape[0], dtype=G.dtype) @ G


def _sum_blocks(terms):
    """Sum ``(W part, b part)`` pairs over row blocks, in block order
    (``b part`` is None without an intercept)."""
    W = b = None
    for Wb, bb in terms:
        if W is None:
            W, b = Wb, bb
        else:
            W = W + Wb
            if b is not None:
                b = b + bb
    return W, b


class _ProbState:
    """What a Hessian-vector product at one ``coef`` needs: the probabilities,
    pre-multiplied by the sample weights (built lazily from the gradient of the
    per-row loss, so a gradient-only call pays nothing)."""

    __slots__ = ("_R", "_Y", "_s", "_PS", "_P")

    def __init__(self, R, Y, s):
        self._R = R  # softmax(Z) - Y (unweighted), owned by this object
        self._Y = Y
        self._s = s
        self._P = None
        self._PS = None

    def probs(self):
        if self._P is None:
            self._P = _onehot_add(self._R, self._Y)
            self._R = None
        return self._P

    def astype(self, dtype):
        """A copy whose probabilities have ``dtype`` (for mixed-precision products)."""
        P = self.probs()
        if P.dtype == dtype:
            return self
        out = _ProbState(None, self._Y, None if self._s is None else self._s.astype(dtype))
        out._P = P.astype(dtype)
        out._PS = self.weighted().astype(dtype)
        return out

    def weighted(self):
        if self._PS is None:
            P = self.probs()
            self._PS = P if self._s is None else P * self._s[:, None]
        return self._PS

    def blocks(self, X):
        """Yield ``(rows, X_rows, P, PS)``: here one block, all rows."""
        yield slice(None), X, self.probs(), self.weighted()


def _onehot_add(R, Y):
    """``R + Y`` in place (``Y``: labels or probabilities), clipped at 0: the
    probabilities from the gradient ``P - Y`` of the per-row loss."""
    if Y.ndim == 1:
        R[np.arange(R.shape[0]), Y] += 1
    else:
        R += Y
    np.maximum(R, 0, out=R)
    return R


class _BlockedState:
    """The Hessian state for large ``n * K``: only ``(W, b)``; each call of
    :meth:`blocks` recomputes the probabilities one row block at a time."""

    __slots__ = ("_W", "_b", "_Y", "_s", "_rows")

    def __init__(self, W, b, Y, s, rows):
        self._W, self._b, self._Y, self._s, self._rows = W, b, Y, s, int(rows)

    def astype(self, dtype):
        """A copy computing in ``dtype`` (for mixed-precision products)."""
        if self._W.dtype == dtype:
            return self
        return _BlockedState(self._W.astype(dtype), None if self._b is None else
                             self._b.astype(dtype), self._Y,
                             None if self._s is None else self._s.astype(dtype), self._rows)

    def blocks(self, X):
        """Yield ``(rows, X_rows, P, PS)`` for consecutive row blocks of ``X``."""
        n = X.shape[0]
        WT = self._W.T
        for start in range(0, n, self._rows):
            rows = slice(start, min(n, start + self._rows))
            Xb = X[rows]
            Z = np.ascontiguousarray(Xb @ WT, dtype=self._W.dtype)
            if self._b is not None:
                Z += self._b
            _, R = _ce(Z, self._Y[rows])
            del Z
            P = _onehot_add(R, self._Y[rows])
            PS = P if self._s is None else P * self._s[rows, None]
            yield rows, Xb, P, PS


class LinearSoftmaxLoss:
    """Summed, sample-weighted cross-entropy of the linear softmax model.

    ``loss(coef) = sum_i s_i CE(z_i, y_i)`` with ``z_i = W x_i + b``, where the flat
    parameter vector ``coef`` of length ``K * (d + fit_intercept)`` is
    ``coef.reshape(K, d + fit_intercept)``, the last column holding ``b``.
    Gradients and Hessian-vector products are computed through the logits, so
    nothing larger than one ``(n, K)`` array is formed and the softmax Jacobian
    never is.  No penalty is added.

    Parameters
    ----------
    n_classes : int
        Number of classes ``K`` (>= 2).
    fit_intercept : bool, default=True
        Whether ``coef`` holds an intercept column.

    Notes
    -----
    With ``P = softmax(Z)`` (row-wise) and ``Y`` the one-hot labels (or target
    probabilities) the gradient is ``dW = (s * (P - Y))^T X``, ``db = sum_i s_i
    (P_i - Y_i)``.  The Hessian applied to ``V = (V_W, v_b)`` is, with
    ``U = X V_W^T + v_b``, ``R_i = s_i P_i * (U_i - <P_i, U_i>)``:
    ``HV_W = R^T X``, ``Hv_b = sum_i R_i``.  X may be a dense array or a SciPy
    sparse matrix (CSR/CSC used as they are, other formats converted to CSR):
    float32 data is computed in float32, float16 in float32, integers and bool
    in float64; complex or non-numeric X raises TypeError.  X is not scanned for
    NaN or inf (a scan would cost a pass over X per call; the estimators check
    once): such entries give a non-finite loss, as non-finite logits do in
    :func:`cross_entropy`.  ``sample_weight`` must be finite.

    Memory: when the logits would exceed 64 MiB (``n * K * itemsize``), every
    method works on blocks of rows with at most 64 MiB of logits each (the
    gradient through the fused ``linear_cross_entropy`` core; Hessian products
    recompute each block's probabilities instead of caching ``n x K`` of them),
    so the extra memory is a few blocks whatever ``n`` is.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.losses import LinearSoftmaxLoss
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = np.array([0, 1, 2])
    >>> lin = LinearSoftmaxLoss(n_classes=3)
    >>> coef = np.zeros(3 * 3)
    >>> bool(abs(lin.loss(coef, X, y) - 3 * np.log(3)) < 1e-12)
    True
    >>> f, g = lin.loss_gradient(coef, X, y)
    >>> g.reshape(3, 3)[:, -1]        # intercept gradient: sum_i (1/3 - Y_ik)
    array([0., 0., 0.])
    """

    # threads for the products with a large X (see _DENSE_PARALLEL_SIZE)
    _threads = 1

    def __init__(self, n_classes, fit_intercept=True):
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
                or n_classes < 2:
            from .._validation import param_error

            raise param_error("n_classes", "LinearSoftmaxLoss", "an int in [2, inf)", n_classes)
        self.n_classes = int(n_classes)
        self.fit_intercept = bool(fit_intercept)

    def __repr__(self):
        return (f"LinearSoftmaxLoss(n_classes={self.n_classes}, "
                f"fit_intercept={self.fit_intercept})")

    # ----------------------------------------------------------------- checks
    def _check(self, coef, X, Y, sample_weight):
        from .._validation import as_float_array

        owner = "LinearSoftmaxLoss"
        if _is_sparse(X):
            if X.format not in ("csr", "csc"):
                X = X.tocsr()
            # the dtype rule of the dense case (complex, object: TypeError)
            data, _ = as_float_array(X.data[:0], f"X of {owner}")
            if X.dtype != data.dtype:
                X = X.astype(data.dtype)
        else:
            X, _ = as_float_array(X, f"X of {owner}")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D; got shape {X.shape}.")
        n, d = X.shape
        K = self.n_classes
        coef = np.asarray(coef, dtype=np.float64).ravel()
        size = K * (d + self.fit_intercept)
        if coef.size != size:
            raise ValueError(f"coef must have {size} entries (n_classes * (n_features + "
                             f"fit_intercept)); got {coef.size}.")
        Y = np.asarray(Y)
        if Y.ndim == 1:
            if Y.shape[0] != n or Y.dtype.kind not in "iu":
                raise ValueError("Y must be (n_samples,) integer labels or (n_samples, "
                                 "n_classes) probabilities.")
            if n and (Y.min() < 0 or Y.max() >= K):
                raise ValueError(f"labels must lie in [0, {K}).")
            Y = Y.astype(np.intp, copy=False)
        elif Y.ndim == 2 and Y.shape == (n, K):
            from .._validation import soft_target_tol

            stored = Y.dtype
            Y = np.ascontiguousarray(Y, dtype=X.dtype)
            tol = soft_target_tol(X.dtype, stored)
            if (not np.all(np.isfinite(Y)) or np.any(Y < 0)
                    or np.any(np.abs(Y.sum(axis=1, dtype=np.float64) - 1.0) > tol)):
                raise ValueError("probability targets must be finite, non-negative rows "
                                 f"summing to 1 (within {tol:g}).")
        else:
            raise ValueError(f"Y must have shape ({n},) or ({n}, {K}); got {Y.shape}.")
        s = None
        if sample_weight is not None:
            s = np.asarray(sample_weight, dtype=X.dtype)
            if s.shape != (n,):
                raise ValueError(f"sample_weight must have shape ({n},); got {s.shape}.")
            bad = np.flatnonzero(~np.isfinite(s))
            if bad.size:
                raise ValueError(f"sample_weight of {owner} must be finite; got "
                                 f"{float(s[bad[0]])!r} at index {bad[0]}.")
        return coef, X, Y, s

    def _check_v(self, v, coef):
        v = np.asarray(v, dtype=np.float64).ravel()
        if v.size != coef.size:
            raise ValueError(f"v must have {coef.size} entries, like coef; got {v.size}.")
        return v

    # -------------------------------------------------------------- internals
    def _split(self, coef, d, dtype):
        Wb = coef.reshape(self.n_classes, d + self.fit_intercept)
        if Wb.dtype != dtype:
            Wb = Wb.astype(dtype)
        if self.fit_intercept:
            return Wb[:, :d], Wb[:, d]
        return Wb, None

    def _logits(self, coef, X):
        W, b = self._split(coef, X.shape[1], X.dtype)
        Z = _dot(X, W.T, self._threads)
        if b is not None:
            Z += b
        return Z

    def _pack(self, gW, gb):
        if self.fit_intercept:
            return np.concatenate([gW, gb[:, None]], axis=1).ravel()
        return np.ascontiguousarray(gW).ravel()

    def _value(self, loss, s):
        if s is None:
            return float(np.sum(loss, dtype=np.float64))
        return float(np.dot(loss.astype(np.float64, copy=False), s.astype(np.float64,
                                                                            copy=False)))

    def _block_rows(self, X):
        """Rows per block, or None when the whole logits fit ``_MAX_LOGIT_BYTES``."""
        n, K = X.shape[0], self.n_classes
        per_row = K * np.dtype(X.dtype).itemsize
        if n * per_row <= _MAX_LOGIT_BYTES:
            return None
        return max(1, _MAX_LOGIT_BYTES // per_row)

    def _fused_rows(self, X, rows):
        """The ``chunk_size`` for ``_linear_ce_sum``: ``rows``, unless K is so large
        that it takes its class-blocked path, which then picks its own rows (few rows
        over all K classes would leave BLAS far from its peak)."""
        from ._fused import _use_class_blocks

        if _use_class_blocks(X.shape[0], self.n_classes, None, None,
                             np.dtype(X.dtype).itemsize):
            return None
        return rows

    def _loss_grad_state(self, coef, X, Y, s):
        """(value, flat gradient in X's dtype, state for Hessian products)."""
        rows = self._block_rows(X)
        if rows is not None:
            from ._fused import _linear_ce_sum

            W, b = self._split(coef, X.shape[1], X.dtype)
            W = np.ascontiguousarray(W)
            value, gW, gb = _linear_ce_sum(X, W, b, Y, s, True,
                                           chunk_size=self._fused_rows(X, rows))
            grad = self._pack(gW, None if gb is None else gb.astype(X.dtype))
            return value, grad, _BlockedState(W, b, Y, s, rows)
        if _parallel(X, self._threads):
            return self._loss_grad_state_blocks(coef, X, Y, s)
        Z = self._logits(coef, X)
        loss, R = _ce(Z, Y)
        del Z
        value = self._value(loss, s)
        G = R if s is None else R * s[:, None]
        gW = _xt_dot(X, G).T
        gb = _col_sums(G) if self.fit_intercept else None
        grad = self._pack(gW, gb)
        return value, grad, _ProbState(R, Y, s)

    def _loss_grad_state_blocks(self, coef, X, Y, s):
        """``_loss_grad_state`` with the whole pass (logits, cross-entropy, partial
        gradient) per row block of X, one block per thread; partial sums added in
        block order."""
        from .._pool import one_thread, run_tasks

        W, b = self._split(coef, X.shape[1], X.dtype)
        WT = W.T
        R = np.empty((X.shape[0], self.n_classes), dtype=X.dtype)

        def one(lo, hi, Xb):
            with one_thread():
                return self._grad_rows(Xb, WT, b, Y[lo:hi], None if s is None else s[lo:hi],
                                       R[lo:hi])

        parts = run_tasks(one, _row_blocks(X, self._threads))
        value = 0.0
        for part in parts:  # block order
            value += part[0]
        gW, gb = _sum_blocks((part[1], part[2]) for part in parts)
        return value, self._pack(gW, gb), _ProbState(R, Y, s)

    def _cast_blocks(self, X, cap_logits):
        """Row blocks ``(start, stop, view)`` of float32 X for the passes that cast
        them to float64 one at a time: at most ``_CAST_BLOCK_ENTRIES`` entries
        (nonzeros) each and, with ``cap_logits``, at most ``_MAX_LOGIT_BYTES`` of
        float64 logits over the threads at once; as many blocks on every thread.
        CSC X is one block (its data array is cast whole: pass CSR to avoid it)."""
        threads = max(1, int(self._threads))
        max_rows = _MAX_LOGIT_BYTES // (8 * self.n_classes * threads) if cap_logits else None
        return _bounded_blocks(X, _CAST_BLOCK_ENTRIES, max_rows, threads)

    def _run_cast(self, fn, blocks, dtype):
        """``[fn(start, stop, X_block cast to dtype) for each block]``, the blocks
        shared out to the threads in consecutive runs (one BLAS thread each)."""
        from .._pool import one_thread, run_ranges

        out = [None] * len(blocks)

        def run(lo, hi):
            with one_thread():
                for i in range(lo, hi):
                    a, c, Xb = blocks[i]
                    if _is_sparse(Xb):
                        Xb = type(Xb)((Xb.data.astype(dtype), Xb.indices, Xb.indptr),
                                      shape=Xb.shape)
                    else:
                        Xb = Xb.astype(dtype)
                    out[i] = fn(a, c, Xb)

        run_ranges(run, len(blocks), self._threads)
        return out

    def _loss_grad_state_cast(self, coef, X, Y, s, state_dtype=None, dtype=np.float64):
        """``_loss_grad_state`` computed in ``dtype`` (float64) from X of a narrower
        dtype (float32), one row block of X cast at a time (``_cast_blocks``): a
        float64 pass without a float64 copy of X.  The blocks' partial sums are
        added in block order, so the result does not depend on timing (it does on
        the number of threads, by rounding).  The state for the Hessian products
        keeps the probabilities in ``state_dtype`` (default X's) while they fit
        ``_MAX_LOGIT_BYTES``; past that it recomputes them by blocks in X's dtype,
        and the pass runs the fused kernel on each cast block (no logits kept)."""
        dtype = np.dtype(dtype)
        state_dtype = np.dtype(X.dtype if state_dtype is None else state_dtype)
        n, d, K = X.shape[0], X.shape[1], self.n_classes
        keep = n * K * state_dtype.itemsize <= _MAX_LOGIT_BYTES
        W, b = self._split(coef, d, dtype)
        soft = Y.ndim == 2 and Y.dtype != dtype
        if keep:
            R = np.empty((n, K), dtype=state_dtype)
            WT = W.T

            def one(a, c, Xb):
                return self._grad_rows(Xb, WT, b, Y[a:c].astype(dtype) if soft else Y[a:c],
                                       None if s is None else s[a:c], R[a:c])
        else:
            from ._fused import _linear_ce_sum

            Wc = np.ascontiguousarray(W)
            # the threads' logits together within _MAX_LOGIT_BYTES
            chunk = max(1, _MAX_LOGIT_BYTES // (K * dtype.itemsize
                                                * max(1, int(self._threads))))

            def one(a, c, Xb):
                sb = None if s is None else s[a:c]
                value, gW, gb = _linear_ce_sum(
                    Xb, Wc, b, Y[a:c].astype(dtype) if soft else Y[a:c], sb, True,
                    chunk_size=self._fused_rows(Xb, chunk))
                return value, gW, gb

        out = self._run_cast(one, self._cast_blocks(X, keep), dtype)
        value = 0.0
        for part in out:  # block order
            value += part[0]
        grad = self._pack(*_sum_blocks((part[1], part[2]) for part in out))
        if keep:
            return value, grad, _ProbState(R, Y, s)
        Wx, bx = self._split(coef, d, X.dtype)
        return value, grad, _BlockedState(np.ascontiguousarray(Wx), bx, Y, s,
                                          self._block_rows(X) or max(1, n))

    def _hvp_cast(self, state, X, v, dtype=np.float64):
        """``_hvp`` in ``dtype`` (float64) on X of a narrower dtype (float32), one
        row block cast at a time, for a state whose probabilities are kept
        (``_ProbState``, best in ``dtype``): for small problems whose nearly flat
        directions float32 products blur."""
        d = X.shape[1]
        P, PS = state.probs(), state.weighted()
        V, vb = self._split(np.asarray(v, dtype=np.float64).ravel(), d, dtype)
        VT = V.T

        def one(a, c, Xb):
            return self._hvp_rows(Xb, P[a:c], PS[a:c], VT, vb)

        return self._pack(*_sum_blocks(self._run_cast(one, self._cast_blocks(X, True),
                                                      dtype)))

    def _grad_rows(self, Xb, WT, b, Yb, sb, R_out):
        """One row block's part of a gradient pass: its probabilities minus targets
        into ``R_out``, and ``(weighted loss, W part, b part)``."""
        Z = _dot(Xb, WT)
        if b is not None:
            Z += b
        loss, Rb = _ce(Z, Yb)
        del Z
        R_out[...] = Rb
        G = Rb if sb is None else Rb * sb[:, None]
        return (self._value(loss, sb), _xt_dot_serial(Xb, G).T,
                _col_sums(G) if self.fit_intercept else None)

    def _hvp_rows(self, Xb, P, PS, VT, vb):
        """One row block's part of a Hessian-vector product: ``(W part, b part)``."""
        U = _dot(Xb, VT)
        if vb is not None:
            U += vb
        t = np.einsum("ij,ij->i", P, U)
        U -= t[:, None]
        U *= PS
        return _xt_dot_serial(Xb, U).T, (_col_sums(U) if self.fit_intercept else None)

    def _state_at(self, coef, X, Y, s):
        rows = self._block_rows(X)
        if rows is not None:
            W, b = self._split(coef, X.shape[1], X.dtype)
            return _BlockedState(np.ascontiguousarray(W), b, Y, s, rows)
        Z = self._logits(coef, X)
        _, R = _ce(Z, Y)
        return _ProbState(R, Y, s)

    def _hvp(self, state, X, v):
        d = X.shape[1]
        V, vb = self._split(np.asarray(v, dtype=np.float64).ravel(), d, X.dtype)
        VT = V.T

        def one(Xb, P, PS):
            return self._hvp_rows(Xb, P, PS, VT, vb)

        def terms():
            for _, Xb, P, PS in state.blocks(X):
                if _parallel(Xb, self._threads):
                    # the whole product per row block: the elementwise part in the
                    # tasks too; partial sums in block order
                    from .._pool import run_tasks

                    yield from run_tasks(lambda a, b, Xr, P=P, PS=PS: one(Xr, P[a:b], PS[a:b]),
                                         _row_blocks(Xb, self._threads))
                else:
                    yield one(Xb, P, PS)

        return self._pack(*_sum_blocks(terms()))

    def _hess_diag(self, state, X_sq, X=None):
        """Diagonal of the Hessian (flat, like coef) given X**2 (dense or sparse);
        ``X`` itself is needed when ``state`` recomputes probabilities by blocks."""
        if X is None:
            if isinstance(state, _BlockedState):
                raise ValueError("_hess_diag of a blocked state needs X.")
            X = X_sq

        def terms():
            for rows, _, P, PS in state.blocks(X):
                Xb_sq = X_sq if rows == slice(None) else X_sq[rows]
                C = PS * (1 - P)
                yield _xt_dot(Xb_sq, C, self._threads).T, (
                    _col_sums(C) if self.fit_intercept else None)

        return self._pack(*_sum_blocks(terms()))

    def _class_hessian(self, state, X):
        """``B = sum_i s_i (diag(p_i) - p_i p_i^T)`` (K, K), float64.

        Its diagonal is taken as minus the sum of the off-diagonal row (``B_kk =
        sum_i s_i p_ik (1 - p_ik) = sum_{l != k} sum_i s_i p_ik p_il`` since every
        ``p_i`` sums to 1), so that ``B 1 = 0`` holds to float64 rounding also for
        float32 probabilities: the Kronecker preconditioner divides by ``B``'s
        eigenvalue along ``1`` plus the l2 weight, and a float32 ``B`` off by 1e-7
        there blew its projected inverse up 400x at C=100."""
        K = self.n_classes
        B = np.zeros((K, K))
        for _, _, P, PS in state.blocks(X):
            B -= np.asarray(_xt_dot(P, PS, self._threads), dtype=np.float64)
        B = (B + B.T) / 2
        np.fill_diagonal(B, 0.0)
        np.fill_diagonal(B, -B.sum(axis=1))
        return B

    def _class_blocks(self, P, X, s, rows, dtype=np.float32):
        """The per-class diagonal blocks of the Hessian, ``A_k = sum_i s_i p_ik (1 -
        p_ik) x~_i x~_i^T`` (x~: x with the intercept's 1 when ``fit_intercept``),
        shape (K, m, m), float64, products in ``dtype``, for dense X and the
        probabilities ``P`` (n, K) of its rows.

        With ``rows < n`` each block is estimated on ``rows`` rows drawn with
        probability proportional to their weight ``w_ik = s_i p_ik (1 - p_ik)``
        (importance sampling): row ``i`` is drawn once for each point ``(j + u_j) /
        rows`` (``u_j`` uniform in [0, 1), fixed per class, so no random state is
        consumed) that falls in its share of the weights' running sum, and each
        draw counts ``sum_i w_ik / rows`` (an unbiased estimate; the jitter keeps a
        regular row order from aliasing with evenly spaced points).  Most rows are all
        but sure of most classes and add almost nothing to ``A_k``; a uniform subset
        would spend most of its rows on them.  With ``rows >= n`` the blocks are
        exact.  Two classes have the same weights, so their blocks are one block
        computed once.  The classes are shared out to ``_threads`` threads."""
        from .._pool import run_ranges

        n, d = X.shape
        K = self.n_classes
        m = d + int(self.fit_intercept)
        PT = np.ascontiguousarray(np.asarray(P).T)   # (K, n), in P's dtype
        sw = None if s is None else np.asarray(s, dtype=np.float64)
        rows = int(rows)
        exact = rows >= n
        Xa = np.asarray(X, dtype=dtype) if exact else None
        out = np.zeros((K, m, m))

        def blocks(lo, hi):
            for k in range(lo, hi):
                p = PT[k].astype(np.float64)
                w = p * (1.0 - p)
                if sw is not None:
                    w *= sw
                if exact:
                    # every row by its weight, scaled to at most 1 inside the products
                    # (float32 sums of huge sample weights would overflow)
                    top = float(w.max(initial=0.0))
                    if not top > 0:
                        continue
                    Xg, count, scale = Xa, (w / top).astype(dtype), top
                else:
                    cum = np.cumsum(w)
                    tot = float(cum[-1])
                    if not tot > 0:
                        continue
                    u = np.random.default_rng(k).random(rows)
                    idx = np.searchsorted(cum, (np.arange(rows) + u) / rows * tot,
                                          side="right")
                    np.minimum(idx, n - 1, out=idx)
                    # the points are sorted: a row drawn several times comes in a run
                    first = np.flatnonzero(np.diff(idx, prepend=-1))
                    count = np.diff(first, append=idx.size).astype(dtype)
                    Xg = np.asarray(X[idx[first]], dtype=dtype)
                    scale = tot / rows
                Xw = Xg * count[:, None]
                block = out[k]
                block[:d, :d] = Xg.T @ Xw
                if self.fit_intercept:
                    col = Xw.sum(axis=0, dtype=np.float64)
                    block[:d, d] = col
                    block[d, :d] = col
                    block[d, d] = float(np.sum(count, dtype=np.float64))
                block *= scale

        if K == 2:
            blocks(0, 1)   # p_1 (1 - p_1) = p_0 (1 - p_0)
            out[1] = out[0]
            return out
        run_ranges(blocks, K, self._threads)
        return out

    def _hessian(self, state, X, dtype=np.float64):
        """Explicit (p, p) Hessian, p = K (d + fit_intercept); for small problems.

        With ``Xa`` = X with a column of ones (intercept), block ``(k, l)`` is
        ``Xa^T diag(s p_k (delta_kl - p_l)) Xa``: the block diagonal
        ``Xa^T diag(s p_k) Xa`` minus ``A^T A`` with ``A = [sqrt(s) p_k Xa]_k``
        of shape (n, K m), one symmetric rank-n update (BLAS ``syrk``).  Products
        in ``dtype`` (float32 halves the time: good enough for a preconditioner),
        result float64.
        """
        from scipy.linalg.blas import dsyrk, ssyrk

        dtype = np.dtype(dtype)
        syrk = ssyrk if dtype == np.float32 else dsyrk
        K = self.n_classes
        m = X.shape[1] + self.fit_intercept
        H = np.zeros((K * m, K * m))
        # rows in chunks: A below is (rows, K m), and a sparse X is densified a chunk
        # at a time (a 50,000 x 999 CSR X at 0.2% took 1.5 GB at once)
        step = max(1, _HESSIAN_CHUNK // (K * m))
        for Xb, P, PS in (
                (Xc[a:a + step], Pc[a:a + step], PSc[a:a + step])
                for _, Xc, Pc, PSc in state.blocks(X) for a in range(0, Xc.shape[0], step)):
            Xa = Xb.toarray() if _is_sparse(Xb) else Xb
            Xa = np.asarray(Xa, dtype=dtype)
            if self.fit_intercept:
                Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1), dtype=dtype)])
            P = np.asarray(P, dtype=np.float64)
            PS = np.asarray(PS, dtype=np.float64)
            # sqrt(s) p_k with s = PS / P (0 where p_k = 0)
            root = np.sqrt(PS * P).astype(dtype)
            # (n, m, K) in Fortran order: column k * m + j of the (n, K m) reshape
            A = np.empty((Xa.shape[0], m, K), dtype=dtype, order="F")
            np.multiply(Xa[:, :, None], root[:, None, :], out=A)
            # syrk fills the upper triangle only (the lower one stays 0)
            H -= syrk(1.0, A.reshape(Xa.shape[0], K * m, order="F"), trans=1)
            for k in range(K):
                H[k * m:(k + 1) * m, k * m:(k + 1) * m] += Xa.T @ (
                    PS[:, k:k + 1].astype(dtype) * Xa)
        lower = np.tril_indices(K * m, -1)
        H[lower] = H.T[lower]
        return H

    # ----------------------------------------------------------------- public
    def loss(self, coef, X, Y, sample_weight=None):
        """Return ``sum_i s_i CE(z_i, y_i)``.

        Parameters
        ----------
        coef : ndarray of shape (n_classes * (n_features + fit_intercept),)
            Flat ``(W, b)``.
        X : ndarray or sparse matrix of shape (n_samples, n_features)
        Y : ndarray of shape (n_samples,) (labels in ``[0, K)``) or (n_samples, K)
            Labels or target probabilities.
        sample_weight : ndarray of shape (n_samples,) or None

        Returns
        -------
        float
        """
        coef, X, Y, s = self._check(coef, X, Y, sample_weight)
        rows = self._block_rows(X)
        if rows is not None:
            from ._fused import _linear_ce_sum

            W, b = self._split(coef, X.shape[1], X.dtype)
            return _linear_ce_sum(X, np.ascontiguousarray(W), b, Y, s, False,
                                  chunk_size=self._fused_rows(X, rows))[0]
        Z = self._logits(coef, X)
        fast = _dispatch.kernel("cross_entropy", Z)
        fn = _ce_rows if fast is None else fast
        loss, _, _ = fn(Z, Y, None, None, 0.0, False)
        return self._value(loss, s)

    def loss_gradient(self, coef, X, Y, sample_weight=None):
        """Return the loss and its gradient with respect to ``coef``.

        Parameters are those of :meth:`loss`.

        Returns
        -------
        loss : float
        grad : ndarray of shape like ``coef``, X's working dtype (float32 for float16
            X, float64 for integer X)
        """
        coef, X, Y, s = self._check(coef, X, Y, sample_weight)
        value, grad, _ = self._loss_grad_state(coef, X, Y, s)
        return value, grad

    def hessp(self, coef, X, Y, sample_weight, v):
        """Return the Hessian at ``coef`` times ``v`` (both flat like ``coef``).

        Stateless: recomputes the probabilities; use :meth:`gradient_hessp` for many
        products at one point.
        """
        coef, X, Y, s = self._check(coef, X, Y, sample_weight)
        return self._hvp(self._state_at(coef, X, Y, s), X, self._check_v(v, coef))

    def gradient_hessp(self, coef, X, Y, sample_weight=None):
        """Return ``(loss, grad, hessp_fn)``; ``hessp_fn(v)`` multiplies by the Hessian
        at ``coef`` using the probabilities cached by this call."""
        coef, X, Y, s = self._check(coef, X, Y, sample_weight)
        value, grad, state = self._loss_grad_state(coef, X, Y, s)

        def hessp_fn(v):
            return self._hvp(state, X, self._check_v(v, coef))

        return value, grad, hessp_fn
