"""Where the per-chunk work runs: a distributed Client or Dask's local scheduler.

Two runners share one interface, so the data term is written once:

- ``_ClientRunner``: a ``distributed.Client`` is active.  Partitions are
  materialised once as futures pinned in worker memory; each call of
  ``map`` is one round trip (``client.map`` + ``client.gather``).
- ``_LocalRunner``: no client.  Partitions are computed with Dask's local
  scheduler into the client process; ``map`` applies the function to the
  chunks in order.

Both return the per-chunk results as a list in partition order; callers sum
them in that fixed order, so results never depend on which task finished
first.  A runner can also *stream*: ``map_stream`` rebuilds every partition
from its Dask graph (for example by re-reading Parquet) for each call and
keeps nothing between calls.
"""

from __future__ import annotations

import os
import threading
import uuid
from contextlib import contextmanager

import numpy as np

__all__ = []

# Coefficient vectors above this size are scattered once per evaluation
# (hash=False) instead of being embedded in every task.
_SCATTER_BYTES = 64 * 1024

_blas_lock = threading.Lock()
_blas_state = {"depth": 0, "limiter": None, "controller": None}


def _worker_blas_threads():
    """BLAS threads per task on a worker (``SOFTMAXKIT_WORKER_BLAS_THREADS``,
    default 1; 0 leaves BLAS alone)."""
    raw = os.environ.get("SOFTMAXKIT_WORKER_BLAS_THREADS", "1").strip() or "1"
    try:
        return max(int(raw), 0)
    except ValueError:
        return 1


