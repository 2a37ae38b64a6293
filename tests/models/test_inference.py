"""summarize: the inference math against statsmodels' MNLogit.

The first tests feed statsmodels' own MLE into a minimal fitted stand-in, so the
inference layer is checked independently of any softmaxkit solver; the
acceptance tests at the end fit SoftmaxRegression(penalty=None) end to end.
"""

import re
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


@pytest.mark.parametrize("labels, good, bad", [
    (None, [1, np.int64(1), 1.0, np.float64(1.0)], [1.7, True, np.True_, "1"]),
    ([0.0, 1.0, 2.0], [1, np.int64(1), 1.0, np.float32(1.0)], [1.7, True, "1", "1.0"]),
    (["maybe", "no", "yes"], ["no", np.str_("no")], ["maybe-not", "n", b"no"]),
])
def test_reference_class_is_matched_without_conversion(labels, good, bad):
    """A reference class is a value of ``classes_`` of the same kind: it was cast to
    classes_' dtype, so 1.7 or True picked class 1, "2" picked class 2 and
    "maybe-not" (truncated to <U5) picked "maybe". Real numbers are one kind: 1
    and 1.0 both pick class 1 (or 1.0)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(300, 3))).argmax(1)
    if labels is not None:
        y = np.array(labels)[y]
    m = SoftmaxRegression(penalty=None).fit(X, y)
    for r in good:
        s = summarize(m, X, y, reference_class=r)
        assert s.reference_class == m.classes_[1]
        assert m.classes_[1] not in list(s.classes)
    for r in bad:
        with pytest.raises(ValueError, match="is not one of the model's classes_"):
            summarize(m, X, y, reference_class=r)


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
    for bad in (True, "0.05", None):                     # True was a ValueError
        with pytest.raises(TypeError, match="'alpha' parameter of summarize"):
            summarize(m, X, y, alpha=bad)
    # a missing label is named as missing, not as "another type than the classes"
    for missing in (None, np.nan):
        yy = np.asarray(y, dtype=object).copy()
        yy[3] = missing
        with pytest.raises(ValueError, match=r"y of summarize has a missing label \((None|nan)"
                                             r"\) at position 3"):
            summarize(m, X, yy)
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


# ------------------------------------------------------------ separation
from softmaxkit import OneVsRestLogistic  # noqa: E402
from softmaxkit.models import _inference  # noqa: E402
from softmaxkit.models._inference import PerfectSeparationWarning  # noqa: E402


def _summarize_recording(model, X, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = summarize(model, X, y, **kw)
    return s, [w for w in caught if issubclass(w.category, UserWarning)]


def _separation_warnings(caught):
    return [str(w.message) for w in caught if w.category is PerfectSeparationWarning]


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_quasi_separated_iris_warns(iris):
    """Setosa is separated from the other two species (petal length < 2.5 exactly for
    setosa), versicolor and virginica overlap: quasi-complete separation. The fit's
    standard errors are ~1e4-1e5 and meaningless; statsmodels' MNLogit does not
    converge on these data either."""
    X, y = iris
    assert np.array_equal(X[:, 2] < 2.5, y == 0)                # the separating rule
    model = SoftmaxRegression(penalty=None).fit(X, y)
    s, caught = _summarize_recording(model, X, y)
    msgs = _separation_warnings(caught)
    assert len(msgs) == 1 and len(caught) == 1                 # no "refit with smaller tol"
    assert "(quasi-)completely separated (classes 0 and 1, 0 and 2)" in msgs[0]
    assert "standard errors, z-values, p-values and confidence intervals are not meaningful" \
        in msgs[0]
    assert s.bse.max() > 1e3                                    # what the warning is about
    res = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0, warn_convergence=False)
    assert not res.mle_retvals["converged"]
    # the answer is about the data, not the fit: a loose or unfinished fit warns too
    for kw in [dict(tol=1e-3), dict(max_iter=5)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            m = SoftmaxRegression(penalty=None, **kw).fit(X, y)
        _, caught = _summarize_recording(m, X, y)
        assert len(_separation_warnings(caught)) == 1, kw
        assert not any("not at the maximum-likelihood" in str(w.message) for w in caught)


def test_complete_separation_warns_like_statsmodels():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 2))
    X = X[np.abs(X[:, 0] + X[:, 1]) > 0.5]                      # a gap between the classes
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with pytest.warns(sm.tools.sm_exceptions.PerfectSeparationWarning):
        sm.Logit(y, sm.add_constant(X)).fit(method="newton", disp=0, maxiter=50,
                                            warn_convergence=False)
    model = SoftmaxRegression(penalty=None).fit(X, y)
    with pytest.warns(PerfectSeparationWarning, match=r"separated \(classes 0 and 1\)"):
        summarize(model, X, y)


def test_quasi_separation_names_the_separated_pairs():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 2))
    noisy = (X[:, 1] + rng.logistic(size=600) > 0).astype(int)
    y = np.array(["a", "b", "c"])[np.where(X[:, 0] > 0.5, 2, noisy)]   # "c" iff x0 > 0.5
    model = SoftmaxRegression(penalty=None).fit(X, y)
    _, caught = _summarize_recording(model, X, y)
    msgs = _separation_warnings(caught)
    assert len(msgs) == 1
    assert "(classes 'a' and 'c', 'b' and 'c')" in msgs[0]


def test_quasi_separation_outside_the_lp_subset_is_found():
    """x2 = 1 on only 5 samples, all of class 2, and 60 far-out samples predicted
    better than those 5: the LP's starting subset misses the 5 and cannot be
    separated, yet the data are (quasi-completely) separated along x2. The check
    searches the null space of the subset's constraints and finds it (it used to
    answer "not separated" and report standard errors of ~1e5 silently)."""
    rng = np.random.default_rng(1)
    n = 3000
    x1 = rng.normal(size=n)
    y = (x1 + rng.normal(size=n) > 0).astype(int)
    y[rng.random(n) < 0.3] = 2
    x1[:30], y[:30] = 150.0, 1
    x1[30:60], y[30:60] = -150.0, 0
    x2 = np.zeros(n)
    x2[rng.choice(np.flatnonzero(y == 2), 5, replace=False)] = 1.0
    X = np.c_[x1, x2]
    model = SoftmaxRegression(penalty=None, tol=1e-10, max_iter=1000).fit(X, y)
    s, caught = _summarize_recording(model, X, y)
    msgs = _separation_warnings(caught)
    assert len(msgs) == 1
    assert "(classes 0 and 2, 1 and 2)" in msgs[0] and "for 5 of the 3000 samples" in msgs[0]
    assert s.bse[:, 2].min() > 1e3                              # what the warning is about
    # without the 5 samples nothing is separated
    w = (x2 == 0).astype(float)
    _, caught = _summarize_recording(
        SoftmaxRegression(penalty=None, tol=1e-10, max_iter=1000).fit(X[:, :1], y, sample_weight=w),
        X[:, :1], y, sample_weight=w)
    assert _separation_warnings(caught) == []


def test_zero_weights_can_make_the_data_separated():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(int)
    flip = np.argsort(np.abs(X[:, 0]))[:10]                     # overlap near the boundary
    y[flip] = 1 - y[flip]
    model = SoftmaxRegression(penalty=None).fit(X, y)
    s, caught = _summarize_recording(model, X, y)
    assert caught == []
    res = sm.Logit(y, sm.add_constant(X)).fit(method="newton", disp=0)
    assert _rel(s.bse[0], res.bse) < 1e-4
    w = np.ones(300)
    w[flip] = 0.0                                               # without them: separated
    model = SoftmaxRegression(penalty=None).fit(X, y, sample_weight=w)
    _, caught = _summarize_recording(model, X, y, sample_weight=w)
    assert len(_separation_warnings(caught)) == 1


@pytest.fixture(scope="module")
def strong():
    """Not separated, but with a strong signal: many fitted probabilities are below
    1e-8, so the exact (linear-programming) check runs and must say "not separated"."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 3))
    y = (X @ [[8.0, -8.0, 0.0], [0.0, 8.0, -8.0], [4.0, 0.0, -4.0]]
         + rng.gumbel(size=(3000, 3))).argmax(1)
    model = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    P = model.predict_proba(X)
    assert np.min(P) < 1e-12                                     # the check's trigger
    return X, y, model


