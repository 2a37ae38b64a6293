"""Per-partition functions that run on the workers, and the alignment of
(X, y, sample_weight) into row partitions.

Everything here that runs on a worker is a plain module-level function of
NumPy chunks, so it pickles by reference and is imported on the worker.
The math is the in-memory :class:`softmaxkit.losses.LinearSoftmaxLoss`,
applied to one chunk: there is no second implementation of the loss.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_label_kinds, first_missing_label, soft_target_tol
from ..losses._linear import _is_sparse, _ProbState

__all__ = []


# --------------------------------------------------------------------------
# Alignment of the collections into row partitions (client side, lazy)
# --------------------------------------------------------------------------


def is_dask_collection(x):
    """True for Dask collections (the contract-4 test, no dask import)."""
    return hasattr(x, "__dask_graph__")


def _is_frame(x):
    return is_dask_collection(x) and hasattr(x, "npartitions") and hasattr(x, "map_partitions")


def _dtypes(v):
    """The dtypes of an array-like or Dask collection, known without computing."""
    if hasattr(v, "dtypes") and not hasattr(v, "dtype"):  # a (Dask or pandas) DataFrame
        return list(v.dtypes)
    dtype = getattr(v, "dtype", None)
    return [] if dtype is None else [dtype]


def check_not_complex(v, name):
    """Refuse complex ``v`` (X, y or sample_weight) as the in-memory estimator does
    (ValueError "Complex data not supported"), from its dtype alone: a Dask
    collection's dtype is known without computing it."""
    for dtype in _dtypes(v):
        if getattr(dtype, "kind", None) == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {dtype}.")


def _slice_numpy(v, lengths, name):
    v = np.asarray(v)
    n = int(sum(lengths))
    if v.shape[0] != n:
        raise ValueError(
            f"{name} has {v.shape[0]} samples but X has {n}; they must have the same length."
        )
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    return [v[bounds[i] : bounds[i + 1]] for i in range(len(lengths))]


_Y_COL = "__softmaxkit_y__"
_W_COL = "__softmaxkit_w__"


class _Split:
    """A partition that holds X's columns and more: ``block[columns]`` is X."""

    def __init__(self, block, columns):
        self.block = block
        self.columns = columns


class _Col:
    """One column of a partition (y or sample_weight riding with X)."""

    def __init__(self, block, column):
        self.block = block
        self.column = column


def delayed_prepare(xb, yb, wb, dtype, index, *extra, func=None):
    """The Delayed call of ``func`` (``prepare_part`` by default, or
    ``prepare_encoded`` with ``extra = (classes, class_weight)``) on aligned
    blocks (``_Split`` and ``_Col`` unwrapped into column selections of one
    partition)."""
    import dask

    x_cols = y_col = w_col = None
    if isinstance(xb, _Split):
        xb, x_cols = xb.block, xb.columns
    if isinstance(yb, _Col):
        yb, y_col = None, yb.column
    if isinstance(wb, _Col):
        wb, w_col = None, wb.column
    return dask.delayed(func or prepare_part, pure=True)(
        xb, yb, wb, dtype, index, x_cols, y_col, w_col, *extra
    )


def _lengths_expr(frame):
    """dask-expr's optimised ``Lengths`` expression of ``frame`` (a literal tuple
    when Dask knows the partition lengths from metadata: Parquet statistics,
    ``from_pandas``), or None where this private part of Dask is unavailable."""
    try:
        from dask.dataframe.dask_expr._expr import Lengths

        return Lengths(frame.expr).optimize()
    except Exception:  # pragma: no cover - depends on the Dask version
        return None


def same_partition_lengths(a, b):
    """True when the Dask frames ``a`` and ``b`` certainly have partitions of
    the same lengths, known without computing: their partition-length
    expressions are the same expression (columns of one frame, say, or
    literal lengths that are equal).  False means "not known", not "different"."""
    if a.npartitions != b.npartitions:
        return False
    ea, eb = _lengths_expr(a), _lengths_expr(b)
    return ea is not None and eb is not None and ea._name == eb._name