@contextmanager
def blas_limit():
    """Limit BLAS threads while a task runs on a Dask worker.

    Dask runs ``threads_per_worker`` tasks at once per worker; each BLAS call
    spawning one thread per core on top of that oversubscribes the machine.
    Thread limits are process-wide, so the limit is reference counted: the
    first task in a process sets it and the last one to finish restores it
    (safe with several worker threads, and with ``processes=False`` clusters
    living in the client process).
    """
    threads = _worker_blas_threads()
    if threads == 0:
        yield
        return
    with _blas_lock:
        if _blas_state["depth"] == 0:
            try:
                if _blas_state["controller"] is None:
                    from threadpoolctl import ThreadpoolController

                    _blas_state["controller"] = ThreadpoolController()
                _blas_state["limiter"] = _blas_state["controller"].limit(
                    limits=threads, user_api="blas"
                )
            except Exception:  # threadpoolctl missing or unusable: run unlimited
                _blas_state["limiter"] = None
        _blas_state["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["depth"] -= 1
            if _blas_state["depth"] == 0 and _blas_state["limiter"] is not None:
                _blas_state["limiter"].restore_original_limits()
                _blas_state["limiter"] = None


def _limited(func, *args, **kwargs):
    """Run ``func`` under the worker BLAS limit (the task wrapper on workers)."""
    with blas_limit():
        return func(*args, **kwargs)


def active_client():
    """The active ``distributed.Client`` or None (no import of distributed
    unless it is installed; a configured local scheduler wins)."""
    import dask

    sched = dask.config.get("scheduler", None)
    if isinstance(sched, str) and sched.lower() in (
        "sync",
        "synchronous",
        "single-threaded",
        "threads",
        "threading",
        "processes",
        "multiprocessing",
    ):
        return None
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def total_memory(client):
    """Bytes of memory the computation may use: the sum of the workers'
    memory limits with a client, else the available system memory."""
    import psutil

    if client is not None:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        total = 0
        for info in workers.values():
            limit = info.get("memory_limit") or 0
            total += limit if limit else psutil.virtual_memory().total / max(len(workers), 1)
        if total:
            return float(total)
    return float(psutil.virtual_memory().available)


def _release(futures):
    """Drop the client's references (the data go once nothing needs them;
    unlike ``client.cancel`` this never cancels dependent results)."""
    for f in futures:
        f.release()


def _tree_sum(items, add):
    """Sum ``items`` pairwise in a fixed tree (same shape on every run)."""
    items = list(items)
    while len(items) > 1:
        nxt = [add(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


class _LocalRunner:
    """Dask's local scheduler: chunks live in the client process."""

    client = None

    def materialize(self, delayed_parts):
        import dask

        return list(dask.compute(*delayed_parts)) if delayed_parts else []

    def map(self, func, *lists, **kwargs):
        return [func(*args, **kwargs) for args in zip(*lists, strict=True)]

    map_futures = map

    def tree_sum(self, func, *lists, **kwargs):
        return _tree_sum(self.map(func, *lists, **kwargs), _add)

    def map_stream(self, func, delayed_parts, **kwargs):
        import dask

        tasks = [dask.delayed(func, pure=False)(p, **kwargs) for p in delayed_parts]
        return list(dask.compute(*tasks)) if tasks else []

    def tree_sum_stream(self, func, delayed_parts, **kwargs):
        import dask

        tasks = [dask.delayed(func, pure=False)(p, **kwargs) for p in delayed_parts]
        total = _tree_sum(tasks, dask.delayed(_add, pure=False))
        return dask.compute(total)[0]

    def release(self, handles):
        handles.clear()


def _add(a, b):
    return a + b


class _ClientRunner:
    """A ``distributed.Client``: chunks pinned in worker memory as futures."""

    def __init__(self, client):
        self.client = client

    def _check(self, futures):
        from distributed import wait

        wait(futures)
        for f in futures:
            if f.status == "error":
                f.result()  # re-raises the task's exception on the client

    def materialize(self, delayed_parts):
        futures = self.client.compute(delayed_parts)
        try:
            self._check(futures)  # wait, raising the first error, without moving data
        except BaseException:
            _release(futures)  # a task failed (bad data): keep nothing pinned
            raise
        return futures

    def _kwargs(self, kwargs):
        scattered = []
        out = {}
        for key, value in kwargs.items():
            if isinstance(value, np.ndarray) and value.nbytes > _SCATTER_BYTES:
                fut = self.client.scatter(value, hash=False, broadcast=False)
                scattered.append(fut)
                out[key] = fut
            else:
                out[key] = value
        return out, scattered

    def _submit(self, func, lists, kwargs):
        kw, scattered = self._kwargs(kwargs)
        n = len(lists[0])
        token = f"softmaxkit-{func.__name__}-{uuid.uuid4().hex}"  # readable dashboard keys
        keys = [f"{token}-{i}" for i in range(n)]
        futures = self.client.map(_limited, [func] * n, *lists, key=keys, **kw)
        return futures, scattered

    def map(self, func, *lists, **kwargs):
        if not lists[0]:
            return []
        futures, scattered = self._submit(func, lists, kwargs)
        try:
            return self.client.gather(futures)
        finally:
            _release(futures + scattered)

    def map_futures(self, func, *lists, **kwargs):
        """Like ``map`` but leave the results on the workers (futures)."""
        futures, scattered = self._submit(func, lists, kwargs)
        try:
            self._check(futures)
        except BaseException:
            _release(futures)
            raise
        finally:
            _release(scattered)
        return futures

    def tree_sum(self, func, *lists, **kwargs):
        """Sum of the per-chunk results, added on the workers in a fixed tree
        (for results too large to gather one per chunk)."""
        futures, scattered = self._submit(func, lists, kwargs)
        try:
            token = f"softmaxkit-add-{uuid.uuid4().hex}"
            count = iter(range(len(futures)))
            total = _tree_sum(
                futures,
                lambda a, b: self.client.submit(_add, a, b, key=f"{token}-{next(count)}"),
            )
            return total.result()
        finally:
            _release(futures + scattered)

    def _stream_tasks(self, func, delayed_parts, kwargs):
        import dask

        kw, scattered = self._kwargs(kwargs)
        tasks = [dask.delayed(_limited, pure=False)(func, p, **kw) for p in delayed_parts]
        return tasks, scattered

    def map_stream(self, func, delayed_parts, **kwargs):
        tasks, scattered = self._stream_tasks(func, delayed_parts, kwargs)
        futures = self.client.compute(tasks)
        try:
            return self.client.gather(futures)
        finally:
            _release(futures + scattered)

    def tree_sum_stream(self, func, delayed_parts, **kwargs):
        import dask

        tasks, scattered = self._stream_tasks(func, delayed_parts, kwargs)
        total = _tree_sum(tasks, dask.delayed(_add, pure=False))
        future = self.client.compute(total)
        try:
            return future.result()
        finally:
            _release([future, *scattered])

    def release(self, handles):
        _release(handles)
        handles.clear()
