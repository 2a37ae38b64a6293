"""L-BFGS: SciPy's L-BFGS-B driven by our stopping rule and iteration hook."""

from __future__ import annotations

import numpy as np

from ._base import _check_common, _check_x0, _inf_norm, _Monitor

__all__ = ["lbfgs"]


class _Converged(Exception):
    pass


def lbfgs(fun_grad, x0, *, tol=1e-6, max_iter=1000, memory=20, verbose=0):
    """Minimise a smooth function with limited-memory BFGS.

    SciPy's ``L-BFGS-B`` (no bounds) takes the steps; this wrapper applies the
    stopping rule shared by all solvers, counts iterations, calls the
    :func:`on_iteration` hooks and warns when ``max_iter`` is reached.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x) -> (f, g)`` with ``x`` and ``g`` of shape (n,).
    x0 : array_like of shape (n,)
        Starting point.
    tol : float, default=1e-6
        Stop when ``max |g| <= tol * max(1, |f|)``.
    max_iter : int, default=1000
        Maximum number of iterations (``ConvergenceWarning`` when reached).
    memory : int >= 1, default=20
        Number of correction pairs kept.
    verbose : int, default=0
        Print one line per iteration when positive.

    Returns
    -------
    OptimizeResult

    Notes
    -----
    SciPy's own tests on the gradient and the relative decrease are switched off
    (``gtol=0``, ``ftol=0``): it then stops early only when the line search finds no
    decrease in floating point, which is reported as not converged.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der
    >>> from softmaxkit.solvers import lbfgs
    >>> res = lbfgs(lambda x: (rosen(x), rosen_der(x)), np.array([-1.2, 1.0]), tol=1e-8)
    >>> bool(res.converged), np.round(res.x, 5)
    (True, array([1., 1.]))
    """
    from scipy.optimize import minimize

    from .._validation import check_scalar_param

    _check_common(tol, max_iter, "lbfgs")
    memory = check_scalar_param(memory, "memory", "lbfgs", kind=int, low=1)
    x = _check_x0(x0)
    cache = {}
    n_fev = [0]

    def fg(z):
        f, g = fun_grad(z)
        g = np.asarray(g, dtype=np.float64)
        n_fev[0] += 1
        cache["x"], cache["f"], cache["g"] = z.copy(), float(f), g
        return float(f), g

    f0, g0 = fg(x)
    mon = _Monitor("L-BFGS", tol, max_iter, verbose, f0, _inf_norm(g0))
    if mon.done(f0, mon.gnorm) or max_iter == 0:
        return mon.result(x, f0, mon.done(f0, mon.gnorm), "converged" if mon.done(
            f0, mon.gnorm) else "max_iter reached", n_fev[0])
    state = {"x": x, "f": f0, "converged": False}

    def callback(intermediate_result):
        xk = intermediate_result.x
        if "x" in cache and np.array_equal(cache["x"], xk):
            f, g = cache["f"], cache["g"]
        else:
            f, g = fg(xk)
        gnorm = _inf_norm(g)
        mon.step(f, gnorm)
        state["x"], state["f"] = xk.copy(), f
        if mon.done(f, gnorm):
            state["converged"] = True
            raise StopIteration

    minimize(fg, x, jac=True, method="L-BFGS-B", callback=callback,
             options={"maxiter": max_iter, "maxcor": memory, "gtol": 0.0,
                      "ftol": 0.0, "maxfun": 20 * max_iter + 20,
                      "maxls": 50})
    if state["converged"]:
        message = "converged"
    elif mon.n_iter >= max_iter:
        message = "max_iter reached"
    else:
        message = "no further decrease is possible (precision limit)"
    return mon.result(state["x"], state["f"], state["converged"], message, n_fev[0])
