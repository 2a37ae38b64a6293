"""What every solver shares: the result object, the stopping rule, the
per-iteration hook (contract 6) and verbose printing."""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OptimizeResult", "on_iteration"]

_HOOKS: contextvars.ContextVar[tuple] = contextvars.ContextVar("softmaxkit_solver_hooks",
                                                               default=())


@dataclass
class OptimizeResult:
    """The outcome of a solver run.

    Attributes
    ----------
    x : ndarray of shape (n_params,)
        The final iterate (float64).
    fun : float
        The objective at ``x``.
    n_iter : int
        Number of iterations performed.
    converged : bool
        Whether the stopping rule was met (False when ``max_iter`` was hit or the
        run stopped at the limit of floating-point precision).
    grad_norm : float
        The stopping measure at ``x``: ``max |projected gradient|`` (the minimum-norm
        subgradient for an l1 term).
    history : ndarray of shape (n_iter + 1,)
        The objective at the starting point and after each iteration.
    n_fev : int
        Number of objective (value and gradient) evaluations.
    n_hessp : int
        Number of Hessian-vector products (or explicit Hessians) used.
    message : str
        Why the run stopped.
    """

    x: np.ndarray
    fun: float
    n_iter: int
    converged: bool
    grad_norm: float
    history: np.ndarray = field(repr=False)
    n_fev: int = 0
    n_hessp: int = 0
    message: str = ""


@contextlib.contextmanager
def on_iteration(fn):
    """Call ``fn(info)`` once per iteration of every solver run inside the block.

    ``info`` is a dict ``{"iteration": int, "objective": float, "grad_norm": float,
    "max_iter": int}``.  Hooks nest: inside two ``with`` blocks both functions are
    called.  The hook lives in a :mod:`contextvars` variable, so threads and asyncio
    tasks started outside the block do not see it.

    Parameters
    ----------
    fn : callable
        Called as ``fn(info)``; its return value is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.solvers import on_iteration, trust_region_newton_cg
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, -1.0])
    >>> fun_grad = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)
    >>> seen = []
    >>> with on_iteration(lambda info: seen.append(info["iteration"])):
    ...     res = trust_region_newton_cg(fun_grad, lambda x: (lambda v: A @ v), np.zeros(2))
    >>> seen == list(range(1, res.n_iter + 1))
    True
    """
    if not callable(fn):
        raise TypeError(f"on_iteration needs a callable; got {fn!r}.")
    token = _HOOKS.set((*_HOOKS.get(), fn))
    try:
        yield fn
    finally:
        _HOOKS.reset(token)


class _Monitor:
    """Bookkeeping shared by the solvers: history, hooks, verbose lines, the
    stopping rule and the ConvergenceWarning."""

    def __init__(self, name, tol, max_iter, verbose, f0, gnorm0):
        self.name = name
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.verbose = int(verbose or 0)
        self.history = [float(f0)]
        self.hooks = _HOOKS.get()
        self.n_iter = 0
        self.gnorm = float(gnorm0)
        if self.verbose:
            print(f"[{name}] iter    0  objective {f0: .10e}  |grad|_inf {gnorm0:.3e}")

    def threshold(self, f):
        """The stopping threshold: ``tol * max(1, |f|)``."""
        return self.tol * max(1.0, abs(float(f)))

    def done(self, f, gnorm):
        return bool(gnorm <= self.threshold(f))

    def step(self, f, gnorm, extra=""):
        """Record one finished iteration."""
        self.n_iter += 1
        self.gnorm = float(gnorm)
        self.history.append(float(f))
        if self.verbose:
            print(f"[{self.name}] iter {self.n_iter:4d}  objective {f: .10e}  "
                  f"|grad|_inf {gnorm:.3e}{('  ' + extra) if extra else ''}")
        if self.hooks:
            info = {"iteration": self.n_iter, "objective": float(f),
                    "grad_norm": float(gnorm), "max_iter": self.max_iter}
            for fn in self.hooks:
                fn(info)

    def result(self, x, f, converged, message, n_fev=0, n_hessp=0):
        if not converged:
            _warn_not_converged(self.name, self.n_iter, message)
        if self.verbose:
            print(f"[{self.name}] {message}")
        return OptimizeResult(x=np.asarray(x, dtype=np.float64), fun=float(f),
                              n_iter=self.n_iter, converged=bool(converged),
                              grad_norm=float(self.gnorm),
                              history=np.asarray(self.history, dtype=np.float64),
                              n_fev=int(n_fev), n_hessp=int(n_hessp), message=message)


