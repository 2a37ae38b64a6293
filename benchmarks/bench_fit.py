"""Fit benchmark: softmaxkit.SoftmaxRegression vs scikit-learn's LogisticRegression.

Runs scikit-learn's ``lbfgs`` and ``newton-cg`` and ours in one process on the same
data, each with its library's default tolerance (and scikit-learn's default
``max_iter=100``), and prints per problem: wall time, the final objective
``C * sum_i CE_i + ||W||^2 / 2`` computed by one function for every model, and
our speed-up over the fastest scikit-learn solver.

    python benchmarks/bench_fit.py            # full problems (a few minutes)
    python benchmarks/bench_fit.py --quick    # small versions, for development
    python benchmarks/bench_fit.py --backends # ours with the numba kernels vs NumPy only
    python benchmarks/bench_fit.py --ceiling  # the best speed-up any Newton method could have
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax


def objective(model, X, y, C=1.0):
    """scikit-learn's L2 objective for any fitted model, computed in float64."""
    W = np.asarray(model.coef_, dtype=np.float64)
    b = np.asarray(model.intercept_, dtype=np.float64)
    Z = np.asarray(X @ W.T, dtype=np.float64) + b
    L = log_softmax(Z, axis=1)
    return float(C * -L[np.arange(len(y)), y].sum() + 0.5 * (W * W).sum())


# warm-up fits take this many rows: enough logits (4,000 x 10 > 32,768) for our
# compiled cross-entropy kernel to load (0.3-0.5 s, once per process) before timing
_WARM = 4000


def _labels(Z, rng):
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    return (P.cumsum(1) > rng.random((len(P), 1))).argmax(1)


