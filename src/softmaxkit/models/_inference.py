"""Statistical inference for an unpenalised softmax regression (MNLogit grade).

The fitted model's class-centred coefficients are re-expressed against a
reference class; standard errors come from the inverse observed information
of the multinomial log-likelihood at those parameters.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy import linalg, sparse, stats
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import first_missing_label, param_error
from .._validation import plain as _plain
from ..special import log_softmax, softmax

__all__ = ["summarize", "Summary", "MarginalEffects", "PerfectSeparationWarning"]


class PerfectSeparationWarning(UserWarning):
    """Warned by :func:`summarize` when the classes are (quasi-)completely separated.

    Some samples are predicted perfectly by a direction of the coefficients
    along which the likelihood keeps increasing, so the maximum-likelihood
    estimate does not exist (it lies at infinity) and the fitted coefficients,
    standard errors, z-values, p-values and confidence intervals are artefacts
    of where the solver stopped. statsmodels warns its own
    ``PerfectSeparationWarning`` in the same situation.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from softmaxkit import PerfectSeparationWarning, SoftmaxRegression, summarize
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]]); y = np.array([0, 0, 1, 1])
    >>> m = SoftmaxRegression(penalty=None).fit(X, y)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = summarize(m, X, y)
    >>> any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    True
    """


# Separation check (see _separation). A fitted probability below this fraction of the
# observed class's is "numerically 0": only then can the data be separated at a fit.
_SEP_GATE = np.log(1e-8)
# Margins of a unit-box direction on the max-abs-scaled design: above _SEP_STRICT a
# sample is strictly separated, below -_SEP_FEAS a constraint is violated (HiGHS'
# primal feasibility tolerance is 1e-7); an LP optimum below _SEP_STRICT means none.
_SEP_STRICT = 1e-6
_SEP_FEAS = 1e-7
_SEP_ROUNDS = 30
# Relative singular-value cutoff of the null space searched after a subset LP finds no
# separation (a larger cutoff only searches a larger subspace: safe, slower).
_SEP_NULL = 1e-8
# The LP's size (constraints x variables) above which the exact check gives up (about
# 3 s of HiGHS); then a separated fit is recognised by its information matrix: its
# smallest eigenvalue relative to the information at equal class probabilities (a
# scale- and collinearity-free measure) below _SEP_EIG. Separated fits measured:
# 4e-7 (tol=1e-3) to 1e-13; non-separated data with a strong signal: 5e-6 and up.
_SEP_LP_BUDGET = 3_000_000
_SEP_EIG = 1e-8


def _multinomial_information(Xd, P, w):
    """Observed (= expected) information of the multinomial logit.

    Parameters are ``theta`` of shape (K-1, p) for the non-reference classes,
    flattened class-major. ``Xd`` (n, p) is the design (with the constant
    column), ``P`` (n, K-1) the fitted probabilities of the non-reference
    classes and ``w`` (n,) the frequency weights. Block (a, b) is
    ``Xd^T diag(w * (delta_ab P_a - P_a P_b)) Xd``.
    """
    J, p = P.shape[1], Xd.shape[1]
    H = np.empty((J * p, J * p))
    for a in range(J):
        for b in range(a, J):
            s = w * (P[:, a] * ((a == b) - P[:, b]))
            blk = Xd.T @ (s[:, None] * Xd)
            H[a * p:(a + 1) * p, b * p:(b + 1) * p] = blk
            H[b * p:(b + 1) * p, a * p:(a + 1) * p] = blk.T
    return H


def _count_text(v):
    """A (weighted) count for the summary: all its digits when whole (1234567, not
    1.23457e+06), else up to 10 significant digits."""
    v = float(v)
    return f"{v:.0f}" if v.is_integer() and abs(v) < 1e16 else f"{v:.10g}"


def _pairs_text(classes, pairs, limit=6):
    """``'a' and 'b', 'a' and 'c'`` for separated class-index pairs."""
    shown = ", ".join(f"{_py(classes[a])!r} and {_py(classes[b])!r}" for a, b in pairs[:limit])
    return shown + (", ..." if len(pairs) > limit else "")


def _separation(Xd, idx, logP, w, ref):
    """Samples separated by a recession direction of the likelihood, or None.

    The multinomial MLE fails to exist exactly when some direction ``D``
    ((K, p), ``D[ref] = 0``) has every margin ``m_ik = (D_{y_i} - D_k) . x_i``
    (``k != y_i``) non-negative and at least one positive (Albert and
    Anderson 1984; complete separation: all positive, quasi-complete: some):
    the log-likelihood then increases along ``D`` without bound. It is found
    by the linear program of Konis (2007), maximise the sum of the margins
    over ``-1 <= D <= 1`` subject to every margin ``>= 0``, with constraint
    generation: the LP runs on a subset of (sample, class) pairs, first those
    of some samples whose probabilities are not numerically 0 (the overlap);
    a subset's ``D`` is checked on every sample (``O(n K p)``) and the pairs
    it violates join the subset. A subset that cannot be separated proves
    only that a separating ``D`` has zero margins on it, i.e. lies in the null
    space of its constraints: the search goes on in that subspace (over the
    pairs it can move), and an empty null space proves the data cannot. The
    check runs only when some fitted probability is numerically 0 (below
    ``1e-8`` times the observed class's), as it must be at a converged fit on
    separated data; the answer is about the data, not about the fit. An LP
    larger than ``_SEP_LP_BUDGET`` (or one HiGHS cannot solve) leaves the
    question to the caller.

    Parameters
    ----------
    Xd : ndarray of shape (n, p)
        The design (with the constant column, when there is one).
    idx : ndarray of shape (n,)
        Class index of each sample.
    logP : ndarray of shape (n, K)
        Fitted log-probabilities.
    w : ndarray of shape (n,)
        Frequency weights; samples of weight 0 are left out.
    ref : int
        The reference class.

    Returns
    -------
    None, ("separated", rows, pairs) or ("undecided", n_degenerate)
        None when the data are not separated (or no fitted probability is
        numerically 0). ``rows``, ndarray of shape (n,) of bool: the samples
        with a positive margin along the direction found (some class's
        fitted probability goes to 0 for them); ``pairs``: sorted ``(a, b)``
        class-index pairs that some sample separates. ``n_degenerate``: the
        number of samples with a numerically 0 probability.
    """
    from scipy.optimize import linprog

    n, p = Xd.shape
    K = logP.shape[1]
    pos = np.flatnonzero(w > 0)
    r = np.arange(pos.size)
    yi = idx[pos]
    lp_obs = logP[pos, yi]
    gap = logP[pos] - lp_obs[:, None]
    gap[r, yi] = 0.0
    n_degenerate = int(np.count_nonzero(np.any(gap < _SEP_GATE, axis=1)))
    if n_degenerate == 0:
        return None
    undecided = ("undecided", n_degenerate)
    scale = np.max(np.abs(Xd[pos]), axis=0)
    Xs = Xd[pos] / np.where(scale > 0, scale, 1.0)
    block = np.full(K, -1)
    block[[k for k in range(K) if k != ref]] = np.arange(K - 1)
    q = (K - 1) * p

    def constraints(mask):
        # one row per (sample i, class k != y_i) in mask: +x_i in block y_i, -x_i in block k
        ii, kk = np.nonzero(mask)
        c = np.arange(ii.size)
        parts = [(block[yi[ii]], 1.0), (block[kk], -1.0)]
        data, rr, cc = [], [], []
        for b, sign in parts:
            ok = b >= 0
            rr.append(np.repeat(c[ok], p))
            cc.append((b[ok, None] * p + np.arange(p)).ravel())
            data.append((sign * Xs[ii[ok]]).ravel())
        return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rr), np.concatenate(cc))),
                                 shape=(ii.size, q))

    def margins(x):
        D = np.zeros((K, p))
        D[block >= 0] = x.reshape(K - 1, p)
        E = Xs @ D.T
        M = E[r, yi][:, None] - E
        M[r, yi] = np.nan
        return M

    def pick(cands, size):
        # the worst-predicted candidate samples (the overlap that blocks a separation)
        # plus an even spread of the others
        order = cands[np.argsort(lp_obs[cands], kind="stable")]
        rest = order[size // 2:]
        take = np.r_[order[:size // 2],
                     rest[np.linspace(0, rest.size - 1, size - size // 2).astype(int)]
                     if rest.size else np.array([], dtype=int)]
        sel = np.zeros(pos.size, dtype=bool)
        sel[take] = True
        return sel

    # Constraint generation over (sample, class) pairs: start from the pairs of some
    # samples whose fitted probabilities are not numerically 0 (the ones that can bind:
    # the overlap), plus each such sample's most likely other class; the rest join
    # when a candidate direction violates them.
    size = min(pos.size, max(200, 4 * q))
    other = gap.copy()
    other[r, yi] = -np.inf
    chosen = pick(np.arange(pos.size), size)
    in_lp = chosen[:, None] & (gap >= _SEP_GATE)
    in_lp[r, yi] = False
    in_lp[r, np.argmax(other, axis=1)] |= chosen
    basis = None                 # (q, s): the LP's variables are D = basis @ z; None: D = z
    for _ in range(_SEP_ROUNDS):
        width = q if basis is None else basis.shape[1]
        if np.count_nonzero(in_lp) * width > _SEP_LP_BUDGET:
            return undecided
        A = constraints(in_lp)
        if basis is not None:
            A = A @ basis
        res = linprog(-np.asarray(A.sum(axis=0)).ravel(), A_ub=-A, b_ub=np.zeros(A.shape[0]),
                      bounds=(-1, 1), method="highs")
        if res.status != 0:
            return undecided
        if -res.fun <= _SEP_STRICT:
            # The subset cannot be separated, so a direction that separates the data has
            # zero margins on the subset (it is feasible there): it lies in the null space
            # of the subset's constraints. Quasi-complete separation can hide there (a
            # feature that is 0 on every subset sample); look in that subspace, among the
            # pairs whose margins it can change. An empty null space proves "no".
            Ad = A.toarray() if sparse.issparse(A) else np.asarray(A)
            # the SVD of R (A = QR) has A's singular values and right vectors; cheaper than
            # scipy's null_space, which builds the full (m, m) U
            R = linalg.qr(Ad, mode="r")[0][:Ad.shape[1]]
            _, sv, vh = linalg.svd(R, full_matrices=True)
            rank = int(np.count_nonzero(sv > _SEP_NULL * sv.max())) if sv.size else 0
            N = vh[rank:].T
            if N.shape[1] == 0:
                return None
            basis = N if basis is None else basis @ N
            # largest margin change of each pair per unit coordinate of the subspace
            reach = np.zeros((pos.size, K))
            for j in range(basis.shape[1]):
                reach = np.maximum(reach, np.nan_to_num(np.abs(margins(basis[:, j]))))
            live = reach > _SEP_FEAS
            if not live.any():
                return None
            in_lp = pick(np.flatnonzero(live.any(axis=1)), size)[:, None] & live
            continue
        M = margins(res.x if basis is None else basis @ res.x)
        lo = np.nanmin(M, axis=1)
        bad = (M < -_SEP_FEAS) & ~in_lp
        if not bad.any():
            if np.any(M[in_lp] < -10 * _SEP_FEAS):
                return undecided             # the LP's own constraints do not hold
            strict = np.nan_to_num(M, nan=0.0) > _SEP_STRICT
            if not strict.any():
                return None
            out = np.zeros(n, dtype=bool)
            out[pos] = strict.any(axis=1)
            ii, kk = np.nonzero(strict)
            ab = np.sort(np.column_stack([yi[ii], kk]), axis=1)
            pairs = [(int(a), int(b)) for a, b in np.unique(ab, axis=0)]
            return "separated", out, pairs
        worst = np.flatnonzero(bad.any(axis=1))
        worst = worst[np.argsort(lo[worst], kind="stable")[:size]]
        in_lp[worst] |= bad[worst]
    return undecided


def _check_model_type(model):
    """summarize covers one multinomial logit; refuse per-label (multi-label) models."""
    from ._ovr import OneVsRestLogistic

    multi_label = False
    tags = getattr(model, "__sklearn_tags__", None)
    if callable(tags):
        try:
            multi_label = bool(tags().classifier_tags.multi_label)
        except AttributeError:
            multi_label = False
    if isinstance(model, OneVsRestLogistic) or multi_label:
        raise TypeError(
            f"summarize supports SoftmaxRegression (one multinomial logit, fitted with "
            f"penalty=None); got a {type(model).__name__}, a multi-label model of independent "
            "per-label logistic regressions, whose coefficients are not the parameters of one "
            "multinomial likelihood. For inference on label l, fit "
            "SoftmaxRegression(penalty=None) on X and Y[:, l] and summarize that."
        )


def _effective_penalty(model):
    """``(penalty, note)``: the penalty ``model``'s fit applies, None when unpenalised.

    scikit-learn >= 1.8 deprecates ``LogisticRegression(penalty=...)`` and leaves the
    placeholder ``penalty='deprecated'``; the penalty then follows from ``l1_ratio``
    (0 or None: 'l2', 1: 'l1', in between: 'elasticnet'), as its ``fit`` derives it.
    ``C=inf`` is no penalty in either case.  ``note`` says where the penalty came
    from, for the error message.
    """
    penalty = _plain(getattr(model, "penalty", None))
    C = _plain(getattr(model, "C", 1.0))
    note = f", C={C!r}"
    if isinstance(penalty, str) and penalty == "deprecated":
        r = _plain(getattr(model, "l1_ratio", None))
        penalty = "l2" if r is None or r == 0 else "l1" if r == 1 else "elasticnet"
        note = f" (derived from l1_ratio={r!r} and C={C!r})"
    if penalty is None or (isinstance(penalty, str) and penalty.lower() == "none"):
        return None, note
    if isinstance(C, numbers.Real) and np.isinf(C):
        return None, note
    return penalty, note


class MarginalEffects:
    """Marginal effects of the features on the class probabilities at the mean.

    Returned by :meth:`Summary.margeff`; not built directly.

    Attributes
    ----------
    margeff : ndarray of shape (n_classes, n_features)
        ``dP(class k) / dx_j`` at the (weighted) mean of the features.
    margeff_se : ndarray of shape (n_classes, n_features)
        Delta-method standard errors.
    zvalues, pvalues : ndarray of shape (n_classes, n_features)
        Wald statistics and two-sided normal p-values.
    classes : ndarray of shape (n_classes,)
        Row labels (all classes, reference included).
    feature_names : list of str
        Column labels.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import SoftmaxRegression, summarize
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(500, 2))
    >>> y = (X @ [[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]] + rng.gumbel(size=(500, 3))).argmax(1)
    >>> me = summarize(SoftmaxRegression(penalty=None).fit(X, y), X, y).margeff()
    >>> me.margeff.shape, me.feature_names
    ((3, 2), ['x0', 'x1'])
    >>> bool(np.allclose(me.margeff.sum(axis=0), 0))   # the probabilities sum to 1
    True
    """

    def __init__(self, margeff, margeff_se, classes, feature_names, alpha):
        self.margeff = margeff
        self.margeff_se = margeff_se
        with np.errstate(divide="ignore", invalid="ignore"):
            self.zvalues = margeff / margeff_se
        self.pvalues = 2 * stats.norm.sf(np.abs(self.zvalues))
        self.classes = classes
        self.feature_names = feature_names
        self.alpha = alpha

    def conf_int(self, alpha=None):
        """Normal confidence intervals, shape (n_classes, n_features, 2)."""
        q = stats.norm.ppf(1 - _check_alpha(self.alpha if alpha is None else alpha) / 2)
        return np.stack([self.margeff - q * self.margeff_se,
                         self.margeff + q * self.margeff_se], axis=-1)

    def __repr__(self):
        return (f"MarginalEffects(at='mean', classes={list(self.classes)!r}, "
                f"features={self.feature_names!r})")


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        wrong_type = isinstance(alpha, bool) or not isinstance(alpha, numbers.Real)
        raise param_error("alpha", "summarize", "a float in (0, 1)", _plain(alpha),
                          exc=TypeError if wrong_type else ValueError)
    return float(alpha)


class Summary:
    """Inference results of :func:`summarize` (statsmodels ``MNLogit`` layout).

    Rows of the (K-1, 1 + n_features) arrays are the non-reference classes in
    ``classes_`` order; columns are ``["intercept", *feature_names]`` (no
    intercept column when the model was fitted without one).

    Attributes
    ----------
    params : ndarray of shape (K-1, 1 + n_features)
        Coefficients of each class relative to ``reference_class``.
    bse : ndarray of shape (K-1, 1 + n_features)
        Standard errors, ``sqrt(diag(cov_params))``.
    zvalues, pvalues : ndarray of shape (K-1, 1 + n_features)
        Wald z statistics and two-sided normal p-values.
    cov_params : ndarray of shape ((K-1) (1 + n_features), (K-1) (1 + n_features))
        Inverse observed information, parameters flattened class-major
        (``params.ravel()`` order).
    llf, llnull, llr, llr_pvalue, prsquared : float
        Log-likelihood, intercept-only log-likelihood, likelihood-ratio
        statistic ``2 (llf - llnull)``, its chi-square p-value with
        ``df_model`` degrees of freedom, McFadden's pseudo R-squared
        ``1 - llf / llnull``.
    aic, bic : float
        ``-2 llf + 2 k`` and ``-2 llf + log(nobs) k`` with ``k = params.size``.
    df_model, df_resid, nobs : float
        ``(K-1) n_features``, ``nobs - k`` and the (weighted) sample count.
    classes : ndarray of shape (K-1,)
        The non-reference classes (row labels).
    reference_class : object
        The baseline class whose coefficients are 0.
    param_names : list of str
        Column labels.
    alpha : float
        Default significance level for :meth:`conf_int`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import SoftmaxRegression, summarize
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(500, 2))
    >>> y = (X @ [[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]] + rng.gumbel(size=(500, 3))).argmax(1)
    >>> s = summarize(SoftmaxRegression(penalty=None).fit(X, y), X, y, reference_class=2)
    >>> s.classes, s.conf_int().shape, s.cov_params.shape
    (array([0, 1]), (2, 3, 2), (6, 6))
    >>> bool(np.all(s.conf_int()[..., 0] < s.params)), s.df_model, s.nobs
    (True, 4.0, 500.0)
    >>> s.to_frame().columns.tolist()
    ['coef', 'std_err', 'z', 'P>|z|', '[0.025', '0.975]']
    >>> print(str(s).splitlines()[0])
    Softmax regression (multinomial logit) results
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def conf_int(self, alpha=None):
        """Wald confidence intervals.

        Parameters
        ----------
        alpha : float in (0, 1), default=None
            1 - coverage; ``None`` uses the ``alpha`` given to :func:`summarize`.

        Returns
        -------
        ci : ndarray of shape (K-1, 1 + n_features, 2)
            Lower and upper bounds ``params -/+ z_{1 - alpha/2} bse``.
        """
        q = stats.norm.ppf(1 - _check_alpha(self.alpha if alpha is None else alpha) / 2)
        return np.stack([self.params - q * self.bse, self.params + q * self.bse], axis=-1)

    def margeff(self):
        """Marginal effects on every class probability at the mean of the features.

        Returns
        -------
        MarginalEffects
            ``margeff`` of shape (K, n_features):
            ``dP_k/dx_j = P_k (beta_kj - sum_m P_m beta_mj)`` at the weighted
            mean of ``X``, with delta-method standard errors; equal to
            statsmodels' ``get_margeff(at="mean").margeff`` transposed.
        """
        return self._margeff()

    def to_frame(self):
        """The coefficient table as a pandas DataFrame.

        Returns
        -------
        pandas.DataFrame
            Index ``(class, term)``; columns ``coef``, ``std_err``, ``z``,
            ``P>|z|`` and the two confidence bounds.
        """
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a test dependency
            raise ImportError(
                "Summary.to_frame needs pandas: pip install 'softmaxkit[parquet]'"
            ) from None
        ci = self.conf_int()
        lo, hi = f"[{self.alpha / 2:g}", f"{1 - self.alpha / 2:g}]"
        index = pd.MultiIndex.from_product(
            [[str(c) for c in self.classes], self.param_names], names=["class", "term"]
        )
        return pd.DataFrame(
            {"coef": self.params.ravel(), "std_err": self.bse.ravel(),
             "z": self.zvalues.ravel(), "P>|z|": self.pvalues.ravel(),
             lo: ci[..., 0].ravel(), hi: ci[..., 1].ravel()},
            index=index,
        )

    def __str__(self):
        ci = self.conf_int()
        width = max(12, *(len(n) for n in self.param_names)) + 2
        head = (f"{'':<{width}}{'coef':>11}{'std err':>11}{'z':>9}{'P>|z|':>9}"
                f"{f'[{self.alpha / 2:g}':>11}{f'{1 - self.alpha / 2:g}]':>11}")
        rule = "=" * len(head)
        stats_lines = [
            ("Dep. classes:", f"{len(self.classes) + 1}", "No. observations:",
             _count_text(self.nobs)),
            ("Reference:", f"{self.reference_class}", "Df model:", f"{self.df_model:g}"),
            ("Log-likelihood:", f"{self.llf:.4f}", "Df residuals:", _count_text(self.df_resid)),
            ("LL-null:", f"{self.llnull:.4f}", "Pseudo R-squ.:", f"{self.prsquared:.4f}"),
            ("LLR p-value:", f"{self.llr_pvalue:.4g}", "AIC:", f"{self.aic:.4f}"),
            ("", "", "BIC:", f"{self.bic:.4f}"),
        ]
        lines = ["Softmax regression (multinomial logit) results", rule]
        lines += [f"{a:<17}{b:>18}    {c:<18}{d:>16}".rstrip() for a, b, c, d in stats_lines]
        lines.append(rule)
        for r, cls in enumerate(self.classes):
            lines.append(f"class = {cls}" + f"  (vs {self.reference_class})")
            lines.append(head)
            lines.append("-" * len(head))
            for j, name in enumerate(self.param_names):
                lines.append(
                    f"{name:<{width}}{self.params[r, j]:>11.4f}{self.bse[r, j]:>11.4f}"
                    f"{self.zvalues[r, j]:>9.3f}{self.pvalues[r, j]:>9.3f}"
                    f"{ci[r, j, 0]:>11.4f}{ci[r, j, 1]:>11.4f}"
                )
            lines.append(rule)
        return "\n".join(lines)

    def __repr__(self):
        return (f"<Summary: {len(self.classes) + 1} classes, reference "
                f"{self.reference_class!r}, nobs={_count_text(self.nobs)}, llf={self.llf:.6g}>")


