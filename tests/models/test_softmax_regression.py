"""SoftmaxRegression against scikit-learn and statsmodels."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_softmax, softmax
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from softmaxkit.models import SoftmaxRegression
from softmaxkit.solvers import on_iteration


def objective(coef, intercept, X, y, sample_weight=None, *, C=1.0, penalty="l2",
              l1_ratio=None):
    """scikit-learn's objective, computed the same way for any fitted model:
    C * sum_i s_i CE_i + penalty(W) (no C and no penalty when penalty is None)."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    Z = X @ np.asarray(coef, dtype=np.float64).T + np.asarray(intercept, dtype=np.float64)
    L = log_softmax(Z, axis=1)
    y = np.asarray(y)
    ce = -(y * L).sum(1) if y.ndim == 2 else -L[np.arange(len(y)), y]
    s = np.ones(len(ce)) if sample_weight is None else np.asarray(sample_weight, float)
    data = float(s @ ce)
    W = np.asarray(coef, dtype=np.float64)
    if penalty is None:
        return data
    r = {"l2": 0.0, "l1": 1.0}.get(penalty, l1_ratio)
    return C * data + r * np.abs(W).sum() + 0.5 * (1 - r) * (W * W).sum()


def _synthetic(n=400, d=6, K=4, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    W = rng.standard_normal((K, d))
    Z = X @ W.T / scale
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random((n, 1))).argmax(1)
    return X, y


class _SingleThreaded:
    """scikit-learn's reference fit with one BLAS/OpenMP thread (the shared test
    machine is small; threads only add contention at these sizes)."""

    def __init__(self, est):
        self.est = est

    def fit(self, *args, **kw):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self.est.fit(*args, **kw)


def _sk(C=1.0, **kw):
    return _SingleThreaded(LogisticRegression(C=C, solver="newton-cg", tol=1e-10,
                                              max_iter=10000, **kw))


@parametrize_with_checks([SoftmaxRegression()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("data,C", [("iris", 0.1), ("iris", 10.0), ("digits", 0.1),
                                    ("synthetic", 0.1), ("synthetic", 10.0)])
def test_matches_sklearn_newton_cg(data, C):
    if data == "iris":
        X, y = load_iris(return_X_y=True)
    elif data == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = _synthetic()
    ours = SoftmaxRegression(C=C, tol=1e-10).fit(X, y)
    ref = _sk(C).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, C=C)
    f_ref = objective(ref.coef_, ref.intercept_, X, y, C=C)
    assert f_ours <= f_ref + 1e-9
    assert ours.coef_.shape == (len(np.unique(y)), X.shape[1])
    # loss_curve_ is the objective in scikit-learn's scale, ending at the optimum
    assert ours.loss_curve_.shape == (ours.n_iter_ + 1,)
    assert ours.loss_curve_[-1] == pytest.approx(f_ours, rel=1e-10)
    assert np.all(np.diff(ours.loss_curve_) <= 1e-9 * abs(f_ours))


@pytest.mark.parametrize("solver", ["newton-cg", "newton-cholesky", "lbfgs", "prox-newton"])
@pytest.mark.parametrize("penalty", ["l2", None])
def test_every_solver_reaches_the_same_optimum(solver, penalty):
    X, y = _synthetic(n=300, d=4, K=3, seed=1)
    tol = 1e-7 if solver == "lbfgs" else 1e-10
    ours = SoftmaxRegression(penalty=penalty, C=0.5, solver=solver, tol=tol).fit(X, y)
    ref = SoftmaxRegression(penalty=penalty, C=0.5, solver="newton-cholesky",
                            tol=1e-12).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_integer_sample_weights_equal_repeated_rows():
    X, y = _synthetic(n=120, seed=2)
    w = np.random.default_rng(3).integers(0, 4, len(y))
    a = SoftmaxRegression(tol=1e-10).fit(X, y, sample_weight=w)
    b = SoftmaxRegression(tol=1e-10).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-7, atol=1e-9)


def test_class_weight_balanced_equals_sklearn():
    X, y = _synthetic(n=300, seed=4)
    keep = (y != 0) | (np.arange(len(y)) % 4 == 0)  # make class 0 rare
    X, y = X[keep], y[keep]
    ours = SoftmaxRegression(class_weight="balanced", tol=1e-10).fit(X, y)
    ref = _sk(class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    cw = {0: 3.0, 2: 0.5}
    ours = SoftmaxRegression(class_weight=cw, tol=1e-10).fit(X, y)
    ref = _sk(class_weight=cw).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_class_weight_balanced_with_sample_weights_equals_sklearn_and_repeated_rows():
    """'balanced' counted classes without the sample weights (scikit-learn >= 1.6
    counts them): probabilities 0.06 off, and integer weights no longer equal
    repeated rows."""
    X, y = _synthetic(n=300, seed=4)
    keep = (y != 0) | (np.arange(len(y)) % 4 == 0)
    X, y = X[keep], y[keep]
    w = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
    w[y == 0] *= 3                                  # the weights change the class totals
    ours = SoftmaxRegression(class_weight="balanced", tol=1e-10).fit(X, y, sample_weight=w)
    ref = _sk(class_weight="balanced").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    rep = np.repeat(np.arange(len(y)), w.astype(int))
    again = SoftmaxRegression(class_weight="balanced", tol=1e-10).fit(X[rep], y[rep])
    np.testing.assert_allclose(ours.predict_proba(X), again.predict_proba(X), atol=1e-8)
    soft = SoftmaxRegression(class_weight="balanced", tol=1e-10).fit(
        X, np.eye(4)[y], sample_weight=w)               # one-hot targets: the same fit
    np.testing.assert_allclose(soft.predict_proba(X), ours.predict_proba(X), atol=1e-8)
    w0 = np.where(y == 0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"class_weight='balanced' needs samples of positive "
                                         r"weight in every class; class 0 has none"):
        SoftmaxRegression(class_weight="balanced").fit(X, y, sample_weight=w0)


@pytest.mark.parametrize("soft", [False, True])
def test_class_weight_keys_that_are_no_class_are_refused(soft):
    """With soft targets unknown keys were ignored; with labels scikit-learn's
    message named the classes, not the bad key."""
    X, y = _synthetic(n=100, seed=4)
    target = np.eye(4)[y] if soft else y
    with pytest.raises(ValueError, match=r"^class_weight has keys that are not classes of y: "
                                         r"7, 'x' \(the classes are \[0, 1, 2, 3\]\)\.$"):
        SoftmaxRegression(class_weight={0: 2.0, 7: 100.0, "x": 5.0}).fit(X, target)
    with pytest.raises(ValueError, match=r"^class_weight has a key that is not a class of y: 9"):
        SoftmaxRegression(class_weight={9: 1.0}).fit(X, target)


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_equals_dense(fmt):
    X, y = _synthetic(n=300, d=10, seed=5)
    X[np.abs(X) < 0.8] = 0
    a = SoftmaxRegression(tol=1e-10).fit(X, y)
    b = SoftmaxRegression(tol=1e-10).fit(fmt(X), y)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-8)
    np.testing.assert_allclose(b.predict_proba(fmt(X)), a.predict_proba(X), atol=1e-10)


def _spy_on_pool(monkeypatch, threads):
    """Make softmaxkit's thread budget ``threads``; returns the list that records
    ``(tasks, BLAS threads)`` of every ``_pool.run_tasks`` call."""
    from threadpoolctl import threadpool_info

    import softmaxkit._pool as pool

    monkeypatch.setattr(pool, "max_threads", lambda: threads)
    seen = []
    orig = pool.run_tasks

    def spy(fn, tasks):
        seen.append((len(tasks), max(i["num_threads"] for i in threadpool_info()
                                     if i["user_api"] == "blas")))
        return orig(fn, tasks)

    monkeypatch.setattr(pool, "run_tasks", spy)
    return seen


def test_sparse_fit_runs_scipy_products_on_blas_thread_budget(monkeypatch):
    """A large sparse fit takes BLAS's thread budget for SciPy's products (row
    blocks on softmaxkit's pool) and runs BLAS itself in one thread; the optimum is
    the one-thread one."""
    import softmaxkit.losses._linear as lin_mod
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=300, d=10, seed=5)
    X[np.abs(X) < 0.8] = 0
    Xs = sp.csr_matrix(X)
    ref = SoftmaxRegression(tol=1e-10).fit(Xs, y)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)
    monkeypatch.setattr(lin_mod, "_SPARSE_PARALLEL_NNZ", 100)
    seen = _spy_on_pool(monkeypatch, 3)
    ours = SoftmaxRegression(tol=1e-10).fit(Xs, y)
    assert seen and all(tasks == 3 and blas == 1 for tasks, blas in seen)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)
    # dense data below _DENSE_PARALLEL_SIZE: no row blocks
    seen.clear()
    SoftmaxRegression(tol=1e-10).fit(X, y)
    assert seen == []


@pytest.mark.parametrize("solver, blocks", [("newton-cg", True), ("lbfgs", True),
                                            ("newton-cholesky", False)])
def test_dense_fit_runs_products_on_row_blocks(monkeypatch, solver, blocks):
    """A large dense fit by a solver of products (Newton-CG, L-BFGS) runs them on
    one row block per thread with BLAS in one thread; the optimum is the
    one-thread one.  Newton-Cholesky keeps multithreaded BLAS (its explicit
    Hessian is one large product)."""
    import softmaxkit.losses._linear as lin_mod
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=400, d=10, seed=7)
    tol = 1e-8 if solver == "lbfgs" else 1e-10
    ref = SoftmaxRegression(solver=solver, tol=tol).fit(X, y)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)
    monkeypatch.setattr(lin_mod, "_DENSE_PARALLEL_SIZE", 100)
    seen = _spy_on_pool(monkeypatch, 3)
    ours = SoftmaxRegression(solver=solver, tol=tol).fit(X, y)
    if blocks:
        assert seen and all(tasks == 3 and blas == 1 for tasks, blas in seen)
    else:
        assert seen == []
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)


