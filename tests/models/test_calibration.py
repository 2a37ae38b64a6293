"""TemperatureScaler: exact temperature, calibration gains, oracles, errors."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

from softmaxkit import TemperatureScaler
from softmaxkit.metrics import expected_calibration_error, log_loss


def _sample(rng, z):
    """Labels drawn from softmax(z): z are the true, calibrated logits."""
    p = sp_softmax(z, axis=1)
    return (rng.random(len(z))[:, None] > np.cumsum(p, axis=1)).sum(1)


def _nll(T, z, y, w=None):
    lp = sp_log_softmax(z / T, axis=1)[np.arange(len(y)), y]
    return -np.average(lp, weights=w)


def _overconfident(seed=0, n=4000, K=5, factor=3.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.2, size=(n, K))
    return factor * z, _sample(rng, z)


def test_recovers_known_factor_and_halves_ece():
    z, y = _overconfident(factor=3.0)
    z_val, y_val, z_test, y_test = z[:2000], y[:2000], z[2000:], y[2000:]
    ts = TemperatureScaler().fit(z_val, y_val)
    assert abs(ts.temperature_ / 3.0 - 1) < 0.10
    before = expected_calibration_error(y_test, sp_softmax(z_test, axis=1))
    after = expected_calibration_error(y_test, ts.predict_proba(z_test))
    assert after < 0.5 * before
    assert log_loss(y_test, ts.predict_proba(z_test)) < log_loss(y_test, sp_softmax(z_test, 1))
    assert ts.nll_ == pytest.approx(_nll(ts.temperature_, z_val, y_val), rel=1e-12)
    assert ts.nll_uncalibrated_ == pytest.approx(_nll(1.0, z_val, y_val), rel=1e-12)
    assert ts.nll_ < ts.nll_uncalibrated_
    np.testing.assert_array_equal(ts.predict_proba(z_test).argmax(1), z_test.argmax(1))
    np.testing.assert_array_equal(ts.predict(z_test), z_test.argmax(1))


def test_temperature_is_the_exact_minimiser():
    z, y = _overconfident(seed=1, n=1500, K=4, factor=0.4)  # under-confident: T < 1
    ts = TemperatureScaler().fit(z, y)
    ref = minimize_scalar(lambda t: _nll(np.exp(t), z, y), bounds=(-4, 4), method="bounded",
                          options={"xatol": 1e-12})
    assert ts.temperature_ == pytest.approx(np.exp(ref.x), rel=1e-6)
    assert _nll(ts.temperature_, z, y) <= ref.fun + 1e-14
    # stationary: central difference of the NLL in log T vanishes
    h = 1e-5
    d = (_nll(ts.temperature_ * np.exp(h), z, y) - _nll(ts.temperature_ * np.exp(-h), z, y))
    assert abs(d / (2 * h)) < 1e-8
    assert ts.n_iter_ < 30


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 50), K=st.integers(2, 6),
       scale=st.floats(0.1, 20.0))
def test_property_no_better_temperature_nearby(seed, n, K, scale):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, K))
    y = rng.integers(0, K, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # optimum may sit at a bound
        ts = TemperatureScaler().fit(z, y)
    T = ts.temperature_
    assert 1e-2 <= T <= 1e2
    f = _nll(T, z, y)
    for r in (0.999, 1.001, 0.9, 1.1):
        Tr = T * r
        if 1e-2 <= Tr <= 1e2:
            assert f <= _nll(Tr, z, y) + 1e-12 * max(1.0, abs(f))


@pytest.mark.parametrize("K", [2, 4])
def test_matches_sklearn_calibrated_classifier_temperature(K):
    """Same probabilities; scikit-learn's beta_ is 1 / T for K >= 3 and 1 / (2 T)
    for two classes (it scales the binary decision function as (-x/2, x/2))."""
    sk_cal = pytest.importorskip("sklearn.calibration")
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n, d = 1200, 5
    X = rng.normal(size=(n, d))
    W = rng.normal(scale=1.5, size=(d, K))
    y = _sample(rng, X @ W)
    # a weakly regularised fit on few samples is over-confident
    lr = LogisticRegression(C=100.0).fit(X[:150], y[:150])
    X_val, y_val, X_test = X[150:800], y[150:800], X[800:]
    sk = sk_cal.CalibratedClassifierCV(FrozenEstimator(lr), method="temperature")
    sk.fit(X_val, y_val)
    beta = sk.calibrated_classifiers_[0].calibrators[0].beta_
    ts = TemperatureScaler().fit_estimator(lr, X_val, y_val)
    assert ts.temperature_ > 1.0
    assert ts.temperature_ == pytest.approx((0.5 if K == 2 else 1.0) / beta, rel=1e-6)
    np.testing.assert_allclose(ts.predict_proba(X_test), sk.predict_proba(X_test), atol=1e-7)


def test_fit_estimator_maps_labels_and_uses_decision_function():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y_idx = _sample(rng, 3 * X @ rng.normal(size=(3, 3)))
    names = np.array(["cat", "dog", "owl"])
    lr = LogisticRegression(C=50.0).fit(X[:100], names[y_idx[:100]])
    ts = TemperatureScaler().fit_estimator(lr, X[100:], names[y_idx[100:]])
    direct = TemperatureScaler().fit(lr.decision_function(X[100:]), y_idx[100:])
    assert ts.temperature_ == pytest.approx(direct.temperature_, rel=1e-12)
    np.testing.assert_allclose(ts.predict_proba(X[:7]),
                               sp_softmax(lr.decision_function(X[:7]) / ts.temperature_, 1),
                               rtol=1e-12)
    np.testing.assert_allclose(ts.predict_log_proba(X[:7]),
                               sp_log_softmax(lr.decision_function(X[:7]) / ts.temperature_, 1),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ts.predict(X), lr.predict(X))
    with pytest.raises(ValueError, match="'bird'.*not one of the model's classes_"):
        TemperatureScaler().fit_estimator(lr, X[:3], ["cat", "bird", "dog"])
    # refitting on plain logits forgets the estimator
    ts.fit(lr.decision_function(X[100:]), y_idx[100:])
    assert not hasattr(ts, "estimator_")


def test_binary_log_odds_equal_two_columns():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 2))
    y = (rng.random(500) < 1 / (1 + np.exp(-3 * X[:, 0]))).astype(int)
    x = 4.0 * (3 * X[:, 0])
    one = TemperatureScaler().fit(x, y)
    two = TemperatureScaler().fit(np.column_stack([np.zeros_like(x), x]), y)
    assert one.temperature_ == pytest.approx(two.temperature_, rel=1e-12)
    assert one.temperature_ == pytest.approx(4.0, rel=0.25)
    lr = LogisticRegression(C=1e4).fit(X[:60], y[:60])          # binary: 1-D decision_function
    ts = TemperatureScaler().fit_estimator(lr, X[60:], y[60:])
    p = ts.predict_proba(X)
    assert p.shape == (500, 2)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-lr.decision_function(X) /
                                                        ts.temperature_)), rtol=1e-12)


def test_sample_weight_equals_repetition():
    z, y = _overconfident(seed=5, n=300, K=3)
    w = np.random.default_rng(5).integers(0, 4, size=300)
    a = TemperatureScaler().fit(z, y, sample_weight=w)
    b = TemperatureScaler().fit(np.repeat(z, w, axis=0), np.repeat(y, w))
    assert a.temperature_ == pytest.approx(b.temperature_, rel=1e-10)
    assert a.nll_ == pytest.approx(b.nll_, rel=1e-10)


def test_float32_logits_and_log_proba():
    z, y = _overconfident(seed=6, n=500, K=3)
    a = TemperatureScaler().fit(z.astype(np.float32), y)
    b = TemperatureScaler().fit(z, y)
    assert a.temperature_ == pytest.approx(b.temperature_, rel=1e-5)
    lp = b.predict_log_proba(z)
    np.testing.assert_allclose(lp, sp_log_softmax(z / b.temperature_, axis=1), rtol=1e-12)


def test_constant_logits_give_unit_temperature():
    ts = TemperatureScaler().fit(np.ones((10, 3)), np.arange(10) % 3)
    assert ts.temperature_ == 1.0


def test_optimum_outside_bounds_warns_and_clips():
    z, y = _overconfident(seed=7, n=800, K=3, factor=3.0)
    with pytest.warns(UserWarning, match="outside bounds"):
        ts = TemperatureScaler(bounds=(0.1, 1.5)).fit(z, y)
    assert ts.temperature_ == pytest.approx(1.5)


@pytest.mark.parametrize("bounds,exc", [((0, 1), ValueError), ((2.0, 1.0), ValueError),
                                        ((1.0, np.inf), ValueError), ((1.0,), ValueError),
                                        (5.0, ValueError), (("a", 2), TypeError),
                                        ((-1.0, 2.0), ValueError)])
def test_bad_bounds(bounds, exc):
    z, y = _overconfident(n=20, K=3)
    with pytest.raises(exc, match="The 'bounds' parameter of TemperatureScaler must be"):
        TemperatureScaler(bounds=bounds).fit(z, y)


def test_bad_inputs():
    from sklearn.exceptions import NotFittedError

    z, y = _overconfident(n=20, K=3)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*got 3 at position 0"):
        TemperatureScaler().fit(z, np.r_[3, y[1:]])         # y has more classes than logits
    with pytest.raises(ValueError, match="19 entries but there are 20 rows"):
        TemperatureScaler().fit(z, y[:-1])
    with pytest.raises(ValueError, match="finite"):
        TemperatureScaler().fit(np.where(np.eye(20, 3) > 0, np.nan, z), y)
    with pytest.raises(ValueError, match="at least 2 columns"):
        TemperatureScaler().fit(z[:, :1], np.zeros(20, int))
    with pytest.raises(ValueError, match="2-D array"):
        TemperatureScaler().fit(z[None], y)
    with pytest.raises(ValueError, match="sample_weight"):
        TemperatureScaler().fit(z, y, sample_weight=-np.ones(20))
    with pytest.raises(NotFittedError):
        TemperatureScaler().predict_proba(z)
    ts = TemperatureScaler().fit(z, y)
    with pytest.raises(ValueError, match="has 4 columns but the scaler was fitted on 3 classes"):
        ts.predict_proba(np.zeros((2, 4)))
    with pytest.raises(NotFittedError):
        from sklearn.linear_model import LogisticRegression
        TemperatureScaler().fit_estimator(LogisticRegression(), z, y)


def test_fit_estimator_on_softmax_regression_matches_sklearn():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from softmaxkit import SoftmaxRegression

    rng = np.random.default_rng(8)
    n, d, K = 1500, 6, 3
    X = rng.normal(size=(n, d))
    y = _sample(rng, X @ rng.normal(size=(d, K)))
    model = SoftmaxRegression(penalty=None).fit(X[:120], y[:120])   # small fit: over-confident
    X_val, y_val, X_test, y_test = X[120:800], y[120:800], X[800:], y[800:]
    ts = TemperatureScaler().fit_estimator(model, X_val, y_val)
    assert ts.temperature_ > 1.0
    sk = CalibratedClassifierCV(FrozenEstimator(model), method="temperature").fit(X_val, y_val)
    assert ts.temperature_ == pytest.approx(1 / sk.calibrated_classifiers_[0].calibrators[0].beta_,
                                            rel=1e-6)
    np.testing.assert_allclose(ts.predict_proba(X_test), sk.predict_proba(X_test), atol=1e-7)
    p_raw = model.predict_proba(X_test)
    assert (expected_calibration_error(y_test, ts.predict_proba(X_test))
            < expected_calibration_error(y_test, p_raw))
    np.testing.assert_array_equal(ts.predict(X_test), model.predict(X_test))


def _mixed_logits(seed=0, n=200, K=3):
    # the review's reproducer: a third of the rows carry no information about y
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, K))
    y = z.argmax(1)
    z[::3] = rng.normal(size=z[::3].shape)
    return z, y


@pytest.mark.parametrize("scale", [1e-300, 1e-165, 1e-20, 1e20, 1e165, 1e300])
def test_extreme_bounds_and_logit_scales(scale):
    # softmax(z / T) depends on z / T only: scaling the logits and the bounds by the same
    # factor scales the fitted temperature by it, at any magnitude (the bisection's
    # sqrt(lo * hi) under/overflowed: ZeroDivisionError, T = 0; z**2 overflowed)
    z, y = _mixed_logits()
    ref = TemperatureScaler().fit(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = TemperatureScaler(bounds=(1e-2 * scale, 1e2 * scale)).fit(z * scale, y)
    assert ts.temperature_ == pytest.approx(ref.temperature_ * scale, rel=1e-9)
    assert ts.nll_ == pytest.approx(ref.nll_, rel=1e-9)
    assert ts.n_iter_ >= 1


def test_bounds_far_below_the_logits_scale():
    """Bounds whose inverse, in units of the largest logit, is past e^709 (math.exp
    overflowed): the whole range is in the one-hot regime, so T is the bound the
    NLL prefers, with the out-of-bounds warning."""
    z, y = _mixed_logits()
    with pytest.warns(UserWarning, match="outside bounds"):
        ts = TemperatureScaler(bounds=(1e-20, 1e-10)).fit(z * 1e300, y)
    assert ts.temperature_ == 1e-10


def test_widest_bounds():
    # any 0 < low < high < inf is allowed: the whole positive float range included
    z, y = _mixed_logits(seed=1)
    ref = TemperatureScaler().fit(z, y)
    tiny, huge = np.finfo(float).smallest_subnormal, np.finfo(float).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = TemperatureScaler(bounds=(tiny, huge)).fit(z, y)
        assert ts.temperature_ == pytest.approx(ref.temperature_, rel=1e-9)
        # separable data: the optimum is T -> 0, clipped to the (subnormal) low bound
        zs = np.eye(3)[np.arange(30) % 3] * 5.0
        with pytest.warns(UserWarning, match="outside bounds"):
            sep = TemperatureScaler(bounds=(tiny, huge)).fit(zs, np.arange(30) % 3)
    assert sep.temperature_ == tiny
    np.testing.assert_array_equal(sep.predict_proba(zs[:3]), np.eye(3))


def test_fit_estimator_labels_of_another_type():
    # labels mixing strings and numbers cannot be ordered: a clear ValueError as in
    # summarize, not NumPy's "'<' not supported between instances of 'int' and 'str'"
    from softmaxkit import SoftmaxRegression

    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    model = SoftmaxRegression().fit(X, y)
    mixed = np.array(["a" if v else 0 for v in y], dtype=object)
    with pytest.raises(ValueError, match=r"y_val of TemperatureScaler holds labels of another "
                                         r"type than the model's classes_ \[0, 1\]"):
        TemperatureScaler().fit_estimator(model, X, mixed)
    with pytest.raises(ValueError, match=r"y_val of TemperatureScaler holds the label 'a' "
                                         r"\(position 0\).*classes_ \[0, 1\]"):
        TemperatureScaler().fit_estimator(model, X[:2], ["a", "b"])


@pytest.mark.parametrize("dtype", ["Float64", "Float32", "Int64"])
def test_pandas_nullable_logits(dtype):
    pd = pytest.importorskip("pandas")
    z, y = _mixed_logits(seed=2)
    z = np.round(z * 4)                       # integral, so Int64 holds them exactly
    z_np = z.astype(np.float32 if dtype == "Float32" else np.float64)
    ref = TemperatureScaler().fit(z_np, y)
    ts = TemperatureScaler().fit(pd.DataFrame(z).astype(dtype), y)
    assert ts.temperature_ == ref.temperature_
    np.testing.assert_array_equal(ts.predict_proba(pd.DataFrame(z[:5]).astype(dtype)),
                                  ref.predict_proba(z_np[:5]))
    ts1 = TemperatureScaler().fit(pd.Series(z[:, 1] - z[:, 0]).astype(dtype), y == 1)
    assert ts1.temperature_ == pytest.approx(
        TemperatureScaler().fit(z[:, 1] - z[:, 0], y == 1).temperature_, rel=1e-6)


def test_logits_with_missing_values_or_not_numeric():
    pd = pytest.importorskip("pandas")
    from scipy import sparse

    z, y = _mixed_logits(seed=3)
    frame = pd.DataFrame(z).astype("Float64")
    frame.iloc[4, 1] = pd.NA
    with pytest.raises(ValueError, match=r"logits of TemperatureScaler holds a missing value "
                                         r"\(pd.NA\) at row 4, column 1"):
        TemperatureScaler().fit(frame, y)
    with pytest.raises(TypeError, match="logits of TemperatureScaler must be a real numeric "
                                        "array; got dtype object"):
        TemperatureScaler().fit(z.astype(str).astype(object), y)
    with pytest.raises(TypeError, match="logits of TemperatureScaler must be a dense array; got "
                                        "a scipy.sparse"):
        TemperatureScaler().fit(sparse.csr_matrix(z), y)


def test_fit_estimator_refuses_multi_label_models():
    # per-label log-odds of independent logistic models are not softmax logits
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from softmaxkit import OneVsRestLogistic

    rng = np.random.default_rng(10)
    X = rng.normal(size=(100, 2))
    Y = (X + rng.logistic(size=(100, 2)) > 0).astype(int)
    ovr = OneVsRestLogistic().fit(X, Y)
    with pytest.raises(TypeError, match=r"got a OneVsRestLogistic, a multi-label model.*"
                                        r"TemperatureScaler\(\)\.fit\(model\.decision_function"):
        TemperatureScaler().fit_estimator(ovr, X, Y.argmax(1))
    sk = OneVsRestClassifier(LogisticRegression()).fit(X, Y)
    with pytest.raises(TypeError, match="got a OneVsRestClassifier, a multi-label model"):
        TemperatureScaler().fit_estimator(sk, X, Y.argmax(1))
    # the same wrapper fitted on exclusive classes is a multiclass model: accepted
    sk_multiclass = OneVsRestClassifier(LogisticRegression()).fit(X, Y.sum(1))
    assert TemperatureScaler().fit_estimator(sk_multiclass, X, Y.sum(1)).n_classes_ == 3
    # the per-label calibration the message suggests works
    ts = TemperatureScaler().fit(ovr.decision_function(X)[:, 1], Y[:, 1])
    assert ts.n_classes_ == 2
