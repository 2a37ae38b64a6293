"""linear_cross_entropy: cross_entropy(X @ W.T + b) without the N x K logits."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # sparse X: not a 0-d object array's "real numeric array" message
    (dict(X=sp.csr_matrix(np.zeros((3, 2)))), TypeError, "must be a dense array; got a "
     "scipy.sparse csr_matrix.  For sparse X, LinearSoftmaxLoss"),
    (dict(return_grad="no"), TypeError, "The 'return_grad' parameter of linear_cross_entropy "
     "must be a bool"),
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


# --------------------------------------------------------------------------- class blocks


def _lce(X, W, target, **kw):
    return smk.linear_cross_entropy(X, W, target, return_grad=True, **kw)


def _close(got, ref, **tol):
    """Loss and gradients of two ``linear_cross_entropy`` results."""
    (l1, g1), (l0, g0) = got, ref
    np.testing.assert_allclose(l1, l0, **tol)
    for a, b in zip(g1, g0, strict=True):
        if b is None:
            assert a is None
        else:
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, **tol)


# gradients: float32 sums over K of products, as in the row path
CB_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-15)}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("kc", [1, 4, 9, 50])
def test_class_blocks_equal_unblocked(dt, opts, kind, kc):
    """Blocks of kc classes (1, not dividing K = 9, all, more than K), with
    and without bias, give the row path's loss and gradients and the
    reference cross_entropy of the explicit logits."""
    X, W, b, y, P, w = _problem(dt)
    opts = dict(opts)
    if opts.get("weight") == "w":
        opts["weight"] = w
    if kind == "probs":
        if "ignore_index" in opts:
            return
        target = P
    else:
        target = y.copy()
        if "ignore_index" in opts:
            target[::5] = -100
    red = opts.get("reduction", "mean")
    for bias in (b, None):
        got = _lce(X, W, target, bias=bias, class_chunk_size=kc, chunk_size=16, **opts)
        ref = _lce(X, W, target, bias=bias, **opts)
        _close(got, ref, **CB_TOL[dt])
        # the loss: ~1e-6 (float32) / ~1e-13 (float64) relative, absolute for tiny losses
        ltol = (dict(rtol=2e-6, atol=5e-7) if dt == np.float32 else dict(rtol=1e-13, atol=1e-15))
        np.testing.assert_allclose(got[0], ref[0], **ltol)
        assert np.asarray(got[0]).dtype == dt
        Z = X @ W.T + (0 if bias is None else bias)
        np.testing.assert_allclose(got[0], smk.cross_entropy(Z, target, **opts), **TOL[dt])
        # the loss alone (no backward sweep)
        loss_only = smk.linear_cross_entropy(X, W, target, bias=bias, class_chunk_size=kc,
                                             **opts)
        np.testing.assert_allclose(loss_only, got[0], rtol=1e-6 if dt == np.float32 else 1e-13)
        if red == "none":
            assert got[0].shape == (X.shape[0],)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("case", [
    dict(),
    dict(weight=True),
    dict(label_smoothing=0.1),
    dict(weight=True, label_smoothing=0.2, ignore_index=-100),
    dict(reduction="sum", label_smoothing=0.05),
    dict(reduction="none", weight=True),
    dict(probs=True),
    dict(probs=True, weight=True, label_smoothing=0.1, reduction="sum"),
    dict(nobias=True, label_smoothing=0.1),
])
def test_class_blocks_vs_torch(dt, case):
    """Loss and autograd gradients of PyTorch's F.cross_entropy(X @ W.T + b)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, W, b, y, P, w = _problem(dt, N=70, d=16, K=53, seed=11)
    case = dict(case)
    probs = case.pop("probs", False)
    nobias = case.pop("nobias", False)
    target = P if probs else y.copy()
    if "ignore_index" in case:
        target[::4] = -100
    kw = dict(case)
    tkw = dict(case)
    if kw.pop("weight", False):
        kw["weight"] = w
        tkw["weight"] = torch.tensor(w)
    else:
        tkw.pop("weight", None)
    bias = None if nobias else b
    loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, target, bias=bias, return_grad=True,
                                                  class_chunk_size=6, chunk_size=32, **kw)
    Xt = torch.tensor(X, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    Z = Xt @ Wt.T if nobias else Xt @ Wt.T + bt
    lt = F.cross_entropy(Z, torch.tensor(target), **tkw)
    lt.sum().backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(loss, lt.detach().numpy(), **tol)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **tol)
    if nobias:
        assert db is None
    else:
        np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