def _convergence_warning_class():
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return UserWarning
    return ConvergenceWarning


# set by the callers that judge convergence themselves (SoftmaxRegression, on the
# user's tol rather than the solver's, which may be tightened): a context variable,
# so it holds for one thread only (a warnings.catch_warnings around the solver
# changed the process's warning state, and two fits in two threads left every later
# warning of the process lost)
_QUIET = contextvars.ContextVar("softmaxkit_solver_quiet", default=None)


@contextlib.contextmanager
def quiet_convergence():
    """Within this context (this thread or task only) the solvers issue no
    ``ConvergenceWarning``; what they would have warned is collected in the list
    this yields, as ``(solver name, n_iter, message)`` (:func:`convergence_text`
    makes the warning's text), for the caller to issue or drop (the result says
    whether a solver converged)."""
    notes = []
    token = _QUIET.set(notes)
    try:
        yield notes
    finally:
        _QUIET.reset(token)


def convergence_text(name, n_iter, message):
    """The text of a solver's ConvergenceWarning."""
    return (f"The {name} solver did not converge after {n_iter} iterations "
            f"({message}). Increase max_iter, loosen tol or scale the features.")


def _warn_not_converged(name, n_iter, message):
    notes = _QUIET.get()
    if notes is not None:
        notes.append((name, n_iter, message))
        return
    warnings.warn(convergence_text(name, n_iter, message), _convergence_warning_class(),
                  stacklevel=4)


def _inf_norm(g):
    return float(np.max(np.abs(g))) if g.size else 0.0


def _check_x0(x0, owner):
    """``x0`` as a new float64 vector: 1-D (a scalar is taken as shape (1,)); an array
    of more dimensions is refused (it was flattened silently, and ``fun_grad`` then
    saw another shape than the caller's), as are NaN and inf."""
    x = np.array(x0, dtype=np.float64)
    if x.ndim > 1:
        raise ValueError(f"The 'x0' parameter of {owner} must be a 1-D array of shape (n,) "
                         f"(or a scalar, taken as shape (1,)); got an array of shape "
                         f"{x.shape}.")
    x = x.reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("The starting point of a solver must be finite.")
    return x


def _check_common(tol, max_iter, owner):
    from .._validation import check_scalar_param

    check_scalar_param(tol, "tol", owner, kind=float, low=0.0)
    check_scalar_param(max_iter, "max_iter", owner, kind=int, low=0)


