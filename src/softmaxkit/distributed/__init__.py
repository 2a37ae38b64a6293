"""Softmax regression on Dask collections: the optimiser on the client, the
per-chunk loss, gradient and Hessian-vector products on the workers.

``SoftmaxRegression.fit`` and its prediction methods come here when they are
handed a Dask collection (the package never imports this module, nor Dask,
otherwise).  With a ``distributed.Client`` active the work runs on its
workers; without one, on Dask's local scheduler, with the same results.

Worker threads and BLAS: every task that runs the loss on a worker limits
the BLAS thread pool to ``SOFTMAXKIT_WORKER_BLAS_THREADS`` threads (default
1, the Dask convention: one BLAS thread per worker thread; 0 leaves BLAS
alone), so ``threads_per_worker`` tasks with multithreaded BLAS never
oversubscribe the cores.
"""

try:
    import dask  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "softmaxkit.distributed needs Dask: pip install 'softmaxkit[dask]'"
    ) from exc

from ._estimator import fit_dask, partial_fit_dask
from ._io import read_parquet_dataset
from ._predict import predict_lazy
from ._term import DaskDataTerm

__all__ = ["DaskDataTerm", "fit_dask", "partial_fit_dask", "predict_lazy",
           "read_parquet_dataset"]
