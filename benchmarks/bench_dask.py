"""SoftmaxRegression on Dask (issue #7): per-evaluation overhead and an
out-of-core fit.

Part 1 -- overhead.  The same data term (loss + gradient, and a
Hessian-vector product) evaluated in memory (LinearSoftmaxLoss on the whole
array, the in-memory estimator's path) and on a LocalCluster (2 worker
processes x 1 thread, partitions persisted in worker memory); the
difference per evaluation is the Dask overhead (target: under 50 ms).  Then
one full fit each way with the same solver.

Part 2 -- data larger than the cluster.  About ``--gib`` GiB of Parquet
(float64 features, integer labels) is written to a temporary directory and
fitted on a LocalCluster of 2 workers with ``memory_limit="1GiB"`` each: the
data do not fit in the cluster's memory, so the data term streams (every
evaluation re-reads the partitions from Parquet and keeps nothing).  A few
L-BFGS iterations are run (``--big-iter``), enough to measure the time per
evaluation; the fit completes by design, not by spilling.

Run:  python benchmarks/bench_dask.py            (both parts)
      python benchmarks/bench_dask.py --part 1   (overhead only, ~1 minute)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings

import numpy as np


def _median_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, k)) + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def _overhead_row(n, d, k, chunks, repeat):
    import dask.array as da

    from softmaxkit.distributed import DaskDataTerm
    from softmaxkit.losses import LinearSoftmaxLoss

    X, y = _data(n, d, k)
    loss = LinearSoftmaxLoss(k)
    coef = np.random.default_rng(1).normal(size=k * (d + 1)) * 0.1
    v = np.random.default_rng(2).normal(size=coef.size)
    t_mem = _median_time(lambda: loss.loss_gradient(coef, X, y), repeat)
    _, _, hv = loss.gradient_hessp(coef, X, y)
    t_hmem = _median_time(lambda: hv(v), repeat)
    Xd = da.from_array(X, chunks=(-(-n // chunks), d))
    yd = da.from_array(y, chunks=-(-n // chunks))
    with DaskDataTerm(Xd, yd, persist=True) as term:
        t_dask = _median_time(lambda: term.loss_gradient(coef), repeat)
        hvd = term.hessp(coef)
        t_hdask = _median_time(lambda: hvd(v), repeat)
    print(f"{n:>9} {d:>4} {k:>3} {chunks:>6} | {t_mem * 1e3:8.1f}ms {t_dask * 1e3:8.1f}ms "
          f"{(t_dask - t_mem) * 1e3:8.1f}ms | {t_hmem * 1e3:7.1f}ms {t_hdask * 1e3:7.1f}ms")


def part1(args):
    import dask.array as da

    from distributed import Client, LocalCluster
    from softmaxkit import SoftmaxRegression

    print("== Part 1: per-evaluation overhead, LocalCluster(2 processes x 1 thread) vs in memory")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        print(f"{'n':>9} {'d':>4} {'K':>3} {'chunks':>6} | {'in-memory':>10} {'dask':>10} "
              f"{'overhead':>10} | {'hvp mem':>9} {'hvp dask':>9}")
        for n, d, k, chunks in [(2_000, 10, 3, 2), (20_000, 20, 5, 4), (200_000, 50, 10, 8),
                                (1_000_000, 50, 10, 8)]:
            _overhead_row(n, d, k, chunks, args.repeat)

        print("\nfull fit, same solver and tol (n=100,000, d=50, K=10, 4 chunks):")
        X, y = _data(100_000, 50, 10)
        Xd = da.from_array(X, chunks=(25_000, 50))
        yd = da.from_array(y, chunks=25_000)
        for solver in ("newton-cg", "lbfgs"):
            params = dict(solver=solver, tol=1e-8)
            t = time.perf_counter()
            ref = SoftmaxRegression(**params).fit(X, y)
            t_mem = time.perf_counter() - t
            t = time.perf_counter()
            model = SoftmaxRegression(**params).fit(Xd, yd)
            t_dask = time.perf_counter() - t
            diff = float(np.max(np.abs(model.coef_ - ref.coef_)))
            print(f"  {solver:10s} in-memory {t_mem:6.2f} s ({ref.n_iter_} iter) | dask "
                  f"{t_dask:6.2f} s ({model.n_iter_} iter) | ratio {t_dask / t_mem:5.2f} | "
                  f"max |coef diff| {diff:.1e}")
    finally:
        client.close()
        cluster.close()


def _write_parquet(directory, gib, d, k, rows_per_file, seed=0):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    bytes_per_row = 8 * d + 8
    n_files = max(1, int(round(gib * 2**30 / (bytes_per_row * rows_per_file))))
    names = [f"x{j}" for j in range(d)]
    for i in range(n_files):
        X = rng.normal(size=(rows_per_file, d))
        y = np.argmax(X @ W + rng.gumbel(size=(rows_per_file, k)), axis=1).astype(np.int64)
        cols = [pa.array(X[:, j]) for j in range(d)] + [pa.array(y)]
        table = pa.Table.from_arrays(cols, names=[*names, "label"])
        pq.write_table(table, os.path.join(directory, f"part-{i:04d}.parquet"),
                       use_dictionary=False, compression="snappy")
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    return n_files, n_files * rows_per_file, size


def part2(args):
    from distributed import Client, LocalCluster
    from softmaxkit import SoftmaxRegression
    from softmaxkit.distributed import DaskDataTerm, read_parquet_dataset

    print(f"\n== Part 2: fit on ~{args.gib} GiB of Parquet with LocalCluster(2 workers, "
          "memory_limit='1GiB')")
    tmp = tempfile.mkdtemp(prefix="softmaxkit-bench-dask-", dir=args.tmpdir)
    try:
        t = time.perf_counter()
        n_files, n_rows, size = _write_parquet(tmp, args.gib, args.big_d, args.big_k,
                                               args.rows_per_file)
        print(f"wrote {n_files} files, {n_rows:,} rows x {args.big_d} features, "
              f"{size / 2**30:.2f} GiB on disk in {time.perf_counter() - t:.1f} s")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               memory_limit="1GiB", dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            mem = sum(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
            print(f"cluster memory {mem / 2**30:.2f} GiB; data in memory would be "
                  f"{n_rows * (args.big_d + 2) * 8 / 2**30:.2f} GiB")
            X, y = read_parquet_dataset(tmp, "label")
            t = time.perf_counter()
            term = DaskDataTerm(X, y)  # persist="auto": streams, the data exceed memory
            t_stats = time.perf_counter() - t
            print(f"statistics pass {t_stats:.1f} s -> {term!r}")
            coef = np.zeros(term.n_classes * (term.n_features + 1))
            times = []
            for _ in range(2):
                t = time.perf_counter()
                term.loss_gradient(coef)
                times.append(time.perf_counter() - t)
            term.close()
            per_eval = float(np.median(times))
            print(f"loss+gradient evaluation (re-reads all partitions): "
                  f"{', '.join(f'{x:.1f}' for x in times)} s -> {per_eval:.1f} s "
                  f"({size / 2**20 / per_eval:.0f} MiB/s of Parquet)")
            # time every data-term evaluation the fit makes
            evals = []
            original = DaskDataTerm.loss_gradient

            def timed(self, coef):
                t = time.perf_counter()
                try:
                    return original(self, coef)
                finally:
                    evals.append(time.perf_counter() - t)

            DaskDataTerm.loss_gradient = timed
            model = SoftmaxRegression(solver="lbfgs", max_iter=args.big_iter)
            t = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter on purpose
                    model.fit(X, y)
            finally:
                DaskDataTerm.loss_gradient = original
            t_fit = time.perf_counter() - t
            print(f"fit: SoftmaxRegression(solver='lbfgs', max_iter={args.big_iter}) "
                  f"{t_fit:.1f} s, {model.n_iter_} iterations, {len(evals)} evaluations of "
                  f"{np.mean(evals):.1f} s on average ({t_fit - sum(evals):.1f} s statistics "
                  f"pass and set-up); objective {model.loss_curve_[0]:.6g} -> "
                  f"{model.loss_curve_[-1]:.6g}")
            deadline = time.monotonic() + 10  # releases are asynchronous
            while True:
                held = client.run(lambda dask_worker: len(dask_worker.data))
                if not any(held.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            print(f"keys held in worker memory after the fit: {sum(held.values())}")
        finally:
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    # da.from_array embeds the in-memory test arrays in the graph: expected here
    warnings.filterwarnings("ignore", message="Sending large graph")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", type=int, choices=[1, 2], default=None)
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--gib", type=float, default=3.0, help="GiB of Parquet for part 2")
    p.add_argument("--big-d", type=int, default=32)
    p.add_argument("--big-k", type=int, default=5)
    p.add_argument("--rows-per-file", type=int, default=131_072)
    p.add_argument("--big-iter", type=int, default=3)
    p.add_argument("--tmpdir", default=None)
    args = p.parse_args()
    if args.part in (None, 1):
        part1(args)
    if args.part in (None, 2):
        part2(args)


if __name__ == "__main__":
    main()
