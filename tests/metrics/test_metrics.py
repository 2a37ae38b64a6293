"""softmaxkit.metrics against independent computations and scikit-learn."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import softmaxkit
from softmaxkit.metrics import (
    brier_score,
    expected_calibration_error,
    log_loss,
    reliability_curve,
)


def _random_problem(seed, n, K):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, K))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, K, size=n)
    return y, p


def _ece_loop(y, p, n_bins):
    """Guo et al. (2017) reference code, written out sample by sample; the
    edges are the float64 quotients m / M (np.linspace's can be an ulp low)."""
    edges = [m / n_bins for m in range(n_bins + 1)]
    conf = [max(row) for row in p]
    pred = [int(np.argmax(row)) for row in p]
    n = len(y)
    ece = 0.0
    rows = []
    for m in range(n_bins):
        lo, hi = edges[m], edges[m + 1]
        members = [i for i in range(n) if (conf[i] > lo or (m == 0 and conf[i] == 0)) and
                   conf[i] <= hi]
        if not members:
            rows.append((np.nan, np.nan, 0))
            continue
        acc = sum(pred[i] == y[i] for i in members) / len(members)
        c = sum(conf[i] for i in members) / len(members)
        ece += len(members) / n * abs(acc - c)
        rows.append((c, acc, len(members)))
    return ece, np.array(rows, dtype=float)


def test_metrics_reachable_lazily_as_attribute():
    assert softmaxkit.metrics.expected_calibration_error is expected_calibration_error


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), K=st.integers(2, 6),
       n_bins=st.integers(1, 20))