def test_thread_pool_runs_every_task_and_raises_their_errors():
    from softmaxkit._pool import run_tasks

    out = [None] * 5

    def put(i, fail):
        out[i] = i * i
        if fail:
            raise ValueError(f"task {i} failed")
        return i

    assert run_tasks(put, [(i, False) for i in range(5)]) == [0, 1, 2, 3, 4]
    out[:] = [None] * 5
    with pytest.raises(ValueError, match="task 3 failed"):
        run_tasks(put, [(i, i == 3) for i in range(5)])
    assert out == [0, 1, 4, 9, 16]  # every task ran to its end before the raise


def test_one_hot_soft_targets_equal_labels_and_soft_targets_optimum():
    X, y = _synthetic(n=200, seed=6)
    a = SoftmaxRegression(tol=1e-10).fit(X, y)
    b = SoftmaxRegression(tol=1e-10).fit(X, np.eye(4)[y])
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-8)
    np.testing.assert_array_equal(b.classes_, np.arange(4))
    # general soft targets: the gradient of the objective vanishes at the fit
    P = np.random.default_rng(7).dirichlet(np.ones(4), size=len(y))
    m = SoftmaxRegression(C=2.0, tol=1e-10).fit(X, P)
    Z = X @ m.coef_.T + m.intercept_
    Q = np.exp(log_softmax(Z, axis=1))
    gW = 2.0 * (Q - P).T @ X + m.coef_
    gb = 2.0 * (Q - P).sum(0)
    assert np.max(np.abs(gW)) < 1e-6 and np.max(np.abs(gb)) < 1e-6


def test_two_classes_equal_binomial_logistic_with_2C():
    X, y = _synthetic(n=300, K=2, seed=8)
    ours = SoftmaxRegression(C=0.7, tol=1e-10).fit(X, y)
    ref = _sk(1.4).fit(X, y)
    assert ours.coef_.shape == (2, X.shape[1])
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(ours.coef_[1] - ours.coef_[0], ref.coef_[0], atol=1e-6)
    # decision_function follows scikit-learn's binary convention
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X),
                               atol=1e-6)


def test_two_classes_with_l1_equal_binary_l1_with_C():
    """The documented two-class rule for l1: the rows w/2, -w/2 have l1 norm
    ||w||_1, so C stays C (the docstring said 2C for every penalty)."""
    from sklearn.linear_model import LogisticRegression

    X, y = _synthetic(n=300, K=2, seed=8)
    X = (X - X.mean(0)) / X.std(0)
    ours = SoftmaxRegression(penalty="l1", C=0.1, tol=1e-10).fit(X, y)
    for C, close in ((0.1, True), (0.2, False)):
        ref = LogisticRegression(l1_ratio=1.0, C=C, solver="saga", tol=1e-12,
                                 max_iter=100_000).fit(X, y)
        gap = np.abs(ours.predict_proba(X) - ref.predict_proba(X)).max()
        assert (gap < 1e-6) if close else (gap > 1e-2), (C, gap)


@pytest.mark.parametrize("penalty,l1_ratio", [("l1", None), ("elasticnet", 0.5)])
def test_l1_and_elasticnet_equal_saga(penalty, l1_ratio):
    X, y = _synthetic(n=200, d=8, K=3, seed=9)
    X = (X - X.mean(0)) / X.std(0)
    C = 0.05
    ours = SoftmaxRegression(penalty=penalty, l1_ratio=l1_ratio, C=C, tol=1e-10).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ref = _SingleThreaded(LogisticRegression(
            solver="saga", C=C, l1_ratio=1.0 if penalty == "l1" else 0.5, tol=1e-10,
            max_iter=100000)).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)
    kw = dict(C=C, penalty=penalty, l1_ratio=l1_ratio)
    assert objective(ours.coef_, ours.intercept_, X, y, **kw) <= objective(
        ref.coef_, ref.intercept_, X, y, **kw) + 1e-9
    zeros = ours.coef_ == 0
    assert zeros.sum() >= 3  # exact zeros
    np.testing.assert_array_equal(zeros, np.abs(ref.coef_) < 1e-6)


def test_float32_trains_in_float32_close_to_float64():
    X, y = _synthetic(n=500, d=8, seed=10)
    a = SoftmaxRegression().fit(X, y)
    b = SoftmaxRegression().fit(X.astype(np.float32), y)
    assert b.coef_.dtype == np.float32
    assert b.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-4)
    np.testing.assert_allclose(b.intercept_, a.intercept_, atol=1e-4)


@pytest.mark.parametrize("solver", ["auto", "newton-cholesky", "newton-cg"])
@pytest.mark.parametrize("C", [1.0, 100.0])
def test_float32_iris_matches_float64(solver, C):
    """Unscaled iris in float32, where the explicit Newton solve once divided the
    float32 rounding of the intercepts' gradient along their common shift (a flat
    direction) by ~0: a 1e8 shift, 1000 iterations and 48 of 150 labels changed
    at C=100."""
    X, y = load_iris(return_X_y=True)
    a = SoftmaxRegression(C=C, tol=1e-10).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        b = SoftmaxRegression(C=C, solver=solver).fit(X.astype(np.float32), y)
    assert b.n_iter_ <= 30
    np.testing.assert_array_equal(b.predict(X), a.predict(X))
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-4)


def test_intercept_shift_is_flat_in_gradient_and_curved_in_hessian():
    """The intercepts' common shift changes nothing: the objective's gradient has no
    component along it (rounding removed) and its explicit Hessian is made
    positive definite along it without changing any step orthogonal to it."""
    from softmaxkit.models._softmax_regression import _LinearSoftmaxTerm, _PenalizedObjective

    X, y = load_iris(return_X_y=True)
    term = _LinearSoftmaxTerm(X.astype(np.float32), y.astype(np.intp), None, 3, True)
    obj = _PenalizedObjective(term, "l2", 100.0)
    x = np.random.default_rng(0).standard_normal(obj.n_params)
    _, g = obj.fun_grad(x)
    b = np.arange(3) * obj.m + 4
    assert abs(g[b].sum()) <= 1e-15 * np.abs(g).max()
    H = obj.hess(x)
    np.linalg.cholesky(H)  # positive definite
    u = np.zeros(obj.n_params)
    u[b] = 1.0
    assert u @ H @ u > 0.1 * np.mean(H[b, b])
    # on vectors with centred intercepts it is the Hessian of the data and penalty
    raw = _PenalizedObjective(term, "l2", 100.0)
    raw._shift = None
    v = np.random.default_rng(1).standard_normal(obj.n_params)
    v[b] -= v[b].mean()
    np.testing.assert_allclose(H @ v, raw.hess(x) @ v, rtol=1e-12, atol=1e-12)