def test_strong_signal_without_separation_does_not_warn(strong):
    X, y, model = strong
    s, caught = _summarize_recording(model, X, y)
    assert caught == []
    res = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0)
    assert res.mle_retvals["converged"]
    assert _rel(s.params, res.params.T) < 1e-6
    assert _rel(s.bse, res.bse.T) < 1e-5


def test_readme_example_and_anes_do_not_warn(iris, anes):
    X, y = iris
    keep = y > 0
    for Xs, ys in [(X[keep][:, 2:], y[keep]), (X[keep], y[keep]), anes[:2]]:
        model = SoftmaxRegression(penalty=None).fit(Xs, ys)
        _, caught = _summarize_recording(model, Xs, ys)
        assert _separation_warnings(caught) == []


def test_large_problems_fall_back_to_the_information_matrix(iris, strong, monkeypatch):
    monkeypatch.setattr(_inference, "_SEP_LP_BUDGET", 0)        # never run the LP
    X, y = iris
    _, caught = _summarize_recording(SoftmaxRegression(penalty=None).fit(X, y), X, y)
    msgs = _separation_warnings(caught)
    assert len(msgs) == 1 and "look (quasi-)completely separated" in msgs[0]
    assert "not meaningful" in msgs[0]
    X, y, model = strong
    _, caught = _summarize_recording(model, X, y)
    assert caught == []