def summarize(model, X, y, *, reference_class=None, alpha=0.05, sample_weight=None):
    """Coefficient table, standard errors and fit statistics of an unpenalised fit.

    Parameters
    ----------
    model : SoftmaxRegression
        Fitted with ``penalty=None`` on ``X``, ``y`` (and ``sample_weight``);
        any classifier with ``coef_`` (K, d), ``intercept_`` (K,) and
        ``classes_`` (K,) of a multinomial logit works.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The training features (a DataFrame gives the feature names). A
        scipy.sparse matrix is converted to a dense array (the information
        matrix is dense anyway; memory ``O(n_samples n_features)``), with the
        same results as the dense call.
    y : array-like of shape (n_samples,)
        The training labels, values of ``model.classes_``.
    reference_class : object, default=None
        The baseline class, a value of ``classes_`` of the same kind (no
        conversion: ``1.7``, ``True`` or ``"2"`` is not class ``2``); ``None``
        means ``classes_[0]``.
    alpha : float in (0, 1), default=0.05
        Significance level of the confidence intervals.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights (the ones used in the fit); ``nobs`` is their sum.

    Returns
    -------
    Summary
        ``params``, ``bse``, ``zvalues``, ``pvalues`` of shape
        (K-1, 1 + n_features), ``conf_int()``, ``llf``, ``llnull``, ``llr``,
        ``llr_pvalue``, ``prsquared``, ``aic``, ``bic``, ``df_model``,
        ``df_resid``, ``nobs``, ``cov_params``, ``margeff()``, ``to_frame()``;
        ``print(summary)`` shows the table.  ``df_model`` is ``(K - 1)`` times the
        number of features, not counting the intercept: without an intercept
        (``fit_intercept=False``) statsmodels' ``MNLogit`` still subtracts one
        feature for a constant, so its ``df_model`` and ``llr_pvalue`` differ there
        (everything else agrees).

    Raises
    ------
    TypeError
        For a model that is not one multinomial logit, such as
        :class:`OneVsRestLogistic` (independent binary logits per label):
        summarize supports :class:`SoftmaxRegression` fits (and other
        classifiers with the fitted attributes of a multinomial logit).
    ValueError
        For a penalised model (the standard errors of a penalised estimate do
        not describe its sampling distribution: the estimate is biased toward
        0 by an amount the curvature of the likelihood knows nothing about;
        the message names the penalty applied, for scikit-learn >= 1.8's
        ``LogisticRegression`` the one derived from ``l1_ratio`` and ``C``),
        a ``reference_class`` that is not in ``classes_``, labels the model
        has not seen, or a singular information matrix (collinear features
        or perfectly separated classes: the MLE does not exist).
    sklearn.exceptions.NotFittedError
        For an unfitted model.

    Warns
    -----
    PerfectSeparationWarning
        When the classes are (quasi-)completely separated, so the MLE does not
        exist and the standard errors are not meaningful (see Notes).
    UserWarning
        When the model is not at the MLE (one Newton step would move a
        coefficient by more than 1e-3 standard errors).

    Notes
    -----
    The softmax model is identified only up to a common shift of the class
    coefficients; with reference class :math:`r` the parameters are
    :math:`\\theta_k = \\beta_k - \\beta_r` (intercept first), the
    parametrisation of statsmodels' ``MNLogit``. With :math:`\\tilde x_i =
    (1, x_i)`, probabilities :math:`p_{ik}` and weights :math:`w_i`,

    .. math::

        \\ell = \\sum_i w_i \\log p_{i y_i}, \\qquad
        I_{ab} = \\sum_i w_i\\, p_{ia} (\\delta_{ab} - p_{ib})\\,
            \\tilde x_i \\tilde x_i^\\top \\quad (a, b \\ne r),

    and ``cov_params`` is :math:`I^{-1}` (for the canonical link the observed
    and expected information coincide). ``llnull`` is the log-likelihood of
    the intercept-only model, :math:`\\sum_k W_k \\log(W_k / W)` with
    :math:`W_k` the weight of class :math:`k`. The model is checked to sit at
    the MLE: if one Newton step would move a parameter by more than 1e-3
    standard errors a warning says to refit with a smaller ``tol``.

    Separation: when some direction of the coefficients predicts a set of
    samples perfectly (every sample's observed class at least as likely as
    any other along it, some strictly), the likelihood increases along it
    without bound and the MLE does not exist; the fitted coefficients and
    their (huge) standard errors only say where the solver stopped.
    statsmodels warns on complete separation only; summarize finds
    quasi-complete separation too, exactly, by the linear program of Konis
    (2007) on the data, run when some fitted probability is numerically 0,
    and warns :class:`PerfectSeparationWarning` naming the separated class
    pairs. For very large problems (the LP over about 3e6 entries) it falls
    back to the numerically singular information matrix. An information
    matrix that is exactly singular still raises ValueError.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import SoftmaxRegression, summarize
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> y = np.where(X[:, 0] + rng.logistic(size=300) > 0, "yes", "no")
    >>> model = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    >>> s = summarize(model, X, y)
    >>> s.params.shape, s.param_names, s.reference_class
    ((1, 3), ['intercept', 'x0', 'x1'], 'no')
    >>> bool(s.pvalues[0, 1] < 1e-6), bool(s.pvalues[0, 2] > 0.01)
    (True, True)
    """
    _check_model_type(model)
    check_is_fitted(model, ["coef_", "intercept_", "classes_"])
    penalty, note = _effective_penalty(model)
    if penalty is not None:
        raise ValueError(
            f"summarize needs an unpenalised fit; got a {type(model).__name__} with "
            f"penalty={penalty!r}{note}. The "
            "standard errors of a penalised estimate are not its sampling distribution: the "
            "penalty biases the coefficients toward 0 and shrinks the curvature-based standard "
            "errors, so z-values, p-values and confidence intervals would be wrong. Refit with "
            "penalty=None or C=np.inf (scikit-learn >= 1.8 deprecates penalty: use C=np.inf)."
        )
    if getattr(model, "class_weight", None) is not None:
        raise ValueError(
            f"summarize needs a fit of the plain likelihood; got class_weight="
            f"{_plain(model.class_weight)!r}. Class weights reweight the likelihood, so its "
            "curvature no longer gives the sampling distribution. Refit with class_weight=None."
        )
    alpha = _check_alpha(alpha)
    X = validate_data(model, X, reset=False, accept_sparse=True, dtype=np.float64,
                      ensure_all_finite=True)
    if sparse.issparse(X):
        # the information matrix and the design with its constant are dense anyway
        X = X.toarray(order="C")
    classes = np.asarray(model.classes_)
    K = classes.shape[0]
    n, d = X.shape
    if K < 2:
        raise ValueError(f"summarize needs a model with at least 2 classes; got {K}.")
    yy = np.asarray(y)
    if yy.ndim != 1 or yy.shape[0] != n:
        raise ValueError(
            f"y of summarize must be 1-D with one label per row of X ({n}); got shape "
            f"{yy.shape}."
        )
    idx = _labels_to_index(classes, yy, "y")
    if reference_class is None:
        ref = 0
    else:
        hits = _same_label(classes, reference_class)
        if hits.size == 0:
            raise ValueError(
                f"reference_class {_plain(reference_class)!r} of summarize is not one of the "
                "model's "
                f"classes_ {classes.tolist()!r}."
            )
        ref = int(hits[0])
    if sample_weight is None:
        w = np.ones(n)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"sample_weight of summarize must be a finite, non-negative array of shape "
                f"({n},), not all zero; got shape {w.shape}."
            )

    fit_intercept = bool(getattr(model, "fit_intercept", True))
    coef = np.asarray(model.coef_, dtype=np.float64).reshape(-1, d)
    intercept = np.asarray(model.intercept_, dtype=np.float64).reshape(-1)
    if K == 2 and coef.shape[0] == 1:       # scikit-learn style binary: one row of log-odds
        coef = np.vstack([np.zeros(d), coef])
        intercept = np.r_[0.0, intercept[:1]]
    if coef.shape[0] != K or intercept.shape[0] != K:
        raise ValueError(
            f"summarize needs coef_ of shape ({K}, {d}) and intercept_ of shape ({K},); got "
            f"{np.shape(model.coef_)} and {np.shape(model.intercept_)}."
        )
    if fit_intercept:
        B = np.column_stack([intercept, coef])
        Xd = np.column_stack([np.ones(n), X])
        names = ["intercept"]
    else:
        B = coef
        Xd = X
        names = []
    feat = getattr(model, "feature_names_in_", None)
    names += [str(f) for f in feat] if feat is not None else [f"x{j}" for j in range(d)]
    keep = np.array([k for k in range(K) if k != ref])
    theta = B[keep] - B[ref]                                  # (K-1, p)
    Z = np.zeros((n, K))
    Z[:, keep] = Xd @ theta.T
    logP = log_softmax(Z, axis=1)
    P = np.exp(logP)
    llf = float(w @ logP[np.arange(n), idx])
    Wk = np.bincount(idx, weights=w, minlength=K)
    W = float(w.sum())
    nz = Wk > 0
    if not nz.all():
        empty = ", ".join(repr(_py(c)) for c in classes[~nz][:6])
        raise ValueError(
            f"summarize: class{'es' if (~nz).sum() > 1 else ''} {empty} of the model "
            f"ha{'ve' if (~nz).sum() > 1 else 's'} no samples (of positive weight) in y: the "
            "likelihood of these data grows without bound as that class's probabilities go "
            "to 0, so the maximum-likelihood estimate does not exist and there are no "
            "standard errors. Summarize on data with samples of every class, or refit "
            "without that class."
        )
    llnull = float(np.sum(Wk[nz] * np.log(Wk[nz] / W)))

    # before the information matrix: separation makes it (numerically) singular,
    # and the error should then say so
    separated = _separation(Xd, idx, logP, w, ref)
    H = _multinomial_information(Xd, P[:, keep], w)
    try:
        cf = linalg.cho_factor(H, lower=True)
        cov = linalg.cho_solve(cf, np.eye(H.shape[0]))
    except linalg.LinAlgError:
        if separated is not None and separated[0] == "separated":
            cause = (f"the classes are (quasi-)completely separated (classes "
                     f"{_pairs_text(classes, separated[2])}), so the maximum-likelihood "
                     "estimate does not exist (the coefficients grow without bound as the fit "
                     "converges). Drop or merge the separating features or classes, or "
                     "collect more data.")
        elif separated is not None:
            cause = (f"fitted class probabilities are numerically 0 for {separated[1]} "
                     "samples: the classes are probably (quasi-)completely separated (the "
                     "maximum-likelihood estimate is at infinity), or the features are "
                     "collinear.")
        else:
            cause = ("the features are collinear (or constant), or the classes are perfectly "
                     "separated (the maximum-likelihood estimate is at infinity).")
        raise ValueError(
            "summarize: the observed information matrix is singular, so standard errors do not "
            f"exist: {cause}"
        ) from None
    cov = 0.5 * (cov + cov.T)
    J, p = theta.shape
    bse = np.sqrt(np.diag(cov)).reshape(J, p)

    n_pos = int(np.count_nonzero(w > 0))
    advice = ("the maximum-likelihood estimate does not exist (the coefficients grow without "
              "bound as the fit converges). The standard errors, z-values, p-values and "
              "confidence intervals are not meaningful. Drop or merge the separating features "
              "or classes, or collect more data.")
    if separated is not None and separated[0] == "undecided":
        H0 = _multinomial_information(Xd, np.full((n, J), 1.0 / K), w)
        try:
            lam = float(linalg.eigh(H, H0, eigvals_only=True, subset_by_index=[0, 0])[0])
        except linalg.LinAlgError:
            lam = np.inf
        if lam < _SEP_EIG:
            warnings.warn(
                f"summarize: the classes look (quasi-)completely separated: fitted class "
                f"probabilities are numerically 0 for {separated[1]} of the {n_pos} samples and "
                f"the information matrix is numerically singular (smallest eigenvalue "
                f"{lam:.2g} of the information at equal class probabilities; the exact check "
                f"is skipped at this size). If so, {advice}",
                PerfectSeparationWarning,
                stacklevel=2,
            )
        else:
            separated = None
    elif separated is not None:
        _, rows, pairs = separated
        shown = _pairs_text(classes, pairs)
        warnings.warn(
            f"summarize: the classes are (quasi-)completely separated (classes {shown}): "
            "along a combination of the features the likelihood increases without limit, "
            f"pushing a fitted class probability to 0 for {int(rows.sum())} of the {n_pos} "
            f"samples, so {advice}",
            PerfectSeparationWarning,
            stacklevel=2,
        )
    # the model must sit at the MLE for the Wald theory to apply (no MLE when separated)
    Y = np.zeros((n, K))
    Y[np.arange(n), idx] = 1.0
    score = ((Y - P)[:, keep] * w[:, None]).T @ Xd           # (K-1, p)
    step = linalg.cho_solve(cf, score.ravel()).reshape(J, p)
    worst = float(np.max(np.abs(step) / bse))
    if worst > 1e-3 and separated is None:
        warnings.warn(
            f"The model is not at the maximum-likelihood estimate for these data: one Newton "
            f"step would move a coefficient by {worst:.3g} standard errors. Refit with a "
            "smaller tol (and the same X, y, sample_weight) before trusting the inference.",
            UserWarning,
            stacklevel=2,
        )

    with np.errstate(divide="ignore", invalid="ignore"):
        zvalues = theta / bse
    k_params = J * p
    df_model = float(J * (p - fit_intercept))
    llr = 2.0 * (llf - llnull)
    xbar = np.average(X, axis=0, weights=w)

    def _margeff():
        xb = np.r_[1.0, xbar] if fit_intercept else xbar
        beta = np.zeros((K, p))
        beta[keep] = theta
        pb = softmax(beta @ xb)
        off = 1 if fit_intercept else 0
        bf = beta[:, off:]                                      # (K, d)
        bbar = pb @ bf                                          # (d,)
        me = pb[:, None] * (bf - bbar)                          # (K, d)
        # Jacobian d me[k, j] / d theta[a, l] (a over non-reference classes)
        jac = np.zeros((K, d, J, p))
        for ai, a in enumerate(keep):
            dP = pb * ((np.arange(K) == a) - pb[a])             # dP_k / d eta_a
            dbbar = pb[a] * (bf[a] - bbar)                      # part of d bbar_j / d eta_a
            for l in range(p):
                t = dP[:, None] * (bf - bbar) * xb[l]
                t -= pb[:, None] * (dbbar * xb[l])[None, :]
                if l >= off:
                    j = l - off
                    t[a, j] += pb[a]
                    t[:, j] -= pb * pb[a]
                jac[:, :, ai, l] = t
        Jm = jac.reshape(K * d, J * p)
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Jm, cov, Jm), 0)).reshape(K, d)
        return MarginalEffects(me, se, classes, names[off:], alpha)

    summary = Summary(
        params=theta, bse=bse, zvalues=zvalues, pvalues=2 * stats.norm.sf(np.abs(zvalues)),
        cov_params=cov, llf=llf, llnull=llnull, llr=llr,
        llr_pvalue=float(stats.chi2.sf(llr, df_model)) if df_model > 0 else np.nan,
        prsquared=float(1 - llf / llnull) if llnull != 0 else np.nan,
        aic=-2 * llf + 2 * k_params, bic=-2 * llf + np.log(W) * k_params,
        df_model=df_model, df_resid=W - k_params, nobs=W,
        classes=classes[keep], reference_class=classes[ref].item()
        if hasattr(classes[ref], "item") else classes[ref],
        param_names=names, alpha=alpha, fit_intercept=fit_intercept,
    )
    summary._margeff = _margeff
    return summary