def test_unscaled_float32_wine_converges_to_the_float64_optimum():
    """Unscaled wine in float32: the float32 gradient's noise (~1e-4) exceeded the
    tolerance, and the fit stopped at the precision limit with a ConvergenceWarning
    (or ran 1000 steps of 1e-12 before that rule).  The gradients that decide
    convergence are now float64: it converges, at the float64 optimum."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    a = SoftmaxRegression(tol=1e-10).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        b = SoftmaxRegression(solver="newton-cholesky").fit(X.astype(np.float32), y)
    assert b.n_iter_ <= 50
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("y, where", [
    (np.array([0, 1, np.nan, 0, 1, 0]), 2),
    (np.array(["a", None, "b", "a", "b", "a"], dtype=object), 1),
    (np.array(["a", "b", "a", float("nan"), "b", "a"], dtype=object), 3),
])
def test_missing_labels_are_named(y, where):
    X = np.random.default_rng(0).standard_normal((6, 2))
    with pytest.raises(ValueError, match=f"missing label .* at index {where};"):
        SoftmaxRegression().fit(X, y)


def test_mixed_string_and_number_labels_are_named():
    X = np.random.default_rng(0).standard_normal((6, 2))
    y = np.array([1, "a", 1, "a", 2, "a"], dtype=object)
    with pytest.raises(ValueError, match="y mixes strings and other labels \\(e.g. 'a' and 1\\)"):
        SoftmaxRegression().fit(X, y)


def test_missing_pandas_na_label_is_named():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).standard_normal((6, 2))
    y = pd.Series(["a", pd.NA, "b", "a", "b", "a"], dtype="string")
    with pytest.raises(ValueError, match="missing label .* at index 1;"):
        SoftmaxRegression().fit(X, y)


@pytest.mark.parametrize("cw, shown", [({0: -1.0}, "-1.0"), ({1: np.nan}, "nan"),
                                       ({2: np.inf}, "inf")])
def test_class_weight_must_be_finite_and_non_negative(cw, shown):
    X, y = _synthetic(n=60, d=3, K=3, seed=4)
    with pytest.raises(ValueError, match=f"class_weight must be finite and non-negative; "
                                         f"got {shown} for class {list(cw)[0]}\\."):
        SoftmaxRegression(class_weight=cw).fit(X, y)
    with pytest.raises(ValueError, match="class_weight must be finite"):
        SoftmaxRegression(class_weight=cw).fit(X, np.eye(3)[y])  # soft targets too


def test_messages_show_plain_numbers_and_the_real_problem():
    X = np.random.default_rng(0).standard_normal((6, 2))
    with pytest.raises(ValueError, match=r"got 1 class \(0\)\.$"):
        SoftmaxRegression().fit(X, np.zeros(6, dtype=np.int64))
    with pytest.raises(ValueError, match=r"labels not in the classes given: 1\.$"):
        SoftmaxRegression().partial_fit(X, [0, 1, 0, 1, 0, 1], classes=[0])
    with pytest.raises(ValueError, match=r"row 0 sums to 0\.5, not 1\.$"):
        SoftmaxRegression().fit(X, np.full((6, 2), 0.25))


def test_soft_targets_score_and_float16_rows():
    """``score`` takes the soft targets ``fit`` takes (accuracy against their most
    probable class); float16 rows sum to 1 only to float16 rounding."""
    X, y = _synthetic(n=200, d=4, K=3, seed=8)
    Y = np.random.default_rng(3).dirichlet([0.3, 0.3, 0.3], len(y))
    m = SoftmaxRegression().fit(X, Y)
    assert m.score(X, Y) == pytest.approx(np.mean(m.predict(X) == Y.argmax(axis=1)))
    sw = np.random.default_rng(4).uniform(0.1, 2, len(y))
    assert m.score(X, Y, sw) == pytest.approx(
        np.average(m.predict(X) == Y.argmax(axis=1), weights=sw))
    with pytest.raises(ValueError, match="2 columns but the model has 3 classes"):
        m.score(X, Y[:, :2])
    Y16 = Y.astype(np.float16)
    assert np.abs(Y16.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    m16 = SoftmaxRegression().fit(X, Y16)
    np.testing.assert_allclose(m16.predict_proba(X), SoftmaxRegression().fit(
        X, Y16.astype(np.float64) / Y16.astype(np.float64).sum(1, keepdims=True)
    ).predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="sums to"):
        SoftmaxRegression().fit(X, (Y * 1.05).astype(np.float16))


def test_digits_at_large_C_converges_below_scikit_learns_objective():
    """Nearly separable data with a weak penalty (digits, C=1e4), where the Hessian's
    small eigenvalues come from the few rows not yet sure of their class: the fit
    converges (no ConvergenceWarning) to an objective no worse than scikit-learn's
    default fit's (a preconditioner that left those rows out ran 1000 steps to an
    objective 5x higher)."""
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = SoftmaxRegression(C=1e4).fit(X, y)
    assert ours.n_iter_ <= 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=1e4).fit(X, y)
    assert objective(ours.coef_, ours.intercept_, X, y, C=1e4) <= objective(
        ref.coef_, ref.intercept_, X, y, C=1e4)


def test_newton_cholesky_line_search_takes_decreases_below_the_armijo_rounding():
    """Near the optimum of a tiny problem the full Newton step lowers f by 1.9e-13
    while 1e-4 of the slope is below f's rounding: the step must be taken, not
    reported as a failed line search (it once stopped 1.6e-6 from the optimum with
    a ConvergenceWarning)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(300, 3))).argmax(1)
    ref = SoftmaxRegression(solver="newton-cg", tol=1e-12).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = SoftmaxRegression(solver="newton-cholesky", tol=1e-8).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-9)


def test_partial_fit_class_absent_from_the_first_batch():
    """The first batch lacks class 2 (declared in ``classes``): its intercept must
    not start near probability 0 (log(1e-8) once took 10 epochs of Adam to reach a
    log-loss 0.16 above ``fit``'s)."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(3000, 3))).argmax(1)
    first = np.flatnonzero(y < 2)[:100]
    rest = np.setdiff1d(np.arange(len(y)), first)
    m = SoftmaxRegression(random_state=0).partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert m.predict_proba(X)[:, 2].min() > 0.01
    m.partial_fit(X[rest], y[rest])
    m.partial_fit(X[first], y[first])
    best = log_loss(y, SoftmaxRegression().fit(X, y).predict_proba(X))
    assert log_loss(y, m.predict_proba(X)) < best + 0.02


def test_partial_fit_balanced_class_weight_needs_every_class_in_a_batch():
    X, y = _synthetic(n=60, d=3, K=3, seed=4)
    m = SoftmaxRegression(class_weight="balanced")
    with pytest.raises(ValueError, match="this batch has no samples of class 2; pass "
                                         "class_weight as a dict"):
        m.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    m.partial_fit(X, y, classes=[0, 1, 2])  # every class present: fine
    assert m.n_iter_ == 1


def test_dask_fit_of_a_tiny_problem_is_solved_as_tightly_as_in_memory():
    """Tiny problems are solved to tol / 1000; the Dask term has no X but knows its
    rows, so its fit must equal the in-memory one (it was 2.3e-6 away)."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(300, 3))).argmax(1)
    sw = rng.uniform(0.5, 2, 300)
    a = SoftmaxRegression().fit(X, y, sw)
    b = SoftmaxRegression().fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100),
                                sample_weight=da.from_array(sw, chunks=100))
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-10)


def test_anes96_unpenalised_equals_statsmodels_mnlogit():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.anes96.load_pandas().data
    X = data[["logpopul", "selfLR", "age", "educ", "income"]].to_numpy()
    y = data["PID"].to_numpy().astype(int)
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", disp=0, tol=1e-12)
    ours = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    Wb = np.column_stack([ours.intercept_, ours.coef_])
    contrasts = (Wb[1:] - Wb[0]).T  # (d + 1, K - 1) like statsmodels' params
    np.testing.assert_allclose(contrasts, np.asarray(ref.params), rtol=1e-6)
    # class-centred coefficients
    np.testing.assert_allclose(ours.coef_.sum(0), 0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_.sum(), 0, atol=1e-10)
    # scikit-learn's default solver does not converge on this problem
    with pytest.warns(ConvergenceWarning):
        LogisticRegression(C=np.inf).fit(X, y)


def test_partial_fit_converges_toward_fit():
    X, y = _synthetic(n=600, d=5, seed=11)
    full = SoftmaxRegression(C=1.0, tol=1e-10).fit(X, y)
    f_full = objective(full.coef_, full.intercept_, X, y)
    m = SoftmaxRegression(C=1.0, random_state=0)
    dist, gap = [], []
    for epoch in range(60):
        m.partial_fit(X, y, classes=np.arange(4) if epoch == 0 else None)
        if epoch in (4, 59):
            dist.append(np.abs(m.coef_ - full.coef_).max())
            gap.append(objective(m.coef_, m.intercept_, X, y) / f_full - 1)
    assert dist[1] < dist[0] / 2
    assert 0 <= gap[1] < gap[0] / 2
    assert gap[1] < 2e-3
    assert m.n_iter_ == 60 and m.loss_curve_.shape == (60,)
    with pytest.raises(ValueError, match="classes"):
        SoftmaxRegression().partial_fit(X, y)


@pytest.mark.parametrize("change", [dict(penalty=None), dict(C=np.inf),
                                    dict(fit_intercept=False), dict(penalty="l1")])
def test_partial_fit_after_set_params_goes_on_from_the_current_fit(change):
    """The optimiser state kept the first call's layout: after set_params changed
    the parametrisation, the next call died in a reshape deep inside."""
    X, y = _synthetic(n=300, d=5, seed=13)
    m = SoftmaxRegression(random_state=0)
    for _ in range(5):
        m.partial_fit(X, y, classes=np.arange(4))
    before = m.predict_proba(X)
    m.set_params(**change)
    m.partial_fit(X, y)
    assert m.coef_.shape == (4, 5) and np.all(np.isfinite(m.coef_))
    if "fit_intercept" in change:
        assert np.all(m.intercept_ == 0)
    elif "penalty" not in change or change["penalty"] is None:
        # went on from the fit in the new parametrisation (small steps), not from scratch
        assert np.abs(m.predict_proba(X) - before).max() < 0.05


def test_partial_fit_on_a_fitted_model_stays_near_its_optimum():
    """A fresh Adam at 0.05 moved a fitted model 2.4% above its objective in one pass
    over the same data (probabilities up to 0.33 off)."""
    X, y = _synthetic(n=4000, d=10, seed=14)
    m = SoftmaxRegression(random_state=0).fit(X, y)
    f0 = objective(m.coef_, m.intercept_, X, y)
    P0 = m.predict_proba(X)
    for _ in range(2):
        m.partial_fit(X, y)
    assert objective(m.coef_, m.intercept_, X, y) < f0 * (1 + 1e-3)
    assert np.abs(m.predict_proba(X) - P0).max() < 0.02