def test_ece_and_curve_match_direct_loop(seed, n, K, n_bins):
    y, p = _random_problem(seed, n, K)
    ece_ref, rows = _ece_loop(y, p, n_bins)
    conf, acc, counts = reliability_curve(y, p, n_bins=n_bins)
    assert expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(ece_ref, abs=1e-12)
    np.testing.assert_array_equal(counts, rows[:, 2])
    np.testing.assert_allclose(conf, rows[:, 0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(acc, rows[:, 1], rtol=1e-12, equal_nan=True)
    assert conf.shape == acc.shape == counts.shape == (n_bins,)


def test_ece_by_hand():
    # 15 bins of width 1/15. Sample 0: conf 0.95 (bin 14), correct.
    # Samples 1, 2: conf 0.6 (bin 8: (8/15, 9/15]), one right one wrong -> acc 0.5.
    p = np.array([[0.95, 0.05, 0.0], [0.6, 0.3, 0.1], [0.1, 0.6, 0.3]])
    y = np.array([0, 0, 0])
    expected = (1 / 3) * abs(1 - 0.95) + (2 / 3) * abs(0.5 - 0.6)
    assert expected_calibration_error(y, p) == pytest.approx(expected, rel=1e-12)
    conf, acc, counts = reliability_curve(y, p)
    assert counts.sum() == 3 and counts[14] == 1 and counts[8] == 2
    assert np.isnan(conf[0]) and np.isnan(acc[0])


def test_bin_edges_are_right_closed():
    # confidence exactly 0.5 belongs to bin (0, 0.5] with two bins, 1.0 to (0.5, 1]
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    conf, acc, counts = reliability_curve([0, 0], p, n_bins=2)
    np.testing.assert_array_equal(counts, [1, 1])
    np.testing.assert_allclose(conf, [0.5, 1.0])


def test_linspace_edges_are_off_for_the_tested_bin_counts():
    # the premise of the next test: np.linspace's edges are not all m / M
    off = [M for M in range(1, 41)
           if any(e != m / M for m, e in enumerate(np.linspace(0.0, 1.0, M + 1)))]
    assert {6, 7, 9, 12, 14, 17, 18, 19} <= set(off)


@pytest.mark.parametrize("M", range(1, 41))
def test_confidence_exactly_k_over_m_lies_in_bin_k_minus_1(M):
    """Bins are (m/M, (m+1)/M]: a confidence of exactly k/M (the float64
    quotient) is in bin k - 1 for every M, in reliability_curve and
    expected_calibration_error alike (was: bin k for M = 6, 7, 9, 12, ...)."""
    ks = np.arange(1, M + 1)
    c = np.array([k / M for k in ks])
    def rows(conf):
        # [conf, then 2M entries (1 - conf) / (2M)], each below conf (conf > 1 / (2M + 1)):
        # column 0 is the strict arg-max and the top-label confidence is conf exactly
        rest = np.repeat(((1.0 - conf) / (2 * M))[:, None], 2 * M, axis=1)
        out = np.hstack([conf[:, None], rest])
        assert (out[:, 1:] < out[:, :1]).all()
        return out

    edge = rows(c)
    conf, acc, counts = reliability_curve(np.zeros(M, dtype=int), edge, n_bins=M)
    np.testing.assert_array_equal(counts, np.ones(M))  # sample k/M alone in bin k - 1
    np.testing.assert_array_equal(conf, c)
    for k in ks:
        _, _, counts = reliability_curve([0], edge[k - 1:k], n_bins=M)
        assert counts[k - 1] == 1, (M, k, np.flatnonzero(counts))
    # with a wrong sample at the middle of each bin, every bin holds two samples
    # (one right, one wrong) exactly when the edges are right
    mid = np.array([(k - 0.5) / M for k in ks])
    proba = np.vstack([edge, rows(mid)])
    y = np.r_[np.zeros(M, dtype=int), np.ones(M, dtype=int)]
    conf, acc, counts = reliability_curve(y, proba, n_bins=M)
    np.testing.assert_array_equal(counts, np.full(M, 2))
    np.testing.assert_array_equal(acc, np.full(M, 0.5))
    np.testing.assert_allclose(conf, (c + mid) / 2, rtol=1e-15)
    expected = np.sum(2 / (2 * M) * np.abs(0.5 - (c + mid) / 2))
    assert expected_calibration_error(y, proba, n_bins=M) == pytest.approx(expected, rel=1e-12)
    ece_ref, _ = _ece_loop(y, proba, M)
    assert expected_calibration_error(y, proba, n_bins=M) == pytest.approx(ece_ref, abs=1e-15)


def test_reviewer_example_five_sevenths():
    _, _, counts = reliability_curve([0], [[5 / 7, 2 / 7]], n_bins=7)
    assert counts[4] == 1 and counts.sum() == 1


def test_calibrated_probabilities_have_small_ece():
    # labels drawn from the predicted distribution: ECE -> 0 as n grows
    rng = np.random.default_rng(1)
    n, K = 40000, 4
    z = rng.normal(scale=1.5, size=(n, K))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    assert expected_calibration_error(y, p) < 0.015
    # the same probabilities made over-confident are clearly miscalibrated
    p3 = np.exp(3 * z) / np.exp(3 * z).sum(1, keepdims=True)
    assert expected_calibration_error(y, p3) > 0.1


@pytest.mark.parametrize("K", [2, 5])
def test_log_loss_matches_sklearn(K):
    skm = pytest.importorskip("sklearn.metrics")
    y, p = _random_problem(3, 200, K)
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p, labels=np.arange(K)), rel=1e-12)
    # float32 input
    assert log_loss(y, p.astype(np.float32)) == pytest.approx(log_loss(y, p), rel=1e-5)


def test_log_loss_zero_probability_is_inf():
    assert log_loss([1], np.array([[1.0, 0.0]])) == np.inf


@pytest.mark.parametrize("K", [2, 3, 6])
def test_brier_score_matches_sklearn_multiclass(K):
    skm = pytest.importorskip("sklearn.metrics")
    y, p = _random_problem(4, 300, K)
    ref = skm.brier_score_loss(y, p, labels=np.arange(K), scale_by_half=False)
    assert brier_score(y, p) == pytest.approx(ref, rel=1e-12)
    if K == 2:
        # twice the usual binary Brier score
        binary = skm.brier_score_loss(y, p[:, 1])
        assert brier_score(y, p) == pytest.approx(2 * binary, rel=1e-12)


