"""linear_cross_entropy: cross_entropy(X @ W.T + b) without the N x K logits."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import softmaxkit as smk
from softmaxkit.losses._cross_entropy import _ce_rows
from softmaxkit.losses._fused import _linear_ce_sum

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _problem(dt, N=150, d=12, K=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d)).astype(dt)
    W = rng.standard_normal((K, d)).astype(dt)
    b = rng.standard_normal(K).astype(dt)
    y = rng.integers(0, K, N)
    P = rng.dirichlet(np.ones(K), N).astype(dt)
    w = rng.uniform(0.2, 2.0, K).astype(dt)
    return X, W, b, y, P, w


OPTIONS = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight="w"),
    dict(weight="w", ignore_index=-100, label_smoothing=0.2),
    dict(label_smoothing=0.1, reduction="sum"),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("chunk", [None, 7])
def test_equals_cross_entropy_of_the_logits(dt, opts, kind, chunk, backend):
    X, W, b, y, P, w = _problem(dt)
    opts = dict(opts)
    if opts.get("weight") == "w":
        opts["weight"] = w
    if kind == "probs":
        if "ignore_index" in opts:
            return  # labels only (a ValueError, tested below)
        target = P
    else:
        target = y.copy()
        if "ignore_index" in opts:
            target[::5] = -100
    red = opts.pop("reduction", "mean")
    loss, (dX, dW, db) = smk.linear_cross_entropy(
        X, W, target, bias=b, reduction=red, return_grad=True, chunk_size=chunk, **opts)
    Z = X @ W.T + b
    ref = smk.cross_entropy(Z, target, reduction=red, **opts)
    _, G = smk.cross_entropy_and_grad(Z, target, reduction="sum" if red == "none" else red,
                                      **opts)
    assert np.asarray(loss).dtype == dt and dX.dtype == dt and dW.dtype == dt
    np.testing.assert_allclose(loss, ref, **TOL[dt])
    np.testing.assert_allclose(dX, G @ W, **TOL[dt])
    np.testing.assert_allclose(dW, G.T @ X, **TOL[dt])
    np.testing.assert_allclose(db, G.sum(axis=0), **TOL[dt])
    loss_only = smk.linear_cross_entropy(X, W, target, bias=b, reduction=red,
                                         chunk_size=chunk, **opts)
    np.testing.assert_allclose(loss_only, loss, rtol=1e-6)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_vs_torch(dt, kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, W, b, y, P, w = _problem(dt, N=200, d=16, K=30, seed=3)
    target = y if kind == "labels" else P
    kw = dict(weight=w, label_smoothing=0.05)
    loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, target, bias=b, return_grad=True,
                                                  chunk_size=64, **kw)
    Xt = torch.tensor(X, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    lt = F.cross_entropy(Xt @ Wt.T + bt, torch.tensor(target),
                         weight=torch.tensor(w), label_smoothing=0.05)
    lt.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


def test_no_bias_and_all_ignored():
    X, W, b, y, P, w = _problem(np.float64, N=20)
    loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, y, return_grad=True)
    assert db is None
    np.testing.assert_allclose(loss, smk.cross_entropy(X @ W.T, y), rtol=1e-13)
    yi = np.full(20, -1)
    loss, (dX, dW, _) = smk.linear_cross_entropy(X, W, yi, ignore_index=-1, return_grad=True)
    assert loss == 0.0 and not dX.any() and not dW.any()


def test_peak_memory_far_below_logits(monkeypatch):
    """Peak extra memory is a few row blocks, not the N x K logits (a
    property of the algorithm; measured with tracemalloc)."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    rng = np.random.default_rng(0)
    N, d, K = 4096, 32, 2048
    X = rng.standard_normal((N, d)).astype(np.float32)
    W = rng.standard_normal((K, d)).astype(np.float32) * 0.1
    y = rng.integers(0, K, N)
    smk.linear_cross_entropy(X, W, y, return_grad=True, chunk_size=32)  # warm-up
    logits_bytes = N * K * 4
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, y, return_grad=True, chunk_size=32)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    extra = peak - dX.nbytes - dW.nbytes
    block_bytes = 32 * K * 4
    # two blocks (logits and their gradient) plus O(N) per-row losses
    assert extra <= 3 * block_bytes + 8 * N, (extra, block_bytes)
    assert extra <= logits_bytes / 32, (extra, logits_bytes)
    # and the values are those of the unfused computation
    np.testing.assert_allclose(loss, smk.cross_entropy(X @ W.T, y), rtol=1e-5)


