"""SoftmaxRegression.fit on Dask collections."""

from __future__ import annotations

import numpy as np

from ._term import DaskDataTerm

__all__ = ["fit_dask"]


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
    y : dask.array.Array, dask Series or ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class labels, or class probabilities (soft targets, rows summing to 1,
        as :meth:`SoftmaxRegression.fit` takes them).
    sample_weight : dask.array.Array, dask Series, ndarray of shape (n_samples,) or None
        Non-negative sample weights.
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
    term = DaskDataTerm(
        X,
        y,
        sample_weight,
        fit_intercept=model.fit_intercept,
        class_weight=model.class_weight,
        persist=persist,
    )
    try:
        model.classes_ = term.classes
        model.n_features_in_ = term.n_features
        names = term.feature_names
        if names is not None and all(isinstance(c, str) for c in X.columns):
            model.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(model, "feature_names_in_"):
            del model.feature_names_in_
        model._partial = None
        model._fit_term(term)
    finally:
        term.close()
    return model
