"""Solvers against SciPy / scikit-learn oracles on problems with known minimisers."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess, rosen_hess_prod
from sklearn.exceptions import ConvergenceWarning

from softmaxkit.solvers import (
    Adam,
    OptimizeResult,
    hessian_from_hessp,
    l1_optimality,
    lbfgs,
    newton_cholesky,
    on_iteration,
    proximal_newton,
    trust_region_newton_cg,
)


def _logistic_problem(seed=0, n=300, d=8, lam=1e-2):
    """Binary l2-regularised logistic regression (mean loss): f, grad, hessp, hess."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 5, d)
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n) > 0).astype(float)

    def fun_grad(w):
        z = X @ w
        f = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * lam * w @ w
        p = 1 / (1 + np.exp(-z))
        return f, X.T @ (p - y) / n + lam * w

    def hessp(w):
        p = 1 / (1 + np.exp(-(X @ w)))
        c = p * (1 - p) / n
        return lambda v: X.T @ (c * (X @ v)) + lam * v

    def hess(w):
        p = 1 / (1 + np.exp(-(X @ w)))
        return (X.T * (p * (1 - p) / n)) @ X + lam * np.eye(d)

    ref = minimize(lambda w: fun_grad(w)[0], np.zeros(d), jac=lambda w: fun_grad(w)[1],
                   method="trust-exact", hess=hess, options={"gtol": 1e-13})
    return fun_grad, hessp, hess, ref.x, d


@pytest.mark.parametrize("solver", ["tr-ncg", "tr-ncg-precond", "cholesky", "lbfgs",
                                    "prox-hess", "prox-hessp"])
def test_every_solver_reaches_the_scipy_optimum(solver):
    fun_grad, hessp, hess, xref, d = _logistic_problem()
    x0 = np.zeros(d)
    if solver == "tr-ncg":
        res = trust_region_newton_cg(fun_grad, hessp, x0, tol=1e-10)
    elif solver == "tr-ncg-precond":
        def precond(w):
            dg = np.diag(hess(w))
            return lambda r: r / dg
        res = trust_region_newton_cg(fun_grad, hessp, x0, precond=precond, tol=1e-10)
    elif solver == "cholesky":
        res = newton_cholesky(fun_grad, hess, x0, tol=1e-10)
    elif solver == "lbfgs":
        res = lbfgs(fun_grad, x0, tol=1e-9)
    elif solver == "prox-hess":
        res = proximal_newton(fun_grad, x0, np.zeros(d), hess=hess, tol=1e-10)
    else:
        res = proximal_newton(fun_grad, x0, np.zeros(d), hessp=hessp, tol=1e-10)
    assert isinstance(res, OptimizeResult)
    assert res.converged
    np.testing.assert_allclose(res.x, xref, rtol=1e-6, atol=1e-7)
    assert res.history.shape == (res.n_iter + 1,)
    assert res.history[-1] == pytest.approx(res.fun)
    assert res.fun <= fun_grad(xref)[0] + 1e-12


def test_rosenbrock_nonconvex():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8])
    fg = lambda x: (rosen(x), rosen_der(x))  # noqa: E731
    res = trust_region_newton_cg(fg, lambda x: (lambda v: rosen_hess_prod(x, v)), x0,
                                 tol=1e-10)
    np.testing.assert_allclose(res.x, np.ones(4), atol=1e-7)
    # 2-D: a single minimiser (in 4-D Newton may stop at the other local minimum)
    res = newton_cholesky(fg, rosen_hess, np.array([-1.2, 1.0]), tol=1e-10)
    np.testing.assert_allclose(res.x, np.ones(2), atol=1e-7)


def test_on_iteration_hook_called_once_per_iteration_for_every_solver():
    fun_grad, hessp, hess, _, d = _logistic_problem(seed=1)
    runs = {
        "tr": lambda: trust_region_newton_cg(fun_grad, hessp, np.zeros(d), tol=1e-8),
        "chol": lambda: newton_cholesky(fun_grad, hess, np.zeros(d), tol=1e-8),
        "lbfgs": lambda: lbfgs(fun_grad, np.zeros(d), tol=1e-8),
        "prox": lambda: proximal_newton(fun_grad, np.zeros(d), 1e-3, hess=hess, tol=1e-8),
    }
    for name, run in runs.items():
        seen = []
        with on_iteration(seen.append):
            res = run()
        assert [i["iteration"] for i in seen] == list(range(1, res.n_iter + 1)), name
        assert all(i["max_iter"] == 1000 for i in seen)
        np.testing.assert_allclose([i["objective"] for i in seen], res.history[1:])
        assert seen[-1]["grad_norm"] == pytest.approx(res.grad_norm)
    seen = []
    with on_iteration(seen.append):
        opt = Adam()
        opt.step(np.ones(2), np.ones(2), objective=1.0)
    assert seen[0]["iteration"] == 1
    # outside the block nothing is called
    res = lbfgs(fun_grad, np.zeros(d))
    assert len(seen) == 1
    with pytest.raises(TypeError):
        with on_iteration(3):
            pass


