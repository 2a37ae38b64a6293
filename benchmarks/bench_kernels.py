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
- the same at K = 524,288 and 1,048,576 (``--only linear_classblock``),
  where the default settings take the class-blocked path (online logsumexp
  over blocks of classes); PyTorch only where its logits fit in memory; peak
  RSS increases (``/proc/self/status`` VmHWM after ``clear_refs``) for both;
- first-call compile cost with a cold and a warm numba cache (subprocesses
  with NUMBA_CACHE_DIR set to a fresh temporary directory).

Usage::

    python benchmarks/bench_kernels.py           # full run (several minutes)
    python benchmarks/bench_kernels.py --quick   # small shapes, a minute
    python benchmarks/bench_kernels.py --only linear --only compile
    python benchmarks/bench_kernels.py --only linear_classblock   # K up to 2**20
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


def _rss_reset():
    """Reset the process's peak resident set (Linux ``clear_refs``); False
    where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _peak_rss_delta(fn):
    """(result, wall s, CPU s, increase of the peak RSS over the RSS before
    the call in bytes or None)."""
    gc.collect()
    ok = _rss_reset()
    before = _rss_kib("VmRSS")
    w, c, out = _timed(fn)
    hwm = _rss_kib("VmHWM")
    delta = (hwm - before) * 1024 if ok and before is not None and hwm is not None else None
    return out, w, c, delta


def linear_classblock(cases, repeat):
    """linear_cross_entropy where K is so large that the default settings
    take the class-blocked path (online logsumexp over blocks of classes),
    vs PyTorch's unfused matmul + cross_entropy + backward where its logits
    fit in memory; peak memory as a fraction of the N x K float32 logits."""
    import torch
    import torch.nn.functional as F

    import softmaxkit as smk
    from softmaxkit.losses import _fused

    rng = np.random.default_rng(2)
    header = (f"{'N x d x K':<20} {'block':<11} {'ours s':>7} {'torch s':>8} {'best x':>7} "
              f"{'ours cpu':>8} {'torch cpu':>9} {'cpu x':>6} {'ours MiB':>9} {'of logits':>9} "
              f"{'ours RSS':>9} {'torch RSS':>9} {'rel diff loss/dW':>16}")
    print(header)
    print("-" * len(header))
    for N, d, K, run_torch in cases:
        X = rng.standard_normal((N, d)).astype(np.float32)
        W = (rng.standard_normal((K, d)) / np.sqrt(d)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32) * 0.1
        y = rng.integers(0, K, N)
        _classblock_case(X, W, b, y, run_torch, repeat, smk, _fused, torch, F)
        del X, W, b
        gc.collect()


def row_vs_class(N, d, K, repeat):
    """Cost of the class-blocked path where the row path also runs: the same
    call with the default (row blocks over all classes) and with
    ``class_chunk_size`` (default block shape of that path), interleaved."""
    import softmaxkit as smk
    from softmaxkit.losses import _fused

    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, d)).astype(np.float32)
    W = (rng.standard_normal((K, d)) / np.sqrt(d)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) * 0.1
    y = rng.integers(0, K, N)
    rows, kc = _fused._class_block_shape(N, K, d, None, None, 4)

    def run(**kw):
        return lambda: smk.linear_cross_entropy(X, W, y, bias=b, return_grad=True, **kw)

    paths = [("rows", run()), (f"class {rows}x{kc}", run(chunk_size=rows, class_chunk_size=kc))]
    for _, fn in paths:
        fn()  # warm-up
    times = {name: [] for name, _ in paths}
    for _ in range(repeat):
        for name, fn in paths:
            w, c, _ = _timed(fn)
            times[name].append((w, c))
    (rn, rt), (cn, ct) = times.items()
    rw, rc = min(t[0] for t in rt), min(t[1] for t in rt)
    cw, cc = min(t[0] for t in ct), min(t[1] for t in ct)
    print(f"{N}x{d}x{K}: {rn} {rw:.2f} s ({rc:.2f} s CPU), {cn} {cw:.2f} s ({cc:.2f} s CPU); "
          f"class / rows: {cw / rw:.2f}x wall, {cc / rc:.2f}x CPU (best of {repeat})", flush=True)


def _classblock_case(X, W, b, y, run_torch, repeat, smk, _fused, torch, F):
    """One warm-up call on 64 rows, one call of ours under tracemalloc (its
    peak minus the returned gradients) and its peak RSS increase (gradients
    included), then ``repeat - 1`` more rounds of ours and ``repeat`` of
    PyTorch, interleaved; best wall and CPU times."""
    N, d = X.shape
    K = W.shape[0]
    logits_bytes = N * K * 4
    if _fused._use_class_blocks(N, K, None, None, 4):
        rows, kc = _fused._class_block_shape(N, K, d, None, None, 4)
        block = f"{rows}x{kc}"
    else:
        block = "rows"

    def ours():
        return smk.linear_cross_entropy(X, W, y, bias=b, return_grad=True)

    smk.linear_cross_entropy(X[:64], W, y[:64], bias=b, return_grad=True)  # warm-up
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    (loss, (dX, dW, db)), w0, c0, rss_ours = _peak_rss_delta(ours)
    peak = tracemalloc.get_traced_memory()[1] - base - (dX.nbytes + dW.nbytes + db.nbytes)
    tracemalloc.stop()
    del dX, db
    ours_w, ours_c = [w0], [c0]
    need = int(3.5 * logits_bytes) + (1 << 30)  # measured: PyTorch's peak RSS ~3x the logits
    avail = _mem_available()
    if run_torch and avail is not None and avail < need:
        print(f"(PyTorch skipped for {N}x{d}x{K}: needs about {need / 2**30:.1f} GiB, "
              f"{avail / 2**30:.1f} GiB available)")
        run_torch = False
    torch_w, torch_c, rss_torch, diff = [], [], None, "-"
    if run_torch:
        Xt, Wt, bt, yt = (torch.from_numpy(a) for a in (X, W, b, y))

        def torch_run():
            Xr = Xt.detach().requires_grad_(True)
            Wr = Wt.detach().requires_grad_(True)
            br = bt.detach().requires_grad_(True)
            lt = F.cross_entropy(Xr @ Wr.T + br, yt)
            lt.backward()
            return lt.detach(), Wr.grad

        for r in range(repeat):
            if r > 0:
                w, c, _ = _timed(ours)
                ours_w.append(w)
                ours_c.append(c)
            (lt, gW), w, c, rss = _peak_rss_delta(torch_run)
            torch_w.append(w)
            torch_c.append(c)
            rss_torch = rss if rss_torch is None else max(rss_torch, rss or 0)
            diff = (f"{abs(float(loss) - lt.item()) / abs(lt.item()):.1e}/"
                    f"{float(np.abs(dW - gW.numpy()).max() / np.abs(gW.numpy()).max()):.1e}")
            del lt, gW
            gc.collect()
    del dW
    gc.collect()
    t_ours, t_torch = min(ours_w), (min(torch_w) if torch_w else None)
    c_ours, c_torch = min(ours_c), (min(torch_c) if torch_c else None)

    def mib(v):
        return "-" if v is None else f"{v / 2**20:9.0f}"

    print(f"{f'{N}x{d}x{K}':<20} {block:<11} {t_ours:7.2f} "
          f"{t_torch if t_torch else float('nan'):8.2f} {fmt_x(t_torch, t_ours):>7} "
          f"{c_ours:8.2f} {c_torch if c_torch else float('nan'):9.2f} "
          f"{fmt_x(c_torch, c_ours):>6} {peak / 2**20:9.1f} {peak / logits_bytes:9.4f} "
          f"{mib(rss_ours):>9} {mib(rss_torch):>9} {diff:>16}", flush=True)


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
    _accuracy_ce(rng)


def _accuracy_ce(rng):
    """Cross-entropy (labels, label_smoothing=0.1; probabilities) loss and
    gradient of the kernel and of the reference ``_ce_rows`` against
    ``_ce_rows`` evaluated in long double; gradient entries in ulps of
    ``max(|g_j|, a_j)`` (``a_j`` the loss coefficient of class j: where ``C
    softmax_j`` and ``a_j`` cancel, 2**-53 a_j is the float64 evaluation's own
    error)."""
    import softmaxkit._kernels as k
    from softmaxkit.losses._cross_entropy import _ce_rows

    print("\ncross-entropy, max ulps kernel / reference (`_ce_rows` in the input dtype):\n")
    print("| shape | dtype | target | loss | gradient |")
    print("|---|---|---|---|---|")
    wide = np.longdouble
    for shape in [(2000, 1024), (100000, 10)]:
        for dt in (np.float32, np.float64):
            x = (rng.standard_normal(shape) * 4).astype(dt)
            n, K = shape
            y = rng.integers(0, K, n).astype(np.intp)
            P = rng.dirichlet(np.full(K, 0.5), n).astype(dt)
            for tname, target, eps in (("labels", y, 0.1), ("probs", P, 0.0)):
                tl = target if target.ndim == 1 else target.astype(wide)
                ex_l, _, ex_g = _ce_rows(x.astype(wide), tl, None, None, eps, True)
                if target.ndim == 1:
                    A = np.full(shape, eps / K)
                    A[np.arange(n), y] += 1 - eps
                else:
                    A = (1 - eps) * P.astype(np.float64) + eps / K
                sp_l = np.spacing(np.abs(ex_l).astype(dt)).astype(wide)
                sp_g = np.spacing(np.maximum(np.abs(ex_g), A).astype(dt)).astype(wide)
                cells = []
                for ex, sp, idx in ((ex_l, sp_l, 0), (ex_g, sp_g, 2)):
                    ours = k.cross_entropy(x, target, None, None, eps, True)[idx]
                    ref = with_backend("numpy", lambda x=x, t=target, e=eps: _ce_rows(
                        x, t, None, None, e, True))()[idx]
                    cells.append(f"{float((np.abs(ours - ex) / sp).max()):.2f} / "
                                 f"{float((np.abs(ref - ex) / sp).max()):.2f}")
                print(f"| {n} x {K} | {np.dtype(dt).name} | {tname} | " + " | ".join(cells)
                      + " |", flush=True)


_COMPILE_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
import softmaxkit._kernels as k
for dt in (np.float32, np.float64):
    for K in (5, 64):  # narrow-row and row kernels
        x = np.ones((4, K), dt)
        k.softmax(x); k.log_softmax(x); k.logsumexp(x)
        k.cross_entropy(x, np.zeros(4, np.intp)); k.cross_entropy(x, np.full((4, K), 1 / K, dt))
print(time.perf_counter() - t0)
"""


