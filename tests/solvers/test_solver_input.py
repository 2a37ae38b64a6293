"""Bad input and non-finite values: every solver refuses what it cannot use with a
clear error (never a silent NaN, a 'precision limit' or a traceback from inside
NumPy/SciPy), and never reports convergence at a non-finite or worsened point."""

import re
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from softmaxkit.solvers import (
    lbfgs,
    newton_cholesky,
    proximal_newton,
    trust_region_newton_cg,
)

A = np.array([[3.0, 1.0], [1.0, 2.0]])
B = np.array([1.0, -1.0])
X_STAR = np.linalg.solve(A, B)


def quad(x):
    return 0.5 * x @ A @ x - B @ x, A @ x - B


def hess_a(x):
    return A


def hessp_a(x):
    return lambda v: A @ v


SOLVERS = ["lbfgs", "tr", "chol", "prox"]
OWNER = {"lbfgs": "lbfgs", "tr": "trust_region_newton_cg", "chol": "newton_cholesky",
         "prox": "proximal_newton"}


def run(name, fun_grad, x0, *, hess=hess_a, hessp=hessp_a, **kw):
    if name == "lbfgs":
        return lbfgs(fun_grad, x0, **kw)
    if name == "tr":
        return trust_region_newton_cg(fun_grad, hessp, x0, **kw)
    if name == "chol":
        return newton_cholesky(fun_grad, hess, x0, **kw)
    return proximal_newton(fun_grad, x0, 0.0, hess=hess, **kw)


class Counted:
    """fun_grad wrapper that counts its calls and remembers their points."""

    def __init__(self, fun_grad):
        self.fun_grad = fun_grad
        self.points = []

    def __call__(self, x):
        self.points.append(np.array(x, copy=True))
        return self.fun_grad(x)


# ------------------------------------------------------------ non-finite at x0 (1, 5)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("bad_f", [np.nan, np.inf, -np.inf])
def test_non_finite_objective_at_x0_is_a_value_error(solver, bad_f):
    fg = Counted(lambda x: (bad_f, A @ x - B))
    with pytest.raises(ValueError, match=r"fun_grad returned a non-finite objective at x0"):
        run(solver, fg, np.zeros(2))
    assert len(fg.points) == 1  # nothing more is tried from there


@pytest.mark.parametrize("solver", SOLVERS)
def test_non_finite_gradient_at_x0_is_a_value_error(solver):
    fg = Counted(lambda x: (0.0, np.array([np.nan, 1.0])))
    with pytest.raises(ValueError, match=r"non-finite gradient at x0 \(1 of 2 entries"):
        run(solver, fg, np.zeros(2))
    assert len(fg.points) == 1


# ------------------------------------------------------ lbfgs: never a bad "converged" (1)
def test_lbfgs_never_converges_at_a_non_finite_or_worse_point():
    """sum(log x) is unbounded below and NaN for x < 0: SciPy's L-BFGS-B took NaN trial
    points and the wrapper reported convergence at f = 25.46 (the start has 0.69)."""
    fg = Counted(lambda x: (float(np.sum(np.log(x))), 1 / x))
    x0 = np.array([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lbfgs(fg, x0)
    assert not res.converged
    assert "not finite" in res.message
    assert np.all(np.isfinite(res.x)) and np.isfinite(res.fun)
    # the returned point is the best finite one evaluated, and fun is its value
    with np.errstate(invalid="ignore", divide="ignore"):
        seen = [float(np.sum(np.log(p))) for p in fg.points]
    assert res.fun == min(f for f in seen if np.isfinite(f))
    assert res.fun == float(np.sum(np.log(res.x)))
    assert res.fun < float(np.sum(np.log(x0)))
    assert res.n_fev == len(fg.points)


@pytest.mark.parametrize("solver", SOLVERS)
def test_trial_points_with_nan_are_rejected_and_the_scipy_optimum_is_reached(solver):
    """f = c.x - sum(log x) is NaN for x <= 0; long first steps land there.  Every
    solver backtracks (lbfgs too: SciPy's line search is shown a large value) and
    reaches the optimum 1/c, which SciPy's bounded L-BFGS-B confirms."""
    c = np.array([1.0, 4.0, 0.5])

    def fg(x):
        if np.any(x <= 0):
            return np.nan, np.full_like(x, np.nan)
        return float(c @ x - np.sum(np.log(x))), c - 1 / x

    ref = minimize(lambda x: fg(x)[0], np.ones(3), jac=lambda x: fg(x)[1],
                   method="L-BFGS-B", bounds=[(1e-9, None)] * 3,
                   options={"gtol": 1e-12, "ftol": 0})
    counted = Counted(fg)
    res = run(solver, counted, np.array([30.0, 0.01, 0.1]), hess=lambda x: np.diag(1 / x**2),
              hessp=lambda x: (lambda v: v / x**2), tol=1e-8)
    assert any(np.any(p <= 0) for p in counted.points)  # it did meet NaN
    assert res.converged
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6)
    np.testing.assert_allclose(res.x, 1 / c, rtol=1e-7)
    assert res.n_fev == len(counted.points)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_point_with_a_finite_objective_but_a_nan_gradient_is_rejected(solver):
    """The gradient is NaN on 0.9 < x < 1.1 (f is finite there) and the first step
    lands at x = 1: it used to be accepted, and the run ended there ('precision
    limit' with x = 1)."""
    def fg(x):
        g = 2 * (x - 2.0)
        if np.any((x > 0.9) & (x < 1.1)):
            g = np.full_like(x, np.nan)
        return float(np.sum((x - 2.0) ** 2)), g

    # a Hessian twice the true one: the (damped) Newton step from 0 is exactly 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = run(solver, fg, np.zeros(1), hess=lambda x: 4 * np.eye(1),
                  hessp=lambda x: (lambda v: 4 * v), tol=1e-8)
    assert res.converged
    np.testing.assert_allclose(res.x, [2.0], atol=1e-7)