@pytest.mark.parametrize("which", ["tr", "chol", "lbfgs", "prox"])
def test_convergence_warning_at_max_iter(which):
    fun_grad, hessp, hess, _, d = _logistic_problem(seed=2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        if which == "tr":
            res = trust_region_newton_cg(fun_grad, hessp, np.zeros(d), tol=1e-12, max_iter=1)
        elif which == "chol":
            res = newton_cholesky(fun_grad, hess, np.zeros(d), tol=1e-12, max_iter=1)
        elif which == "lbfgs":
            res = lbfgs(fun_grad, np.zeros(d), tol=1e-12, max_iter=2)
        else:
            res = proximal_newton(fun_grad, np.zeros(d), 1e-3, hess=hess, tol=1e-12,
                                  max_iter=1)
    assert not res.converged


@pytest.mark.parametrize("cg_gtol", [0.0, 0.7, 1.0])
def test_stopping_rule_is_the_gradient_criterion(cg_gtol):
    fun_grad, hessp, hess, _, d = _logistic_problem(seed=3)
    for tol in (1e-3, 1e-6):
        res = trust_region_newton_cg(fun_grad, hessp, np.zeros(d), tol=tol, cg_gtol=cg_gtol)
        f, g = fun_grad(res.x)
        assert res.converged
        assert np.max(np.abs(g)) <= tol * max(1, abs(f))
        assert res.grad_norm == pytest.approx(np.max(np.abs(g)))


def test_cg_stops_once_the_model_gradient_meets_gtol():
    from softmaxkit.solvers._newton import _steihaug_cg

    rng = np.random.default_rng(0)
    Q = rng.standard_normal((40, 40))
    H = Q @ Q.T / 40 + np.diag(np.logspace(-2, 1, 40))
    g = rng.standard_normal(40)
    _, _, _, n_full, _ = _steihaug_cg(g, lambda v: H @ v, lambda r: r, np.inf, 1e-10, 40)
    for gtol in (1e-1, 1e-3):
        p, hp, boundary, n_cg, _ = _steihaug_cg(g, lambda v: H @ v, lambda r: r, np.inf,
                                                 1e-10, 40, gtol=gtol)
        np.testing.assert_allclose(hp, H @ p, atol=1e-12)
        assert np.max(np.abs(g + H @ p)) <= gtol
        assert not boundary and n_cg < n_full
        # it stopped at the first CG step that met gtol
        _, hp1, _, _, _ = _steihaug_cg(g, lambda v: H @ v, lambda r: r, np.inf, 1e-10,
                                       n_cg - 1)
        assert np.max(np.abs(g + hp1)) > gtol


@pytest.mark.parametrize("use_hess", [True, False])
def test_proximal_newton_equals_lasso(use_hess):
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(4)
    n, d = 80, 12
    X = rng.standard_normal((n, d))
    y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.3 * rng.standard_normal(n)
    alpha = 0.1
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=100000).fit(X, y).coef_
    A = X.T @ X / n

    def fun_grad(w):
        r = X @ w - y
        return 0.5 * r @ r / n, X.T @ r / n

    kw = {"hess": lambda w: A} if use_hess else {"hessp": lambda w: (lambda v: A @ v)}
    tol = 1e-12 if use_hess else 1e-9
    res = proximal_newton(fun_grad, np.zeros(d), np.full(d, alpha), tol=tol, **kw)
    assert res.converged
    np.testing.assert_allclose(res.x, ref, atol=1e-8 if use_hess else 1e-6)
    # exact zeros where the lasso has them
    assert np.array_equal(res.x == 0, ref == 0)
    f, g = fun_grad(res.x)
    assert np.max(np.abs(l1_optimality(res.x, g, np.full(d, alpha)))) <= tol


def test_l1_optimality_matches_the_definition():
    x = np.array([0.0, 0.0, 1.5, -2.0, 0.0])
    g = np.array([0.3, -2.0, 0.1, 0.4, 1.0])
    lam = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    expected = [0.0, -1.0, 1.1, -0.6, 1.0]
    np.testing.assert_allclose(l1_optimality(x, g, lam), expected)


