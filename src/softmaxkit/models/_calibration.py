"""Temperature scaling: one scalar T > 0 that calibrates softmax(logits / T)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import as_float_array, nullable_to_numpy, param_error
from ..losses import cross_entropy
from ..metrics._checks import check_labels
from ..special import log_softmax, softmax
from ._inference import _labels_to_index
from ._ovr import OneVsRestLogistic

__all__ = ["TemperatureScaler"]

_OWNER = "TemperatureScaler"


def _check_bounds(bounds):
    expected = "a pair (low, high) of floats with 0 < low < high < inf"
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise param_error("bounds", _OWNER, expected, bounds) from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise param_error("bounds", _OWNER, expected, bounds, exc=TypeError)
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise param_error("bounds", _OWNER, expected, bounds)
    return lo, hi


def _as_logits(logits, name="logits", n_classes=None):
    """Validate logits; 1-D (binary log-odds x) becomes the two columns (0, x)."""
    if sparse.issparse(logits):
        raise TypeError(
            f"{name} of {_OWNER} must be a dense array; got a scipy.sparse "
            f"{type(logits).__name__}. Convert it with .toarray()."
        )
    logits = nullable_to_numpy(logits, name, _OWNER)
    z, _ = as_float_array(logits, f"{name} of {_OWNER}")
    if z.ndim == 1:
        z = np.stack([np.zeros_like(z), z], axis=1)
    if z.ndim != 2:
        raise ValueError(
            f"{name} of {_OWNER} must be a 2-D array of shape (n_samples, n_classes) (or 1-D "
            f"binary log-odds); got shape {z.shape}."
        )
    if z.shape[1] < 2:
        raise ValueError(f"{name} of {_OWNER} must have at least 2 columns; got {z.shape[1]}.")
    if n_classes is not None and z.shape[1] != n_classes:
        raise ValueError(
            f"{name} of {_OWNER} has {z.shape[1]} columns but the scaler was fitted on "
            f"{n_classes} classes."
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} of {_OWNER} must be finite; it contains NaN or inf.")
    return z


def _nll_derivatives(gamma, zc, zy, w):
    """First and second derivative in gamma of sum_i w_i NLL_i(gamma).

    NLL_i(gamma) = logsumexp(gamma z_i) - gamma z_{i, y_i};
    d/dgamma = E_p[z_i] - z_{i, y_i};  d2/dgamma2 = Var_p(z_i) >= 0, with
    p = softmax(gamma z_i).  ``zc`` holds row-shifted logits (same derivatives).
    """
    p = softmax(gamma * zc)
    ez = np.sum(p * zc, axis=1)
    var = np.sum(p * (zc - ez[:, None]) ** 2, axis=1)
    return float(w @ (ez - zy)), float(w @ var)


# log of the largest inverse temperature (in units of the largest |logit|) searched:
# e^690 ~ 1e300.  Beyond it every softmax of logits scaled to [-2, 0] is one-hot in
# float64, so the NLL no longer changes; a larger gamma would overflow.
_LOG_GAMMA_MAX = 690.0


def _solve_temperature(z, y, w, lo, hi, max_iter=200):
    """Minimise the NLL over ``T`` in ``[lo, hi]`` exactly, for any ``0 < lo < hi < inf``.

    The logits are divided by their largest magnitude ``a`` (and shifted by the
    row maxima) so that every entry lies in ``[-2, 0]``, and the NLL, convex in
    ``gamma = a / T``, is minimised over ``gamma``: safeguarded Newton (rtsafe)
    on the monotone derivative g(gamma), every iterate keeping a bracket with
    ``g(low end) < 0 < g(high end)``; a Newton step that leaves the bracket is
    replaced by a bisection in log-space (the midpoint of ``log gamma``, which
    neither under- nor overflows, whatever the bounds and the logits' scale).
    Returns ``(T, n_iter, at_bound)``.
    """
    eps = np.finfo(np.float64).eps
    a = float(np.max(np.abs(z)))
    zc = z / a if a > 0 else z
    zc = zc - zc.max(axis=1, keepdims=True)       # exact zeros for constant rows
    if not np.any(zc):
        # every row constant: the NLL does not depend on T
        return float(np.clip(1.0, lo, hi)), 0, False
    zy = zc[np.arange(zc.shape[0]), y]
    log_a = math.log(a)
    # both ends capped: past e^690 every softmax here is one-hot (math.exp would
    # overflow past e^709 for bounds far below the logits' scale)
    u_lo = min(log_a - math.log(hi), _LOG_GAMMA_MAX)
    u_hi = min(log_a - math.log(lo), _LOG_GAMMA_MAX)
    g_lo, _ = _nll_derivatives(math.exp(u_lo), zc, zy, w)
    if g_lo >= 0:
        return hi, 1, True
    g_hi, _ = _nll_derivatives(math.exp(u_hi), zc, zy, w)
    if g_hi <= 0:
        return lo, 2, True

    def temperature(gamma):
        # a / gamma, within the bounds (a / 0 is the limit T = inf)
        return min(max(a / gamma, lo), hi) if gamma > 0 else hi

    gam_lo, gam_hi = math.exp(u_lo), math.exp(u_hi)
    t0 = float(np.clip(1.0, lo, hi))
    u = log_a - math.log(t0)
    if t0 in (lo, hi) or not u_lo < u < u_hi:
        u = 0.5 * (u_lo + u_hi)
    gamma = math.exp(u)
    for it in range(1, max_iter + 1):
        g, h = _nll_derivatives(gamma, zc, zy, w)
        if g == 0:
            return temperature(gamma), it, False
        if g < 0:
            u_lo, gam_lo = u, gamma
        else:
            u_hi, gam_hi = u, gamma
        newton = gamma - g / h if h > 0 else math.nan
        if math.isfinite(newton) and abs(newton - gamma) <= 8 * eps * gamma:
            return temperature(min(max(newton, gam_lo), gam_hi)), it, False
        if math.isfinite(newton) and gam_lo < newton < gam_hi:
            step = newton - gamma
            gamma, u = newton, math.log(newton)
        else:
            new_u = 0.5 * (u_lo + u_hi)
            new = math.exp(new_u)
            step = new - gamma
            gamma, u = new, new_u
        if (abs(step) <= 4 * eps * gamma
                or u_hi - u_lo <= 4 * eps * max(1.0, abs(u_lo), abs(u_hi))):
            return temperature(gamma), it, False
    return temperature(gamma), max_iter, False  # pragma: no cover - converges in a few steps


class TemperatureScaler(BaseEstimator):
    """Temperature scaling (Guo et al. 2017): calibrate ``softmax(logits / T)``.

    Parameters
    ----------
    bounds : tuple of two floats, default=(1e-2, 1e2)
        ``(low, high)`` with ``0 < low < high < inf``: the range searched for
        ``T``. An optimum outside it is clipped to the nearest bound (with a
        warning).

    Attributes
    ----------
    temperature_ : float
        The fitted temperature ``T``; ``T > 1`` softens over-confident logits.
    n_classes_ : int
        Number of classes (columns of the logits).
    n_iter_ : int
        Newton/bisection iterations used.
    nll_ : float
        Mean (sample-weighted) validation negative log-likelihood at ``T``.
    nll_uncalibrated_ : float
        The same at ``T = 1``; ``nll_ <= nll_uncalibrated_`` when 1 is within
        ``bounds``.
    estimator_ : estimator
        Only after :meth:`fit_estimator`: the calibrated model, whose
        ``decision_function`` gives the logits at predict time.

    Notes
    -----
    :meth:`fit` minimises the validation negative log-likelihood

    .. math::

        \\mathrm{NLL}(\\beta) = \\sum_i w_i \\left[\\log\\sum_k e^{\\beta z_{ik}}
            - \\beta z_{i y_i}\\right], \\qquad \\beta = 1/T,

    which is convex in :math:`\\beta` (a log-sum-exp of functions linear in
    :math:`\\beta`), with :math:`\\mathrm{NLL}'(\\beta) = \\sum_i w_i
    (\\mathrm{E}_{p_i}[z_i] - z_{iy_i})` and :math:`\\mathrm{NLL}''(\\beta) =
    \\sum_i w_i \\mathrm{Var}_{p_i}(z_i) \\ge 0`. The derivative is monotone, so
    safeguarded Newton on a bracket converges to the unique minimiser to
    machine precision in a handful of steps; no grid. The search runs on the
    logits divided by their largest magnitude, with bisections in log-space,
    so any bounds ``0 < low < high < inf`` and logits of any finite magnitude
    work (scaling the logits and the bounds by one factor scales ``T`` by it).
    Dividing every row by the same ``T`` never changes the arg-max, so
    accuracy is unchanged.
    scikit-learn's ``CalibratedClassifierCV(method="temperature")`` fits the
    same model, with ``beta_`` (its inverse temperature) equal to ``1 / T`` for
    three or more classes and to ``1 / (2 T)`` for two (it scales the binary
    decision function as the logits ``(-x/2, x/2)``); the calibrated
    probabilities are the same.

    Binary logits may be given as 1-D log-odds ``x``; they are used as the two
    columns ``(0, x)``, which have the same softmax.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import TemperatureScaler
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3))
    >>> p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (rng.random(2000)[:, None] > p.cumsum(1)).sum(1)   # y ~ softmax(z)
    >>> ts = TemperatureScaler().fit(3.0 * z, y)               # 3x over-confident
    >>> round(ts.temperature_, 1)
    3.0
    >>> ts.predict_proba(3.0 * z[:1]).round(3)
    array([[0.29 , 0.225, 0.485]])
    """

    def __init__(self, *, bounds=(1e-2, 1e2)):
        self.bounds = bounds

    def fit(self, logits, y, sample_weight=None):
        """Fit the temperature on validation logits.

        Parameters
        ----------
        logits : array-like of shape (n_samples, n_classes) or (n_samples,)
            Validation logits (un-normalised log-probabilities); 1-D means
            binary log-odds. Dense only; a pandas DataFrame of nullable dtypes
            (``Float64``, ``Int64``, ...) is accepted when it holds no missing
            values.
        y : array-like of shape (n_samples,)
            True class indices into the columns of ``logits``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : TemperatureScaler
        """
        self.__dict__.pop("estimator_", None)
        return self._fit(logits, y, sample_weight)

    def _fit(self, logits, y, sample_weight):
        lo, hi = _check_bounds(self.bounds)
        z = _as_logits(logits)
        n, K = z.shape
        y = check_labels(y, K, _OWNER, n_samples=n)
        if n == 0:
            raise ValueError(f"{_OWNER} needs at least one sample; got 0.")
        if sample_weight is None:
            w = np.full(n, 1.0 / n)
        else:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (n,):
                raise ValueError(
                    f"sample_weight of {_OWNER} must have shape ({n},); got {w.shape}."
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(
                    f"sample_weight of {_OWNER} must be finite, non-negative and not all zero."
                )
            w = w / w.sum()
        T, n_iter, at_bound = _solve_temperature(z.astype(np.float64), y, w, lo, hi)
        if at_bound:
            warnings.warn(
                f"The optimal temperature lies outside bounds={self.bounds!r}; using "
                f"T={T!r}. Widen the bounds if this is not intended.",
                UserWarning,
                stacklevel=3,
            )
        self.temperature_ = float(T)
        self.n_classes_ = int(K)
        self.n_iter_ = int(n_iter)
        z64 = z.astype(np.float64)
        self.nll_ = float(w @ cross_entropy(z64, y, reduction="none",
                                            temperature=self.temperature_))
        self.nll_uncalibrated_ = float(w @ cross_entropy(z64, y, reduction="none"))
        return self

    def fit_estimator(self, model, X_val, y_val, sample_weight=None):
        """Fit the temperature of a fitted classifier on held-out data.

        Parameters
        ----------
        model : fitted classifier
            Has ``classes_`` and ``decision_function`` returning logits of
            shape (n_samples, n_classes) (or 1-D log-odds for two classes),
            e.g. :class:`softmaxkit.SoftmaxRegression`. Multi-label models
            (:class:`softmaxkit.OneVsRestLogistic`, or a model with
            ``multilabel_`` true) are refused with a TypeError: their
            per-label log-odds are not softmax logits.
        X_val : array-like of shape (n_samples, n_features)
            Validation features, not used to fit ``model``.
        y_val : array-like of shape (n_samples,)
            Validation labels in the model's label space (values of
            ``model.classes_``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : TemperatureScaler
            Afterwards :meth:`predict_proba` and :meth:`predict_log_proba`
            take ``X`` and use ``model.decision_function(X) / T``.
        """
        check_is_fitted(model, "classes_")
        if isinstance(model, OneVsRestLogistic) or bool(getattr(model, "multilabel_", False)):
            raise TypeError(
                f"{_OWNER}.fit_estimator calibrates softmax(decision_function(X) / T) of a "
                f"classifier whose classes exclude each other; got a {type(model).__name__}, a "
                "multi-label model whose decision_function holds the log-odds of independent "
                "per-label logistic regressions, not softmax logits. Calibrate each label on "
                "its own log-odds instead: "
                "TemperatureScaler().fit(model.decision_function(X_val)[:, l], Y_val[:, l])."
            )
        if not hasattr(model, "decision_function"):
            raise TypeError(
                f"model passed to {_OWNER}.fit_estimator must have a decision_function "
                f"returning logits; {type(model).__name__} has none."
            )
        classes = np.asarray(model.classes_)
        yv = np.asarray(y_val)
        if yv.ndim != 1:
            raise ValueError(f"y_val of {_OWNER} must be 1-D; got shape {yv.shape}.")
        idx = _labels_to_index(classes, yv, "y_val", _OWNER)
        logits = model.decision_function(X_val)
        self._fit(logits, idx, sample_weight)
        if self.n_classes_ != len(classes):
            raise ValueError(
                f"model.decision_function gives {self.n_classes_} columns but the model has "
                f"{len(classes)} classes."
            )
        self.estimator_ = model
        return self

    def _logits(self, logits_or_X):
        check_is_fitted(self, "temperature_")
        if hasattr(self, "estimator_"):
            logits_or_X = self.estimator_.decision_function(logits_or_X)
            name = "decision_function(X)"
        else:
            name = "logits"
        return _as_logits(logits_or_X, name, self.n_classes_)

    def predict_proba(self, logits_or_X):
        """Calibrated probabilities ``softmax(logits / T)``.

        Parameters
        ----------
        logits_or_X : array-like of shape (n_samples, n_classes) or (n_samples, n_features)
            Logits after :meth:`fit`; features ``X`` after :meth:`fit_estimator`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        z = self._logits(logits_or_X)
        return softmax(z, axis=1, temperature=self.temperature_)

    def predict_log_proba(self, logits_or_X):
        """Calibrated log-probabilities ``log_softmax(logits / T)``.

        Parameters
        ----------
        logits_or_X : array-like of shape (n_samples, n_classes) or (n_samples, n_features)
            Logits after :meth:`fit`; features ``X`` after :meth:`fit_estimator`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        z = self._logits(logits_or_X)
        return log_softmax(z, axis=1, temperature=self.temperature_)

    def predict(self, logits_or_X):
        """Arg-max class (unchanged by the temperature).

        Parameters
        ----------
        logits_or_X : array-like of shape (n_samples, n_classes) or (n_samples, n_features)
            Logits after :meth:`fit`; features ``X`` after :meth:`fit_estimator`.

        Returns
        -------
        pred : ndarray of shape (n_samples,)
            Class indices after :meth:`fit`, labels from ``model.classes_``
            after :meth:`fit_estimator`.
        """
        idx = np.argmax(self._logits(logits_or_X), axis=1)
        if hasattr(self, "estimator_"):
            return np.asarray(self.estimator_.classes_)[idx]
        return idx