# ---------------------------------------------- non-finite Hessians, n_fev counts (5)
@pytest.mark.parametrize("solver", ["chol", "prox"])
@pytest.mark.parametrize("at_call", [1, 2])
def test_a_non_finite_hessian_is_a_value_error_naming_hess(solver, at_call):
    count = [0]

    def hess(x):
        count[0] += 1
        H = A.copy()
        if count[0] == at_call:
            H[0, 1] = np.nan
        return H

    fg = Counted(quad)
    with pytest.raises(ValueError, match=r"hess returned a non-finite Hessian"):
        # a Hessian 3 times too small: the first Newton step does not finish the job
        run(solver, fg, np.zeros(2), hess=lambda x: hess(x) / 3, tol=1e-12)
    assert len(fg.points) < 10  # not 61 evaluations then 'line search failed'


def test_tr_non_finite_hessp_or_precond_products_are_value_errors():
    count = [0]

    def hessp(x):
        count[0] += 1
        bad = count[0] == 2
        return lambda v: A @ v + (np.nan if bad else 0.0)

    with pytest.raises(ValueError, match=r"^hessp returned non-finite values"):
        trust_region_newton_cg(quad, hessp, np.zeros(2), tol=1e-12, max_cg=1)
    with pytest.raises(ValueError, match=r"^precond returned non-finite values"):
        trust_region_newton_cg(quad, hessp_a, np.zeros(2),
                               precond=lambda x: (lambda r: r * np.nan))
    with pytest.raises(ValueError, match=r"^hessp returned non-finite values"):
        proximal_newton(quad, np.zeros(2), 0.1, hessp=lambda x: (lambda v: v * np.nan))


@pytest.mark.parametrize("solver", SOLVERS)
def test_n_fev_is_the_number_of_fun_grad_calls(solver):
    from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

    fg = Counted(lambda x: (rosen(x), rosen_der(x)))
    res = run(solver, fg, np.array([-1.2, 1.0]), hess=rosen_hess,
              hessp=lambda x: (lambda v: rosen_hess_prod(x, v)), tol=1e-8)
    assert res.converged
    assert res.n_fev == len(fg.points) > 1


# ------------------------------------------------------------- output shapes (6)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("gshape", [(3,), (2, 1), (1, 2), ()])
def test_a_gradient_of_the_wrong_shape_is_a_value_error(solver, gshape):
    fg = Counted(lambda x: (quad(x)[0], np.ones(gshape)))
    with pytest.raises(ValueError, match=re.escape(
            f"The 'fun_grad' parameter of {OWNER[solver]} must return a gradient g of shape "
            f"(2,) (the shape of x); got shape {gshape}.")):
        run(solver, fg, np.zeros(2))
    assert len(fg.points) == 1


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("wrap", [lambda f: np.array([f]), lambda f: np.array([[f]]),
                                  lambda f: np.array(f), lambda f: [np.float64(f)]])
def test_a_one_element_objective_is_accepted(solver, wrap):
    res = run(solver, lambda x: (wrap(quad(x)[0]), quad(x)[1]), np.zeros(2), tol=1e-10)
    ref = run(solver, quad, np.zeros(2), tol=1e-10)
    assert res.converged and type(res.fun) is float
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.x, X_STAR, atol=1e-8)


