"""LinearSoftmaxLoss against SciPy (value) and PyTorch autograd (gradient, HVP)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax

from softmaxkit.losses import LinearSoftmaxLoss


def _problem(seed, n=40, d=5, K=4, soft=False, weighted=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 2).astype(dtype)
    if soft:
        Y = rng.dirichlet(np.ones(K), size=n).astype(dtype)
    else:
        Y = rng.integers(0, K, n).astype(np.intp)
    s = rng.uniform(0.1, 3, n).astype(dtype) if weighted else None
    coef = rng.standard_normal(K * (d + 1))
    return X, Y, s, coef


def _scipy_loss(coef, X, Y, s, K, fit_intercept=True):
    d = X.shape[1]
    Wb = coef.reshape(K, d + fit_intercept)
    Z = np.asarray(X, dtype=np.float64) @ Wb[:, :d].T + (Wb[:, d] if fit_intercept else 0)
    L = log_softmax(Z, axis=1)
    ce = -L[np.arange(len(L)), Y] if Y.ndim == 1 else -(Y * L).sum(1)
    return float(np.sum(ce if s is None else s * ce))


@given(seed=st.integers(0, 2**31 - 1), soft=st.booleans(), weighted=st.booleans(),
       fit_intercept=st.booleans())
def test_loss_matches_scipy(seed, soft, weighted, fit_intercept):
    X, Y, s, coef = _problem(seed, soft=soft, weighted=weighted)
    K = 4
    coef = coef[: K * (X.shape[1] + fit_intercept)]
    lin = LinearSoftmaxLoss(K, fit_intercept=fit_intercept)
    ref = _scipy_loss(coef, X, Y, s, K, fit_intercept)
    assert lin.loss(coef, X, Y, s) == pytest.approx(ref, rel=1e-12)
    f, _ = lin.loss_gradient(coef, X, Y, s)
    assert f == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_and_hvp_match_torch_autograd(soft, fit_intercept):
    torch = pytest.importorskip("torch")
    X, Y, s, coef = _problem(1, soft=soft)
    K, d = 4, X.shape[1]
    coef = coef[: K * (d + fit_intercept)]
    v = np.random.default_rng(2).standard_normal(coef.size)
    lin = LinearSoftmaxLoss(K, fit_intercept)

    Xt, st_ = torch.tensor(X), torch.tensor(s)

    def tloss(c):
        Wb = c.reshape(K, d + fit_intercept)
        Z = Xt @ Wb[:, :d].T + (Wb[:, d] if fit_intercept else 0)
        L = torch.log_softmax(Z, dim=1)
        if soft:
            ce = -(torch.tensor(Y) * L).sum(1)
        else:
            ce = -L[torch.arange(len(Y)), torch.tensor(Y)]
        return (st_ * ce).sum()

    c = torch.tensor(coef, requires_grad=True)
    g_ref = torch.autograd.grad(tloss(c), c)[0].numpy()
    _, hv_ref = torch.autograd.functional.hvp(tloss, torch.tensor(coef), torch.tensor(v))
    f, g = lin.loss_gradient(coef, X, Y, s)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(lin.hessp(coef, X, Y, s, v), hv_ref.numpy(), rtol=1e-10,
                               atol=1e-11)
    f2, g2, hv = lin.gradient_hessp(coef, X, Y, s)
    assert f2 == f
    np.testing.assert_allclose(g2, g)
    for _ in range(2):  # the cached state serves several products
        np.testing.assert_allclose(hv(v), hv_ref.numpy(), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_explicit_hessian_matches_torch(soft, fit_intercept):
    """The syrk-based explicit Hessian (float64 and float32 products) against
    torch.autograd.functional.hessian."""
    torch = pytest.importorskip("torch")
    X, Y, s, coef = _problem(3, n=30, d=3, K=4, soft=soft)
    K, d = 4, X.shape[1]
    coef = coef[: K * (d + fit_intercept)]
    Xt, st_ = torch.tensor(X), torch.tensor(s)

    def tloss(c):
        Wb = c.reshape(K, d + fit_intercept)
        Z = Xt @ Wb[:, :d].T + (Wb[:, d] if fit_intercept else 0)
        L = torch.log_softmax(Z, dim=1)
        ce = (-(torch.tensor(Y) * L).sum(1) if soft
              else -L[torch.arange(len(Y)), torch.tensor(Y)])
        return (st_ * ce).sum()

    H_ref = torch.autograd.functional.hessian(tloss, torch.tensor(coef)).numpy()
    lin = LinearSoftmaxLoss(K, fit_intercept)
    state = lin._state_at(coef, X, Y, s)
    H = lin._hessian(state, X)
    assert H.dtype == np.float64
    np.testing.assert_allclose(H, H_ref, rtol=1e-10, atol=1e-11 * np.abs(H_ref).max())
    np.testing.assert_array_equal(H, H.T)
    H32 = lin._hessian(state, X, np.float32)
    np.testing.assert_allclose(H32, H_ref, rtol=1e-5, atol=1e-6 * np.abs(H_ref).max())


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_equals_dense(fmt):
    X, Y, s, coef = _problem(3, n=60, d=7)
    X[np.abs(X) < 1.5] = 0
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    lin = LinearSoftmaxLoss(4)
    v = np.random.default_rng(4).standard_normal(coef.size)
    fd, gd, hd = lin.gradient_hessp(coef, X, Y, s)
    fs, gs, hs = lin.gradient_hessp(coef, Xs, Y, s)
    assert fs == pytest.approx(fd, rel=1e-13)
    np.testing.assert_allclose(gs, gd, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hs(v), hd(v), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("threads", [2, 3, 7])
@pytest.mark.parametrize("sparse", [True, False])
def test_products_on_threads_equal_one_thread(monkeypatch, dtype, soft, threads, sparse):
    """A large X (CSR or dense) is split into row blocks, one per thread, on which
    the whole gradient pass and Hessian product run: X W^T equals the one-thread
    product (bitwise for CSR: each row is computed alike), the loss, X^T G and the
    Hessian products to rounding (partial sums over the blocks, added in block
    order: repeatable)."""
    import softmaxkit.losses._linear as lin_mod

    monkeypatch.setattr(lin_mod, "_SPARSE_PARALLEL_NNZ", 50)
    monkeypatch.setattr(lin_mod, "_DENSE_PARALLEL_SIZE", 500)
    X, Y, s, coef = _problem(5, n=101, d=9, soft=soft, dtype=dtype)
    if sparse:
        X[np.abs(X) < 1.5] = 0
        X = sp.csr_matrix(X)
        assert X.nnz >= 50
    one, many = LinearSoftmaxLoss(4), LinearSoftmaxLoss(4)
    many._threads = threads
    calls = []
    orig = lin_mod._row_blocks

    def spy(X, parts):
        blocks = orig(X, parts)
        calls.append(len(blocks))
        return blocks

    monkeypatch.setattr(lin_mod, "_row_blocks", spy)
    v = np.random.default_rng(6).standard_normal(coef.size)
    f1, g1, h1 = one.gradient_hessp(coef, X, Y, s)
    assert calls == []
    fm, gm, hm = many.gradient_hessp(coef, X, Y, s)
    assert calls and all(c == threads for c in calls)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert fm == pytest.approx(f1, rel=1e-13)  # per-row losses summed by blocks
    np.testing.assert_allclose(gm, g1, rtol=rtol, atol=rtol * np.abs(g1).max())
    hv1, hvm = h1(v), hm(v)
    np.testing.assert_allclose(hvm, hv1, rtol=rtol, atol=rtol * np.abs(hv1).max())
    np.testing.assert_array_equal(hm(v), hvm)  # repeatable
    B = coef.reshape(4, 10)[:, :9].T.astype(dtype)
    np.testing.assert_allclose(lin_mod._dot(X, B, threads), lin_mod._dot(X, B),
                               rtol=0 if sparse else rtol, atol=0 if sparse else rtol)


def test_products_stay_in_one_thread_below_the_size_or_with_one_thread(monkeypatch):
    import softmaxkit.losses._linear as lin_mod

    X = np.ones((10, 3))
    assert not lin_mod._parallel(X, 2)  # below _DENSE_PARALLEL_SIZE
    monkeypatch.setattr(lin_mod, "_DENSE_PARALLEL_SIZE", 1)
    assert lin_mod._parallel(X, 2) and not lin_mod._parallel(X, 1)
    assert not lin_mod._parallel(X, 11)  # fewer rows than threads
    assert not lin_mod._parallel(sp.csc_matrix(X), 2)  # CSC: SciPy's own product


def test_float32_stays_float32_and_agrees_with_float64():
    X, Y, s, coef = _problem(5, n=200, dtype=np.float32)
    lin = LinearSoftmaxLoss(4)
    f32, g32, hv32 = lin.gradient_hessp(coef, X, Y, s)
    f64, g64, hv64 = lin.gradient_hessp(coef, X.astype(np.float64), Y, s.astype(np.float64))
    assert g32.dtype == np.float32
    v = np.ones(coef.size)
    assert hv32(v).dtype == np.float32
    assert f32 == pytest.approx(f64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(hv32(v), hv64(v), rtol=1e-4, atol=1e-3)


def test_one_hot_targets_equal_labels_and_unit_weights_equal_none():
    X, Y, _, coef = _problem(6, weighted=False)
    lin = LinearSoftmaxLoss(4)
    onehot = np.eye(4)[Y]
    f1, g1 = lin.loss_gradient(coef, X, Y)
    f2, g2 = lin.loss_gradient(coef, X, onehot, np.ones(len(Y)))
    assert f1 == pytest.approx(f2, rel=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-13)


def test_gradient_matches_finite_differences_at_large_logits():
    X, Y, s, coef = _problem(7)
    coef = coef * 30  # saturated probabilities: no overflow, exact gradient
    lin = LinearSoftmaxLoss(4)
    f, g = lin.loss_gradient(coef, X, Y, s)
    assert np.isfinite(f) and np.all(np.isfinite(g))
    e = np.zeros(coef.size)
    for j in (0, 7, 19):
        e[j] = 1e-6
        fd = (lin.loss(coef + e, X, Y, s) - lin.loss(coef - e, X, Y, s)) / 2e-6
        e[j] = 0
        assert fd == pytest.approx(g[j], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("soft", [False, True])
def test_plain_cross_entropy_of_the_fit_passes_matches_mpmath(dtype, soft):
    """The fit's small-problem cross-entropy (plain max-shifted formula) against
    mpmath, with -inf logits; non-finite maxima go to the reference."""
    mpmath = pytest.importorskip("mpmath")
    from softmaxkit.losses._cross_entropy import _ce_rows
    from softmaxkit.losses._linear import _ce_plain

    rng = np.random.default_rng(3)
    z = (rng.standard_normal((30, 6)) * rng.uniform(0.1, 40, (30, 1))).astype(dtype)
    z[2, 1] = -np.inf
    Y = (rng.dirichlet(np.ones(6), 30).astype(dtype) if soft
         else rng.integers(0, 6, 30).astype(np.intp))
    if soft:
        Y[2, 1] = 0
    loss, grad = _ce_plain(z, Y)
    assert loss.dtype == dtype and grad.dtype == dtype
    mpmath.mp.dps = 40
    for i in range(30):
        zi = [mpmath.mpf(float(v)) for v in z[i]]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in zi))
        a = ([mpmath.mpf(1) if k == Y[i] else mpmath.mpf(0) for k in range(6)] if not soft
             else [mpmath.mpf(float(v)) for v in Y[i]])
        want = mpmath.fsum(a[k] * (lse - zi[k]) for k in range(6) if a[k] != 0)
        gwant = [float(mpmath.fsum(a) * mpmath.exp(zi[k] - lse) - a[k]) for k in range(6)]
        rtol = 1e-6 if dtype == np.float32 else 1e-13
        assert float(loss[i]) == pytest.approx(float(want), rel=rtol, abs=rtol)
        np.testing.assert_allclose(grad[i], gwant, rtol=rtol, atol=rtol)
    # agrees with the compensated reference it stands in for
    ref_loss, _, ref_grad = _ce_rows(z, Y, None, None, 0.0, True)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol)
    np.testing.assert_allclose(grad, ref_grad, rtol=rtol, atol=rtol)
    for bad in (np.inf, np.nan):
        zb = z.copy()
        zb[4, 0] = bad
        assert _ce_plain(zb, Y) is None


def test_bad_input():
    X, Y, s, coef = _problem(8)
    lin = LinearSoftmaxLoss(4)
    with pytest.raises(ValueError, match="n_classes"):
        LinearSoftmaxLoss(1)
    with pytest.raises(ValueError, match="coef"):
        lin.loss(coef[:-1], X, Y)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        lin.loss(coef, X, np.full(len(Y), 4))
    with pytest.raises(ValueError, match="probability"):
        lin.loss(coef, X, np.full((len(Y), 4), 0.5))
    with pytest.raises(ValueError, match="sample_weight"):
        lin.loss(coef, X, Y, np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        lin.loss(coef, X[0], Y)


@pytest.mark.parametrize("sparse", [False, True])
def test_complex_or_text_X_is_refused_not_cast(sparse):
    """Complex X lost its imaginary part (a ComplexWarning and the loss of the real
    part) and text X was parsed; both are TypeErrors, as in cross_entropy."""
    X, Y, s, coef = _problem(8)
    lin = LinearSoftmaxLoss(4)
    Xc = X + 1j * X
    with pytest.raises(TypeError, match="X of LinearSoftmaxLoss must be real"):
        lin.loss(coef, sp.csr_matrix(Xc) if sparse else Xc, Y)
    if not sparse:
        with pytest.raises(TypeError, match="X of LinearSoftmaxLoss"):
            lin.loss(coef, X.astype(str), Y)


def test_float16_X_is_computed_in_float32():
    X, Y, s, coef = _problem(8)
    lin = LinearSoftmaxLoss(4)
    f16, g16 = lin.loss_gradient(coef, X.astype(np.float16), Y)
    f32, g32 = lin.loss_gradient(coef, X.astype(np.float16).astype(np.float32), Y)
    assert g16.dtype == np.float32
    assert f16 == f32 and np.array_equal(g16, g32)


def test_non_finite_sample_weight_and_wrong_size_v_are_clear_errors():
    X, Y, s, coef = _problem(8)
    lin = LinearSoftmaxLoss(4)
    for bad in (np.nan, np.inf):
        w = np.ones(len(Y))
        w[2] = bad
        with pytest.raises(ValueError, match="sample_weight of LinearSoftmaxLoss must be "
                                             "finite; got .* at index 2"):
            lin.loss(coef, X, Y, w)
    with pytest.raises(ValueError, match=f"v must have {coef.size} entries"):
        lin.hessp(coef, X, Y, None, np.zeros(coef.size - 1))
    _, _, hv = lin.gradient_hessp(coef, X, Y)
    with pytest.raises(ValueError, match=f"v must have {coef.size} entries"):
        hv(np.zeros(coef.size + 1))


def test_soft_targets_use_the_estimators_row_sum_rule():
    """Rows within 1e-6 of 1 (float64) pass, rows 5e-6 off no longer do (the old
    allclose(atol=1e-5) took them); float32 rows get 1e-4."""
    X, Y, s, coef = _problem(8)
    lin = LinearSoftmaxLoss(4)
    P = np.full((len(Y), 4), 0.25)
    P[0] *= 1 + 5e-6
    with pytest.raises(ValueError, match="summing to 1"):
        lin.loss(coef, X, P)
    lin.loss(coef, X.astype(np.float32), P.astype(np.float32))
    # the rule follows the targets' storage too (as cross_entropy's): float32
    # probabilities 3e-6 off are accepted with float64 X
    P32 = np.full((len(Y), 4), 0.25, dtype=np.float32)
    P32[0] *= np.float32(1 + 3e-6)
    lin.loss(coef, X, P32)
    P[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        lin.loss(coef, X, P)


# ----------------------------------------------------------- blocked (large n * K) path
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_blocked_path_equals_whole_logits(monkeypatch, sparse, soft, fit_intercept):
    from softmaxkit.losses import _linear

    X, Y, s, coef = _problem(11, n=97, soft=soft)
    K, d = 4, X.shape[1]
    coef = coef[: K * (d + fit_intercept)]
    if sparse:
        X[np.abs(X) < 1.0] = 0
        X = sp.csr_matrix(X)
    v = np.random.default_rng(12).standard_normal(coef.size)
    lin = LinearSoftmaxLoss(K, fit_intercept)
    f0, g0, hv0 = lin.gradient_hessp(coef, X, Y, s)
    h0 = hv0(v)
    l0 = lin.loss(coef, X, Y, s)
    # 10 rows of float64 logits per block: 10 blocks, the last one short
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 10 * K * 8)
    assert lin._block_rows(X) == 10
    f1, g1, hv1 = lin.gradient_hessp(coef, X, Y, s)
    assert f1 == pytest.approx(f0, rel=1e-13)
    assert lin.loss(coef, X, Y, s) == pytest.approx(l0, rel=1e-13)
    np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hv1(v), h0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.hessp(coef, X, Y, s, v), h0, rtol=1e-12, atol=1e-12)
    # the diagonal and the explicit Hessian of the blocked state agree too
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 1 << 40)
    st0 = lin._state_at(coef, X, Y, s)
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 10 * K * 8)
    st1 = lin._state_at(coef, X, Y, s)
    assert isinstance(st1, _linear._BlockedState)
    Xsq = X.multiply(X).tocsr() if sparse else X * X
    np.testing.assert_allclose(lin._hess_diag(st1, Xsq, X), lin._hess_diag(st0, Xsq),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin._hessian(st1, X), lin._hessian(st0, X), rtol=1e-11,
                               atol=1e-11)
    np.testing.assert_allclose(lin._class_hessian(st1, X), lin._class_hessian(st0, X),
                               rtol=1e-12, atol=1e-12)
    # the explicit Hessian in row chunks of 7 (blocked state: chunks within blocks)
    H0 = lin._hessian(st0, X)
    monkeypatch.setattr(_linear, "_HESSIAN_CHUNK", 7 * K * (X.shape[1] + 1))
    for state in (st0, st1):
        np.testing.assert_allclose(lin._hessian(state, X), H0, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_class_blocked_gradient_for_very_many_classes(monkeypatch, sparse, soft):
    """When even a few rows over all K classes exceed the fused path's block budget,
    loss and gradient go through its class-blocked path (with its own row count)
    and still equal the whole-logits computation."""
    from softmaxkit.losses import _fused, _linear

    X, Y, s, coef = _problem(13, n=70, K=7, soft=soft)
    K = 7
    if sparse:
        X[np.abs(X) < 1.0] = 0
        X = sp.csr_matrix(X)
    lin = LinearSoftmaxLoss(K, True)
    f0, g0 = lin.loss_gradient(coef, X, Y, s)
    seen = []
    orig = _fused._class_pass

    def spy(*args):
        seen.append(args[-2])  # rows per block
        return orig(*args)

    monkeypatch.setattr(_fused, "_class_pass", spy)
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 10 * K * 8)
    monkeypatch.setattr(_fused, "_MAX_BLOCK_BYTES", 3 * K * 8)  # < 64 rows x K
    monkeypatch.setattr(_fused, "_CLASS_BLOCK_BYTES", 16 * 3 * 8)  # 3 classes x 16 rows
    monkeypatch.setattr(_fused, "_CLASS_ROWS", 16)
    f1, g1 = lin.loss_gradient(coef, X, Y, s)
    assert lin.loss(coef, X, Y, s) == pytest.approx(f0, rel=1e-13)
    assert seen and seen[0] == 16
    assert f1 == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-12)


def test_blocked_path_bounds_peak_memory(monkeypatch):
    import tracemalloc

    from softmaxkit.losses import _linear

    n, d, K = 12_000, 8, 500
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n).astype(np.intp)
    coef = rng.standard_normal(K * (d + 1)) * 0.1
    v = rng.standard_normal(coef.size)
    logits_bytes = n * K * 8  # 48 MB
    lin = LinearSoftmaxLoss(K)
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 1 << 20)  # 262 rows of logits
    lin.loss_gradient(coef[:], X[:300], y[:300])  # compile / warm up outside the trace
    tracemalloc.start()
    try:
        f, g = lin.loss_gradient(coef, X, y)
        _, peak_grad = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        hv = lin.hessp(coef, X, y, None, v)
        _, peak_hvp = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(f) and g.shape == coef.shape and hv.shape == coef.shape
    assert peak_grad < logits_bytes / 8
    assert peak_hvp < logits_bytes / 8
    # and the oracle: the same numbers as the whole-logits path
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 1 << 40)
    f0, g0 = lin.loss_gradient(coef, X, y)
    assert f == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g, g0, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(hv, lin.hessp(coef, X, y, None, v), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_class_blocks_exact_with_every_row_and_drawn_with_fewer(fit_intercept, weighted):
    """``_class_blocks`` with ``rows >= n`` is the exact per-class Hessian blocks (an
    einsum over the rows; float32 X computed in float64 as asked); with fewer rows
    it draws by weight: every class's total weight is kept exactly (the intercept
    corner), and the threaded result equals the one-thread result."""
    rng = np.random.default_rng(21)
    n, d, K = 500, 4, 3
    X = rng.standard_normal((n, d)).astype(np.float32)
    s = rng.uniform(0.0, 2.0, n) if weighted else None
    P = rng.dirichlet(np.ones(K) * 0.5, n)
    loss = LinearSoftmaxLoss(K, fit_intercept=fit_intercept)
    Xt = np.hstack([X.astype(np.float64), np.ones((n, 1))])[:, :d + int(fit_intercept)]
    w = P * (1 - P) * (1.0 if s is None else s[:, None])
    exact = np.einsum("ik,ia,ib->kab", w, Xt, Xt)
    np.testing.assert_allclose(loss._class_blocks(P, X, s, n, np.float64), exact, rtol=1e-12,
                               atol=1e-12 * np.abs(exact).max())
    drawn = loss._class_blocks(P, X, s, 200, np.float64)
    if fit_intercept:
        np.testing.assert_allclose(drawn[:, d, d], w.sum(axis=0), rtol=1e-12)
    err = np.linalg.norm(drawn - exact, axis=(1, 2)) / np.linalg.norm(exact, axis=(1, 2))
    assert 0 < err.max() < 0.3
    loss._threads = 2
    np.testing.assert_array_equal(loss._class_blocks(P, X, s, 200, np.float64), drawn)
    if weighted:   # rows of weight 0 are never drawn: NaN there changes nothing
        s0 = s.copy()
        s0[::5] = 0.0
        Xn = X.copy()
        Xn[::5] = np.nan
        np.testing.assert_array_equal(loss._class_blocks(P, Xn, s0, 200, np.float64),
                                      loss._class_blocks(P, X, s0, 200, np.float64))


def test_class_blocks_drawn_rows_do_not_alias_with_a_regular_row_order():
    """Equal weights (every row equally unsure, as at the start point) and a feature
    present on every 4th row: evenly spaced points would draw rows 4j + 2 only and
    miss it (a singular block); the jittered points estimate it."""
    n, K, rows = 4000, 3, 1000
    X = np.zeros((n, 2))
    X[::4, 0] = 1.0
    X[:, 1] = np.random.default_rng(3).standard_normal(n)
    P = np.full((n, K), 1.0 / K)
    loss = LinearSoftmaxLoss(K)
    exact = loss._class_blocks(P, X, None, n, np.float64)
    drawn = loss._class_blocks(P, X, None, rows, np.float64)
    rel = np.abs(drawn[:, 0, 0] - exact[:, 0, 0]) / exact[:, 0, 0]
    assert rel.max() < 0.25
    assert np.all(np.linalg.eigvalsh(drawn) > 0)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_float64_pass_from_float32_row_blocks_equals_the_float64_pass(
        monkeypatch, fmt, soft, weighted, fit_intercept):
    """float32 X's float64 gradient, cast one row block at a time (here 16-24
    blocks of at most 30 entries, on 1 and 3 threads), equals the pass on a float64
    copy of X; so do the float64 Hessian products on cast blocks from a float64
    state, and the float32 ones from the default float32 state to float32
    rounding.  With the probabilities past _MAX_LOGIT_BYTES the pass runs the fused
    kernel on each cast block and the state recomputes them by blocks."""
    from softmaxkit.losses import _linear

    monkeypatch.setattr(_linear, "_CAST_BLOCK_ENTRIES", 30)
    X, Y, s, coef = _problem(11, n=111, d=6, soft=soft, weighted=weighted,
                             dtype=np.float32)
    if not fit_intercept:
        coef = coef.reshape(4, 7)[:, :6].ravel()
    if fmt != "dense":
        X[np.abs(X) < 1.0] = 0
        X = getattr(sp, f"{fmt}_matrix")(X)
    X64 = X.astype(np.float64)
    Y64 = Y.astype(np.float64) if soft else Y
    s64 = None if s is None else s.astype(np.float64)
    ref = LinearSoftmaxLoss(4, fit_intercept)
    f0, g0, state0 = ref._loss_grad_state(coef, X64, Y64, s64)
    v = np.random.default_rng(12).standard_normal(coef.size)
    hv0 = ref._hvp(state0, X64, v)
    for threads in (1, 3):
        lin = LinearSoftmaxLoss(4, fit_intercept)
        lin._threads = threads
        f, g, state = lin._loss_grad_state_cast(coef, X, Y, s, state_dtype=np.float64)
        assert g.dtype == np.float64
        assert f == pytest.approx(f0, rel=1e-13)
        np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-12 * np.abs(g0).max())
        np.testing.assert_allclose(lin._hvp_cast(state, X, v), hv0, rtol=1e-12,
                                   atol=1e-12 * np.abs(hv0).max())
        # partial sums added in block order: repeatable
        np.testing.assert_array_equal(
            lin._loss_grad_state_cast(coef, X, Y, s, state_dtype=np.float64)[1], g)
        f, g, state = lin._loss_grad_state_cast(coef, X, Y, s)    # float32 state
        assert state.probs().dtype == np.float32
        np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-12 * np.abs(g0).max())
        np.testing.assert_allclose(lin._hvp(state, X, v), hv0, rtol=1e-4,
                                   atol=1e-5 * np.abs(hv0).max())
    monkeypatch.setattr(_linear, "_MAX_LOGIT_BYTES", 111 * 4 * 4 - 1)
    f, g, state = LinearSoftmaxLoss(4, fit_intercept)._loss_grad_state_cast(coef, X, Y, s)
    assert isinstance(state, _linear._BlockedState)
    assert f == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g, g0, rtol=1e-11, atol=1e-11 * np.abs(g0).max())
    hv = LinearSoftmaxLoss(4, fit_intercept)._hvp(state, X, v)
    np.testing.assert_allclose(hv, hv0, rtol=1e-4, atol=1e-5 * np.abs(hv0).max())


def test_class_hessian_keeps_its_null_vector_with_float32_probabilities():
    """B = sum_i s_i (diag(p_i) - p_i p_i^T) has B 1 = 0; from float32 probabilities
    (rows summing to 1 only to float32 rounding) the diagonal is taken as minus the
    off-diagonal row sum, so B 1 = 0 to float64 rounding, and B is the float64 B to
    float32 accuracy (a float32 B off by 1e-7 along 1 blew the Kronecker
    preconditioner up at weak penalties)."""
    from softmaxkit.losses._linear import _ProbState

    rng = np.random.default_rng(3)
    n, K = 50_000, 3
    Z = rng.standard_normal((n, K)) * 6
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = rng.integers(0, K, n)
    s = rng.uniform(0.5, 2.0, n)
    lin = LinearSoftmaxLoss(K)
    X = np.zeros((n, 1))
    B64 = lin._class_hessian(_ProbState(P - np.eye(K)[y], y, s), X)
    ref = np.diag((P * s[:, None]).sum(0)) - P.T @ (P * s[:, None])
    np.testing.assert_allclose(B64, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    P32 = P.astype(np.float32)
    B32 = lin._class_hessian(_ProbState(P32 - np.eye(K, dtype=np.float32)[y], y,
                                        s.astype(np.float32)), X.astype(np.float32))
    assert np.abs(B32.sum(axis=1)).max() <= 1e-12 * np.abs(B32).max()
    np.testing.assert_allclose(B32, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_csr_row_blocks_are_views_and_leave_x_alone(monkeypatch):
    """The CSR row blocks share X's arrays (SciPy's constructor copied any slice of
    less than half of them, so every threaded pass copied X), and passes on them
    leave an X with unsorted indices as it was, with the sorted X's results."""
    from softmaxkit.losses import _linear
    from softmaxkit.losses._linear import _row_blocks

    monkeypatch.setattr(_linear, "_SPARSE_PARALLEL_NNZ", 50)   # threaded passes
    X = sp.random(400, 30, density=0.2, format="csr", random_state=4)
    for i in range(X.shape[0]):          # unsorted indices within every row
        a, b = X.indptr[i], X.indptr[i + 1]
        X.indices[a:b] = X.indices[a:b][::-1].copy()
        X.data[a:b] = X.data[a:b][::-1].copy()
    X.has_sorted_indices = False
    before = X.indices.copy(), X.data.copy()
    V = np.random.default_rng(5).standard_normal((30, 4))
    blocks = _row_blocks(X, 3)
    assert all(np.shares_memory(Xb.data, X.data) and np.shares_memory(Xb.indices, X.indices)
               for _, _, Xb in blocks)
    np.testing.assert_allclose(np.vstack([Xb @ V for _, _, Xb in blocks]), X.toarray() @ V,
                               rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(6).integers(0, 4, 400)
    coef = np.random.default_rng(7).standard_normal(4 * 31)
    lin = LinearSoftmaxLoss(4)
    lin._threads = 3
    f, g, h = lin.gradient_hessp(coef, X, y)
    h(coef)
    np.testing.assert_array_equal(X.indices, before[0])
    np.testing.assert_array_equal(X.data, before[1])
    Xs = X.copy()
    Xs.sort_indices()
    f1, g1, h1 = LinearSoftmaxLoss(4).gradient_hessp(coef, Xs, y)
    assert f == pytest.approx(f1, rel=1e-12)
    np.testing.assert_allclose(g, g1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(h(coef), h1(coef), rtol=1e-10, atol=1e-10)
