"""Proximal Newton for a smooth function plus a weighted l1 norm."""

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
    residual is below ``tol``.  Returns d, or None when H is not positive
    semi-definite (a negative diagonal entry, or a failed Cholesky factorisation on
    the support)."""
    n = x.size
    u = x.copy()
    q = np.zeros(n)  # H (u - x)
    diag = np.diag(H).copy()
    if np.any(diag < 0):
        return None
    diag = np.maximum(diag, 1e-300)
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
            except np.linalg.LinAlgError:
                return None  # indefinite beyond the ridge
            if np.all(np.isfinite(uA_new)):
                uA = u[A]
                pen = ~free[A]
                flips = pen & (np.sign(uA_new) != sig)
                if np.any(flips):
                    # the segment up to the first sign change (never worse than u),
                    # or the solution with the changed signs at zero when that is
                    # better (one sign change per round crawls when many change)
                    ratio = uA[flips] / (uA[flips] - uA_new[flips])
                    t = float(np.min(ratio))
                    step = uA + t * (uA_new - uA)
                    fl = np.flatnonzero(flips)
                    hit = fl[ratio <= t * (1 + 1e-12)]
                    step[hit] = 0.0
                    u_t = u.copy()
                    u_t[A] = step
                    q_t = H @ (u_t - x)
                    u[A] = np.where(flips, 0.0, uA_new)
                    q = H @ (u - x)
                    if _model_change(g, x, l1, u, q) > _model_change(g, x, l1, u_t, q_t):
                        u, q = u_t, q_t
                else:
                    u[A] = uA_new
                    q = H @ (u - x)
        viol = l1_optimality(u, g + q, l1)
        bad = np.abs(viol) > tol
        if not np.any(bad):
            break
        work = np.union1d(np.flatnonzero((u != 0) | free), np.flatnonzero(bad))
    return u - x


def _abs_eig(H):
    """``V |Lambda| V^T`` for ``H = V Lambda V^T``, with ``|lambda|`` floored at 1e-8
    of the largest (1 for H = 0): positive definite."""
    lam, V = scipy.linalg.eigh(H)
    lam = np.abs(lam)
    top = float(np.max(lam)) if lam.size else 0.0
    lam = np.maximum(lam, 1e-8 * top if top > 0 else 1.0)
    out = (V * lam) @ V.T
    return 0.5 * (out + out.T)


def _model_change(g, x, l1, u, w):
    """q(u) - q(x) for q(u) = g.(u - x) + (u - x).H.(u - x) / 2 + sum(l1 |u|), given
    ``w = H (u - x)`` (the l1 part term by term: accurate for small steps)."""
    s = u - x
    return float(g @ s) + 0.5 * float(s @ w) + float(l1 @ (np.abs(u) - np.abs(x)))


class _NonFiniteProduct(Exception):
    """hessp returned a product with NaN or inf entries."""


class _NegativeCurvature(Exception):
    """The model's Hessian has non-positive curvature ``c`` (in the metric ``D``:
    ``c = s.H.s / s.D.s``) along a direction the subproblem solver met."""

    def __init__(self, curvature):
        super().__init__(curvature)
        self.curvature = float(curvature)


def _face_cg(hv, r, S, n, dinv, gtol, max_cg, base, pen):
    """Preconditioned CG on ``H_SS delta = -r`` (the model restricted to the
    coordinates ``S`` with the signs fixed; ``r`` its gradient there), from 0, until
    ``max |residual| <= gtol``, ``max_cg`` steps, or the point ``base + delta``
    leaves the orthant of ``base`` on a coordinate of ``pen`` (the face's model no
    longer holds there, and on a singular face CG heads off along its null space:
    going on cost the model case of the tests 25 times the products).  Returns
    ``(delta, H pad(delta))`` (the product on all n coordinates).  Raises
    _NegativeCurvature."""
    delta = np.zeros(S.size)
    hdelta = np.zeros(n)
    res = r.copy()
    z = dinv * res
    rz = float(res @ z)
    p = -z
    full = np.zeros(n)
    for _ in range(max_cg):
        full[S] = p
        hp_full = hv(full)
        hp = hp_full[S]
        php = float(p @ hp)
        if not php > 0.0:
            raise _NegativeCurvature(php / float(p @ (p / dinv)))
        alpha = rz / php
        delta += alpha * p
        hdelta += alpha * hp_full
        res += alpha * hp
        if _inf_norm(res) <= gtol:
            break
        if np.any(pen & (np.sign(base + delta) != np.sign(base))):
            break
        z = dinv * res
        rz_new = float(res @ z)
        if not rz_new > 0.0:
            break
        p *= rz_new / rz
        p -= z
        rz = rz_new
    return delta, hdelta


def _active_set_subproblem(hv, g, x, l1, tol, D, state, budget, u0=None):
    """Minimise the model ``q(u) = g.(u - x) + (u - x).H.(u - x) / 2 + sum(l1 |u|)``
    with Hessian-vector products only (Raises _NegativeCurvature).

    Each round (i) solves the smooth quadratic on the current face (the nonzero or
    unpenalised coordinates of ``u``, with their signs fixed) by conjugate gradients
    preconditioned by ``D``, moving to the CG point with the coordinates that
    crossed zero set to zero (or, when that is worse, to the first crossing), and
    (ii) takes one proximal-gradient step in the metric ``L D``, which adds the
    coordinates whose gradient exceeds their l1 weight and checks the optimality
    of the face; it stops once the model's minimum-norm subgradient is at most
    ``tol`` or after about ``budget`` products.  CG copes with ill-conditioning
    that slows proximal gradient to a crawl (only the face's conditioning
    matters, and CG needs few steps when few eigenvalues are far out); ``L``, the
    largest curvature met in the metric ``D``, carries over in ``state``.  Starts
    from ``u0`` (default ``x``).  Returns ``u``."""
    n = x.size
    free = l1 == 0
    dinv = 1.0 / D
    count = [0]

    def H(v):
        count[0] += 1
        out = hv(v)
        if not np.all(np.isfinite(out)):
            raise _NonFiniteProduct
        return out

    if u0 is None or not np.any(u0 != x):
        u = x.copy()
        w = np.zeros(n)  # H (u - x)
    else:
        u = u0.copy()
        w = H(u - x)
    L = state.get("L", 0.0)
    for _ in range(200):
        # (i) the face
        S = np.flatnonzero((u != 0) | free)
        if S.size:
            sig = np.sign(u[S])
            rS = (g + w)[S] + l1[S] * sig
            if _inf_norm(rS) > 0.5 * tol:
                left = budget - count[0]
                delta, hdelta = _face_cg(H, rS, S, n, dinv[S], 0.5 * tol,
                                         max(min(left, 10 * S.size + 20), 1),
                                         u[S], ~free[S])
                uS = u[S] + delta
                cross = np.flatnonzero(~free[S] & (np.sign(uS) != sig))
                if cross.size == 0:
                    u[S] = uS
                    w += hdelta
                else:
                    # the CG point with the crossed coordinates at zero ...
                    u_p = u.copy()
                    u_p[S] = uS
                    fix = np.zeros(n)
                    fix[S[cross]] = uS[cross]
                    u_p[S[cross]] = 0.0
                    w_p = w + hdelta - H(fix)
                    # ... or the segment up to the first crossing (never worse than u)
                    ratio = u[S[cross]] / (u[S[cross]] - uS[cross])
                    t = float(np.min(ratio))
                    u_t = u.copy()
                    u_t[S] = u[S] + t * delta
                    u_t[S[cross[ratio <= t * (1 + 1e-12)]]] = 0.0
                    w_t = w + t * hdelta
                    if _model_change(g, x, l1, u_p, w_p) <= _model_change(g, x, l1, u_t, w_t):
                        u, w = u_p, w_p
                    else:
                        u, w = u_t, w_t
        r = g + w
        if _inf_norm(l1_optimality(u, r, l1)) <= tol or count[0] >= budget:
            break
        # (ii) one proximal-gradient step in the metric L D
        if not L > 0.0:  # the first one: the curvature along the gradient step
            v = np.where((u != 0) | (np.abs(r) > l1), -dinv * r, 0.0)
            cv = float(v @ H(v))
            if not cv > 0.0:
                raise _NegativeCurvature(cv / float(v @ (D * v)))
            L = cv / float(v @ (D * v))
        for _ in range(30):
            u_new = _soft(u - r * dinv / L, l1 * dinv / L)
            step = u_new - u
            if not np.any(step):
                break  # u is the fixed point: optimal to rounding
            hs = H(step)
            c = float(step @ hs)
            m = float(step @ (D * step))
            if not c > 0.0:
                raise _NegativeCurvature(c / m)
            if c < 2.0 * L * m:  # the model decreased
                u, w = u_new, w + hs
                L = max(L, c / m)
                break
            L = 1.5 * c / m
        if (_inf_norm(l1_optimality(u, g + w, l1)) <= tol or count[0] >= budget
                or not np.any(step)):
            break
    state["L"] = L
    state["solved"] = _inf_norm(l1_optimality(u, g + w, l1)) <= tol
    return u


def _hv_subproblem(hv, g, x, l1, tol, D, state, budget, u0=None):
    """``_active_set_subproblem``, on ``H + tau D`` when the model is not convex:
    ``tau`` twice the most negative curvature met (in the metric ``D``), doubled
    while more is met.  Returns ``d``."""
    tau = 0.0
    for _ in range(20):
        hv_tau = hv if tau == 0.0 else (lambda v, tau=tau: hv(v) + tau * (D * v))
        try:
            return _active_set_subproblem(hv_tau, g, x, l1, tol, D, state, budget,
                                          u0 if tau == 0.0 else None) - x
        except _NegativeCurvature as neg:
            state.pop("L", None)
            tau = max(2.0 * tau, 2.0 * (tau - neg.curvature), 1e-8)
    return np.zeros_like(x)


def _diag_from_hv(hv, n):
    """The diagonal of H from its products with the n unit vectors."""
    out = np.empty(n)
    e = np.zeros(n)
    for i in range(n):
        e[i] = 1.0
        out[i] = hv(e)[i]
        e[i] = 0.0
    if not np.all(np.isfinite(out)):
        raise _NonFiniteProduct
    return out


def _metric(hess_diag, x, owner, first):
    """The positive diagonal metric of the hessp subproblem: ``|hess_diag(x)|``
    floored at 1e-10 of its largest entry (ones without ``hess_diag``, or when it is
    all zero)."""
    n = x.size
    if hess_diag is None:
        return np.ones(n)
    diag = hess_diag(x)
    if first:
        da = _real_array(diag, f"The diagonal returned by hess_diag of {owner}")
        if da.shape != (n,):
            raise ValueError(f"The 'hess_diag' parameter of {owner} must return an array of "
                             f"shape {(n,)} (the shape of x); got shape {da.shape}.")
    diag = np.asarray(diag, dtype=np.float64)
    if not np.all(np.isfinite(diag)):
        raise ValueError(f"hess_diag returned non-finite values (NaN or inf) at an iterate of "
                         f"{owner} where the objective and gradient are finite.")
    return _positive_metric(diag)


def _positive_metric(diag):
    """``|diag|`` floored at 1e-10 of its largest entry (ones when that is 0)."""
    diag = np.abs(diag)
    top = float(np.max(diag)) if diag.size else 0.0
    if not top > 0.0:
        return np.ones(diag.size)
    return np.maximum(diag, 1e-10 * top)


def proximal_newton(fun_grad, x0, l1, *, hess=None, hessp=None, hess_diag=None, tol=1e-6,
                    max_iter=1000, verbose=0):
    """Minimise ``f(x) + sum(l1 * |x|)`` by proximal Newton.

    Each iteration minimises the quadratic model of ``f`` plus the exact l1 term,
    ``g.d + d.H.d / 2 + sum(l1 |x + d|)``, then backtracks along ``d``.  With the
    explicit Hessian the model is minimised by coordinate descent and exact solves
    on the support; with Hessian-vector products (and when coordinate descent
    crawls on an ill-conditioned ``H``) by an active-set method: conjugate gradients
    on the current face (the nonzero coordinates, signs fixed), preconditioned by a
    diagonal metric, alternating with proximal-gradient steps in that metric that
    change the face.  Coordinates that the subproblem sets to zero are exactly
    zero.  ``f`` need not be convex (see Notes).

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x) -> (f, g)`` for the smooth part: ``f`` a real scalar, ``g`` of
        shape (n,), both finite at ``x0``.
    x0 : array_like of shape (n,)
        Starting point, finite; a scalar is taken as shape (1,), an array of more
        dimensions is refused (ValueError).
    l1 : float or array_like of shape (n,)
        Non-negative finite l1 weights (0 for unpenalised coordinates); a scalar
        applies to every coordinate.
    hess : callable or None
        ``hess(x) -> H`` of shape (n, n) (preferred when n is small).
    hessp : callable or None
        ``hessp(x) -> hv`` with ``hv(v) = H v``; used when ``hess`` is None.
        ``hess``/``hessp`` are called once per iteration at the current iterate,
        which is always the last point ``fun_grad`` was called at.
    hess_diag : callable or None, default=None
        With ``hessp``: ``hess_diag(x) -> ndarray of shape (n,)``, the diagonal of
        the Hessian at ``x`` (an approximation on the same scale will do), called
        once per iteration after ``hessp``; its absolute values, floored at 1e-10 of
        the largest, are the metric of the subproblem (Jacobi scaling), which makes
        it insensitive to the scale of each coordinate.  Without it the metric is
        the identity until a subproblem fails to converge within its budget of
        ``max(250, 10 n)`` products; then the diagonal is computed once from ``n``
        products (at that iterate) and kept.  Pass it when it is cheap, e.g. for
        a model whose features have very different scales.  Ignored with ``hess``.
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
        or one with NaN or inf entries; ``hessp`` products not of shape (n,) or
        not finite; ``hess_diag`` an array not of shape (n,) or not finite.

    Notes
    -----
    With ``Delta = g.d + h(x + d) - h(x)`` (negative unless ``x`` is optimal), the step
    ``t`` halves until ``F(x + t d) <= F(x) + 1e-4 t Delta``.  The subproblem is
    solved to a tolerance that tightens with the outer optimality measure, which
    gives the fast local convergence of Newton's method (Lee, Sun and Saunders,
    2014).  Once ``-Delta`` is below ``sqrt(eps) max(1, |F|)`` steps are also
    judged by the trapezoidal rule on the gradients, and 10 such iterations in a
    row without a new smallest optimality measure stop the run (precision limit).

    Where ``H`` is not positive semi-definite (``f`` not convex there) the model is
    unbounded; ``H`` is then replaced by ``|H|`` (its eigenvalues made positive,
    ``hess``) or by ``H + tau D`` with ``tau`` twice the most negative curvature
    met (``hessp``), whose minimiser is a descent direction: the run converges to
    a stationary point, as Newton's method with a line search does.

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
    x = _check_x0(x0, owner)
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
    sub_state = {}  # the hessp subproblem's curvature bound, kept between iterations
    D_fixed = None  # the metric estimated once when hess_diag is None (see below)
    # products per hessp subproblem, at most about (CG on an ill-conditioned face needs
    # several times n: ~5 n at condition 1e8)
    budget = max(250, 10 * x.size)
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
            if d is not None and _inf_norm(l1_optimality(x + d, g + H @ d, l1)) > inner_tol:
                # coordinate descent crawls on an ill-conditioned H: go on from its
                # point by conjugate gradients on faces, as with hessp
                D = _positive_metric(np.diag(H))
                d = _hv_subproblem(lambda v, H=H: H @ v, g, x, l1, inner_tol, D, sub_state,
                                   budget, u0=x + d)
            if d is None:
                # f is not convex here: the model with |H| (H's eigenvalues made
                # positive, floored at 1e-8 of the largest) is, and its minimiser is
                # a descent direction (the Newton step where H is positive)
                d = _cd_subproblem(_abs_eig(H), g, x, l1, inner_tol)
                if d is None:  # pragma: no cover - |H| is positive definite
                    d = -l1_optimality(x, g, l1)
        else:
            hv0 = hessp(x)
            if n_hess == 0:  # the products' shape, once
                hv0 = _first_checked(hv0, x.size, owner, "hessp")
            D = _metric(hess_diag, x, owner, first=n_hess == 0) if D_fixed is None else D_fixed
            cnt = [0]

            def hv(v, hv0=hv0, cnt=cnt):
                cnt[0] += 1
                return np.asarray(hv0(v), dtype=np.float64)

            try:
                d = _hv_subproblem(hv, g, x, l1, inner_tol, D, sub_state, budget)
                if (hess_diag is None and D_fixed is None
                        and not sub_state.get("solved", True)):
                    # the identity metric failed to solve the model within the budget
                    # (a badly scaled f): the Hessian's diagonal here, from n
                    # products, is the metric from now on
                    D_fixed = _positive_metric(_diag_from_hv(hv, x.size))
                    sub_state.pop("L", None)  # measured in the old metric
            except _NonFiniteProduct:
                # g, x and l1 are finite: hessp's products were not
                raise ValueError(f"hessp returned non-finite values (NaN or inf) at an "
                                 f"iterate of {owner} where the objective and gradient are "
                                 "finite.") from None
            n_hess += cnt[0]
        # h(x + d) - h(x) term by term: accurate even when d is tiny
        delta = float(g @ d) + float(l1 @ (np.abs(x + d) - np.abs(x)))
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
        small = -delta <= _NOISY * max(abs(F), 1.0)
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
