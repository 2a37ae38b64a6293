"""SoftmaxRegression on Dask collections (issue #7).

Oracles: the in-memory LinearSoftmaxLoss and SoftmaxRegression on the same
data (the Dask path must reproduce them), scikit-learn's log_loss for the
loss value, and NumPy finite differences are not needed: the in-memory
values are themselves tested against PyTorch/scikit-learn in tests/losses
and tests/models.
"""

from __future__ import annotations

import gc
import logging
import time
import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402

from softmaxkit import SoftmaxRegression  # noqa: E402
from softmaxkit.distributed import DaskDataTerm, read_parquet_dataset  # noqa: E402
from softmaxkit.losses import LinearSoftmaxLoss  # noqa: E402
from softmaxkit.special import softmax  # noqa: E402

UNEVEN = (70, 190, 45, 160, 135)  # 600 rows in uneven chunks
N, D, K = sum(UNEVEN), 5, 4


@pytest.fixture(scope="module", params=[False, True], ids=["threads", "processes"])
def client(request):
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=request.param,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _data(seed=0, n=N, d=D, k=K):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    y = np.argmax(X @ W + rng.gumbel(size=(n, k)), axis=1)
    s = rng.uniform(0.2, 2.0, size=n)
    return X, y, s


def _dask(X, y, s=None):
    Xd = da.from_array(X, chunks=(UNEVEN, 3))  # column chunks are merged
    yd = da.from_array(y, chunks=100)  # y chunks differ from X's
    sd = None if s is None else da.from_array(s, chunks=250)
    return Xd, yd, sd


def _our_keys(client, settle=True):
    """Keys of our tasks still held in the cluster (waiting up to 5 s for
    releases to settle when ``settle``)."""
    gc.collect()
    deadline = time.monotonic() + (5.0 if settle else 0.0)
    while True:
        keys = [k for k in client.who_has() if any(
            name in str(k) for name in ("softmaxkit-", "_limited", "prepare_part",
                                        "prepare_encoded"))]
        if not keys or time.monotonic() > deadline:
            return keys
        time.sleep(0.05)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ------------------------------------------------------------------ data term
@pytest.mark.parametrize("persist", [True, False], ids=["persisted", "streaming"])
def test_term_equals_in_memory(client, persist):
    X, y, s = _data(1)
    rng = np.random.default_rng(2)
    coef = rng.normal(size=K * (D + 1))
    v = rng.normal(size=coef.size)
    ref = LinearSoftmaxLoss(K)
    f0, g0, hv0 = ref.gradient_hessp(coef, X, y, s)
    with DaskDataTerm(*_dask(X, y, s), persist=persist) as term:
        assert term.persisted is persist
        assert (term.n_samples, term.n_features, term.n_classes) == (N, D, K)
        assert term.n_partitions == len(UNEVEN)
        assert term.weight_sum == pytest.approx(s.sum(), rel=1e-12)
        f, g = term.loss_gradient(coef)
        assert f == pytest.approx(f0, rel=1e-10)
        assert _rel(g, g0) < 1e-10
        assert _rel(term.hessp(coef)(v), hv0(v)) < 1e-10
        assert term.loss(coef) == pytest.approx(f0, rel=1e-10)
        H = term.hessian(coef)
        assert _rel(H @ v, hv0(v)) < 1e-10
        assert _rel(term.hess_diag(coef), np.diag(H)) < 1e-10
        np.testing.assert_allclose(term.class_totals(), np.bincount(y, weights=s), rtol=1e-12)
    # independent oracle for the value: scikit-learn's log loss of the probabilities
    Wb = coef.reshape(K, D + 1)
    P = softmax(X @ Wb[:, :D].T + Wb[:, D], axis=1)
    assert f0 == pytest.approx(log_loss(y, P, sample_weight=s, normalize=False), rel=1e-10)


def test_auto_persist_streams_data_larger_than_memory(client, monkeypatch):
    """persist="auto": streams when the data exceed half the cluster's memory
    (known up front for arrays, after the statistics pass for DataFrames)."""
    from softmaxkit.distributed import _term

    X, y, s = _data(19)
    coef = np.random.default_rng(20).normal(size=K * (D + 1))
    f0, g0 = LinearSoftmaxLoss(K).loss_gradient(coef, X, y, s)
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["y"], frame["s"] = y, s
    ddf = dd.from_pandas(frame, npartitions=3)
    inputs = {"array": _dask(X, y, s), "frame": (ddf[list("abcde")], ddf["y"], ddf["s"])}
    for memory, persisted in ((1e3, False), (1e12, True)):
        monkeypatch.setattr(_term, "total_memory", lambda client, m=memory: m)
        for kind, args in inputs.items():
            with DaskDataTerm(*args) as term:
                assert term.persisted is persisted, kind
                f, g = term.loss_gradient(coef)
                assert f == pytest.approx(f0, rel=1e-10)
                assert _rel(g, g0) < 1e-10
    with dask.config.set({"softmaxkit.persist": False}), DaskDataTerm(*inputs["frame"]) as term:
        assert not term.persisted


def test_term_releases_worker_memory(client):
    X, y, s = _data(3)
    term = DaskDataTerm(*_dask(X, y, s), persist=True)
    coef = np.zeros(K * (D + 1))
    term.loss_gradient(coef)
    hv = term.hessp(coef)
    hv(coef + 1.0)
    assert _our_keys(client, settle=False)  # partitions and curvature states are pinned ...
    del hv
    term.close()
    assert _our_keys(client) == []  # ... and released by close()
    with pytest.raises(RuntimeError, match="closed"):
        term.loss_gradient(coef)