def test_first_partial_fit_takes_one_row_and_verbose_takes_a_bool(capsys):
    X, y = _synthetic(n=50, d=3, seed=15)
    m = SoftmaxRegression().partial_fit(X[:1], y[:1], classes=np.arange(4))
    assert m.coef_.shape == (4, 3) and m.n_iter_ == 1 and m.loss_curve_.shape == (1,)
    with pytest.raises(ValueError, match="minimum of 2"):   # fit still needs two
        SoftmaxRegression().fit(X[:1], y[:1])
    SoftmaxRegression(verbose=True).fit(X, y)                 # LogisticRegression takes it
    assert "iter    0" in capsys.readouterr().out
    SoftmaxRegression(verbose=np.bool_(False)).fit(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("n, d, K, expected", [
    (150, 4, 3, "[Newton-Cholesky]"),            # n p^2 = 150 * 15^2: tiny
    (3000, 20, 2, "[trust-region Newton-CG]"),   # (d + 1)(K + 1) = 63, but n p^2 = 5.3e6
    (40, 30, 4, "[trust-region Newton-CG]"),     # (d + 1)(K + 1) = 155
])
def test_auto_solver_takes_the_explicit_hessian_only_where_it_is_cheap(capsys, n, d, K,
                                                                      expected):
    """The documented auto rule: Newton-Cholesky only while (d + 1)(K + 1) <= 100
    and an explicit Hessian costs n p^2 <= 1e6 multiply-adds; both solvers reach
    the same optimum (scikit-learn's newton-cg as the oracle)."""
    X, y = _synthetic(n=n, d=d, seed=21, K=K)
    m = SoftmaxRegression(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert out.lstrip().startswith(expected)
    C = 1.0 if K > 2 else 2.0   # K = 2: our C is scikit-learn's binomial 2 C
    ref = LogisticRegression(C=C, solver="newton-cg", tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_partial_fit_on_chunks_approaches_fit_with_C_times_chunks():
    """The documented rule for a stream of chunks: each call's penalty is weighted
    as if its chunk were the whole data, so chunks of N/6 rows need C * 6 to
    approach fit(X, y) with C (with C itself the coefficients are a third smaller)."""
    X, y = _synthetic(n=240, d=5, seed=12)
    full = SoftmaxRegression(C=1.0, tol=1e-10).fit(X, y)
    rng = np.random.default_rng(0)
    norms = {}
    for C in (1.0, 6.0):
        m = SoftmaxRegression(C=C, random_state=0)
        for _epoch in range(80):
            for chunk in np.array_split(rng.permutation(len(y)), 6):
                m.partial_fit(X[chunk], y[chunk], classes=np.arange(4))
        norms[C] = np.linalg.norm(m.coef_)
        if C == 6.0:
            assert np.abs(m.predict_proba(X) - full.predict_proba(X)).max() < 0.05
    target = np.linalg.norm(full.coef_)
    assert abs(norms[6.0] / target - 1) < 0.03
    assert norms[1.0] < 0.85 * target


@pytest.mark.parametrize("sizes", [(200,), (70, 190, 45, 160, 135), (10,) * 20, (3, 0, 130)])
@pytest.mark.parametrize("sparse_x", [False, True])
def test_minibatches_over_blocks(sizes, sparse_x):
    """partial_fit's minibatches over row blocks (the partitions of a Dask
    collection): every row once per pass, every batch but the last full, a block's
    tail completed from the next block; one block gives the in-memory batches."""
    from softmaxkit.models._softmax_regression import _minibatches

    n = sum(sizes)
    X = np.arange(n, dtype=float)[:, None] * np.ones((1, 3))
    Y, w = np.arange(n), np.arange(n) * 0.5
    edges = np.cumsum((0,) + sizes)
    parts = [((sp.csr_matrix(X[a:b]) if sparse_x else X[a:b]), Y[a:b], w[a:b])
             for a, b in zip(edges[:-1], edges[1:], strict=True)]
    batches = list(_minibatches(parts, np.random.default_rng(0), 64))
    rows = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(np.sort(rows), Y)
    assert all(b[0].shape[0] == 64 for b in batches[:-1]) and batches[-1][0].shape[0] <= 64
    for Xb, Yb, wb in batches:
        Xd = Xb.toarray() if sparse_x else Xb
        np.testing.assert_array_equal(Xd[:, 0], Yb)   # rows stay aligned
        np.testing.assert_array_equal(wb, Yb * 0.5)
    if len(sizes) == 1:
        order = np.random.default_rng(0).permutation(n)
        for i, b in enumerate(batches):
            np.testing.assert_array_equal(b[1], np.sort(order[64 * i:64 * (i + 1)]))


def test_warm_start_verbose_and_iteration_hook(capsys):
    X, y = _synthetic(n=200, seed=12)
    m = SoftmaxRegression(tol=1e-10, warm_start=True, verbose=1)
    seen = []
    with on_iteration(seen.append):
        m.fit(X, y)
    out = capsys.readouterr().out
    assert "iter    1" in out and "converged" in out
    assert [i["iteration"] for i in seen] == list(range(1, m.n_iter_ + 1))
    m.set_params(verbose=0)
    m.fit(X, y)  # warm start from the optimum: done at once
    assert m.n_iter_ == 0


def test_pandas_feature_names_and_labels():
    pd = pytest.importorskip("pandas")
    X, y = _synthetic(n=150, d=3, K=3, seed=13)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    labels = np.array(["cat", "dog", "emu"])[y]
    m = SoftmaxRegression().fit(df, labels)
    np.testing.assert_array_equal(m.feature_names_in_, ["a", "b", "c"])
    np.testing.assert_array_equal(m.classes_, ["cat", "dog", "emu"])
    assert set(m.predict(df)) <= {"cat", "dog", "emu"}
    np.testing.assert_allclose(m.predict_log_proba(df), np.log(m.predict_proba(df)))


def test_bad_input():
    X, y = _synthetic(n=50, seed=14)
    m = SoftmaxRegression()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(Xn, y)
    Xn[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        m.fit(Xn, y)
    with pytest.raises(ValueError, match="2 classes"):
        m.fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="minimum of 2"):
        m.fit(X[:1], y[:1])
    w = np.ones(len(y))
    w[0] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        m.fit(X, y, sample_weight=w)
    w[0] = -1
    with pytest.raises(ValueError, match="(?i)negative"):
        m.fit(X, y, sample_weight=w)
    P = np.full((len(y), 4), 0.3)
    with pytest.raises(ValueError, match="probability distributions"):
        m.fit(X, P)
    P = np.eye(4)[y] * 2 - np.eye(4)[y]
    P[0] = [-0.5, 1.5, 0, 0]
    with pytest.raises(ValueError, match="non-negative"):
        m.fit(X, P)
    m.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])


@pytest.mark.parametrize("sparse", [False, True])
def test_entries_too_large_for_the_curvature_sums_are_a_clear_error(sparse):
    """Entries whose squares summed over the rows overflow the fit's dtype gave a
    solver's "non-finite Hessian" error (newton-cholesky), a "precond returned
    non-finite values" one (newton-cg) or, with lbfgs, a useless model."""
    X, y = load_iris(return_X_y=True)
    Xb = X.copy()
    Xb[:, 2] *= 1e200
    for solver in ("auto", "newton-cg", "lbfgs"):
        with pytest.raises(ValueError, match=r"entries up to 6\.9e\+200 .* overflow float64\."
                                             r"  Scale the features"):
            SoftmaxRegression(solver=solver).fit(sp.csr_matrix(Xb) if sparse else Xb, y)
    X32 = (X * 1e19).astype(np.float32)  # 150 rows of 7e19: squares sum past 3.4e38
    with pytest.raises(ValueError, match="overflow float32.*or pass float64 X"):
        SoftmaxRegression().fit(sp.csr_matrix(X32) if sparse else X32, y)
    with pytest.raises(ValueError, match="Scale the features"):
        SoftmaxRegression().partial_fit(Xb, y, classes=np.unique(y))
    # large but summable (150 x 7e17 squared is 7e37 < 3.4e38): still trained, in float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = SoftmaxRegression(solver="lbfgs").fit((X * 1e17).astype(np.float32), y)
    assert m.coef_.dtype == np.float32 and np.all(np.isfinite(m.coef_))


def test_large_entries_keep_the_float32_products_out(monkeypatch):
    """float64 entries of 1e20 are fine in float64, but their float32 Gram sums
    overflow: the float32 Hessian products, first gradients and per-class blocks
    are left out then (they overflowed to a "precond returned non-finite values"
    error); the fit runs in float64 without an overflow warning."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=400, seed=3)
    X[:, 0] *= 1e20
    fits = []
    for small_work in (mod._SMALL_WORK, 0):  # then the large-problem path on small data
        monkeypatch.setattr(mod, "_SMALL_WORK", small_work)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(SoftmaxRegression(solver="newton-cg").fit(X, y))
    for m in fits:
        assert np.all(np.isfinite(m.coef_))
    f = [objective(m.coef_, m.intercept_, X, y) for m in fits]
    assert f[1] == pytest.approx(f[0], rel=1e-6)


@pytest.mark.parametrize("params,msg", [
    ({"C": -1}, "The 'C' parameter of SoftmaxRegression must be a float in (0, inf]; got -1."),
    ({"penalty": "l3"}, "The 'penalty' parameter of SoftmaxRegression must be one of"),
    ({"solver": "sag"}, "The 'solver' parameter of SoftmaxRegression must be one of"),
    ({"tol": -1.0}, "The 'tol' parameter of SoftmaxRegression must be a float in [0, inf]"),
    ({"max_iter": -2}, "The 'max_iter' parameter of SoftmaxRegression must be an int in [0"),
    ({"penalty": "elasticnet"}, "The 'l1_ratio' parameter of SoftmaxRegression"),
    ({"penalty": "l1", "solver": "lbfgs"}, "The 'solver' parameter of SoftmaxRegression"),
    ({"class_weight": "auto"}, "The 'class_weight' parameter of SoftmaxRegression"),
])
def test_bad_parameters_use_the_standard_message(params, msg):
    X, y = _synthetic(n=30, seed=15)
    with pytest.raises((ValueError, TypeError)) as exc:
        SoftmaxRegression(**params).fit(X, y)
    assert str(exc.value).startswith(msg)


def test_max_iter_warns_and_penalty_none_is_C_inf():
    X, y = _synthetic(n=200, seed=16)
    with pytest.warns(ConvergenceWarning):
        SoftmaxRegression(max_iter=1, tol=1e-12).fit(X, y)
    a = SoftmaxRegression(penalty=None, tol=1e-10).fit(X, y)
    b = SoftmaxRegression(C=np.inf, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)


@pytest.mark.parametrize("sparse", [False, True])
def test_large_problem_path_float32_hessian_products_reach_the_same_optimum(monkeypatch,
                                                                            sparse):
    """Above a size threshold the Hessian-vector products run in float32 (the
    gradient stays float64): the optimum must not move.  Force that path here."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=400, d=6, seed=17)
    if sparse:
        X[np.abs(X) < 0.5] = 0
        X = sp.csr_matrix(X)
    ref = SoftmaxRegression(tol=1e-10).fit(X, y)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)
    monkeypatch.setattr(mod, "_TINY_WORK", 0)
    seen = {}
    orig = mod._LinearSoftmaxTerm.hessp

    def spy(self, coef):
        seen["mixed"] = self.mixed_precision
        return orig(self, coef)

    monkeypatch.setattr(mod._LinearSoftmaxTerm, "hessp", spy)
    ours = SoftmaxRegression(tol=1e-10, solver="newton-cg").fit(X, y)
    assert seen["mixed"] is True
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-8)