def test_exactly_singular_information_still_raises():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    X = X[np.abs(X[:, 0]) > 0.5]
    y = (X[:, 0] > 0).astype(int)
    m = _Fitted()
    m.classes_, m.n_features_in_ = np.array([0, 1]), 2
    m.coef_ = np.array([[-2000.0, 0.0], [2000.0, 0.0]])        # probabilities exactly 0 / 1
    m.intercept_ = np.zeros(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=r"singular.*completely separated \(classes 0 and "
                                             r"1\), so the maximum-likelihood estimate does "
                                             r"not exist"):
            summarize(m, X, y)


def test_separated_fit_with_singular_information_names_the_pairs(iris):
    """A fit pushed far along the separating direction made the information matrix
    numerically singular, and the error said only '(cause not identified)'."""
    X, y = iris
    X2 = X[:, :2]                                   # setosa separated from the others
    model = SoftmaxRegression(penalty=None, tol=1e-12, max_iter=10000).fit(X2, y)
    with pytest.raises(ValueError, match=r"singular.*\(classes 0 and 1, 0 and 2\)"):
        summarize(model, X2, y)


@pytest.mark.parametrize("how", ["zero weight", "absent"])
def test_class_without_samples_is_named(iris, how):
    """A class of zero total weight was reported as 'separated' from the others."""
    X, y = iris
    if how == "zero weight":
        w = np.where(y == 2, 0.0, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = SoftmaxRegression(penalty=None, max_iter=3000).fit(X, y, sample_weight=w)
        args = dict(sample_weight=w)
    else:
        model = SoftmaxRegression(penalty=None).fit(X[:, :1], y)
        X, y, args = X[y != 2], y[y != 2], {}
        X = X[:, :1]
    with pytest.raises(ValueError, match=r"^summarize: class 2 of the model has no samples "
                                         r"\(of positive weight\) in y"):
        summarize(model, X, y, **args)


def test_large_weighted_counts_print_every_digit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + rng.logistic(size=300) > 0).astype(int)
    w = np.full(300, 4115.0)
    w[0] += 67                                               # 1,234,567 in all
    s = summarize(SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y, sample_weight=w), X, y,
                  sample_weight=w)
    assert "nobs=1234567," in repr(s)
    assert re.search(r"No. observations: +1234567\b", str(s))
    assert re.search(r"Df residuals: +1234564\b", str(s))
    w[0] += 0.5
    s = summarize(SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y, sample_weight=w), X, y,
                  sample_weight=w)
    assert "nobs=1234567.5," in repr(s)


