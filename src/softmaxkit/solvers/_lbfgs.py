"""L-BFGS: SciPy's L-BFGS-B driven by our stopping rule and iteration hook."""

from __future__ import annotations

import numpy as np

from ._base import _EPS, _check_common, _check_x0, _inf_norm, _Monitor, _start

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
        ``fun_grad(x) -> (f, g)`` with ``x`` and ``g`` of shape (n,) and ``f`` a real
        scalar; both must be finite at ``x0`` (ValueError otherwise).  A trial point
        where either is not finite (NaN or inf) is rejected: SciPy's line search is
        shown ``f_k + 10 (1 + |f_k|)`` there (``f_k`` the current iterate's value) with
        a zero gradient, so that it backtracks.
    x0 : array_like of shape (n,)
        Starting point, finite; a scalar is taken as shape (1,), an array of more
        dimensions is refused (ValueError).
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
        Converged: ``x`` is the last iterate, where the objective is finite and no
        larger than at the start or any earlier iterate.  Otherwise ``x`` is the
        best point (lowest finite objective) evaluated, never one worse than that.

    Raises
    ------
    ValueError
        When ``fun_grad`` returns a non-scalar objective, a gradient not of shape
        (n,) or non-finite values at ``x0``.

    Notes
    -----
    SciPy's own tests on the gradient and the relative decrease are switched off
    (``gtol=0``, ``ftol=0``): it then stops early only when the line search finds no
    decrease in floating point (or only non-finite values), which is reported as not
    converged.

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

    owner = "lbfgs"
    _check_common(tol, max_iter, owner)
    memory = check_scalar_param(memory, "memory", owner, kind=int, low=1)
    x = _check_x0(x0, owner)
    fun_grad, f0, g0 = _start(fun_grad, x, owner)
    n_fev = [1]
    # the last evaluation (raw values), and the best finite one
    cache = {"x": x.copy(), "f": f0, "g": g0}
    best = {"x": cache["x"], "f": f0, "gnorm": _inf_norm(g0)}
    flags = {"reuse_x0": True, "nonfinite": False}
    state = {"x": x, "f": f0, "converged": False, "best_iter_f": f0}

    def evaluate(z):
        f, g = fun_grad(z)
        f = float(f)
        g = np.asarray(g, dtype=np.float64)
        n_fev[0] += 1
        cache["x"], cache["f"], cache["g"] = z.copy(), f, g
        gnorm = _inf_norm(g)  # NaN when g has a NaN
        finite = bool(np.isfinite(f) and np.isfinite(gnorm))
        if finite and f < best["f"]:
            best.update(x=cache["x"], f=f, gnorm=gnorm)
        return f, g, finite

    def fg(z):
        if flags["reuse_x0"]:  # SciPy's first call is at x0, which we have
            flags["reuse_x0"] = False
            if np.array_equal(z, x):
                return f0, g0.copy()
        f, g, finite = evaluate(z)
        if not finite:
            # SciPy's line search would take a NaN (or -inf) trial point and wander
            # from there, and +inf ends the run; a value well above the current
            # iterate's, with a zero gradient, makes it backtrack instead
            flags["nonfinite"] = True
            fk = state["best_iter_f"]  # the current iterate's (finite) value
            return fk + 10.0 * (1.0 + abs(fk)), np.zeros_like(g)
        return f, g

    mon = _Monitor("L-BFGS", tol, max_iter, verbose, f0, _inf_norm(g0))
    if mon.done(f0, mon.gnorm) or max_iter == 0:
        return mon.result(x, f0, mon.done(f0, mon.gnorm), "converged" if mon.done(
            f0, mon.gnorm) else "max_iter reached", n_fev[0])

    def callback(intermediate_result):
        xk = intermediate_result.x
        if np.array_equal(cache["x"], xk):
            f, g = cache["f"], cache["g"]
        else:
            f, g, _ = evaluate(xk)
        gnorm = _inf_norm(g)
        mon.step(f, gnorm)
        state["x"], state["f"] = xk.copy(), f
        # convergence only at a finite point no worse than the start and every
        # earlier iterate (rounding aside)
        ok = (np.isfinite(f) and f <= state["best_iter_f"] + 1e3 * _EPS * max(1.0, abs(f))
              and mon.done(f, gnorm))
        if np.isfinite(f):
            state["best_iter_f"] = min(state["best_iter_f"], f)
        if ok:
            state["converged"] = True
            raise StopIteration

    minimize(fg, x, jac=True, method="L-BFGS-B", callback=callback,
             options={"maxiter": max_iter, "maxcor": memory, "gtol": 0.0,
                      "ftol": 0.0, "maxfun": 20 * max_iter + 20,
                      "maxls": 50})
    x_out, f_out = state["x"], state["f"]
    if state["converged"]:
        message = "converged"
    else:
        if not (f_out <= best["f"]):  # also when f_out is NaN
            # never return a point worse than the best finite one evaluated
            x_out, f_out = best["x"], best["f"]
            mon.gnorm = best["gnorm"]
        if mon.n_iter >= max_iter:
            message = "max_iter reached"
        elif flags["nonfinite"]:
            message = ("stopped after the objective or gradient was not finite at a trial "
                       "point (NaN or inf); the best finite point seen is returned")
        else:
            message = "no further decrease is possible (precision limit)"
    return mon.result(x_out, f_out, state["converged"], message, n_fev[0])