@pytest.mark.parametrize("solver", ["newton-cg", "newton-cholesky", "lbfgs"])
@pytest.mark.parametrize("sparse", [False, True])
def test_blocked_logits_path_reaches_scikit_learns_optimum(monkeypatch, solver, sparse):
    """With the logits budget of LinearSoftmaxLoss forced down to 16 rows, every
    pass (gradient, Hessian products, preconditioner, explicit Hessian, mixed
    precision) runs over row blocks; the fit must still equal scikit-learn's."""
    import softmaxkit.losses._linear as lin
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=300, d=5, K=4, seed=23)
    if sparse:
        X[np.abs(X) < 0.5] = 0
        X = sp.csr_matrix(X)
    ref = _sk(0.5).fit(X, y)
    monkeypatch.setattr(lin, "_MAX_LOGIT_BYTES", 16 * 4 * 8)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)  # float32 Hessian products too
    tol = 1e-7 if solver == "lbfgs" else 1e-10  # lbfgs stalls in rounding below that
    ours = SoftmaxRegression(C=0.5, tol=tol, solver=solver).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, C=0.5)
    assert f_ours <= objective(ref.coef_, ref.intercept_, X, y, C=0.5) + 1e-9


@pytest.mark.parametrize("penalty", ["l2", None])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_exact_class_block_preconditioner_reaches_scikit_learns_optimum(monkeypatch, penalty,
                                                                        fit_intercept):
    """On few rows Newton-CG's per-class blocks are exact (all rows); forced from the
    second step on (and refreshed at every step), also without a penalty (class 0's
    block left out) and without an intercept, the optimum must not move."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=300, d=12, K=4, seed=29, scale=3.0)  # n < 2.5 m^2 = 422.5
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    calls = []
    orig = mod._PenalizedObjective._block_precond

    def spy(self, x):
        minv = orig(self, x)
        calls.append((self._block_rows(), minv is not None))
        return minv

    monkeypatch.setattr(mod._PenalizedObjective, "_block_precond", spy)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_CG", 0)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_REBUILD_CG", 0)
    monkeypatch.setattr(mod, "_TINY_WORK", 0)
    ours = SoftmaxRegression(penalty=penalty, C=0.5, fit_intercept=fit_intercept,
                             solver="newton-cg", tol=1e-10).fit(X, y, sample_weight=sw)
    assert len(calls) >= 2 and all(rows == len(y) and ok for rows, ok in calls)
    if penalty is None:
        ref = SoftmaxRegression(penalty=None, fit_intercept=fit_intercept,
                                solver="newton-cholesky", tol=1e-12).fit(X, y, sw)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
        return
    ref = _sk(0.5, fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, sw, C=0.5)
    assert f_ours <= objective(ref.coef_, ref.intercept_, X, y, sw, C=0.5) + 1e-9


@pytest.mark.parametrize("weighted", [False, True])
def test_class_block_preconditioner_reaches_scikit_learns_optimum(monkeypatch, weighted):
    """Forced from the second Newton step on, with the blocks estimated on a subset of
    the rows (the path of large dense problems), the optimum must not move; the
    iterates stay centred over the classes."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=400, d=5, K=4, seed=31, scale=3.0)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted else None
    built = []
    orig = mod._LinearSoftmaxTerm.class_blocks

    def spy(self, coef, max_rows):
        built.append(max_rows)
        return orig(self, coef, max_rows)

    monkeypatch.setattr(mod._LinearSoftmaxTerm, "class_blocks", spy)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_CG", 0)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_REBUILD_CG", 0)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_MIN_ROWS", 20)
    monkeypatch.setattr(mod, "_TINY_WORK", 0)
    ours = SoftmaxRegression(C=0.5, solver="newton-cg", tol=1e-10).fit(X, y, sw)
    assert built and all(r < len(y) for r in built)  # a subset of the rows
    ref = _sk(0.5).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    f_ours = objective(ours.coef_, ours.intercept_, X, y, sw, C=0.5)
    assert f_ours <= objective(ref.coef_, ref.intercept_, X, y, sw, C=0.5) + 1e-9
    np.testing.assert_allclose(ours.coef_.sum(axis=0), 0, atol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sampled_class_blocks_with_soft_targets_and_zero_weights(monkeypatch, fit_intercept):
    """The weight-drawn blocks with soft targets, rows of weight 0 (never drawn) and
    no intercept: the optimum is SciPy's L-BFGS-B one on the same objective."""
    import scipy.optimize

    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=600, d=5, K=3, seed=41, scale=2.0)
    rng = np.random.default_rng(5)
    Y = softmax(rng.normal(scale=2.0, size=(len(y), 3)) + 3 * np.eye(3)[y], axis=1)
    sw = rng.uniform(0.5, 2.0, len(y))
    sw[::7] = 0.0
    drawn = []
    orig = mod._LinearSoftmaxTerm._class_blocks_sampled

    def spy(self, state, rows, dt):
        drawn.append(rows)
        return orig(self, state, rows, dt)

    monkeypatch.setattr(mod._LinearSoftmaxTerm, "_class_blocks_sampled", spy)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_CG", 0)
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_REBUILD_CG", 0)
    monkeypatch.setattr(mod, "_TINY_WORK", 0)
    C = 2.0
    ours = SoftmaxRegression(C=C, solver="newton-cg", tol=1e-10,
                             fit_intercept=fit_intercept).fit(X, Y, sw)
    assert drawn and all(r < len(y) for r in drawn)
    m = 5 + int(fit_intercept)
    Xt = np.hstack([X, np.ones((len(X), 1))])[:, :m]

    def f(c):
        W = c.reshape(3, m)
        L = log_softmax(Xt @ W.T, axis=1)
        P = np.exp(L)
        val = -C * np.sum(sw[:, None] * Y * L) + 0.5 * np.sum(W[:, :5] ** 2)
        G = C * ((sw[:, None] * (P - Y)).T @ Xt)
        G[:, :5] += W[:, :5]
        return val, G.ravel()

    ref = scipy.optimize.minimize(f, np.zeros(3 * m), jac=True, method="L-BFGS-B",
                                  options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10000})
    W_ours = np.hstack([ours.coef_, ours.intercept_[:, None]])[:, :m]
    assert f(W_ours.ravel())[0] <= ref.fun + 1e-9
    P_ref = softmax(Xt @ ref.x.reshape(3, m).T, axis=1)
    np.testing.assert_allclose(ours.predict_proba(X), P_ref, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_class_blocks_equal_the_exact_blocks_and_reuse_their_rows(weighted):
    """The per-class blocks from all rows equal the exact float64 blocks to float32
    rounding (no row may be left out: at large C the penalty no longer hides what
    the rows sure of a class contribute -- leaving out those under 1e-3 of the
    largest weight took digits at C=1e4 from 19 to 1000 Newton steps); a rebuild at
    another point reuses the cached float32 rows and equals a fresh term's blocks."""
    import softmaxkit.models._softmax_regression as mod

    X, y = load_digits(return_X_y=True)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(y)) if weighted else None
    fit = SoftmaxRegression().fit(X, y, sw)
    coef = np.hstack([fit.coef_, fit.intercept_[:, None]])
    Xt = np.hstack([X, np.ones((len(X), 1))])
    P = softmax(Xt @ coef.T, axis=1)
    w = P * (1 - P) * (1.0 if sw is None else sw[:, None])
    exact = np.einsum("ik,ia,ib->kab", w, Xt, Xt)
    term = mod._LinearSoftmaxTerm(X, y.astype(np.intp), sw, 10, True)
    term.class_blocks(np.zeros(coef.size), len(y))  # a first build elsewhere
    cached = term._rows[2]
    got = term.class_blocks(coef.ravel(), len(y))
    assert term._rows[2] is cached  # the rebuild reused the float32 rows
    err = np.linalg.norm(got - exact, axis=(1, 2)) / np.linalg.norm(exact, axis=(1, 2))
    assert err.max() < 1e-4
    fresh = mod._LinearSoftmaxTerm(X, y.astype(np.intp), sw, 10, True)
    np.testing.assert_array_equal(fresh.class_blocks(coef.ravel(), len(y)), got)