def _real_array(value, what):
    """``np.asarray(value)`` after checking that it is real and numeric (TypeError
    naming ``what`` otherwise)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise TypeError(f"{what} must be real; got complex dtype {arr.dtype}.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a real number or array; got {type(value).__name__}"
                        + (f" with dtype {arr.dtype}" if arr.dtype.kind != "O" else "") + ".")
    return arr


def _start(fun_grad, x, owner):
    """Evaluate ``fun_grad`` at the starting point ``x`` and check what it returns.

    ``f`` must be a real scalar (a 0-d or one-element array is accepted and
    converted) and ``g`` a real array of ``x``'s shape, both finite: a solver can do
    nothing from a point where they are not.  Returns ``(fun_grad, f, g)`` with
    ``f`` a float and ``g`` a float64 array; ``fun_grad`` is wrapped to keep
    converting when it returned ``f`` as a one-element array of positive dimension
    (``float()`` refuses those).  Only this first evaluation is checked: later ones
    cost nothing extra.
    """
    out = fun_grad(x)
    try:
        f, g = out
    except (TypeError, ValueError):
        raise TypeError(f"The 'fun_grad' parameter of {owner} must return a pair (f, g) "
                        f"(objective, gradient); got {type(out).__name__}"
                        + (f" of length {len(out)}" if hasattr(out, "__len__") else "")
                        + ".") from None
    what = f"The objective f returned by fun_grad of {owner}"
    wrap = False
    if isinstance(f, numbers.Real):
        f = float(f)
    else:
        fa = _real_array(f, what)
        if fa.size != 1:
            raise ValueError(f"The 'fun_grad' parameter of {owner} must return a scalar "
                             f"objective f; got an array of shape {fa.shape}.")
        wrap = fa.ndim > 0
        f = float(fa.reshape(()))
    ga = _real_array(g, f"The gradient g returned by fun_grad of {owner}")
    if ga.shape != x.shape:
        raise ValueError(f"The 'fun_grad' parameter of {owner} must return a gradient g of "
                         f"shape {x.shape} (the shape of x); got shape {ga.shape}.")
    g = np.asarray(ga, dtype=np.float64)
    if not np.isfinite(f):
        raise ValueError(f"fun_grad returned a non-finite objective at x0 (f = {f}): "
                         f"{owner} cannot start there; start where the objective and its "
                         "gradient are finite.")
    bad = int(np.count_nonzero(~np.isfinite(g)))
    if bad:
        raise ValueError(f"fun_grad returned a non-finite gradient at x0 ({bad} of {g.size} "
                         f"entries NaN or inf): {owner} cannot start there; start where the "
                         "objective and its gradient are finite.")
    if wrap:
        inner = fun_grad

        def fun_grad(z):
            fz, gz = inner(z)
            return float(np.asarray(fz).reshape(())), gz

    return fun_grad, f, g


def _check_hess(H, n, owner, name="hess", check=True):
    """``H`` (what ``hess(x)`` returned) as a float64 (n, n) array, with its type,
    shape and finiteness checked when ``check`` (ValueError/TypeError naming
    ``name``); otherwise only converted."""
    if not check:
        return np.asarray(H, dtype=np.float64)
    Ha = _real_array(H, f"The Hessian returned by {name} of {owner}")
    if Ha.shape != (n, n):
        raise ValueError(f"The {name!r} parameter of {owner} must return a Hessian of shape "
                         f"{(n, n)} for x of shape {(n,)}; got shape {Ha.shape}.")
    Ha = np.asarray(Ha, dtype=np.float64)
    if not np.all(np.isfinite(Ha)):
        raise _hess_not_finite(owner, name)
    return Ha


def _hess_not_finite(owner, name="hess"):
    return ValueError(f"{name} returned a non-finite Hessian (NaN or inf entries) at an "
                      f"iterate of {owner} where the objective and gradient are finite.")


def _first_checked(fn, n, owner, name):
    """``fn`` (a product callable returned by ``hessp(x)``/``precond(x)``) with its
    first result checked by ``_check_product``."""
    done = [False]

    def checked(v):
        r = fn(v)
        if not done[0]:
            r = _check_product(r, n, owner, name)
            done[0] = True
        return r

    return checked


def _check_product(r, n, owner, name):
    """The first product returned by a ``hessp``/``precond`` callable: a real array of
    shape (n,) (ValueError/TypeError naming ``name`` otherwise)."""
    ra = _real_array(r, f"The product returned by {name} of {owner}")
    if ra.shape != (n,):
        raise ValueError(f"The {name!r} parameter of {owner} must return a callable whose "
                         f"result has shape {(n,)} (the shape of x); got shape {ra.shape}.")
    return np.asarray(ra, dtype=np.float64)


_EPS = np.finfo(np.float64).eps
# below this decrease (relative to max(1, |f|)) differences of f may be mostly rounding
# (cancellation in f = a sum of large terms: ~1e-10 |f| on a quadratic of condition
# 1e8); the trapezoidal rule on the gradients rates such steps
_NOISY = float(np.sqrt(_EPS))


def _backtrack(fun_grad, x, d, f, slope, h=None, *, g=None, l1=None, info=None):
    """Armijo backtracking from ``x`` along ``d``, halving the step.

    ``f`` is the current objective (including ``h(x)`` when ``h`` is given),
    ``slope`` the predicted decrease per unit step (< 0), and ``h`` an optional
    non-smooth term added to ``fun_grad``'s value (``l1`` its weights when it is
    ``sum(l1 |x|)``).  A trial point where the objective or the gradient is not
    finite (NaN or inf) is never accepted: the step is halved.

    When the decrease asked (``-slope``) is below ``sqrt(eps) max(1, |f|)``, ``f``'s
    rounding may hide it, and with ``g`` (the gradient of ``fun_grad``'s part at
    ``x``) a step that changes ``f`` by less than that is also accepted when the
    trapezoidal rule on the gradients, ``-(g + g_new).(t d) / 2`` (exact for a
    quadratic), shows the Armijo decrease ``-1e-4 t slope``; without ``g`` a step
    is never accepted on a change of ``f`` within rounding (it accepted increases
    of up to 1e3 eps |f| and never failed, so Newton ran to max_iter at the
    precision limit).

    Returns ``(t, x_new, f_new, g_new, n_fev)``, with ``t = None`` when 60
    halvings found no acceptable step, once the step no longer changes ``x``, after
    10 trials rated by the gradients, or (without ``g``) once two trial steps in a
    row left ``f`` unchanged to rounding while the decrease asked was below it
    (``f_new == f`` would otherwise pass the test: a float32 fit whose gradient
    noise exceeds the tolerance took 1000 steps of 1e-12 that way).  ``info``, a
    dict, gets ``"nonfinite"``: whether a trial point of a failed search had a
    non-finite objective or gradient.
    """
    t = 1.0
    rounding = 1e3 * _EPS * max(abs(f), 1.0)
    noise = _NOISY * max(abs(f), 1.0)
    noisy = g is not None and -slope <= noise
    flat = 0
    seen_nonfinite = False
    n_fev = 0
    for _ in range(60):
        step = t * d
        x_new = x + step
        if np.array_equal(x_new, x):
            break  # below x's resolution: no shorter step changes anything
        f_new, g_new = fun_grad(x_new)
        n_fev += 1
        f_new = float(f_new) + (h(x_new) if h is not None else 0.0)
        target = f + 1e-4 * t * slope
        nonfinite = not (np.isfinite(f_new) and np.all(np.isfinite(g_new)))
        seen_nonfinite = seen_nonfinite or nonfinite
        if not nonfinite:
            if f_new <= target and (f_new < f or target < f):
                return t, x_new, f_new, g_new, n_fev
            if noisy and abs(f_new - f) <= noise:
                est = -0.5 * float((g + np.asarray(g_new, dtype=np.float64)) @ step)
                if l1 is not None:
                    est -= float(l1 @ (np.abs(x_new) - np.abs(x)))
                if est >= -1e-4 * t * slope:
                    return t, x_new, f_new, g_new, n_fev
        if noisy:
            # f's flatness says nothing here; ten refusals by the gradients (the
            # overshoot of a parabola is refused twice) and they are noise
            if n_fev >= 10:
                break
        elif not nonfinite and target >= f and abs(f_new - f) <= rounding:
            # f did not move beyond rounding while the decrease asked is below f's
            # rounding; twice in a row and the steps are too short to show one (an
            # overshoot, f_new above f by more, or a non-finite trial is halved as
            # usual; one flat trial can be a symmetric point of a parabola)
            flat += 1
            if flat >= 2:
                break
        else:
            flat = 0
        t *= 0.5
    if info is not None:
        info["nonfinite"] = seen_nonfinite
    return None, x, f, None, n_fev


class _Stall:
    """Counts iterations in a row whose predicted decrease is below ``sqrt(eps)
    max(1, |f|)`` (``small``: where f's differences may be rounding) and that set no
    new smallest gradient: at the precision limit the gradient is rounding noise,
    and steps go on being taken at random."""

    LIMIT = 10

    def __init__(self, gnorm):
        self.best = float(gnorm)
        self.count = 0

    def update(self, small, gnorm, record=True):
        """Record an iteration; True once ``LIMIT`` of them stalled in a row."""
        self.count = self.count + 1 if small and not gnorm < self.best else 0
        if record:
            self.best = min(self.best, float(gnorm))
        return self.count >= self.LIMIT