@pytest.mark.parametrize("persist", [True, False], ids=["persisted", "streaming"])
def test_preconditioner_factors_equal_in_memory(client, persist):
    """The Kronecker factors (A over the features, B over the classes) equal the
    in-memory term's, class weights included; the per-class Hessian blocks from
    every row equal the exact ones (an einsum over the rows), and from fewer rows
    (each chunk drawing its share by weight) estimate them, the same on a second
    call."""
    from softmaxkit.models import _softmax_regression as mod

    X, y, s = _data(11)
    cw = {0: 2.0, 1: 0.5}
    coef = np.random.default_rng(12).normal(scale=1.5, size=K * (D + 1))
    s_all = s * np.array([cw.get(k, 1.0) for k in range(K)])[y]
    mem = mod._LinearSoftmaxTerm(X, y.astype(np.intp), s_all, K, True)
    A0, B0 = mem.kron_factors(coef)
    Xt = np.hstack([X, np.ones((N, 1))])
    P = softmax(Xt @ coef.reshape(K, D + 1).T, axis=1)
    exact = np.einsum("ik,ia,ib->kab", P * (1 - P) * s_all[:, None], Xt, Xt)
    with DaskDataTerm(*_dask(X, y, s), class_weight=cw, persist=persist) as term:
        A, B = term.kron_factors(coef)
        assert _rel(A, A0) < 1e-12 and _rel(B, B0) < 1e-12
        assert _rel(term.class_blocks(coef, N), exact) < 1e-12
        drawn = term.class_blocks(coef, N // 3)
        np.testing.assert_array_equal(term.class_blocks(coef, N // 3), drawn)
    err = np.linalg.norm(drawn - exact, axis=(1, 2)) / np.linalg.norm(exact, axis=(1, 2))
    assert 0 < err.max() < 0.25


def test_class_blocks_of_chunks_too_large_to_keep_probabilities(monkeypatch):
    """A chunk whose probabilities are recomputed block by block (large n K) does
    not materialise them for the preconditioner: as in memory it estimates its
    blocks on a uniform subset of its rows, exact when the subset is every row."""
    import softmaxkit.losses._linear as lin

    X, y, s = _data(14)
    coef = np.random.default_rng(15).normal(scale=1.5, size=K * (D + 1))
    Xt = np.hstack([X, np.ones((N, 1))])
    P = softmax(Xt @ coef.reshape(K, D + 1).T, axis=1)
    exact = np.einsum("ik,ia,ib->kab", P * (1 - P) * s[:, None], Xt, Xt)
    monkeypatch.setattr(lin, "_MAX_LOGIT_BYTES", 40 * K * 8)   # row blocks of 40
    with dask.config.set(scheduler="sync"), DaskDataTerm(*_dask(X, y, s), persist=True) as term:
        assert term._runner.client is None
        states = term._states_at(term._coef(coef))
        assert all(isinstance(st, lin._BlockedState) for st in states)
        assert _rel(term.class_blocks(coef, N), exact) < 1e-12
        sub = term.class_blocks(coef, N // 2)
    err = np.linalg.norm(sub - exact, axis=(1, 2)) / np.linalg.norm(exact, axis=(1, 2))
    assert 0 < err.max() < 0.5


def test_dask_fit_uses_the_class_block_preconditioner(client):
    """Newton-CG on Dask starts with the Kronecker preconditioner and moves to the
    per-class blocks as in memory (before, it had only the Hessian's diagonal); the
    fit equals the in-memory one."""
    from softmaxkit.models import _softmax_regression as mod

    X, y, s = _data(13)
    built = []
    orig = mod._PenalizedObjective._block_precond

    def spy(self, x):
        minv = orig(self, x)
        built.append((type(self.term).__name__, minv is not None))
        return minv

    mp = pytest.MonkeyPatch()
    mp.setattr(mod._PenalizedObjective, "_block_precond", spy)
    try:
        ours = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(*_dask(X, y, s))
    finally:
        mp.undo()
    assert ("DaskDataTerm", True) in built
    ref = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(X, y, s)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)


def test_local_scheduler_same_values():
    """No distributed client: Dask's local scheduler gives the same numbers."""
    X, y, s = _data(4)
    coef = np.random.default_rng(5).normal(size=K * (D + 1))
    f0, g0 = LinearSoftmaxLoss(K).loss_gradient(coef, X, y, s)
    for scheduler in ("sync", "threads"):
        with dask.config.set(scheduler=scheduler):
            for persist in (True, False):
                with DaskDataTerm(*_dask(X, y, s), persist=persist) as term:
                    assert term._runner.client is None
                    f, g = term.loss_gradient(coef)
                    assert f == pytest.approx(f0, rel=1e-10)
                    assert _rel(g, g0) < 1e-10


def _setenv(name, value):
    """Set (or with None remove) an environment variable; returns the old value."""
    import os

    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    return old


def _kernels_loaded():
    import sys

    return "softmaxkit._kernels" in sys.modules


def test_compiled_kernels_in_worker_threads(client, monkeypatch):
    """The numba cross-entropy kernels run inside the workers' threads (two
    worker threads of one process call them at once with processes=False)
    and give the NumPy reference values."""
    pytest.importorskip("numba")
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship _setenv by value
    X, y, s = _data(15)
    coef = np.random.default_rng(16).normal(size=K * (D + 1))
    v = np.random.default_rng(17).normal(size=coef.size)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numpy")
    f0, g0, hv0 = LinearSoftmaxLoss(K).gradient_hessp(coef, X, y, s)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")  # the client process (threads cluster)
    old = client.run(_setenv, "SOFTMAXKIT_BACKEND", "numba")  # worker processes
    try:
        with DaskDataTerm(*_dask(X, y, s), persist=True) as term:
            for _ in range(3):
                f, g = term.loss_gradient(coef)
                assert f == pytest.approx(f0, rel=1e-10)
                assert _rel(g, g0) < 1e-10
            assert _rel(term.hessp(coef)(v), hv0(v)) < 1e-10
        assert all(client.run(_kernels_loaded).values())  # the kernels did run there
    finally:
        for addr, value in old.items():
            client.run(_setenv, "SOFTMAXKIT_BACKEND", value, workers=[addr])
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


# ------------------------------------------------------------------------ fit
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("penalty", ["l2", None])
def test_fit_dask_array_equals_in_memory(client, solver, penalty):
    X, y, s = _data(6)
    params = dict(solver=solver, penalty=penalty, tol=1e-10)
    ref = SoftmaxRegression(**params).fit(X, y, sample_weight=s)
    model = SoftmaxRegression(**params).fit(*_dask(X, y, s))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(model.classes_, ref.classes_)
    assert model.n_features_in_ == D
    assert model.loss_curve_[-1] == pytest.approx(ref.loss_curve_[-1], rel=1e-9)
    assert _our_keys(client) == []  # nothing left pinned after the fit


def test_fit_newton_cholesky_and_class_weight(client):
    """Explicit-Hessian solver (Hessian summed on the workers) with class weights."""
    X, y, _ = _data(7, d=3)
    params = dict(solver="newton-cholesky", tol=1e-10, class_weight="balanced")
    ref = SoftmaxRegression(**params).fit(X, y)
    model = SoftmaxRegression(**params).fit(*_dask(X, y))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    # l2 leaves a common shift of the intercepts free; compare the probabilities
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_fit_parquet_dataframe_equals_in_memory(client, tmp_path):
    X, y, s = _data(8)
    cols = [f"f{j}" for j in range(D)]
    frame = pd.DataFrame(X, columns=cols)
    frame["label"] = np.array(["ant", "bee", "cat", "dog"])[y]
    frame["w"] = s
    bounds = np.cumsum((0,) + UNEVEN)
    for i in range(len(UNEVEN)):
        frame.iloc[bounds[i] : bounds[i + 1]].to_parquet(tmp_path / f"part-{i:02d}.parquet")
    Xd, yd, wd = read_parquet_dataset(tmp_path, "label", sample_weight="w")
    assert Xd.npartitions == len(UNEVEN)
    model = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(Xd, yd, sample_weight=wd)
    ref = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(
        frame[cols], frame["label"].to_numpy(), sample_weight=s
    )
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    assert model.classes_.tolist() == ["ant", "bee", "cat", "dog"]
    np.testing.assert_array_equal(model.feature_names_in_, ref.feature_names_in_)
    # a glob gives the same dataset
    Xg, yg = read_parquet_dataset(str(tmp_path / "part-*.parquet"), "label", features=cols)
    assert list(Xg.columns) == cols and Xg.npartitions == len(UNEVEN)


@pytest.mark.parametrize("name", ["__index_level_0__", "Unnamed: 0", ""])
def test_parquet_row_index_or_nameless_column_is_refused_as_in_memory(tmp_path, name):
    """The in-memory reader refuses a saved row index and a nameless column; the
    Dask reader trained on them as features (a model that could then not
    predict on its own training file)."""
    from softmaxkit.io import DataError, read_table

    frame = pd.DataFrame({name: np.arange(6), "x": np.arange(6.0), "label": [0, 1] * 3})
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    with pytest.raises(DataError) as mem:
        read_table(tmp_path / "d.parquet", target="label")
    with pytest.raises(DataError) as dsk:
        read_parquet_dataset(tmp_path / "d.parquet", "label")
    assert str(dsk.value) == str(mem.value)


def _soft(y, seed, k=K):
    """Teacher probabilities: mostly the label, the rest spread at random."""
    rng = np.random.default_rng(seed)
    P = softmax(rng.normal(size=(len(y), k)) + 3.0 * np.eye(k)[y], axis=1)
    return P


@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 2.0, 3: 0.5}])
def test_fit_soft_targets_equal_in_memory(client, class_weight):
    """(n, K) class probabilities as y: as a 2-D Dask array with chunks unlike X's,
    with sample and class weights, the fit equals the in-memory one."""
    X, y, s = _data(14)
    Y = _soft(y, 14)
    params = dict(solver="newton-cg", tol=1e-10, class_weight=class_weight)
    ref = SoftmaxRegression(**params).fit(X, Y, sample_weight=s)
    Xd, _, sd = _dask(X, y, s)
    Yd = da.from_array(Y, chunks=(150, 2))
    model = SoftmaxRegression(**params).fit(Xd, Yd, sample_weight=sd)
    np.testing.assert_array_equal(model.classes_, np.arange(K))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    assert model.loss_curve_[-1] == pytest.approx(ref.loss_curve_[-1], rel=1e-9)
    assert _our_keys(client) == []
    with DaskDataTerm(Xd, Yd, sd, class_weight=class_weight) as term:
        assert term.soft_targets and term.n_classes == K
        np.testing.assert_allclose(term.class_counts, Y.sum(axis=0), rtol=1e-12)
        # the weighted class totals (they start the intercepts) as in memory
        if class_weight is None:
            cw = np.ones(K)
        elif class_weight == "balanced":  # with the sample weights, as in memory
            cw = s.sum() / (K * (s @ Y))
        else:
            cw = np.array([class_weight.get(k, 1.0) for k in range(K)])
        np.testing.assert_allclose(term.class_totals(), (s * (Y @ cw)) @ Y, rtol=1e-12)
        assert term.weight_sum == pytest.approx(float(s @ (Y @ cw)), rel=1e-12)