def test_brier_by_hand():
    p = np.array([[0.7, 0.2, 0.1]])
    assert brier_score([2], p) == pytest.approx(0.7**2 + 0.2**2 + 0.9**2)


@pytest.mark.parametrize("func", [expected_calibration_error, reliability_curve])
@pytest.mark.parametrize("n_bins,exc", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                        (True, TypeError), ("10", TypeError)])
def test_bad_n_bins(func, n_bins, exc):
    y, p = _random_problem(0, 5, 3)
    with pytest.raises(exc, match="'n_bins' parameter of"):
        func(y, p, n_bins=n_bins)


@pytest.mark.parametrize("func", [expected_calibration_error, reliability_curve, log_loss,
                                  brier_score])
def test_bad_inputs(func):
    y, p = _random_problem(0, 5, 3)
    with pytest.raises(ValueError, match="got 3 at position 1"):
        func(np.array([0, 3, 1, 1, 1]), p)
    with pytest.raises(ValueError, match="got -1 at position 0"):
        func(np.array([-1, 0, 1, 1, 1]), p)
    with pytest.raises(ValueError, match="4 entries but there are 5 rows"):
        func(y[:4], p)
    with pytest.raises(ValueError, match="2-D array"):
        func(y, p[:, 0])
    with pytest.raises(ValueError, match="row 2 sums to"):
        q = p.copy()
        q[2] *= 0.5
        func(y, q)
    with pytest.raises(ValueError, match="finite"):
        q = p.copy()
        q[0, 0] = np.nan
        func(y, q)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        func([0], np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="integer class indices"):
        func(np.array([0.5, 0, 1, 1, 1]), p)
    with pytest.raises(TypeError, match="integer class indices"):
        func(np.array(["a"] * 5), p)
    with pytest.raises(ValueError, match="at least one sample"):
        func(np.array([], dtype=int), np.zeros((0, 3)))


# ---------------------------------------------------------------- float16 probabilities

ALL_METRICS = [expected_calibration_error, reliability_curve, log_loss, brier_score]


