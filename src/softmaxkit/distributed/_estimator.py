"""SoftmaxRegression.fit on Dask collections."""

from __future__ import annotations

import numpy as np

from ._term import DaskDataTerm

__all__ = ["fit_dask", "partial_fit_dask"]


def fit_dask(model, X, y, sample_weight=None, *, persist=None):
    """Fit a :class:`~softmaxkit.SoftmaxRegression` on Dask collections.

    What ``model.fit(X, y, sample_weight)`` runs when X is a Dask collection:
    the data term becomes a :class:`DaskDataTerm` (per-partition loss,
    gradient and Hessian products on the workers) and the estimator's own
    penalised objective and solvers run unchanged on the client.  Worker
    memory is released when the fit ends, also on error.

    Parameters
    ----------
    model : SoftmaxRegression
        The estimator to fit (its parameters are used as they are).
    X : dask.array.Array of shape (n_samples, n_features) or dask DataFrame
        Features; the chunks of a Dask array may be SciPy sparse matrices.
        Complex data are refused (ValueError), as in memory.
    y : dask.array.Array, dask Series or ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels, or class probabilities (soft targets, rows summing to 1,
        as :meth:`SoftmaxRegression.fit` takes them).  Paired with X's rows
        by position, never by index (see Notes).  A missing label (NaN, None,
        NA) is a ValueError naming its row.
    sample_weight : dask.array.Array, dask Series, ndarray of shape (n_samples,) or None
        Non-negative sample weights, paired with X's rows by position.
    persist : {"auto", True, False} or None, default=None
        Keep the partitions in worker memory (True), re-read them for every
        evaluation (False), or decide from their size ("auto"); None reads the
        Dask config key ``softmaxkit.persist``.  See :class:`DaskDataTerm`.

    Returns
    -------
    model : SoftmaxRegression
        Fitted: ``coef_``, ``intercept_``, ``classes_``, ``n_features_in_``,
        ``feature_names_in_`` (DataFrames with string columns), ``n_iter_``,
        ``loss_curve_``, as an in-memory fit sets them.

    Notes
    -----
    The objective is the in-memory one, ``C * sum_i s_i CE(W x_i + b, y_i) + R(W)``;
    only the sum over samples is split over partitions and added on the
    client in partition order, so the fit is deterministic and agrees with
    the in-memory fit to the solver tolerance.

    Rows are paired by position, always: row i of ``y`` (and of
    ``sample_weight``) goes with row i of ``X``, whatever the index of a Dask
    DataFrame or Series says, as in memory (``fit(X_frame, y_series)``
    ignores the index too) and in dask-ml.  Partitions of ``y`` need not match
    X's: ``y`` is re-chunked to X's partition lengths, computed when Dask does
    not know them.  A ``y`` with a different number of rows is a ValueError.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from softmaxkit import SoftmaxRegression
    >>> from softmaxkit.distributed import fit_dask
    >>> rng = np.random.default_rng(0)
    >>> Xn = rng.normal(size=(90, 2)); yn = np.argmax(Xn @ [[2, 0, -2], [0, 2, -1]], axis=1)
    >>> X, y = da.from_array(Xn, chunks=40), da.from_array(yn, chunks=40)
    >>> clf = fit_dask(SoftmaxRegression(tol=1e-10), X, y)
    >>> ref = SoftmaxRegression(tol=1e-10).fit(Xn, yn)
    >>> bool(np.allclose(clf.coef_, ref.coef_, rtol=1e-6, atol=1e-9))
    True
    """
    model._check_params()
    names = _feature_names(X)  # before anything is computed
    term = DaskDataTerm(
        X,
        y,
        sample_weight,
        fit_intercept=model.fit_intercept,
        class_weight=model.class_weight,
        persist=persist,
    )
    try:
        _set_data_attributes(model, term, names)
        model._partial = None
        model._fit_term(term)
    finally:
        term.close()
    return model


