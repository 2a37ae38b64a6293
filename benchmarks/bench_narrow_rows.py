"""Narrow rows (1,000,000 x 10): softmaxkit vs PyTorch, interleaved, same arrays.

The per-row overhead case of issue #6 (rows of at most
``softmaxkit._kernels._narrow.NARROW_MAX`` entries take the narrow-row
kernel, several rows per SIMD vector).  Both libraries use 2 threads
(``--threads``); every round times ours then PyTorch's on the same array.
Prints the best wall times, the ratio PyTorch / ours (> 1: softmaxkit faster)
of the best times and the median of the per-round ratios, the ratio of the
best process CPU times (all threads; steadier than wall time on a shared
machine), ours over a copy of the array (the memory floor), and the best
time of the same call with the narrow-row kernel switched off (the row
kernels, "rows ms") over ours.  CE is
``cross_entropy_and_grad(x, y)`` (mean over integer labels) vs PyTorch's
``F.cross_entropy`` forward + backward.

    python benchmarks/bench_narrow_rows.py [--rounds 7] [--rows 1000000] [--cols 10 ...]
    python benchmarks/bench_narrow_rows.py --accuracy   # max ulps, narrow vs row kernel
    python benchmarks/bench_narrow_rows.py --threshold  # narrow vs row kernel by width

``--threshold`` times the compiled kernels themselves in one thread (CPU
time of the calling thread, best of 5 interleaved calls, preallocated
outputs, 4,000,000 elements per array) for widths 2 to 80: narrow-row
kernel / row kernel in ms per 10**7 elements; the basis of
``_narrow.NARROW_MAX``.

``--accuracy`` prints the max error in ulps of the result's dtype (logsumexp:
of max(|lse|, |max x|)) against the NumPy reference evaluated in long
double, of the narrow-row kernel, of the row kernel (``family_rows``) on the
same input and of the NumPy reference, for N(0, 16) logits (as
``bench_kernels.py --only accuracy``) and for the hard rows of
tests/_kernels/test_narrow.py (large offsets, ties, tiny rest, -inf).
"""

import argparse
import os
import time

import numpy as np

import softmaxkit as smk


def _timed(fn):
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _ulps(got, exact, dt, scale=None):
    size = np.abs(exact) if scale is None else np.maximum(np.abs(exact), np.abs(scale))
    sp = np.spacing(size.astype(dt)).astype(np.longdouble)
    fin = np.isfinite(exact)
    return float((np.abs(got[fin].astype(np.longdouble) - exact[fin]) / sp[fin]).max())


