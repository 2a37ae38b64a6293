"""Narrow rows (1,000,000 x 10): softmaxkit vs PyTorch, interleaved, same arrays.

The per-row overhead case of issue #6.  Both libraries use 2 threads; every
round times ours then PyTorch's on the same array; prints the best times and
the ratio PyTorch / ours (> 1: softmaxkit faster), best and median.

    python benchmarks/bench_narrow_rows.py [--rounds 7] [--rows 1000000] [--cols 10]
"""

import argparse
import time

import numpy as np

import softmaxkit as smk


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=10)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("PyTorch is not installed: nothing to compare with") from None
    torch.set_num_threads(2)
    head = ["ours ms", "torch ms", "best x", "median x"]
    print(f"{'op':12s} {'dtype':8s} " + " ".join(f"{h:>9s}" for h in head))
    for dt in (np.float64, np.float32):
        x = np.random.default_rng(0).normal(size=(args.rows, args.cols)).astype(dt)
        xt = torch.from_numpy(x)
        ops = [
            ("softmax", smk.softmax, torch.softmax),
            ("log_softmax", smk.log_softmax, torch.log_softmax),
            ("logsumexp", smk.logsumexp, torch.logsumexp),
        ]
        for name, ours, theirs in ops:
            ours(x)
            theirs(xt, -1)  # warm-up (and compilation of our kernel)
            to, tt = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                ours(x)
                to.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                theirs(xt, -1)
                tt.append(time.perf_counter() - t0)
            ratio = np.median(np.array(tt) / np.array(to))
            print(f"{name:12s} {np.dtype(dt).name:8s} {min(to) * 1e3:9.1f} {min(tt) * 1e3:9.1f} "
                  f"{min(tt) / min(to):8.2f}x {ratio:8.2f}x")


if __name__ == "__main__":
    main()
