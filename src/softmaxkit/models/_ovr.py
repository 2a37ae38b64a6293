"""Multi-label classification: one binary logistic regression per label."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .._validation import check_choice_param, check_scalar_param, nullable_to_numpy, param_error
from .._validation import plain as _plain
from ..special import log_sigmoid, sigmoid
from ._softmax_regression import _SOLVERS, SoftmaxRegression

__all__ = ["OneVsRestLogistic"]

_OWNER = "OneVsRestLogistic"


def _check_indicator(Y, n, sample_weight=None):
    """Return ``(Y as an (n, L) float64 0/1 array, label names or None)``."""
    if Y is None:
        raise ValueError(
            f"{_OWNER} requires y to be passed, but the target y is None: pass the "
            "(n_samples, n_labels) 0/1 indicator matrix."
        )
    names = None
    cols = getattr(Y, "columns", None)
    if cols is not None:
        names = np.asarray(cols)
    Y = nullable_to_numpy(Y, "y", _OWNER)
    if sparse.issparse(Y):
        Y = Y.toarray()
    try:
        Y = np.asarray(Y)
    except ValueError:  # ragged rows: label sets such as [(0, 1), (1,)]
        raise ValueError(
            f"Unknown label type: y of {_OWNER} must be a 0/1 indicator matrix; got rows of "
            "different lengths (label sets?). Encode label sets with "
            "sklearn.preprocessing.MultiLabelBinarizer first.") from None
    if Y.dtype.kind not in "biuf":
        raise ValueError(
            f"Unknown label type: y of {_OWNER} must be a 0/1 indicator matrix; got dtype "
            f"{Y.dtype}. Encode label sets with sklearn.preprocessing.MultiLabelBinarizer first."
        )
    if Y.dtype.kind == "f" and not np.all(np.isfinite(Y)):
        what = "NaN" if np.isnan(Y).any() else "infinity"
        raise ValueError(f"Input y contains {what}: y of {_OWNER} must be a 0/1 matrix.")
    bad = (Y != 0) & (Y != 1)
    if bad.any():
        pos = tuple(int(v[0]) for v in np.nonzero(bad))
        i, j = pos if len(pos) == 2 else (pos[0], 0)
        v = Y[pos].item()
        if Y.dtype.kind == "f" and np.any(Y != np.round(Y)):
            kind = "continuous values"
        elif Y.ndim == 2 and np.unique(Y[:, j]).size <= 2:
            kind = ("two classes, coded otherwise: recode them as 0/1, e.g. with "
                    "(y == positive_value).astype(int)")
        else:
            kind = "more than two classes"
        raise ValueError(
            f"y of {_OWNER} must hold only 0 and 1 (label absent / present); got {v!r} at "
            f"row {i}, column {j} ({kind}). Only binary classification is supported per label."
        )
    if Y.ndim != 2:
        raise ValueError(
            f"y of {_OWNER} must be a 2-D (n_samples, n_labels) 0/1 indicator matrix; got shape "
            f"{Y.shape}. For a single label pass y.reshape(-1, 1); for mutually exclusive "
            "classes use SoftmaxRegression."
        )
    if Y.shape[0] != n:
        raise ValueError(f"y of {_OWNER} has {Y.shape[0]} rows but X has {n}; they must match.")
    if Y.shape[1] < 1:
        raise ValueError(f"y of {_OWNER} must have at least one label column; got 0.")
    Y = Y.astype(np.float64)
    w = np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)
    # the (weighted) positives and negatives of each label; not w.sum() - pos, which
    # rounding leaves at ~4e-16 when every negative has weight 0
    pos = w @ Y
    neg = w @ (1.0 - Y)
    for j in range(Y.shape[1]):
        if pos[j] <= 0 or neg[j] <= 0:
            which = "0s" if pos[j] <= 0 else "1s"
            label = _plain(names[j]) if names is not None else j
            weighted = ("" if sample_weight is None
                        else " among the samples of positive weight")
            raise ValueError(
                f"Label column {j} ({label!r}) of y holds only {which}{weighted} (one class); "
                "each label needs both positive and negative samples to fit a logistic "
                "regression."
            )
    return Y, names


class OneVsRestLogistic(ClassifierMixin, BaseEstimator):
    """Multi-label logistic regression: an independent logistic model per label.

    Softmax regression assumes the classes exclude each other. When a sample can
    carry several labels at once (a song that is both "vocal" and "soundtrack"),
    the right model is one logistic regression per label,
    ``P(label l | x) = sigmoid(w_l . x + b_l)``, fitted independently.

    Parameters
    ----------
    C : float in (0, inf], default=1.0
        Inverse regularisation strength of each binary fit (scikit-learn's
        ``LogisticRegression(C)`` convention); ``inf`` means no penalty.
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
        The penalty on each label's weights (never on the intercept).
    l1_ratio : float in [0, 1] or None, default=None
        The elastic-net mixing ``r``; required for ``penalty="elasticnet"``, ignored
        otherwise.
    fit_intercept : bool, default=True
        Whether each label gets an intercept.
    solver : {"auto", "newton-cg", "newton-cholesky", "lbfgs", "prox-newton"}, default="auto"
        Passed to the two-class :class:`SoftmaxRegression` of each label.
    tol : float >= 0, default=1e-6
        Gradient tolerance of each binary fit (see :class:`SoftmaxRegression`).
    max_iter : int >= 0, default=1000
        Maximum solver iterations per label.

    Attributes
    ----------
    coef_ : ndarray of shape (n_labels, n_features)
        ``w_l`` of each label.
    intercept_ : ndarray of shape (n_labels,)
        ``b_l`` (zeros when ``fit_intercept=False``).
    classes_ : ndarray of shape (n_labels,)
        Label names: the columns of a DataFrame ``Y``, else ``0..L-1``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    n_iter_ : ndarray of shape (n_labels,), dtype int
        Solver iterations of each label's fit.

    Notes
    -----
    Label ``l`` minimises scikit-learn's binary objective

    .. math::

        C \\sum_i s_i\\, \\ell(y_{il}, w_l \\cdot x_i + b_l) + R(w_l),

    with :math:`\\ell` the logistic loss and :math:`R = \\|w\\|^2/2` (l2),
    :math:`\\|w\\|_1` (l1) or :math:`r \\|w\\|_1 + (1 - r) \\|w\\|^2 / 2`
    (elasticnet). No new loss is written for it: the binomial model is the
    two-class softmax, so each label is fitted as a two-class
    :class:`SoftmaxRegression` and :math:`w_l = W_1 - W_0`, :math:`b_l = b_1 -
    b_0`. The two-class softmax penalises both rows; among the rows with a given
    difference ``w`` the opposite ones ``(-w/2, w/2)`` minimise both
    :math:`\\|W\\|^2 = \\|w\\|^2 / 2` and :math:`\\|W\\|_1 = \\|w\\|_1`, so the
    two-class fit with ``(C2, r2)`` minimises ``C2 sum l + r2 |w|_1 + (1 - r2)
    |w|^2 / 4``: with ``C2 = C / (2 - r)`` and ``r2 = r / (2 - r)`` it is the
    binary objective divided by ``2 - r`` (l2: ``C / 2``; l1: ``C`` unchanged).
    Prediction uses ``coef_`` and ``intercept_`` only.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import OneVsRestLogistic
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    >>> clf = OneVsRestLogistic(C=10.0).fit(X, Y)
    >>> clf.coef_.shape, clf.predict_proba(X[:2]).shape
    ((2, 3), (2, 2))
    >>> clf.predict(X[:3])
    array([[1, 1],
           [1, 0],
           [1, 1]])
    """

    def __init__(self, *, C=1.0, penalty="l2", l1_ratio=None, fit_intercept=True,
                 solver="auto", tol=1e-6, max_iter=1000):
        self.C = C
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def _check_params(self):
        # _plain: messages show 0.5, not NumPy 2's np.float64(0.5)
        C = check_scalar_param(_plain(self.C), "C", _OWNER, kind=float, low=0.0, low_open=True)
        check_choice_param(_plain(self.penalty), "penalty", _OWNER,
                           ("l2", "l1", "elasticnet", None))
        if self.penalty == "elasticnet":
            check_scalar_param(_plain(self.l1_ratio), "l1_ratio", _OWNER, kind=float, low=0,
                               high=1)
        elif self.l1_ratio is not None:
            check_scalar_param(_plain(self.l1_ratio), "l1_ratio", _OWNER, kind=float, low=0,
                               high=1, allow_none=True)
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise param_error("fit_intercept", _OWNER, "a bool", _plain(self.fit_intercept),
                              exc=TypeError)
        check_choice_param(_plain(self.solver), "solver", _OWNER, _SOLVERS)
        check_scalar_param(_plain(self.tol), "tol", _OWNER, kind=float, low=0.0)
        check_scalar_param(_plain(self.max_iter), "max_iter", _OWNER, kind=int, low=0)
        if (self.penalty in ("l1", "elasticnet") and not np.isinf(C)
                and self.solver not in ("auto", "prox-newton")):
            raise param_error("solver", _OWNER,
                              f"'auto' or 'prox-newton' for penalty={_plain(self.penalty)!r}",
                              _plain(self.solver))
        return C

    def _binary_model(self, C):
        # the two-class softmax fit equal to the binary fit (see Notes)
        r = {"l2": 0.0, "l1": 1.0}.get(self.penalty, self.l1_ratio)
        if self.penalty is None or np.isinf(C):
            penalty, C2, r2 = None, 1.0, None
        else:
            r = float(r)
            penalty, C2, r2 = self.penalty, C / (2.0 - r), r / (2.0 - r)
        return SoftmaxRegression(penalty=penalty, C=C2,
                                 l1_ratio=r2 if penalty == "elasticnet" else None,
                                 fit_intercept=bool(self.fit_intercept), solver=self.solver,
                                 tol=self.tol, max_iter=self.max_iter)

    def fit(self, X, y, sample_weight=None):
        """Fit one logistic regression per label column.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training features.
        y : array-like or sparse matrix of shape (n_samples, n_labels)
            The label indicator matrix ``Y``: ``Y[i, l] = 1`` when sample ``i``
            carries label ``l``, else 0. Every column needs both values. A pandas
            DataFrame of nullable dtypes (``Int64``, ``boolean``, ...) is accepted
            when it holds no missing values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights, shared by all labels.

        Returns
        -------
        self : OneVsRestLogistic
        """
        C = self._check_params()
        X = validate_data(self, X, reset=True, accept_sparse=["csr", "csc"],
                          dtype=[np.float64, np.float32], ensure_min_samples=2)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        Y, names = _check_indicator(y, X.shape[0], sample_weight)
        L = Y.shape[1]
        coef = np.empty((L, X.shape[1]), dtype=X.dtype)
        intercept = np.zeros(L, dtype=X.dtype)
        n_iter = np.zeros(L, dtype=np.int64)
        for j in range(L):
            est = self._binary_model(C).fit(X, Y[:, j].astype(np.intp), sample_weight)
            coef[j] = est.coef_[1] - est.coef_[0]
            intercept[j] = est.intercept_[1] - est.intercept_[0]
            n_iter[j] = est.n_iter_
        self.coef_ = coef
        self.intercept_ = intercept
        self.classes_ = names if names is not None else np.arange(L)
        self.n_iter_ = n_iter
        return self

    def decision_function(self, X):
        """Per-label log-odds ``X W^T + b``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
        """
        check_is_fitted(self, ["coef_", "intercept_"])
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=[np.float64, np.float32])
        Z = np.asarray(X @ np.asarray(self.coef_).T.astype(X.dtype, copy=False))
        return Z + np.asarray(self.intercept_, dtype=Z.dtype)

    def predict_proba(self, X):
        """Independent per-label probabilities ``sigmoid(X W^T + b)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
            Rows do not sum to 1: the labels are not exclusive.
        """
        return sigmoid(self.decision_function(X))

    def predict_log_proba(self, X):
        """Per-label ``log sigmoid(X W^T + b)``, computed without underflow.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
        """
        return log_sigmoid(self.decision_function(X))

    def predict(self, X, threshold=0.5):
        """0/1 indicator of the labels whose probability exceeds ``threshold``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        threshold : float in [0, 1], default=0.5
            A label is predicted when ``P(label | x) > threshold``.

        Returns
        -------
        ndarray of shape (n_samples, n_labels), dtype int
        """
        t = check_scalar_param(_plain(threshold), "threshold", f"{_OWNER}.predict", kind=float,
                               low=0.0, high=1.0)
        return (self.predict_proba(X) > t).astype(int)