def partition_lengths(*frames):
    """The partition lengths (tuples of int) of Dask frames, computed in one
    call: from metadata where Dask can, else by counting the rows."""
    import dask

    colls = []
    for f in frames:
        try:
            from dask.dataframe.dask_expr import new_collection
            from dask.dataframe.dask_expr._expr import Lengths

            colls.append(new_collection(Lengths(f.expr)))
        except Exception:  # pragma: no cover - depends on the Dask version
            colls.append(f.map_partitions(len, enforce_metadata=False))
    return [tuple(int(n) for n in out) for out in dask.compute(*colls)]


def ride_columns(xb, *cols, names):
    """X's partition ``xb`` with the partitions ``cols`` of y (and
    sample_weight) added as the columns ``names``, paired by position (their
    index is ignored; the lengths were checked to be equal)."""
    extra = {}
    for name, col in zip(names, cols, strict=True):
        if len(col) != len(xb):
            raise ValueError(
                f"A partition of {'y' if name == _Y_COL else 'sample_weight'} has "
                f"{len(col)} rows but the matching partition of X has {len(xb)}."
            )
        extra[name] = col.array if hasattr(col, "array") else np.asarray(col)
    return xb.assign(**extra)


def row_partitions(X, y, sample_weight=None):
    """Split (X, y, sample_weight) into aligned row partitions.

    Rows are paired by position, always: row i of y (and of sample_weight) goes
    with row i of X, whatever the index of a Dask DataFrame or Series says (the
    in-memory estimator's and dask-ml's convention).  A Dask Series whose
    partitions have X's lengths is read with X, partition by partition (one
    read per partition for columns of the same frame); any other y is
    re-chunked to X's partition lengths, which are computed when Dask does not
    know them.

    Returns ``(x_blocks, y_blocks, w_blocks, feature_names, n_features, n_rows)``:
    lists of equal length whose items are Delayed objects (or NumPy slices,
    or None for absent weights); ``feature_names`` is an object array for a
    Dask DataFrame and None otherwise; ``n_features`` the number of columns;
    ``n_rows`` the number of rows when known without reading (Dask arrays),
    else None.
    """
    import dask.array as da

    frames = {}  # y, sample_weight given as Dask frames, made 1-D where they can be
    for name, v in (("y", y), ("sample_weight", sample_weight)):
        if _is_frame(v):
            if v.ndim == 2 and len(v.columns) == 1:
                v = v[v.columns[0]]
            elif v.ndim == 2 and name != "y":  # y may be (n, K) class probabilities
                raise ValueError(f"{name} must be 1-D; got a Dask DataFrame.")
            frames[name] = v
    if "y" in frames:
        y = frames["y"]
    if "sample_weight" in frames:
        sample_weight = frames["sample_weight"]

    lengths = {}  # name -> partition lengths, computed once when needed
    partwise = set()  # frames whose partitions pair with X's one to one
    if _is_frame(X):
        if X.ndim != 2:
            raise TypeError(
                "X must be 2-D: a Dask DataFrame or a 2-D Dask array; got a Dask Series."
            )
        feature_names = np.asarray([str(c) for c in X.columns], dtype=object)
        n_features = len(feature_names)
        unknown = {}
        for name, v in frames.items():
            if same_partition_lengths(X, v):
                partwise.add(name)
            else:
                unknown[name] = v
        if unknown:  # one pass for all the lengths Dask does not know
            names = ["X", *unknown]
            got = partition_lengths(X, *unknown.values())
            lengths.update(zip(names, got, strict=True))
            partwise.update(n for n in unknown if lengths[n] == lengths["X"])
        # 1-D y and sample_weight ride in X's partitions (one read of each
        # partition, paired by position)
        riders = {col: frames[name] for name, col in (("y", _Y_COL), ("sample_weight", _W_COL))
                  if name in partwise and frames[name].ndim == 1}
        if riders:
            meta = ride_columns(X._meta, *(v._meta for v in riders.values()),
                                names=list(riders))
            combined = X.map_partitions(ride_columns, *riders.values(), names=list(riders),
                                        align_dataframes=False, meta=meta)
            x_blocks = [_Split(b, list(X.columns)) for b in combined.to_delayed()]
        else:
            x_blocks = list(X.to_delayed())

        def _lengths():
            if "X" not in lengths:
                lengths["X"] = partition_lengths(X)[0]
            return lengths["X"]

    elif isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array; got a Dask array with shape {X.shape}.")
        feature_names = None
        riders = {}
        if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in X.chunks[1]):
            X = X.compute_chunk_sizes()
        X = X.rechunk({1: -1})
        n_features = int(X.shape[1])
        x_blocks = list(X.to_delayed().ravel())
        lengths["X"] = tuple(int(c) for c in X.chunks[0])

        def _lengths():
            return lengths["X"]

    else:
        raise TypeError(
            "X must be a Dask array or a Dask DataFrame on the Dask path; "
            f"got {type(X).__name__}."
        )

    nparts = len(x_blocks)

    def _align(v, name, col):
        if v is None:
            return [None] * nparts
        if col in riders:
            return [_Col(b.block, col) for b in x_blocks]
        soft_ok = name == "y"  # y may be (n, K) class probabilities (soft targets)
        if _is_frame(v):
            if name in partwise:  # (n, K) probabilities with X's partition lengths
                return list(v.to_delayed())
            if name not in lengths:
                lengths[name] = partition_lengths(v)[0]
            with warnings.catch_warnings():  # extension dtypes become object: handled
                warnings.filterwarnings("ignore", "Dask currently has limited support for "
                                        "converting pandas extension dtypes", UserWarning)
                v = v.to_dask_array(lengths=lengths[name])  # by position
        if isinstance(v, da.Array):
            if not (v.ndim == 1 or (soft_ok and v.ndim == 2)):
                raise ValueError(
                    f"{name} must be 1-D{' or (n_samples, n_classes)' if soft_ok else ''}; "
                    f"got a Dask array with shape {v.shape}."
                )
            if any(np.isnan(c) for c in v.chunks[0]):
                v = v.compute_chunk_sizes()
            lens = _lengths()
            if v.shape[0] != sum(lens):
                raise ValueError(
                    f"{name} has {v.shape[0]} samples but X has {sum(lens)}; "
                    "they must have the same length."
                )
            chunks = (lens,) if v.ndim == 1 else (lens, -1)
            return list(v.rechunk(chunks).to_delayed().ravel())
        if is_dask_collection(v):
            raise TypeError(f"{name} must be a Dask array or Series; got {type(v).__name__}.")
        return _slice_numpy(v, _lengths(), name)

    y_blocks = _align(y, "y", _Y_COL)
    w_blocks = _align(sample_weight, "sample_weight", _W_COL)
    n_rows = None if _is_frame(X) else int(sum(lengths["X"]))
    return x_blocks, y_blocks, w_blocks, feature_names, n_features, n_rows


