"""When the solvers call ``hessp``/``precond``/``hess``: the documented contract
that a caching implementation relies on."""

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

from softmaxkit.solvers import newton_cholesky, proximal_newton, trust_region_newton_cg


def test_tr_hessp_is_called_at_the_accepted_iterate_not_the_last_trial():
    """The documented contract: after a rejected step hessp(x) and precond(x) get the
    current iterate, which is not the last point fun_grad saw."""
    calls = []

    def fg(x):
        calls.append(("f", x.copy()))
        return rosen(x), rosen_der(x)

    def hessp(x):
        calls.append(("h", x.copy()))
        return lambda v: rosen_hess_prod(x, v)

    def precond(x):
        calls.append(("p", x.copy()))
        return lambda r: r

    res = trust_region_newton_cg(fg, hessp, np.array([-1.2, 1.0]), precond=precond,
                                 delta0=10.0, tol=1e-10)
    assert res.converged
    rejected = 0
    for i, (kind, x) in enumerate(calls):
        if kind == "f":
            continue
        # the iterate: the last fun_grad point whose value entered the history (a
        # rejected trial's value does not)
        f_points = [p for k, p in calls[:i] if k == "f"]
        current = next(p for p in reversed(f_points) if np.any(res.history == rosen(p)))
        np.testing.assert_array_equal(x, current)
        rejected += not np.array_equal(x, f_points[-1])
    assert rejected > 0  # the case the old docstring got wrong did occur


@pytest.mark.parametrize("solver", ["chol", "prox"])
def test_hess_is_called_at_the_last_fun_grad_point(solver):
    """newton_cholesky's and proximal_newton's documented guarantee (their line
    searches end on the point they accept), which a cache may rely on."""
    last = {}

    def fg(x):
        last["x"] = x.copy()
        return rosen(x), rosen_der(x)

    def hess(x):
        np.testing.assert_array_equal(x, last["x"])
        return rosen_hess(x)

    x0 = np.array([-1.2, 1.0])
    if solver == "chol":
        res = newton_cholesky(fg, hess, x0, tol=1e-10)
    else:
        res = proximal_newton(fg, x0, 0.0, hess=hess, tol=1e-10)
    assert res.converged and res.n_hessp > 5
