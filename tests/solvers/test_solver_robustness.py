"""Ill-conditioned, non-convex and precision-limited problems: the solvers reach
what SciPy / closed forms reach, and say truthfully why they stop when they
cannot."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from softmaxkit.solvers import (
    l1_optimality,
    newton_cholesky,
    proximal_newton,
    trust_region_newton_cg,
)


def _rotated_quadratic(n, cond, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.logspace(0, np.log10(cond), n)) @ Q.T
    A = (A + A.T) / 2
    b = rng.standard_normal(n)
    return A, b, np.linalg.solve(A, b)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


# ------------------------------------------------- trust-region Newton-CG (item 2)
def test_tr_converges_on_a_diagonal_quadratic_of_condition_1e8():
    # CG on 20 unknowns needs more than 20 steps in floating point here; truncated
    # at 20 the run took 1000 iterations without converging (SciPy's trust-ncg: 8)
    ev = np.logspace(0, 8, 20)
    res = trust_region_newton_cg(lambda x: (0.5 * x @ (ev * x) - x.sum(), ev * x - 1),
                                 lambda x: (lambda v: ev * v), np.zeros(20), tol=1e-8)
    assert res.converged and res.n_iter <= 20
    np.testing.assert_allclose(res.x, 1 / ev, rtol=1e-6)


@pytest.mark.parametrize("n", [20, 100])
def test_tr_converges_on_rotated_quadratics_of_condition_1e8(n):
    # f's values carry ~1e-10 relative rounding here: rating steps by them collapsed
    # the trust region at max |g| 1e-2 .. 2e-1 (SciPy's trust-ncg reaches ~1e-8)
    A, b, xs = _rotated_quadratic(n, 1e8)
    res = trust_region_newton_cg(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b),
                                 lambda x: (lambda v: A @ v), np.zeros(n), tol=1e-8)
    assert res.converged and res.n_iter <= 60
    assert np.max(np.abs(A @ res.x - b)) <= 1e-8 * max(1, abs(res.fun))
    np.testing.assert_allclose(res.x, xs, rtol=0, atol=1e-7 * np.max(np.abs(xs)))


def test_tr_stops_at_the_noise_floor_of_the_gradient():
    # tol=1e-12 is below the rounding of A x - b (~1e-9): stop soon, near that floor,
    # and say why (it collapsed at max |g| 2e-2 after 128 iterations)
    A, b, xs = _rotated_quadratic(20, 1e8)
    res = _quiet(trust_region_newton_cg, lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b),
                 lambda x: (lambda v: A @ v), np.zeros(20), tol=1e-12)
    assert not res.converged and "precision limit" in res.message
    assert res.n_iter <= 60 and res.grad_norm <= 1e-7


@pytest.mark.parametrize("x0", [[0.1], [1e-3, 1.0]])
def test_tr_without_a_trust_region_follows_negative_curvature(x0):
    # with delta0=inf Steihaug-CG returned p = 0 on the first direction of negative
    # curvature and the run stopped at x0 ("precision limit")
    if len(x0) == 1:
        def fg(z):
            return -z[0] ** 2 + z[0] ** 4, np.array([-2 * z[0] + 4 * z[0] ** 3])

        def hess(z):
            return np.array([[-2 + 12 * z[0] ** 2]])
        xs = [1 / np.sqrt(2)]
    else:
        def fg(z):
            return (z[0] ** 4 / 4 - z[0] ** 2 / 2 + z[1] ** 2,
                    np.array([z[0] ** 3 - z[0], 2 * z[1]]))

        def hess(z):
            return np.array([[3 * z[0] ** 2 - 1, 0.0], [0.0, 2.0]])
        xs = [1.0, 0.0]
    res = trust_region_newton_cg(fg, lambda z: (lambda v: hess(z) @ v), x0, tol=1e-10,
                                 delta0=np.inf)
    assert res.converged
    np.testing.assert_allclose(res.x, xs, atol=1e-8)


def test_tr_names_a_domain_edge_instead_of_the_precision_limit():
    def fg(z):  # NaN beyond z[0] = 1, the unconstrained minimum (3, 3) lies beyond
        if z[0] > 1:
            return np.nan, np.full_like(z, np.nan)
        return float(((z - 3) ** 2).sum()), 2 * (z - 3)

    res = _quiet(trust_region_newton_cg, fg, lambda z: (lambda v: 2 * v), np.zeros(2),
                 max_iter=200)
    assert not res.converged and "not finite" in res.message
    assert "precision limit" not in res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)


# ------------------------------------- line-search Newton at the precision limit (5, 6)
A2 = np.array([[3.0, 1.0], [1.0, 2.0]])
B2 = np.array([1.0, -1.0])


def _quad2(x):
    return 0.5 * x @ A2 @ x - B2 @ x, A2 @ x - B2


@pytest.mark.parametrize("solver", ["chol", "prox"])
def test_newton_stops_at_the_precision_limit_with_tol_zero(solver):
    # steps the rounding of f could not judge were accepted whenever f rose by less
    # than 1e3 eps |f|, so tol=0 ran all 1000 iterations (trust region: 4)
    if solver == "chol":
        res = _quiet(newton_cholesky, _quad2, lambda x: A2, np.zeros(2), tol=0.0)
    else:
        res = _quiet(proximal_newton, _quad2, np.zeros(2), 0.0, hess=lambda x: A2, tol=0.0)
    assert "precision limit" in res.message and res.n_iter <= 20
    np.testing.assert_allclose(res.x, np.linalg.solve(A2, B2), rtol=1e-14)


def test_newton_stops_at_the_noise_floor_of_an_ill_conditioned_quadratic():
    # condition 1e8: A x - b has rounding ~1e-9, above tol=1e-12 (it took 1000
    # iterations and 24,956 evaluations, then "max_iter reached")
    A, b, xs = _rotated_quadratic(2, 1e8)
    res = _quiet(newton_cholesky, lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b),
                 lambda x: A, np.zeros(2), tol=1e-12)
    assert not res.converged and "precision limit" in res.message
    assert res.n_iter <= 30 and res.n_fev <= 300
    np.testing.assert_allclose(res.x, xs, rtol=1e-7)


def test_newton_cholesky_with_a_zero_hessian_takes_gradient_steps():
    # f linear: the ridge started at 1e-312, d was 1e308, the slope -inf and the run
    # stopped at x0 with "line search failed (precision limit)"
    res = _quiet(newton_cholesky, lambda z: (-z.sum(), -np.ones_like(z)),
                 lambda z: np.zeros((2, 2)), np.array([0.5, 0.2]), max_iter=5)
    assert res.message == "max_iter reached" and res.n_iter == 5
    assert res.fun < -0.7 - 5


@pytest.mark.parametrize("solver", ["chol", "prox"])
def test_newton_names_a_domain_edge_instead_of_the_precision_limit(solver):
    def fg(z):
        if z[0] > 1:
            return np.nan, np.full_like(z, np.nan)
        return float(((z - 3) ** 2).sum()), 2 * (z - 3)

    hess = lambda z: 2 * np.eye(2)  # noqa: E731
    if solver == "chol":
        res = _quiet(newton_cholesky, fg, hess, np.zeros(2), max_iter=100)
    else:
        res = _quiet(proximal_newton, fg, np.zeros(2), 0.0, hess=hess, max_iter=100)
    assert not res.converged and "not finite" in res.message
    assert "precision limit" not in res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)


def test_backtracking_below_rounding_rates_steps_by_the_gradients():
    from softmaxkit.solvers._base import _backtrack

    # f = 1 + x^2 / 2 at x = 1e-9 along the Newton step: f cannot show the decrease
    # (5e-19); the gradients do, and the step is taken at once
    x0 = np.array([1e-9])
    fg = lambda x: (1.0 + 0.5 * float(x[0] ** 2), x.copy())  # noqa: E731
    t, x, f, g, n = _backtrack(fg, x0, -x0, fg(x0)[0], -1e-18, g=x0.copy())
    assert t == 1.0 and x[0] == 0.0 and n == 1
    # a step that overshoots to -3e-9 leaves f flat to rounding but its gradient shows
    # the increase: refused (it was accepted), then halved down to the minimum
    t, x, f, g, n = _backtrack(fg, x0, -4 * x0, fg(x0)[0], -4e-18, g=x0.copy())
    assert t == 0.25 and x[0] == 0.0
    # gradients that never show a decrease: the search gives up after 10 trials, not 60
    calls = []
    t, x, f, g, n = _backtrack(lambda x: (calls.append(1), 1.0, -x0)[1:], x0, -x0, 1.0,
                               -1e-18, g=x0.copy())
    assert t is None and g is None and n == len(calls) == 10


# ------------------------------------- proximal Newton with Hessian-vector products (1)
def test_proximal_newton_hessp_on_a_badly_scaled_quadratic():
    # restarted accelerated proximal gradient crawled: [0.629, 1e-6] after 200
    # iterations (the hess= path: 1 iteration)
    A = np.diag([1.0, 1e6])
    b = np.ones(2)
    res = proximal_newton(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(2), 0.0,
                          hessp=lambda x: (lambda v: A @ v), tol=1e-8, max_iter=200)
    assert res.converged and res.n_iter <= 5
    np.testing.assert_allclose(res.x, [1.0, 1e-6], rtol=1e-8)


def _lasso_with_a_collinear_pair():
    rng = np.random.default_rng(1)
    n, d = 80, 30
    X = rng.standard_normal((n, d))
    X[:, :5] *= 10
    X[:, 5] = X[:, 6] + 1e-3 * rng.standard_normal(n)
    w = np.zeros(d)
    w[:6] = rng.standard_normal(6) * 3
    y = X @ w + 5 + rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("with_diag", [False, True])
def test_proximal_newton_hessp_matches_sklearn_lasso_with_a_collinear_pair(with_diag):
    from sklearn.linear_model import Lasso

    X, y = _lasso_with_a_collinear_pair()
    n, d = X.shape
    alpha = 1e-3 * np.abs((X - X.mean(0)).T @ (y - y.mean())).max() / n
    ref = Lasso(alpha=alpha, tol=1e-14, max_iter=10**6).fit(X, y)
    Xa = np.hstack([X, np.ones((n, 1))])  # the intercept: unpenalised
    H = Xa.T @ Xa / n
    kw = {"hess_diag": lambda x: np.diag(H)} if with_diag else {}
    res = proximal_newton(lambda x: (0.5 / n * np.sum((Xa @ x - y) ** 2), Xa.T @ (Xa @ x - y) / n),
                          np.zeros(d + 1), np.r_[np.full(d, alpha), 0.0],
                          hessp=lambda x: (lambda v: H @ v), tol=1e-12, max_iter=2000, **kw)
    # it hit max_iter with coefficients 0.16 off and 7 nonzeros instead of 6
    assert res.converged and res.n_iter <= 30
    np.testing.assert_allclose(res.x, np.r_[ref.coef_, ref.intercept_], atol=1e-9)
    assert np.array_equal(res.x[:d] == 0, ref.coef_ == 0)


def _badly_scaled_l1_logistic(seed=0, n=150, d=300):
    # more features than samples, 10 of them 1000 times larger: the model case of the
    # review (an l1 fit on the hessp path) in binary form, with an unpenalised intercept
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) * (rng.random(d) < 0.05)
    y = (X @ w + rng.logistic(size=n) > 0).astype(float)
    X[:, :10] *= 1000
    Xa = np.hstack([X, np.ones((n, 1))])

    def fun_grad(c):
        z = Xa @ c
        return np.mean(np.logaddexp(0, z) - y * z), Xa.T @ (1 / (1 + np.exp(-z)) - y) / n

    def weights(c):
        p = 1 / (1 + np.exp(-(Xa @ c)))
        return p * (1 - p) / n

    def hessp(c):
        s = weights(c)
        return lambda v: Xa.T @ (s * (Xa @ v))

    def hess(c):
        return (Xa.T * weights(c)) @ Xa

    def hess_diag(c):
        return weights(c) @ Xa ** 2

    l1 = np.r_[np.full(d, 0.02), 0.0]
    return fun_grad, hessp, hess, hess_diag, l1, d + 1


@pytest.mark.parametrize("with_diag", [False, True])
def test_proximal_newton_hessp_on_a_badly_scaled_l1_logistic_regression(with_diag):
    fun_grad, hessp, hess, hess_diag, l1, m = _badly_scaled_l1_logistic()
    ref = proximal_newton(fun_grad, np.zeros(m), l1, hess=hess, tol=1e-10)
    assert ref.converged
    kw = {"hess_diag": hess_diag} if with_diag else {}
    res = proximal_newton(fun_grad, np.zeros(m), l1, hessp=hessp, tol=1e-10, **kw)
    # 1000 iterations without converging before (the model case: objective 70.88
    # against 65.64)
    assert res.converged and res.n_iter <= 30
    assert res.fun == pytest.approx(ref.fun, rel=1e-10)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    assert np.array_equal(res.x == 0, ref.x == 0)


def test_proximal_newton_hess_on_an_ill_conditioned_lasso():
    # coordinate descent crawled on a rotated quadratic of condition 1e8 (1000
    # iterations, the objective 55 above the optimum); it now goes on by conjugate
    # gradients on faces, and both paths meet the optimality conditions
    A, _, _ = _rotated_quadratic(60, 1e8, seed=2)
    b = np.random.default_rng(3).standard_normal(60) * 10

    def fg(x):
        return 0.5 * x @ A @ x - b @ x, A @ x - b

    out = []
    for kw in ({"hess": lambda x: A}, {"hessp": lambda x: (lambda v: A @ v)}):
        res = _quiet(proximal_newton, fg, np.zeros(60), 0.5, tol=1e-10, **kw)
        kkt = np.max(np.abs(l1_optimality(res.x, fg(res.x)[1], np.full(60, 0.5))))
        assert res.converged or "precision limit" in res.message
        assert res.n_iter <= 300 and kkt <= 1e-6 * abs(res.fun)
        out.append(res)
    assert out[0].fun == pytest.approx(out[1].fun, rel=1e-9)
    np.testing.assert_allclose(out[0].x, out[1].x, atol=1e-6)


def test_hess_diag_is_checked():
    with pytest.raises(ValueError, match=r"'hess_diag' parameter of proximal_newton must "
                                         r"return an array of shape \(2,\)"):
        proximal_newton(_quad2, np.zeros(2), 0.1, hessp=lambda x: (lambda v: A2 @ v),
                        hess_diag=lambda x: np.ones(3))
    with pytest.raises(ValueError, match="hess_diag returned non-finite values"):
        proximal_newton(_quad2, np.zeros(2), 0.1, hessp=lambda x: (lambda v: A2 @ v),
                        hess_diag=lambda x: np.array([1.0, np.nan]))


# ------------------------------------------------------ non-convex smooth parts (4)
@pytest.mark.parametrize("path", ["hess", "hessp"])
def test_proximal_newton_on_a_non_convex_function(path):
    # negative diagonal entries were floored to 1e-300 and the run stopped at x0 with
    # "no further decrease is possible (precision limit)"
    def fg(z):
        return -z[0] ** 2 + z[0] ** 4 + z[1] ** 2, np.array([-2 * z[0] + 4 * z[0] ** 3,
                                                             2 * z[1]])

    def hess(z):
        return np.array([[-2 + 12 * z[0] ** 2, 0.0], [0.0, 2.0]])

    kw = {"hess": hess} if path == "hess" else {"hessp": lambda z: (lambda v: hess(z) @ v)}
    res = proximal_newton(fg, [0.1, 1.0], 0.0, tol=1e-10, **kw)
    assert res.converged
    np.testing.assert_allclose(res.x, [1 / np.sqrt(2), 0.0], atol=1e-9)
    # with an l1 term: minimise -x^2 + x^4 + 0.1 |x| (x > 0: 4x^3 - 2x + 0.1 = 0)
    res = proximal_newton(fg, [0.1, 1.0], np.array([0.1, 0.0]), tol=1e-10, **kw)
    root = max(np.roots([4, 0, -2, 0.1]).real)
    np.testing.assert_allclose(res.x, [root, 0.0], atol=1e-9)
