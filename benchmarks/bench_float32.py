"""float32 fits against float64 fits: accuracy, time and memory.

For a few problems and penalties, fits ``SoftmaxRegression(C=C)`` on float64 X and
on its float32 copy in one process and prints the largest difference of the
predicted probabilities, both fit times, whether a ConvergenceWarning was issued,
and the float32 fit's peak traced memory (tracemalloc: NumPy's allocations)
against the size of X in float32 and of a float64 copy of it.

    python benchmarks/bench_float32.py
"""

from __future__ import annotations

import os
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.preprocessing import StandardScaler

from softmaxkit import SoftmaxRegression


def problems():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    Xr = np.repeat(X, 150, axis=0) + 0.3 * rng.standard_normal((len(X) * 150, X.shape[1]))
    yield "breast cancer x150 + noise", Xr, np.repeat(y, 150)
    X, y = make_classification(100_000, 40, n_informative=20, n_classes=5, class_sep=2.0,
                               random_state=0)
    yield "make_classification 5 classes", X, y


def timed(X, y, C, trace=False):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if trace:
            tracemalloc.start()
        t = time.perf_counter()
        try:
            m = SoftmaxRegression(C=C).fit(X, y)
            dt = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1] if trace else None
        finally:
            if trace:
                tracemalloc.stop()
    warned = any("converge" in str(w.message) for w in caught)
    return m, dt, warned, peak


def main():
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| problem | n x d x K | C | max abs P32 - P64 | float64 fit (s) | float32 fit (s) "
          "| warning (64 / 32) | float32 fit peak (MB) | X float32 / float64 (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, X, y in problems():
        X32 = X.astype(np.float32)
        SoftmaxRegression().fit(X[::20], y[::20])      # warm-up
        SoftmaxRegression().fit(X32[::20], y[::20])
        for C in (1.0, 100.0, 1e4):
            m64, t64, w64, _ = timed(X, y, C)
            m32, t32, w32, peak = timed(X32, y, C, trace=True)
            gap = np.abs(m32.predict_proba(X32).astype(np.float64) - m64.predict_proba(X)).max()
            print(f"| {name} | {X.shape[0]} x {X.shape[1]} x {len(m64.classes_)} | {C:g} | "
                  f"{gap:.1e} | {t64:.2f} | {t32:.2f} | {'yes' if w64 else 'no'} / "
                  f"{'yes' if w32 else 'no'} | {peak / 1e6:.1f} | {X32.nbytes / 1e6:.1f} / "
                  f"{X.nbytes / 1e6:.1f} |")


if __name__ == "__main__":
    main()