_VARIANT_SNIPPET = """
import sys, time, numpy as np
t0 = time.perf_counter()
import softmaxkit._kernels as k
t1 = time.perf_counter()
dt = np.dtype(sys.argv[1]); fn = sys.argv[2]
K = 5 if fn.endswith("narrow") else 64
x = np.ones((4, K), dt)
if fn.startswith("family"):
    k.softmax(x)
elif fn.startswith("ce_labels"):
    k.cross_entropy(x, np.zeros(4, np.intp))
else:
    k.cross_entropy(x, np.full((4, K), 1 / K, dt))
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
    print(f"first call of all kernels (10 compiled signatures: 2 dtypes x softmax family "
          f"and CE labels, each as narrow-row and row kernel, and CE probabilities), "
          f"including the numba import:\n"
          f"  cold cache: {out[0]:.1f} s   warm cache: {out[1]:.2f} s")
    print("first call of ONE variant in a fresh process (import of softmaxkit._kernels and "
          "numba / first call), cold cache, then warm:")
    for dt in ("float32", "float64"):
        for fn in ("family", "family_narrow", "ce_labels", "ce_labels_narrow", "ce_probs"):
            cells = []
            with tempfile.TemporaryDirectory() as tmp:
                env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
                for _ in range(2):
                    r = subprocess.run([sys.executable, "-c", _VARIANT_SNIPPET, dt, fn],
                                       env=env, capture_output=True, text=True, check=True)
                    imp, call = map(float, r.stdout.strip().splitlines()[-1].split())
                    cells.append(f"{imp:.2f} / {call:.2f} s")
            print(f"  {dt:<8} {fn:<16} cold: {cells[0]}   warm: {cells[1]}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--no-big-linear", action="store_true",
                    help="skip PyTorch on the N=8192, K=131072 linear_cross_entropy case")
    ap.add_argument("--only", choices=("primitives", "linear", "linear_classblock", "compile",
                                       "accuracy"),
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
    sections = set(args.only or ("primitives", "linear", "linear_classblock", "compile",
                                 "accuracy"))
    if "primitives" in sections:
        print("\n## softmax family and cross-entropy (times: best of "
              f"{repeat}; NumPy reference and SciPy: best of {ref_repeat})\n")
        primitives(shapes, (np.float32, np.float64), repeat, ref_repeat, T)
    if "linear" in sections:
        print(f"\n## linear_cross_entropy, float32, {repeat} interleaved rounds (default "
              "chunk_size)\n")
        linear_ce(cases, repeat)
    if "linear_classblock" in sections:
        # K so large that the default settings take the class-blocked path;
        # PyTorch only where its unfused logits fit (2 and 4 GiB at 1024 and
        # 2048 x 524288; 8 GiB of logits at 2048 x 1048576 is past this 24 GiB
        # machine)
        cb_cases = ([(256, 64, 524288, True)] if args.quick else
                    [(1024, 128, 524288, True), (2048, 128, 524288, True),
                     (2048, 256, 1048576, False)])
        cb_repeat = 2
        print(f"\n## linear_cross_entropy, class-blocked path, float32 (default settings; "
              f"ours: 1 traced call + {cb_repeat - 1} more, PyTorch: {cb_repeat} calls, "
              "interleaved; ours only: 1 traced call)\n")
        linear_classblock(cb_cases, cb_repeat)
        print("\nclass-blocked vs row path where both run (same call, class_chunk_size set):")
        row_vs_class(*((256, 64, 32768) if args.quick else (2048, 128, 131072)), repeat=2)
    if "compile" in sections:
        print("\n## compile cost\n")
        compile_cost()
    if "accuracy" in sections:
        print("\n## accuracy (max ulps vs long double; logsumexp: ulps of max(|lse|, |max x|))\n")
        accuracy()


if __name__ == "__main__":
    main()