# --------------------------------------------------------------------------
# Worker-side functions
# --------------------------------------------------------------------------


def _to_numpy_1d(v):
    if hasattr(v, "to_numpy"):
        v = v.to_numpy()
    v = np.asarray(v)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    return v


def _is_soft(y):
    """True for (n, K >= 2) targets: class probabilities."""
    return y.ndim == 2 and y.shape[1] >= 2


def _aligned(a):
    """C-contiguous and itemsize-aligned (copied only when it is not).

    Arrays deserialised after a transfer between workers can be misaligned;
    NumPy then skips BLAS for ``@`` and sums in another order, which would
    break bitwise reproducibility between runs.
    """
    return np.require(a, requirements=("C", "A"))


def _aligned_csr(X):
    """A CSR matrix whose three arrays are contiguous and aligned (see _aligned)."""
    arrays = (X.data, X.indices, X.indptr)
    fixed = tuple(_aligned(a) for a in arrays)
    if all(a is b for a, b in zip(arrays, fixed, strict=True)):
        return X
    return type(X)(fixed, shape=X.shape, copy=False)


def _part(part):
    X, Y, w = part
    X = _aligned_csr(X) if _is_sparse(X) else _aligned(X)
    return X, _aligned(Y), (None if w is None else _aligned(w))


