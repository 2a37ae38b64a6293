"""Ill-conditioned, non-convex and precision-limited problems: the solvers reach
what SciPy / closed forms reach, and say truthfully why they stop when they
cannot."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from softmaxkit.solvers import newton_cholesky, proximal_newton, trust_region_newton_cg


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
