"""How good Newton-CG's preconditioners are on bench_fit's dense problem.

Builds the exact Hessian of the scaled objective ``F = (C sum_i CE_i + ||W||^2 / 2)
/ (C n)`` at a point (the optimum, and half of it), projected onto the subspace
where the class rows of the coefficients sum to 0 (where Newton-CG works), and
prints the condition number of the preconditioned Hessian for

- the Kronecker approximation ``A (x) B`` (Newton-CG's first preconditioner),
- the per-class diagonal blocks estimated on a uniform subset of the rows,
- the same blocks estimated on as many rows drawn by their weight in each block
  (what ``SoftmaxRegression`` uses for large dense X),
- the exact per-class blocks (all rows).

CG needs about ``sqrt(kappa)`` steps per digit, so this is what sets the number of
Hessian-vector products per Newton step.  It is a measurement of ours alone (no
peer computes these preconditioners): ``python benchmarks/bench_precond.py``
(about a minute; ``--n`` for a smaller problem).
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_fit import make_dense

from softmaxkit import SoftmaxRegression
from softmaxkit.models import _softmax_regression as _sr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args(argv)
    n, d, K = args.n, args.d, args.classes
    X, y = make_dense(n, d, K, np.float64)
    m = d + 1
    Xt = np.column_stack([X, np.ones(n)])
    l2 = np.tile(np.r_[np.ones(d), 0.0], K) / n
    fit = SoftmaxRegression(tol=1e-10).fit(X, y)
    opt = np.column_stack([fit.coef_, fit.intercept_])
    obj = _sr._PenalizedObjective(_sr._LinearSoftmaxTerm(X, y, None, K, True), "l2", 1.0)
    rows = obj._block_rows()
    # an orthonormal basis of the centred subspace (class rows summing to 0)
    ev, vec = np.linalg.eigh(np.eye(K) - 1.0 / K)
    Z = np.kron(vec[:, ev > 0.5], np.eye(m))
    print(f"{n} x {d} x {K}, blocks from {rows} rows")
    print("| point | Kronecker | blocks, uniform rows | blocks, rows drawn by weight "
          "| blocks, all rows |")
    print("|---|---|---|---|---|")
    for label, W in (("optimum", opt), ("half the optimum", 0.5 * opt)):
        coef = W.ravel().copy()
        Zl = Xt @ W.T
        P = np.exp(Zl - Zl.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        H = np.empty((K, m, K, m))
        for k in range(K):
            for j in range(k, K):
                blk = (Xt * (P[:, k] * ((k == j) - P[:, j]))[:, None]).T @ Xt / n
                H[k, :, j, :], H[j, :, k, :] = blk, blk.T
        H = H.reshape(K * m, K * m) + np.diag(l2)
        Hz = Z.T @ H @ Z

        def kappa(minv, Hz=Hz):
            Mz = Z.T @ np.column_stack([minv(Z[:, j]) for j in range(Z.shape[1])])
            e = np.linalg.eigvals(Mz @ Hz).real
            return e.max() / e.min()

        term = _sr._LinearSoftmaxTerm(X, y, None, K, True)
        term.loss_gradient(coef)
        obj = _sr._PenalizedObjective(term, "l2", 1.0)
        kron = obj._kron_precond(coef)
        drawn = obj._block_precond(coef)
        term._state_at = lambda c: None    # no probabilities at hand: a uniform subset
        uniform = obj._block_precond(coef)
        obj._block_rows = lambda: n        # all rows
        exact = obj._block_precond(coef)
        print(f"| {label} | {kappa(kron):.1f} | {kappa(uniform):.1f} | {kappa(drawn):.1f} "
              f"| {kappa(exact):.1f} |")


if __name__ == "__main__":
    main()