def _check_part_not_complex(v, name, index):
    """Refuse a complex chunk (its dtype; complex numbers in an object chunk fail
    the conversion to float instead)."""
    for dtype in _dtypes(v):
        if getattr(dtype, "kind", None) == "c":
            raise ValueError(f"Complex data not supported: {name} partition {index} has "
                             f"dtype {dtype}.")


def prepare_part(xb, yb, wb, dtype, index, x_cols=None, y_col=None, w_col=None):
    """One partition as ``(X, y, w)`` NumPy arrays: X C-contiguous of ``dtype``,
    y the raw labels (1-D), w float ``dtype`` or None.  ``y_col``/``w_col``
    name columns of the DataFrame ``xb`` to take y/w from, ``x_cols`` X's."""
    if y_col is not None:
        yb = xb[y_col]
    if w_col is not None:
        wb = xb[w_col]
    if x_cols is not None:
        xb = xb[x_cols]
    # complex data are refused up front from the collections' dtypes; checked
    # again here for chunks whose dtype differs from the one their collection
    # declares (a map_blocks or from_delayed with the wrong meta)
    _check_part_not_complex(xb, "X", index)
    if _is_sparse(xb):  # a sparse chunk (a Dask array of SciPy matrices) stays sparse
        X = _aligned_csr(xb.tocsr().astype(dtype, copy=False))
    else:
        try:
            X = (xb.to_numpy(dtype=dtype) if hasattr(xb, "to_numpy")
                 else _aligned(np.asarray(xb, dtype=dtype)))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"X partition {index} could not be converted to {np.dtype(dtype).name}: {exc}"
            ) from None
    y = _to_numpy_1d(yb)
    _check_part_not_complex(y, "y", index)
    if _is_soft(y):
        if y.dtype.kind not in "biuf":
            raise ValueError("Soft targets must be a numeric (n_samples, n_classes) array "
                             f"of class probabilities; partition {index} has dtype {y.dtype}.")
        raw = y
        y = _aligned(np.asarray(y, dtype=dtype))
        tol = soft_target_tol(dtype, raw.dtype)
        if tol > soft_target_tol(dtype):
            # rows stored in a coarser float (float32 for a float64 fit, float16) sum
            # to 1 only to its rounding: those within its tolerance are renormalised,
            # as the in-memory estimator accepts them; the others are left for
            # part_stats to report
            sums = raw.astype(np.float64).sum(axis=1)
            ok = np.abs(sums - 1.0) <= tol
            y[ok] /= sums[ok].astype(y.dtype)[:, None]
    elif y.ndim != 1:
        raise ValueError(f"y must be 1-D or (n_samples, n_classes); partition {index} has "
                         f"shape {y.shape}.")
    if y.dtype.kind == "O" and first_missing_label(y) is None:  # missing: reported first
        # object labels stay object, as in memory: strings give object classes_ (not
        # '<U5'); other objects (ints, floats, bytes) are refused on the client with
        # the in-memory error, from part_stats' "object_label"
        check_label_kinds(y, f" in partition {index}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have inconsistent numbers of samples in partition {index}: "
            f"{X.shape[0]} != {y.shape[0]}."
        )
    w = None
    if wb is not None:
        w = _to_numpy_1d(wb)
        _check_part_not_complex(w, "sample_weight", index)
        try:
            w = _aligned(np.asarray(w, dtype=dtype))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight partition {index} could not be converted to "
                             f"{np.dtype(dtype).name}: {exc}") from None
        if w.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight partition {index} has shape {w.shape}; expected ({X.shape[0]},)."
            )
    return X, y, w


def _part_nbytes(X):
    if _is_sparse(X):
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(X.nbytes)


