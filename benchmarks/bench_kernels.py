"""Kernels benchmark (issue #6): softmaxkit's compiled paths vs the peers.

Runs every peer in this process on the same data and prints times and
ratios (higher "x" = softmaxkit faster):

- softmax, log_softmax, logsumexp and cross-entropy forward + backward
  (mean over integer labels) over the last axis, float32 and float64, on
  4096 x 16384, 65536 x 1024, 1,000,000 x 10 and 128 x 262144;
  peers: the NumPy reference (SOFTMAXKIT_BACKEND=numpy), SciPy
  (scipy.special; no cross-entropy there), PyTorch CPU with
  ``torch.set_num_threads`` equal to softmaxkit's thread count, JAX if
  installed, and a same-size array copy (``x.copy()``, the memory floor);
- linear_cross_entropy (loss + dX, dW, dbias) vs PyTorch matmul +
  cross_entropy + backward, with the peak extra memory (tracemalloc for
  softmaxkit, minus the returned gradients; PyTorch estimated as the logits
  plus their gradient) as a fraction of the N x K logits;
- first-call compile cost with a cold and a warm numba cache (subprocesses
  with NUMBA_CACHE_DIR set to a fresh temporary directory).

Usage::

    python benchmarks/bench_kernels.py           # full run (several minutes)
    python benchmarks/bench_kernels.py --quick   # small shapes, a minute
    python benchmarks/bench_kernels.py --only linear --only compile
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def best_time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def with_backend(value, fn):
    def run():
        old = os.environ.get("SOFTMAXKIT_BACKEND")
        os.environ["SOFTMAXKIT_BACKEND"] = value
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["SOFTMAXKIT_BACKEND"]
            else:
                os.environ["SOFTMAXKIT_BACKEND"] = old
    return run


def fmt_ms(t):
    return "-" if t is None or not np.isfinite(t) else f"{t * 1e3:9.1f}"


def fmt_x(a, b):
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b):
        return "-"
    return f"{a / b:5.2f}x"


def primitives(shapes, dtypes, repeat, ref_repeat, T):
    import scipy.special as ss
    import torch
    import torch.nn.functional as F

    import softmaxkit as smk

    try:
        import jax  # noqa: F401
        have_jax = True
    except ImportError:
        have_jax = False
    rng = np.random.default_rng(0)
    header = (f"{'op':<12} {'dtype':<8} {'shape':<16} {'ours ms':>9} {'copy ms':>9} "
              f"{'numpy ms':>9} {'scipy ms':>9} {'torch ms':>9} {'ours/copy':>9} "
              f"{'vs numpy':>8} {'vs scipy':>8} {'vs torch':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    for shape in shapes:
        for dt in dtypes:
            x = (rng.standard_normal(shape) * 3).astype(dt)
            y = rng.integers(0, shape[1], shape[0])
            rows.extend(_primitive_case(x, y, repeat, ref_repeat, smk, ss, torch, F))
            del x
            gc.collect()
    print(f"JAX: {'installed but not benchmarked' if have_jax else 'not installed (skipped)'}")
    return rows


def _primitive_case(x, y, repeat, ref_repeat, smk, ss, torch, F):
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    t_copy = best_time(lambda: x.copy(), repeat)

    def ce_torch():
        z = xt.detach().requires_grad_(True)
        loss = F.cross_entropy(z, yt)
        loss.backward()
        return z.grad

    ops = [
        ("softmax", lambda: smk.softmax(x), lambda: ss.softmax(x, axis=-1),
         lambda: torch.softmax(xt, -1)),
        ("log_softmax", lambda: smk.log_softmax(x), lambda: ss.log_softmax(x, axis=-1),
         lambda: torch.log_softmax(xt, -1)),
        ("logsumexp", lambda: smk.logsumexp(x), lambda: ss.logsumexp(x, axis=-1),
         lambda: torch.logsumexp(xt, -1)),
        ("ce fwd+bwd", lambda: smk.cross_entropy_and_grad(x, y), None, ce_torch),
    ]
    lines = []
    shape_s = f"{x.shape[0]}x{x.shape[1]}"
    for name, ours, scipy_fn, torch_fn in ops:
        ours()  # warm-up (compiles on a cold cache)
        t_ours = best_time(ours, repeat)
        t_np = best_time(with_backend("numpy", ours), ref_repeat)
        t_sp = best_time(scipy_fn, ref_repeat) if scipy_fn is not None else None
        torch_fn()
        t_torch = best_time(torch_fn, repeat)
        line = (f"{name:<12} {x.dtype.name:<8} {shape_s:<16} "
                f"{fmt_ms(t_ours)} {fmt_ms(t_copy)} {fmt_ms(t_np)} {fmt_ms(t_sp)} "
                f"{fmt_ms(t_torch)} {t_ours / t_copy:8.2f}x {fmt_x(t_np, t_ours):>8} "
                f"{fmt_x(t_sp, t_ours):>8} {fmt_x(t_torch, t_ours):>8}")
        print(line, flush=True)
        lines.append(line)
    return lines


def linear_ce(cases, repeat):
    import torch
    import torch.nn.functional as F

    import softmaxkit as smk

    rng = np.random.default_rng(1)
    header = (f"{'N x d x K':<18} {'ours s':>7} {'torch s':>8} {'best x':>8} {'median x':>8} "
              f"{'ours cpu':>7} {'torch cpu':>8} {'cpu x':>7} {'peak MiB':>10} "
              f"{'of logits':>8} {'rel diff loss/dW':>16}")
    print(header)
    print("-" * len(header))
    for N, d, K, run_torch in cases:
        X = rng.standard_normal((N, d)).astype(np.float32)
        W = (rng.standard_normal((K, d)) / np.sqrt(d)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32) * 0.1
        y = rng.integers(0, K, N)
        _linear_case(X, W, b, y, run_torch, repeat, smk, torch, F)
        del X, W
        gc.collect()


def _mem_available():
    """MemAvailable from /proc/meminfo in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _timed(fn):
    """(wall s, process CPU s, result) of one call."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _linear_case(X, W, b, y, run_torch, repeat, smk, torch, F):
    """``repeat`` interleaved rounds (ours, then PyTorch) after one warm-up
    call of ours; best wall time of each, the median of the per-round
    ratios, and the ratio of the best CPU times (all threads of the process:
    on a shared machine the CPU time is the steadier measure of work)."""
    N, d = X.shape
    K = W.shape[0]
    logits_bytes = N * K * 4

    def ours():
        return smk.linear_cross_entropy(X, W, y, bias=b, return_grad=True)

    ours()  # warm-up: kernels compiled, BLAS started
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    loss2, (dX, dW2, db) = ours()
    peak = tracemalloc.get_traced_memory()[1] - base - (dX.nbytes + dW2.nbytes + db.nbytes)
    tracemalloc.stop()
    del dX, db
    gc.collect()
    need = 4 * logits_bytes + (1 << 30)  # logits, log-softmax, their gradient, margin
    avail = _mem_available()
    if run_torch and avail is not None and avail < need:
        print(f"(PyTorch skipped for {N}x{d}x{K}: needs about {need / 2**30:.1f} GiB, "
              f"{avail / 2**30:.1f} GiB available)")
        run_torch = False
    torch_run = None
    if run_torch:
        Xt = torch.from_numpy(X)
        Wt = torch.from_numpy(W)
        bt = torch.from_numpy(b)
        yt = torch.from_numpy(y)

        def torch_run():
            Xr = Xt.detach().requires_grad_(True)
            Wr = Wt.detach().requires_grad_(True)
            br = bt.detach().requires_grad_(True)
            loss = F.cross_entropy(Xr @ Wr.T + br, yt)
            loss.backward()
            return loss.detach(), Wr.grad

    ours_w, ours_c, torch_w, torch_c, ratios = [], [], [], [], []
    diff = "-"
    for _ in range(repeat):
        w, c, _ = _timed(ours)
        ours_w.append(w)
        ours_c.append(c)
        if torch_run is not None:
            w, c, (lt, gW) = _timed(torch_run)
            torch_w.append(w)
            torch_c.append(c)
            ratios.append(torch_w[-1] / ours_w[-1])
            diff = (f"{abs(float(loss2) - lt.item()) / abs(lt.item()):.1e}/"
                    f"{float(np.abs(dW2 - gW.numpy()).max() / np.abs(gW.numpy()).max()):.1e}")
            del lt, gW
    del dW2
    gc.collect()
    t_ours = min(ours_w)
    t_torch = min(torch_w) if torch_w else None
    med = f"{float(np.median(ratios)):5.2f}x" if ratios else "-"
    cpu_x = fmt_x(min(torch_c), min(ours_c)) if torch_c else "-"
    print(f"{f'{N}x{d}x{K}':<18} {t_ours:7.2f} {t_torch if t_torch else float('nan'):8.2f} "
          f"{fmt_x(t_torch, t_ours):>8} {med:>8} {min(ours_c):7.2f} "
          f"{min(torch_c) if torch_c else float('nan'):8.2f} {cpu_x:>7} "
          f"{peak / 2**20:10.1f} {peak / logits_bytes:8.4f} {diff:>16}", flush=True)


def accuracy():
    """Max error (ulps of the result's dtype) of the kernels and of the NumPy
    reference against the reference evaluated in long double."""
    import softmaxkit._kernels as k
    from softmaxkit.special._softmax import _lse_impl, _softmax_impl

    rng = np.random.default_rng(0)
    print("| shape | dtype | softmax kernel / reference | log_softmax | logsumexp |")
    print("|---|---|---|---|---|")
    for shape in [(2000, 1024), (100000, 10)]:
        for dt in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 4).astype(dt)
            xl = x.astype(np.longdouble)
            cells = []
            for kind in ("softmax", "log_softmax"):
                exact = _softmax_impl(xl, (1,), None, kind == "log_softmax")
                sp = np.spacing(np.abs(exact).astype(dt)).astype(np.longdouble)
                ours = getattr(k, kind)(x)
                ref = with_backend("numpy", lambda x=x, kind=kind: _softmax_impl(
                    x, (1,), None, kind == "log_softmax"))()
                cells.append(f"{float((np.abs(ours - exact) / sp).max()):.2f} / "
                             f"{float((np.abs(ref - exact) / sp).max()):.2f}")
            exact = _lse_impl(xl, (1,), None)[:, 0]
            scale = np.maximum(np.abs(exact), np.abs(x.max(axis=1)).astype(np.longdouble))
            sp = np.spacing(scale.astype(dt)).astype(np.longdouble)
            ours = k.logsumexp(x)
            ref = with_backend("numpy", lambda x=x: _lse_impl(x, (1,), None)[:, 0])()
            cells.append(f"{float((np.abs(ours - exact) / sp).max()):.2f} / "
                         f"{float((np.abs(ref - exact) / sp).max()):.2f}")
            print(f"| {shape[0]} x {shape[1]} | {np.dtype(dt).name} | " + " | ".join(cells) + " |")


_COMPILE_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
import softmaxkit._kernels as k
for dt in (np.float32, np.float64):
    x = np.ones((4, 5), dt)
    k.softmax(x); k.log_softmax(x); k.logsumexp(x)
    k.cross_entropy(x, np.zeros(4, np.intp)); k.cross_entropy(x, np.full((4, 5), 0.2, dt))
print(time.perf_counter() - t0)
"""


_VARIANT_SNIPPET = """
import sys, time, numpy as np
t0 = time.perf_counter()
import softmaxkit._kernels as k
t1 = time.perf_counter()
dt = np.dtype(sys.argv[1]); fn = sys.argv[2]
x = np.ones((4, 5), dt)
if fn == "family":
    k.softmax(x)
elif fn == "ce_labels":
    k.cross_entropy(x, np.zeros(4, np.intp))
else:
    k.cross_entropy(x, np.full((4, 5), 0.2, dt))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def compile_cost():
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        out = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env,
                               capture_output=True, text=True, check=True)
            out.append(float(r.stdout.strip().splitlines()[-1]))
    print(f"first call of all kernels (6 compiled signatures: 2 dtypes x softmax-family, "
          f"CE labels, CE probabilities), including the numba import:\n"
          f"  cold cache: {out[0]:.1f} s   warm cache: {out[1]:.2f} s")
    print("first call of ONE variant in a fresh process (import of softmaxkit._kernels and "
          "numba / first call), cold cache, then warm:")
    for dt in ("float32", "float64"):
        for fn in ("family", "ce_labels", "ce_probs"):
            cells = []
            with tempfile.TemporaryDirectory() as tmp:
                env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
                for _ in range(2):
                    r = subprocess.run([sys.executable, "-c", _VARIANT_SNIPPET, dt, fn],
                                       env=env, capture_output=True, text=True, check=True)
                    imp, call = map(float, r.stdout.strip().splitlines()[-1].split())
                    cells.append(f"{imp:.2f} / {call:.2f} s")
            print(f"  {dt:<8} {fn:<10} cold: {cells[0]}   warm: {cells[1]}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--no-big-linear", action="store_true",
                    help="skip PyTorch on the N=8192, K=131072 linear_cross_entropy case")
    ap.add_argument("--only", choices=("primitives", "linear", "compile", "accuracy"),
                    action="append",
                    help="run only these sections (repeatable); default: all")
    args = ap.parse_args(argv)

    import numba
    import torch

    import softmaxkit._kernels as k

    T = k.n_threads()
    torch.set_num_threads(T)
    import scipy
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
          f"numba {numba.__version__}, PyTorch {torch.__version__}; threads: softmaxkit {T}, "
          f"torch {torch.get_num_threads()}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    if args.quick:
        shapes = [(512, 4096), (8192, 256), (100_000, 10), (16, 65536)]
        cases = [(512, 128, 4096, True)]
        repeat, ref_repeat = 3, 1
    else:
        shapes = [(4096, 16384), (65536, 1024), (1_000_000, 10), (128, 262144)]
        cases = [(2048, 512, 32768, True), (8192, 256, 131072, not args.no_big_linear)]
        repeat, ref_repeat = 3, 1
    sections = set(args.only or ("primitives", "linear", "compile", "accuracy"))
    if "primitives" in sections:
        print("\n## softmax family and cross-entropy (times: best of "
              f"{repeat}; NumPy reference and SciPy: best of {ref_repeat})\n")
        primitives(shapes, (np.float32, np.float64), repeat, ref_repeat, T)
    if "linear" in sections:
        print(f"\n## linear_cross_entropy, float32, {repeat} interleaved rounds (default "
              "chunk_size)\n")
        linear_ce(cases, repeat)
    if "compile" in sections:
        print("\n## compile cost\n")
        compile_cost()
    if "accuracy" in sections:
        print("\n## accuracy (max ulps vs long double; logsumexp: ulps of max(|lse|, |max x|))\n")
        accuracy()


if __name__ == "__main__":
    main()