# ------------------------------------------------------------ models summarize refuses
@pytest.mark.parametrize("penalty", ["l2", None])
def test_one_vs_rest_logistic_is_refused_with_a_type_error(penalty):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    Y = (X + rng.logistic(size=(200, 2)) > 0).astype(int)
    clf = OneVsRestLogistic(penalty=penalty).fit(X, Y)
    with pytest.raises(TypeError, match=r"summarize supports SoftmaxRegression.*got a "
                                        r"OneVsRestLogistic, a multi-label model"):
        summarize(clf, X, Y)
    with pytest.raises(TypeError, match="summarize supports SoftmaxRegression"):
        summarize(OneVsRestLogistic(), X, Y)                    # fitted or not


def test_numpy_scalars_print_as_plain_numbers(anes):
    X, y, res = anes
    m = _from_statsmodels(res, np.unique(y), X)
    cases = [
        (r"'alpha' parameter of summarize must be a float in \(0, 1\); got 1\.5\.$",
         lambda: summarize(m, X, y, alpha=np.float64(1.5))),
        (r"^reference_class 9 of summarize is not one of",
         lambda: summarize(m, X, y, reference_class=np.int64(9))),
        (r"penalty='l2', C=0\.5\. The standard errors",
         lambda: summarize(m.set_params(penalty=np.str_("l2"), C=np.float64(0.5)), X, y)),
    ]
    for match, call in cases:
        with pytest.raises(ValueError, match=match) as e:
            call()
        # no NumPy 2 scalar repr (np.float64(0.5)); the advice "C=np.inf" is fine
        assert not re.search(r"np\.(float|int|uint|str_|bool)", str(e.value)), str(e.value)
    m.set_params(penalty=None, C=1.0)
    cw = _from_statsmodels(res, np.unique(y), X)
    cw.class_weight = {np.float64(1.0): np.float64(2.0)}
    with pytest.raises(ValueError, match=r"class_weight=\{1\.0: 2\.0\}\.") as e:
        summarize(cw, X, y)
    assert "np." not in str(e.value)


def _binary_data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] + rng.logistic(size=n) > 0).astype(int)


def test_penalised_sklearn_logistic_regression_names_the_effective_penalty():
    # scikit-learn >= 1.8 sets penalty='deprecated' (a placeholder) and derives the
    # penalty from l1_ratio and C: the message names the penalty that was applied
    from sklearn.linear_model import LogisticRegression

    X, y = _binary_data()
    with pytest.raises(ValueError, match=r"LogisticRegression with penalty='l2'.*C=1\.0.*"
                                         r"Refit with .*C=np\.inf") as info:
        summarize(LogisticRegression().fit(X, y), X, y)
    assert "deprecated" not in str(info.value)
    for l1_ratio, name in [(1.0, "l1"), (0.5, "elasticnet")]:
        m = LogisticRegression(l1_ratio=l1_ratio, C=2.0)
        if m.get_params()["penalty"] != "deprecated":   # scikit-learn < 1.8
            m.set_params(penalty=name)
        m.coef_, m.intercept_, m.classes_ = np.zeros((1, 2)), np.zeros(1), np.array([0, 1])
        m.n_features_in_ = 2
        with pytest.raises(ValueError, match=rf"with penalty='{name}'.*C=2\.0"):
            summarize(m, X, y)
    # C=np.inf is the unpenalised fit, whatever the version
    s = summarize(LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y), X, y)
    ref = summarize(SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y), X, y)
    np.testing.assert_allclose(s.params, ref.params, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_X_equals_dense(fmt):
    # SoftmaxRegression trains on sparse X; summarize takes it too (densified: the
    # information matrix is dense anyway) and gives the dense call's results
    from scipy import sparse

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 4)) * (rng.random((300, 4)) < 0.5)
    y = (X @ rng.normal(size=(4, 3)) + rng.gumbel(size=(300, 3))).argmax(1)
    Xs = sparse.csr_matrix(X).asformat(fmt)
    model = SoftmaxRegression(penalty=None, tol=1e-10).fit(sparse.csr_matrix(X), y)
    a, b = summarize(model, Xs, y), summarize(model, X, y)
    for attr in ("params", "bse", "pvalues", "cov_params"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert (a.llf, a.llnull, a.nobs) == (b.llf, b.llnull, b.nobs)
    np.testing.assert_array_equal(a.margeff().margeff, b.margeff().margeff)
