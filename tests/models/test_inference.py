"""summarize: the inference math against statsmodels' MNLogit.

The first tests feed statsmodels' own MLE into a minimal fitted stand-in, so the
inference layer is checked independently of any softmaxkit solver; the
acceptance tests at the end fit SoftmaxRegression(penalty=None) end to end.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from softmaxkit import SoftmaxRegression, summarize

sm = pytest.importorskip("statsmodels.api")


class _Fitted(ClassifierMixin, BaseEstimator):
    """Carries the fitted attributes of a multinomial logit (contract 5)."""

    def __init__(self, penalty=None, C=1.0, fit_intercept=True):
        self.penalty = penalty
        self.C = C
        self.fit_intercept = fit_intercept

    def fit(self, X, y):  # pragma: no cover - never called, makes it an estimator
        return self


def _from_statsmodels(res, classes, X, fit_intercept=True, shift=0.0):
    th = np.asarray(res.params).T                      # (K-1, p)
    m = _Fitted(fit_intercept=fit_intercept)
    m.classes_ = classes
    m.n_features_in_ = X.shape[1]
    if hasattr(X, "columns"):
        m.feature_names_in_ = np.asarray(X.columns, dtype=object)
    B = np.vstack([np.zeros(th.shape[1]), th])
    B = B - B.mean(0) + shift                          # class-centred, any common shift
    if fit_intercept:
        m.intercept_, m.coef_ = B[:, 0], B[:, 1:]
    else:
        m.intercept_, m.coef_ = np.zeros(len(classes)), B
    return m


@pytest.fixture(scope="module")
def anes():
    df = sm.datasets.anes96.load_pandas().data
    X = df[["logpopul", "selfLR", "age", "educ", "income"]]
    y = df["PID"].to_numpy()
    res = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0)
    return X, y, res


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b)))


def test_matches_mnlogit_on_anes96(anes):
    X, y, res = anes
    s = summarize(_from_statsmodels(res, np.unique(y), X, shift=0.3), X, y)
    assert s.params.shape == s.bse.shape == s.zvalues.shape == s.pvalues.shape == (6, 6)
    assert s.param_names == ["intercept", "logpopul", "selfLR", "age", "educ", "income"]
    assert s.reference_class == 0.0
    np.testing.assert_array_equal(s.classes, [1, 2, 3, 4, 5, 6])
    assert _rel(s.params, res.params.T) < 1e-12
    assert _rel(s.bse, res.bse.T) < 1e-10
    assert _rel(s.zvalues, res.tvalues.T) < 1e-10
    assert _rel(s.pvalues, res.pvalues.T) < 1e-8
    ci = np.asarray(res.conf_int()).reshape(6, 6, 2)   # rows grouped by class, then term
    assert _rel(s.conf_int(), ci) < 1e-10
    cov = np.asarray(res.cov_params())
    np.testing.assert_allclose(s.cov_params, cov, rtol=1e-8, atol=1e-12 * np.abs(cov).max())
    for name in ["llf", "llnull", "llr", "aic", "bic", "prsquared", "llr_pvalue"]:
        assert getattr(s, name) == pytest.approx(getattr(res, name), rel=1e-8), name
    for name in ["df_model", "df_resid", "nobs"]:
        assert getattr(s, name) == getattr(res, name), name


def test_margeff_at_mean_matches_statsmodels(anes):
    X, y, res = anes
    s = summarize(_from_statsmodels(res, np.unique(y), X), X, y)
    ref = res.get_margeff(at="mean")
    me = s.margeff()
    assert me.margeff.shape == (7, 5)
    assert me.feature_names == ["logpopul", "selfLR", "age", "educ", "income"]
    np.testing.assert_allclose(me.margeff, ref.margeff.T, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(me.margeff_se, ref.margeff_se.T, rtol=1e-8)
    np.testing.assert_allclose(me.pvalues, ref.pvalues.T, rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(me.conf_int(),
                               np.asarray(ref.conf_int()).transpose(2, 0, 1), rtol=1e-8)
    np.testing.assert_allclose(me.margeff.sum(0), 0, atol=1e-15)   # probabilities sum to 1


def test_reference_class_and_no_intercept(anes):
    X, y, _ = anes
    # reference class 3: statsmodels always uses the first class, so recode y
    order = np.array([3, 0, 1, 2, 4, 5, 6])
    recoded = np.argsort(order)[y.astype(int)]
    res = sm.MNLogit(recoded, X).fit(method="newton", disp=0)     # no constant
    m = _from_statsmodels(res, np.arange(7), X, fit_intercept=False)
    # relabel the stand-in's classes back to the original codes, reference = 3
    perm = np.argsort(order)
    m.classes_ = np.arange(7)
    m.coef_ = m.coef_[perm]
    s = summarize(m, X, y.astype(int), reference_class=3)
    assert s.reference_class == 3
    np.testing.assert_array_equal(s.classes, [0, 1, 2, 4, 5, 6])
    assert s.param_names == ["logpopul", "selfLR", "age", "educ", "income"]
    th = np.asarray(res.params).T            # rows: recoded 1..6 = original 0,1,2,4,5,6
    assert _rel(s.params, th) < 1e-12
    assert _rel(s.bse, np.asarray(res.bse).T) < 1e-10
    assert s.llf == pytest.approx(res.llf, rel=1e-10)
    # statsmodels' df_model is (K-1)(rank - 1) even without a constant; ours counts the
    # (K-1) d slopes that the likelihood-ratio test against the intercept-only model frees
    assert s.df_model == 6 * 5


def test_frequency_weights_equal_repeated_rows(anes):
    X, y, _ = anes
    Xs, ys = X.iloc[:300], y[:300]
    w = np.random.default_rng(0).integers(1, 4, size=300)
    Xr, yr = Xs.loc[Xs.index.repeat(w)], np.repeat(ys, w)
    res = sm.MNLogit(yr, sm.add_constant(Xr)).fit(method="newton", disp=0)
    m = _from_statsmodels(res, np.unique(y), X)
    s = summarize(m, Xs, ys, sample_weight=w)
    assert s.nobs == w.sum()
    assert _rel(s.bse, res.bse.T) < 1e-9
    assert s.llf == pytest.approx(res.llf, rel=1e-10)
    assert s.bic == pytest.approx(res.bic, rel=1e-10)
    ref = res.get_margeff(at="mean")
    np.testing.assert_allclose(s.margeff().margeff_se, ref.margeff_se.T, rtol=1e-8)


def test_table_and_frame(anes):
    X, y, res = anes
    s = summarize(_from_statsmodels(res, np.unique(y), X), X, y, alpha=0.1)
    text = str(s)
    assert "class = 6.0  (vs 0.0)" in text and "selfLR" in text and "[0.05" in text
    assert f"{res.llf:.4f}" in text and f"{res.bic:.4f}" in text
    df = s.to_frame()
    assert df.shape == (36, 6)
    assert df.loc[("2.0", "selfLR"), "coef"] == pytest.approx(res.params.loc["selfLR", 1])
    assert df.loc[("2.0", "selfLR"), "std_err"] == pytest.approx(res.bse.loc["selfLR", 1])
    np.testing.assert_allclose(df["0.95]"].to_numpy(), s.conf_int()[..., 1].ravel())
    np.testing.assert_allclose(s.conf_int(0.1), s.conf_int())
    assert np.all(s.conf_int(0.01)[..., 1] > s.conf_int()[..., 1])


def test_errors(anes):
    X, y, res = anes
    m = _from_statsmodels(res, np.unique(y), X)
    with pytest.raises(ValueError, match="unpenalised fit.*not its sampling distribution"):
        summarize(m.set_params(penalty="l2"), X, y)
    m.set_params(penalty=None)
    with pytest.raises(NotFittedError):
        summarize(_Fitted(), X, y)
    with pytest.raises(ValueError, match="reference_class 9 of summarize is not one of"):
        summarize(m, X, y, reference_class=9)
    with pytest.raises(ValueError, match="reference_class 'a' of summarize is not one of"):
        summarize(m, X, y, reference_class="a")
    with pytest.raises(ValueError, match=r"label 7.0 \(position 0\).*not one of"):
        summarize(m, X, np.r_[7.0, y[1:]])
    with pytest.raises(ValueError, match="'alpha' parameter of summarize"):
        summarize(m, X, y, alpha=1.5)
    with pytest.raises(ValueError, match="feature names should match"):
        summarize(m, X.iloc[:, :4], y)
    with pytest.raises(ValueError, match="one label per row"):
        summarize(m, X, y[:-1])
    with pytest.raises(ValueError, match="sample_weight"):
        summarize(m, X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        summarize(m, X.assign(age=np.nan), y)
    # a C = inf "penalty" is no penalty
    summarize(m.set_params(penalty="l2", C=np.inf), X, y)
    m.__dict__.pop("feature_names_in_")
    with pytest.raises(ValueError, match="5 features"):
        summarize(m, X.iloc[:, :4].to_numpy(), y)


def test_singular_information_and_unconverged_warning(anes):
    X, y, res = anes
    m = _from_statsmodels(res, np.unique(y), X)
    Xc = X.assign(income=2 * X["educ"])                 # collinear design
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="singular.*collinear"):
            summarize(m, Xc, y)
    m.coef_ = m.coef_ * 1.05                             # not the MLE any more
    with pytest.warns(UserWarning, match="not at the maximum-likelihood estimate"):
        summarize(m, X, y)


# ------------------------------------------------------------ end to end with SoftmaxRegression
def test_acceptance_softmax_regression_equals_mnlogit(anes):
    X, y, res = anes
    model = SoftmaxRegression(penalty=None).fit(X, y)
    s = summarize(model, X, y)
    assert s.param_names == ["intercept", "logpopul", "selfLR", "age", "educ", "income"]
    assert _rel(s.params, res.params.T) < 1e-6
    assert _rel(s.bse, res.bse.T) < 1e-5
    for name in ["llf", "llnull", "llr", "aic", "bic", "prsquared"]:
        assert getattr(s, name) == pytest.approx(getattr(res, name), rel=1e-6), name
    ref = res.get_margeff(at="mean")
    np.testing.assert_allclose(s.margeff().margeff, ref.margeff.T, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(s.margeff().margeff_se, ref.margeff_se.T, rtol=1e-5)


def test_acceptance_binary_equals_logit_with_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y01 = (X @ [1.0, -0.5, 0.0] + rng.logistic(size=400) > 0).astype(int)
    y = np.array(["no", "yes"])[y01]
    model = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    s = summarize(model, X, y)
    res = sm.Logit(y01, sm.add_constant(X)).fit(method="newton", disp=0)
    assert s.param_names == ["intercept", "x0", "x1", "x2"]
    assert s.reference_class == "no" and list(s.classes) == ["yes"]
    assert _rel(s.params[0], res.params) < 1e-6
    assert _rel(s.bse[0], res.bse) < 1e-5
    assert s.llf == pytest.approx(res.llf, rel=1e-8)
    assert s.llr_pvalue == pytest.approx(res.llr_pvalue, rel=1e-5)
    flipped = summarize(model, X, y, reference_class="yes")
    np.testing.assert_allclose(flipped.params, -s.params, rtol=1e-12)
    np.testing.assert_allclose(flipped.bse, s.bse, rtol=1e-12)


def test_softmax_regression_errors(anes):
    X, y, _ = anes
    with pytest.raises(ValueError, match="penalty='l2'.*Refit with penalty=None"):
        summarize(SoftmaxRegression().fit(X, y), X, y)
    with pytest.raises(NotFittedError):
        summarize(SoftmaxRegression(penalty=None), X, y)
    with pytest.raises(ValueError, match="class_weight='balanced'"):
        summarize(SoftmaxRegression(penalty=None, class_weight="balanced").fit(X, y), X, y)


def test_sklearn_binary_logistic_regression_layout():
    # scikit-learn stores one row of log-odds for two classes; summarize accepts it too
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] - X[:, 1] + rng.logistic(size=300) > 0).astype(int)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=1000).fit(X, y)
    s = summarize(lr, X, y)
    res = sm.Logit(y, sm.add_constant(X)).fit(method="newton", disp=0)
    assert _rel(s.params[0], res.params) < 1e-5
    assert _rel(s.bse[0], res.bse) < 1e-5
