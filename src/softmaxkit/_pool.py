"""A private, fork-aware thread pool for work that releases the GIL: the
compiled kernels (``softmaxkit._kernels``) and SciPy's sparse products
(``losses._linear``).

``run_tasks(fn, tasks)`` runs ``fn(*args)`` for every ``args`` tuple, the first
in the calling thread and the others on a ``ThreadPoolExecutor`` that grows to
the largest number of extra threads asked for; it returns the results in task
order.  A child forked after the parent used the pool builds a new one (the
parent's threads do not exist there).  Idle threads block on the executor's
queue: nothing spins.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["run_tasks"]

_LOCK = threading.Lock()
_POOL = {"pid": None, "executor": None, "size": 0}


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