def test_float16_soft_targets_equal_in_memory(client):
    """float16 probability rows sum to 1 only to float16 rounding: accepted as in
    memory (10 float16 eps), and the fit equals the in-memory one."""
    X, y, s = _data(15)
    Y16 = _soft(y, 15).astype(np.float16)
    assert np.abs(Y16.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    params = dict(solver="newton-cg", tol=1e-10)
    ref = SoftmaxRegression(**params).fit(X, Y16, sample_weight=s)
    Xd, _, sd = _dask(X, y, s)
    model = SoftmaxRegression(**params).fit(Xd, da.from_array(Y16, chunks=(150, K)),
                                            sample_weight=sd)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="sums to"):
        SoftmaxRegression(**params).fit(Xd, da.from_array((Y16 * 1.05).astype(np.float16),
                                                          chunks=(150, K)))


@pytest.mark.parametrize("cw, shown", [({0: -1.0}, "-1.0"), ({1: np.nan}, "nan")])
def test_bad_class_weight_is_the_in_memory_error(client, cw, shown):
    """Negative or NaN class weights: the in-memory message (was a non-finite Hessian
    or 'weights sum to 0' deep in the solver)."""
    X, y, s = _data(16)
    Xd, yd, _ = _dask(X, y, s)
    for Xa, ya in ((X, y), (Xd, yd)):
        with pytest.raises(ValueError, match=f"class_weight must be finite and non-negative; "
                                             f"got {shown} for class {list(cw)[0]}\\."):
            SoftmaxRegression(class_weight=cw).fit(Xa, ya)


@pytest.mark.parametrize("labels", [[1, "a", "b"], [1, "1", "a"]])
def test_labels_mixing_strings_and_numbers_are_refused(client, labels):
    """As in memory (they were turned into strings: 1 and '1' merged into one class)."""
    X, y, s = _data(17)
    y_mixed = np.array(labels, dtype=object)[y % 3]
    for ya in (y_mixed, da.from_array(y_mixed, chunks=100)):
        Xa = X if isinstance(ya, np.ndarray) else da.from_array(X, chunks=(100, X.shape[1]))
        with pytest.raises(ValueError, match="y mixes strings and other labels"):
            SoftmaxRegression().fit(Xa, ya)


def test_fit_soft_targets_from_dataframe_and_streaming(client):
    """A Dask DataFrame of probability columns, partitions streamed; one-hot soft
    targets give the label fit."""
    X, y, _ = _data(15)
    Y = np.eye(K)[y]
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"f{j}" for j in range(D)]),
                           npartitions=4)
    Yf = dd.from_pandas(pd.DataFrame(Y, columns=[f"p{k}" for k in range(K)]), npartitions=4)
    with dask.config.set({"softmaxkit.persist": False}):
        model = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(frame, Yf)
    ref = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(model.classes_, np.arange(K))