def _exact_class_blocks(X, coef, sw):
    Xt = np.hstack([X, np.ones((len(X), 1))])
    P = softmax(Xt @ coef.reshape(-1, Xt.shape[1]).T, axis=1)
    w = P * (1 - P) * (1.0 if sw is None else sw[:, None])
    return np.einsum("ik,ia,ib->kab", w, Xt, Xt), w, Xt


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampled_class_blocks_are_the_sum_over_the_drawn_rows(weighted, dtype):
    """With fewer rows than X has, each block is estimated on rows drawn in proportion
    to their weight ``s_i p_ik (1 - p_ik)`` at jittered points ``(j + u_j) / rows`` of
    the weights' running sum (``u`` fixed per class), each drawn row counting
    ``total / rows``: the result equals that sum written out with every draw (rows
    drawn several times included) to float32 rounding and is the same on a second
    call; float64 X is not copied whole to float32 for it (only the drawn rows are
    cast)."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=3000, d=6, K=4, seed=12, scale=2.0)
    sw = np.random.default_rng(3).uniform(0.1, 3.0, len(y)) if weighted else None
    coef = np.random.default_rng(4).normal(scale=1.5, size=4 * 7)
    exact, w, Xt = _exact_class_blocks(X, coef, sw)
    term = mod._LinearSoftmaxTerm(X.astype(dtype), y.astype(np.intp), sw, 4, True)
    term.loss_gradient(coef)
    rows = 1500
    got = term.class_blocks(coef, rows)
    want = np.empty_like(exact)
    repeats = 0
    for k in range(4):
        cum = np.cumsum(w[:, k])
        u = np.random.default_rng(k).random(rows)
        idx = np.minimum(np.searchsorted(cum, (np.arange(rows) + u) / rows * cum[-1],
                                         side="right"), len(y) - 1)
        repeats += rows - np.unique(idx).size
        want[k] = Xt[idx].T @ Xt[idx] * cum[-1] / rows
    assert repeats > 0   # some rows are drawn more than once
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    np.testing.assert_array_equal(term.class_blocks(coef, rows), got)
    assert term._X32 is None   # no float32 copy of all of X made for the drawn rows


def test_sampled_class_blocks_beat_a_uniform_subset():
    """Where most rows are all but sure of most classes, drawing rows by their weight
    estimates every block far better than as many rows drawn uniformly (the estimate
    the blocked state of very large problems still uses)."""
    import softmaxkit.models._softmax_regression as mod

    rng = np.random.default_rng(8)
    X = rng.standard_normal((20000, 8))
    coef = rng.normal(scale=1.5, size=6 * 9)   # logits of standard deviation about 4
    y = rng.integers(0, 6, len(X))
    exact, _, _ = _exact_class_blocks(X, coef, None)
    term = mod._LinearSoftmaxTerm(X, y.astype(np.intp), None, 6, True)
    term.loss_gradient(coef)
    sampled = term.class_blocks(coef, 500)
    uniform = mod._LinearSoftmaxTerm(X, y.astype(np.intp), None, 6, True)
    uniform._state_at = lambda c: None        # no probabilities: the uniform subset
    uniform = uniform.class_blocks(coef, 500)

    def err(A):
        return np.linalg.norm(A - exact, axis=(1, 2)) / np.linalg.norm(exact, axis=(1, 2))

    assert err(sampled).max() < 0.2
    assert err(sampled).max() < min(err(uniform).min(), 0.5 * err(uniform).max())


def test_soft_targets_are_renormalised_and_warm_start_is_centred():
    """Soft targets within the validation tolerance of 1 are rescaled to sum to 1 (so
    the gradient sums to 0 over the classes); an uncentred warm start is centred."""
    X, y = _synthetic(n=200, d=4, K=3, seed=5)
    Y = np.eye(3)[y] * (1 + 5e-7)
    ours = SoftmaxRegression(tol=1e-10).fit(X, Y)
    ref = SoftmaxRegression(tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-9)
    warm = SoftmaxRegression(tol=1e-10, warm_start=True)
    warm.coef_ = ref.coef_ + 5.0
    warm.intercept_ = ref.intercept_ - 3.0
    warm.fit(X, y)
    np.testing.assert_allclose(warm.coef_, ref.coef_, atol=1e-8)
    assert warm.n_iter_ <= 2


def test_class_blocks_built_after_1_and_rebuilt_after_8_cg_steps(monkeypatch):
    """The blocks replace the Kronecker preconditioner after a Newton step of more
    than 1 CG step and are rebuilt only after a step of more than 8."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=300, d=12, K=4, seed=3)
    term = mod._LinearSoftmaxTerm(X, y.astype(np.intp), None, 4, True)
    obj = mod._PenalizedObjective(term, "l2", 1.0)
    built = []
    orig = mod._PenalizedObjective._block_precond
    monkeypatch.setattr(mod._PenalizedObjective, "_block_precond",
                        lambda self, x: built.append(1) or orig(self, x))
    x = np.zeros(obj.n_params)
    term.loss_gradient(obj.expand(x))
    for cg_steps, builds in ((0, 0), (1, 0), (2, 1), (5, 1), (8, 1), (9, 2), (3, 2)):
        obj._n_hv += cg_steps
        obj.precond(x)
        assert len(built) == builds, (cg_steps, builds)


