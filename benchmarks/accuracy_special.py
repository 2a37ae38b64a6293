"""Accuracy of softmax, log_softmax and logsumexp against mpmath (60 digits),
ours next to SciPy's on the same inputs (issue #2).

    python benchmarks/accuracy_special.py            # 2000 rows, about a minute
    python benchmarks/accuracy_special.py --rows 200 # quick look

Rows: width 3..1000, spread (max - min) up to 20, offset up to 1e3 in
magnitude (half uniform in [-1e3, 1e3], half log-uniform in 1e-3..1e3 with a
random sign, so that rows with entries of both signs, where ``x - max`` is
rounded, are well represented), float64.  Error of one entry: ``|ours -
exact| / spacing(exact)`` with the difference taken in 60-digit arithmetic
(0.5 = correctly rounded).  A row's error is its worst entry; the table
gives the worst and the median row.  Acceptance: softmax and logsumexp <= 4
ulp, log_softmax <= 8 ulp.

Then the same on float32 rows (a quarter as many), in float32 ulps.

Also: the largest entry of log_softmax (``-log1p(rest)``) where the textbook
``x - max - log(sum)`` loses everything, and, for context, the time of our
NumPy reference next to SciPy on one array (same process, same data).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit

import mpmath
import numpy as np
import scipy
import scipy.special as sps

import softmaxkit as smk

DPS = 60


def exact_row(x):
    with mpmath.workdps(DPS):
        xs = [mpmath.mpf(float(v)) for v in x]
        m = max(xs)
        es = [mpmath.exp(v - m) for v in xs]
        s = mpmath.fsum(es)
        lse = m + mpmath.log(s)
        return [e / s for e in es], [v - lse for v in xs], [lse]


def worst_ulp(ours, exact):
    ours = np.atleast_1d(np.asarray(ours, dtype=np.float64))
    with mpmath.workdps(DPS):
        diff = np.array([float(abs(mpmath.mpf(float(o)) - e))
                         for o, e in zip(ours, exact, strict=True)])
    ex = np.abs(np.array([float(e) for e in exact]))
    return float(np.max(diff / np.spacing(ex)))


def worst_ulp32(ours, exact):
    """As ``worst_ulp`` in units of float32 (and checks the dtype)."""
    assert np.asarray(ours).dtype == np.float32
    ours = np.atleast_1d(np.asarray(ours, dtype=np.float64))
    with mpmath.workdps(DPS):
        diff = np.array([float(abs(mpmath.mpf(float(o)) - e))
                         for o, e in zip(ours, exact, strict=True)])
    ex = np.abs(np.array([float(e) for e in exact], dtype=np.float32))
    return float(np.max(diff / np.spacing(ex).astype(np.float64)))


def random_row(rng):
    k = int(rng.integers(3, 1001))
    spread = rng.uniform(0, 20)
    if rng.random() < 0.5:
        off = rng.uniform(-1e3, 1e3)
    else:
        off = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-3, 3)
    return off + spread * (rng.random(k) - 0.5)


def _kernel_fns():
    """softmaxkit with SOFTMAXKIT_BACKEND=numba (the compiled kernels), or None."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return None

    def call(f):
        def g(x):
            old = os.environ.get("SOFTMAXKIT_BACKEND")
            os.environ["SOFTMAXKIT_BACKEND"] = "numba"
            try:
                return f(x[None, :])[0]
            finally:
                if old is None:
                    del os.environ["SOFTMAXKIT_BACKEND"]
                else:
                    os.environ["SOFTMAXKIT_BACKEND"] = old
        return g

    fns = {"softmax": call(smk.softmax), "log_softmax": call(smk.log_softmax),
           "logsumexp": call(smk.logsumexp)}
    try:
        # the kernels must exist and be real (a kernel that is not there
        # falls back to the reference and would be measured twice)
        from softmaxkit import _dispatch

        os.environ["SOFTMAXKIT_BACKEND"] = "numba"
        ok = _dispatch.kernel("softmax", np.zeros((1, 3))) is not None
        del os.environ["SOFTMAXKIT_BACKEND"]
        return fns if ok else None
    except Exception:  # report nothing rather than fail the accuracy run
        os.environ.pop("SOFTMAXKIT_BACKEND", None)
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-kernels", action="store_true", help="skip the numba kernel column")
    args = ap.parse_args(argv)

    os.environ.setdefault("SOFTMAXKIT_BACKEND", "numpy")
    kern = None if args.no_kernels else _kernel_fns()
    impls = {
        "softmaxkit": {"softmax": smk.softmax, "log_softmax": smk.log_softmax,
                       "logsumexp": smk.logsumexp},
        f"scipy {scipy.__version__}": {"softmax": sps.softmax,
                                       "log_softmax": sps.log_softmax,
                                       "logsumexp": sps.logsumexp},
    }
    if kern is not None:
        impls["softmaxkit (numba kernels)"] = kern

    rng = np.random.default_rng(args.seed)
    errs = {(impl, fn): [] for impl in impls for fn in ("softmax", "log_softmax", "logsumexp")}
    t0 = time.perf_counter()
    for _ in range(args.rows):
        x = random_row(rng)
        S, L, lse = exact_row(x)
        for impl, fns in impls.items():
            errs[impl, "softmax"].append(worst_ulp(fns["softmax"](x), S))
            errs[impl, "log_softmax"].append(worst_ulp(fns["log_softmax"](x), L))
            errs[impl, "logsumexp"].append(worst_ulp(fns["logsumexp"](x), lse))
    elapsed = time.perf_counter() - t0

    print(f"softmaxkit {smk.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"mpmath {mpmath.__version__}, python {sys.version.split()[0]}")
    print(f"{args.rows} rows (seed {args.seed}), width 3..1000, spread <= 20, |offset| <= 1e3, "
          f"float64; {elapsed:.0f} s")
    print()
    print("ulp error per row vs mpmath (worst entry of the row): worst row / median row")
    print(f"| {'implementation':28s} | {'softmax':>15s} | {'log_softmax':>15s} | "
          f"{'logsumexp':>15s} |")
    print(f"|{'-' * 30}|{'-' * 17}|{'-' * 17}|{'-' * 17}|")
    for impl in impls:
        cells = []
        for fn in ("softmax", "log_softmax", "logsumexp"):
            e = np.asarray(errs[impl, fn])
            cells.append(f"{e.max():6.2f} / {np.median(e):5.2f}")
        print(f"| {impl:28s} | " + " | ".join(f"{c:>15s}" for c in cells) + " |")
    print("acceptance: softmax, logsumexp <= 4; log_softmax <= 8")

    # ----------------------------------------------- float32 sanity
    n32 = max(1, args.rows // 4)
    errs32 = {(impl, fn): [] for impl in impls for fn in ("softmax", "log_softmax", "logsumexp")}
    for _ in range(n32):
        x = random_row(rng).astype(np.float32)
        S, L, lse = exact_row(x)
        for impl, fns in impls.items():
            for fn, ex in (("softmax", S), ("log_softmax", L), ("logsumexp", lse)):
                errs32[impl, fn].append(worst_ulp32(fns[fn](x), ex))
    print()
    print(f"float32: {n32} rows of the same kind, ulp of float32 (worst row / median row)")
    for impl in impls:
        cells = []
        for fn in ("softmax", "log_softmax", "logsumexp"):
            e = np.asarray(errs32[impl, fn])
            cells.append(f"{e.max():6.2f} / {np.median(e):5.2f}")
        print(f"| {impl:28s} | " + " | ".join(f"{c:>15s}" for c in cells) + " |")

    # ----------------------------------------------- the largest entry
    print()
    print("largest entry of log_softmax, -log1p(rest), exact vs computed:")
    print(f"| {'row':28s} | {'exact':>12s} | {'softmaxkit ulp':>14s} | {'scipy ulp':>10s} | "
          f"{'x-max-log(sum) ulp':>18s} |")
    print(f"|{'-' * 30}|{'-' * 14}|{'-' * 16}|{'-' * 12}|{'-' * 20}|")
    cases = {
        "[0, -40]": np.array([0.0, -40.0]),
        "[0, -20, -21, -25]": np.array([0.0, -20.0, -21.0, -25.0]),
        "[5, -6.5, -7, -30]": np.array([5.0, -6.5, -7.0, -30.0]),
        "[1000, 988.25, 990]": np.array([1000.0, 988.25, 990.0]),
    }
    for name, x in cases.items():
        _, L, _ = exact_row(x)
        i = int(np.argmax(x))
        naive = x - x.max() - np.log(np.sum(np.exp(x - x.max())))
        u = [worst_ulp([f[i]], [L[i]]) for f in (smk.log_softmax(x), sps.log_softmax(x), naive)]
        print(f"| {name:28s} | {float(L[i]):12.4e} | {u[0]:14.2f} | {u[1]:10.3g} | "
              f"{u[2]:18.3g} |")

    # ----------------------------------------------- cost of the reference
    print()
    xt = np.random.default_rng(1).normal(size=(2000, 500)) * 5
    print("time of one call on a (2000, 500) float64 array, NumPy reference "
          "(SOFTMAXKIT_BACKEND=numpy) vs SciPy, best of 5:")
    os.environ["SOFTMAXKIT_BACKEND"] = "numpy"
    for fn, ours, theirs in (("softmax", smk.softmax, sps.softmax),
                             ("log_softmax", smk.log_softmax, sps.log_softmax),
                             ("logsumexp", smk.logsumexp, sps.logsumexp)):
        a = min(timeit.repeat(lambda o=ours: o(xt, axis=-1), number=1, repeat=5))
        b = min(timeit.repeat(lambda t=theirs: t(xt, axis=-1), number=1, repeat=5))
        print(f"  {fn:12s} softmaxkit {a * 1e3:7.1f} ms   scipy {b * 1e3:7.1f} ms   "
              f"ratio {a / b:5.2f}x")


if __name__ == "__main__":
    main()
