"""Reading a training set from Parquet files into Dask collections."""

from __future__ import annotations

import glob
import os

__all__ = ["read_parquet_dataset"]


def read_parquet_dataset(path, target, features=None, *, sample_weight=None):
    """Open a directory, a glob or a list of Parquet files as lazy (X, y).

    Nothing is read but the Parquet metadata: X and y are Dask collections
    whose partitions are the files' row groups, ready for
    ``SoftmaxRegression().fit(X, y)`` on a Dask cluster.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        A directory of ``*.parquet`` files, a glob pattern (``"data/*.parquet"``),
        a single file or a list of files.
    target : str
        Name of the label column.
    features : list of str or None, default=None
        Feature columns; None takes every column except ``target`` and
        ``sample_weight``.
    sample_weight : str or None, default=None
        Name of a column of sample weights: neither the target nor one of
        ``features`` (a ValueError).

    Returns
    -------
    X : dask DataFrame of shape (n_samples, n_features)
    y : dask Series of shape (n_samples,)
    w : dask Series of shape (n_samples,)
        Only when ``sample_weight`` is given.

    Notes
    -----
    A thin wrapper over :func:`dask.dataframe.read_parquet` that checks the
    path and the column names up front (a clear ValueError instead of an
    error at compute time) and keeps X, y (and w) partition-aligned.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from softmaxkit.distributed import read_parquet_dataset
    >>> d = tempfile.mkdtemp()
    >>> for i in range(2):
    ...     pd.DataFrame({"a": [0.0, 1.0], "b": [2.0, 3.0], "label": ["x", "y"]}).to_parquet(
    ...         os.path.join(d, f"part-{i}.parquet"))
    >>> X, y = read_parquet_dataset(d, "label")
    >>> list(X.columns), X.npartitions, y.compute().tolist()
    (['a', 'b'], 2, ['x', 'y', 'x', 'y'])
    """
    try:
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading Parquet with Dask needs the dask extra: pip install 'softmaxkit[dask]'"
        ) from exc

    paths = _expand(path)
    df = dd.read_parquet(paths if len(paths) > 1 else paths[0])
    columns = [str(c) for c in df.columns]
    from ..io._readers import check_parquet_names

    # a saved row index or a nameless column, refused as by the in-memory reader
    check_parquet_names(columns, paths[0] if len(paths) == 1 else path)
    if not isinstance(target, str):
        raise TypeError(f"target must be a column name (str); got {type(target).__name__}.")
    for name, what in ((target, "target"), (sample_weight, "sample_weight")):
        if name is not None and name not in columns:
            raise ValueError(
                f"The {what} column {name!r} is not in the Parquet data; columns: {columns}."
            )
    if sample_weight is not None and sample_weight == target:
        raise ValueError(f"The sample_weight column {sample_weight!r} is also the target column.")
    if features is None:
        features = [c for c in columns if c not in (target, sample_weight)]
    else:
        features = [str(f) for f in features]
        missing = [f for f in features if f not in columns]
        if missing:
            raise ValueError(f"Feature columns not in the Parquet data: {missing}.")
        if target in features:
            raise ValueError(f"The target column {target!r} is also listed as a feature.")
        if sample_weight is not None and sample_weight in features:
            raise ValueError(
                f"The sample_weight column {sample_weight!r} is also listed as a feature.")
    if not features:
        raise ValueError("No feature columns: the Parquet data hold only the target column.")
    X = df[features]
    y = df[target]
    if sample_weight is not None:
        return X, y, df[sample_weight]
    return X, y


def _expand(path):
    if isinstance(path, list | tuple):
        items = [os.fspath(p) for p in path]
    else:
        items = [os.fspath(path)]
    files = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(glob.glob(os.path.join(item, "*.parquet")))
            found += sorted(glob.glob(os.path.join(item, "*.parq")))
            if not found:
                raise ValueError(f"No *.parquet files in the directory {item!r}.")
            files += found
        elif glob.has_magic(item):
            found = sorted(glob.glob(item))
            if not found:
                raise ValueError(f"No files match the pattern {item!r}.")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise ValueError(f"No such file or directory: {item!r}.")
    return files