def make_dense(n, d, K, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((K, d)) * 0.3
    y = _labels(X @ W.T, rng)
    return np.ascontiguousarray(X, dtype=dtype), y


def make_sparse(n, d, K, density, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed,
                  data_rvs=rng.standard_normal)
    W = rng.standard_normal((K, d)) * 0.3
    y = _labels(np.asarray(X @ W.T), rng)
    return X, y


def problems(quick, only=None):
    for name, X, y in _problems(quick):
        if only is None or only in name:
            yield name, X, y


def _problems(quick):
    from sklearn.datasets import load_digits

    if quick:
        n, d, K, ns, ds = 10_000, 50, 10, 10_000, 4_000
    else:
        n, d, K, ns, ds = 50_000, 100, 20, 50_000, 20_000
    X, y = make_dense(n, d, K, np.float64)
    yield f"dense {n}x{d}x{K} float64", X, y
    yield f"dense {n}x{d}x{K} float32", X.astype(np.float32), y
    Xs, ys = make_sparse(ns, ds, K, 0.005)
    yield f"sparse {ns}x{ds}x{K} (0.5%)", Xs, ys
    Xd, yd = load_digits(return_X_y=True)
    yield "digits 1797x64x10", Xd, yd


def timed(make, X, y, repeat):
    best, model = np.inf, None
    for _ in range(repeat):
        m = make()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = time.perf_counter()
            m.fit(X, y)
            dt = time.perf_counter() - t
        best = min(best, dt)
        model = m
        conv = not any("converge" in str(w.message) for w in caught)
    return best, model, conv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small problems for development")
    ap.add_argument("--repeat", type=int, default=1, help="best of R runs per fit")
    ap.add_argument("--matched", action="store_true",
                    help="also run scikit-learn's lbfgs at our tolerance (tol=1e-6)")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit BLAS/OpenMP threads of every library (threadpoolctl; "
                         "softmaxkit's own threads follow BLAS's limit)")
    ap.add_argument("--backends", action="store_true",
                    help="time our fit with SOFTMAXKIT_BACKEND=auto (kernels) vs numpy "
                         "(reference), interleaved, instead of the scikit-learn comparison")
    ap.add_argument("--ceiling", action="store_true",
                    help="count the Newton steps an exact Newton method needs from our start "
                         "point and time one gradient pass and one Hessian-vector product of "
                         "ours: the speed-up over scikit-learn no Newton-type method could "
                         "beat with these passes")
    ap.add_argument("--only", default=None, metavar="TEXT",
                    help="run only the problems whose name contains TEXT (e.g. sparse)")
    args = ap.parse_args(argv)
    run = _run_backends if args.backends else _run_ceiling if args.ceiling else _run
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            return run(args)
    return run(args)


def _run_backends(args):
    """Our fit with the compiled kernels (auto) and with the NumPy reference,
    alternating so that the machine's load hits both alike; best of --repeat."""
    from softmaxkit import SoftmaxRegression

    print(f"numpy {np.__version__}, threads {args.threads or 'default'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    old = os.environ.get("SOFTMAXKIT_BACKEND")
    modes = ("auto", "numpy")
    rows = []
    try:
        for name, X, y in problems(args.quick, args.only):
            for mode in modes:  # warm-up (JIT caches) on a slice of the data
                os.environ["SOFTMAXKIT_BACKEND"] = mode
                SoftmaxRegression().fit(X[:_WARM], y[:_WARM])
            best = dict.fromkeys(modes, np.inf)
            fobj = {}
            for _ in range(max(args.repeat, 1)):
                for mode in modes:
                    os.environ["SOFTMAXKIT_BACKEND"] = mode
                    t, m, _ = timed(SoftmaxRegression, X, y, 1)
                    best[mode] = min(best[mode], t)
                    fobj[mode] = objective(m, X, y)
            rows.append((name, best, fobj))
            print(f"{name}: kernels {best['auto']:.3f} s, numpy {best['numpy']:.3f} s, "
                  f"speed-up {best['numpy'] / best['auto']:.2f}x; objectives "
                  f"{fobj['auto']:.6f} / {fobj['numpy']:.6f}")
    finally:
        if old is None:
            os.environ.pop("SOFTMAXKIT_BACKEND", None)
        else:
            os.environ["SOFTMAXKIT_BACKEND"] = old
    print("\n| problem | kernels (auto) (s) | NumPy reference (s) | speed-up | "
          "objective kernels / numpy |")
    print("|---|---|---|---|---|")
    for name, best, fobj in rows:
        print(f"| {name} | {best['auto']:.3f} | {best['numpy']:.3f} | "
              f"{best['numpy'] / best['auto']:.2f}x | {fobj['auto']:.6f} / "
              f"{fobj['numpy']:.6f} |")


def _best_time(fn, repeat=5):
    fn()
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _exact_newton_steps(obj, x, max_steps=50):
    """Newton steps from ``x`` with the Newton system solved to a relative residual
    of 1e-8 (CG with our preconditioner, at most 500 steps: float32 products stall
    near 1e-7) and an Armijo backtracking line search, until our stopping rule
    (tol=1e-6) holds; returns (steps, x at the optimum)."""
    from scipy.sparse.linalg import LinearOperator, cg

    for step in range(max_steps):
        f, g = obj.fun_grad(x)
        if np.max(np.abs(g)) <= 1e-6 * max(1.0, abs(f)):
            return step, x
        hv, minv = obj.hessp(x), obj.precond(x)
        A = LinearOperator((x.size, x.size), matvec=hv)
        M = LinearOperator((x.size, x.size), matvec=minv)
        p, _ = cg(A, -g, rtol=1e-8, M=M, maxiter=500)
        t = 1.0
        while obj.fun_grad(x + t * p)[0] > f + 1e-4 * t * float(g @ p):
            t *= 0.5
        x = x + t * p
    raise RuntimeError("exact Newton did not converge")


def _run_ceiling(args):
    """The speed-up a Newton-type method could reach at best with our passes over the
    data.  From our start point an exact Newton method needs N steps to our
    tolerance, so N + 1 gradient passes; a Newton-CG step needs at least one
    Hessian-vector product.  Floors: (N + 1) t_grad (Hessian solves for free) and
    (N + 1) t_grad + N t_hvp (one product per step), against scikit-learn's fastest
    solver at its default tolerance (timed here, best of --repeat)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from softmaxkit import SoftmaxRegression
    from softmaxkit.models._softmax_regression import _blas_threads, _PenalizedObjective

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__}, threads {args.threads or 'default'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for name, X, y in problems(args.quick, args.only):
        t_sk = np.inf
        for solver in ("lbfgs", "newton-cg"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                LogisticRegression(solver=solver).fit(X[:_WARM], y[:_WARM])
                t, _, _ = timed(lambda s=solver: LogisticRegression(solver=s), X, y,
                                args.repeat)
            t_sk = min(t_sk, t)
        SoftmaxRegression().fit(X[:_WARM], y[:_WARM])
        t_ours, _, _ = timed(SoftmaxRegression, X, y, args.repeat)
        model = SoftmaxRegression()
        model._check_params()
        term = model._make_data_term(X, y, None)
        obj = _PenalizedObjective(term, "l2", 1.0)
        steps, x_opt = _exact_newton_steps(obj, model._initial_coef(term, obj))
        # passes timed as the fit runs them (float32 Hessian products, row blocks of X
        # on threads with BLAS in one thread)
        with _blas_threads(model._pass_setup(term, obj)):
            t_grad = _best_time(lambda o=obj, x=x_opt: o.fun_grad(x))
            hv = obj.hessp(x_opt)
            v = np.random.default_rng(0).standard_normal(x_opt.size)
            t_hvp = _best_time(lambda h=hv, v=v: h(v))
        floor_a = (steps + 1) * t_grad
        floor_b = floor_a + steps * t_hvp
        rows.append((name, t_sk, t_ours, steps, t_grad, t_hvp, floor_a, floor_b))
        print(f"{name}: sklearn fastest {t_sk:.3f} s, ours {t_ours:.3f} s, exact Newton "
              f"steps {steps}, gradient pass {1e3 * t_grad:.1f} ms, Hessian product "
              f"{1e3 * t_hvp:.1f} ms", flush=True)
    print("\n| problem | sklearn fastest (s) | ours (s) | exact Newton steps N | gradient "
          "pass (ms) | Hessian product (ms) | ceiling, free Hessian solves | ceiling, "
          "one product per step | ours now |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t_sk, t_ours, steps, t_grad, t_hvp, floor_a, floor_b in rows:
        print(f"| {name} | {t_sk:.3f} | {t_ours:.3f} | {steps} | {1e3 * t_grad:.1f} | "
              f"{1e3 * t_hvp:.1f} | {t_sk / floor_a:.1f}x | {t_sk / floor_b:.1f}x | "
              f"{t_sk / t_ours:.1f}x |")


def _run(args):

    import sklearn
    from sklearn.linear_model import LogisticRegression

    from softmaxkit import SoftmaxRegression

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__}, machine {platform.machine()}, "
          f"threads {args.threads or 'default'}, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for name, X, y in problems(args.quick, args.only):
        res = {}
        makers = [
            ("sklearn lbfgs", lambda: LogisticRegression(solver="lbfgs")),
            ("sklearn newton-cg", lambda: LogisticRegression(solver="newton-cg")),
            ("softmaxkit", lambda: SoftmaxRegression()),
        ]
        if args.matched:
            makers.insert(2, ("sklearn lbfgs tol=1e-6", lambda: LogisticRegression(
                solver="lbfgs", tol=1e-6, max_iter=10_000)))
        for _, make in makers:  # warm-up (imports, JIT caches) on a slice of the data
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                make().fit(X[:_WARM], y[:_WARM])
        for label, make in makers:
            t, m, conv = timed(make, X, y, args.repeat)
            res[label] = (t, objective(m, X, y), conv, int(np.max(m.n_iter_)))
        t_sk = min(res["sklearn lbfgs"][0], res["sklearn newton-cg"][0])
        f_sk = min(res["sklearn lbfgs"][1], res["sklearn newton-cg"][1])
        t_ours, f_ours = res["softmaxkit"][:2]
        rows.append((name, res, t_sk / t_ours, f_ours - f_sk))
        print(f"\n{name}")
        for label, (t, f, conv, it) in res.items():
            print(f"  {label:22s} {t:8.3f} s  objective {f:.10e}  iters {it:4d}"
                  f"{'' if conv else '  (ConvergenceWarning)'}")
        print(f"  speed-up vs fastest scikit-learn: {t_sk / t_ours:.1f}x; "
              f"objective ours - best sklearn: {f_ours - f_sk:+.3e}")

    print("\n| problem | sklearn lbfgs (s) | sklearn newton-cg (s) | softmaxkit (s) | "
          "speed-up vs fastest sklearn | objective: lbfgs / newton-cg / ours |")
    print("|---|---|---|---|---|---|")
    for name, res, speed, _ in rows:
        lb, nc, us = res["sklearn lbfgs"], res["sklearn newton-cg"], res["softmaxkit"]
        if "sklearn lbfgs tol=1e-6" in res:
            lm = res["sklearn lbfgs tol=1e-6"]
            name = (f"{name} (sklearn lbfgs at tol=1e-6: {lm[0]:.3f} s, "
                    f"{lm[0] / us[0]:.1f}x ours, objective {lm[1]:.6f})")
        def flag(r):
            return "" if r[2] else "*"
        print(f"| {name} | {lb[0]:.3f}{flag(lb)} | {nc[0]:.3f}{flag(nc)} | {us[0]:.3f} | "
              f"{speed:.1f}x | {lb[1]:.6f}{flag(lb)} / {nc[1]:.6f}{flag(nc)} / {us[1]:.6f} |")
    print("(* = ConvergenceWarning at scikit-learn's default max_iter=100)")


if __name__ == "__main__":
    main()