def test_class_block_preconditioner_only_where_it_is_cheap(monkeypatch):
    """The per-class blocks are used only for dense X, with K m^2 within the memory
    cap, and either estimated on a subset (n >= 2.5 m^2 rows: about two
    Hessian-vector products), exact on all rows with m <= 128 columns, or estimated
    on 10 m rows for wider X with n >= m^2 / 4 and more than two classes."""
    import softmaxkit.models._softmax_regression as mod

    def obj(n, d, K, sparse=False):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, d))
        if sparse:
            X = sp.csr_matrix(X)
        term = mod._LinearSoftmaxTerm(X, rng.integers(0, K, n).astype(np.intp), None, K, True)
        return mod._PenalizedObjective(term, "l2", 1.0)

    assert obj(3000, 30, 40)._block_precond_ok()       # n >= 2.5 m^2 = 2402.5
    assert obj(3000, 30, 40)._block_rows() == 20 * 31  # estimated on a subset
    assert not obj(3000, 30, 40, sparse=True)._block_precond_ok()
    assert obj(3000, 60, 20)._block_precond_ok()       # n < 2.5 m^2, m = 61 <= 128
    assert obj(3000, 60, 20)._block_rows() == 3000     # exact: all rows
    assert not obj(3000, 200, 5)._block_precond_ok()   # m = 201 > 128 and n < m^2 / 4
    assert obj(10_101, 200, 5)._block_precond_ok()     # n >= m^2 / 4 = 10100.25
    assert obj(10_101, 200, 5)._block_rows() == 2010   # 10 m rows, drawn by weight
    assert not obj(10_100, 200, 5)._block_precond_ok()
    assert not obj(20_000, 200, 2)._block_precond_ok()  # two classes: Kronecker only
    assert obj(20_000, 200, 3)._block_precond_ok()
    assert obj(43_000, 129, 2)._block_precond_ok()     # n >= 2.5 m^2: any K
    assert obj(120_000, 200, 5)._block_precond_ok()    # n >= 2.5 m^2
    monkeypatch.setattr(mod, "_BLOCK_PRECOND_MAX_ENTRIES", 40 * 31 * 31 - 1)
    assert not obj(3000, 30, 40)._block_precond_ok()


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("threads", [1, 3])
def test_preconditioner_factors_equal_their_formulas(monkeypatch, threads, mixed):
    """The per-class Hessian blocks and the Kronecker factors, on one thread or
    shared out over threads (classes, row blocks), equal their definitions; with
    float32 Hessian products the features' factor comes from their float32 copy."""
    import softmaxkit.losses._linear as lin_mod
    from softmaxkit.models._softmax_regression import _LinearSoftmaxTerm

    monkeypatch.setattr(lin_mod, "_DENSE_PARALLEL_SIZE", 100)
    rng = np.random.default_rng(11)
    n, d, K = 120, 5, 4
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n)
    s = rng.uniform(0.5, 2.0, n)
    term = _LinearSoftmaxTerm(X, y, s, K, True)
    term._loss._threads = threads
    coef = rng.standard_normal(K * (d + 1)) * 0.3
    Xa = np.hstack([X, np.ones((n, 1))])
    P = softmax(Xa @ coef.reshape(K, d + 1).T, axis=1)
    A = term.class_blocks(coef, n)
    for k in range(K):
        exact = Xa.T @ ((s * P[:, k] * (1 - P[:, k]))[:, None] * Xa)
        np.testing.assert_allclose(A[k], exact, rtol=2e-5, atol=2e-5)
    term.loss_gradient(coef)
    term.mixed_precision = mixed
    term.hessp(coef)  # makes the float32 copy of X when mixed
    assert (term._X32 is not None) is mixed
    Af, Bf = term.kron_factors(coef)
    np.testing.assert_allclose(Af, Xa.T @ (s[:, None] * Xa) / s.sum(),
                               rtol=1e-5 if mixed else 1e-12, atol=1e-6 if mixed else 0)
    B = np.diag(s @ P) - (P * s[:, None]).T @ P
    np.testing.assert_allclose(Bf, B, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", ["dense", "wide", "csr", "csc"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kronecker_feature_factor_by_row_blocks(monkeypatch, fmt, weighted):
    """The Kronecker feature factor A (full for dense X, its diagonal for sparse or
    wide X) is summed over row blocks (here of at most 64 entries: many blocks)
    and equals the direct sum; it made a temporary of X's size (X**2, or X times
    the weights) before."""
    from softmaxkit.models import _softmax_regression as mod

    monkeypatch.setattr(mod, "_KRON_BLOCK_ENTRIES", 64)
    if fmt == "wide":
        monkeypatch.setattr(mod, "_KRON_DENSE_MAX", 4)
    rng = np.random.default_rng(23)
    n, d, K = 300, 6, 3
    X = rng.standard_normal((n, d))
    if fmt in ("csr", "csc"):
        X[np.abs(X) < 0.8] = 0.0
    s = rng.uniform(0.5, 2.0, n) if weighted else None
    Xin = getattr(sp, f"{fmt}_matrix")(X) if fmt in ("csr", "csc") else X
    term = mod._LinearSoftmaxTerm(Xin, rng.integers(0, K, n), s, K, True)
    A, _ = term.kron_factors(np.zeros(K * (d + 1)))
    w = np.ones(n) if s is None else s
    Xa = np.hstack([X, np.ones((n, 1))])
    full = Xa.T @ (w[:, None] * Xa) / w.sum()
    expected = full if fmt == "dense" else np.diag(full)
    np.testing.assert_allclose(A, expected, rtol=1e-12, atol=1e-14)


def _spy_gradients(monkeypatch, mod):
    """Record, in order, which of the term's gradient passes runs ("coarse" for
    float32 products, "exact" for float64)."""
    calls = []
    term = mod._LinearSoftmaxTerm
    exact, coarse = term.loss_gradient, term.loss_gradient_coarse

    def spy_exact(self, coef):
        calls.append("exact")
        return exact(self, coef)

    def spy_coarse(self, coef):
        calls.append("coarse")
        return coarse(self, coef)

    monkeypatch.setattr(mod._LinearSoftmaxTerm, "loss_gradient", spy_exact)
    monkeypatch.setattr(mod._LinearSoftmaxTerm, "loss_gradient_coarse", spy_coarse)
    return calls


@pytest.mark.parametrize("sparse", [False, True])
def test_first_gradients_in_float32_then_float64_judges_convergence(monkeypatch, sparse):
    """A large float64 Newton-CG fit takes its first gradients with float32 products
    (``coarse_until``), then float64 ones for good; the stopping rule holds for the
    float64 gradient at the result, which is the optimum of a fit without float32
    gradients."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=3000, d=20, K=5, seed=31)
    if sparse:
        X[np.abs(X) < 0.7] = 0
        X = sp.csr_matrix(X)
    ref = SoftmaxRegression(tol=1e-10).fit(X, y)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)
    calls = _spy_gradients(monkeypatch, mod)
    ours = SoftmaxRegression(tol=1e-6).fit(X, y)
    assert calls[0] == "coarse" and calls[-1] == "exact", calls
    first = calls.index("exact")
    assert set(calls[first:]) == {"exact"}, calls
    term = mod._LinearSoftmaxTerm(X, y, None, 5, True)
    obj = mod._PenalizedObjective(term, "l2", 1.0)
    f, g = obj.fun_grad(np.column_stack([ours.coef_, ours.intercept_]).ravel())
    assert np.max(np.abs(g)) <= 1e-6 * max(1.0, f)
    # the objective is within the strong-convexity bound ||g||^2 / (2 mu) of the
    # optimum (mu >= the l2 weight; in the unscaled objective's units), and the
    # probabilities as close as tol=1e-6 lets them be (at most ~1e-4 here)
    gap = (objective(ours.coef_, ours.intercept_, X, y, None, C=1.0)
           - objective(ref.coef_, ref.intercept_, X, y, None, C=1.0))
    assert gap <= float(g @ g) / (2 * obj._l2) * obj.scale + 1e-9
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_float32_gradient_that_may_meet_the_rule_is_recomputed_in_float64():
    """A float32 gradient within 10x (plus its error) of the stopping rule is
    replaced at once by the float64 one, and float64 is kept from then on."""
    from softmaxkit.models._softmax_regression import _LinearSoftmaxTerm, _PenalizedObjective

    X, y = _synthetic(n=500, d=8, K=3, seed=5)
    term = _LinearSoftmaxTerm(X, y, None, 3, True)
    term.mixed_precision = True
    obj = _PenalizedObjective(term, "l2", 1.0)
    x = np.random.default_rng(0).standard_normal(obj.n_params) * 0.1
    f_coarse, g_coarse = term.loss_gradient_coarse(x)
    obj.coarse_until(10.0)  # every gradient "may meet the rule"
    f, g = obj.fun_grad(x)
    assert obj._coarse is None
    obj2 = _PenalizedObjective(_LinearSoftmaxTerm(X, y, None, 3, True), "l2", 1.0)
    f64, g64 = obj2.fun_grad(x)
    assert f == f64 and np.array_equal(g, g64)
    assert not np.array_equal(g_coarse / obj.S + obj._l2vec * x, g64)  # it was float32
    # far from the rule, the float32 gradient is kept
    obj.coarse_until(1e-12)
    f, g = obj.fun_grad(x)
    assert obj._coarse is not None and not np.array_equal(g, g64)
    np.testing.assert_allclose(g, g64, atol=term.coarse_noise(x))


@pytest.mark.parametrize("sparse", [None, "csr", "csc"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("weighted", [False, True])
def test_coarse_noise_bounds_the_float32_gradient_error(monkeypatch, sparse, scale, weighted):
    """``coarse_noise`` (which decides how long float32 gradients may be used) is
    above the actual float32 error of every gradient entry, for any feature scale,
    with sample weights, at small and large coefficients; computed by row blocks of
    X (forced small here) or whole (CSC), the same."""
    import softmaxkit.models._softmax_regression as mod

    rng = np.random.default_rng(7)
    n, d, K = 2000, 30, 6
    X = rng.standard_normal((n, d)) * scale
    if sparse:
        X[rng.random((n, d)) < 0.8] = 0
        X = sp.csr_matrix(X) if sparse == "csr" else sp.csc_matrix(X)
    y = rng.integers(0, K, n)
    s = rng.uniform(0.2, 3.0, n) if weighted else None
    whole = mod._LinearSoftmaxTerm(X, y, s, K, True)
    whole.mixed_precision = True
    coef = rng.standard_normal(K * (d + 1))
    expected = whole.coarse_noise(coef)
    monkeypatch.setattr(mod, "_KRON_BLOCK_ENTRIES", 9000)     # several row blocks
    term = mod._LinearSoftmaxTerm(X, y, s, K, True)
    term.mixed_precision = True
    np.testing.assert_allclose(term.coarse_noise(coef), expected, rtol=1e-6)
    assert np.isfinite(expected) and expected > 0
    for size in (0.01, 1.0, 10.0):
        coef = rng.standard_normal(K * (d + 1)) * size
        coef.reshape(K, d + 1)[:, :d] /= scale
        _, g32 = term.loss_gradient_coarse(coef)
        _, g64 = term.loss_gradient(coef)
        err = np.max(np.abs(np.asarray(g32, np.float64) - g64)) / term.weight_sum
        assert 0 < err <= term.coarse_noise(coef)


def test_float32_gradients_end_after_a_fixed_number_of_evaluations(monkeypatch):
    """Should the float32 gradients be far noisier than their estimate (so the
    gradient never falls to the switch), float64 takes over after
    ``_COARSE_MAX_EVALS`` evaluations and the fit still converges."""
    import softmaxkit.models._softmax_regression as mod

    X, y = _synthetic(n=2000, d=10, K=4, seed=3)
    monkeypatch.setattr(mod, "_SMALL_WORK", 0)
    monkeypatch.setattr(mod, "_COARSE_MAX_EVALS", 4)
    orig = mod._LinearSoftmaxTerm.loss_gradient_coarse
    noise = np.random.default_rng(0)

    def noisy(self, coef):
        value, grad = orig(self, coef)
        return value, grad + self.weight_sum * 1e-2 * noise.standard_normal(grad.shape)

    monkeypatch.setattr(mod._LinearSoftmaxTerm, "loss_gradient_coarse", noisy)
    monkeypatch.setattr(mod._LinearSoftmaxTerm, "coarse_noise", lambda self, coef: 0.0)
    calls = _spy_gradients(monkeypatch, mod)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = SoftmaxRegression(solver="newton-cg").fit(X, y)
    assert calls[:4] == ["coarse"] * 4 and set(calls[4:]) == {"exact"}, calls
    ref = SoftmaxRegression(tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("fit_intercept, weighted", [(True, False), (False, True)])
def test_kronecker_preconditioner_on_few_rows_uses_the_thin_factor(fit_intercept, weighted):
    """With fewer rows than features the Kronecker factor A (m x m) has rank <= n:
    its eigenpairs now come from the n x n Gram (eigh of the 2,041 x 2,041 factor
    took 1.8 s of a 2 s fit at 50 x 2,040).  The preconditioner must be the same
    operator."""
    from softmaxkit.models._softmax_regression import _PenalizedObjective

    rng = np.random.default_rng(16)
    n, d, K = 30, 80, 3
    X = rng.normal(size=(n, d))
    y = rng.integers(0, K, n)
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    m = SoftmaxRegression(fit_intercept=fit_intercept)
    term = m._make_data_term(X, y, w)
    obj = _PenalizedObjective(term, "l2", 0.5)
    x = rng.normal(scale=0.1, size=obj.n_params)
    term.loss_gradient(obj.expand(x))
    thin = obj._kron_precond(x)
    assert len(obj._A_eig) == 3                       # the thin path was taken
    obj._A_eig = None
    term.kron_A_thin = lambda: None                   # the m x m eigh, as before
    dense = obj._kron_precond(x)
    for _ in range(3):
        r = rng.normal(size=obj.n_params)
        np.testing.assert_allclose(thin(r), dense(r), rtol=1e-8, atol=1e-10 * np.abs(
            dense(r)).max())


@pytest.mark.parametrize("solver", ["auto", "newton-cholesky", "lbfgs"])
@pytest.mark.parametrize("data, C", [("breast_cancer", 100.0), ("wine", 100.0), ("iris", 1e4)])
def test_float32_within_1e4_of_float64_at_large_C(data, C, solver):
    """At weak penalties the float32 gradient's rounding (floor 50 eps32) left the
    probabilities up to 9e-4 (lbfgs 3e-3) from the float64 fit; the gradients that
    decide convergence are now float64 (cast from row blocks of X) for every solver."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{data}")(return_X_y=True)
    if data != "iris":
        X = StandardScaler().fit_transform(X)
    m64 = SoftmaxRegression(C=C, solver=solver, max_iter=5000).fit(X, y)
    m32 = SoftmaxRegression(C=C, solver=solver, max_iter=5000).fit(X.astype(np.float32), y)
    assert m32.coef_.dtype == np.float32
    gap = np.abs(m32.predict_proba(X.astype(np.float32)) - m64.predict_proba(X)).max()
    assert gap < 1e-4, gap