def test_hessian_from_hessp_and_singular_newton():
    rng = np.random.default_rng(5)
    B = rng.standard_normal((4, 2))
    A = B @ B.T  # rank 2, singular
    b = A @ np.array([1.0, -1.0, 0.5, 2.0])  # consistent right-hand side
    np.testing.assert_allclose(hessian_from_hessp(lambda v: A @ v, 4), A, atol=1e-15)
    fg = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)  # noqa: E731
    res = newton_cholesky(fg, lambda x: A, np.zeros(4), tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(A @ res.x, b, atol=1e-8)
    res = trust_region_newton_cg(fg, lambda x: (lambda v: A @ v), np.zeros(4), tol=1e-10)
    np.testing.assert_allclose(A @ res.x, b, atol=1e-8)


def test_backtracking_fails_when_the_asked_decrease_is_below_rounding():
    """A flat function with a (noisy) descent slope: once ``1e-4 t slope`` no longer
    changes ``f`` the search fails instead of accepting ``f_new == f``."""
    from softmaxkit.solvers._base import _backtrack

    calls = []

    def fg(x):
        calls.append(x.copy())
        return 1.0, np.array([1e-6])

    t, x, f, g, n = _backtrack(fg, np.zeros(1), np.array([-1.0]), 1.0, -1e-6)
    assert t is None and g is None and f == 1.0
    # it gave up once 1e-4 t |slope| fell below f's rounding (t < 1.1e-6: about 20
    # halvings), not after all 60
    assert n == len(calls) <= 25
    # an overshoot whose asked decrease is below rounding is still halved: f = 1 +
    # x^2 / 2 at x = 7e-7 along d = -2.8e-6 (slope -1.96e-12) rises at t = 1, is
    # flat at t = 1/2 and falls by 2.45e-13 at t = 1/4
    x0, d0 = np.array([7e-7]), np.array([-2.8e-6])
    t, x, f, g, n = _backtrack(lambda x: (1.0 + 0.5 * float(x[0] ** 2), x.copy()), x0, d0,
                               1.0 + 0.5 * 7e-7 ** 2, float(x0 @ d0))
    assert t == 0.25 and f < 1.0 + 0.5 * 7e-7 ** 2
    # a non-finite trial is halved, not the end of the search (x^2 from 1 along -4:
    # NaN at t = 1, f unchanged at 1/2, the minimum at 1/4)
    t, *_ = _backtrack(lambda x: (np.nan if x[0] < -1.5 else float(x[0] ** 2), 2 * x),
                       np.ones(1), -np.array([4.0]), 1.0, -8.0)
    assert t == 0.25
    # a decrease that is real but smaller than 1e-4 of the slope's rounding is taken
    # (slope -3.7e-13 at f = 0.7: 1e-4 t slope does not change f, the step does)
    s2 = 3.7e-13
    t, x, f, g, n = _backtrack(lambda x: (0.7 + 0.5 * float(x[0] ** 2), x.copy()),
                               np.array([np.sqrt(s2)]), -np.array([np.sqrt(s2)]),
                               0.7 + 0.5 * s2, -s2)
    assert t == 1.0 and n == 1 and f == 0.7
    # a genuine decrease is still accepted at the full step
    t, *_ = _backtrack(lambda x: (float(x[0] ** 2), 2 * x), np.ones(1), -np.ones(1),
                       1.0, -2.0)
    assert t == 1.0


def test_adam_and_sgd_minimise_a_quadratic():
    A = np.diag([1.0, 10.0])
    for method in ("adam", "sgd"):
        opt = Adam(learning_rate=0.05, method=method, decay=0.0)
        x = np.array([2.0, -1.0])
        for _ in range(3000):
            x = opt.step(x, A @ x)
        assert np.max(np.abs(x)) < 1e-3, method


def test_bad_arguments():
    fg = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    with pytest.raises(ValueError, match="tol"):
        lbfgs(fg, np.ones(2), tol=-1)
    with pytest.raises(ValueError, match="max_iter"):
        newton_cholesky(fg, lambda x: 2 * np.eye(2), np.ones(2), max_iter=-1)
    with pytest.raises(ValueError, match="finite"):
        trust_region_newton_cg(fg, lambda x: (lambda v: 2 * v), np.array([np.nan, 1.0]))
    for bad in (-0.1, np.nan):
        with pytest.raises(ValueError, match="cg_gtol"):
            trust_region_newton_cg(fg, lambda x: (lambda v: 2 * v), np.ones(2), cg_gtol=bad)
    with pytest.raises(ValueError, match="hess"):
        proximal_newton(fg, np.ones(2), 0.1)
    with pytest.raises(ValueError, match="l1"):
        proximal_newton(fg, np.ones(2), -0.1, hess=lambda x: 2 * np.eye(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = lbfgs(fg, np.zeros(2))  # already optimal: no warning, 0 iterations
    assert res.converged and res.n_iter == 0