def _sklearn_quiet(fn, *args, **kwargs):
    """scikit-learn warns that float16-rounded rows do not sum to 1 (its own,
    float64 tolerance); the values are what is compared."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*do not sum to one", category=UserWarning)
        return fn(*args, **kwargs)


def test_float16_softmax_accepted_and_matches_sklearn():
    """The library's own float16 softmax is a valid input: the row-sum
    tolerance is float16's, not float32's (was: 'row 0 sums to
    1.00006103515625' from every metric)."""
    skm = pytest.importorskip("sklearn.metrics")
    p = softmaxkit.softmax(np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], np.float16))
    assert p.dtype == np.float16
    assert abs(float(p[0].astype(np.float64).sum()) - 1.0) > 5e-5  # the reviewer's row
    y = np.array([0, 2])
    p64 = p.astype(np.float64)
    assert log_loss(y, p) == pytest.approx(
        _sklearn_quiet(skm.log_loss, y, p64, labels=np.arange(3)), rel=1e-12)
    assert brier_score(y, p) == pytest.approx(
        _sklearn_quiet(skm.brier_score_loss, y, p64, labels=np.arange(3),
                       scale_by_half=False), rel=1e-12)
    ece_ref, rows = _ece_loop(y, p64, 15)
    assert expected_calibration_error(y, p) == pytest.approx(ece_ref, abs=1e-12)
    conf, acc, counts = reliability_curve(y, p)
    np.testing.assert_array_equal(counts, rows[:, 2])
    np.testing.assert_allclose(conf, rows[:, 0], rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("K", [2, 3, 10, 100, 1000])
@pytest.mark.parametrize("func", ALL_METRICS)
def test_float16_softmax_rows_accepted_for_any_k(func, K):
    rng = np.random.default_rng(K)
    z = rng.normal(scale=3.0, size=(500, K))
    y = rng.integers(0, K, 500)
    p16 = softmaxkit.softmax(z.astype(np.float16))
    func(y, p16)  # no ValueError
    # and a float16 softmax done in float16 arithmetic throughout
    h = z.astype(np.float16)
    e = np.exp(h - h.max(1, keepdims=True))
    func(y, e / e.sum(1, keepdims=True, dtype=np.float16))


@pytest.mark.parametrize("func", ALL_METRICS)
def test_float16_rows_that_do_not_sum_to_one_are_refused(func):
    # 0.5 + 0.6 is 10% off: far beyond float16 rounding (a tolerance of
    # 100 K eps16 = 0.195 would let it through)
    with pytest.raises(ValueError, match=r"^each row of proba of \w+ must sum to 1; row 1 sums "
                                         r"to 1\.10009765625\.$"):
        func([0, 1], np.array([[0.25, 0.75], [0.5, 0.6]], np.float16))
    q = np.full((1, 6), 1 / 6, np.float16)
    q[0, 0] = 0.1
    with pytest.raises(ValueError, match="row 0 sums to"):
        func([0], q)
    # the float16 tolerance is 10 eps16 whatever K (K eps16 would pass a row summing
    # to 1.5 at K = 1000)
    eps16 = float(np.finfo(np.float16).eps)
    for K in (8, 1000):
        for off, ok in [(9.0, True), (12.0, False)]:
            r = np.zeros((1, K))
            r[0, 0] = 1.0 - off * eps16
            r = r.astype(np.float16)
            gap = abs(1 - float(r.astype(np.float64).sum()))
            assert (gap <= 10 * eps16) == ok
            if ok:
                func([0], r)
            else:
                with pytest.raises(ValueError, match="row 0 sums to"):
                    func([0], r)
    r = (np.full((1, 1000), 1.5 / 1000)).astype(np.float16)
    with pytest.raises(ValueError, match="row 0 sums to"):
        func([0], r)


@pytest.mark.parametrize("func", ALL_METRICS)
def test_float32_and_float64_tolerance(func):
    """Rows must sum to 1 within the losses' soft-target tolerance (1e-6 for float64,
    1e-4 for float32) plus K unit roundoffs (the worst-case error of a sum of K
    terms): 2.0e-3 for float32 at K = 32,000, where the old 100 K eps was 0.38."""
    from softmaxkit._validation import soft_target_tol

    for dt in [np.float32, np.float64]:
        for K in (4, 32_000):
            tol = soft_target_tol(dt) + K * float(np.finfo(dt).eps) / 2
            for off, ok in [(0.5, True), (2.0, False)]:
                r = np.full((1, K), 1 / K)
                r[0, 0] += off * tol
                r = r.astype(dt)
                gap = abs(1 - float(r.astype(np.float64).sum()))
                assert (gap <= tol) == ok
                if ok:
                    func([0], r)
                else:
                    with pytest.raises(ValueError, match="row 0 sums to"):
                        func([0], r)
    # float64 values of a float16 softmax are held to float64's tolerance
    p = softmaxkit.softmax(np.array([[2.0, 0.5, -1.0]], np.float16)).astype(np.float64)
    with pytest.raises(ValueError, match="row 0 sums to 1.00006103515625"):
        func([0], p)


@pytest.mark.parametrize("func", ALL_METRICS)
def test_rows_off_by_more_than_rounding_are_refused_at_large_k(func):
    """The reviewer's rows: float32 rows summing to 0.7 over 32,000 classes were
    accepted (log_loss 10.73, ECE 0.99998); float64 ones summing to 0.9999 were,
    and are, refused."""
    for K in (32_000, 100_000):
        for dt, total in [(np.float32, 0.7), (np.float32, 0.99), (np.float64, 0.9999),
                          (np.float64, 1.0001), (np.float16, 0.95)]:
            with pytest.raises(ValueError, match="row 0 sums to"):
                func([0], np.full((1, K), total / K, dtype=dt))


@pytest.mark.parametrize("K", [2, 1000, 32_000, 100_000])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_real_softmax_rows_accepted_at_any_k(dtype, K):
    """softmaxkit's and SciPy's softmax in each dtype, and float64 probabilities
    rounded to it, pass every metric at every K (SciPy's float32 softmax along axis
    0, where NumPy sums sequentially, strays 1.7e-4 at K = 1e5)."""
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(K)
    n = 6
    y = rng.integers(0, K, n)
    for scale in (0.01, 3.0, 30.0):
        z = rng.normal(scale=scale, size=(n, K))
        rows = [softmaxkit.softmax(z.astype(dtype)), special.softmax(z, axis=1).astype(dtype),
                softmaxkit.softmax(z.T.astype(dtype), axis=0).T]
        if dtype != np.float16:  # SciPy sums float16 in float16 along axis 0 (2.5% off
            # at K = 1000) and overflows it beyond 65504 (see the next test)
            rows.append(special.softmax(np.ascontiguousarray(z.T.astype(dtype)), axis=0).T)
        if dtype != np.float16 or K <= 32_000:
            rows.append(special.softmax(z.astype(dtype), axis=1))
        for p in rows:
            assert p.dtype == dtype
            for func in ALL_METRICS:
                func(y, p)


def test_scipy_float16_softmax_that_overflowed_is_refused():
    """SciPy's float16 softmax over 1e5 classes of similar logits overflows its sum:
    rows of zeros, refused."""
    special = pytest.importorskip("scipy.special")
    with np.errstate(over="ignore"):
        p = special.softmax(np.zeros((1, 100_000), np.float16), axis=1)
    assert not p.any()
    with pytest.raises(ValueError, match="row 0 sums to 0.0"):
        log_loss([0], p)


@pytest.mark.parametrize("K", [100_000, 1_000_000])
def test_float16_rows_of_subnormal_probabilities_accepted(K):
    """One large probability and K - 1 tiny ones rounded to float16's subnormals
    (spaced 6e-8): each moves by up to 2**-25, so the row sums to 1 only within
    about 3e-2 at K = 1e6 (was refused: the float16 tolerance was 10 eps whatever K)."""
    worst = None
    for level in np.linspace(0.5, 2.5, 21) * 2.0**-24:
        if level * (K - 1) >= 0.9:
            continue
        r = np.full((1, K), level, dtype=np.float32)
        r[0, 0] = 1 - level * (K - 1)
        r = r.astype(np.float16)
        gap = abs(1 - float(r.sum(dtype=np.float64)))
        if worst is None or gap > worst[0]:
            worst = (gap, r)
    assert worst[0] > 2e-3 * K / 100_000  # the rows do stray from 1 with K
    for func in ALL_METRICS:
        func([0], worst[1])


# ------------------------------------------------------- labels beyond intp's range
@pytest.mark.parametrize("label, shown", [
    (np.array([2**63], np.uint64), "9223372036854775808"),
    (np.array([2**64 - 1], np.uint64), "18446744073709551615"),
    (np.array([1e20]), "100000000000000000000"),
    (np.array([-1e20]), "-100000000000000000000"),
    (np.array([2.0**63]), "9223372036854775808"),
    (np.array([np.finfo(np.float64).max]), str(int(np.finfo(np.float64).max))),
], ids=["uint64 2**63", "uint64 max", "1e20", "-1e20", "2.0**63", "float64 max"])
@pytest.mark.parametrize("func", ALL_METRICS)
def test_out_of_range_labels_are_reported_as_given(func, label, shown):
    """A label beyond intp's range is named as given, without a RuntimeWarning (it was
    reported as -9223372036854775808 after the cast to intp, which warned 'invalid
    value encountered in cast' for floats)."""
    import warnings

    p = np.array([[0.25, 0.75]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=rf"must hold class indices in \[0, 2\) \(the number "
                                             rf"of columns\); got {shown} at position 0\.$"):
            func(label, p)
        # in range, the same dtypes still work
        func(np.zeros_like(label), p)
    with pytest.raises(ValueError, match=r"integer class indices; got 0\.5 at position 0\.$"):
        func(np.array([0.5]), p)  # a plain 0.5, not np.float64(0.5)
