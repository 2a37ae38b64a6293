"""Lazy predictions of a fitted estimator on Dask collections."""

from __future__ import annotations

import numpy as np

from ._chunks import _is_frame, apply_method, check_not_complex

__all__ = ["predict_lazy"]

_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def _probe(model, X, method):
    """Run ``method`` eagerly on one row shaped like X's blocks: validates
    fittedness, feature count and names up front (the in-memory messages),
    and tells the output's trailing shape and dtype."""
    if _is_frame(X):
        block = X._meta_nonempty.iloc[:1]
    else:
        block = np.zeros((1, X.shape[1]), dtype=X.dtype if X.dtype.kind == "f" else np.float64)
    out = np.asarray(getattr(model, method)(block))
    return out.shape[1:], out.dtype


def predict_lazy(model, X, method="predict"):
    """``model.<method>(X)`` for a Dask collection, as a lazy Dask array.

    Each row block (a partition of a Dask DataFrame, a row chunk of a Dask
    array) is handed to the in-memory method of the fitted model, so the
    result equals the in-memory prediction block by block; an empty block (an
    empty chunk, a partition emptied by a filter) gives an empty result block.
    Errors about the model or the columns (not fitted, wrong feature count or
    names, complex dtype) are raised now; errors about the values (NaN in a
    block) when the result is computed.

    Parameters
    ----------
    model : fitted estimator
        Any estimator with the in-memory ``method`` (SoftmaxRegression).
    X : dask.array.Array of shape (n_samples, n_features) or dask DataFrame
        Rows to predict; a Dask array's column chunks are merged first.
    method : {"predict", "predict_proba", "predict_log_proba", "decision_function"}
        The estimator method to apply per block.

    Returns
    -------
    dask.array.Array of shape (n_samples,) or (n_samples, n_classes)
        Lazy result (row chunks of unknown length for a DataFrame).

    Notes
    -----
    For a block :math:`X_j` the result block is ``model.<method>(X_j)``; the
    concatenation over blocks is the in-memory result on the whole X, since
    every method is row-wise.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn.linear_model import LogisticRegression
    >>> from softmaxkit.distributed import predict_lazy
    >>> rng = np.random.default_rng(0)
    >>> Xn = rng.normal(size=(40, 2)); yn = (Xn[:, 0] > 0).astype(int)
    >>> clf = LogisticRegression().fit(Xn, yn)
    >>> P = predict_lazy(clf, da.from_array(Xn, chunks=15), "predict_proba")
    >>> P.chunks
    ((15, 15, 10), (2,))
    >>> bool(np.array_equal(P.compute(), clf.predict_proba(Xn)))
    True
    """
    if method not in _METHODS:
        from .._validation import param_error

        raise param_error("method", "predict_lazy", f"one of {list(_METHODS)}", method)
    import dask.array as da

    check_not_complex(X, "X")  # from the dtype, nothing computed
    if _is_frame(X):
        if X.ndim != 2:
            raise TypeError("X must be 2-D: a Dask DataFrame or a 2-D Dask array.")
        tail, dtype = _probe(model, X, method)
        meta = np.empty((0, *tail), dtype=dtype)
        return X.map_partitions(apply_method, model, method, tail, dtype, meta=meta)
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a Dask array or a Dask DataFrame; got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array; got a Dask array with shape {X.shape}.")
    if np.isnan(X.shape[1]):
        X = X.compute_chunk_sizes()
    X = X.rechunk({1: -1})
    tail, dtype = _probe(model, X, method)
    meta = np.empty((0, *tail), dtype=dtype)
    if tail:
        return X.map_blocks(
            apply_method, model, method, tail, dtype, dtype=dtype,
            chunks=(X.chunks[0], *[(t,) for t in tail]), meta=meta,
            token=f"softmaxkit-{method}",
        )
    return X.map_blocks(
        apply_method, model, method, tail, dtype, dtype=dtype, chunks=(X.chunks[0],),
        drop_axis=1, meta=meta, token=f"softmaxkit-{method}",
    )
