"""Accuracy of softmax, log_softmax and logsumexp against mpmath (60 digits).

Acceptance (issue #2): rows of width 3..1000, spreads up to 20, offsets up
to 1e3, float64: softmax and logsumexp within 4 ulp, log_softmax within 8
ulp.  This is a modest sample for speed; benchmarks/accuracy_special.py
measures 2000 rows and compares with SciPy.
"""

import numpy as np
import pytest

import softmaxkit as smk

from ._oracle import exact_row, random_row, ulp_error


def _rows(seed, n, **kw):
    rng = np.random.default_rng(seed)
    return [random_row(rng, **kw) for _ in range(n)]


ROWS64 = _rows(20262, 24)


@pytest.mark.parametrize("i", range(len(ROWS64)))
def test_float64_within_ulp_bounds(i, backend):
    x = ROWS64[i]
    S, L, lse = exact_row(x)
    assert ulp_error(smk.softmax(x), S).max() <= 4
    assert ulp_error(smk.log_softmax(x), L).max() <= 8
    assert ulp_error(smk.logsumexp(x), lse).max() <= 4


def test_float64_batch_within_ulp_bounds(backend):
    # the same bounds on a 2-D batch (rows of one width, the kernel layout)
    rng = np.random.default_rng(7)
    x = np.stack([5.0 * rng.standard_normal(300) + off for off in (-900.0, -3.0, 0.5, 700.0)])
    S, L, lse = smk.softmax(x), smk.log_softmax(x), smk.logsumexp(x)
    for r in range(x.shape[0]):
        eS, eL, else_ = exact_row(x[r])
        assert ulp_error(S[r], eS).max() <= 4
        assert ulp_error(L[r], eL).max() <= 8
        assert ulp_error(lse[r], else_).max() <= 4


def test_softmin_within_ulp_bounds():
    x = ROWS64[0]
    S, _, _ = exact_row(-x)
    assert ulp_error(smk.softmin(x), S).max() <= 4


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_float32_sanity(seed, backend):
    rng = np.random.default_rng(seed)
    x = random_row(rng, max_width=300).astype(np.float32)
    S, L, lse = exact_row(x)  # exact values for the float32 inputs
    s, ls, l = smk.softmax(x), smk.log_softmax(x), smk.logsumexp(x)
    assert s.dtype == ls.dtype == l.dtype == np.float32
    assert ulp_error(s, S, np.float32).max() <= 4
    assert ulp_error(ls, L, np.float32).max() <= 8
    assert ulp_error(l, lse, np.float32).max() <= 4


def test_largest_entry_of_log_softmax_keeps_full_precision(backend):
    # log_softmax of the max entry is -log1p(rest), tiny here; the textbook
    # x - max - log(sum) gives exactly 0 (scipy) or loses ~1e5 ulp
    x = np.array([[0.0, -40.0, -41.5], [3.0, -30.0, 2.0 - 35.0]])
    out = smk.log_softmax(x)
    for r in range(2):
        _, L, _ = exact_row(x[r])
        assert ulp_error(out[r], L).max() <= 2
    assert out[0, 0] < 0  # not rounded to 0


def test_largest_entry_moderate_rest(backend):
    # rest ~ 1e-5: log(1 + rest) would lose ~5 digits of the max entry
    x = np.array([0.0, -11.5, -12.0, -13.25, -30.0])
    _, L, _ = exact_row(x)
    assert ulp_error(smk.log_softmax(x), L).max() <= 2


def test_ties_and_large_offsets(backend):
    x = np.array([[1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1001.0]])
    for r in range(2):
        S, L, lse = exact_row(x[r])
        assert ulp_error(smk.softmax(x)[r], S).max() <= 2
        assert ulp_error(smk.log_softmax(x)[r], L).max() <= 2
        assert ulp_error(smk.logsumexp(x)[r], lse).max() <= 2


def test_temperature_accuracy():
    # softmax(x, T) is softmax of x / T: compare with the exact softmax of
    # the (exactly representable) quotient for T a power of two
    rng = np.random.default_rng(3)
    x = 10 * rng.standard_normal(50)
    S, L, lse = exact_row(x / 4.0)
    assert ulp_error(smk.softmax(x, temperature=4.0), S).max() <= 4
    assert ulp_error(smk.log_softmax(x, temperature=4.0), L).max() <= 8
    # T * logsumexp(x / T) with T = 4 is exact times 4
    assert ulp_error(smk.logsumexp(x, temperature=4.0) / 4.0, lse).max() <= 4


def test_logsumexp_near_cancellation(backend):
    # max < 0 and log1p(rest) ~ -max: the result (~ 0.0078) is much smaller
    # than its two terms.  With the extended accumulator (x86-64) we stay
    # within the 4-ulp bound; without one the documented bound is a few ulp
    # of |max|.
    rng = np.random.default_rng(11)
    x = -6.9 + 1e-3 * rng.random(1000)
    x2 = np.stack([x, x - 3.5])
    res = smk.logsumexp(x2)
    for r in range(2):
        _, _, lse = exact_row(x2[r])
        err = ulp_error(res[r], lse)[0]
        if np.finfo(np.longdouble).nmant > 52:
            assert err <= 4
        else:
            assert err * np.spacing(abs(float(lse))) <= 4 * np.spacing(abs(x2[r].max()))
    # log_softmax (computed from the max, not from the cancelling sum) keeps
    # its bound on this row as well
    _, L, _ = exact_row(x)
    assert ulp_error(smk.log_softmax(x2)[0], L).max() <= 8