def _bias_case(name, K):
    c = np.arange(K)
    return {
        "one -inf": np.where(c == 3, -np.inf, 0.0),
        "-inf block": np.where(c < 4, -np.inf, 0.0),
        "all -inf": np.full(K, -np.inf),
        "+inf": np.where(c == 7, np.inf, 0.0),
        "two +inf": np.where((c == 1) | (c == 8), np.inf, 0.0),
        "nan": np.where(c == 7, np.nan, 0.0),
    }[name]


@pytest.mark.parametrize("bias_case", ["one -inf", "-inf block", "all -inf", "+inf", "two +inf",
                                       "nan"])
@pytest.mark.parametrize("kind", ["labels", "probs", "ignored"])
def test_class_blocks_edge_cases_as_row_path(bias_case, kind, backend):
    """Non-finite logits (through the bias: whole classes -inf, +inf, NaN),
    zero class weights and target mass on -inf classes, ignored rows: the
    row path's values (which follow the design's edge-case table), on every
    reduction and with or without smoothing; the rows redone on their full
    logits go through the NumPy row core and the compiled one."""
    rng = np.random.default_rng(5)
    N, d, K = 13, 3, 10
    X = rng.standard_normal((N, d))
    W = rng.standard_normal((K, d))
    bias = _bias_case(bias_case, K)
    w0 = rng.uniform(0.2, 2, K)
    w0[3] = 0.0
    kw = {}
    if kind == "probs":
        target = rng.dirichlet(np.ones(K), N)
        target[:, 3] = 0.0
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, K, N)
        target[0] = 3  # a label of weight 0 (and of logit -inf in some cases)
        if kind == "ignored":
            target[1::3] = -5
            kw["ignore_index"] = -5
    for extra in (dict(), dict(weight=w0), dict(label_smoothing=0.1),
                  dict(weight=w0, label_smoothing=0.1)):
        for red in ("mean", "sum", "none"):
            for kc in (1, 3):
                args = dict(bias=bias, reduction=red, **kw, **extra)
                with np.errstate(all="raise"):  # no floating-point warnings on the path
                    got = _lce(X, W, target, class_chunk_size=kc, chunk_size=4, **args)
                ref = _lce(X, W, target, **args)
                _close(got, ref, rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(
                    got[0], smk.cross_entropy(X @ W.T + bias, target, reduction=red, **kw,
                                              **extra), rtol=1e-12)


def test_class_blocks_small_cases():
    """All rows ignored (a mean over nothing is 0 with zero gradients), one
    class (K = 1), one row, a class block of 1 and row blocks of 1."""
    X, W, b, y, P, w = _problem(np.float64, N=20, K=6)
    loss, (dX, dW, db) = _lce(X, W, np.full(20, -1), ignore_index=-1, bias=b,
                              class_chunk_size=4)
    assert loss == 0.0 and not dX.any() and not dW.any() and not db.any()
    for target in (np.zeros(20, dtype=int), np.ones((20, 1))):
        for eps in (0.0, 0.3):
            got = _lce(X, W[:1], target, bias=b[:1], class_chunk_size=1, label_smoothing=eps)
            ref = _lce(X, W[:1], target, bias=b[:1], label_smoothing=eps)
            _close(got, ref, rtol=1e-12, atol=1e-15)
            assert got[0] == 0.0  # log softmax of one class is 0
            np.testing.assert_allclose(got[1][1], 0.0, atol=1e-15)
    got = _lce(X[:1], W, y[:1], bias=b, class_chunk_size=1, chunk_size=1)
    _close(got, _lce(X[:1], W, y[:1], bias=b), rtol=1e-12, atol=1e-15)
    got = _lce(X, W, y, class_chunk_size=5, chunk_size=1, label_smoothing=0.1)
    _close(got, _lce(X, W, y, label_smoothing=0.1), rtol=1e-12, atol=1e-15)
    # all class weights 0: a mean over zero total weight is 0 with zero gradients
    loss, (dX, dW, db) = _lce(X, W, y, bias=b, weight=np.zeros(6), class_chunk_size=4)
    assert loss == 0.0 and not dX.any() and not dW.any() and not db.any()


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 30), K=st.integers(1, 25), d=st.integers(1, 5),
       kc=st.integers(1, 30), rows=st.integers(1, 35), eps=st.sampled_from([0.0, 0.15]),
       weighted=st.booleans(), probs=st.booleans(), bias=st.booleans(),
       red=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 2**16))