def test_linear_ce_sum_with_sample_weights_dense_and_sparse(backend):
    X, W, b, y, P, w = _problem(np.float64, N=60, d=10, K=5)
    X[np.abs(X) < 0.8] = 0
    s = np.random.default_rng(1).uniform(0, 3, 60)
    Z = X @ W.T + b
    loss_rows = smk.cross_entropy(Z, y, reduction="none")
    # gradient of sum_i s_i CE_i via the per-row core
    Zc = np.ascontiguousarray(Z)

    _, _, Gr = _ce_rows(Zc, y.astype(np.intp))
    Gs = Gr * s[:, None]
    for Xin in (X, sp.csr_matrix(X), sp.csc_matrix(X)):
        for target in (y.astype(np.intp), P):
            total, dW, db = _linear_ce_sum(Xin, W, b, target, s, True, chunk_size=16)
            if target.ndim == 1:
                np.testing.assert_allclose(total, np.sum(s * loss_rows), rtol=1e-12)
                np.testing.assert_allclose(dW, Gs.T @ X, rtol=1e-11, atol=1e-13)
                np.testing.assert_allclose(db, Gs.sum(axis=0), rtol=1e-11, atol=1e-13)
            else:
                ref = np.sum(s * smk.cross_entropy(Z, P, reduction="none"))
                np.testing.assert_allclose(total, ref, rtol=1e-12)
        total, dW, db = _linear_ce_sum(Xin, W, None, y.astype(np.intp), None, False)
        np.testing.assert_allclose(total, np.sum(smk.cross_entropy(X @ W.T, y, reduction="none")),
                                   rtol=1e-12)
        assert dW is None and db is None


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(X=np.zeros(3)), ValueError, "X of linear_cross_entropy must be a 2-D array"),
    (dict(W=np.zeros((4, 5))), ValueError, "W of linear_cross_entropy must have shape"),
    (dict(bias=np.zeros(3)), ValueError, "bias of linear_cross_entropy must have shape"),
    (dict(target=np.array([0, 1, 9])), ValueError, "outside the class range"),
    (dict(target=np.zeros(4, dtype=int)), ValueError, "must have shape"),
    (dict(target=np.full((3, 4), 0.5)), ValueError, "sum to 1"),
    (dict(target=np.full((3, 4), 0.25), ignore_index=1), ValueError, "class labels only"),
    (dict(reduction="avg"), ValueError, "The 'reduction' parameter of linear_cross_entropy"),
    (dict(label_smoothing=2.0), ValueError, "The 'label_smoothing' parameter"),
    (dict(chunk_size=0), ValueError, "The 'chunk_size' parameter of linear_cross_entropy"),
    (dict(weight=np.ones(3)), ValueError, "weight"),
    (dict(X=np.zeros((3, 2), dtype=complex)), TypeError, "real"),
    (dict(target=np.array(["a", "b", "c"])), TypeError, "target of linear_cross_entropy"),
])
def test_validation_messages(kwargs, exc, match):
    args = dict(X=np.zeros((3, 2)), W=np.zeros((4, 2)), target=np.array([0, 1, 3]))
    args.update(kwargs)
    X, W, target = args.pop("X"), args.pop("W"), args.pop("target")
    with pytest.raises(exc, match=match):
        smk.linear_cross_entropy(X, W, target, **args)


@pytest.fixture
def threaded(monkeypatch):
    """Force the multi-threaded block loop on small problems (3 threads)."""
    import softmaxkit.losses._fused as fused

    monkeypatch.setattr(fused, "_SMALL_GEMM", 0)
    monkeypatch.setattr(fused, "_n_threads", lambda: 3)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("mode", ["numpy", "numba"])
def test_threaded_blocks_match_torch(dt, kind, mode, threaded, monkeypatch):
    """Blocks taken by several threads (the row core serial in each, dW and
    dbias summed in block order) give PyTorch's loss and gradients, with the
    NumPy row core and with the compiled one (in place, serial)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", mode)
    F = torch.nn.functional
    X, W, b, y, P, w = _problem(dt, N=203, d=16, K=30, seed=5)
    target = y.copy() if kind == "labels" else P
    kw = dict(weight=w, label_smoothing=0.05)
    tkw = dict(kw)
    if kind == "labels":
        target[::7] = -100
        kw["ignore_index"] = tkw["ignore_index"] = -100
    loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, target, bias=b, return_grad=True,
                                                  chunk_size=9, **kw)
    Xt = torch.tensor(X, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    lt = F.cross_entropy(Xt @ Wt.T + bt, torch.tensor(target), weight=torch.tensor(w),
                         label_smoothing=0.05, **{k: v for k, v in tkw.items()
                                                  if k == "ignore_index"})
    lt.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


def test_threaded_linear_ce_sum_with_sample_weights(threaded):
    X, W, b, y, P, w = _problem(np.float64, N=101, d=10, K=7, seed=2)
    s = np.random.default_rng(4).uniform(0, 3, 101)
    Z = X @ W.T + b
    _, _, Gr = _ce_rows(np.ascontiguousarray(Z), y.astype(np.intp))
    Gs = Gr * s[:, None]
    total, dW, db = _linear_ce_sum(X, W, b, y.astype(np.intp), s, True, chunk_size=8)
    np.testing.assert_allclose(total, np.sum(s * smk.cross_entropy(Z, y, reduction="none")),
                               rtol=1e-12)
    np.testing.assert_allclose(dW, Gs.T @ X, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(db, Gs.sum(axis=0), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("fail_at", [1, 4])
def test_threaded_error_in_a_worker_is_raised(threaded, monkeypatch, fail_at):
    """An exception in one block's worker reaches the caller, and the threads
    waiting for their turn to add to dW are released (no hang)."""
    import softmaxkit.losses._fused as fused

    real = fused._ce_block
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("row core failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "_ce_block", boom)
    X, W, b, y, P, w = _problem(np.float64, N=50)
    with pytest.raises(RuntimeError, match="row core failed"):
        smk.linear_cross_entropy(X, W, y, return_grad=True, chunk_size=5)


def test_threaded_results_are_bitwise_reproducible(threaded, monkeypatch):
    """dW and dbias are summed in block order whichever thread ran a block."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    X, W, b, y, P, w = _problem(np.float32, N=400, d=24, K=40, seed=7)
    runs = [smk.linear_cross_entropy(X, W, y, bias=b, return_grad=True, chunk_size=3)
            for _ in range(4)]
    for loss, (dX, dW, db) in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(dX, runs[0][1][0])
        np.testing.assert_array_equal(dW, runs[0][1][1])
        np.testing.assert_array_equal(db, runs[0][1][2])