def test_bad_soft_targets_are_clear_errors(client):
    X, y, _ = _data(16)
    Xd = da.from_array(X, chunks=(UNEVEN, D))
    row = UNEVEN[0] + UNEVEN[1] + 5  # partition 2, its row 5
    for change, what in ((0.01, "sums to"), (-2.0, "negative")):
        Y = _soft(y, 16)
        Y[row, 0] += change
        with pytest.raises(ValueError, match=rf"row 5 of partition 2 .*{what}"):
            SoftmaxRegression().fit(Xd, da.from_array(Y, chunks=(UNEVEN, K)))
    Y = _soft(y, 16)
    Y[row, 1] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN or infinity \(partition 2, row 5"):
        SoftmaxRegression().fit(Xd, da.from_array(Y, chunks=(UNEVEN, K)))
    with pytest.raises(ValueError, match="must be 1-D or"):
        SoftmaxRegression().fit(Xd, da.zeros((N, K, 2), chunks=100))
    assert _our_keys(client) == []


def _sparse_data(seed, n=N, d=40, k=K):
    import scipy.sparse as sparse

    rng = np.random.default_rng(seed)
    X = sparse.random(n, d, density=0.15, format="csr", random_state=seed,
                      data_rvs=rng.standard_normal)
    y = np.argmax(np.asarray(X @ rng.normal(size=(d, k))) + rng.gumbel(size=(n, k)), axis=1)
    return X, y, rng.uniform(0.2, 2.0, size=n)


@pytest.mark.parametrize("persist", [True, False, "auto"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_sparse_dask_array_equals_in_memory(client, monkeypatch, persist, dtype):
    """A Dask array of SciPy CSR chunks is computed on as CSR (never densified):
    the fit, with sample weights, equals the in-memory sparse fit and lazy
    predictions equal the in-memory ones.  "auto" decides from the measured
    size of the CSR partitions (their nnz), not from n_samples x n_features."""
    from softmaxkit.distributed import _chunks, _term

    X, y, s = _sparse_data(17)
    X = X.astype(dtype)
    Xd = da.from_array(X, chunks=(UNEVEN, 15), asarray=False)  # column chunks merged
    dense_calls = []
    orig_asarray = _chunks.np.asarray

    def no_dense(a, *args, **kw):
        if hasattr(a, "nnz"):
            dense_calls.append(type(a).__name__)
        return orig_asarray(a, *args, **kw)

    monkeypatch.setattr(_chunks.np, "asarray", no_dense)
    nnz_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    # half the memory lies between the CSR size and the dense size: "auto" persists
    monkeypatch.setattr(_term, "total_memory", lambda client: 4 * nnz_bytes)
    params = dict(solver="newton-cg", tol=1e-10)
    with dask.config.set({"softmaxkit.persist": persist}):
        model = SoftmaxRegression(**params).fit(Xd, da.from_array(y, chunks=100),
                                                sample_weight=da.from_array(s, chunks=250))
        with DaskDataTerm(Xd, y) as term:
            assert term.persisted is (persist is not False)
    monkeypatch.setattr(_chunks.np, "asarray", orig_asarray)
    assert dense_calls == []
    ref = SoftmaxRegression(**params).fit(X, y, sample_weight=s)
    # float32: both fits' gradients are float64 (cast from the float32 rows), so
    # they meet at the float64 tolerance too; the coefficients are float32
    tol = 1e-8 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=tol * 100,
                               atol=tol * np.abs(ref.coef_).max())
    assert model.coef_.dtype == dtype
    np.testing.assert_allclose(model.predict_proba(Xd).compute(), ref.predict_proba(X),
                               atol=tol)
    assert _our_keys(client) == []


def test_nonfinite_in_a_sparse_partition_is_a_clear_error(client):
    X, y, _ = _sparse_data(18)
    row = UNEVEN[0] + 9  # partition 1, its row 9
    X = X.tolil()
    X[row, 3] = np.inf
    X = X.tocsr()
    with pytest.raises(ValueError, match=r"Input X contains infinity \(partition 1, row 9"):
        SoftmaxRegression().fit(da.from_array(X, chunks=(UNEVEN, -1), asarray=False), y)
    assert _our_keys(client) == []


def _objective(model, X, y, s):
    Z = X @ model.coef_.T + model.intercept_
    L = Z - np.log(np.exp(Z - Z.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - Z.max(1, keepdims=True)
    return float(-(s * L[np.arange(len(y)), y]).sum() + 0.5 * (model.coef_ ** 2).sum())


def test_partial_fit_one_partition_equals_in_memory(client):
    """With a single partition a Dask pass is the in-memory pass (same shuffles,
    same penalty weight, same balanced class weights; the total weight is summed
    in another order, hence rounding-level differences)."""
    X, y, s = _data(21)
    params = dict(random_state=3, class_weight="balanced")
    ref, ours = SoftmaxRegression(**params), SoftmaxRegression(**params)
    Xd, yd, sd = (da.from_array(X, chunks=(N, D)), da.from_array(y, chunks=N),
                  da.from_array(s, chunks=N))
    for epoch in range(3):
        classes = np.arange(K) if epoch == 0 else None
        ref.partial_fit(X, y, classes=classes, sample_weight=s)
        ours.partial_fit(Xd, yd, classes=classes, sample_weight=sd)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    assert ours.n_iter_ == 3 and list(ours.classes_) == list(range(K))
    assert _our_keys(client) == []


def test_partial_fit_over_partitions_approaches_fit(client):
    """Passes over the uneven partitions (one computed at a time) approach the
    optimum of fit on the whole collection: the penalty is weighted by the total
    weight, not per partition."""
    X, y, s = _data(22)
    full = SoftmaxRegression(tol=1e-10).fit(X, y, sample_weight=s)
    f_full = _objective(full, X, y, s)
    model, mem = SoftmaxRegression(random_state=0), SoftmaxRegression(random_state=0)
    Xd, yd, sd = _dask(X, y, s)
    gaps, mem_gaps = [], []
    for epoch in range(12):
        classes = np.arange(K) if epoch == 0 else None
        model.partial_fit(Xd, yd, classes=classes, sample_weight=sd)
        mem.partial_fit(X, y, classes=classes, sample_weight=s)
        gaps.append(_objective(model, X, y, s) / f_full - 1)
        mem_gaps.append(_objective(mem, X, y, s) / f_full - 1)
    # as fast as the in-memory passes (a penalty weighted per partition would
    # pull the iterates to another point and stall the gap)
    assert 0 <= gaps[-1] < gaps[2] / 1.5
    assert gaps[-1] < 4 * mem_gaps[-1]
    assert model.n_iter_ == 12 and model.loss_curve_.shape == (12,)
    # soft targets and a sparse X on the same path
    import scipy.sparse as sparse

    Xs = da.from_array(sparse.csr_matrix(X), chunks=(UNEVEN, -1), asarray=False)
    soft = SoftmaxRegression(random_state=0).partial_fit(Xs, da.from_array(np.eye(K)[y],
                                                                           chunks=(100, K)))
    lab = SoftmaxRegression(random_state=0).partial_fit(Xs, yd, classes=np.arange(K))
    np.testing.assert_allclose(soft.coef_, lab.coef_, rtol=1e-10, atol=1e-12)


def test_partial_fit_dask_errors(client):
    X, y, _ = _data(23)
    Xd, yd, _ = _dask(X, y)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        SoftmaxRegression().partial_fit(Xd, yd)
    model = SoftmaxRegression().partial_fit(Xd, yd, classes=np.arange(K))
    with pytest.raises(ValueError, match="classes differs"):
        model.partial_fit(Xd, yd, classes=np.arange(K + 1))
    with pytest.raises(ValueError, match="X has 4 features, but SoftmaxRegression is "
                                         "expecting 5"):
        model.partial_fit(Xd[:, :4], yd)
    with pytest.raises(ValueError, match="labels not in classes"):
        model.partial_fit(Xd, yd + 10)
    assert _our_keys(client) == []


def test_two_distributed_fits_are_bitwise_equal(client):
    X, y, s = _data(9)
    a = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(*_dask(X, y, s))
    b = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(*_dask(X, y, s))
    assert a.coef_.tobytes() == b.coef_.tobytes()
    assert a.intercept_.tobytes() == b.intercept_.tobytes()
    assert a.loss_curve_.tobytes() == b.loss_curve_.tobytes()


def test_labels_present_in_only_some_partitions(client):
    X, y, _ = _data(10)
    order = np.argsort(y, kind="stable")  # sorted labels: each chunk sees 1-2 classes
    X, y = X[order], y[order]
    Xd, yd, _ = _dask(X, y)
    per_chunk = [np.unique(b).size for b in np.split(y, np.cumsum(UNEVEN)[:-1])]
    assert min(per_chunk) == 1 and max(per_chunk) < K
    model = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(Xd, yd)
    ref = SoftmaxRegression(solver="newton-cg", tol=1e-10).fit(X, y)
    np.testing.assert_array_equal(model.classes_, np.arange(K))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    with DaskDataTerm(Xd, yd) as term:
        np.testing.assert_array_equal(term.class_counts, np.bincount(y))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_in_one_partition_is_a_clear_error(client, bad):
    X, y, _ = _data(11)
    X[UNEVEN[0] + UNEVEN[1] + 7, 2] = bad  # partition 2, its row 7
    what = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=rf"Input X contains {what} \(partition 2, row 7"):
        SoftmaxRegression().fit(*_dask(X, y))
    assert _our_keys(client) == []


def test_entries_too_large_for_the_curvature_sums_are_the_in_memory_error(client):
    X, y, _ = _data(11)
    X[UNEVEN[0] + 3, 1] = 1e200  # in partition 1
    with pytest.raises(ValueError, match=r"entries up to 1e\+200 .* overflow float64\.  "
                                         "Scale the features"):
        SoftmaxRegression().fit(*_dask(X, y))
    with pytest.raises(ValueError, match=r"entries up to 1e\+200"):
        SoftmaxRegression().fit(X, y)
    assert _our_keys(client) == []


def test_non_integral_number_labels_are_refused_as_in_memory(client):
    """Labels 0.5 / 1.5 / 2.25 were trained on as three classes on Dask; in memory
    scikit-learn's check refuses them as continuous."""
    X, y, _ = _data(12)
    yf = np.array([0.5, 1.5, 2.25, 3.0])[y % 4]
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        SoftmaxRegression().fit(X, yf)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        SoftmaxRegression().fit(*_dask(X, yf))
    assert _our_keys(client) == []


def test_bad_input_errors(client):
    X, y, s = _data(12)
    Xd, yd, sd = _dask(X, y, s)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxRegression().fit(Xd, da.zeros(N, chunks=100, dtype=int))
    with pytest.raises(ValueError, match="same length"):
        SoftmaxRegression().fit(Xd, yd[:-1])
    s_bad = s.copy()
    s_bad[3] = -1.0
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        SoftmaxRegression().fit(Xd, yd, da.from_array(s_bad, chunks=200))
    with pytest.raises(ValueError, match="The 'C' parameter of SoftmaxRegression"):
        SoftmaxRegression(C=-1.0).fit(Xd, yd)
    with pytest.raises(ValueError, match="The 'persist' parameter of DaskDataTerm"):
        DaskDataTerm(Xd, yd, persist="sometimes")
    with pytest.raises(ValueError, match="2-D"):
        SoftmaxRegression().fit(da.from_array(y.astype(float)), yd)


# ----------------------------------------------------------------- prediction
def test_lazy_predictions_equal_in_memory(client):
    X, y, _ = _data(13)
    ref = SoftmaxRegression(tol=1e-8).fit(X, y)
    Xd = da.from_array(X, chunks=(UNEVEN, D))
    for method in ("decision_function", "predict_proba", "predict_log_proba", "predict"):
        lazy = getattr(ref, method)(Xd)
        assert isinstance(lazy, da.Array)  # nothing computed yet
        assert lazy.chunks[0] == UNEVEN
        np.testing.assert_array_equal(lazy.compute(), getattr(ref, method)(X))
    # two classes: decision_function is one margin per sample, lazily too
    binary = SoftmaxRegression(tol=1e-8).fit(X, y % 2)
    lazy = binary.decision_function(Xd)
    assert isinstance(lazy, da.Array) and lazy.ndim == 1
    np.testing.assert_array_equal(lazy.compute(), binary.decision_function(X))
    # DataFrame input, string labels, feature names checked eagerly
    frame = pd.DataFrame(X, columns=list("abcde"))
    labels = np.array(["x", "y", "z", "w"])[y]
    model = SoftmaxRegression(tol=1e-8).fit(frame, labels)
    ddf = dd.from_pandas(frame, npartitions=3)
    lazy = model.predict(ddf)
    assert hasattr(lazy, "__dask_graph__")
    np.testing.assert_array_equal(lazy.compute(), model.predict(frame))
    np.testing.assert_array_equal(model.predict_proba(ddf).compute(), model.predict_proba(frame))
    with pytest.raises(ValueError, match="feature names"):
        model.predict(ddf[list("edcba")])
    with pytest.raises(ValueError, match="features"):
        ref.predict(da.from_array(X[:, :3], chunks=100))


def test_small_unpenalised_float32_dask_fit_takes_float64_products(client):
    """As in memory: float32 partitions of a small unpenalised fit take float64
    Hessian products on cast row blocks.  With float32 ones the fit of collinear
    features (make_classification's redundant ones) ran 63 steps and stopped at
    the precision limit with a ConvergenceWarning."""
    from sklearn.datasets import make_classification

    X, y = make_classification(2000, 10, n_informative=5, n_classes=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = SoftmaxRegression(penalty=None).fit(
            da.from_array(X.astype(np.float32), chunks=500), da.from_array(y, chunks=500))
    assert m.n_iter_ <= 40
    assert _our_keys(client) == []


def test_convergence_warning_passes_through(client):
    """Once, at the caller's line, from fit on a Dask collection and from fit_dask
    (the warning pointed into softmaxkit from the former)."""
    from softmaxkit.distributed import fit_dask

    X, y, _ = _data(14)
    with pytest.warns(ConvergenceWarning) as rec:
        SoftmaxRegression(solver="lbfgs", max_iter=2).fit(*_dask(X, y))
    with pytest.warns(ConvergenceWarning) as rec2:
        fit_dask(SoftmaxRegression(solver="lbfgs", max_iter=2), *_dask(X, y))
    assert len(rec) == len(rec2) == 1
    assert rec[0].filename == rec2[0].filename == __file__
    assert _our_keys(client) == []


# ----------------------------------------------------------------------- CLI
def test_cli_fit_engine_dask(client, tmp_path):
    from softmaxkit.cli import main
    from softmaxkit.io import load_model

    X, y, _ = _data(18, d=3)
    cols = ["u", "v", "w"]
    frame = pd.DataFrame(X, columns=cols)
    frame["label"] = np.array(["ant", "bee", "cat", "dog"])[y]
    data = tmp_path / "data"
    data.mkdir()
    for i, part in enumerate(np.array_split(np.arange(N), 3)):
        frame.iloc[part].to_parquet(data / f"part-{i}.parquet")
    path = tmp_path / "model.skm"
    argv = ["fit", str(data), "--target", "label", "--engine", "dask", "--model", str(path),
            "--solver", "newton-cg", "--test-size", "0",
            "--scheduler", client.scheduler.address]
    assert main(argv) == 0
    model = load_model(path)
    ref = SoftmaxRegression(solver="newton-cg").fit(frame[cols], frame["label"].to_numpy())
    assert model.classes_.tolist() == ref.classes_.tolist()
    # the command line fits at the default tol=1e-6: agreement to about that
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(frame[cols]), ref.predict_proba(frame[cols]),
                               rtol=1e-4, atol=1e-6)
    # a glob and a held-out split; the fixture's client is still the default afterwards
    argv = ["fit", str(data / "*.parquet"), "--target", "label", "--engine", "dask",
            "--model", str(tmp_path / "m2.skm")]
    assert main(argv) == 0
    assert distributed.default_client() is client
    # errors are one line and exit code 1
    assert main(["fit", str(data), "--target", "nope", "--engine", "dask",
                 "--model", str(tmp_path / "m3.skm")]) == 1
    assert not (tmp_path / "m3.skm").exists()


def test_a_failing_partition_leaves_nothing_pinned(client):
    """A partition that fails on a worker while the partitions are being persisted
    (a feature that is not a number) raises its error and keeps nothing pinned."""
    X, y, _ = _data(24)
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["a"] = np.where(np.arange(N) == 400, "not a number", "1.5")
    Xd = dd.from_pandas(frame, npartitions=3)  # row 400 is in partition 2
    with pytest.raises(ValueError, match="X partition 2 could not be converted to float64"):
        DaskDataTerm(Xd, y, persist=True)
    assert _our_keys(client) == []


# ---------------------------------------------------------- complex input
def _brief_data():
    """The reviewer's data: 300 rows, 3 features, 3 classes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(300, 3))).argmax(1)
    return X, y


def _never_computed(shape, dtype):
    """A Dask array of ``dtype`` whose chunk raises if anything computes it."""
    return da.from_delayed(dask.delayed(_boom)(), shape=shape, dtype=dtype)


def _boom():
    raise RuntimeError("computed")


_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def test_complex_data_are_refused_up_front(client):
    """Complex X, y or sample_weight: ValueError "Complex data not supported" as in
    memory (it used to fit on the real part with a ComplexWarning), raised from
    the dtype before anything is computed, by fit, partial_fit and every lazy
    prediction method."""
    X, y = _brief_data()
    with pytest.raises(ValueError, match="Complex data not supported"):  # the oracle
        SoftmaxRegression().fit(X + 5j, y)
    yd = da.from_array(y, chunks=100)
    Xc = _never_computed(X.shape, np.complex128)
    frame = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "b": X[:, 1] + 5j, "c": X[:, 2]}),
                           npartitions=3)
    for Xbad in (da.from_array(X + 5j, chunks=100), Xc, frame):
        with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex"):
            SoftmaxRegression().fit(Xbad, yd)
        with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex"):
            SoftmaxRegression().partial_fit(Xbad, yd, classes=[0, 1, 2])
    Xd = da.from_array(X, chunks=100)
    with pytest.raises(ValueError, match="Complex data not supported: y has dtype complex"):
        SoftmaxRegression().fit(Xd, _never_computed(y.shape, np.complex128))
    with pytest.raises(ValueError, match="Complex data not supported: sample_weight has dtype"):
        SoftmaxRegression().fit(Xd, yd, sample_weight=_never_computed(y.shape, np.complex64))
    with pytest.raises(ValueError, match="Complex data not supported: y has dtype complex"):
        DaskDataTerm(Xd, y + 0j)  # an in-memory y beside a Dask X
    model = SoftmaxRegression().fit(X, y)
    for method in _PREDICT_METHODS:
        with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex"):
            getattr(model, method)(Xc)  # at the call, not at compute
    # a chunk that is complex although its array says float: refused on the worker
    sneaky = Xd.map_blocks(lambda b: b + 5j, dtype=np.float64)
    with pytest.raises(ValueError, match="Complex data not supported: X partition 0 has dtype"):
        SoftmaxRegression().fit(sneaky, yd)
    assert _our_keys(client) == []


# ---------------------------------------------- pairing X and y: by position
def test_dask_frames_pair_x_and_y_by_position(client):
    """A Dask y (and sample_weight) is paired with X's rows by position, as the
    in-memory estimator pairs a pandas X and y (index ignored), whatever the
    index and the partitions: same partition count with a shuffled index (it
    used to be aligned on the index, coef off by up to 1.46), other partition
    lengths, another partition count, a Dask array X, soft targets."""
    X, y = _brief_data()
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(y))
    y_sh = pd.Series(y[perm], index=perm)
    s_sh = pd.Series(rng.uniform(0.5, 2.0, size=len(y)), index=perm[::-1])
    Xdf = pd.DataFrame(X, columns=list("abc"))
    params = dict(solver="newton-cg", tol=1e-10)
    ref = SoftmaxRegression(**params).fit(Xdf, y_sh)  # the in-memory rule: by position
    ref_w = SoftmaxRegression(**params).fit(Xdf, y_sh, sample_weight=s_sh)
    by_index = SoftmaxRegression(**params).fit(Xdf, y_sh.sort_index())
    assert np.abs(by_index.coef_ - ref.coef_).max() > 0.1  # the two rules differ here
    Xd = dd.from_pandas(Xdf, npartitions=3)
    cases = {
        "same partitions": (Xd, dd.from_pandas(y_sh, npartitions=3, sort=False)),
        "other lengths": (Xd, dd.from_pandas(y_sh, chunksize=70, sort=False)
                          .repartition(npartitions=3)),
        "other count": (Xd, dd.from_pandas(y_sh, npartitions=5, sort=False)),
        "array X": (da.from_array(X, chunks=70), dd.from_pandas(y_sh, npartitions=3,
                                                                 sort=False)),
        "known divisions": (Xd, dd.from_pandas(y_sh.set_axis(np.arange(300) + 1000),
                                               npartitions=3)),
        "one-column frame": (Xd, dd.from_pandas(y_sh.to_frame("label"), npartitions=3,
                                                sort=False)),
    }
    for name, (Xc, yc) in cases.items():
        model = SoftmaxRegression(**params).fit(Xc, yc)
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8,
                                   err_msg=name)
    for n_w in (3, 4):  # sample weights by position too, riding with X or re-chunked
        ws = dd.from_pandas(s_sh, npartitions=n_w, sort=False)
        model = SoftmaxRegression(**params).fit(
            Xd, dd.from_pandas(y_sh, npartitions=3, sort=False), sample_weight=ws)
        np.testing.assert_allclose(model.coef_, ref_w.coef_, rtol=1e-6, atol=1e-8)
    # soft targets as a Dask DataFrame with a shuffled index and other partitions
    Y = pd.DataFrame(np.eye(3)[y[perm]], index=perm, columns=["p0", "p1", "p2"])
    for n_y in (3, 4):
        model = SoftmaxRegression(**params).fit(Xd, dd.from_pandas(Y, npartitions=n_y,
                                                                    sort=False))
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    # partial_fit takes the same pairing
    one = dd.from_pandas(Xdf, npartitions=1)
    pf = SoftmaxRegression(random_state=0).partial_fit(
        one, dd.from_pandas(y_sh, npartitions=1, sort=False), classes=[0, 1, 2])
    pf_ref = SoftmaxRegression(random_state=0).partial_fit(Xdf, y_sh, classes=[0, 1, 2])
    np.testing.assert_allclose(pf.coef_, pf_ref.coef_, rtol=1e-10, atol=1e-12)
    # a y of another length is refused, whatever its partitions
    for n_y in (3, 4):
        with pytest.raises(ValueError, match="y has 299 samples but X has 300; they must "
                                             "have the same length"):
            SoftmaxRegression().fit(Xd, dd.from_pandas(y_sh.iloc[:-1], npartitions=n_y,
                                                       sort=False))
    with pytest.raises(ValueError, match="sample_weight has 301 samples but X has 300"):
        SoftmaxRegression().fit(Xd, dd.from_pandas(y_sh, npartitions=3, sort=False),
                                sample_weight=dd.from_pandas(pd.concat([s_sh, s_sh[:1]]),
                                                             npartitions=3, sort=False))
    assert _our_keys(client) == []


def test_columns_of_one_parquet_frame_ride_together(client, tmp_path, monkeypatch):
    """y and sample_weight columns of the frame X comes from are read with X (one
    read per partition) and their partition lengths are not computed (Dask
    knows they are X's); a training split of that frame too."""
    from softmaxkit.distributed import _chunks

    X, y = _brief_data()
    frame = pd.DataFrame(X, columns=list("abc"))
    frame["label"], frame["w"] = y, np.linspace(0.5, 2.0, len(y))
    for i, rows in enumerate(np.array_split(np.arange(len(y)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part-{i}.parquet")

    def no_counting(*frames):
        raise AssertionError("partition lengths computed")

    monkeypatch.setattr(_chunks, "partition_lengths", no_counting)
    Xd, yd, wd = read_parquet_dataset(tmp_path, "label", sample_weight="w")
    xb, yb, wb, *_ = _chunks.row_partitions(Xd, yd, wd)
    assert all(isinstance(b, _chunks._Split) for b in xb)
    assert all(isinstance(b, _chunks._Col) for b in yb + wb)
    train, _ = dd.read_parquet(tmp_path).random_split([0.7, 0.3], random_state=0)
    xb, yb, _, *_ = _chunks.row_partitions(train[list("abc")], train["label"])
    assert all(isinstance(b, _chunks._Col) for b in yb)
    model = SoftmaxRegression(tol=1e-10).fit(Xd, yd, sample_weight=wd)
    ref = SoftmaxRegression(tol=1e-10).fit(frame[list("abc")], y, sample_weight=frame["w"])
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)


# ------------------------------------------------- predictions, empty blocks
def test_lazy_predictions_with_empty_blocks(client):
    """An empty chunk of a Dask array, or a partition of a Dask DataFrame emptied by
    a filter, gives an empty block of the right shape and dtype (it used to raise
    "Found array with 0 sample(s)" at compute)."""
    X, y = _brief_data()
    model = SoftmaxRegression().fit(X, y)
    binary = SoftmaxRegression().fit(X, y % 2)
    for chunks in (((0, 150, 150), 3), ((150, 0, 150), 3), ((150, 150, 0), 3)):
        Xd = da.from_array(X, chunks=chunks)
        for est in (model, binary):
            for method in _PREDICT_METHODS:
                lazy = getattr(est, method)(Xd)
                assert lazy.chunks[0] == chunks[0]
                got, want = lazy.compute(), getattr(est, method)(X)
                assert got.dtype == want.dtype and got.shape == want.shape
                np.testing.assert_array_equal(got, want)
    # a DataFrame filtered so that its first partition is empty
    frame = pd.DataFrame(X[np.argsort(X[:, 0])], columns=list("abc"))
    fitted = SoftmaxRegression().fit(frame, y)
    ddf = dd.from_pandas(frame, npartitions=3)
    kept = ddf[ddf.a > frame.a.iloc[120]]
    assert kept.map_partitions(len).compute().tolist()[0] == 0
    want_rows = frame[frame.a > frame.a.iloc[120]]
    for method in _PREDICT_METHODS:
        got, want = getattr(fitted, method)(kept).compute(), getattr(fitted, method)(want_rows)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    # every partition empty: an empty result
    none = ddf[ddf.a > 1e9]
    assert fitted.predict_proba(none).compute().shape == (0, 3)
    assert fitted.predict(none).compute().shape == (0,)


# ------------------------------------------------------------ missing labels
_MISSING_MSG = (r"y has a missing label \(NaN, None or NA\) at index 102 \(partition 1, "
                r"row 2 of that partition\); drop or fill it before fitting")


def _y_with_a_missing_label(kind, y):
    """y with its label 102 missing (partition 1, row 2 of 100-row partitions)."""
    names = np.array(["ant", "bee", "cat"], dtype=object)
    if kind == "object array with None":
        obj = names[y]
        obj[102] = None
        return da.from_array(obj, chunks=100)
    if kind == "float NaN":
        flt = y.astype(float)
        flt[102] = np.nan
        return da.from_array(flt, chunks=100)
    if kind == "Series with None":
        series = pd.Series(names[y])
        series[102] = None
        return dd.from_pandas(series, npartitions=3)
    if kind == "Int64 Series with NA":
        ints = pd.array(y, dtype="Int64")
        ints[102] = pd.NA
        return dd.from_pandas(pd.Series(ints), npartitions=3)
    assert kind == "in-memory object y"
    obj = names[y]
    obj[102] = None
    return obj


@pytest.mark.parametrize("kind", ["object array with None", "float NaN", "Series with None",
                                  "Int64 Series with NA", "in-memory object y"])
def test_missing_labels_are_clear_errors(client, kind):
    """A missing label (None, pandas.NA, float NaN) in a Dask y is the in-memory
    ValueError, naming its global index and its partition and row (it used to be
    a TypeError from np.unique, or "y contains NaN or infinity")."""
    X, y = _brief_data()
    with pytest.raises(ValueError, match=r"y has a missing label \(NaN, None or NA\) at "
                                         "index 102; drop or fill it"):  # the oracle
        SoftmaxRegression().fit(X, np.where(np.arange(300) == 102, None, y))
    yb = _y_with_a_missing_label(kind, y)
    Xd = da.from_array(X, chunks=100)
    with pytest.raises(ValueError, match=_MISSING_MSG):
        SoftmaxRegression().fit(Xd, yb)
    with pytest.raises(ValueError, match=_MISSING_MSG):
        SoftmaxRegression().partial_fit(Xd, yb, classes=[0, 1, 2])
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abc")), npartitions=3)
    with pytest.raises(ValueError, match=_MISSING_MSG):  # X's partitions: 100, 100, 100
        SoftmaxRegression().fit(frame, yb)
    assert _our_keys(client) == []


def test_an_infinite_label_is_not_called_missing(client):
    X, y = _brief_data()
    flt = y.astype(float)
    flt[102] = np.inf
    with pytest.raises(ValueError, match=r"y contains NaN or infinity \(partition 1, row 2"):
        SoftmaxRegression().fit(da.from_array(X, chunks=100), da.from_array(flt, chunks=100))


# ------------------------------------------------- plain values in messages
def test_messages_show_plain_python_values(client):
    """Labels and sums in messages print as Python prints them (``0``, ``1.1``), not
    as NumPy 2's reprs (``np.int64(0)``, ``np.float64(1.1)``)."""
    X, y = _brief_data()
    Xd = da.from_array(X, chunks=100)
    one = np.zeros(300, dtype=np.int64)
    with pytest.raises(ValueError) as mem:  # the oracle
        SoftmaxRegression().fit(X, one)
    with pytest.raises(ValueError) as dsk:
        SoftmaxRegression().fit(Xd, da.from_array(one, chunks=100))
    assert str(dsk.value) == str(mem.value)
    assert str(dsk.value).endswith("got 1 class (0).")
    with pytest.raises(ValueError, match=r"got 1 class \('x'\)\.$"):
        SoftmaxRegression().fit(Xd, da.from_array(np.full(300, "x"), chunks=100))
    with pytest.raises(ValueError, match=r"y contains labels not in classes: 2\.$"):
        SoftmaxRegression().partial_fit(Xd, da.from_array(y, chunks=100), classes=[0, 1])
    Y = np.full((300, 3), 1 / 3)
    Y[5, 0] += 0.1
    with pytest.raises(ValueError, match=r"row 5 of partition 0 sums to 1\.0999999999999999, "
                                         r"not 1\.$") as soft:
        SoftmaxRegression().fit(Xd, da.from_array(Y, chunks=100))
    assert "np." not in str(soft.value)


# ------------------------------------------------- label kinds across partitions
def _one_or_other(ya, yd, Xa, Xd, fit=lambda X, y: SoftmaxRegression().fit(X, y)):
    """The in-memory outcome and the Dask outcome of ``fit``: ``classes_`` or the error."""
    out = []
    for X, y in ((Xa, ya), (Xd, yd)):
        try:
            out.append(fit(X, y).classes_)
        except (TypeError, ValueError) as exc:
            out.append(exc)
    return out


@pytest.mark.parametrize("order", ["ints first", "strings first"])
def test_labels_mixing_kinds_across_partitions_are_refused(client, order):
    """Ints in one partition and strings in another: the in-memory ValueError (the
    per-partition label sets were concatenated into strings: classes ['0' '1' 'a' 'b'])."""
    X = np.random.default_rng(0).normal(size=(100, 2))
    halves = [[0, 1] * 25, ["a", "b"] * 25]
    y = np.array(halves[0] + halves[1] if order == "ints first" else halves[1] + halves[0],
                 dtype=object)
    with pytest.raises(ValueError, match="y mixes strings and other labels"):  # the oracle
        SoftmaxRegression().fit(X, y)
    Xd, yd = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    with pytest.raises(ValueError, match=r"^y mixes strings and other labels \(e\.g\. '[ab]' "
                                         r"and [01]\) across partitions [01] and [01]; labels "
                                         r"must be all strings or all numbers\.$"):
        SoftmaxRegression().fit(Xd, yd)
    with pytest.raises(ValueError, match="y mixes strings and other labels"):
        SoftmaxRegression().partial_fit(Xd, yd, classes=[0, 1, "a", "b"])
    frame = dd.from_pandas(pd.DataFrame(X, columns=["u", "v"]), npartitions=2)
    with dask.config.set({"dataframe.convert-string": False}):  # Dask's own str(0) otherwise
        ys = dd.from_pandas(pd.Series(y), npartitions=2)
    assert ys.dtype == object
    with pytest.raises(ValueError, match="y mixes strings and other labels"):
        SoftmaxRegression().fit(frame, ys)
    assert _our_keys(client) == []


@pytest.mark.parametrize("kind", ["object array", "Series"])
def test_object_string_labels_give_object_classes_as_in_memory(client, kind):
    """Object-dtype string labels: classes_ (and predictions) of dtype object, as in
    memory (they were '<U5')."""
    X, y = _brief_data()
    names = np.array(["alpha", "beta", "gamma"], dtype=object)[y]
    Xd = da.from_array(X, chunks=100)
    yd = (da.from_array(names, chunks=100) if kind == "object array"
          else dd.from_pandas(pd.Series(names), npartitions=3))
    ref = SoftmaxRegression().fit(X, names)
    model = SoftmaxRegression().fit(Xd, yd)
    assert ref.classes_.dtype == object
    assert model.classes_.dtype == ref.classes_.dtype
    assert model.classes_.tolist() == ["alpha", "beta", "gamma"]
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    assert model.predict(Xd).compute().tolist() == ref.predict(X).tolist()
    # a fixed-width string array stays one, as in memory
    ustr = names.astype(str)
    assert SoftmaxRegression().fit(Xd, da.from_array(ustr, chunks=100)).classes_.dtype == \
        SoftmaxRegression().fit(X, ustr).classes_.dtype


@pytest.mark.parametrize("values", [[0, 1, 2], [0.0, 1.0, 2.0], [0, 1, 2.0],
                                    [b"a", b"b", b"c"]],
                         ids=["ints", "floats", "ints and floats", "bytes"])
def test_object_labels_that_are_not_strings_are_the_in_memory_error(client, values):
    """Object-dtype labels that are not strings: scikit-learn's error, as in memory
    ('Unknown label type: unknown'; bytes: TypeError); the Dask path turned them
    into numbers and fitted."""
    X, y = _brief_data()
    obj = np.empty(3, dtype=object)
    obj[:] = values
    labels = obj[y]
    mem, dsk = _one_or_other(labels, da.from_array(labels, chunks=100), X,
                             da.from_array(X, chunks=100))
    assert isinstance(mem, Exception)
    assert type(dsk) is type(mem) and str(dsk) == str(mem)


# ------------------------------------------------------ soft-target class weights
@pytest.mark.parametrize("cw", [{0: -0.01}, {0: -0.5}, {0: -2.0}, {0: np.nan}, {2: np.inf}],
                         ids=["-0.01", "-0.5", "-2", "nan", "inf"])
def test_bad_class_weight_with_soft_targets_is_the_in_memory_error(client, cw):
    """A negative, NaN or infinite class weight with soft targets: the in-memory
    ValueError (-0.01 was fitted silently; -0.5 stopped on a non-finite Hessian,
    -2 and NaN on 'sample weights ... sum to 0')."""
    X, _ = _brief_data()
    P = np.random.default_rng(1).dirichlet(np.ones(3), 300)
    mem, dsk = _one_or_other(P, da.from_array(P, chunks=(70, 3)), X,
                             da.from_array(X, chunks=70),
                             fit=lambda X, y: SoftmaxRegression(class_weight=cw).fit(X, y))
    assert isinstance(mem, ValueError)
    assert str(mem).startswith("class_weight must be finite and non-negative")
    assert type(dsk) is type(mem) and str(dsk) == str(mem)
    assert _our_keys(client) == []


# ------------------------------------------------------ read_parquet_dataset
def test_parquet_weight_column_must_not_be_the_target_or_a_feature(tmp_path):
    """sample_weight naming the target column, or a column also listed in features,
    is a ValueError (the labels were returned as the weights; the weights were
    also a feature)."""
    frame = pd.DataFrame({"a": [0.0, 1.0], "b": [2.0, 3.0], "w": [1.0, 2.0],
                          "label": [0, 1]})
    frame.to_parquet(tmp_path / "part-0.parquet")
    with pytest.raises(ValueError, match=r"^The sample_weight column 'label' is also the target "
                                         r"column\.$"):
        read_parquet_dataset(tmp_path, "label", sample_weight="label")
    with pytest.raises(ValueError, match=r"^The sample_weight column 'w' is also listed as a "
                                         r"feature\.$"):
        read_parquet_dataset(tmp_path, "label", features=["a", "w"], sample_weight="w")
    X, y, w = read_parquet_dataset(tmp_path, "label", sample_weight="w")
    assert list(X.columns) == ["a", "b"] and w.compute().tolist() == [1.0, 2.0]


# ------------------------------------------------------ column names of X
def test_mixed_type_column_names_are_the_in_memory_error(client):
    """Column names mixing strings and ints: scikit-learn's TypeError, as in memory,
    before anything is computed (the Dask fit went on without feature_names_in_)."""
    X, y = _brief_data()
    frame = pd.DataFrame(X, columns=["a", 1, "c"])
    with pytest.raises(TypeError) as mem:  # the oracle
        SoftmaxRegression().fit(frame, y)
    assert "Feature names are only supported if all input features have string names" in str(
        mem.value)
    Xd = dd.from_pandas(frame, npartitions=3)
    yd = da.from_array(y, chunks=100)
    for call in (lambda: SoftmaxRegression().fit(Xd, yd),
                 lambda: SoftmaxRegression().partial_fit(Xd, yd, classes=[0, 1, 2])):
        with pytest.raises(TypeError) as dsk:
            call()
        assert str(dsk.value) == str(mem.value)
    # a model fitted on string names refuses them in a later partial_fit, as in memory
    named = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=3)
    model = SoftmaxRegression().partial_fit(named, yd, classes=[0, 1, 2])
    with pytest.raises(TypeError, match="Feature names are only supported"):
        model.partial_fit(Xd, yd)
    # all-int names: no feature_names_in_ and no error, as in memory
    ints = pd.DataFrame(X, columns=[0, 1, 2])
    assert not hasattr(SoftmaxRegression().fit(ints, y), "feature_names_in_")
    assert not hasattr(SoftmaxRegression().fit(dd.from_pandas(ints, npartitions=3), yd),
                       "feature_names_in_")
    assert _our_keys(client) == []


# ------------------------------------------- class weights: the in-memory rules
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft targets"])
def test_balanced_class_weight_counts_the_sample_weights_as_in_memory(client, soft):
    """class_weight='balanced' is sum(s) / (K * the sample-weighted class totals), as
    in memory (scikit-learn >= 1.6); the Dask path counted the classes without the
    sample weights."""
    X, y, s = _data(31)
    s = np.where(y == 0, 5.0 * s, s)  # weights that change the balance
    Y = _soft(y, 31) if soft else y
    params = dict(solver="newton-cg", tol=1e-10, class_weight="balanced")
    ref = SoftmaxRegression(**params).fit(X, Y, sample_weight=s)
    Xd, yd, sd = _dask(X, y, s)
    Yd = da.from_array(Y, chunks=(150, 2)) if soft else yd
    model = SoftmaxRegression(**params).fit(Xd, Yd, sample_weight=sd)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    with DaskDataTerm(Xd, Yd, sd, class_weight="balanced") as term:
        tot = (s @ Y) if soft else np.bincount(y, weights=s, minlength=K)
        cw = s.sum() / (K * tot)
        per = (Y @ cw) if soft else cw[y]
        assert term.weight_sum == pytest.approx(float(s @ per), rel=1e-12)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft targets"])
@pytest.mark.parametrize("cw", ["balanced", {7: 2.0}, {0: 2.0, "a": 1.0, 9: 1.0}],
                         ids=["balanced, a class of weight 0", "a key not a class",
                              "keys not classes"])
def test_class_weight_errors_are_the_in_memory_ones(client, soft, cw):
    """A class whose samples all have weight 0 under 'balanced', and class_weight keys
    that are not classes: the in-memory ValueError (the Dask path gave the class a
    weight of 0, and ignored the keys)."""
    X, y, s = _data(32)
    s = np.where(y == 1, 0.0, s)
    Y = _soft(y, 32) if soft else y
    if soft:  # class 1 only where the weights are 0
        Y[:, 1] = np.where(y == 1, Y[:, 1], 0.0)
        Y /= Y.sum(axis=1, keepdims=True)
    Xd, yd, sd = _dask(X, y, s)
    Yd = da.from_array(Y, chunks=(150, 2)) if soft else yd
    mem, dsk = _one_or_other(Y, Yd, X, Xd, fit=lambda X, y: SoftmaxRegression(
        class_weight=cw).fit(X, y, sample_weight=s if isinstance(X, np.ndarray) else sd))
    assert isinstance(mem, ValueError)
    assert str(mem).startswith("class_weight")
    assert type(dsk) is type(mem) and str(dsk) == str(mem)
    assert _our_keys(client) == []