def test_class_blocks_match_reference_on_explicit_logits(N, K, d, kc, rows, eps, weighted,
                                                         probs, bias, red, seed):
    """Any block shapes (dividing K or not, larger than K or N): the loss and
    gradients of cross_entropy_and_grad on the explicit float64 logits."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d)) * 2
    W = rng.standard_normal((K, d))
    b = rng.standard_normal(K) if bias else None
    target = rng.dirichlet(np.ones(K), N) if probs else rng.integers(0, K, N)
    kw = dict(label_smoothing=eps)
    if weighted:
        kw["weight"] = rng.uniform(0.0, 2.0, K)
    loss, (dX, dW, db) = smk.linear_cross_entropy(
        X, W, target, bias=b, reduction=red, return_grad=True, chunk_size=rows,
        class_chunk_size=kc, **kw)
    Z = X @ W.T + (0 if b is None else b)
    ref = smk.cross_entropy(Z, target, reduction=red, **kw)
    _, G = smk.cross_entropy_and_grad(Z, target, reduction="sum" if red == "none" else red,
                                      **kw)
    np.testing.assert_allclose(loss, ref, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(dX, G @ W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dW, G.T @ X, rtol=1e-10, atol=1e-12)
    if b is None:
        assert db is None
    else:
        np.testing.assert_allclose(db, G.sum(axis=0), rtol=1e-10, atol=1e-12)


def test_class_blocks_confident_rows_float32():
    """Very confident float32 rows (losses around 1e-4) keep the loss to the
    absolute accuracy of the float32 block sums (about 1e-7 per block)."""
    rng = np.random.default_rng(3)
    N, K = 64, 40
    y = rng.integers(0, K, N)
    Z = rng.uniform(-1, 1, (N, K)).astype(np.float32)
    Z[np.arange(N), y] = 12.0
    W = np.eye(K, dtype=np.float32)  # X @ W.T == Z exactly
    exact = smk.cross_entropy(Z.astype(np.float64), y, reduction="none")
    assert 1e-5 < exact.max() < 1e-3
    got = smk.linear_cross_entropy(Z, W, y, reduction="none", class_chunk_size=7)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("mode", ["numpy", "numba"])
def test_class_blocks_threaded_match_torch_and_repeat(dt, kind, mode, threaded, monkeypatch):
    """Class blocks shared by 3 threads (dW rows disjoint, dX and the online
    logsumexp partials merged in thread order): PyTorch's values, bitwise the
    same on every run."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", mode)
    F = torch.nn.functional
    X, W, b, y, P, w = _problem(dt, N=203, d=16, K=31, seed=5)
    target = y.copy() if kind == "labels" else P
    kw = dict(weight=w, label_smoothing=0.05)
    if kind == "labels":
        target[::7] = -100
        kw["ignore_index"] = -100
    runs = [_lce(X, W, target, bias=b, class_chunk_size=4, chunk_size=40, **kw)
            for _ in range(3)]
    for loss, grads in runs[1:]:
        assert loss == runs[0][0]
        for a, c in zip(grads, runs[0][1], strict=True):
            np.testing.assert_array_equal(a, c)
    loss, (dX, dW, db) = runs[0]
    Xt = torch.tensor(X, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    lt = F.cross_entropy(Xt @ Wt.T + bt, torch.tensor(target), weight=torch.tensor(w),
                         label_smoothing=0.05,
                         **({"ignore_index": -100} if kind == "labels" else {}))
    lt.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


def test_class_blocks_threaded_error_is_raised(threaded, monkeypatch):
    import softmaxkit.losses._fused as fused

    real = fused._ClassSweep.backward
    calls = []

    def boom(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("class block failed")
        return real(self, *args)

    monkeypatch.setattr(fused._ClassSweep, "backward", boom)
    X, W, b, y, P, w = _problem(np.float64, N=50)
    with pytest.raises(RuntimeError, match="class block failed"):
        _lce(X, W, y, class_chunk_size=2, chunk_size=10)


@pytest.mark.parametrize("where", ["_push", "_logits"])
def test_class_blocks_error_inside_a_block_is_raised(threaded, monkeypatch, where):
    """An exception in one thread's class block (after it was handed out, so
    it is never merged) reaches the caller; the threads waiting to run
    ahead of it are released (no hang)."""
    import softmaxkit.losses._fused as fused

    real = getattr(fused._ClassSweep, where)
    calls = []

    def boom(self, *args):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("block failed")
        return real(self, *args)

    monkeypatch.setattr(fused._ClassSweep, where, boom)
    X, W, b, y, P, w = _problem(np.float64, N=50, K=60)
    with pytest.raises(RuntimeError, match="block failed"):
        _lce(X, W, y, class_chunk_size=1, chunk_size=25)


@pytest.mark.parametrize("threads", [False, True])
def test_class_blocks_linear_ce_sum_sparse_and_sample_weights(threads, monkeypatch):
    """The LinearSoftmaxLoss core on the class-blocked path: dense and
    sparse X, labels and probabilities, sample weights (negative ones too)."""
    if threads:
        import softmaxkit.losses._fused as fused

        monkeypatch.setattr(fused, "_SMALL_GEMM", 0)
        monkeypatch.setattr(fused, "_n_threads", lambda: 2)
    X, W, b, y, P, w = _problem(np.float64, N=61, d=10, K=11, seed=8)
    X[np.abs(X) < 0.8] = 0
    Z = X @ W.T + b
    yi = y.astype(np.intp)
    for s in (None, np.random.default_rng(1).uniform(0, 3, 61),
              np.random.default_rng(2).uniform(-1, 3, 61)):
        sw = np.ones(61) if s is None else s
        for target in (yi, P):
            loss_rows, G = smk.cross_entropy_and_grad(Z, target, reduction="none")
            loss_rows = smk.cross_entropy(Z, target, reduction="none")
            _, G = smk.cross_entropy_and_grad(Z, target, reduction="sum")
            Gs = G * sw[:, None]
            for Xin in (X, sp.csr_matrix(X)):
                total, dW, db = _linear_ce_sum(Xin, W, b, target, s, True, chunk_size=16,
                                               class_chunk_size=3)
                np.testing.assert_allclose(total, np.sum(sw * loss_rows), rtol=1e-12)
                np.testing.assert_allclose(dW, Gs.T @ X, rtol=1e-11, atol=1e-13)
                np.testing.assert_allclose(db, Gs.sum(axis=0), rtol=1e-11, atol=1e-13)
                total2, dW2, db2 = _linear_ce_sum(Xin, W, None, target, s, False,
                                                  class_chunk_size=4)
                ref = np.sum(sw * smk.cross_entropy(X @ W.T, target, reduction="none"))
                np.testing.assert_allclose(total2, ref, rtol=1e-12)
                assert dW2 is None and db2 is None


def test_class_blocks_taken_automatically_for_huge_k(monkeypatch):
    """Without class_chunk_size the class-blocked path is taken exactly when
    a 64-row block over all classes exceeds the block budget."""
    import softmaxkit.losses._fused as fused

    calls = []
    real = fused._class_pass

    def spy(*args):
        calls.append(args[-1])  # classes per block
        return real(*args)

    monkeypatch.setattr(fused, "_class_pass", spy)
    X, W, b, y, P, w = _problem(np.float32, N=100, d=8, K=40)
    ref = _lce(X, W, y, bias=b, label_smoothing=0.1)
    assert calls == []  # 64 x 40 floats fit in 64 MiB: the row path
    monkeypatch.setattr(fused, "_MAX_BLOCK_BYTES", 64 * 40 * 4 - 1)
    monkeypatch.setattr(fused, "_CLASS_BLOCK_BYTES", 100 * 8 * 4)
    got = _lce(X, W, y, bias=b, label_smoothing=0.1)
    assert calls == [8]  # blocks of all 100 rows x 8 classes
    _close(got, ref, **CB_TOL[np.float32])
    # chunk_size sets the rows per block on that path too
    calls.clear()
    got = _lce(X, W, y, bias=b, label_smoothing=0.1, chunk_size=10)
    assert calls == [40]  # 10 rows x 80 classes fit: one block of all 40
    _close(got, ref, **CB_TOL[np.float32])
    # few rows: a block of all of them fits, the row path
    calls.clear()
    _lce(X[:60], W, y[:60], bias=b)
    assert calls == []


_PEAK_SCRIPT = """
import sys, tracemalloc
import numpy as np
import softmaxkit as smk
import softmaxkit.losses._fused as fused

T = int(sys.argv[1])
fused._SMALL_GEMM = 0  # T threads for every K
fused._n_threads = lambda: T
rng = np.random.default_rng(0)
N, d, rows, kc = 1024, 16, 128, 256
for K in (4096, 16384):
    X = rng.standard_normal((N, d)).astype(np.float32)
    W = (rng.standard_normal((K, d)) * 0.1).astype(np.float32)
    b = np.zeros(K, dtype=np.float32)
    y = rng.integers(0, K, N)
    args = dict(bias=b, label_smoothing=0.1, chunk_size=rows, class_chunk_size=kc,
                return_grad=True)
    smk.linear_cross_entropy(X, W, y, **args)  # warm-up
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, y, **args)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    ref = smk.cross_entropy(X @ W.T + b, y, label_smoothing=0.1)
    # outputs; O(K) vectors: the bias in the working dtype (a copy), the float64
    # dbias accumulator (returned as float32)
    extra = peak - dX.nbytes - dW.nbytes - db.nbytes - 12 * K
    print(K, extra, abs(float(loss) - float(ref)) / abs(float(ref)))
"""


@pytest.mark.parametrize("T", [1, 2])
def test_class_blocks_peak_memory_independent_of_k(T):
    """With a fixed block of rows x classes, peak extra memory (tracemalloc,
    the returned gradients excluded) is a few blocks per thread: it does not
    grow with K, and it is far below the N x K logits.  Measured in a fresh
    process: tracemalloc counts every thread's allocations, and threads left
    by other tests (Dask's) must not count."""
    import os
    import subprocess
    import sys

    import softmaxkit.losses._fused as fused

    env = dict(os.environ, SOFTMAXKIT_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(T)], env=env,
                         capture_output=True, text=True, check=True).stdout
    N, d, rows, kc = 1024, 16, 128, 256
    block = rows * kc * 4
    extras = {}
    for line in out.split("\n"):
        if not line.strip():
            continue
        K, extra, rel = line.split()
        K, extra = int(K), int(extra)
        extras[K] = extra
        assert float(rel) <= 1e-5
        # per thread: a block of logits, a classes x d product; the merged
        # pieces waiting for their turn (at most _AHEAD per thread, each rows
        # x d plus four float64 rows vectors); O(N) per-row vectors
        ahead = fused._AHEAD * T * (rows * d * 4 + 4 * rows * 8)
        bound = T * (block + kc * d * 4) + ahead + 64 * N
        assert extra <= bound, (K, extra, bound)
        assert extra <= N * K * 4 / 32
    assert sorted(extras) == [4096, 16384]
    if T == 1:
        assert extras[16384] <= 1.1 * extras[4096], extras


def test_class_chunk_size_validation():
    X, W, y = np.zeros((3, 2)), np.zeros((4, 2)), np.array([0, 1, 3])
    with pytest.raises(ValueError, match="The 'class_chunk_size' parameter of "
                                         r"linear_cross_entropy must be an int in \[1, inf\]"):
        smk.linear_cross_entropy(X, W, y, class_chunk_size=0)
    with pytest.raises(TypeError, match="The 'class_chunk_size' parameter"):
        smk.linear_cross_entropy(X, W, y, class_chunk_size=2.5)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("path", [dict(), dict(chunk_size=3), dict(class_chunk_size=2)])
def test_zero_features_gradients(dt, kind, path, backend):
    """d = 0 is valid: the logits are the bias on every row; dX (N, 0) and dW
    (K, 0) are empty and dbias is the bias gradient of cross-entropy on them
    (was: BLAS's 'unexpected array size' from the dW product on the row path)."""
    rng = np.random.default_rng(5)
    N, K = 4, 3
    X = np.zeros((N, 0), dtype=dt)
    W = np.zeros((K, 0), dtype=dt)
    b = np.array([0.3, -1.0, 2.0], dtype=dt)
    target = np.array([0, 2, 1, 1]) if kind == "labels" else rng.dirichlet(np.ones(K), N).astype(dt)
    Z = np.broadcast_to(b, (N, K)).copy()
    for red in ["mean", "sum", "none"]:
        kw = dict(weight=np.array([1.0, 0.5, 2.0], dtype=dt), label_smoothing=0.1)
        loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, target, bias=b, reduction=red,
                                                      return_grad=True, **kw, **path)
        ref = smk.cross_entropy(Z, target, reduction=red, **kw)
        _, G = smk.cross_entropy_and_grad(Z, target, reduction="sum" if red == "none" else red,
                                          **kw)
        assert dX.shape == (N, 0) and dW.shape == (K, 0) and db.shape == (K,)
        assert dX.dtype == dW.dtype == db.dtype == dt
        np.testing.assert_allclose(loss, ref, **TOL[dt])
        np.testing.assert_allclose(db, G.sum(axis=0), **TOL[dt])
        assert np.abs(db).max() > 0.01  # a real gradient, not zeros
    # without a bias the logits are all 0: the loss is log K (labels, no options)
    if kind == "labels":
        loss, (dX, dW, db) = smk.linear_cross_entropy(X, W, target, return_grad=True, **path)
        assert db is None and dX.shape == (N, 0) and dW.shape == (K, 0)
        np.testing.assert_allclose(loss, np.log(K), **TOL[dt])


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_zero_features_bias_gradient_vs_torch(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    N, K = 5, 4
    b = rng.standard_normal(K)
    target = rng.integers(0, K, N) if kind == "labels" else rng.dirichlet(np.ones(K), N)
    loss, (dX, dW, db) = smk.linear_cross_entropy(np.zeros((N, 0)), np.zeros((K, 0)), target,
                                                  bias=b, label_smoothing=0.05,
                                                  return_grad=True)
    Xt = torch.zeros((N, 0), dtype=torch.float64, requires_grad=True)
    Wt = torch.zeros((K, 0), dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(Xt @ Wt.T + bt, torch.tensor(target),
                                           label_smoothing=0.05)
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert dX.shape == tuple(Xt.grad.shape) and dW.shape == tuple(Wt.grad.shape)


@pytest.mark.parametrize("X", [np.zeros((4, 0)), sp.csr_matrix((4, 0))], ids=["dense", "sparse"])
@pytest.mark.parametrize("kc", [None, 2])
def test_zero_features_linear_ce_sum(X, kc):
    y = np.array([0, 2, 1, 1])
    b = np.array([0.3, -1.0, 2.0])
    sw = np.array([1.0, 2.0, 0.5, 1.5])
    loss, dW, db = _linear_ce_sum(X, np.zeros((3, 0)), b, y, sw, True, class_chunk_size=kc)
    Z = np.broadcast_to(b, (4, 3))
    ref = smk.cross_entropy(Z, y, reduction="none")
    _, G = smk.cross_entropy_and_grad(Z, y, reduction="none")
    np.testing.assert_allclose(loss, np.sum(sw * ref), rtol=1e-13)
    assert dW.shape == (3, 0)
    np.testing.assert_allclose(db, (sw[:, None] * G).sum(axis=0), rtol=1e-13)


def test_empty_batch_of_labels_given_as_a_list():
    """``[]`` is a float64 array to NumPy; cross_entropy took it as no labels,
    linear_cross_entropy refused it as probabilities of the wrong shape."""
    W = np.ones((4, 6))
    for red, want in (("mean", 0.0), ("sum", 0.0)):
        assert smk.linear_cross_entropy(np.zeros((0, 6)), W, [], reduction=red) == want
    loss, (dX, dW, db) = smk.linear_cross_entropy(np.zeros((0, 6)), W, [], reduction="none",
                                                  return_grad=True)
    assert loss.shape == (0,) and dX.shape == (0, 6) and np.all(dW == 0) and db is None