def _feature_names(X):
    """The column names of a Dask DataFrame ``X`` when they are all strings (an
    object array), else None; scikit-learn's TypeError when they mix strings and
    other names, as the in-memory estimator raises (from the metadata: nothing is
    computed)."""
    meta = getattr(X, "_meta", None)
    if not hasattr(meta, "columns"):
        return None
    from sklearn.utils.validation import _get_feature_names

    return _get_feature_names(meta)


def _set_data_attributes(model, term, names):
    model.classes_ = term.classes
    model.n_features_in_ = term.n_features
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    elif hasattr(model, "feature_names_in_"):
        del model.feature_names_in_


def partial_fit_dask(model, X, y, classes=None, sample_weight=None):
    """One pass of :meth:`SoftmaxRegression.partial_fit` over Dask collections.

    What ``model.partial_fit(X, y, classes, sample_weight)`` runs when X is a
    Dask collection: a statistics pass over the partitions (validation, class
    counts and the total weight ``S``, on the workers), then minibatch Adam over
    the partitions in order, each computed into the client's memory on its own
    (one partition at a time, so the collection may be larger than the client's
    memory) and shuffled into minibatches of 64 rows with ``random_state``.

    Parameters
    ----------
    model : SoftmaxRegression
    X : dask.array.Array of shape (n_samples, n_features) or dask DataFrame
        Features (chunks may be SciPy sparse matrices; complex data refused).
    y : dask.array.Array, dask Series or DataFrame, or ndarray
        Labels of shape (n_samples,) or class probabilities (n_samples, n_classes),
        paired with X's rows by position, never by index (as in :func:`fit_dask`).
    classes : array-like of shape (n_classes,), default=None
        All class labels; required on the first call with label targets.
    sample_weight : dask.array.Array, dask Series, ndarray of shape (n_samples,) or None

    Returns
    -------
    model : SoftmaxRegression

    Notes
    -----
    As in memory, the penalty is weighted as if the collection were the whole
    training set (``1 / (C * S)``), so repeated calls approach ``fit`` on it; the
    rows are shuffled within each partition (not across partitions).  With a
    single partition the pass equals the in-memory one exactly.
    ``class_weight="balanced"`` uses the class totals (counted with the sample
    weights) of the whole collection; a class of total 0 is a ValueError.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from softmaxkit import SoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> Xn = rng.normal(size=(300, 2)); yn = (Xn[:, 0] > 0).astype(int)
    >>> X, y = da.from_array(Xn, chunks=100), da.from_array(yn, chunks=100)
    >>> clf = SoftmaxRegression(random_state=0)
    >>> for _ in range(3):
    ...     _ = clf.partial_fit(X, y, classes=[0, 1])
    >>> clf.n_iter_, clf.loss_curve_.shape
    (3, (3,))
    """
    import dask

    from ..models._softmax_regression import _PenalizedObjective

    model._check_params()
    names = _feature_names(X)  # before anything is computed
    fitted, first = model._partial_check_classes(y, classes)
    known = None if (first and not fitted) else model.classes_
    term = DaskDataTerm(
        X,
        y,
        sample_weight,
        fit_intercept=model.fit_intercept,
        classes=classes if known is None else known,
        class_weight=model.class_weight,
        persist=False,
    )
    try:
        if known is None:
            _set_data_attributes(model, term, names)
        else:
            if term.n_features != model.n_features_in_:
                raise ValueError(
                    f"X has {term.n_features} features, but SoftmaxRegression is expecting "
                    f"{model.n_features_in_} features as input."
                )
            if term.n_classes != len(known):
                raise ValueError(f"y has {term.n_classes} columns but the model has "
                                 f"{len(known)} classes.")
        obj = _PenalizedObjective(term, model.penalty, float(model.C), model.l1_ratio)
        model._partial_start(term, obj, first, fitted)
        # each partition computed (on the workers) and brought here on its own
        parts = (dask.compute(p)[0] for p in term._stream)
        model._partial_pass(obj, parts)
    finally:
        term.close()
    return model
