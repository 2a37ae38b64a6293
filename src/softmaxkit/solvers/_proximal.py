"""Proximal Newton for a smooth function plus a weighted l1 norm."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._base import (
    _EPS,
    _backtrack,
    _check_common,
    _check_hess,
    _check_x0,
    _first_checked,
    _inf_norm,
    _Monitor,
    _real_array,
    _Stall,
    _start,
)
from ._newton import _LINE_SEARCH_FAILED, _LINE_SEARCH_NONFINITE, _STALLED

__all__ = ["proximal_newton", "l1_optimality"]


def _soft(u, t):
    return np.sign(u) * np.maximum(np.abs(u) - t, 0.0)


def l1_optimality(x, g, l1):
    """The minimum-norm subgradient of ``f(x) + sum(l1 * |x|)`` given ``g = grad f(x)``
    (zero exactly at a minimiser).

    Parameters
    ----------
    x, g, l1 : ndarray of shape (n,)
        Point, gradient of the smooth part, non-negative l1 weights.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.solvers import l1_optimality
    >>> l1_optimality(np.array([0.0, 0.0, 2.0]), np.array([0.5, -3.0, -1.0]),
    ...               np.array([1.0, 1.0, 1.0]))
    array([ 0., -2.,  0.])
    """
    nz = x != 0
    return np.where(nz, g + l1 * np.sign(x), np.sign(g) * np.maximum(np.abs(g) - l1, 0.0))


def _cd_subproblem(H, g, x, l1, tol, max_rounds=100, sweeps=3):
    """Minimise  g.d + d.H.d / 2 + sum l1 |x + d|  for an explicit H: a few
    coordinate-descent sweeps over a working set identify the signs, then the
    quadratic restricted to the current support is solved exactly (Cholesky),
    stopping at the first sign change; repeated until the subproblem's KKT
    residual is below ``tol``.  Returns d."""
    n = x.size
    u = x.copy()
    q = np.zeros(n)  # H (u - x)
    diag = np.maximum(np.diag(H).copy(), 1e-300)
    free = l1 == 0
    work = np.flatnonzero((x != 0) | (np.abs(g) > l1) | free)
    gl, dl, ll = g.tolist(), diag.tolist(), l1.tolist()
    for _ in range(max_rounds):
        for _sweep in range(sweeps):
            for j in work.tolist():
                hj = dl[j]
                uj = u[j]
                v = uj - (gl[j] + q[j]) / hj
                t = ll[j] / hj
                new = v - t if v > t else (v + t if v < -t else 0.0)
                delta = new - uj
                if delta != 0.0:
                    u[j] = new
                    q += delta * H[j]
        # exact solve on the support with the signs fixed
        A = np.flatnonzero((u != 0) | free)
        if A.size:
            sig = np.sign(u[A])
            rhs = -(g[A] + l1[A] * sig) + H[np.ix_(A, A)] @ x[A] - (q[A] - H[np.ix_(A, A)] @ (
                u[A] - x[A]))
            # rhs above equals -(g_A + l1 sig) - H_AN (u_N - x_N) + H_AA x_A
            try:
                HAA = H[np.ix_(A, A)]
                # a tiny ridge keeps singular directions (e.g. a shift that leaves
                # f unchanged) from blowing up; one step of iterative refinement
                # removes its bias on a consistent system
                Hr = HAA.copy()
                Hr[np.diag_indices_from(Hr)] += 1e-12 * float(np.max(diag[A]))
                c = scipy.linalg.cho_factor(Hr, check_finite=False)
                uA_new = scipy.linalg.cho_solve(c, rhs, check_finite=False)
                uA_new += scipy.linalg.cho_solve(c, rhs - HAA @ uA_new, check_finite=False)
            except (np.linalg.LinAlgError, ValueError):
                uA_new = None
            if uA_new is not None and np.all(np.isfinite(uA_new)):
                uA = u[A]
                pen = ~free[A]
                flips = pen & (np.sign(uA_new) != sig)
                if np.any(flips):
                    ratio = uA[flips] / (uA[flips] - uA_new[flips])
                    t = float(np.min(ratio))
                    step = uA + t * (uA_new - uA)
                    fl = np.flatnonzero(flips)
                    hit = fl[ratio <= t * (1 + 1e-12)]
                    step[hit] = 0.0
                else:
                    step = uA_new
                u[A] = step
                q = H @ (u - x)
        viol = l1_optimality(u, g + q, l1)
        bad = np.abs(viol) > tol
        if not np.any(bad):
            break
        work = np.union1d(np.flatnonzero((u != 0) | free), np.flatnonzero(bad))
    return u - x


def _fista_subproblem(hv, g, x, l1, tol, max_inner=200):
    """Accelerated proximal gradient (with adaptive restart) on the same model,
    using Hessian-vector products only."""
    n = x.size
    # Lipschitz constant by a few power iterations
    v = np.random.default_rng(0).standard_normal(n)
    v /= np.linalg.norm(v)
    L = 1.0
    for _ in range(15):
        w = hv(v)
        L = float(np.linalg.norm(w))
        if L <= 0:
            L = 1.0
            break
        v = w / L
    L *= 1.05
    u = x.copy()
    y = u.copy()
    t = 1.0
    q_y = np.zeros(n)  # H (y - x)
    for _ in range(max_inner):
        grad_y = g + q_y
        u_new = _soft(y - grad_y / L, l1 / L)
        if _inf_norm(u_new - y) * L <= tol:
            u = u_new
            break
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        if float((y - u_new) @ (u_new - u)) > 0:  # restart
            t_new = 1.0
            y = u_new
        else:
            y = u_new + ((t - 1) / t_new) * (u_new - u)
        u = u_new
        t = t_new
        q_y = hv(y - x)
    return u - x


def proximal_newton(fun_grad, x0, l1, *, hess=None, hessp=None, tol=1e-6, max_iter=1000,
                    verbose=0):
    """Minimise ``f(x) + sum(l1 * |x|)`` by proximal Newton.

    Each iteration minimises the quadratic model of ``f`` plus the exact l1 term,
    ``g.d + d.H.d / 2 + sum(l1 |x + d|)`` — by coordinate descent when the explicit
    Hessian is available, else by accelerated proximal gradient on Hessian-vector
    products — then backtracks along ``d``.  Coordinates that the subproblem
    sets to zero are exactly zero.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x) -> (f, g)`` for the smooth part: ``f`` a real scalar, ``g`` of
        shape (n,), both finite at ``x0``.
    x0 : array_like of shape (n,)
        Starting point.
    l1 : float or array_like of shape (n,)
        Non-negative finite l1 weights (0 for unpenalised coordinates); a scalar
        applies to every coordinate.
    hess : callable or None
        ``hess(x) -> H`` of shape (n, n) (preferred when n is small).
    hessp : callable or None
        ``hessp(x) -> hv`` with ``hv(v) = H v``; used when ``hess`` is None.
        ``hess``/``hessp`` are called once per iteration at the current iterate,
        which is always the last point ``fun_grad`` was called at.
    tol : float, default=1e-6
        Stop when the minimum-norm subgradient satisfies
        ``max |s| <= tol * max(1, |F|)`` (a KKT criterion).
    max_iter : int, default=1000
        Maximum number of outer iterations (``ConvergenceWarning`` when reached).
    verbose : int, default=0
        Print one line per iteration when positive.

    Returns
    -------
    OptimizeResult
        ``fun`` is the full objective ``f + sum(l1 |x|)``.

    Raises
    ------
    ValueError
        When ``l1`` has another shape or negative or non-finite entries;
        ``fun_grad`` returns a non-scalar objective, a gradient not of shape (n,) or
        non-finite values at ``x0``; ``hess`` returns a matrix not of shape (n, n)
        or one with NaN or inf entries; ``hessp`` products not of shape (n,).

    Notes
    -----
    With ``Delta = g.d + h(x + d) - h(x)`` (negative unless ``x`` is optimal), the step
    ``t`` halves until ``F(x + t d) <= F(x) + 1e-4 t Delta``.  The subproblem is
    solved to a tolerance that tightens with the outer optimality measure, which
    gives the fast local convergence of Newton's method (Lee, Sun and Saunders,
    2014).

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.solvers import proximal_newton
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]]); b = np.array([1.0, 0.1])
    >>> res = proximal_newton(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b),
    ...                       np.zeros(2), np.array([0.2, 0.2]), hess=lambda x: A,
    ...                       tol=1e-12)
    >>> np.round(res.x, 6)
    array([0.4, 0. ])
    """
    owner = "proximal_newton"
    _check_common(tol, max_iter, owner)
    if hess is None and hessp is None:
        raise ValueError("proximal_newton needs hess or hessp.")
    x = _check_x0(x0)
    l1a = _real_array(l1, "The 'l1' parameter of proximal_newton")
    if l1a.ndim and l1a.shape != x.shape:
        raise ValueError(f"The 'l1' parameter of {owner} must be a float or an array of "
                         f"shape {x.shape} (the shape of x0); got an array of shape "
                         f"{l1a.shape}.")
    l1 = np.broadcast_to(np.asarray(l1a, dtype=np.float64), x.shape).copy()
    if np.any(l1 < 0) or not np.all(np.isfinite(l1)):
        bad = l1[(l1 < 0) | ~np.isfinite(l1)][0]
        raise ValueError(f"The 'l1' parameter of {owner} must be finite and non-negative "
                         f"(a float in [0, inf) or an array of them); got an entry "
                         f"{float(bad)!r}.")

    def h(z):
        return float(l1 @ np.abs(z))

    fun_grad, fs, g = _start(fun_grad, x, owner)
    F = fs + h(x)
    n_fev, n_hess = 1, 0
    gnorm = _inf_norm(l1_optimality(x, g, l1))
    mon = _Monitor("proximal Newton", tol, max_iter, verbose, F, gnorm)
    stall = _Stall(gnorm)
    converged = mon.done(F, gnorm)
    message = "converged" if converged else "max_iter reached"
    while not converged and mon.n_iter < max_iter:
        inner_tol = max(min(0.1 * gnorm, gnorm * gnorm), 0.1 * mon.threshold(F))
        if hess is not None:
            # checked at every call: coordinate descent would turn NaN into 0 silently
            # (one pass over H; the subproblem makes several, and factorises it)
            H = _check_hess(hess(x), x.size, owner)
            n_hess += 1
            d = _cd_subproblem(H, g, x, l1, inner_tol)
        else:
            hv0 = hessp(x)
            if n_hess == 0:  # the products' shape, once
                hv0 = _first_checked(hv0, x.size, owner, "hessp")
            cnt = [0]

            def hv(v, hv0=hv0, cnt=cnt):
                cnt[0] += 1
                return np.asarray(hv0(v), dtype=np.float64)

            d = _fista_subproblem(hv, g, x, l1, inner_tol)
            n_hess += cnt[0]
        # h(x + d) - h(x) term by term: accurate even when d is tiny
        delta = float(g @ d) + float(l1 @ (np.abs(x + d) - np.abs(x)))
        if hess is None and np.isnan(delta):
            # g, x and l1 are finite: hessp's products were not
            raise ValueError(f"hessp returned non-finite values (NaN or inf) at an iterate "
                             f"of {owner} where the objective and gradient are finite.")
        if not delta < 0.0:
            message = "no further decrease is possible (precision limit)"
            mon.step(F, gnorm)
            break
        info = {}
        t, x_new, F_new, g_new, nf = _backtrack(fun_grad, x, d, F, delta, h, g=g, l1=l1,
                                                info=info)
        n_fev += nf
        if t is None:
            message = _LINE_SEARCH_NONFINITE if info["nonfinite"] else _LINE_SEARCH_FAILED
            mon.step(F, gnorm)
            break
        small = -delta <= 1e3 * _EPS * max(abs(F), 1.0)
        x, F = x_new, F_new
        g = np.asarray(g_new, dtype=np.float64)
        gnorm = _inf_norm(l1_optimality(x, g, l1))
        mon.step(F, gnorm, f"step {t:.3g}  nnz {int(np.count_nonzero(x))}")
        converged = mon.done(F, gnorm)
        if converged:
            message = "converged"
        elif stall.update(small, gnorm):
            message = _STALLED
            break
    return mon.result(x, F, converged, message, n_fev, n_hess)
