"""A private, fork-aware thread pool for work that releases the GIL: the
compiled kernels (``softmaxkit._kernels``) and SciPy's sparse products
(``losses._linear``).

``run_tasks(fn, tasks)`` runs ``fn(*args)`` for every ``args`` tuple, the first
in the calling thread and the others on a ``ThreadPoolExecutor`` that grows to
the largest number of extra threads asked for; it returns the results in task
order.  A child forked after the parent used the pool builds a new one (the
parent's threads do not exist there).  Idle threads block on the executor's
queue: nothing spins.

``max_threads()`` is the one thread rule of the package: the CPUs this
process may run on, capped by the number of threads BLAS may use as
threadpoolctl sees it.  So ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``,
``threadpoolctl.threadpool_limits(n)``, joblib's per-worker limits and the
Dask workers' one-BLAS-thread limit cap softmaxkit's own threads as they cap
BLAS's.  ``keep_threads()`` holds the budget seen on entry for this context
while the caller limits BLAS to one thread for BLAS's own sake;
``one_thread()`` makes it 1 inside a task that is itself one of several.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["blas_limit", "keep_threads", "max_threads", "one_thread", "run_tasks"]

_LOCK = threading.Lock()
_POOL = {"pid": None, "executor": None, "size": 0}


_BUDGET = contextvars.ContextVar("softmaxkit_threads", default=None)
_CONTROLLER = {"pid": None, "all": None, "blas": None}  # "pid": (pid, modules loaded)


def _cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _controllers():
    """threadpoolctl's controller of this process's thread pools and its BLAS
    selection, or ``(None, None)`` when threadpoolctl cannot be used.  Making one
    reads the loaded libraries (3 ms), so it is made again only in a new process
    or after new modules were imported (which may have loaded another BLAS, such
    as SciPy's)."""
    key = (os.getpid(), len(sys.modules))
    if _CONTROLLER["pid"] != key:
        try:
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController()
            _CONTROLLER["all"], _CONTROLLER["blas"] = ctl, ctl.select(user_api="blas")
        except Exception:  # pragma: no cover - threadpoolctl unusable
            _CONTROLLER["all"] = _CONTROLLER["blas"] = None
        _CONTROLLER["pid"] = (os.getpid(), len(sys.modules))
    return _CONTROLLER["all"], _CONTROLLER["blas"]


def _blas_budget():
    """BLAS's thread count now (5 us a call), or None when no BLAS is found."""
    blas = _controllers()[1]
    if blas is None:
        return None
    try:
        counts = [int(i.get("num_threads") or 1) for i in blas.info()]
    except Exception:  # pragma: no cover - a library that cannot say
        return None
    return max(counts) if counts else None


_LIMIT_LOCK = threading.Lock()
_LIMIT = {"holders": 0, "limiter": None}


@contextlib.contextmanager
def blas_limit(n=1):
    """BLAS limited to ``n`` threads within this context (process-wide, like
    ``threadpoolctl.threadpool_limits(n, user_api="blas")``, without its cost of
    finding the libraries on every call).

    Safe when contexts of several threads overlap: the first to enter sets the
    limit, the last to leave restores the limits found by the first (a plain
    save-and-restore per context left BLAS at 1 thread for good when two fits ran
    at once: the second saved the first's limit and restored it last).  An
    overlapping context keeps the limit already set."""
    ctl = _controllers()[0]
    if ctl is None:  # pragma: no cover - threadpoolctl unusable
        yield
        return
    with _LIMIT_LOCK:
        if _LIMIT["holders"] == 0:
            _LIMIT["limiter"] = ctl.limit(limits=n, user_api="blas")
        _LIMIT["holders"] += 1
    try:
        yield
    finally:
        with _LIMIT_LOCK:
            _LIMIT["holders"] -= 1
            if _LIMIT["holders"] == 0:
                limiter, _LIMIT["limiter"] = _LIMIT["limiter"], None
                limiter.restore_original_limits()


def max_threads():
    """Threads softmaxkit's own parallel work may use (see the module docstring).

    Returns
    -------
    int
        At least 1.
    """
    held = _BUDGET.get()
    if held is not None:
        return held
    blas = _blas_budget()
    return _cpus() if blas is None else max(1, min(_cpus(), blas))


@contextlib.contextmanager
def keep_threads():
    """Within this context (and this thread), ``max_threads()`` keeps the value
    it has on entry, whatever BLAS is limited to meanwhile."""
    token = _BUDGET.set(max_threads())
    try:
        yield
    finally:
        _BUDGET.reset(token)


@contextlib.contextmanager
def one_thread():
    """Within this context (and this thread), ``max_threads()`` is 1: for work
    that is itself one task of a ``run_tasks`` call."""
    token = _BUDGET.set(1)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _executor(size):
    pid = os.getpid()
    with _LOCK:
        if _POOL["pid"] != pid or _POOL["size"] < size:
            _POOL["executor"] = ThreadPoolExecutor(max_workers=size,
                                                   thread_name_prefix="softmaxkit")
            _POOL["pid"] = pid
            _POOL["size"] = size
        return _POOL["executor"]


def run_tasks(fn, tasks):
    """Run ``fn(*args)`` for every args tuple of ``tasks``; the first in this
    thread.  Returns the results in order (an exception of any task is raised
    once all have finished)."""
    if len(tasks) == 1:
        return [fn(*tasks[0])]
    ex = _executor(len(tasks) - 1)
    futures = [ex.submit(fn, *args) for args in tasks[1:]]
    try:
        first = fn(*tasks[0])
    finally:
        errors = [f.exception() for f in futures]  # waits for every task
    for exc in errors:
        if exc is not None:
            raise exc
    return [first] + [f.result() for f in futures]


def run_ranges(fn, n, threads):
    """``fn(lo, hi)`` over near-equal consecutive ranges covering ``range(n)``, one
    per thread, at most ``threads`` (``fn`` must release the GIL to gain)."""
    threads = max(1, min(int(threads), int(n)))
    edges = [round(i * n / threads) for i in range(threads + 1)]
    run_tasks(fn, list(zip(edges[:-1], edges[1:], strict=True)))
