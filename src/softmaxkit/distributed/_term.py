"""The data term of softmax regression on Dask collections (contract 4)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from .._validation import (
    check_entry_range,
    check_label_kinds,
    class_weight_vector,
    plain,
)
from . import _chunks
from ._runtime import _ClientRunner, _LocalRunner, active_client, total_memory

__all__ = ["DaskDataTerm"]

_PERSIST_CHOICES = ("auto", True, False)
# "auto" persists when the prepared data take at most this share of the
# memory of the cluster (or of the machine on the local scheduler).
_PERSIST_FRACTION = 0.5


def _persist_option(persist):
    if persist is None:
        import dask

        persist = dask.config.get("softmaxkit.persist", "auto")
    if isinstance(persist, str):
        persist = persist.strip().lower()
        persist = {"true": True, "false": False, "yes": True, "no": False}.get(persist, persist)
    if persist not in _PERSIST_CHOICES:
        from .._validation import param_error

        raise param_error("persist", "DaskDataTerm", "one of 'auto', True, False", persist)
    return persist


def _is_sparse_array(X):
    """A Dask array whose chunks are SciPy sparse matrices."""
    from ..losses._linear import _is_sparse

    return not hasattr(X, "columns") and _is_sparse(getattr(X, "_meta", None))


def _float_dtype(X, dtype):
    """float32 when X is all float32 (as the in-memory estimator keeps it), else float64."""
    if dtype is None:
        if hasattr(X, "dtypes") and not hasattr(X, "dtype"):
            kinds = {np.dtype(t).name if isinstance(t, np.dtype) else str(t) for t in X.dtypes}
            dtype = np.float32 if kinds == {"float32"} else np.float64
        else:
            dtype = np.float32 if np.dtype(X.dtype) == np.float32 else np.float64
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dtype}.")
    return dtype


def _check_label_kinds(stats):
    """The in-memory checks of the labels' kinds, on all partitions together (each
    partition was checked on its own by ``prepare_part``): strings in one
    partition and other labels in another are refused (concatenated, the others
    would become strings: ``0`` would be ``'0'``), and so are object labels that
    are not strings (scikit-learn's error, from the first such label)."""
    first_str = first_other = None
    for st in stats:
        if not st["n"]:
            continue
        if "object_label" in st:
            value = st["object_label"]
        elif st["labels"].size:
            value = st["labels"][0]  # the labels of one partition are all of one kind
        else:  # pragma: no cover - a partition with a bad label is reported before
            continue
        if isinstance(value, str):
            first_str = first_str or (st["index"], value)
        else:
            first_other = first_other or (st["index"], value)
    if first_str is not None and first_other is not None:
        pair = np.empty(2, dtype=object)
        pair[:] = [first_str[1], first_other[1]]
        parts = sorted((first_str[0], first_other[0]))
        check_label_kinds(pair, f" across partitions {parts[0]} and {parts[1]}")
    objects = [st["object_label"] for st in stats if st["n"] and "object_label" in st]
    if objects:
        probe = np.empty(1, dtype=object)
        probe[0] = objects[0]
        check_classification_targets(probe)  # 'Unknown label type: unknown', or bytes
        raise ValueError(  # pragma: no cover - scikit-learn refuses them all
            f"Unknown label type: object labels such as {plain(objects[0])!r}.")


class DaskDataTerm:
    """Sum of per-sample cross-entropies of a linear softmax model over the
    partitions of Dask collections.

    The data term of contract 4, computed on Dask workers: every objective
    evaluation maps :meth:`softmaxkit.losses.LinearSoftmaxLoss.loss_gradient`
    over the row partitions (one round trip) and sums the per-partition
    results on the client in partition order, so the result is
    deterministic (bitwise reproducible) and equals the in-memory value up to
    the order of a floating-point sum.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features) or dask DataFrame
        Features.  Row chunks define the partitions (column chunks are merged).
        Complex X, y or sample_weight are refused (ValueError, as in memory)
        from their dtypes, before anything is computed.
        The chunks may be SciPy sparse matrices (``da.from_array(X_csr,
        chunks=(rows, -1), asarray=False)``): they are computed on as CSR.
    y : dask.array.Array, dask Series or ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels (any sortable type), or class probabilities (soft targets:
        a 2-D Dask array, DataFrame or ndarray whose rows sum to 1; the classes
        are then ``0..n_classes-1``).  Paired with X's rows by position, never
        by index: row i of y is the label of row i of X, whatever the
        partitions or the index of either (y is re-chunked to X's partition
        lengths, computed when Dask does not know them).
    sample_weight : dask.array.Array, dask Series, ndarray of shape (n_samples,) or None
        Non-negative sample weights, paired with X's rows by position; None
        means all ones.
    fit_intercept : bool, default=True
        Whether the coefficient vector ends each class row with an intercept.
    dtype : {numpy.float64, numpy.float32} or None, default=None
        Floating dtype of the chunks; None keeps float32 X and uses float64
        otherwise.  Gradients are float64 either way (float32 chunks are cast one
        row block at a time on the workers); Hessian products use the chunks'
        dtype, except in small unpenalised fits (``exact_products``: float64 on
        cast row blocks, as in memory).
    classes : ndarray of shape (n_classes,) or None, default=None
        The class labels to encode against (sorted); None takes every label
        present in y.
    class_weight : dict, "balanced" or None, default=None
        Class weights multiplying the sample weights, as in memory ("balanced":
        ``sum(s) / (n_classes * class_totals)``, the class totals counted with
        the sample weights ``s``, as scikit-learn >= 1.6 does; a dict naming a
        label that is not a class is a ValueError).
    persist : {"auto", True, False} or None, default=None
        True materialises the prepared partitions once in worker memory
        (futures pinned until :meth:`close`); False streams: every
        evaluation rebuilds the partitions from their graph (re-reading
        Parquet, say) and keeps nothing, so data larger than the cluster's
        memory still fit.  "auto" persists when the data take at most half of
        the cluster's memory.  None reads the Dask config key
        ``softmaxkit.persist`` (default "auto").

    Attributes
    ----------
    n_samples : int
    n_features : int
    n_classes : int
    classes : ndarray of shape (n_classes,)
        Sorted class labels.
    class_counts : ndarray of shape (n_classes,)
        Number of samples of each class (soft targets: the column sums of y).
    soft_targets : bool
        Whether y holds class probabilities.
    weight_sum : float
        Sum of the sample weights (n_samples without weights).
    feature_names : ndarray of str or None
        Column names of a Dask DataFrame X.
    persisted : bool
        Whether the partitions are held in memory.
    n_partitions : int
        Number of non-empty row partitions.

    Notes
    -----
    With coefficients :math:`w` (``coef.reshape(K, d + fit_intercept)``) and
    partitions :math:`P_1, \\dots, P_m`,

    .. math:: L(w) = \\sum_{j=1}^{m} \\sum_{i \\in P_j} s_i\\, \\mathrm{CE}(W x_i + b, y_i),

    with gradient and Hessian-vector products summed the same way.  The sum
    over :math:`j` runs on the client in partition order.  Call :meth:`close`
    (or use the term as a context manager) to release worker memory.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from softmaxkit.distributed import DaskDataTerm
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.normal(size=(60, 3)), chunks=(25, 3))
    >>> y = da.from_array(np.arange(60) % 3, chunks=25)
    >>> with DaskDataTerm(X, y) as term:
    ...     value, grad = term.loss_gradient(np.zeros(3 * 4))
    >>> bool(np.isclose(value, 60 * np.log(3))), grad.shape
    (True, (12,))
    """

    # gradients are float64 also for float32 partitions (cast by row blocks on the
    # workers; the Hessian products stay in the partitions' dtype unless
    # exact_products).  float64 Hessian products on float32 partitions (set by the estimator where
    # float64 data in memory would get float64 ones)
    exact_products = False

    def __init__(
        self,
        X,
        y,
        sample_weight=None,
        *,
        fit_intercept=True,
        dtype=None,
        classes=None,
        class_weight=None,
        persist=None,
    ):
        from ..losses import LinearSoftmaxLoss

        for value, name in ((X, "X"), (y, "y"), (sample_weight, "sample_weight")):
            _chunks.check_not_complex(value, name)  # from the dtype, nothing computed
        persist = _persist_option(persist)
        self.fit_intercept = bool(fit_intercept)
        self.dtype = _float_dtype(X, dtype)
        dtype = self.dtype

        client = active_client()
        self._runner = _ClientRunner(client) if client is not None else _LocalRunner()
        self._handles = []
        self._stream = None
        self._states = None
        self._state_key = None
        self._closed = False

        xb, yb, wb, self.feature_names, n_features, n_rows = _chunks.row_partitions(
            X, y, sample_weight
        )
        self.n_features = int(n_features)
        prepared = [
            _chunks.delayed_prepare(x, t, w, dtype.type, i)
            for i, (x, t, w) in enumerate(zip(xb, yb, wb, strict=True))
        ]
        memory = total_memory(self._runner.client)
        sparse = _is_sparse_array(X)
        self.dense = not sparse
        self._kron_A = None
        if persist == "auto" and n_rows is not None and not sparse:
            persist = self._nbytes(n_rows) <= _PERSIST_FRACTION * memory

        # the statistics pass: on the persisted partitions, or streamed
        if persist is True:
            parts = self._runner.materialize(prepared)
            stats = self._runner.map(_chunks.part_stats, parts, list(range(len(parts))))
        else:
            parts = None
            stats = self._runner.map_stream(_chunks.part_stats, prepared, index=None)
            for i, st in enumerate(stats):
                st["index"] = i
        try:
            self._check_stats(stats, n_features)
            self._class_stats(stats, classes, class_weight)
        except BaseException:
            if parts is not None:
                self._runner.release(parts)
            raise
        keep = [i for i, st in enumerate(stats) if st["n"] > 0]
        self.n_partitions = len(keep)
        self.n_samples = int(sum(st["n"] for st in stats))
        self._loss = LinearSoftmaxLoss(self.n_classes, fit_intercept=self.fit_intercept)

        if persist == "auto":  # DataFrames, sparse arrays: decided once the size is known
            size = (sum(st["nbytes"] for st in stats) if sparse
                    else self._nbytes(self.n_samples))
            persist = size <= _PERSIST_FRACTION * memory
            if persist:
                parts = self._runner.materialize(prepared)
        self.persisted = bool(persist)
        cw = self._class_weight_vec
        if self.persisted:
            kept = [parts[i] for i in keep]
            self._handles = self._runner.map_futures(
                _chunks.encode_part, kept, classes=self.classes, class_weight=cw
            )
            self._runner.release(parts)
        else:
            self._stream = [
                _chunks.delayed_prepare(
                    xb[i], yb[i], wb[i], dtype.type, i, self.classes, cw,
                    func=_chunks.prepare_encoded,
                )
                for i in keep
            ]

    # ------------------------------------------------------------------
    def _nbytes(self, n_rows):
        return float(n_rows) * (self.n_features + 2) * self.dtype.itemsize

    def _check_stats(self, stats, n_features):
        start = 0  # global index of the partition's first row
        for st in stats:
            i = st["index"]
            if st["n"] and st["n_features"] != n_features:
                raise ValueError(
                    f"X partition {i} has {st['n_features']} features; expected {n_features}."
                )
            if st["bad_x"] is not None:
                row, what = st["bad_x"]
                raise ValueError(
                    f"Input X contains {what} (partition {i}, row {row} of that partition)."
                )
            if st.get("missing_y") is not None:
                row = st["missing_y"]
                raise ValueError(
                    f"y has a missing label (NaN, None or NA) at index {start + row} "
                    f"(partition {i}, row {row} of that partition); drop or fill it "
                    "before fitting."
                )
            if st["bad_y"] is not None:
                raise ValueError(
                    f"Input y contains NaN or infinity (partition {i}, row {st['bad_y']})."
                )
            if st.get("bad_soft") is not None:
                row, what = st["bad_soft"]
                raise ValueError(
                    f"Soft targets must be probability distributions: row {row} of partition "
                    f"{i} {what}."
                )
            if st["bad_w"] is not None:
                row, value = st["bad_w"]
                raise ValueError(
                    "sample_weight must be finite and non-negative; got "
                    f"{value} (partition {i}, row {row})."
                )
            start += st["n"]
        if sum(st["n"] for st in stats) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
        check_entry_range(max(st.get("amax", 0.0) for st in stats),
                          sum(st["n"] for st in stats), self.dtype)

    def _class_stats(self, stats, classes, class_weight):
        soft = {st.get("soft") for st in stats if st["n"]}
        if soft != {None}:
            return self._soft_class_stats(stats, soft, classes, class_weight)
        self.soft_targets = False
        _check_label_kinds(stats)
        labels = [st["labels"] for st in stats if st["n"]]
        seen = np.unique(np.concatenate(labels))
        # non-integral numbers (0.5, 1.5) are not classes: scikit-learn's error, as in
        # memory (the distinct labels decide it as all of y would)
        check_classification_targets(seen)
        if classes is None:
            classes = seen
        else:
            classes = np.unique(np.asarray(classes))
            unknown = np.setdiff1d(seen, classes)
            if unknown.size:
                raise ValueError(
                    f"y contains labels not in classes: {plain(unknown[0])!r}."
                )
        self.classes = classes
        self.n_classes = int(classes.shape[0])
        if self.n_classes < 2:
            raise ValueError(
                "SoftmaxRegression needs samples of at least 2 classes in the data; "
                f"got 1 class ({plain(classes[0])!r})."
            )
        counts = np.zeros(self.n_classes, dtype=np.int64)
        totals = np.zeros(self.n_classes, dtype=np.float64)
        for st in stats:  # fixed (partition) order
            if st["n"]:
                pos = np.searchsorted(classes, st["labels"])
                np.add.at(counts, pos, st["counts"])
                np.add.at(totals, pos, st["totals"])
        self.class_counts = counts
        cw = class_weight_vector(class_weight, classes, totals,
                                  sum(st["wsum"] for st in stats))
        self._class_weight_vec = cw
        self._set_class_totals(totals if cw is None else totals * cw)

    def _set_class_totals(self, totals):
        """The weighted class totals (sample and class weights) and their sum."""
        self._class_totals = totals
        self.weight_sum = float(np.sum(totals))
        if not self.weight_sum > 0:
            raise ValueError(
                "The sample weights (times the class weights) sum to 0; at least one "
                "sample needs a positive weight."
            )

    def _soft_class_stats(self, stats, soft, classes, class_weight):
        """Classes and weighted totals of soft targets: classes ``0..K-1`` as in
        memory; class weights act per sample as ``Y_i . cw`` ("balanced": ``sum(s)
        / (K * sum_i s_i Y_i)``), so the weighted totals are ``cw @ sum_i s_i Y_i
        Y_i^T``, from the per-partition (K, K) sums."""
        if None in soft or len(soft) != 1:
            raise ValueError("y must hold either labels or (n_samples, n_classes) class "
                             "probabilities with the same number of columns in every "
                             "partition.")
        K = soft.pop()
        if classes is not None and len(np.unique(np.asarray(classes))) != K:
            raise ValueError(f"y has {K} columns but classes has {len(classes)} labels.")
        self.soft_targets = True
        self.classes = np.arange(K)
        self.n_classes = K
        counts = np.zeros(K)
        second = np.zeros((K, K))
        for st in stats:  # fixed (partition) order
            if st["n"]:
                counts += st["counts"]
                second += st["second"]
        self.class_counts = counts
        # sum_j second[j, k] = sum_i s_i Y_ik: the sample-weighted class totals
        cw = class_weight_vector(class_weight, self.classes, second.sum(axis=0),
                                  sum(st["wsum"] for st in stats if st["n"]))
        self._class_weight_vec = cw
        self._set_class_totals(second.sum(axis=0) if cw is None else cw @ second)

    def _map(self, func, **kwargs):
        if self._closed:
            raise RuntimeError("This DaskDataTerm is closed.")
        if self.persisted:
            return self._runner.map(func, self._handles, **kwargs)
        return self._runner.map_stream(func, self._stream, **kwargs)

    def _coef(self, coef):
        size = self.n_classes * (self.n_features + self.fit_intercept)
        coef = np.asarray(coef, dtype=np.float64).ravel()
        if coef.shape != (size,):
            raise ValueError(f"coef must have {size} entries; got {coef.size}.")
        return coef

    def _states_at(self, coef):
        """Per-chunk curvature states at ``coef`` (futures on the workers),
        cached for the last ``coef`` like the in-memory term does."""
        if self._state_key is not None and np.array_equal(self._state_key, coef):
            return self._states
        self._states = None  # drop the old ones first
        self._states = self._runner.map_futures(
            _chunks.chunk_state, self._handles, coef=coef, loss=self._loss,
            exact=self.exact_products
        )
        self._state_key = coef.copy()
        return self._states

    @staticmethod
    def _sum(results, shape):
        dtype = np.result_type(np.float64, *(np.asarray(r).dtype for r in results))
        out = np.zeros(shape, dtype=dtype)
        for r in results:  # fixed (partition) order
            out += r
        return out

    # ------------------------------------------------------------------ contract 4
    def class_totals(self):
        """Weighted number of samples of each class (sample and class weights),
        shape (n_classes,)."""
        return self._class_totals.copy()

    def loss(self, coef):
        """Data loss at ``coef`` (float)."""
        values = self._map(_chunks.chunk_loss, coef=self._coef(coef), loss=self._loss)
        total = 0.0
        for v in values:  # fixed (partition) order
            total += v
        return total

    def loss_gradient(self, coef):
        """Data loss and its gradient at ``coef``: ``(float, ndarray like coef)``."""
        coef = self._coef(coef)
        results = self._map(_chunks.chunk_loss_gradient, coef=coef, loss=self._loss)
        total = 0.0
        for value, _ in results:  # fixed (partition) order
            total += value
        return total, self._sum([g for _, g in results], coef.shape)

    def hessp(self, coef):
        """A callable ``v -> H v`` (Hessian of the data loss at ``coef``).

        With persisted partitions each worker keeps its chunk's probabilities
        at ``coef`` (one pass), and every product is one round trip.
        """
        coef = self._coef(coef)
        runner, loss, exact = self._runner, self._loss, self.exact_products
        if self.persisted:
            states, handles = self._states_at(coef), list(self._handles)

            def hvp(v):
                v = np.asarray(v, dtype=np.float64).reshape(coef.shape)
                return self._sum(
                    runner.map(_chunks.state_hessp, states, handles, v=v, loss=loss,
                               exact=exact), coef.shape
                )

            return hvp

        def hvp_stream(v):
            v = np.asarray(v, dtype=np.float64).reshape(coef.shape)
            return self._sum(
                self._map(_chunks.chunk_hessp, coef=coef, v=v, loss=loss, exact=exact),
                coef.shape
            )

        return hvp_stream

    def hess_diag(self, coef):
        """Diagonal of the Hessian of the data loss at ``coef`` (proximal Newton's
        metric), shape like ``coef``."""
        return self._per_chunk(_chunks.state_hess_diag, _chunks.chunk_hess_diag,
                               self._coef(coef))

    def _tree_sum(self, func, *lists, **kwargs):
        """``func`` over the chunks (persisted: over ``lists``, the handles last;
        streamed: over the chunks themselves), summed on the workers in a fixed
        tree: for per-chunk results too large to gather one per chunk (the
        preconditioner's blocks may take 64 MiB a chunk)."""
        if self._closed:
            raise RuntimeError("This DaskDataTerm is closed.")
        if self.persisted:
            return self._runner.tree_sum(func, *lists, self._handles, **kwargs)
        return self._runner.tree_sum_stream(func, self._stream, **kwargs)

    def _per_chunk(self, state_func, chunk_func, coef, **kwargs):
        """``state_func`` over the kept chunk states at ``coef`` (persisted) or
        ``chunk_func`` over the streamed chunks, summed in a fixed tree."""
        if self.persisted:
            return np.asarray(self._tree_sum(state_func, self._states_at(coef),
                                             loss=self._loss, **kwargs), dtype=np.float64)
        return np.asarray(self._tree_sum(chunk_func, coef=coef, loss=self._loss, **kwargs),
                          dtype=np.float64)

    def kron_factors(self, coef):
        """Factors of the Kronecker approximation ``H ~ A (x) B`` of the Hessian
        (Newton-CG's first preconditioner), as in memory: ``A = sum_i s_i x~_i
        x~_i^T / S`` over the features plus the intercept (its diagonal only for
        sparse or wide X; one pass, computed once) and ``B`` of :meth:`kron_B`."""
        from ..models._softmax_regression import _KRON_DENSE_MAX

        coef = self._coef(coef)
        if self._kron_A is None:
            full = self.dense and self.n_features <= _KRON_DENSE_MAX
            m = self.n_features + int(self.fit_intercept)
            A = self._tree_sum(_chunks.chunk_kron_A, full=full, intercept=self.fit_intercept)
            self._kron_A = np.asarray(A, dtype=np.float64).reshape((m, m) if full else (m,))
            self._kron_A /= self.weight_sum
        return self._kron_A, self.kron_B(coef)

    def kron_B(self, coef):
        """``B = sum_i s_i (diag(p_i) - p_i p_i^T)`` at ``coef``, shape (K, K)."""
        B = self._per_chunk(_chunks.state_class_hessian, _chunks.chunk_class_hessian,
                            self._coef(coef))
        return (B + B.T) / 2

    def class_blocks(self, coef, max_rows):
        """The per-class diagonal blocks of the Hessian at ``coef``, shape (K, m, m)
        (dense X only): each chunk estimates its own from its share of ``max_rows``
        rows, drawn by weight (exact with every row when ``max_rows >= n``), and
        the chunks' blocks are summed."""
        fraction = min(1.0, float(max_rows) / max(self.n_samples, 1))
        return self._per_chunk(_chunks.state_class_blocks, _chunks.chunk_class_blocks,
                               self._coef(coef), fraction=fraction)

    def hessian(self, coef):
        """Explicit Hessian of the data loss at ``coef``, shape (p, p) with
        ``p = n_classes * (n_features + fit_intercept)``; summed on the
        workers in a fixed tree (for small p: Newton-Cholesky, proximal Newton)."""
        coef = self._coef(coef)
        if self._closed:
            raise RuntimeError("This DaskDataTerm is closed.")
        if self.persisted:
            return self._runner.tree_sum(
                _chunks.state_hessian, self._states_at(coef), self._handles, loss=self._loss
            )
        return self._runner.tree_sum_stream(
            _chunks.chunk_hessian, self._stream, coef=coef, loss=self._loss
        )

    # ------------------------------------------------------------------
    def close(self):
        """Release the partitions held in worker memory (idempotent)."""
        if not getattr(self, "_closed", True):
            self._states = None
            self._state_key = None
            self._runner.release(self._handles)
            self._stream = None
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        where = "client" if self._runner.client is not None else "local scheduler"
        mode = "persisted" if self.persisted else "streaming"
        return (
            f"DaskDataTerm(n_samples={self.n_samples}, n_features={self.n_features}, "
            f"n_classes={self.n_classes}, n_partitions={self.n_partitions}, {mode}, {where})"
        )
