"""The dispatcher rule, thread and fork safety, and lazy numba import."""

import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("numba")
import softmaxkit as smk
from softmaxkit import _dispatch
from softmaxkit.special._softmax import _softmax_impl


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "cross_entropy"])
def test_backend_modes(monkeypatch, name):
    small = np.zeros((4, 3))
    big = np.zeros((_dispatch.AUTO_MIN_SIZE // 8, 8), dtype=np.float32)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numpy")
    assert _dispatch.kernel(name, small) is None
    assert _dispatch.kernel(name, big) is None
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    assert callable(_dispatch.kernel(name, small))
    assert callable(_dispatch.kernel(name, big))
    for value in ("auto", "", " AUTO "):
        monkeypatch.setenv("SOFTMAXKIT_BACKEND", value)
        assert _dispatch.kernel(name, small) is None  # below AUTO_MIN_SIZE
        assert callable(_dispatch.kernel(name, big))
    monkeypatch.delenv("SOFTMAXKIT_BACKEND")
    assert _dispatch.backend() == "auto"
    assert callable(_dispatch.kernel(name, big))


def test_backend_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "cuda")
    with pytest.raises(ValueError, match="SOFTMAXKIT_BACKEND must be one of"):
        _dispatch.kernel("softmax", np.zeros(3))


def test_kernel_not_applicable(monkeypatch):
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    assert _dispatch.kernel("softmax", np.zeros(3, dtype=np.float16)) is None
    assert _dispatch.kernel("softmax", np.zeros(3, dtype=np.int64)) is None
    assert _dispatch.kernel("softmax", np.float64(1.0)) is None
    assert _dispatch.kernel("cross_entropy", np.zeros(3)) is None
    assert _dispatch.kernel("cross_entropy", np.zeros((2, 3, 4))) is None
    assert _dispatch.kernel("sigmoid", np.zeros(3)) is None
    assert callable(_dispatch.kernel("softmax", np.zeros((2, 3, 4), dtype=np.float32)))


@pytest.mark.parametrize("backend", ["auto", "numba"])
def test_float64_rows_past_the_fixed_point_range_take_the_reference(monkeypatch, backend):
    """The float64 kernels add exp(x - max) in an int64 fixed-point accumulator that
    overflowed past 2**23 near-maximal terms: a row of 8.4 million entries close to
    its maximum gave logsumexp NaN and softmax rows summing to -1.16.  Rows longer
    than MAX_ROW64 go to the reference; float32 (no fixed point) keeps the kernel."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", backend)
    K = 8_400_000  # past 2**23 = 8,388,608 by enough for the old sum to overflow
    assert _dispatch.kernel("logsumexp", np.zeros((1, K))) is None
    assert _dispatch.kernel("cross_entropy", np.zeros((1, K))) is None
    assert callable(_dispatch.kernel("softmax", np.zeros((1, K), dtype=np.float32)))
    assert callable(_dispatch.kernel("softmax", np.zeros((8, _dispatch.MAX_ROW64 // 8))))
    x = np.zeros((2, K))
    x[:, 0] = 1e-9
    lse = smk.logsumexp(x)
    exact = np.log(K - 1 + np.exp(1e-9))
    np.testing.assert_allclose(lse, exact, rtol=4e-16)
    p = smk.softmax(x[:1])
    assert p.min() >= 0 and abs(p.sum() - 1) < 1e-12
    ce = smk.cross_entropy(x[:1], np.array([1]), reduction="none")
    np.testing.assert_allclose(ce, exact, rtol=4e-16)


def test_missing_numba(monkeypatch):
    monkeypatch.setattr(_dispatch, "_kernels_module", False)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "auto")
    assert _dispatch.kernel("softmax", np.zeros((1000, 1000))) is None
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    with pytest.raises(ImportError, match="pip install numba"):
        _dispatch.kernel("softmax", np.zeros(3))


def test_import_does_not_load_numba():
    code = ("import sys, numpy as np, softmaxkit as s; s.softmax(np.ones((3, 4))); "
            "s.cross_entropy(np.ones((3, 4)), np.zeros(3, int)); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"SOFTMAXKIT_BACKEND": "auto", "PATH": ""})
    assert out.stdout.strip() == "False"


def test_concurrent_calls_from_many_threads(monkeypatch):
    """Eight Python threads calling kernels at once (as Dask's threaded
    scheduler does) get the reference's results; nothing aborts."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    rng = np.random.default_rng(0)
    xs = [(rng.standard_normal((300, 257)) * 3).astype(np.float32) for _ in range(16)]
    ys = [rng.integers(0, 257, 300) for _ in range(16)]

    def work(i):
        x = xs[i]
        s = smk.softmax(x)
        loss, grad = smk.cross_entropy_and_grad(x, ys[i], reduction="sum")
        return s, grad

    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(work, range(16)))
    for i, (s, grad) in enumerate(results):
        ref = _softmax_impl(xs[i], (1,), None, False)
        np.testing.assert_allclose(s, ref, rtol=1e-6)
        g = ref.copy()
        g[np.arange(300), ys[i]] -= 1
        np.testing.assert_allclose(grad, g, rtol=1e-5, atol=1e-7)


def _child(q):
    x = np.arange(64 * 1024, dtype=np.float64).reshape(64, 1024) / 1000
    q.put(smk.softmax(x).sum())  # large enough to use the thread pool


def test_kernels_in_forked_child(monkeypatch):
    """A child forked after the parent ran kernels (and started the pool)
    still computes (a new pool; no threading layer to kill it)."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    x = np.ones((64, 1024))
    smk.softmax(x)  # parent uses kernels and its thread pool
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0
    assert q.get(timeout=5) == pytest.approx(64.0)


def test_unknown_backend_is_refused_where_no_kernel_applies(monkeypatch):
    """Masked, other-axis and ``b=`` calls never ask for a kernel; a mistyped
    SOFTMAXKIT_BACKEND was silently ignored there."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numbaa")
    x = np.zeros((3, 4))
    calls = [lambda: smk.softmax(x, where=x == 0), lambda: smk.log_softmax(x, axis=0),
             lambda: smk.logsumexp(x, b=x + 1),
             lambda: smk.cross_entropy(x, np.zeros(3, dtype=int), where=x == 0)]
    for call in calls:
        with pytest.raises(ValueError, match="SOFTMAXKIT_BACKEND must be one of"):
            call()