def _hard(n, cols, rng):
    x = rng.standard_normal((n, cols)) * 4
    x[::7] *= 30
    x[1::11] += 1e3
    x[3::13] += 1e4
    x[4::17] -= 1e4
    x[5::19, : max(1, cols // 2)] = 50.0  # ties at the max
    x[6::23] = -60.0  # rest ~ 1e-25 ...
    x[6::23, 0] = 0.0  # ... next to a max of 0
    x[8::29, 1:] = -np.inf
    return x


def accuracy(rows, cols_list):
    """Max ulps of the narrow kernel / the row kernel / the NumPy reference."""
    from softmaxkit import _kernels
    from softmaxkit._kernels._softmax import family_rows

    os.environ.pop("SOFTMAXKIT_BACKEND", None)
    from softmaxkit.special._softmax import _lse_impl, _softmax_impl

    def row_kernel(x, kind):  # the row kernel on the same rows (as _kernels.logsumexp)
        n = x.shape[0]
        if kind < 2:
            out = np.empty_like(x)
            family_rows(x, out, kind, 0, n)
            return out
        if x.dtype == np.float32:
            out = np.empty((n, 1), dtype=x.dtype)
            family_rows(x, out, kind, 0, n)
            return out[:, 0]
        parts = np.empty((n, 4))
        family_rows(x, parts, kind, 0, n)
        res, m = parts[:, 0].copy(), parts[:, 1]
        redo = np.isfinite(res) & (np.abs(res) < np.abs(m))
        p = parts[redo].astype(np.longdouble)
        res[redo] = (p[:, 1] + np.log1p(p[:, 2] + p[:, 3])).astype(np.float64)
        return res

    print("max ulps against the long-double reference: narrow kernel / row kernel / "
          "NumPy reference")
    print("| input | shape | dtype | softmax | log_softmax | logsumexp |")
    print("|---|---|---|---|---|---|")
    for label in ("N(0, 16)", "hard rows"):
        for cols in cols_list:
            rng = np.random.default_rng(cols)
            base = rng.standard_normal((rows, cols)) * 4 if label == "N(0, 16)" else _hard(
                rows, cols, rng)
            for dt in (np.float32, np.float64):
                x = base.astype(dt)
                xl = x.astype(np.longdouble)
                cells = []
                for kind, name in enumerate(("softmax", "log_softmax", "logsumexp")):
                    os.environ["SOFTMAXKIT_BACKEND"] = "numpy"  # the reference, not a kernel
                    if kind < 2:
                        exact = _softmax_impl(xl, (1,), None, kind == 1)
                        ref = _softmax_impl(x, (1,), None, kind == 1)
                        scale = None
                    else:
                        exact = _lse_impl(xl, (1,), None)[:, 0]
                        ref = _lse_impl(x, (1,), None)[:, 0]
                        scale = x.max(axis=1).astype(np.longdouble)
                    del os.environ["SOFTMAXKIT_BACKEND"]
                    errs = [_ulps(getattr(_kernels, name)(x), exact, dt, scale),
                            _ulps(row_kernel(x, kind), exact, dt, scale),
                            _ulps(ref, exact, dt, scale)]
                    cells.append(" / ".join(f"{e:.2f}" for e in errs))
                print(f"| {label} | {rows} x {cols} | {np.dtype(dt).name} | "
                      + " | ".join(cells) + " |", flush=True)


def threshold(widths, total=4_000_000, reps=5):
    """Single-thread CPU ms per 10**7 elements, narrow kernel / row kernel."""
    from softmaxkit._kernels import _narrow
    from softmaxkit._kernels._cross_entropy import ce_labels
    from softmaxkit._kernels._softmax import family_rows

    def cpu(fn, args):
        t0 = time.thread_time()
        fn(*args)
        return time.thread_time() - t0

    print("single-thread CPU ms per 10**7 elements, narrow kernel / row kernel "
          f"(best of {reps} interleaved calls)")
    print("| K | dtype | softmax | log_softmax | logsumexp | ce labels + grad |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for K in widths:
        n = total // K
        for dt in (np.float64, np.float32):
            x = (rng.standard_normal((n, K)) * 3).astype(dt)
            y = rng.integers(0, K, n).astype(np.intp)
            w = np.ones(K, dtype=dt)
            cells = []
            for kind in (0, 1, 2, 3):
                if kind < 3:
                    cols = K if kind < 2 else (4 if dt == np.float64 else 1)
                    out = np.empty((n, cols), dtype=dt)
                    fns = (_narrow.narrow_rows, family_rows)
                    args = (x, out, kind, 0, n)
                else:
                    loss, wsum, grad = np.empty(n, dt), np.empty(n, dt), np.empty_like(x)
                    fns = (_narrow.ce_labels_narrow, ce_labels)
                    args = (x, y, w, float(K), 0, False, 0.0, loss, wsum, grad, True, False, 0,
                            n)
                for fn in fns:
                    fn(*args)  # compile / warm up
                times = [[], []]
                for _ in range(reps):
                    for k, fn in enumerate(fns):
                        times[k].append(cpu(fn, args))
                scale = 1e3 * 1e7 / (n * K)
                cells.append(f"{min(times[0]) * scale:.0f} / {min(times[1]) * scale:.0f}")
            print(f"| {K} | {np.dtype(dt).name} | " + " | ".join(cells) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, nargs="+", default=[10])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--accuracy", action="store_true",
                    help="print the accuracy table (100000 rows, widths 3 10 33 48) and exit")
    ap.add_argument("--threshold", action="store_true",
                    help="print the narrow vs row kernel timings by width and exit")
    args = ap.parse_args()
    if args.accuracy:
        accuracy(100_000, [3, 10, 33, 48])
        return
    if args.threshold:
        threshold([2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 80])
        return
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        raise SystemExit("PyTorch is not installed: nothing to compare with") from None
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    from softmaxkit import _kernels
    from softmaxkit._kernels import _narrow

    narrow_max = _narrow.NARROW_MAX

    def row_kernel(fn):
        """``fn`` with the narrow-row kernel switched off (the row kernels)."""
        def run():
            _narrow.NARROW_MAX = 0
            try:
                return fn()
            finally:
                _narrow.NARROW_MAX = narrow_max
        return run

    print(f"threads: softmaxkit {_kernels.n_threads()}, torch {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.2f}; {args.rounds} interleaved rounds; "
          f"narrow-row kernel for rows of <= {narrow_max} entries")
    head = ["ours ms", "torch ms", "best x", "median x", "cpu x", "ours/copy", "rows ms",
            "vs rows"]
    print(f"{'op':12s} {'dtype':8s} {'shape':>12s} " + " ".join(f"{h:>9s}" for h in head))
    for cols in args.cols:
        for dt in (np.float64, np.float32):
            rng = np.random.default_rng(0)
            x = rng.normal(size=(args.rows, cols)).astype(dt)
            y = rng.integers(0, cols, args.rows)
            xt = torch.from_numpy(x)
            yt = torch.from_numpy(y)

            def ce_torch(xt=xt, yt=yt):
                z = xt.detach().requires_grad_(True)
                F.cross_entropy(z, yt).backward()
                return z.grad

            ops = [
                ("softmax", lambda x=x: smk.softmax(x), lambda xt=xt: torch.softmax(xt, -1)),
                ("log_softmax", lambda x=x: smk.log_softmax(x),
                 lambda xt=xt: torch.log_softmax(xt, -1)),
                ("logsumexp", lambda x=x: smk.logsumexp(x), lambda xt=xt: torch.logsumexp(xt, -1)),
                ("ce fwd+bwd", lambda x=x, y=y: smk.cross_entropy_and_grad(x, y), ce_torch),
            ]
            copy = min(_timed(x.copy)[0] for _ in range(3))
            for name, ours, theirs in ops:
                rows = row_kernel(ours)
                ours()
                theirs()  # warm-up (and compilation of our kernel)
                rows()
                to, tt, tr = [], [], []
                for _ in range(args.rounds):
                    to.append(_timed(ours))
                    tt.append(_timed(theirs))
                    tr.append(_timed(rows)[0])
                wo, co = np.array(to).T
                wt, ct = np.array(tt).T
                vs_rows = f"{min(tr) * 1e3:9.1f} {min(tr) / wo.min():8.2f}x"
                print(f"{name:12s} {np.dtype(dt).name:8s} {f'{args.rows}x{cols}':>12s} "
                      f"{wo.min() * 1e3:9.1f} {wt.min() * 1e3:9.1f} "
                      f"{wt.min() / wo.min():8.2f}x {np.median(wt / wo):8.2f}x "
                      f"{ct.min() / co.min():8.2f}x {wo.min() / copy:8.2f}x {vs_rows}",
                      flush=True)


if __name__ == "__main__":
    main()