def test_float32_at_large_C_on_many_rows_matches_float64_without_a_float64_copy(
        monkeypatch):
    """float32 gradients stall above the stopping rule at weak penalties: on 150
    noisy copies of the standardised breast-cancer data (2.6e6 entries, beyond the
    float64 copy the fit used to refine small data on) C=100 ended 3e-4 from the
    float64 probabilities.  The gradients that decide convergence are now float64,
    cast from row blocks: the float64 fit's probabilities, and no float64 copy of X
    (traced peak memory 11 MB with blocks of 2**16 entries, mostly arrays of n x K
    float64, below the 20 MB such a copy alone would take)."""
    import tracemalloc

    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    from softmaxkit.losses import _linear

    monkeypatch.setattr(_linear, "_CAST_BLOCK_ENTRIES", 1 << 16)

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    X = np.repeat(X, 150, axis=0) + 0.3 * rng.standard_normal((len(X) * 150, X.shape[1]))
    y = np.repeat(y, 150)
    X32 = X.astype(np.float32)
    m64 = SoftmaxRegression(C=100.0).fit(X, y)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            m32 = SoftmaxRegression(C=100.0).fit(X32, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m32.coef_.dtype == np.float32
    # both stop at tol=1e-6, which at C=100 leaves the probabilities ~1e-5 apart
    assert np.abs(m32.predict_proba(X32) - m64.predict_proba(X)).max() < 1e-4
    assert peak < 2 * X32.nbytes, (peak, X32.nbytes)


@pytest.mark.parametrize("n, d, K", [(2000, 10, 3)])
def test_small_unpenalised_float32_fit_takes_float64_products(n, d, K):
    """Small unpenalised float64 fits run their Hessian products in float64 (float32
    ones blur the nearly flat directions); float32 X took float32 products there.
    With collinear features (make_classification's redundant ones), which rounding
    to float32 makes merely nearly collinear, the fit stalled: a precision-limit
    ConvergenceWarning after 28 steps (2,000 x 10 x 3).  Now float64 products on
    cast row blocks: it converges.  Without exact collinearity the float32 fit is
    the float64 one."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n, d, n_informative=min(d, 5), n_classes=K,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = SoftmaxRegression(penalty=None).fit(X.astype(np.float32), y)
    assert m.n_iter_ <= 40
    X, y = make_classification(n, d, n_informative=d, n_redundant=0, n_classes=K,
                               random_state=0)
    m64 = SoftmaxRegression(penalty=None).fit(X, y)
    m32 = SoftmaxRegression(penalty=None).fit(X.astype(np.float32), y)
    assert m32.n_iter_ <= m64.n_iter_ + 2
    gap = np.abs(m32.predict_proba(X.astype(np.float32)) - m64.predict_proba(X)).max()
    assert gap < 1e-4, gap


def test_fits_in_two_threads_leave_the_warning_machinery_alone():
    """Small fits solved to a tightened tolerance used warnings.catch_warnings,
    which is process-wide: two threads fitting at once left another thread's
    recorder installed and an 'always' filter behind, and every later warning of
    the process was lost."""
    import threading

    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    filters = list(warnings.filters)
    show = warnings._showwarnmsg_impl

    def work():
        for _ in range(60):
            SoftmaxRegression().fit(X, y)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == filters
    assert warnings._showwarnmsg_impl is show
    with pytest.warns(UserWarning, match="still seen"):
        warnings.warn("still seen", UserWarning, stacklevel=1)


def test_convergence_warning_points_at_the_callers_line():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    Xb, yb = _synthetic(n=5000, d=30, seed=22)   # not tiny: the solver's own tol
    for Xd, yd in ((X, y), (X.astype(np.float32), y), (Xb, yb)):
        with pytest.warns(ConvergenceWarning, match="did not converge after 2 iterations") as rec:
            SoftmaxRegression(max_iter=2).fit(Xd, yd)
        assert len(rec) == 1
        assert rec[0].filename == __file__


def test_partial_fit_l1_reaches_exact_zeros():
    """partial_fit added l1 * sign(x) to the gradient: coefficients hovered around 0
    and none was ever exactly 0 (fit: 24 of 39 on wine)."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    full = SoftmaxRegression(penalty="l1", C=1.0).fit(X, y)
    m = SoftmaxRegression(penalty="l1", C=1.0, random_state=0)
    for _ in range(150):
        m.partial_fit(X, y, classes=[0, 1, 2])
    zeros = m.coef_ == 0
    assert zeros.sum() >= 0.8 * (full.coef_ == 0).sum()
    # the zeros are fit's: no coefficient that fit keeps is set to 0
    assert not np.any(zeros & (np.abs(full.coef_) > 0.1))
    assert np.abs(m.predict_proba(X) - full.predict_proba(X)).max() < 0.1


@pytest.mark.parametrize("sparse_x", [False, True])
def test_l1_on_many_rows_uses_hessian_products(sparse_x, monkeypatch):
    """The explicit Hessian was built every iteration whatever n (n p^2 work: a
    50,000 x 999 CSR l1 fit took 90 s); past _EXPLICIT_HESSIAN_WORK the fit uses
    Hessian-vector products with the Hessian diagonal as the subproblem's metric,
    and reaches the same optimum."""
    from softmaxkit.models import _softmax_regression as srm

    X, y = _synthetic(n=600, d=12, seed=18)
    X[:, 0] *= 100.0                                   # badly scaled: the metric matters
    if sparse_x:
        X[np.abs(X) < 0.5] = 0.0
        X = sp.csr_matrix(X)
    ref = SoftmaxRegression(penalty="l1", C=0.5, tol=1e-10).fit(X, y)
    calls = []
    real = srm.proximal_newton

    def spy(*args, **kw):
        calls.append("hess" if kw.get("hess") is not None else "hessp")
        return real(*args, **kw)

    monkeypatch.setattr(srm, "proximal_newton", spy)
    monkeypatch.setattr(srm, "_EXPLICIT_HESSIAN_WORK", 1.0)
    m = SoftmaxRegression(penalty="l1", C=0.5, tol=1e-10).fit(X, y)
    assert calls == ["hessp"]
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    # the multinomial l1 optimum need not be unique (coefficients may move between
    # classes at no cost): the same objective, about as many exact zeros
    f = [objective(e.coef_, e.intercept_, X, y, C=0.5, penalty="l1") for e in (m, ref)]
    assert f[0] == pytest.approx(f[1], rel=1e-10)
    assert abs(int((m.coef_ == 0).sum()) - int((ref.coef_ == 0).sum())) <= 2
    assert (m.coef_ == 0).sum() > 0


def test_float32_convergence_warning_counts_every_iteration():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    with pytest.warns(ConvergenceWarning, match=r"did not converge after 10 iterations") as rec:
        m = SoftmaxRegression(C=100, tol=1e-10, max_iter=10).fit(X, y)
    assert len(rec) == 1 and m.n_iter_ == 10


def test_loaded_partial_fit_model_notices_a_layout_change_of_the_same_size(tmp_path):
    """K=3, d=2: no intercept and a penalty has K d = 6 parameters, penalty=None with
    an intercept (K-1)(d+1) = 6; a loaded model (no layout of its own) read the old
    vector in the new layout."""
    from softmaxkit.io import load_model, save_model

    X, y = _synthetic(n=200, d=2, K=3, seed=19)
    m = SoftmaxRegression(fit_intercept=False, random_state=0)
    for _ in range(20):
        m.partial_fit(X, y, classes=np.arange(3))
    loaded = load_model(save_model(m, tmp_path / "m.skm"))
    for est in (m, loaded):
        before = est.predict_proba(X)
        est.set_params(penalty=None, fit_intercept=True)
        est.partial_fit(X[:1], y[:1])
        assert np.abs(est.predict_proba(X) - before).max() < 0.02
    np.testing.assert_allclose(loaded.coef_, m.coef_, rtol=1e-12, atol=1e-12)


def test_dask_term_takes_the_explicit_hessian_cost_rule(monkeypatch):
    from softmaxkit.models import _softmax_regression as srm

    class Term:                       # what the rule reads from a Dask term: no X
        n_samples = 60_000

        def hessian(self):            # pragma: no cover - only its presence matters
            pass

    class Obj:
        n_params = 5 * 151

    assert not SoftmaxRegression._explicit_hessian_ok(Term(), Obj())
    monkeypatch.setattr(srm, "_EXPLICIT_HESSIAN_WORK", 1e12)
    assert SoftmaxRegression._explicit_hessian_ok(Term(), Obj())
