"""The body of ``softmaxkit fit --engine dask``: Parquet files in, a fitted
model and its metadata out (the command line writes and prints them)."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

__all__ = ["fit_from_args"]

_N_BINS = 15


def _heldout_sums(frame, model, features, target):
    """Per-partition sums for the held-out metrics: [n, n_correct, sum of
    log-losses, sum of |per-bin (accuracy - confidence) * count| terms as the
    per-bin (accuracy sum, confidence sum, count) triples] on known labels."""
    from .. import metrics

    y = np.asarray(frame[target].to_numpy())
    if y.dtype.kind == "O":
        y = np.asarray(y.tolist())
    classes = np.asarray(model.classes_)
    idx = np.clip(np.searchsorted(classes, y), 0, classes.size - 1)
    known = classes[idx] == y
    out = np.zeros(3 + 3 * _N_BINS)
    if not known.any():
        return out
    X = frame.loc[known, features]
    idx = idx[known]
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    n = idx.size
    conf, acc, counts = metrics.reliability_curve(idx, proba, n_bins=_N_BINS)
    filled = counts > 0
    out[0] = n
    out[1] = np.sum(np.argmax(proba, axis=1) == idx)
    out[2] = metrics.log_loss(idx, proba) * n
    out[3 : 3 + _N_BINS] = np.where(filled, acc * counts, 0.0)
    out[3 + _N_BINS : 3 + 2 * _N_BINS] = np.where(filled, conf * counts, 0.0)
    out[3 + 2 * _N_BINS :] = counts
    return out


def fit_from_args(args, model):
    """Fit ``model`` on the Parquet data named by the ``softmaxkit fit``
    arguments with Dask.

    Parameters
    ----------
    args : argparse.Namespace
        ``data`` (a directory, a glob or a Parquet file), ``target``,
        ``features``, ``test_size``, ``seed``, ``calibrate``, ``scheduler``
        (a ``distributed`` scheduler address, or None for Dask's local
        scheduler in this process).
    model : SoftmaxRegression
        The unfitted estimator built from the command line.

    Returns
    -------
    model : SoftmaxRegression
        Fitted.
    metadata : dict
        ``features``, ``feature_dtypes`` and ``training`` (sizes, seconds,
        held-out metrics), as the in-memory command stores them.
    lines : list of str
        The report to print.

    Notes
    -----
    The held-out split is ``dask.dataframe.DataFrame.random_split`` with
    ``args.seed`` (row-wise Bernoulli, so its size is ``test_size`` on
    average); held-out accuracy, log-loss and ECE are per-partition sums of
    :mod:`softmaxkit.metrics` quantities, added on the client.

    Examples
    --------
    >>> import argparse, os, tempfile
    >>> import numpy as np, pandas as pd
    >>> from softmaxkit import SoftmaxRegression
    >>> from softmaxkit.distributed._cli import fit_from_args
    >>> d = tempfile.mkdtemp(); rng = np.random.default_rng(0)
    >>> for i in range(2):
    ...     X = rng.normal(size=(100, 2))
    ...     pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": X[:, 0] > 0}).to_parquet(
    ...         os.path.join(d, f"part-{i}.parquet"))
    >>> args = argparse.Namespace(data=d, target="label", features=None, test_size=0.25,
    ...                           seed=0, calibrate=False, scheduler=None)
    >>> model, meta, lines = fit_from_args(args, SoftmaxRegression())
    >>> model.classes_.tolist(), meta["features"], meta["training"]["engine"]
    ([False, True], ['a', 'b'], 'dask')
    """
    import dask

    from ._io import _expand, read_parquet_dataset

    if getattr(args, "calibrate", False):
        raise ValueError("--calibrate is not supported with --engine dask (fit the temperature "
                         "on a held-out file with the in-memory engine).")
    with contextlib.ExitStack() as stack:
        where = "Dask local scheduler (threads)"
        if getattr(args, "scheduler", None):
            try:
                from distributed import Client
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("--scheduler needs distributed: pip install "
                                  "'softmaxkit[dask]'") from exc
            try:
                client = stack.enter_context(
                    Client(args.scheduler, timeout="20s", set_as_default=False)
                )
            except OSError as exc:
                raise OSError(f"could not connect to the Dask scheduler at "
                              f"{args.scheduler!r}: {exc}") from None
            stack.enter_context(client.as_current())
            n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
            where = f"Dask cluster {args.scheduler} ({n_workers} workers)"
        X, y = read_parquet_dataset(args.data, args.target, args.features)
        features = [str(c) for c in X.columns]
        frame = X.assign(**{args.target: y}) if args.target not in features else X
        test = None
        if args.test_size > 0:
            train, test = frame.random_split([1.0 - args.test_size, args.test_size],
                                             random_state=args.seed)
        else:
            train = frame
        t0 = time.perf_counter()
        model.fit(train[features], train[args.target])
        fit_time = time.perf_counter() - t0

        held_out = None
        n_test = None
        if test is not None:
            parts = [dask.delayed(_heldout_sums)(p, model, features, args.target)
                     for p in test.to_delayed()]
            sums = np.sum(np.stack(dask.compute(*parts)), axis=0) if parts else np.zeros(48)
            n_test = int(sums[0])
            if n_test:
                acc_b = sums[3:3 + _N_BINS]
                conf_b = sums[3 + _N_BINS:3 + 2 * _N_BINS]
                held_out = {"accuracy": float(sums[1] / n_test),
                            "log_loss": float(sums[2] / n_test),
                            "ece": float(np.sum(np.abs(acc_b - conf_b)) / n_test)}
        n_train = _count(train)
        files = _expand(args.data)

    dtypes = [str(t) for t in X.dtypes]
    n_iter = int(np.max(model.n_iter_))
    training = {
        "data": os.path.basename(os.path.normpath(os.fspath(args.data))),
        "engine": "dask",
        "n_files": len(files),
        "target": args.target,
        "n_rows": n_train + (n_test or 0),
        "n_features": len(features),
        "n_train": n_train,
        "n_calibration": None,
        "n_held_out": n_test,
        "test_size": args.test_size,
        "stratified": False if test is not None else None,
        "seed": args.seed,
        "fit_seconds": round(fit_time, 4),
        "n_iter": n_iter,
        "held_out": held_out,
    }
    meta = {"features": features, "feature_dtypes": dtypes, "training": training}
    classes = model.classes_.tolist()
    shown = ", ".join(map(str, classes[:12])) + (", ..." if len(classes) > 12 else "")
    lines = [
        f"trained SoftmaxRegression on {where}",
        f"  data          {os.fspath(args.data)}: {len(files)} Parquet file(s), "
        f"{n_train + (n_test or 0)} rows x {len(features)} features, "
        f"{len(classes)} classes ({shown})",
        f"  split         {n_train} train"
        + ("" if test is None else f" / {n_test} held-out (random, seed {args.seed})"),
        f"  fit           {fit_time:.2f} s, {n_iter} iterations",
    ]
    if held_out is not None:
        lines += [f"held-out metrics ({n_test} rows)",
                  f"  accuracy      {held_out['accuracy']:.4f}",
                  f"  log-loss      {held_out['log_loss']:.4f}",
                  f"  ECE           {held_out['ece']:.4f} ({_N_BINS} bins)"]
    else:
        lines.append("held-out metrics: none (--test-size 0)")
    return model, meta, lines


def _count(frame):
    return int(frame.map_partitions(len).sum().compute())