def part_stats(part, index):
    """Statistics of one prepared partition (small; gathered to the client)."""
    X, y, w = part
    n = int(X.shape[0])
    bad_x = None
    if _is_sparse(X):
        bad = np.flatnonzero(~np.isfinite(X.data))
        if bad.size:
            row = int(np.searchsorted(X.indptr, bad[0], side="right") - 1)
            bad_x = (row, "NaN" if np.isnan(X.data[bad[0]]) else "infinity")
    else:
        finite = np.isfinite(X).all(axis=1) if X.size else np.ones(n, dtype=bool)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            bad_x = (row, "NaN" if np.isnan(X[row]).any() else "infinity")
    data = X.data if _is_sparse(X) else X
    amax = float(max(-np.min(data), np.max(data))) if bad_x is None and data.size else 0.0
    nbytes = _part_nbytes(X) + y.nbytes + (0 if w is None else w.nbytes)
    # a missing label (1-D labels: NaN, None, NA) is named as such; an infinite
    # label, or a non-finite class probability, is "NaN or infinity"
    missing_y = None if _is_soft(y) or not n else first_missing_label(y)
    bad_y = None
    if missing_y is None and y.dtype.kind == "f" and n and not np.isfinite(y).all():
        bad_y = int(np.flatnonzero(~np.isfinite(y).reshape(n, -1).all(axis=1))[0])
    bad_w = None
    wsum = float(n)
    if w is not None:
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            bad_w = (int(np.flatnonzero(bad)[0]), float(w[np.flatnonzero(bad)[0]]))
        wsum = float(np.sum(w, dtype=np.float64))
    common = {
        "index": index,
        "n": n,
        "n_features": int(X.shape[1]) if X.ndim == 2 else -1,
        "bad_x": bad_x,
        "amax": amax,
        "missing_y": missing_y,
        "bad_y": bad_y,
        "bad_w": bad_w,
        "wsum": wsum,
        "nbytes": nbytes,
    }
    if _is_soft(y):
        return {**common, **_soft_stats(y, w, n, bad_y)}
    if bad_y is None and missing_y is None and n and y.dtype.kind == "O" and not isinstance(
            y[0], str):
        # object labels, not strings (prepare_part refused a partition that mixes):
        # the in-memory estimator refuses them (scikit-learn's type_of_target), from
        # its first label; DaskDataTerm raises that error from this one
        labels, counts, totals = y[:0], np.zeros(0, dtype=np.intp), np.zeros(0)
        return {**common, "labels": labels, "counts": counts, "totals": totals,
                "object_label": y[0]}
    if bad_y is None and missing_y is None and n:
        labels, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        totals = (counts.astype(np.float64) if w is None
                  else np.bincount(inverse.ravel(), weights=w, minlength=labels.size))
    else:
        labels, counts, totals = y[:0], np.zeros(0, dtype=np.intp), np.zeros(0)
    return {**common, "labels": labels, "counts": counts, "totals": totals}


def _soft_stats(Y, w, n, bad_y):
    """``part_stats``' entries for soft targets: the first row that is not a distribution
    (negative, or summing to more than 1e-6 (float64) / 1e-4 (float32) away from
    1, as the in-memory estimator checks; rows stored in a coarser float within
    its ``soft_target_tol`` were renormalised by ``prepare_part``), the column
    sums ``counts`` and the (K, K) matrix ``second = Y^T diag(w) Y`` (class
    weights act as ``Y_i . cw`` per sample, so the weighted class totals are
    ``cw @ second``)."""
    K = Y.shape[1]
    bad_soft = None
    if bad_y is None and n:
        Y64 = Y.astype(np.float64)
        sums = Y64.sum(axis=1)
        tol = soft_target_tol(Y.dtype)
        neg = np.flatnonzero((Y64 < 0).any(axis=1))
        off = np.flatnonzero(np.abs(sums - 1.0) > tol)
        if neg.size and (not off.size or neg[0] <= off[0]):
            bad_soft = (int(neg[0]), "has a negative entry")
        elif off.size:
            bad_soft = (int(off[0]), f"sums to {float(sums[off[0]])!r}, not 1")
    if bad_y is None and bad_soft is None and n:
        Yn = Y64 / sums[:, None]
        Yw = Yn if w is None else Yn * w.astype(np.float64)[:, None]
        counts, second = Yn.sum(axis=0), Yw.T @ Yn
    else:
        counts, second = np.zeros(K), np.zeros((K, K))
    return {"soft": K, "counts": counts, "second": second, "bad_soft": bad_soft}


