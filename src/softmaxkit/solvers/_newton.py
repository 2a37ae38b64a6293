"""Second-order solvers: trust-region Newton-CG (Steihaug) with exact
Hessian-vector products, and full Newton with an explicit Hessian (Cholesky)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._base import (
    _NOISY,
    _backtrack,
    _check_common,
    _check_hess,
    _check_x0,
    _first_checked,
    _hess_not_finite,
    _inf_norm,
    _Monitor,
    _Stall,
    _start,
)

__all__ = ["trust_region_newton_cg", "newton_cholesky", "hessian_from_hessp"]

_EPS = np.finfo(np.float64).eps
_LINE_SEARCH_FAILED = "the line search failed (precision limit)"
_LINE_SEARCH_NONFINITE = ("the line search failed: the objective or gradient was not finite "
                          "(NaN or inf) at its trial points (the edge of the domain)")
_STALLED = ("no further decrease is possible (precision limit): the gradient has not "
            "decreased in 10 steps whose predicted decrease is below the rounding of f")
_NONFINITE_TR = ("the trust region collapsed at the edge of the domain: the objective or "
                 "gradient was not finite (NaN or inf) at the trial points beyond")


def _identity(r):
    return r


def _steihaug_cg(g, hv, minv, delta, eta, max_cg, gtol=0.0, delta_nc=None):
    """Preconditioned Steihaug-Toint CG on the model g.p + p.H.p / 2 inside the
    trust region ||p||_M <= delta (M-norm tracked by recurrences, so only M^-1 is
    needed); stops when the residual's M^-1 norm has fallen by ``eta`` or its
    largest entry is at most ``gtol``.  Returns (p, Hp, on_boundary, n_cg, ||p||_M).

    With no trust region (``delta`` infinite) a direction of non-positive curvature
    ends CG at the point reached so far, or, when that is still 0 (the first
    direction), at the boundary of the finite radius ``delta_nc`` along it: the
    model decreases without bound there, and ``p = 0`` would be no step at all."""
    p = np.zeros_like(g)
    hp = np.zeros_like(g)
    r = g.copy()
    z = minv(r)
    rz = float(r @ z)
    if rz <= 0.0:
        return p, hp, False, 0, 0.0
    d = -z
    stop = eta * eta * rz
    pmp = pmd = 0.0
    dmd = rz
    for j in range(max_cg):
        hd = hv(d)
        dhd = float(d @ hd)
        if dhd <= 0.0 or not np.isfinite(dhd):
            if not np.isfinite(delta):
                if pmp > 0.0 or delta_nc is None:
                    # no trust region: keep what CG found so far
                    return p, hp, False, j + 1, np.sqrt(pmp)
                delta = delta_nc  # nothing found yet: a finite radius along d
            tau = (-pmd + np.sqrt(pmd * pmd + dmd * (delta * delta - pmp))) / dmd
            p += tau * d
            hp += tau * hd
            return p, hp, True, j + 1, delta
        alpha = rz / dhd
        pmp_new = pmp + 2.0 * alpha * pmd + alpha * alpha * dmd
        if pmp_new >= delta * delta:
            tau = (-pmd + np.sqrt(max(pmd * pmd + dmd * (delta * delta - pmp), 0.0))) / dmd
            p += tau * d
            hp += tau * hd
            return p, hp, True, j + 1, delta
        p += alpha * d
        hp += alpha * hd
        pmp = pmp_new
        r += alpha * hd
        if gtol > 0.0 and _inf_norm(r) <= gtol:
            return p, hp, False, j + 1, np.sqrt(pmp)
        z = minv(r)
        rz_new = float(r @ z)
        if rz_new <= stop:
            return p, hp, False, j + 1, np.sqrt(pmp)
        beta = rz_new / rz
        rz = rz_new
        pmd = beta * (pmd + alpha * dmd)
        dmd = rz + beta * beta * dmd
        d *= beta
        d -= z
    return p, hp, False, max_cg, np.sqrt(pmp)


def trust_region_newton_cg(fun_grad, hessp, x0, *, precond=None, tol=1e-6, max_iter=1000,
                           max_cg=None, delta0=None, cg_gtol=0.7, verbose=0):
    """Minimise a smooth function by trust-region Newton-CG with exact
    Hessian-vector products.

    Each iteration solves the Newton system ``H p = -g`` inexactly by
    preconditioned conjugate gradients, truncated at the trust-region boundary
    (Steihaug-Toint) or once the residual falls below an Eisenstat-Walker
    forcing term, then accepts or rejects the step by comparing the actual with
    the predicted decrease.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x) -> (f, g)`` with ``x`` of shape (n,), ``f`` a real scalar and
        ``g`` of shape (n,).  Both must be finite at ``x0`` (ValueError otherwise); a
        trial point where either is not finite is rejected like a poor step.
    hessp : callable
        ``hessp(x) -> hv`` where ``hv(v)`` returns the Hessian at ``x`` times ``v``
        (shape (n,)).  It is called once per iteration at the current (accepted)
        iterate ``x``.  After a rejected step that is *not* the last point
        ``fun_grad`` was called at (that was the rejected trial point), so an
        implementation that reuses what ``fun_grad`` computed must key its cache on
        ``x`` (compare the arrays), not assume the last call.
    x0 : array_like of shape (n,)
        Starting point, finite; a scalar is taken as shape (1,), an array of more
        dimensions is refused (ValueError).
    precond : callable or None, default=None
        ``precond(x) -> minv`` where ``minv(r)`` applies the inverse of a symmetric
        positive definite approximation ``M`` of the Hessian; the trust region is
        measured in the ``M`` norm.  Called like ``hessp`` (at the current iterate,
        after ``hessp``), with the same caveat for caching.
    tol : float, default=1e-6
        Stop when ``max |g| <= tol * max(1, |f|)``.
    max_iter : int, default=1000
        Maximum number of outer (Newton) iterations; a ``ConvergenceWarning`` is
        issued when it is reached.
    max_cg : int >= 1 or None, default=None
        Maximum number of CG iterations per Newton step (default ``max(10 n, 250)``:
        in floating point CG needs more than ``n`` steps on an ill-conditioned
        Hessian, about ``5 n`` at condition number 1e8, and Newton steps truncated
        at ``n`` CG steps stall there; a well-conditioned or well-preconditioned
        system stops CG long before, on ``eta`` or ``cg_gtol``).
    delta0 : float in (0, inf] or None, default=None
        Initial trust-region radius (default: ``sqrt(2 max(|f0|, 1))`` in the ``M``
        norm when a preconditioner is given, else ``||g0||``).
    cg_gtol : float >= 0, default=0.7
        CG also stops once ``max |g + H p| <= cg_gtol * tol * max(1, |f|)``: the
        model predicts that the step meets the stopping rule, so solving the Newton
        system further would be wasted (0 turns this off; the final steps of
        ``benchmarks/bench_fit.py``'s float64 problems take 1-5 fewer CG steps).
        The point returned still meets the stopping rule with the true gradient.
    verbose : int, default=0
        Print one line per iteration when positive.

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ValueError
        When ``fun_grad`` returns a non-scalar objective, a gradient not of shape
        (n,) or non-finite values at ``x0``; when ``hessp``/``precond`` return a
        product not of shape (n,) or non-finite products.

    Notes
    -----
    With ratio ``rho = (f(x) - f(x + p)) / (-(g.p + p.H.p / 2))`` the step is
    accepted when ``rho > 1e-4``; the radius shrinks to ``||p||_M / 4`` when
    ``rho < 1/4`` and doubles when ``rho > 3/4`` and the step reached the boundary.
    When both decreases are below ``sqrt(eps) max(1, |f|)`` the difference of two
    values of ``f`` is mostly rounding (on a quadratic of condition 1e8 its error
    is ~1e-10 |f|), so the actual decrease is estimated by the trapezoidal rule
    ``-(g + g_new).p / 2`` instead (exact for a quadratic, accurate to
    ``O(||p||^3)`` otherwise); after 10 such iterations in a row without a new
    smallest ``max |g|`` the gradient is at its rounding noise and the run stops
    (precision limit).  With ``delta0=inf`` a first direction of negative
    curvature is followed to the default radius (``p = 0`` would be no step).
    The CG forcing term is ``eta_k = min(0.5, 0.9 (|g_k| / |g_{k-1}|)^2)``
    (Eisenstat-Walker, choice 2, with their safeguard), and never below
    ``0.1 tol max(1, |f|) / max|g_k|`` (no oversolving near the end; see also
    ``cg_gtol``).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der, rosen_hess_prod
    >>> from softmaxkit.solvers import trust_region_newton_cg
    >>> res = trust_region_newton_cg(lambda x: (rosen(x), rosen_der(x)),
    ...                              lambda x: (lambda v: rosen_hess_prod(x, v)),
    ...                              np.array([-1.2, 1.0]), tol=1e-10)
    >>> bool(res.converged), np.round(res.x, 6)
    (True, array([1., 1.]))
    """
    _check_common(tol, max_iter, "trust_region_newton_cg")
    from .._validation import check_scalar_param

    owner = "trust_region_newton_cg"
    check_scalar_param(cg_gtol, "cg_gtol", owner, kind=float, low=0.0)
    cg_gtol = float(cg_gtol)
    max_cg = check_scalar_param(max_cg, "max_cg", owner, kind=int, low=1, allow_none=True)
    delta0 = check_scalar_param(delta0, "delta0", owner, kind=float, low=0, low_open=True,
                                allow_none=True)  # inf: no trust region on the first step
    x = _check_x0(x0, owner)
    n = x.size
    max_cg = max(10 * n, 250) if max_cg is None else max_cg
    fun_grad, f, g = _start(fun_grad, x, owner)
    n_fev, n_hvp = 1, 0
    gnorm = _inf_norm(g)
    mon = _Monitor("trust-region Newton-CG", tol, max_iter, verbose, f, gnorm)
    delta = delta0
    first = True
    eta = 0.5
    g2_prev = None
    stall = _Stall(gnorm)
    nonfinite = False
    converged = mon.done(f, gnorm)
    message = "converged" if converged else "max_iter reached"
    while not converged and mon.n_iter < max_iter:
        hv_raw = hessp(x)
        minv = _identity if precond is None else precond(x)
        if first:  # the products' shapes, once
            hv_raw = _first_checked(hv_raw, n, owner, "hessp")
            if precond is not None:
                minv = _first_checked(minv, n, owner, "precond")
            first = False
        counter = [0]

        def hv(v, hv_raw=hv_raw, counter=counter):
            counter[0] += 1
            return np.asarray(hv_raw(v), dtype=np.float64)

        g2 = float(np.linalg.norm(g))
        if g2_prev is not None:
            eta_new = 0.9 * (g2 / g2_prev) ** 2
            if 0.9 * eta * eta > 0.1:
                eta_new = max(eta_new, 0.9 * eta * eta)
            eta = min(0.5, eta_new)
        # no need to solve far more accurately than the stopping rule asks
        eta_eff = max(eta, min(0.5, 0.1 * mon.threshold(f) / max(gnorm, 1e-300)))
        # the default radius (also the one taken along a first direction of negative
        # curvature when there is no trust region)
        delta_default = np.sqrt(2.0 * max(abs(f), 1.0)) if precond is not None else g2
        if delta is None:
            delta = delta_default
        # and none once the model's gradient g + H p meets the stopping rule with a
        # margin (near the end it predicts the new gradient well)
        p, hp, boundary, n_cg, pnorm = _steihaug_cg(g, hv, minv, delta, eta_eff, max_cg,
                                                    cg_gtol * mon.threshold(f),
                                                    delta_nc=delta_default)
        n_hvp += counter[0]
        if boundary and not np.isfinite(delta):
            delta = pnorm  # negative curvature ended the run without a trust region
        pred = -(float(g @ p) + 0.5 * float(p @ hp))
        if not np.isfinite(pred):
            # g is finite: the products were not (p from precond, hp from hessp)
            name = ("precond" if precond is not None and not np.all(np.isfinite(p))
                    else "hessp")
            raise ValueError(f"{name} returned non-finite values (NaN or inf) at an "
                             f"iterate of {owner} where the objective and gradient are "
                             "finite.")
        if not pred > 0.0:
            # no model decrease possible: at the precision limit
            message = "no further decrease is possible (precision limit)"
            mon.step(f, gnorm, f"cg {n_cg}")
            break
        x_new = x + p
        if np.array_equal(x_new, x):
            # the step is below the resolution of x: nothing can change any more
            message = "no further decrease is possible (precision limit)"
            mon.step(f, gnorm, f"cg {n_cg}")
            break
        f_new, g_new = fun_grad(x_new)
        n_fev += 1
        f_new = float(f_new)
        g_new = np.asarray(g_new, dtype=np.float64)
        gnorm_new = _inf_norm(g_new)  # NaN when g_new has a NaN
        ared = f - f_new
        nonfinite = not (np.isfinite(f_new) and np.isfinite(gnorm_new))
        noisy = (not nonfinite and abs(ared) <= _NOISY * max(abs(f), 1.0)
                 and pred <= _NOISY * max(abs(f), 1.0))
        if nonfinite:
            rho = -np.inf  # reject a point where f or g is not finite
        elif noisy:
            # the decrease is below the rounding level of f: estimate it by the
            # trapezoidal rule on the gradients (exact for a quadratic)
            rho = -0.5 * float((g + g_new) @ p) / pred
        else:
            rho = ared / pred
        if rho < 0.25:
            delta = 0.25 * min(pnorm, delta)
        elif rho > 0.75 and boundary:
            delta = 2.0 * delta
        accepted = rho > 1e-4
        stalled = stall.update(noisy, gnorm_new, record=accepted)
        if accepted:
            x = x_new
            f = f_new
            g = g_new
            gnorm = gnorm_new
            g2_prev = g2
        mon.step(f, gnorm, f"cg {n_cg}  rho {rho:.3g}  radius {delta:.3g}"
                 + ("" if accepted else "  (rejected)"))
        converged = mon.done(f, gnorm)
        if converged:
            message = "converged"
            break
        if stalled:
            # the gradient is at its rounding noise: steps go on being accepted or
            # rejected at random
            message = _STALLED
            break
        if delta <= 1e2 * _EPS * max(1.0, float(np.linalg.norm(x))):
            message = ("the trust region collapsed (precision limit)" if not nonfinite
                       else _NONFINITE_TR)
            break
    else:
        if converged:
            message = "converged"
    return mon.result(x, f, converged, message, n_fev, n_hvp)


def hessian_from_hessp(hv, n):
    """Build the explicit (n, n) Hessian from Hessian-vector products on the unit
    vectors (symmetrised).

    Parameters
    ----------
    hv : callable
        ``hv(v)`` returns ``H v`` for ``v`` of shape (n,).
    n : int
        Number of parameters.

    Returns
    -------
    ndarray of shape (n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.solvers import hessian_from_hessp
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> hessian_from_hessp(lambda v: A @ v, 2)
    array([[2., 1.],
           [1., 3.]])
    """
    H = np.empty((n, n))
    e = np.zeros(n)
    for j in range(n):
        e[j] = 1.0
        H[:, j] = hv(e)
        e[j] = 0.0
    H += H.T
    H *= 0.5
    return H


def _newton_direction(H, g, owner="newton_cholesky"):
    """Solve H d = -g by Cholesky, adding a growing ridge when H is not
    (numerically) positive definite.  ValueError (naming ``hess``) when the first
    attempt fails because H is not finite.  A Hessian without curvature (all
    zero: f is linear) gives the gradient step ``-g``."""
    scale = float(np.max(np.abs(np.diag(H)))) if H.size else 1.0
    ridge = 0.0
    for attempt in range(30):
        if attempt == 1:
            # checked only once the plain factorisation failed: free otherwise
            if not np.all(np.isfinite(H)):
                raise _hess_not_finite(owner)
            if not scale > 0.0:  # no diagonal: the ridge's scale from the rest
                scale = float(np.max(np.abs(H))) if H.size else 0.0
                if scale == 0.0:
                    return -g
        try:
            c = scipy.linalg.cho_factor(H + ridge * np.eye(H.shape[0]), check_finite=False)
            d = -scipy.linalg.cho_solve(c, g, check_finite=False)
            if np.all(np.isfinite(d)):
                return d
        except np.linalg.LinAlgError:
            pass
        ridge = scale * 1e-12 if ridge == 0.0 else ridge * 10.0
    return -g / scale


def newton_cholesky(fun_grad, hess, x0, *, tol=1e-6, max_iter=1000, verbose=0):
    """Minimise a smooth convex function by Newton's method with the explicit
    Hessian, solved by Cholesky, and a backtracking (Armijo) line search.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x) -> (f, g)``.
    hess : callable
        ``hess(x) -> H`` of shape (n, n), the Hessian at ``x`` (finite).  It is
        called once per iteration at the current iterate, which is always the last
        point ``fun_grad`` was called at (the line search's last trial is the step it
        accepts), so an implementation may reuse what that call computed; keying a
        cache on ``x`` is still the safe choice.  ``hessian_from_hessp`` builds one
        from Hessian-vector products.
    x0 : array_like of shape (n,)
        Starting point, finite; a scalar is taken as shape (1,), an array of more
        dimensions is refused (ValueError).
    tol : float, default=1e-6
        Stop when ``max |g| <= tol * max(1, |f|)``.
    max_iter : int, default=1000
        Maximum number of Newton iterations (``ConvergenceWarning`` when reached).
    verbose : int, default=0
        Print one line per iteration when positive.

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ValueError
        When ``fun_grad`` returns a non-scalar objective, a gradient not of shape
        (n,) or non-finite values at ``x0``, or ``hess`` a matrix not of shape
        (n, n) or with NaN or inf entries.

    Notes
    -----
    The direction is ``d = -(H + tau I)^{-1} g`` with ``tau = 0`` unless the
    Cholesky factorisation fails (a singular Hessian), in which case ``tau`` grows
    from ``1e-12 max(diag H)`` (an all-zero Hessian gives ``d = -g``).  The step
    ``t`` halves until ``f(x + t d) <= f(x) + 1e-4 t g.d``.  Once ``-g.d`` is below
    the rounding of ``f`` the decrease is judged by the trapezoidal rule on the
    gradients, ``-(g + g(x + t d)).(t d) / 2``, instead; 10 such iterations in a row
    without a new smallest ``max |g|`` mean the gradient is rounding noise, and the
    run stops (precision limit) instead of going on to ``max_iter``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der, rosen_hess
    >>> from softmaxkit.solvers import newton_cholesky
    >>> res = newton_cholesky(lambda x: (rosen(x), rosen_der(x)), rosen_hess,
    ...                       np.array([-1.2, 1.0]), tol=1e-10)
    >>> bool(res.converged), np.round(res.x, 6)
    (True, array([1., 1.]))
    """
    owner = "newton_cholesky"
    _check_common(tol, max_iter, owner)
    x = _check_x0(x0, owner)
    fun_grad, f, g = _start(fun_grad, x, owner)
    n_fev, n_hess = 1, 0
    gnorm = _inf_norm(g)
    mon = _Monitor("Newton-Cholesky", tol, max_iter, verbose, f, gnorm)
    stall = _Stall(gnorm)
    converged = mon.done(f, gnorm)
    message = "converged" if converged else "max_iter reached"
    while not converged and mon.n_iter < max_iter:
        # checked at the first call; later a non-finite H is caught (for free) when
        # the plain factorisation fails
        H = _check_hess(hess(x), x.size, owner, check=n_hess == 0)
        n_hess += 1
        d = _newton_direction(H, g, owner)
        slope = float(g @ d)
        if not (slope < 0.0 and np.isfinite(slope)):
            # uphill, or d overflowed (a Hessian with entries near 1e-300)
            d = -g
            slope = -float(g @ g)
        info = {}
        t, x_new, f_new, g_new, nf = _backtrack(fun_grad, x, d, f, slope, g=g, info=info)
        n_fev += nf
        if t is None:
            message = _LINE_SEARCH_NONFINITE if info["nonfinite"] else _LINE_SEARCH_FAILED
            mon.step(f, gnorm)
            break
        small = -slope <= _NOISY * max(abs(f), 1.0)
        x, f = x_new, f_new
        g = np.asarray(g_new, dtype=np.float64)
        gnorm = _inf_norm(g)
        mon.step(f, gnorm, f"step {t:.3g}")
        converged = mon.done(f, gnorm)
        if converged:
            message = "converged"
        elif stall.update(small, gnorm):
            message = _STALLED
            break
    return mon.result(x, f, converged, message, n_fev, n_hess)