@pytest.mark.parametrize("solver", SOLVERS)
def test_bad_objectives_and_return_values(solver):
    with pytest.raises(ValueError, match=r"must return a scalar objective f; got an array "
                                         r"of shape \(3,\)"):
        run(solver, lambda x: (np.ones(3), quad(x)[1]), np.zeros(2))
    with pytest.raises(TypeError, match="must be real; got complex"):
        run(solver, lambda x: (1j + quad(x)[0], quad(x)[1]), np.zeros(2))
    with pytest.raises(TypeError, match="must be real; got complex"):
        run(solver, lambda x: (quad(x)[0], quad(x)[1] + 0j), np.zeros(2))
    with pytest.raises(TypeError, match=r"must be a real number or array; got NoneType"):
        run(solver, lambda x: (None, quad(x)[1]), np.zeros(2))
    with pytest.raises(TypeError, match=r"must return a pair \(f, g\)"):
        run(solver, lambda x: quad(x)[0], np.zeros(2))


@pytest.mark.parametrize("solver", ["chol", "prox"])
def test_a_hessian_of_the_wrong_shape_is_a_value_error(solver):
    owner = OWNER[solver]
    for bad in (np.eye(3), np.ones(2), np.eye(2)[None]):
        with pytest.raises(ValueError, match=re.escape(
                f"The 'hess' parameter of {owner} must return a Hessian of shape (2, 2) "
                f"for x of shape (2,); got shape {bad.shape}.")):
            run(solver, quad, np.zeros(2), hess=lambda x, bad=bad: bad)


def test_hessp_and_precond_products_of_the_wrong_shape_are_value_errors():
    bad = lambda x: (lambda v: np.ones(3))  # noqa: E731
    with pytest.raises(ValueError, match=re.escape(
            "The 'hessp' parameter of trust_region_newton_cg must return a callable whose "
            "result has shape (2,) (the shape of x); got shape (3,).")):
        trust_region_newton_cg(quad, bad, np.zeros(2))
    with pytest.raises(ValueError, match=re.escape(
            "The 'precond' parameter of trust_region_newton_cg must return a callable whose "
            "result has shape (2,)")):
        trust_region_newton_cg(quad, hessp_a, np.zeros(2), precond=bad)
    with pytest.raises(ValueError, match=re.escape(
            "The 'hessp' parameter of proximal_newton must return a callable whose result "
            "has shape (2,)")):
        proximal_newton(quad, np.zeros(2), 0.1, hessp=bad)


@pytest.mark.parametrize("l1", [np.ones(3), np.ones(1), np.ones((2, 1)), np.ones((1, 2))])
def test_l1_weights_of_the_wrong_shape_are_a_value_error(l1):
    with pytest.raises(ValueError, match=re.escape(
            "The 'l1' parameter of proximal_newton must be a float or an array of shape "
            f"(2,) (the shape of x0); got an array of shape {l1.shape}.")):
        proximal_newton(quad, np.zeros(2), l1, hess=hess_a)


def test_l1_weights_values_and_types():
    with pytest.raises(ValueError, match=re.escape(
            "The 'l1' parameter of proximal_newton must be finite and non-negative")):
        proximal_newton(quad, np.zeros(2), np.array([0.1, np.nan]), hess=hess_a)
    with pytest.raises(TypeError, match="must be real; got complex"):
        proximal_newton(quad, np.zeros(2), np.array([0.1, 1j]), hess=hess_a)
    # a scalar and an (n,) array of the same weight give the same answer
    r1 = proximal_newton(quad, np.zeros(2), 0.2, hess=hess_a, tol=1e-12)
    r2 = proximal_newton(quad, np.zeros(2), [0.2, 0.2], hess=hess_a, tol=1e-12)
    np.testing.assert_array_equal(r1.x, r2.x)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(2, 1), (1, 2)])
def test_a_starting_point_of_more_dimensions_is_refused(solver, shape):
    # it was flattened silently (fun_grad saw shape (2,)), while an l1 of shape (2, 1)
    # was refused
    fg = Counted(quad)
    with pytest.raises(ValueError, match=re.escape(
            f"The 'x0' parameter of {OWNER[solver]} must be a 1-D array of shape (n,) (or a "
            f"scalar, taken as shape (1,)); got an array of shape {shape}.")):
        run(solver, fg, np.zeros(shape))
    assert fg.points == []


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_scalar_starting_point_is_shape_one(solver):
    res = run(solver, lambda x: (float((x[0] - 2) ** 2), 2 * (x - 2)), 5.0,
              hess=lambda x: 2 * np.eye(1), hessp=lambda x: (lambda v: 2 * v), tol=1e-10)
    assert res.x.shape == (1,) and res.converged
    np.testing.assert_allclose(res.x, [2.0])