def encode_part(part, classes, class_weight=None):
    """Replace the raw labels of a prepared partition by indices into
    ``classes``; multiply the sample weights by ``class_weight[y]`` if given.
    Soft targets are rescaled to sum to 1 (as in memory) and weighted by
    ``Y_i . class_weight``."""
    X, y, w = _part(part)
    if _is_soft(y):
        Y = np.ascontiguousarray(y / y.astype(np.float64).sum(axis=1).astype(y.dtype)[:, None])
        per = (None if class_weight is None
               else (Y.astype(np.float64) @ class_weight).astype(X.dtype))
    else:
        Y = np.searchsorted(classes, y).astype(np.intp, copy=False)
        per = None if class_weight is None else class_weight.astype(X.dtype)[Y]
    if per is not None:
        w = per if w is None else w * per
    return X, Y, w


def prepare_encoded(xb, yb, wb, dtype, index, x_cols, y_col, w_col, classes,
                    class_weight=None):
    """``prepare_part`` followed by ``encode_part`` (the streaming path)."""
    part = prepare_part(xb, yb, wb, dtype, index, x_cols, y_col, w_col)
    return encode_part(part, classes, class_weight)


def chunk_loss_gradient(part, coef, loss):
    """Data loss and gradient of one chunk: ``loss.loss_gradient`` on its rows, in
    float64 also for a float32 chunk (cast by row blocks, as in memory: float32
    gradients stall above the stopping rule at weak penalties)."""
    X, Y, w = _part(part)
    if X.dtype == np.float32:
        value, grad, _ = loss._loss_grad_state_cast(np.asarray(coef, dtype=np.float64),
                                                    X, Y, w)
    else:
        value, grad = loss.loss_gradient(coef, X, Y, w)
    return float(value), np.asarray(grad)


def chunk_loss(part, coef, loss):
    """Data loss of one chunk (float64, as ``chunk_loss_gradient``'s)."""
    X, Y, w = _part(part)
    if X.dtype == np.float32:
        return chunk_loss_gradient(part, coef, loss)[0]
    return float(loss.loss(coef, X, Y, w))


def chunk_state(part, coef, loss, exact=False):
    """The probabilities of one chunk at ``coef`` (LinearSoftmaxLoss's
    curvature state), kept on the worker for Hessian products; float64 for a
    float32 chunk when ``exact`` (see :func:`state_hessp`)."""
    X, Y, w = _part(part)
    if exact and X.dtype == np.float32:
        return loss._loss_grad_state_cast(np.asarray(coef, dtype=np.float64), X, Y, w,
                                          state_dtype=np.float64)[2]
    return loss._state_at(coef, X, Y, w)


def state_hessp(state, part, v, loss, exact=False):
    """Hessian of one chunk (at the state's ``coef``) times ``v``; in float64 on
    row blocks cast from a float32 chunk when ``exact`` (small unpenalised fits,
    whose nearly flat directions float32 products blur)."""
    X = _part(part)[0]
    if exact and X.dtype == np.float32 and isinstance(state, _ProbState):
        return np.asarray(loss._hvp_cast(state, X, v))
    return np.asarray(loss._hvp(state, X, v))


def state_hess_diag(state, part, loss):
    """Diagonal of one chunk's Hessian (at the state's ``coef``)."""
    X = _part(part)[0]
    X_sq = X.multiply(X).tocsr() if _is_sparse(X) else np.square(X)
    return np.asarray(loss._hess_diag(state, X_sq, X))


def state_hessian(state, part, loss):
    """Explicit Hessian of one chunk (at the state's ``coef``)."""
    return np.asarray(loss._hessian(state, _part(part)[0]))


