"""One thread rule for the whole package (``softmaxkit._pool.max_threads``): the
CPUs of the process, capped by BLAS's thread count as threadpoolctl sees it."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import softmaxkit._pool as pool


def _blas_threads():
    return max(int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")


def test_max_threads_is_the_cpus_capped_by_blas(monkeypatch):
    assert pool.max_threads() == min(pool._cpus(), _blas_threads())
    monkeypatch.setattr(pool, "_cpus", lambda: 64)
    assert pool.max_threads() == _blas_threads()
    with threadpool_limits(1, user_api="blas"):
        assert pool.max_threads() == 1
    monkeypatch.setattr(pool, "_cpus", lambda: 1)
    assert pool.max_threads() == 1


def test_max_threads_without_blas_is_the_cpus(monkeypatch):
    monkeypatch.setattr(pool, "_blas_budget", lambda: None)
    monkeypatch.setattr(pool, "_cpus", lambda: 5)
    assert pool.max_threads() == 5


def test_keep_threads_holds_the_budget_while_blas_is_limited(monkeypatch):
    monkeypatch.setattr(pool, "_cpus", lambda: 64)
    before = pool.max_threads()
    with pool.keep_threads():
        with threadpool_limits(1, user_api="blas"):
            assert pool.max_threads() == before
        with pool.keep_threads():  # nested: the held value, not BLAS's limit
            assert pool.max_threads() == before
    with threadpool_limits(1, user_api="blas"):
        assert pool.max_threads() == 1
        with pool.keep_threads():
            assert pool.max_threads() == 1


def test_kernels_and_fused_blocks_follow_the_blas_limit(monkeypatch):
    pytest.importorskip("numba")
    import softmaxkit._kernels as K
    import softmaxkit.losses._fused as fused

    monkeypatch.setattr(pool, "_cpus", lambda: 64)
    with threadpool_limits(1, user_api="blas"):
        assert K.n_threads() == 1
        assert fused._n_threads() == 1
    assert fused._n_threads() == _blas_threads()
    import numba

    assert K.n_threads() == min(_blas_threads(), int(numba.config.NUMBA_NUM_THREADS))


def test_kernel_calls_under_a_limit_run_in_one_task(monkeypatch):
    """``threadpool_limits(1)`` (joblib's limit in its workers) keeps every kernel
    call in the calling thread; without it a large call is split into blocks."""
    pytest.importorskip("numba")
    import softmaxkit._kernels as K
    from softmaxkit.special import softmax

    seen = []
    orig = K._run_tasks

    def spy(fn, tasks):
        seen.append(len(tasks))
        return orig(fn, tasks)

    monkeypatch.setattr(K, "_run_tasks", spy)
    monkeypatch.setattr(pool, "_cpus", lambda: 64)
    monkeypatch.setattr(pool, "_blas_budget", lambda: 4)
    x = np.random.default_rng(0).standard_normal((4096, 64))
    ref = softmax(x, axis=1)
    import numba

    assert seen and seen[-1] == min(4, int(numba.config.NUMBA_NUM_THREADS))
    seen.clear()
    monkeypatch.setattr(pool, "_blas_budget", lambda: 1)
    np.testing.assert_array_equal(softmax(x, axis=1), ref)
    assert seen == [1]


def test_one_thread_inside_a_held_budget(monkeypatch):
    monkeypatch.setattr(pool, "_blas_budget", lambda: 4)
    monkeypatch.setattr(pool, "_cpus", lambda: 8)
    with pool.keep_threads():
        assert pool.max_threads() == 4
        with pool.one_thread():
            assert pool.max_threads() == 1
        assert pool.max_threads() == 4
    assert pool.max_threads() == 4


def test_blas_limit_limits_and_restores():
    before = _blas_threads()
    with pool.blas_limit(1):
        assert _blas_threads() == 1
        assert pool.max_threads() == 1
    assert _blas_threads() == before


def test_overlapping_blas_limits_of_two_threads_restore_the_original(monkeypatch):
    """Thread A enters, thread B enters, A leaves, B leaves: with a save-and-restore
    per context B put back A's limit of 1 and BLAS stayed at one thread for good
    (two SoftmaxRegression fits at once did this).  A stand-in controller records
    the limit (OpenBLAS reports its thread count per calling thread in some builds,
    so threadpool_info from worker threads cannot be trusted here)."""
    import threading

    blas = {"n": 4}

    class Limiter:
        def __init__(self, n):
            self.saved = blas["n"]
            blas["n"] = n

        def restore_original_limits(self):
            blas["n"] = self.saved

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.restore_original_limits()

    class Controller:
        def limit(self, limits, user_api):
            return Limiter(limits)

    monkeypatch.setattr(pool, "_controllers", lambda: (Controller(), None))
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with pool.blas_limit(1):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with pool.blas_limit(1):
            b_in.set()
            a_out.wait(5)
            seen["inside"] = blas["n"]   # A has left: B's limit still holds

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen["inside"] == 1
    assert blas["n"] == 4