def _same_label(classes, value):
    """Indices of the classes equal to ``value`` as the same kind of label: real
    numbers (not bool) compare by value (``1`` is class ``1.0`` and ``1.0`` is class
    ``1``); otherwise no conversion (``1.7`` or ``True`` is not class ``1``, ``'1'``
    not class ``1``, and ``'maybe-not'`` is not truncated to a class ``'maybe'``)."""
    value = _plain(value)

    def kind(v):
        if isinstance(v, (bool, np.bool_)):
            return "bool"
        if isinstance(v, numbers.Real):
            return "real"
        return type(v)

    want = kind(value)
    out = []
    for i, c in enumerate(classes.tolist()):
        try:
            if kind(c) == want and bool(c == value):
                out.append(i)
        except (TypeError, ValueError):
            continue
    return np.array(out, dtype=int)


def _labels_to_index(classes, y, name, owner="summarize"):
    """Indices into the model's ``classes`` (an ndarray) of the 1-D labels ``y``.

    A label that is not a class, or labels that cannot be compared with the
    classes (strings mixed with numbers), raise a ValueError naming ``name`` of
    ``owner`` (e.g. "y_val of TemperatureScaler") and the classes.
    """
    miss = first_missing_label(np.asarray(y))
    if miss is not None:
        raise ValueError(
            f"{name} of {owner} has a missing label ({_py(y[miss])!r}) at position {miss}; every "
            f"label must be one of the model's classes_ {classes.tolist()!r}."
        )
    order = np.argsort(classes, kind="stable")
    try:
        pos = np.clip(np.searchsorted(classes[order], y), 0, len(classes) - 1)
    except TypeError:
        raise ValueError(
            f"{name} of {owner} holds labels of another type than the model's classes_ "
            f"{classes.tolist()!r}."
        ) from None
    idx = order[pos]
    bad = classes[idx] != y
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} of {owner} holds the label {_py(y[i])!r} (position {i}), which is not "
            f"one of the model's classes_ {classes.tolist()!r}."
        )
    return idx


_py = _plain   # a NumPy scalar as the plain Python value (for readable messages)