def chunk_kron_A(part, full, intercept):
    """One chunk's ``sum_i s_i x~_i x~_i^T`` (x~: x with the intercept's 1): the
    (m, m) matrix when ``full``, else its diagonal (m,), float64 (the feature
    factor of the Kronecker preconditioner)."""
    X, _, w = _part(part)
    n = X.shape[0]
    sw = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    if not full:
        Xsq = X.multiply(X) if _is_sparse(X) else np.square(X)
        out = np.asarray(Xsq.T @ sw, dtype=np.float64).ravel()
        return np.append(out, sw.sum()) if intercept else out
    Xf = np.asarray(X, dtype=np.float64)
    Xw = Xf * sw[:, None]
    out = Xf.T @ Xw
    if intercept:
        col = Xw.sum(axis=0)
        out = np.block([[out, col[:, None]], [col[None, :], np.array([[sw.sum()]])]])
    return out


def state_class_hessian(state, part, loss):
    """One chunk's ``sum_i s_i (diag(p_i) - p_i p_i^T)`` (K, K) at the state's
    ``coef`` (the class factor of the Kronecker preconditioner)."""
    return np.asarray(loss._class_hessian(state, _part(part)[0]))


def state_class_blocks(state, part, loss, fraction):
    """One chunk's per-class Hessian blocks (K, m, m) at the state's ``coef``,
    estimated on ``ceil(fraction * n)`` of its n rows drawn by weight
    (``LinearSoftmaxLoss._class_blocks``; exact with every row at ``fraction``
    1): the chunks' sum is a stratified estimate of the whole data's blocks."""
    X, _, w = _part(part)
    n = X.shape[0]
    rows = max(1, int(np.ceil(fraction * n)))
    if hasattr(state, "probs"):
        return loss._class_blocks(state.probs(), X, w, rows, np.float64)
    # a chunk too large to keep its probabilities (blocked state): as in memory, a
    # fixed uniform subset of its rows, exact on them, rescaled to the chunk's weight
    idx = np.sort(np.random.default_rng(0).choice(n, rows, replace=False)) if rows < n \
        else np.arange(n)
    Xs = X[idx]
    W, b = state._W, state._b
    Z = np.asarray(Xs @ W.T, dtype=np.float64)
    if b is not None:
        Z += b
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    ws = None if w is None else w[idx]
    total = float(n if w is None else np.sum(w, dtype=np.float64))
    part_total = float(rows if ws is None else np.sum(ws, dtype=np.float64))
    scale = total / part_total if part_total > 0 else 0.0
    return loss._class_blocks(P, Xs, ws, Xs.shape[0], np.float64) * scale


def chunk_class_hessian(part, coef, loss):
    """``state_class_hessian`` recomputing the probabilities (streaming)."""
    return state_class_hessian(chunk_state(part, coef, loss), part, loss)


def chunk_class_blocks(part, coef, loss, fraction):
    """``state_class_blocks`` recomputing the probabilities (streaming)."""
    return state_class_blocks(chunk_state(part, coef, loss), part, loss, fraction)


def chunk_hessp(part, coef, v, loss, exact=False):
    """Hessian of one chunk at ``coef`` times ``v``, recomputing the
    probabilities (the streaming path)."""
    return state_hessp(chunk_state(part, coef, loss, exact), part, v, loss, exact)


def chunk_hess_diag(part, coef, loss):
    """Hessian diagonal of one chunk at ``coef`` (the streaming path)."""
    return state_hess_diag(chunk_state(part, coef, loss), part, loss)


def chunk_hessian(part, coef, loss):
    """Explicit Hessian of one chunk at ``coef`` (the streaming path)."""
    return state_hessian(chunk_state(part, coef, loss), part, loss)


def add(a, b):
    """``a + b`` (one node of the fixed reduction tree)."""
    return a + b


def apply_method(block, model, method, tail=(), dtype=None):
    """``getattr(model, method)(block)`` on one NumPy/pandas/SciPy block (lazy
    predictions), under the worker BLAS limit.  An empty block (an empty chunk,
    a partition emptied by a filter) gives an empty result of shape
    ``(0, *tail)`` and ``dtype``: the in-memory methods refuse 0 samples."""
    if block.shape[0] == 0:
        return np.empty((0, *tail), dtype=dtype)
    from ._runtime import blas_limit

    with blas_limit():
        return getattr(model, method)(block)
