"""OneVsRestLogistic against scikit-learn's OneVsRestClassifier(LogisticRegression)."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from softmaxkit import OneVsRestLogistic


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(n_samples=300, n_features=6, n_classes=4,
                                          n_labels=2, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    return X, Y


def _sk(C, **kw):
    return OneVsRestClassifier(LogisticRegression(C=C, tol=1e-12, max_iter=10000, **kw))


@pytest.mark.parametrize("C", [0.05, 1.0, 30.0])
def test_probabilities_equal_sklearn_ovr(data, C):
    X, Y = data
    ours = OneVsRestLogistic(C=C, tol=1e-10).fit(X, Y)
    ref = _sk(C).fit(X, Y)
    assert ours.predict_proba(X).shape == (300, 4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(ours.coef_, np.vstack([e.coef_ for e in ref.estimators_]),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_l1_and_no_penalty_equal_sklearn(data):
    X, Y = data
    ours = OneVsRestLogistic(C=0.1, penalty="l1", tol=1e-10).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # sklearn 1.8 'penalty' deprecation
        ref = _sk(0.1, l1_ratio=1.0, solver="saga").fit(X, Y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    assert np.sum(ours.coef_ == 0) == np.sum(np.abs(np.vstack(
        [e.coef_ for e in ref.estimators_])) < 1e-8) > 0           # same sparsity pattern
    ours = OneVsRestLogistic(penalty=None, tol=1e-10).fit(X[:, :2], Y)
    ref = _sk(np.inf).fit(X[:, :2], Y)
    np.testing.assert_allclose(ours.predict_proba(X[:, :2]), ref.predict_proba(X[:, :2]),
                               atol=1e-5)


@pytest.mark.parametrize("l1_ratio", [0.3, 0.8])
def test_elasticnet_equals_sklearn(data, l1_ratio):
    """Each label's two-class fit with C / (2 - r) and l1_ratio r / (2 - r) is the
    binary elastic-net fit with (C, r): same probabilities and zeros as saga."""
    X, Y = data
    ours = OneVsRestLogistic(C=0.1, penalty="elasticnet", l1_ratio=l1_ratio,
                             tol=1e-10).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # sklearn 1.8 'penalty' deprecation
        ref = _sk(0.1, penalty="elasticnet", l1_ratio=l1_ratio, solver="saga").fit(X, Y)
    ref_coef = np.vstack([e.coef_ for e in ref.estimators_])
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(ours.coef_, ref_coef, atol=1e-4)
    assert np.sum(ours.coef_ == 0) == np.sum(np.abs(ref_coef) < 1e-8) > 0
    # the two limits are the l1 and l2 fits
    for r, penalty in ((1.0, "l1"), (0.0, "l2")):
        a = OneVsRestLogistic(C=0.1, penalty="elasticnet", l1_ratio=r, tol=1e-10).fit(X, Y)
        b = OneVsRestLogistic(C=0.1, penalty=penalty, tol=1e-10).fit(X, Y)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)


def test_no_intercept_and_sample_weight_equal_per_label_sklearn(data):
    X, Y = data
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=len(X))
    ours = OneVsRestLogistic(C=2.0, fit_intercept=False, tol=1e-10).fit(X, Y, sample_weight=w)
    assert np.all(ours.intercept_ == 0)
    for j in range(Y.shape[1]):
        ref = LogisticRegression(C=2.0, fit_intercept=False, tol=1e-12, max_iter=10000)
        ref.fit(X, Y[:, j], sample_weight=w)
        np.testing.assert_allclose(ours.predict_proba(X)[:, j], ref.predict_proba(X)[:, 1],
                                   atol=1e-5)


def test_sparse_dataframe_and_fitted_state(data):
    pd = pytest.importorskip("pandas")
    X, Y = data
    dense = OneVsRestLogistic(tol=1e-10).fit(X, Y)
    sp = OneVsRestLogistic(tol=1e-10).fit(sparse.csr_matrix(X), sparse.csr_matrix(Y))
    np.testing.assert_allclose(sp.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X),
                               atol=1e-8)
    Xf = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    Yf = pd.DataFrame(Y, columns=["rock", "jazz", "vocal", "live"])
    named = OneVsRestLogistic(tol=1e-10).fit(Xf, Yf)
    assert list(named.classes_) == ["rock", "jazz", "vocal", "live"]
    assert list(named.feature_names_in_) == list(Xf.columns)
    np.testing.assert_array_equal(dense.classes_, np.arange(4))
    assert dense.n_iter_.shape == (4,) and dense.n_iter_.dtype.kind == "i"
    # contract 5: get_params + fitted arrays rebuild an identical predictor
    clone = OneVsRestLogistic(**dense.get_params())
    for a in ["coef_", "intercept_", "classes_", "n_features_in_", "n_iter_"]:
        setattr(clone, a, getattr(dense, a))
    np.testing.assert_array_equal(clone.predict_proba(X), dense.predict_proba(X))


def test_predict_threshold_and_log_proba(data):
    X, Y = data
    clf = OneVsRestLogistic(C=1e3).fit(X, Y)
    P = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict(X, threshold=0.2), (P > 0.2).astype(int))
    np.testing.assert_array_equal(clf.predict(X, threshold=1.0), 0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P), rtol=1e-10)
    # far from the boundary log-probabilities stay finite (no log(0))
    far = clf.predict_log_proba(1e4 * X[:5])
    assert np.all(np.isfinite(far))
    np.testing.assert_allclose(clf.decision_function(X), X @ clf.coef_.T + clf.intercept_)


@pytest.mark.parametrize("Y_bad,match", [
    (lambda Y: np.where(Y == 1, 2, 0), r"only 0 and 1.*got 2 at row \d+, column \d+"),
    (lambda Y: Y * 0.5, "continuous"),
    (lambda Y: Y[:, 0], "2-D"),
    (lambda Y: Y[:-1], "299 rows but X has 300"),
    (lambda Y: np.where(Y == 1, "a", "b"), "Unknown label type"),
    (lambda Y: np.column_stack([Y[:, :2], np.zeros(len(Y))]), r"Label column 2 .*only 0s"),
    (lambda Y: np.where(np.eye(len(Y), Y.shape[1]) > 0, np.nan, Y), "contains NaN"),
    (lambda Y: None, "requires y to be passed"),
    (lambda Y: [tuple(np.flatnonzero(r)) for r in Y], "rows of different lengths .*"
                                                      "MultiLabelBinarizer"),
])
def test_bad_y(data, Y_bad, match):
    X, Y = data
    with pytest.raises(ValueError, match=match):
        OneVsRestLogistic().fit(X, Y_bad(Y))


def test_bad_params_and_state(data):
    X, Y = data
    with pytest.raises(ValueError, match="The 'C' parameter of OneVsRestLogistic must be"):
        OneVsRestLogistic(C=-1.0).fit(X, Y)
    with pytest.raises(ValueError, match="The 'penalty' parameter of OneVsRestLogistic"):
        OneVsRestLogistic(penalty="l3").fit(X, Y)
    with pytest.raises(TypeError, match="The 'l1_ratio' parameter of OneVsRestLogistic"):
        OneVsRestLogistic(penalty="elasticnet").fit(X, Y)   # None, as SoftmaxRegression
    with pytest.raises(ValueError, match="The 'l1_ratio' parameter of OneVsRestLogistic"):
        OneVsRestLogistic(penalty="elasticnet", l1_ratio=1.5).fit(X, Y)
    with pytest.raises(ValueError, match="'prox-newton' for penalty='elasticnet'"):
        OneVsRestLogistic(penalty="elasticnet", l1_ratio=0.5, solver="newton-cg").fit(X, Y)
    with pytest.raises(ValueError, match="The 'solver' parameter of OneVsRestLogistic"):
        OneVsRestLogistic(solver="sag").fit(X, Y)
    with pytest.raises(ValueError, match="'prox-newton' for penalty='l1'"):
        OneVsRestLogistic(penalty="l1", solver="lbfgs").fit(X, Y)
    with pytest.raises(NotFittedError):
        OneVsRestLogistic().predict(X)
    clf = OneVsRestLogistic().fit(X, Y)
    with pytest.raises(ValueError, match="The 'threshold' parameter"):
        clf.predict(X, threshold=1.5)
    with pytest.raises(ValueError, match="6 features"):
        clf.predict(X[:, :5])


def test_numpy_scalar_parameters_print_as_plain_numbers(data):
    """NumPy 2 reprs scalars as np.float64(-1.0); messages must show -1.0."""
    import pandas as pd

    X, Y = data
    cases = [
        (ValueError, r"'C' parameter.*got -1\.0\.$", dict(C=np.float64(-1.0))),
        (ValueError, r"'penalty' parameter.*got 'l3'\.$", dict(penalty=np.str_("l3"))),
        (ValueError, r"'l1_ratio' parameter.*got 1\.5\.$",
         dict(penalty="elasticnet", l1_ratio=np.float64(1.5))),
        (TypeError, r"'fit_intercept' parameter.*a bool; got 1\.$",
         dict(fit_intercept=np.int64(1))),
        (ValueError, r"'prox-newton' for penalty='l1'; got 'lbfgs'\.$",
         dict(penalty=np.str_("l1"), solver=np.str_("lbfgs"))),
        (ValueError, r"'tol' parameter.*got -1\.0\.$", dict(tol=np.float64(-1.0))),
        (ValueError, r"'max_iter' parameter.*got -1\.$", dict(max_iter=np.int64(-1))),
    ]
    for exc, match, params in cases:
        with pytest.raises(exc, match=match) as e:
            OneVsRestLogistic(**params).fit(X, Y)
        assert "np." not in str(e.value), str(e.value)
    clf = OneVsRestLogistic().fit(X, Y)
    with pytest.raises(ValueError, match=r"'threshold' parameter.*got 1\.5\.$") as e:
        clf.predict(X, threshold=np.float64(1.5))
    assert "np." not in str(e.value)
    # integer DataFrame column names are NumPy integers
    Yf = pd.DataFrame(np.column_stack([Y[:, :3], np.zeros(len(Y))]), columns=[10, 11, 12, 13])
    with pytest.raises(ValueError, match=r"Label column 3 \(13\) of y holds only 0s") as e:
        OneVsRestLogistic().fit(X, Yf)
    assert "np." not in str(e.value)


_SINGLE_OUTPUT = ("assumes a single-output classifier: it fits on a 1-D or multiclass y "
                  "(values other than 0/1) or expects predict to return shape (n_samples,); "
                  "OneVsRestLogistic requires an (n, L) 0/1 indicator matrix")


def _expected_failed(est):
    names = ["check_estimators_dtypes", "check_sample_weights_pandas_series",
             "check_sample_weights_not_an_array", "check_sample_weights_shape",
             "check_sample_weights_not_overwritten", "check_estimator_sparse_array",
             "check_estimator_sparse_matrix", "check_classifier_data_not_an_array",
             "check_classifiers_classes", "check_classifiers_train",
             "check_decision_proba_consistency", "check_fit2d_1feature"]
    return {n: _SINGLE_OUTPUT for n in names}


@parametrize_with_checks([OneVsRestLogistic()], expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("dtype", ["Int64", "boolean", "Float64", "UInt8"])
def test_pandas_nullable_indicator_matrix(data, dtype):
    # as scikit-learn's OneVsRestClassifier(LogisticRegression()): a nullable 0/1 frame
    # without missing values is the same matrix (was "Unknown label type ... dtype object")
    pd = pytest.importorskip("pandas")
    X, Y = data
    frame = pd.DataFrame(Y, columns=["a", "b", "c", "d"])
    ref = OneVsRestLogistic().fit(X, frame)
    ours = OneVsRestLogistic().fit(X, frame.astype(dtype))
    np.testing.assert_array_equal(ours.classes_, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(ours.coef_, ref.coef_)
    np.testing.assert_array_equal(ours.intercept_, ref.intercept_)
    assert np.array_equal(OneVsRestLogistic().fit(X, frame["b"].astype(dtype).to_frame()).coef_,
                          ref.coef_[1:2])


def test_pandas_nullable_indicator_matrix_with_missing_values(data):
    pd = pytest.importorskip("pandas")
    X, Y = data
    frame = pd.DataFrame(Y, columns=["a", "b", "c", "d"]).astype("Int64")
    frame.iloc[5, 2] = pd.NA
    with pytest.raises(ValueError, match=r"y of OneVsRestLogistic holds a missing value "
                                         r"\(pd.NA\) at row 5, column 2 \('c'\)"):
        OneVsRestLogistic().fit(X, frame)


@pytest.mark.parametrize("which", ["0s", "1s"])
def test_label_constant_after_weighting_is_refused(which):
    """Unweighted counts only were checked: a label whose positives all had weight 0
    fitted silently, its intercept drifting to -23."""
    X, Y = make_multilabel_classification(n_samples=200, n_features=5, n_classes=3,
                                          random_state=1)
    w = np.ones(200)
    w[Y[:, 1] == (1 if which == "0s" else 0)] = 0.0
    with pytest.raises(ValueError, match=rf"Label column 1 \(1\) of y holds only {which} among "
                                         r"the samples of positive weight"):
        OneVsRestLogistic().fit(X, Y, sample_weight=w)
    # a zero weight on some rows of each kind is fine, and equals dropping them
    w = np.ones(200)
    w[:20] = 0.0
    a = OneVsRestLogistic().fit(X, Y, sample_weight=w)
    b = OneVsRestLogistic().fit(X[20:], Y[20:])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("code", [(-1, 1), (2, 5)])
def test_two_valued_labels_coded_otherwise_get_a_recode_hint(code):
    """{-1, 1} labels were said to have 'more than two classes'."""
    X, Y = make_multilabel_classification(n_samples=50, n_features=3, n_classes=2,
                                          random_state=0)
    with pytest.raises(ValueError, match=r"two classes, coded otherwise: recode them as 0/1"):
        OneVsRestLogistic().fit(X, np.where(Y == 1, code[1], code[0]))
    Y3 = Y.copy()
    Y3[0, 0] = 2                                 # 0, 1 and 2: really more than two
    with pytest.raises(ValueError, match=r"got 2 at row 0, column 0 \(more than two classes\)"):
        OneVsRestLogistic().fit(X, Y3)


def test_label_without_negatives_of_positive_weight_is_refused_despite_rounding():
    """The negatives were sum(w) - w @ Y: rounding left ~4e-16 when every negative
    had weight 0, and the label was fitted (intercept 21) or refused by the binary
    model's message instead of this one."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(34, 3))
    seen = 0
    for _ in range(50):
        w = rng.uniform(0, 1, 34)
        Y = np.ones((34, 1))
        Y[:3, 0] = 0.0
        w[:3] = 0.0                                    # the negatives weigh nothing
        seen += float(w.sum() - w @ Y[:, 0]) != 0.0    # where the old rule missed it
        with pytest.raises(ValueError, match=r"Label column 0 \(0\) of y holds only 1s among "
                                             r"the samples of positive weight"):
            OneVsRestLogistic().fit(X, Y, sample_weight=w)
    assert seen > 0                                    # the case the old rule missed occurs
