"""SoftmaxRegression: multinomial logistic regression with the scikit-learn API."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .. import _pool
from .._validation import (
    check_choice_param,
    check_entry_range,
    check_label_kinds,
    check_scalar_param,
    class_weight_vector,
    first_missing_label,
    param_error,
    products_fit,
    soft_target_tol,
)
from .._validation import plain as _plain
from ..losses._linear import (
    LinearSoftmaxLoss,
    _bounded_blocks,
    _col_sums,
    _is_sparse,
    _ProbState,
    _xt_dot,
)
from ..solvers import (
    Adam,
    hessian_from_hessp,
    lbfgs,
    newton_cholesky,
    proximal_newton,
    trust_region_newton_cg,
)
from ..solvers._base import convergence_text, quiet_convergence

__all__ = ["SoftmaxRegression"]

_OWNER = "SoftmaxRegression"
_SOLVERS = ("auto", "newton-cg", "newton-cholesky", "lbfgs", "prox-newton")
_PENALTIES = ("l2", "l1", "elasticnet", None)
# explicit-Hessian size limits (number of parameters K * (d + 1))
_CHOLESKY_MAX_WORK = 100      # (d + 1) * (K + 1) at most: Newton-Cholesky for tiny problems
# ... with at most this many multiply-adds per Hessian, n p^2 (p = K (d + 1)): beyond it
# Newton-CG is as fast or faster, 2-4.7x from n p^2 = 1e7 on make_classification
# (100,000 x 30 x 2: 670 against 143 ms); below it the two are within noise (300 x 4 x
# 3: 3.3 against 3.8 ms).  python benchmarks/bench_solver_rule.py, benchmarks/RESULTS.md
_CHOLESKY_MAX_HESSIAN_WORK = 1e6
_EXPLICIT_HESSIAN_MAX = 2000  # proximal Newton uses coordinate descent on H up to this size
_EXPLICIT_HESSIAN_WORK = 4e9  # ... and while building H (n p^2 multiply-adds) costs this
_KRON_DENSE_MAX = 2048        # the Kronecker preconditioner keeps the full X^T X up to this d
# ... and sums its feature factor (and coarse_noise its |X| statistics) by row blocks
# of at most this many entries
_KRON_BLOCK_ENTRIES = 1 << 20
# Newton-CG preconditioners (see _PenalizedObjective._raw_precond).  It starts with the
# Kronecker one; after a Newton step that took more than _BLOCK_PRECOND_CG CG steps it
# uses, for dense X, the per-class diagonal blocks of the Hessian (K blocks of m x m,
# Cholesky), rebuilt at the current point after a step of more than
# _BLOCK_PRECOND_REBUILD_CG CG steps (rebuilding after more than 4 instead was 2-10%
# slower on the problems of RESULTS.md: the blocks cost several products).  With n >= 2.5 m^2
# rows they are estimated on max(_BLOCK_PRECOND_MIN_ROWS * m, 4 n / m) rows per class,
# drawn in proportion to the row's weight in the block (a uniform subset shared by the
# classes when the probabilities are not cached, n K above _MAX_LOGIT_BYTES; 2-4
# Hessian-vector products' cost; on the 50,000 x 100 x 20 benchmark the condition number of
# the projected preconditioned Hessian at the optimum is 2.6 with them, 9.2 with as many
# rows drawn uniformly, 1.9 with all rows and 39 with the Kronecker one: see
# _LinearSoftmaxTerm._class_blocks_sampled); below that they are exact (all rows) when m <=
# _BLOCK_PRECOND_EXACT_MAX_M, a cost of at most m / 2 <= 64 products in multiply-adds (the
# matmuls run several times faster than the products' skinny GEMMs), and drawn by weight
# from _BLOCK_PRECOND_MID_ROWS * m rows for wider X with n >= m^2 / 4 and K > 2 (times
# threads / K when there are fewer classes than threads; make_classification
# 30,000 x 200 x 8 and 50,000 x 150 x 10: 28-29 -> 16 products, 15-25% faster; they had
# no blocks before).  Exact blocks replaced
# the explicit Hessian (K times the cost) as preconditioner: digits 0.067 -> 0.044 s,
# breast cancer 0.014 -> 0.010 s, never slower on the problems measured (RESULTS.md).
_BLOCK_PRECOND_CG = 1
_BLOCK_PRECOND_REBUILD_CG = 8
_BLOCK_PRECOND_MAX_M = 2048
_BLOCK_PRECOND_EXACT_MAX_M = 128
_BLOCK_PRECOND_MAX_ENTRIES = 1 << 23  # K m^2: 64 MiB of blocks (and as much for the inverse)
_BLOCK_PRECOND_MIN_ROWS = 20
_BLOCK_PRECOND_MID_ROWS = 10


# a float64 Newton-CG fit large enough for float32 Hessian products computes its first
# gradients with float32 products too (X's float32 copy, coef rounded to float32), until
# the gradient's max-norm falls to _COARSE_FACTOR times the stopping threshold or to 100
# times an estimate of the float32 error (_LinearSoftmaxTerm.coarse_noise), whichever is
# larger; then float64 (_PenalizedObjective.coarse_until).  Far from the optimum an
# error under 1% of the gradient does not change the Newton steps (bench_fit: the same
# step and CG counts); the stopping rule is only ever judged on a float64 gradient.
# 50,000 x 100 x 20 float64: 5 of 6 gradients in float32, 0.25-0.30 -> 0.19-0.24 s.
_COARSE_FACTOR = 100.0
_COARSE_MAX_EVALS = 30  # and for at most this many evaluations (a safeguard)

# problems with n_samples * n_params below this are solved 1000x below tol (an
# iteration costs microseconds there) ...
_TINY_WORK = 200_000
# ... and below this with single-threaded BLAS (threads only add overhead)
_SMALL_WORK = 20_000_000


def _caller_level():
    """The ``stacklevel`` that points a warning issued by this function's caller at
    the first frame outside softmaxkit (``fit``, ``fit_dask`` and ``fit`` on a Dask
    collection all warn at the user's line)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _lazy_on_dask(method):
    """A prediction method that, given a Dask collection, returns the lazy result of
    ``softmaxkit.distributed.predict_lazy`` (the method applied block by block) (#7)."""

    @functools.wraps(method)
    def wrapper(self, X):
        if hasattr(X, "__dask_graph__"):
            from ..distributed import predict_lazy

            return predict_lazy(self, X, method.__name__)
        return method(self, X)

    return wrapper


@contextlib.contextmanager
def _blas_threads(single):
    """BLAS in one thread when ``single``; softmaxkit's own threads
    (``_pool.max_threads``) keep the budget they had on entry either way."""
    with _pool.keep_threads():
        if not single:
            yield
            return
        with _pool.blas_limit(1):
            yield


def _minibatches(parts, rng, size):
    """Minibatches of ``size`` rows ``(X, Y, s)`` over the row blocks ``parts``: the
    rows of each block in a random order (``rng.permutation``), a block's last
    incomplete batch completed from the next block, so every batch but the last
    has ``size`` rows whatever the blocks' sizes (rows of a batch in their order
    within a block, for memory locality)."""
    carry = None  # (X, Y, s) of fewer than ``size`` rows, from earlier blocks

    def take(X, Y, s, idx):
        return X[idx], Y[idx], None if s is None else s[idx]

    for X, Y, s in parts:
        n = X.shape[0]
        order = rng.permutation(n)
        pos = 0
        if carry is not None:
            pos = min(n, size - carry[0].shape[0])
            piece = take(X, Y, s, np.sort(order[:pos]))
            Xc = (scipy.sparse.vstack([carry[0], piece[0]], format="csr") if _is_sparse(X)
                  else np.concatenate([carry[0], piece[0]]))
            carry = (Xc, np.concatenate([carry[1], piece[1]]),
                     None if s is None else np.concatenate([carry[2], piece[2]]))
            if carry[0].shape[0] == size:
                yield carry
                carry = None
        while pos < n:
            batch = take(X, Y, s, np.sort(order[pos:pos + size]))
            pos += size
            if batch[0].shape[0] == size:
                yield batch
            else:
                carry = batch  # completed from the next block, or last
    if carry is not None:
        yield carry


# --------------------------------------------------------------------------- data term
def _abs_max(X):
    """``max |X_ij|`` (0 for an empty X), without a temporary of X's size."""
    data = X.data if _is_sparse(X) else X
    if data.size == 0:
        return 0.0
    return float(max(-np.min(data), np.max(data)))


class _LinearSoftmaxTerm:
    """The in-memory data term (contract 4): LinearSoftmaxLoss bound to (X, Y, s),
    caching the probabilities of the last gradient for the Hessian products.

    Its gradients are float64 whatever X's dtype: float32 X is cast to float64 one
    row block at a time (``LinearSoftmaxLoss._loss_grad_state_cast``), never whole
    (CSC: its data array is).  Its Hessian products run in float32 on X itself
    where float64 X's would (``mixed_precision``), else in float64 on cast row
    blocks too."""

    def __init__(self, X, Y, sample_weight, n_classes, fit_intercept, abs_max=None):
        self.X = X
        self.Y = Y
        self.s = sample_weight
        self.n_features = X.shape[1]
        self.n_classes = int(n_classes)
        self.fit_intercept = bool(fit_intercept)
        self.dtype = X.dtype
        self.weight_sum = (float(X.shape[0]) if sample_weight is None
                           else float(np.sum(sample_weight, dtype=np.float64)))
        self._loss = LinearSoftmaxLoss(n_classes, fit_intercept)
        self._key = None
        self._state = None
        self._X_sq = None
        self._A = None
        self._rows = None
        self._X32 = None
        self._state32 = None
        self._abs_stats = None
        self.mixed_precision = False
        self.abs_max = _abs_max(X) if abs_max is None else float(abs_max)  # max |X_ij|

    def class_totals(self):
        """Weighted number of samples per class, shape (K,)."""
        Y, s = self.Y, self.s
        if Y.ndim == 1:
            return np.bincount(Y, weights=s, minlength=self.n_classes).astype(np.float64)
        Yf = Y.astype(np.float64)
        return Yf.sum(axis=0) if s is None else s.astype(np.float64) @ Yf

    def loss_gradient(self, coef):
        return self._pass(coef, self.X, cast=self.X.dtype != np.float64)

    def _cast_state_dtype(self):
        """The dtype of the probabilities float32 X's float64 passes keep: float32
        when the Hessian products run in float32, else float64."""
        return np.float32 if self.mixed_precision else np.float64

    def _pass(self, coef, X, cast=False):
        """Loss and gradient over ``X`` (X itself or its float32 copy; in float64
        by row blocks when ``cast``), keeping the state for the Hessian products at
        ``coef``."""
        if cast:
            value, grad, state = self._loss._loss_grad_state_cast(
                coef, X, self.Y, self.s, state_dtype=self._cast_state_dtype())
        else:
            value, grad, state = self._loss._loss_grad_state(coef, X, self.Y, self.s)
        self._key = np.array(coef, dtype=np.float64, copy=True)
        self._state = state
        return value, grad

    def loss_gradient_coarse(self, coef):
        """``loss_gradient`` with the products in float32 (X itself when float32,
        else X's float32 copy; ``coef`` rounded to float32; the per-row losses summed
        in float64): for the first Newton steps, far from the stopping rule (see
        ``_PenalizedObjective.fun_grad``).  For float64 X without float32 Hessian
        products it is ``loss_gradient`` itself."""
        if self.X.dtype == np.float32:
            return self._pass(coef, self.X)
        if not (self.mixed_precision and self.X.dtype == np.float64):
            return self.loss_gradient(coef)
        return self._pass(coef, self._x32())

    def coarse_noise(self, coef):
        """A cautious estimate of the float32 error of a gradient entry from
        ``loss_gradient_coarse`` at ``coef``, in the units of the gradient divided by
        the weight sum: ``eps32 * A * (4 + B max|W| + max|b|)`` with ``A`` the largest
        weighted column mean of ``|x|`` (1 for the intercept) and ``B`` the largest
        row norm ``||x_i||_2``.  ``A`` bounds the effect of rounding X and of the sums
        (``|r_ik| <= 1``); ``B max|W| + max|b|`` the logits' rounding, whose terms
        add up like a random walk (``||x_i||_1`` instead of ``B`` would be the
        worst case).  On bench_fit's problems it is 100-3000 times the error
        measured against float64 products."""
        if self._abs_stats is None:
            X32, s = self._x32(), self.s
            cols = np.zeros(X32.shape[1])
            rows = np.zeros(X32.shape[0])
            # by row blocks: |X| is never held whole (a block is at most 4 MiB)
            for a, b, Xb in _bounded_blocks(X32, _KRON_BLOCK_ENTRIES):
                if _is_sparse(Xb):
                    Xb = type(Xb)((np.abs(Xb.data), Xb.indices, Xb.indptr), shape=Xb.shape)
                    sq = np.asarray(Xb.multiply(Xb).sum(axis=1), dtype=np.float64).ravel()
                else:
                    Xb = np.abs(Xb)
                    sq = np.einsum("ij,ij->i", Xb, Xb, dtype=np.float64)
                sb = None if s is None else s[a:b].astype(np.float32)
                cols += np.asarray(Xb.sum(axis=0) if sb is None else Xb.T @ sb,
                                   dtype=np.float64).ravel()
                rows[a:b] = sq
            A = float(cols.max(initial=0.0)) / self.weight_sum
            B = float(np.sqrt(rows.max(initial=0.0)))
            self._abs_stats = (max(A, 1.0) if self.fit_intercept else A, B)
        A, B = self._abs_stats
        K, d = self.n_classes, self.n_features
        Wb = np.asarray(coef, dtype=np.float64).reshape(K, d + int(self.fit_intercept))
        w = float(np.max(np.abs(Wb[:, :d]), initial=0.0))
        b = float(np.max(np.abs(Wb[:, d:]), initial=0.0))
        return float(np.finfo(np.float32).eps) * A * (4.0 + B * w + b)

    def _x32(self):
        """X itself when float32, else its float32 copy (made once; sparse X keeps
        its index arrays)."""
        if self.X.dtype == np.float32:
            return self.X
        if self._X32 is None:
            X = self.X
            if _is_sparse(X):
                self._X32 = type(X)((X.data.astype(np.float32), X.indices, X.indptr),
                                    shape=X.shape)
            else:
                self._X32 = X.astype(np.float32)
        return self._X32

    def _state_at(self, coef):
        if self._key is not None and np.array_equal(self._key, coef):
            return self._state
        coef = np.asarray(coef, dtype=np.float64)
        if self._cast_hvp():
            state = self._loss._loss_grad_state_cast(coef, self.X, self.Y, self.s,
                                                     state_dtype=np.float64)[2]
        else:
            state = self._loss._state_at(coef, self.X, self.Y, self.s)
        self._key = np.array(coef, dtype=np.float64, copy=True)
        self._state = state
        return state

    def _cast_hvp(self):
        """Whether the Hessian products are float64 on cast row blocks of float32 X:
        where float64 X's would be float64 too (tiny and small unpenalised problems,
        see SoftmaxRegression._pass_setup; float32 products there blur nearly flat
        directions: unpenalised make_classification 2,000 x 10 x 3, whose redundant
        features are collinear, stopped at the precision limit with a warning)."""
        return self.X.dtype == np.float32 and not self.mixed_precision

    def hessp(self, coef):
        loss = self._loss
        if self._cast_hvp():
            state, X = self._state_at(coef), self.X
            if isinstance(state, _ProbState):
                return lambda v: loss._hvp_cast(state, X, v)
        state, X = self._product_state(coef)

        def hv(v):
            return loss._hvp(state, X, v)

        return hv

    def _product_state(self, coef):
        """``(state, X)`` for the Hessian products at ``coef``.  Hessian-vector
        products only steer the CG direction (the gradients that judge convergence
        are float64: see _PenalizedObjective.coarse_until), so they run in float32
        (half the memory traffic) for float32 X and with ``mixed_precision``."""
        state, X = self._state_at(coef), self.X
        if X.dtype == np.float32 or (self.mixed_precision and X.dtype == np.float64):
            if self._state32 is None or self._state32[0] is not state:
                self._state32 = (state, state.astype(np.float32))
            state, X = self._state32[1], self._x32()
        return state, X

    def hess_diag(self, coef):
        # float32 X: in float32 (a metric; a float64 state would upcast X**2 whole)
        state = (self._product_state(coef)[0] if self.X.dtype == np.float32
                 else self._state_at(coef))
        if self._X_sq is None:
            X = self.X
            self._X_sq = X.multiply(X).tocsr() if _is_sparse(X) else np.square(X)
        return self._loss._hess_diag(state, self._X_sq, self.X)

    def hessian(self, coef, dtype=np.float64):
        return self._loss._hessian(self._state_at(coef), self.X, dtype)

    def class_blocks(self, coef, max_rows):
        """The per-class diagonal blocks of the Hessian, ``A_k =
        sum_i s_i p_ik (1 - p_ik) x~_i x~_i^T`` (x~: x with the intercept's 1), shape
        (K, m, m), float64, estimated in float32 (float64 when X's entries are too
        large for float32 sums of products) from at most ``max_rows`` rows: drawn by
        their weight in each block (:meth:`_class_blocks_sampled`) when the
        probabilities of all rows are at hand, else a fixed random subset rescaled
        to the total weight.  Dense X only."""
        X, s = self.X, self.s
        n = X.shape[0]
        dt = np.float32 if products_fit(self.abs_max, n, np.float32) else np.float64
        if n > max_rows:
            state = self._state_at(coef)
            if isinstance(state, _ProbState):
                return self._class_blocks_sampled(state, max_rows, dt)
        if self._rows is None or self._rows[0] != max_rows:
            rows = (slice(None) if n <= max_rows else
                    np.sort(np.random.default_rng(0).choice(n, max_rows, replace=False)))
            # the rows' float32 copy (with the intercept's 1), kept for the rebuilds
            Xs = np.empty((n if n <= max_rows else max_rows, self.n_features
                           + int(self.fit_intercept)), dtype=dt)
            Xs[:, :self.n_features] = X[rows]
            if self.fit_intercept:
                Xs[:, -1] = 1.0
            self._rows = (max_rows, rows, Xs)
        _, rows, Xs = self._rows
        K, m = self.n_classes, Xs.shape[1]
        Wb = np.asarray(coef, dtype=dt).reshape(K, m)
        # a preconditioner: the plain float32 formula is accurate enough (the public
        # softmax validates and compensates, 0.5 ms on digits' 1797 x 10 logits)
        P = Xs @ Wb.T
        P -= P.max(axis=1, keepdims=True)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        w = P * (1 - P)
        if s is not None:
            w *= s[rows].astype(dt)[:, None]
            scale = self.weight_sum / max(float(np.sum(s[rows], dtype=np.float64)), 1e-300)
        else:
            scale = n / Xs.shape[0]
        # A_k = R_k^T R_k with R_k = sqrt(w_k) Xs, one matmul per class; on several
        # threads the classes are shared out (NumPy's matmul releases the GIL).  A full
        # matmul beats syrk's half here (one thread, float32: 1797 x 65 143 against 193
        # us, 20,000 x 101 4.3 against 5.5 ms; SciPy's syrk also holds the GIL)
        root = np.sqrt(w)
        out = np.empty((K, m, m))

        def blocks(lo, hi):
            for k in range(lo, hi):
                R = Xs * root[:, k:k + 1]
                out[k] = R.T @ R
                out[k] *= scale

        _pool.run_ranges(blocks, K, self._loss._threads)
        return out

    def _class_blocks_sampled(self, state, rows, dt):
        """:meth:`class_blocks` from ``rows`` rows per class drawn by their weight in
        the block (``LinearSoftmaxLoss._class_blocks``).  On bench_fit's 50,000 x
        100 x 20 problem at the optimum, with 2,020 rows, the condition number of
        the projected preconditioned Hessian is 2.6 this way against 9.2 with a
        uniform subset (1.9 with all rows: ``benchmarks/bench_precond.py``)."""
        # the float32 copy of X when the fit made one; else the drawn rows are cast
        X = self._X32 if dt == np.float32 and self._X32 is not None else self.X
        return self._loss._class_blocks(state.probs(), X, self.s, rows, dt)

    def kron_factors(self, coef):
        """Factors of the Kronecker approximation ``H ~ A (x) B`` of the Hessian:
        ``A = sum_i s_i x~_i x~_i^T / S`` over the features plus the intercept column
        (its diagonal only for sparse or wide X; computed once) and
        ``B = sum_i s_i (diag(p_i) - p_i p_i^T)`` at ``coef``."""
        if self._A is None:
            X, s = self.X, self.s
            S = self.weight_sum
            sw = None if s is None else s.astype(np.float64)
            # by row blocks of at most _KRON_BLOCK_ENTRIES entries: no temporary of
            # X's size (X**2, or X times the weights)
            blocks = _bounded_blocks(X, _KRON_BLOCK_ENTRIES)
            if _is_sparse(X) or X.shape[1] > _KRON_DENSE_MAX:
                a = np.zeros(X.shape[1])
                for lo, hi, Xb in blocks:
                    Xsq = Xb.multiply(Xb) if _is_sparse(Xb) else np.square(Xb)
                    a += np.asarray(Xsq.sum(axis=0) if sw is None else Xsq.T @ sw[lo:hi],
                                    dtype=np.float64).ravel()
                if self.fit_intercept:
                    a = np.append(a, S)
                self._A = a / S
            else:
                # on the float32 copy the Hessian products use, when there is one: a
                # preconditioner needs no more (50,000 x 100, one thread: 8.9 against
                # 19 ms)
                Xa = X if self._X32 is None else self._X32
                if sw is None:
                    A = np.asarray(_xt_dot(Xa, Xa, self._loss._threads), dtype=np.float64)
                    col = np.asarray(_col_sums(Xa), dtype=np.float64)
                else:
                    A = np.zeros((X.shape[1], X.shape[1]))
                    col = np.zeros(X.shape[1])
                    for lo, hi, _ in blocks:
                        Xb = Xa[lo:hi]
                        Xw = Xb * sw[lo:hi].astype(Xa.dtype)[:, None]
                        A += np.asarray(_xt_dot(Xb, Xw, self._loss._threads),
                                        dtype=np.float64)
                        col += np.asarray(Xw.sum(axis=0), dtype=np.float64)
                if self.fit_intercept:
                    A = np.block([[A, col[:, None]], [col[None, :], np.array([[S]])]])
                self._A = A / S
        return self._A, self.kron_B(coef)

    def kron_B(self, coef):
        """The class factor ``B`` of :meth:`kron_factors` alone."""
        return self._loss._class_hessian(self._state_at(coef), self.X)

    def kron_A_thin(self):
        """The eigenpairs of the dense Kronecker factor ``A`` (see
        :meth:`kron_factors`) with a nonzero eigenvalue, ``(lam, U)`` with ``U`` of
        shape (m, r), ``r <= n``, computed from the n x n Gram of the rows when X has
        fewer rows than ``A`` has columns (its rank is at most n); None otherwise.
        ``eigh`` of the m x m factor took 1.8 s at 50 x 2,040, this 2 ms."""
        X = self.X
        m = self.n_features + int(self.fit_intercept)
        if _is_sparse(X) or self.n_features > _KRON_DENSE_MAX or X.shape[0] >= m:
            return None
        Xt = np.asarray(X, dtype=np.float64)
        if self.fit_intercept:
            Xt = np.column_stack([Xt, np.ones(X.shape[0])])
        w = np.ones(X.shape[0]) if self.s is None else self.s.astype(np.float64)
        Xt = Xt * np.sqrt(w / self.weight_sum)[:, None]   # A = Xt^T Xt
        lam, V = np.linalg.eigh(Xt @ Xt.T)
        keep = lam > 1e-12 * max(float(lam.max(initial=0.0)), 1e-300)
        lam, V = lam[keep], V[:, keep]
        U = (Xt.T @ V) / np.sqrt(lam)                      # orthonormal columns
        return lam, U


# --------------------------------------------------------------------- penalised objective
class _PenalizedObjective:
    """scikit-learn's objective ``C * data(coef) + penalty(W)`` for any data term,
    optimised in the well-scaled form ``F = (C * data + penalty) / (C * S)`` with
    ``S = term.weight_sum`` (``data / S`` when there is no penalty).

    The optimisation vector ``x`` is the flat ``coef`` of the term (rows of
    ``(W, b)``), except without a penalty: then class 0's row is fixed at 0 (the
    multinomial model is not identifiable otherwise) and ``x`` holds the other
    ``K - 1`` rows.  ``fun_grad``/``hessp``/``precond``/``hess`` give the smooth part
    (data plus l2); ``l1_weights`` the l1 part, for the proximal solver.
    """

    def __init__(self, term, penalty, C, l1_ratio=None):
        self.term = term
        K, d = term.n_classes, term.n_features
        self.m = d + int(term.fit_intercept)
        self.n_coef = K * self.m
        S = float(term.weight_sum)
        if not (np.isfinite(S) and S > 0):
            raise ValueError("The sum of the sample weights must be positive and finite.")
        if penalty is not None and np.isinf(C):
            penalty = None
        self.penalty = penalty
        self.C = float(C)
        self.S = S
        self.reference = penalty is None
        if penalty is None:
            self.scale = S
            l2, l1 = 0.0, 0.0
        else:
            self.scale = self.C * S
            r = {"l2": 0.0, "l1": 1.0}.get(penalty, l1_ratio)
            l2 = (1.0 - r) / self.scale
            l1 = r / self.scale
        mask = np.zeros((K, self.m))
        mask[:, :d] = 1.0
        mask = mask.ravel()
        self._mask = self.reduce(mask)
        self._l2 = l2
        self._l2vec = l2 * self._mask
        self.l1 = l1
        self.l1_weights = l1 * self._mask
        self.n_params = self._mask.size
        self._A_eig = None
        self._n_hv = 0       # Hessian-vector products so far ...
        self._hv_mark = 0    # ... and at the last preconditioner request
        self._strong_minv = None
        self._coarse = None  # (switch, verify, evaluations left): see coarse_until
        # the intercepts' common shift (the same number added to every b_k) changes no
        # probability and no penalty: F is flat along it, so the exact gradient has no
        # component there and the Hessian is singular.  Rounding gives the gradient one
        # (float32 data: ~1e-8), which an explicit Newton solve divides by ~0 (iris,
        # float32, C=100: a 1.3e8 shift of the intercepts, logits float32 cannot hold,
        # and a fit 17x above the optimum).  fun_grad removes that component and hess
        # adds curvature along the shift, which changes no step orthogonal to it
        self._shift = (None if self.reference or not term.fit_intercept
                       else np.arange(K) * self.m + d)

    # parametrisation
    def expand(self, x):
        if not self.reference:
            return x
        return np.concatenate([np.zeros(self.m), x])

    def reduce(self, coef):
        return coef[self.m:] if self.reference else coef

    def fun_grad(self, x):
        coarse = self._coarse is not None
        loss_gradient = (self.term.loss_gradient_coarse if coarse
                         else self.term.loss_gradient)
        coef = self.expand(x)
        value, grad = loss_gradient(coef)
        g = self.reduce(np.asarray(grad, dtype=np.float64)) / self.S
        if self._shift is not None:
            g[self._shift] -= g[self._shift].mean()
        f = value / self.S
        if self._l2:
            f += 0.5 * float(self._l2vec @ (x * x))
            g += self._l2vec * x
        if coarse:
            scale = max(1.0, abs(f))
            gnorm = float(np.max(np.abs(g))) if g.size else 0.0
            switch, verify, left = self._coarse
            noise = self.term.coarse_noise(coef)
            self._coarse = (switch, verify, left - 1)
            if gnorm <= max(switch * scale, 100.0 * noise) or left <= 1:
                # near the end, or the float32 error may be more than 1% of the
                # gradient (or many steps have gone by): float64 products from here
                # on, and this point again in float64 if it may meet the stopping
                # rule (which is only ever judged on a float64 gradient)
                self._coarse = None
                if gnorm <= verify * scale + 10.0 * noise:
                    return self.fun_grad(x)
        return f, g

    def coarse_until(self, tol):
        """Let ``fun_grad`` use the term's float32 products
        (``loss_gradient_coarse``) until the gradient's max-norm first falls to
        ``_COARSE_FACTOR * tol * max(1, |f|)`` (``_COARSE_FACTOR`` times above the
        stopping rule of a solver with ``tol``) or to 100 times the term's
        ``coarse_noise``, for at most ``_COARSE_MAX_EVALS`` evaluations; float64
        products after that.  A float32 gradient that may meet the rule (within 10x
        plus its error) is recomputed in float64 at once, so convergence is judged
        on float64 gradients only.  A no-op for terms without these methods."""
        if hasattr(self.term, "loss_gradient_coarse") and hasattr(self.term, "coarse_noise"):
            self._coarse = (_COARSE_FACTOR * float(tol), 10.0 * float(tol), _COARSE_MAX_EVALS)

    def value(self, x):
        """The scaled objective including the l1 part."""
        f, _ = self.fun_grad(x)
        return f + float(self.l1_weights @ np.abs(x))

    def hessp(self, x):
        hv_term = self.term.hessp(self.expand(x))
        S, l2vec, m, ref = self.S, self._l2vec, self.m, self.reference

        def hv(v):
            self._n_hv += 1
            full = np.concatenate([np.zeros(m), v]) if ref else v
            out = np.asarray(hv_term(full), dtype=np.float64)
            if ref:
                out = out[m:]
            out = out / S
            if l2vec is not None:
                out += l2vec * v
            return out

        return hv

    def hess_diag(self, x):
        """The diagonal of the Hessian of ``fun_grad``'s function at ``x``, shape
        (n_params,): the metric of proximal Newton's subproblem."""
        diag = self.reduce(np.asarray(self.term.hess_diag(self.expand(x)), dtype=np.float64))
        return diag / self.S + self._l2vec

    def has_precond(self):
        return hasattr(self.term, "kron_factors") or hasattr(self.term, "hess_diag")

    def precond(self, x):
        """``minv`` for Newton-CG at ``x``: the inverse of an approximation of the
        Hessian, chosen by the rule in the module constants' comments.

        With an l2 penalty the iterates never leave the subspace where the rows of
        ``coef`` sum to 0 over the classes (the data gradient sums to 0 over the
        classes, so does the penalty's gradient there, and the start is centred), on
        which the Hessian is non-singular; every preconditioner is projected onto it.
        """
        minv = self._raw_precond(x)
        if self.reference:
            return minv
        K, m = self.term.n_classes, self.m

        def projected(r):
            Z = np.asarray(minv(r), dtype=np.float64).reshape(K, m)
            Z = Z - Z.mean(axis=0)
            return Z.ravel()

        return projected

    def _raw_precond(self, x):
        # Newton-CG starts with the Kronecker preconditioner (exact at the start, where
        # p_i is the same for every sample); after a Newton step that took more CG steps
        # than a threshold it builds the per-class blocks at the current point, kept
        # while the steps stay cheap and rebuilt when they are not
        used = self._n_hv - self._hv_mark
        self._hv_mark = self._n_hv
        limit = _BLOCK_PRECOND_CG if self._strong_minv is None else _BLOCK_PRECOND_REBUILD_CG
        if used > limit and self._block_precond_ok():
            self._strong_minv = self._block_precond(x) or self._strong_minv
        if self._strong_minv is not None:
            return self._strong_minv
        if hasattr(self.term, "kron_factors"):
            return self._kron_precond(x)
        return self._jacobi_precond(x)

    def _n_rows(self):
        X = getattr(self.term, "X", None)
        return X.shape[0] if X is not None else getattr(self.term, "n_samples", None)  # Dask

    def _block_rows(self):
        """Rows the per-class blocks are estimated on (see ``_block_precond_ok``)."""
        n, m = self._n_rows(), self.m
        if n >= 2.5 * m * m:
            return max(_BLOCK_PRECOND_MIN_ROWS * m, 4 * n // m)
        if m <= _BLOCK_PRECOND_EXACT_MAX_M:
            return n
        return min(n, _BLOCK_PRECOND_MID_ROWS * m)

    def _block_precond_ok(self):
        X = getattr(self.term, "X", None)
        dense = not _is_sparse(X) if X is not None else getattr(self.term, "dense", False)
        if not dense or not hasattr(self.term, "class_blocks"):
            return False
        K, m, n = self.term.n_classes, self.m, self._n_rows()
        # blocks of at most _BLOCK_PRECOND_MAX_ENTRIES numbers in all, built from r rows
        # for K r m^2 multiply-adds, against 2 n m K for a Hessian-vector product:
        # r m / (2 n) products, 2-4 when n >= 2.5 m^2 (r = max(20 m, 4 n / m)), m / 2
        # with all rows when m <= _BLOCK_PRECOND_EXACT_MAX_M, and 5 m^2 / n <= 20 with
        # r = _BLOCK_PRECOND_MID_ROWS * m rows for wider X with n >= m^2 / 4 (the
        # blocks' large matmuls run about 3x faster per multiply-add than the products'
        # skinny ones).  The blocks are shared out to the threads by class, so with
        # fewer classes than threads the wide rule asks for proportionally more rows.
        # Not for two classes: their Kronecker preconditioner is as good there
        # (make_classification 50,000 x 300 x 2: 11-12 products without blocks, 13-15
        # with them)
        threads = getattr(getattr(self.term, "_loss", None), "_threads", 1)
        wide = K > 2 and n >= 0.25 * m * m * max(1.0, threads / K)
        return (m <= _BLOCK_PRECOND_MAX_M and K * m * m <= _BLOCK_PRECOND_MAX_ENTRIES
                and (n >= 2.5 * m * m or wide or m <= _BLOCK_PRECOND_EXACT_MAX_M))

    def _block_precond(self, x):
        """Inverse of the per-class diagonal blocks ``A_k / S + l2`` of the Hessian
        (estimated on a subset of the rows for large n; ``precond`` projects it).
        Without a penalty class 0's row is fixed, and its block is left out."""
        K, m = self.term.n_classes, self.m
        A = self.term.class_blocks(self.expand(x), self._block_rows()) / self.S
        idx = np.arange(m)
        if self.reference:
            A, K = A[1:], K - 1
        else:
            A[:, idx, idx] += self._l2vec.reshape(K, m)
        A[:, idx, idx] += 1e-10 * max(float(A[:, idx, idx].max()), 1e-300)
        Ainv = np.empty_like(A)
        for k in range(K):
            c, info = scipy.linalg.lapack.dpotrf(A[k], lower=0)
            if info != 0:
                return None
            Ainv[k], info = scipy.linalg.lapack.dpotri(c, lower=0)
            if info != 0:
                return None
        lower = np.tril_indices(m, -1)
        Ainv[:, lower[0], lower[1]] = Ainv[:, lower[1], lower[0]]

        def minv(r):
            return np.matmul(Ainv, r.reshape(K, m, 1)).ravel()

        return minv

    def _kron_precond(self, x):
        """Inverse of ``M = A (x) B / S + l2 I`` (A over features, B over classes)."""
        if self._A_eig is None and hasattr(self.term, "kron_A_thin"):
            thin = self.term.kron_A_thin()   # few rows: never the dense m x m factor
            if thin is not None:
                self._A_eig = (*thin, True)
        if self._A_eig is not None and len(self._A_eig) == 3:
            B = self.term.kron_B(self.expand(x))
        else:
            A, B = self.term.kron_factors(self.expand(x))
            if self._A_eig is None:
                self._A_eig = (A, None) if A.ndim == 1 else np.linalg.eigh(A)
        if self.reference:
            B = B[1:, 1:]
        B = B / self.S
        mu, UB = np.linalg.eigh(B)
        lam, UA = self._A_eig[:2]
        D = np.maximum(mu, 0)[:, None] * np.maximum(lam, 0)[None, :] + self._l2
        floor = 1e-10 * max(float(D.max()), self._l2, 1e-300)
        D = np.maximum(D, floor)
        invDt = np.ascontiguousarray((1.0 / D).T)
        rows, m = UB.shape[0], self.m
        UBt = np.ascontiguousarray(UB.T)
        if len(self._A_eig) == 3:
            # A = U diag(lam) U^T with U (m, r), r < m: on U's complement A is 0, and
            # M is l2 I there
            inv_rest = 1.0 / max(self._l2, floor)

            def minv_thin(r):
                T = r.reshape(rows, m).T @ UB          # (U_B^T R)^T, (m, rows)
                P = UA.T @ T                           # the part in U's span
                T = UA @ (P * invDt) + (T - UA @ P) * inv_rest
                T = T @ UBt
                return np.ascontiguousarray(T.T).ravel()

            return minv_thin

        def minv(r):
            # works on the (m, K) transpose: tall-skinny products are BLAS-friendly
            T = r.reshape(rows, m).T @ UB          # (U_B^T R)^T
            if UA is not None:
                T = UA.T @ T                       # (U_B^T R U_A)^T
            T *= invDt
            if UA is not None:
                T = UA @ T
            T = T @ UBt                            # (U_B T U_A^T)^T
            return np.ascontiguousarray(T.T).ravel()

        return minv

    def _jacobi_precond(self, x):
        diag = self.reduce(np.asarray(self.term.hess_diag(self.expand(x)), dtype=np.float64))
        diag = diag / self.S + self._l2vec
        floor = 1e-10 * max(float(np.max(diag)), 1e-300) if diag.size else 1.0
        inv = 1.0 / np.maximum(diag, floor)

        def minv(r):
            return r * inv

        return minv

    def hess(self, x):
        coef = self.expand(x)
        if hasattr(self.term, "hessian"):
            H = np.asarray(self.term.hessian(coef), dtype=np.float64)
        else:
            H = hessian_from_hessp(self.term.hessp(coef), self.n_coef)
        if self.reference:
            H = H[self.m:, self.m:]
        H = H / self.S
        H[np.diag_indices_from(H)] += self._l2vec
        if self._shift is not None:
            # curvature along the intercepts' common shift, on the scale of theirs
            idx = self._shift
            H[np.ix_(idx, idx)] += max(float(np.mean(H[idx, idx])), 1e-300) / idx.size
        return H


# ------------------------------------------------------------------------------ estimator
def _partial_layout(obj):
    """What the partial_fit state's vector means: the parametrisation of ``obj``."""
    return (bool(obj.reference), bool(obj.term.fit_intercept), int(obj.n_params))


def _check_bool(value, param):
    if not isinstance(value, (bool, np.bool_)):
        raise param_error(param, _OWNER, "a bool", value, exc=TypeError)
    return bool(value)


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Softmax (multinomial logistic) regression with scikit-learn's objective.

    Fits ``P(y = k | x) = softmax(W x + b)_k`` by penalised maximum likelihood with
    second-order solvers that stop on a gradient (KKT) criterion, so the optimum is
    reached to ``tol``, not approximated.

    Parameters
    ----------
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
        The penalty on ``W`` (never on the intercept).
    C : float in (0, inf], default=1.0
        Inverse regularisation strength; ``C=inf`` is the unpenalised fit.
    l1_ratio : float in [0, 1] or None, default=None
        The elastic-net mixing ``r``; required for ``penalty="elasticnet"``, ignored
        otherwise.
    fit_intercept : bool, default=True
        Whether to fit the intercepts ``b`` (shape (n_classes,)).
    solver : {"auto", "newton-cg", "newton-cholesky", "lbfgs", "prox-newton"}, default="auto"
        ``"newton-cg"``: trust-region Newton with Steihaug conjugate gradients on
        exact Hessian-vector products, preconditioned by a Kronecker (features x
        classes) approximation of the Hessian and, for dense X after a Newton step
        that needed more than one CG step, by its per-class diagonal blocks (exact on
        few rows, estimated on many, from rows drawn by their weight in each block
        where the probabilities of all rows are kept);
        ``"newton-cholesky"``:
        Newton with the explicit Hessian; ``"lbfgs"``: limited-memory BFGS;
        ``"prox-newton"``: proximal Newton (the only one for ``"l1"`` and
        ``"elasticnet"``; it accepts ``"l2"`` and None too).  ``"auto"`` picks
        ``"prox-newton"`` for l1/elasticnet; otherwise ``"newton-cholesky"`` when the
        Hessian is tiny and cheap to build (``(n_features + 1) * (n_classes + 1) <=
        100``, ``n_samples * n_params**2 <= 1e6`` and X dense), else
        ``"newton-cg"``.
    tol : float >= 0, default=1e-6
        Stop when ``max |projected gradient| <= tol * max(1, |F|)`` for the scaled
        objective ``F = objective / (C * sum(s))`` (``objective / sum(s)`` without
        a penalty); for l1 the minimum-norm subgradient is used.  Tiny problems
        (``n_samples * n_params <= 200,000``, where an iteration costs microseconds)
        are solved to ``tol / 1000``; the tolerance never goes below
        ``50 * eps`` of float64 (the gradients are float64 for float32 data too).
    max_iter : int >= 0, default=1000
        Maximum number of solver iterations; a ``ConvergenceWarning`` is raised when
        it is reached.
    class_weight : dict, "balanced" or None, default=None
        Class weights multiplying the sample weights; "balanced" uses
        ``sum(s) / (n_classes * np.bincount(y, weights=s))`` (``s`` the sample
        weights, 1 by default; soft targets counted fractionally) as scikit-learn
        (>= 1.6) does.  A dict key that is not a class is a ValueError.
    warm_start : bool, default=False
        Start from the previous solution when refitting.
    verbose : int >= 0 or bool, default=0
        Print per-iteration progress when positive: the solver's objective,
        which is the scaled ``F`` of ``tol`` (``loss_curve_`` is on
        scikit-learn's scale, ``F`` times ``C * sum(s)``), and its gradient's
        max-norm, to compare with ``tol * max(1, |F|)``.
    random_state : int, RandomState or None, default=None
        Shuffles the minibatches of ``partial_fit``; no effect on ``fit``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
        ``W`` (K rows, also for two classes).
    intercept_ : ndarray of shape (n_classes,)
        ``b`` (zeros when ``fit_intercept=False``).
    classes_ : ndarray of shape (n_classes,)
        Class labels (``0..K-1`` when fitted on probability targets).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    n_iter_ : int
        Solver iterations of the last fit (partial_fit: passes made so far).
    loss_curve_ : ndarray of shape (n_iter_ + 1,)
        The objective (scikit-learn's scale, see Notes) at the start and after each
        iteration.  After ``partial_fit``: shape (n_iter_,), the objective
        estimated over each pass (from the minibatches as they were visited).

    Notes
    -----
    The objective is scikit-learn's: ``C * sum_i s_i CE(z_i, y_i) + R(W)`` with
    ``R = ||W||^2 / 2`` (l2), ``||W||_1`` (l1) or
    ``r ||W||_1 + (1 - r) ||W||^2 / 2`` (elastic net); ``CE`` is
    ``-sum_k Y_ik log softmax(z_i)_k`` for labels (one-hot ``Y``) or probability
    targets.  Without a penalty the objective is ``sum_i s_i CE_i`` and the
    reported coefficients are class-centred (every column of ``coef_`` and
    ``intercept_`` sums to 0).  For two classes the l2 model with ``C`` equals
    binary logistic regression with ``2C`` (the centred rows ``w/2, -w/2`` have
    half the squared norm of ``w``), the l1 model binary l1 with ``C`` (the l1
    norm of the rows is ``||w||_1``); elastic net equals neither.  The intercepts
    start at the log class
    frequencies, ``W`` at 0.

    Threads: softmaxkit uses as many threads as BLAS may (threadpoolctl's view,
    at most the CPUs of the process), so ``OMP_NUM_THREADS``,
    ``threadpoolctl.threadpool_limits(n)`` and joblib's per-worker limits cap all
    of it.  Large Newton-CG and L-BFGS fits (dense or CSR) run every gradient pass
    and Hessian product on that many row blocks of X at once, with BLAS in one
    thread (faster than multithreaded BLAS on these tall, thin products; results
    depend on the number of threads by rounding only); Newton-Cholesky fits use
    BLAS's threads; small problems run in one thread.

    Precision: float64 data is fitted in float64, but Newton-CG (except on tiny
    problems and small unpenalised ones) runs its Hessian-vector products on a
    float32 copy of X (they only steer the conjugate-gradient direction), and on
    large problems (``n_samples * n_params > 2e7``) also its first
    gradients, until the gradient is within 100x of the stopping rule (or of an
    estimate of its float32 error); whether ``tol`` is met is always judged on a
    float64 gradient.  The float32 copy costs half X's memory.  float32 data
    gets no float64 copy: its Hessian-vector products run in float32 on X itself
    where float64 X's would (else in float64 on cast row blocks), as do its first
    gradients, but the gradients that decide convergence are float64, computed
    from row blocks of X cast one at a time (2 MiB each; CSC X has its data array
    cast whole, pass CSR to avoid it), so the fit is the float64 fit's to within
    the tolerance (coefficients float32).  float32 gradients alone stall above the
    stopping rule at weak penalties (C=100 on the standardised breast-cancer data,
    150 noisy copies: 3e-4 from the float64 probabilities).  Unpenalised fits of
    exactly collinear features are the exception: rounding them to float32 makes
    them merely nearly collinear, and the float32 data's optimum can then lie far
    out along those directions (make_classification's redundant features:
    coefficients of 1e6 against 1, probabilities 0.2 apart).  Use a penalty there.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from softmaxkit import SoftmaxRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxRegression(C=1.0).fit(X, y)
    >>> clf.coef_.shape, clf.predict(X[:3]).tolist()
    ((3, 4), [0, 0, 0])
    >>> round(clf.score(X, y), 2)
    0.97
    """

    def __init__(self, penalty="l2", *, C=1.0, l1_ratio=None, fit_intercept=True,
                 solver="auto", tol=1e-6, max_iter=1000, class_weight=None, warm_start=False,
                 verbose=0, random_state=None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state

    # minibatch settings of partial_fit
    _partial_batch_size = 64
    _partial_lr = 5e-2
    # from a fitted model: Adam's steps are about lr per coordinate even at the
    # optimum, and 5e-2 took a fit 2.4% above its objective in one pass (20,000 x 20
    # x 4); 1e-3 stays within 0.01%
    _partial_lr_warm = 1e-3
    _partial_decay = 1e-2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        check_choice_param(self.penalty, "penalty", _OWNER, _PENALTIES)
        check_scalar_param(self.C, "C", _OWNER, kind=float, low=0, low_open=True)
        if self.penalty == "elasticnet":
            check_scalar_param(self.l1_ratio, "l1_ratio", _OWNER, kind=float, low=0, high=1)
        elif self.l1_ratio is not None:
            check_scalar_param(self.l1_ratio, "l1_ratio", _OWNER, kind=float, low=0, high=1,
                               allow_none=True)
        _check_bool(self.fit_intercept, "fit_intercept")
        check_choice_param(self.solver, "solver", _OWNER, _SOLVERS)
        check_scalar_param(self.tol, "tol", _OWNER, kind=float, low=0)
        check_scalar_param(self.max_iter, "max_iter", _OWNER, kind=int, low=0)
        cw = self.class_weight
        if not (cw is None or isinstance(cw, dict) or (isinstance(cw, str) and cw == "balanced")):
            raise param_error("class_weight", _OWNER, "a dict, 'balanced' or None", cw)
        _check_bool(self.warm_start, "warm_start")
        # True/False as 1/0, as scikit-learn's estimators take them
        check_scalar_param(int(self.verbose) if isinstance(self.verbose, bool | np.bool_)
                           else self.verbose, "verbose", _OWNER, kind=int, low=0)
        l1_like = self.penalty in ("l1", "elasticnet") and not np.isinf(float(self.C))
        if l1_like and self.solver not in ("auto", "prox-newton"):
            raise param_error("solver", _OWNER, "'auto' or 'prox-newton' for penalty="
                              f"{self.penalty!r}", self.solver)

    def _validate_X(self, X, reset, min_samples=None):
        if min_samples is None:
            min_samples = 2 if reset else 1
        return validate_data(self, X, reset=reset, accept_sparse=["csr", "csc"],
                             dtype=[np.float64, np.float32], order="C",
                             ensure_min_samples=min_samples)

    def _encode_targets(self, y, n, dtype, reset, classes=None):
        """Return (Y, classes) with Y intp labels or (n, K) probabilities."""
        y_arr = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
        if y_arr.ndim == 2 and y_arr.shape[1] >= 2:
            if y_arr.dtype.kind not in "biuf":
                raise ValueError("Soft targets must be a numeric (n_samples, n_classes) array "
                                 "of class probabilities.")
            Y = np.ascontiguousarray(y_arr, dtype=dtype)
            if Y.shape[0] != n:
                raise ValueError(f"y has {Y.shape[0]} rows but X has {n} samples.")
            if not np.all(np.isfinite(Y)) or np.any(Y < 0):
                raise ValueError("Soft targets must be probability distributions: "
                                 "finite and non-negative.")
            sums = Y.astype(np.float64).sum(axis=1)
            # rows stored in a coarser float (float32, float16) sum to 1 only to its
            # rounding
            tol = soft_target_tol(dtype, y_arr.dtype)
            bad = np.flatnonzero(np.abs(sums - 1.0) > tol)
            if bad.size:
                raise ValueError("Soft targets must be probability distributions: row "
                                 f"{bad[0]} sums to {float(sums[bad[0]])!r}, not 1.")
            # exactly 1 (to rounding): the gradient then sums to 0 over the classes
            Y = np.ascontiguousarray(Y / sums.astype(dtype)[:, None])
            K = Y.shape[1]
            if not reset and K != len(self.classes_):
                raise ValueError(f"y has {K} columns but the model has {len(self.classes_)} "
                                 "classes.")
            return Y, np.arange(K)
        y1 = column_or_1d(y_arr, warn=True)
        if y1.shape[0] != n:
            raise ValueError(f"y has {y1.shape[0]} entries but X has {n} samples.")
        missing = first_missing_label(y1)
        if missing is not None:
            raise ValueError(f"y has a missing label (NaN, None or NA) at index {missing}; "
                             "drop or fill it before fitting.")
        check_label_kinds(y1)
        check_classification_targets(y1)
        given = classes is not None
        if reset:
            classes = np.unique(y1) if classes is None else np.unique(np.asarray(classes))
        else:
            classes = self.classes_
        if classes.size:
            idx = np.clip(np.searchsorted(classes, y1), 0, classes.size - 1)
            unknown = classes[idx] != y1
        else:
            idx, unknown = np.zeros(y1.size, dtype=np.intp), np.ones(y1.size, dtype=bool)
        if np.any(unknown) and (given or not reset):
            where = "the classes given" if given and reset else "classes_"
            raise ValueError(f"y contains labels not in {where}: "
                             f"{_plain(y1[unknown][0])!r}.")
        if reset and classes.size < 2:
            got = (f"1 class ({_plain(classes[0])!r})" if classes.size else "no labels")
            raise ValueError("SoftmaxRegression needs samples of at least 2 classes in "
                             f"the data; got {got}.")
        return idx.astype(np.intp), classes

    def _weights(self, sample_weight, X, Y, classes):
        s = None
        if sample_weight is not None:
            s = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
            if not np.all(np.isfinite(s)):
                raise ValueError("sample_weight must be finite.")
        cw = self.class_weight
        if cw is not None:
            if Y.ndim == 1:
                if isinstance(cw, str):
                    absent = np.flatnonzero(np.bincount(Y, minlength=classes.size) == 0)
                    if absent.size:  # partial_fit: a batch without some of the classes
                        raise ValueError(
                            "class_weight='balanced' weighs each partial_fit batch by its "
                            "own class counts, and this batch has no samples of class "
                            f"{_plain(classes[absent[0]])!r}; pass class_weight as a dict "
                            "(e.g. compute_class_weight('balanced', ...) on the whole "
                            "training set) or a Dask collection, whose classes are counted "
                            "first.")
            sw = np.ones(Y.shape[0]) if s is None else s.astype(np.float64)
            tot = (np.bincount(Y, weights=sw, minlength=classes.size) if Y.ndim == 1
                   else sw @ Y.astype(np.float64))  # soft targets counted fractionally
            w = class_weight_vector(cw, classes, tot, float(sw.sum()))
            per = w[Y] if Y.ndim == 1 else Y.astype(np.float64) @ w
            per = per.astype(X.dtype)
            s = per if s is None else s * per
        if s is not None:
            if not np.sum(s, dtype=np.float64) > 0:
                raise ValueError("The sample weights (times the class weights) sum to 0; at "
                                 "least one sample needs a positive weight.")
        return s

    def _make_data_term(self, X, y, sample_weight, *, classes=None, reset=True,
                        min_samples=None):
        """Validate X, y and the weights, set classes_ / n_features_in_ /
        feature_names_in_ (when ``reset``) and return the data term."""
        X = self._validate_X(X, reset, min_samples)
        if _is_sparse(X):
            if not np.all(np.isfinite(X.data)):  # pragma: no cover - validate_data checks
                raise ValueError("Input X contains NaN or infinity.")
        amax = _abs_max(X)
        check_entry_range(amax, X.shape[0], X.dtype)
        Y, classes = self._encode_targets(y, X.shape[0], X.dtype, reset, classes)
        if reset:
            self.classes_ = classes
        s = self._weights(sample_weight, X, Y, self.classes_)
        return _LinearSoftmaxTerm(X, Y, s, len(self.classes_), self.fit_intercept, amax)

    # ------------------------------------------------------------------------- fit
    def _choose_solver(self, term, obj):
        if self.solver != "auto":
            return self.solver
        if obj.penalty in ("l1", "elasticnet"):
            return "prox-newton"
        small = ((term.n_features + 1) * (term.n_classes + 1) <= _CHOLESKY_MAX_WORK
                 and self._hessian_work(term) <= _CHOLESKY_MAX_HESSIAN_WORK)
        # (float32 data too: its gradients are float64)
        if small and not _is_sparse(getattr(term, "X", None)):
            return "newton-cholesky"
        return "newton-cg"

    @staticmethod
    def _hessian_work(term):
        """``n p^2`` with ``p = K (d + 1)`` (an upper bound of ``n_params``, which is
        ``(K - 1)(d + 1)`` without a penalty): the multiply-adds of one explicit
        Hessian (inf when the number of rows is unknown)."""
        X = getattr(term, "X", None)
        n = X.shape[0] if X is not None else getattr(term, "n_samples", None)  # Dask
        p = term.n_classes * (term.n_features + int(term.fit_intercept))
        return float("inf") if n is None else float(n) * p * p

    def _fitted_rows(self, term, obj):
        """``coef_`` and ``intercept_`` as the (K, m) rows of ``obj``'s coefficients
        (class 0's row subtracted without a penalty, where it is fixed at 0)."""
        Wb = np.zeros((term.n_classes, obj.m))
        Wb[:, :term.n_features] = self.coef_
        if term.fit_intercept:
            Wb[:, -1] = self.intercept_
        if obj.reference:
            Wb -= Wb[0]
        return Wb

    def _initial_coef(self, term, obj, uniform_share=0.0):
        K, m = term.n_classes, obj.m
        if (self.warm_start and hasattr(self, "coef_")
                and self.coef_.shape == (K, term.n_features)):
            Wb = self._fitted_rows(term, obj)
            if not obj.reference and obj.penalty == "l2":
                # adding one vector to every class's row changes no probability and
                # centring it can only lower an l2 penalty: start in the subspace
                # sum_k coef_k = 0 that the iterates then never leave
                Wb -= Wb.mean(axis=0)
            return obj.reduce(Wb.ravel())
        Wb = np.zeros((K, m))
        if term.fit_intercept:
            if hasattr(term, "class_totals"):
                tot = np.asarray(term.class_totals(), dtype=np.float64)
            else:  # from the gradient at 0: d/db_k = S/K - total_k
                _, g = term.loss_gradient(np.zeros(K * m))
                tot = term.weight_sum / K - np.asarray(g, dtype=np.float64).reshape(K, m)[:, -1]
            freq = np.maximum(tot, 0) / max(tot.sum(), 1e-300)
            freq = (1.0 - uniform_share) * freq + uniform_share / K
            b = np.log(np.maximum(freq, 1e-8))
            Wb[:, -1] = b - b.mean()
            if obj.reference:
                Wb -= Wb[0]
        return obj.reduce(Wb.ravel())

    def _solve(self, term, obj, x0, tol, max_iter=None):
        solver = self._choose_solver(term, obj)
        kw = {"tol": tol, "max_iter": int(self.max_iter if max_iter is None else max_iter),
              "verbose": int(self.verbose)}
        if solver == "prox-newton":
            if self._explicit_hessian_ok(term, obj):
                return proximal_newton(obj.fun_grad, x0, obj.l1_weights, hess=obj.hess, **kw)
            return proximal_newton(obj.fun_grad, x0, obj.l1_weights, hessp=obj.hessp,
                                   hess_diag=(obj.hess_diag if hasattr(term, "hess_diag")
                                              else None),
                                   **kw)
        if solver == "newton-cholesky":
            return newton_cholesky(obj.fun_grad, obj.hess, x0, **kw)
        if solver == "lbfgs":
            return lbfgs(obj.fun_grad, x0, **kw)
        precond = obj.precond if obj.has_precond() else None
        if self._coarse_ok(term, obj):
            obj.coarse_until(tol)
        return trust_region_newton_cg(obj.fun_grad, obj.hessp, x0, precond=precond, **kw)

    def _params_layout(self):
        """``_partial_layout`` of the objective the current parameters give, for a
        fitted model (a loaded one's optimiser state is in that layout)."""
        reference = self.penalty is None or bool(np.isinf(float(self.C)))
        m = int(self.n_features_in_) + int(bool(self.fit_intercept))
        K = len(self.classes_)
        return (reference, bool(self.fit_intercept), (K - int(reference)) * m)

    @staticmethod
    def _explicit_hessian_ok(term, obj):
        """Proximal Newton with the explicit Hessian (coordinate descent on it) when
        it has at most ``_EXPLICIT_HESSIAN_MAX`` parameters and building it, about
        ``n p^2`` multiply-adds, costs at most ``_EXPLICIT_HESSIAN_WORK`` (a dense
        20,000 x 300 x 5 l1 fit took 29 s, a 50,000 x 999 CSR one 90 s, building
        it every iteration); Hessian-vector products otherwise."""
        if obj.n_params > _EXPLICIT_HESSIAN_MAX or not hasattr(term, "hessian"):
            return False
        X = getattr(term, "X", None)
        n = X.shape[0] if X is not None else getattr(term, "n_samples", None)  # Dask
        return n is None or n * float(obj.n_params) ** 2 <= _EXPLICIT_HESSIAN_WORK

    @staticmethod
    def _coarse_ok(term, obj):
        """Whether the first gradients may use float32 products: float32 Hessian
        products (``mixed_precision``, for float32 X too), and float32 X (its own
        passes are the cheap ones: 150 noisy copies of breast cancer, C=1, 0.26 ->
        0.15 s) or a problem large enough for the products to dominate
        (``_SMALL_WORK``)."""
        X = getattr(term, "X", None)
        return (X is not None and getattr(term, "mixed_precision", False)
                and (X.dtype == np.float32 or X.shape[0] * obj.n_params > _SMALL_WORK))

    def _pass_setup(self, term, obj):
        """Set how the passes over an in-memory term run (float32 Hessian products,
        row blocks on threads); returns whether BLAS runs in one thread meanwhile
        (``_blas_threads``)."""
        X = getattr(term, "X", None)
        if X is None:
            n = getattr(term, "n_samples", None)
            if hasattr(term, "exact_products") and n is not None:
                # Dask: float32 partitions take float64 products where float64 data
                # in memory would (their float32 ones stalled small unpenalised fits)
                work = n * obj.n_params
                term.exact_products = not (work > _SMALL_WORK or (
                    obj.penalty is not None and work > _TINY_WORK))
            return False
        work = X.shape[0] * obj.n_params
        small = work <= _SMALL_WORK
        if hasattr(term, "mixed_precision") and (
                not small or (obj.penalty is not None and work > _TINY_WORK)) and (
                products_fit(term.abs_max, X.shape[0], np.float32)):
            # float32 Hessian products (the CG direction only; convergence is judged on
            # float64 gradients):
            # digits 40 -> 34 ms.  Not on tiny problems, whose tolerance is tightened,
            # nor on small unpenalised ones, whose nearly flat directions float32
            # products blur (make_classification 5000x30x4: 7 -> 17 Newton steps)
            term.mixed_precision = True
        sparse = _is_sparse(X)
        if not small and hasattr(term, "_loss") and (
                sparse or self._choose_solver(term, obj) in ("newton-cg", "lbfgs")):
            # the products, the bulk of these fits, run on one row block of X per thread
            # with BLAS in one thread: SciPy's sparse products are one-threaded
            # (50,000 x 20,000 CSR, 2 threads: 4.3 -> 2.5 s), one-thread BLAS on row
            # blocks beats multithreaded BLAS on tall, thin products (see
            # losses._linear), and idle BLAS threads spin beside ours (sparse: 3.6 s
            # with one thread for SciPy and BLAS left at two)
            term._loss._threads = _pool.max_threads()
            return True
        return small or sparse

    def _fit_term(self, term):
        """Everything after the data term is built: solve and set the fitted
        attributes.  Works on any data term (contract 4)."""
        obj = _PenalizedObjective(term, self.penalty, float(self.C), self.l1_ratio)
        X = getattr(term, "X", None)
        # the Dask term has no X but knows its rows: solved as tightly as in memory
        n = X.shape[0] if X is not None else getattr(term, "n_samples", None)
        tol = float(self.tol)
        if n is not None and n * obj.n_params <= _TINY_WORK:
            tol *= 1e-3
        # gradients are float64 (float32 data's too) and accurate to a few ulps at best
        tol = max(tol, 50 * float(np.finfo(np.float64).eps))
        single = self._pass_setup(term, obj)
        # solved quietly: the ConvergenceWarning is issued here, at the caller's line,
        # and only if the user's tol was missed (the solver's verdict is on ``tol``,
        # tightened for tiny problems)
        with _blas_threads(single):
            x0 = self._initial_coef(term, obj)
            with quiet_convergence() as texts:
                res = self._solve(term, obj, x0, tol)
        history = np.asarray(res.history, dtype=np.float64) * obj.scale
        n_iter = int(res.n_iter)
        if texts and not (res.grad_norm <= float(self.tol) * max(1.0, abs(res.fun))):
            name, _, message = texts[-1]      # the last phase's, with every iteration
            warnings.warn(convergence_text(name, n_iter, message), ConvergenceWarning,
                          stacklevel=_caller_level())
        self._set_coef(obj.expand(res.x), term, obj)
        self.n_iter_ = n_iter
        self.loss_curve_ = history
        return self

    def _set_coef(self, coef, term, obj):
        K, d = term.n_classes, term.n_features
        Wb = np.asarray(coef, dtype=np.float64).reshape(K, obj.m)
        W = Wb[:, :d].copy()
        b = Wb[:, d].copy() if term.fit_intercept else np.zeros(K)
        if obj.penalty is None:
            W -= W.mean(axis=0)
        # the objective does not change when a constant is added to every intercept
        # (softmax is shift invariant); report the centred representative
        b -= b.mean()
        dt = term.dtype if np.dtype(term.dtype) in (np.float32, np.float64) else np.float64
        self.coef_ = W.astype(dt)
        self.intercept_ = b.astype(dt)

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (float32 data keeps its memory; see Notes).
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or class probabilities (soft targets; rows sum to 1).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative, finite weights (multiplied by the class weights).

        Returns
        -------
        self : SoftmaxRegression
        """
        if hasattr(X, "__dask_graph__"):  # Dask collection: softmaxkit.distributed (#7)
            from ..distributed import fit_dask
            return fit_dask(self, X, y, sample_weight)
        self._check_params()
        term = self._make_data_term(X, y, sample_weight)
        self._partial = None
        return self._fit_term(term)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One pass of minibatch Adam over ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        classes : array-like of shape (n_classes,), default=None
            All class labels; required on the first call with label targets.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : SoftmaxRegression

        Notes
        -----
        The penalty is weighted as if ``X`` were the whole training set (the
        objective of :meth:`fit` on ``X``, scaled by ``1 / (C * sum(s))``), so calling
        ``partial_fit`` repeatedly on the same data approaches ``fit``.  A stream of
        chunks of ``m`` rows out of ``N`` therefore fits with a penalty ``N / m``
        times stronger than ``fit`` on all ``N`` rows with the same ``C`` (the
        penalty's weight relative to the data cannot be known from one chunk): to
        approach ``fit(X_all, y_all)`` with ``C``, stream with ``C * N / m``
        (weights: the total weight over a chunk's).  Minibatches of
        64 rows are shuffled with ``random_state``; Adam's step decays as
        ``0.05 / sqrt(1 + t / 100)`` over the updates ``t`` made so far; on a model
        already fitted (by :meth:`fit`, or before ``set_params`` changed the
        penalty's kind or ``fit_intercept``) it starts from the fitted coefficients
        with ``0.001`` instead, so that more passes over the same data keep it near
        its optimum (the larger step moved a fit 2.4% above its objective).  The first
        call starts the intercepts at the log of its batch's class frequencies mixed
        half and half with uniform ones (a class absent from the first batch does not
        start near probability 0).  ``class_weight="balanced"`` weighs each batch by
        its own class counts, so every batch must hold every class (pass a dict
        otherwise); a Dask collection is passed over one partition at a time
        (:func:`softmaxkit.distributed.partial_fit_dask`) with the class counts of the
        whole collection.
        """
        if hasattr(X, "__dask_graph__"):  # Dask collection: one partition at a time (#7)
            from ..distributed import partial_fit_dask
            return partial_fit_dask(self, X, y, classes, sample_weight)
        self._check_params()
        fitted, first = self._partial_check_classes(y, classes)
        if first and not fitted:
            # a stream may start with one row (as SGDClassifier.partial_fit's may)
            term = self._make_data_term(X, y, sample_weight, classes=classes, reset=True,
                                        min_samples=1)
        else:
            term = self._make_data_term(X, y, sample_weight, reset=False)
        obj = _PenalizedObjective(term, self.penalty, float(self.C), self.l1_ratio)
        if not first and (np.size(self._partial["x"]) != obj.n_params or getattr(
                self, "_partial_layout", None) != _partial_layout(obj)):
            # set_params changed the parametrisation (penalty None <-> not, C=inf,
            # fit_intercept): go on from the current coefficients in the new one
            self._partial, first, fitted = None, True, True
        self._partial_start(term, obj, first, fitted)
        return self._partial_pass(obj, [(term.X, term.Y, term.s)])

    def _partial_check_classes(self, y, classes):
        """``(fitted, first)`` for a partial_fit call, after checking ``classes``:
        required on the very first call with labels, else equal to ``classes_``."""
        fitted = hasattr(self, "coef_") and hasattr(self, "classes_")
        first = getattr(self, "_partial", None) is None
        if first and not fitted:
            if hasattr(y, "__dask_graph__"):  # its number of columns, without computing
                ncol = len(y.columns) if hasattr(y, "columns") else (
                    y.shape[1] if y.ndim == 2 else 1)
            else:
                y_arr = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
                ncol = y_arr.shape[1] if y_arr.ndim == 2 else 1
            soft = ncol >= 2
            if classes is None and not soft:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError("classes differs from the classes of the first call to "
                             "partial_fit.")
        return fitted, first

    def _partial_start(self, term, obj, first, fitted):
        """Set up the optimiser state on the first partial_fit call."""
        if not first:
            return
        if fitted:  # continue from the current fit
            x = obj.reduce(self._fitted_rows(term, obj).ravel())
        else:
            # the first batch's class frequencies, mixed half and half with uniform
            # ones: a class absent from it must not start at probability ~0, which
            # Adam's small steps take hundreds of updates to undo
            x = self._initial_coef(term, obj, uniform_share=0.5)
        lr = self._partial_lr_warm if fitted else self._partial_lr
        self._partial = {"opt": Adam(learning_rate=lr,
                                     decay=self._partial_decay), "x": x,
                         "rng": check_random_state(self.random_state), "passes": 0}
        # not in the state (model files store exactly that); a loaded model's state
        # is checked by its size alone
        self._partial_layout = _partial_layout(obj)
        self.loss_curve_ = np.empty(0)

    def _partial_pass(self, obj, parts):
        """One pass of minibatch Adam over ``parts``, an iterable of ``(X, Y, s)``
        with encoded targets (see :func:`_minibatches`), the penalty weighted by the
        whole term's ``S``; sets the fitted attributes."""
        st = self._partial
        x = st["x"]
        loss = LinearSoftmaxLoss(obj.term.n_classes, obj.term.fit_intercept)
        total = 0.0
        for Xb, Yb, sb in _minibatches(parts, st["rng"], self._partial_batch_size):
            Sb = float(Xb.shape[0]) if sb is None else float(np.sum(sb, dtype=np.float64))
            if Sb <= 0:
                continue
            coef = obj.expand(x)
            value, grad, _ = loss._loss_grad_state(coef, Xb, Yb, sb)
            g = obj.reduce(np.asarray(grad, dtype=np.float64)) / Sb
            g += obj._l2vec * x
            total += value
            # l1: Adam's proximal step (soft-thresholding in its diagonal metric), so
            # that coefficients reach exact zeros (a subgradient never does)
            x = st["opt"].step(x, g, objective=value / Sb,
                               l1=obj.l1_weights if obj.l1 else None)
        st["x"] = x
        st["passes"] += 1
        self._set_coef(obj.expand(x), obj.term, obj)
        self.n_iter_ = st["passes"]
        est = (total / obj.S + 0.5 * float(obj._l2vec @ (x * x))
               + float(obj.l1_weights @ np.abs(x))) * obj.scale
        self.loss_curve_ = np.append(self.loss_curve_, est)
        return self

    # --------------------------------------------------------------------- predict
    @_lazy_on_dask
    def decision_function(self, X):
        """Return the logits ``X W^T + b`` (for two classes, the margin ``z_1 - z_0``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            With two classes scikit-learn's convention applies: one score per
            sample, positive for ``classes_[1]``; ``softmax([0, score])`` gives the
            probabilities.
        """
        Z = self._logits(X)
        if Z.shape[1] == 2:
            return Z[:, 1] - Z[:, 0]
        return Z

    def _logits(self, X):
        check_is_fitted(self, ["coef_", "intercept_", "classes_"])
        X = self._validate_X(X, reset=False)
        coef = np.asarray(self.coef_)
        Z = X @ coef.T.astype(X.dtype, copy=False)
        Z = np.asarray(Z)
        Z += np.asarray(self.intercept_, dtype=Z.dtype)
        return Z

    @_lazy_on_dask
    def predict_proba(self, X):
        """Return class probabilities ``softmax(X W^T + b)``, shape (n_samples, n_classes).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        from ..special import softmax

        return softmax(self._logits(X), axis=1)

    @_lazy_on_dask
    def predict_log_proba(self, X):
        """Return log class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        from ..special import log_softmax

        return log_softmax(self._logits(X), axis=1)

    @_lazy_on_dask
    def predict(self, X):
        """Return the most probable class label for each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        Z = self._logits(X)
        return np.asarray(self.classes_)[np.argmax(Z, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or soft targets (class probabilities, as ``fit`` takes them):
            those are scored against their most probable class (the first on ties).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from softmaxkit import SoftmaxRegression
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> clf = SoftmaxRegression().fit(X, [0, 0, 1, 1])
        >>> soft = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.1, 0.9]]
        >>> clf.score(X, [0, 0, 1, 1]), clf.score(X, soft)
        (1.0, 1.0)
        """
        if getattr(y, "ndim", 2) != 2:
            # labels (a Dask y is then computed once, by scikit-learn's score)
            return super().score(X, y, sample_weight=sample_weight)
        y_arr = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
        if y_arr.ndim == 2 and y_arr.shape[1] >= 2 and y_arr.dtype.kind in "biuf":
            if y_arr.shape[1] != len(self.classes_):
                raise ValueError(f"y has {y_arr.shape[1]} columns but the model has "
                                 f"{len(self.classes_)} classes.")
            y = np.asarray(self.classes_)[np.argmax(y_arr, axis=1)]
        return super().score(X, y, sample_weight=sample_weight)
