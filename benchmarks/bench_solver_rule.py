"""The ``solver="auto"`` rule for tiny Hessians: Newton-Cholesky against Newton-CG.

For problems with few parameters ``p = K (d + 1)`` the explicit Hessian is small,
but building it costs ``n p^2`` multiply-adds per Newton step.  This script fits
make_classification problems over a grid of ``n`` and ``(d, K)`` with our two
solvers, with ``solver="auto"``, and with scikit-learn's lbfgs and newton-cg (each
library's default tolerance), in one process on the same data, best of a few
runs, and prints the times and the ratios.

    python benchmarks/bench_solver_rule.py           # the grid (about a minute)
    python benchmarks/bench_solver_rule.py --quick   # fewer sizes
"""

from __future__ import annotations

import argparse
import os
import warnings

from bench_fit import _best_time as best
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from softmaxkit import SoftmaxRegression

SHAPES = ((4, 3), (8, 3), (13, 3), (8, 5), (20, 2), (20, 3), (30, 2), (9, 9))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes")
    args = ap.parse_args(argv)
    sizes = (1000, 100_000) if args.quick else (300, 1000, 5000, 20_000, 100_000)
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| n | d | K | n p^2 | ours: Newton-Cholesky (ms) | Newton-CG (ms) | auto (ms) | "
          "Cholesky / CG | sklearn fastest (ms) | sklearn / auto |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    warnings.simplefilter("ignore")  # scikit-learn's lbfgs at max_iter=100
    for n in sizes:
        for d, K in SHAPES:
            X, y = make_classification(n, d, n_informative=min(d, 4), n_redundant=0,
                                       n_classes=K, n_clusters_per_class=1, random_state=0)
            r = 7 if n <= 5000 else 3
            SoftmaxRegression().fit(X, y)  # warm-up
            t = {s: best(lambda s=s, X=X, y=y: SoftmaxRegression(solver=s).fit(X, y), r)
                 for s in ("newton-cholesky", "newton-cg", "auto")}
            sk = min(best(lambda s=s, X=X, y=y: LogisticRegression(solver=s).fit(X, y), r)
                     for s in ("lbfgs", "newton-cg"))
            p = K * (d + 1)
            print(f"| {n} | {d} | {K} | {n * p * p:.2g} | {t['newton-cholesky'] * 1e3:.1f} | "
                  f"{t['newton-cg'] * 1e3:.1f} | {t['auto'] * 1e3:.1f} | "
                  f"{t['newton-cholesky'] / t['newton-cg']:.2f} | {sk * 1e3:.1f} | "
                  f"{sk / t['auto']:.2f}x |")


if __name__ == "__main__":
    main()
