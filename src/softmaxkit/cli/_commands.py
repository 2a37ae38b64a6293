"""The subcommands of ``softmaxkit``.  Each returns an exit code; expected
errors are raised as CLIError (or DataError / ModelFileError / OSError) and
turned into one ``error: ...`` line by :func:`softmaxkit.cli.main`."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

from ._parser import CLIError, UsageError

# ------------------------------------------------------------------ helpers
N_BINS = 15


def _out(*lines):
    for line in lines:
        print(line)


def _check_writable_file(path, what):
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CLIError(f"cannot write {what} {path!r}: it is a directory.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CLIError(f"cannot write {what} {path!r}: directory {parent!r} does not exist.")
    if not os.access(parent, os.W_OK):
        raise CLIError(f"cannot write {what} {path!r}: directory {parent!r} is not writable.")


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (links and spellings
    resolved): os.path.samefile when both exist, else their real paths."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.exists(a) and os.path.exists(b):
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    return os.path.realpath(a) == os.path.realpath(b)


MODEL_EXTENSION = ".skm"
_DATA_EXTENSIONS = (".csv", ".parquet", ".pq")


def _check_model_path(model, data):
    """Refuse a --model path that would overwrite DATA or looks like a data file."""
    model = os.fspath(model)
    if _same_file(model, data):
        raise CLIError(f"--model {model!r} is the input data file {os.fspath(data)!r}; "
                       f"writing the model there would destroy the data. Choose another "
                       f"path, e.g. 'model{MODEL_EXTENSION}'.")
    root, ext = os.path.splitext(model)
    if ext.lower() in _DATA_EXTENSIONS:
        raise CLIError(f"--model {model!r} has a data file extension ({ext}); model files "
                       f"use {MODEL_EXTENSION}, e.g. {root + MODEL_EXTENSION!r}.")


def _prepare_dir(path, what):
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"cannot write {what} to {path!r}: it exists and is not a directory.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create {what} directory {path!r}: {exc.strerror}.") from None
    if not os.access(path, os.W_OK):
        raise CLIError(f"cannot write {what} to {path!r}: directory is not writable.")
    return path


def _save_png(ax, path):
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        ax.figure.savefig(tmp, format="png", dpi=110)
    return path


def _metrics(y_idx, proba):
    from .. import metrics

    return {
        "accuracy": float(np.mean(np.argmax(proba, axis=1) == y_idx)),
        "log_loss": float(metrics.log_loss(y_idx, proba)),
        "ece": float(metrics.expected_calibration_error(y_idx, proba, n_bins=N_BINS)),
    }


def _proba(model, X, temperature):
    """Probabilities of ``model`` on X, calibrated when ``temperature`` is set."""
    if temperature is None:
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    from ..special import softmax

    # log_proba = z - logsumexp(z) differs from the logits by a per-row
    # constant, so softmax(log_proba / T) == softmax(z / T).
    return softmax(np.asarray(model.predict_log_proba(X), dtype=np.float64), axis=1,
                   temperature=float(temperature))


def _label_indices(y, classes, what, label_text=None):
    """Map labels ``y`` to indices into ``classes``; error on unseen labels.

    Numeric labels match numeric classes by value (``1.0`` is class ``1``);
    against string or bool classes a label matches by its spelling, the
    stripped text read from the CSV when ``label_text`` (``(texts, codes)``
    from read_table) is given, so ``01`` is class ``'01'``, never ``'1'``.
    String labels match numeric or bool classes only by the exact spelling of
    one (``'01'`` is not class 1).  Work per row is vectorised; Python only
    looks at the distinct labels."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    y = np.asarray(y)
    if (kind in "US" and y.dtype.kind not in "US") or (kind == "b" and y.dtype.kind in "iuf"):
        if label_text is not None and len(label_text[1]) == len(y):
            texts, codes = label_text
            y = np.asarray(np.asarray(texts, dtype=object).tolist(), dtype=str)[codes]
        else:
            y = y.astype(str)
    elif kind in "iu" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    uniq, inv = np.unique(y, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    keys = uniq.tolist()
    if y.dtype.kind in "US" and kind not in "US":
        keys = [_text_to_class(v, kind) for v in keys]
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    idx_u = np.empty(len(keys), dtype=np.intp)
    for j, v in enumerate(keys):
        try:
            idx_u[j] = lookup.get(v, -1)
        except TypeError:  # an unhashable label
            idx_u[j] = -1
    idx = idx_u[inv] if len(inv) else np.zeros(0, dtype=np.intp)
    if np.any(idx < 0):
        unseen = list(dict.fromkeys(y[idx < 0].tolist()))
        shown = ", ".join(repr(v) for v in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
        raise CLIError(
            f"{what} holds label{'s' if len(unseen) > 1 else ''} the model was not trained "
            f"on: {shown} (model classes: {', '.join(map(str, classes.tolist()))})."
        )
    return idx


def _text_to_class(text, kind):
    """``text`` (a string label: some label of the file is not a number, or
    two spellings give the same number) as a label of a model whose classes
    have dtype kind ``kind``, when it is the exact spelling of one (else
    ``text`` itself: unseen).  Called on distinct labels only."""
    if kind in "iu":
        try:
            v = int(text)
        except ValueError:
            return text
        return v if str(v) == text else text
    if kind == "f":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "b":
        return {"True": True, "False": False}.get(text, text)
    return text


@contextlib.contextmanager
def _progress(model, enabled):
    """A rich progress bar fed by softmaxkit.solvers.on_iteration, shown only
    when the fit has run for more than about a second and stderr is a terminal."""
    hook = None
    try:
        from ..solvers import on_iteration as hook
    except ImportError:
        hook = None
    if not enabled or hook is None or not sys.stderr.isatty():
        yield
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:  # pragma: no cover - rich is in the [progress] extra
        yield
        return
    start = time.perf_counter()
    state = {"bar": None, "task": None}

    def on_iter(info):
        if state["bar"] is None:
            if time.perf_counter() - start < 1.0:
                return
            bar = Progress(
                TextColumn("fitting"), BarColumn(),
                TextColumn("iteration {task.completed} (max {task.fields[max_iter]})"),
                TextColumn("objective {task.fields[obj]:.6g}"),
                TextColumn("|grad| {task.fields[g]:.2e}"), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            bar.start()
            state["bar"] = bar
            # solvers usually stop long before max_iter: an indeterminate (pulsing) bar
            state["task"] = bar.add_task("fit", total=None, obj=0.0, g=0.0,
                                         max_iter=info.get("max_iter", "?"))
        state["bar"].update(state["task"], completed=info.get("iteration", 0),
                            obj=float(info.get("objective", np.nan)),
                            g=float(info.get("grad_norm", np.nan)))

    try:
        with hook(on_iter):
            yield
    finally:
        if state["bar"] is not None:
            state["bar"].stop()


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _from_softmaxkit(w):
    """Whether warning ``w`` is attributed to softmaxkit's own code."""
    try:
        path = os.path.abspath(w.filename)
    except (TypeError, ValueError):
        return False
    return path == _PACKAGE_DIR or path.startswith(_PACKAGE_DIR + os.sep)


@contextlib.contextmanager
def _warnings_to_stderr(rewrite=None):
    """Show the warnings raised in the block, once each, as one-line
    ``warning: ...`` messages on stderr after it (none if it raises).
    Deprecation notices (DeprecationWarning, FutureWarning) of other packages
    (dask, pandas, ...) are meant for developers and are dropped; ``rewrite``
    maps a message to the text shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        if issubclass(w.category, _DEPRECATIONS) and not _from_softmaxkit(w):
            continue
        msg = " ".join(str(w.message).split())
        if rewrite is not None:
            msg = rewrite(msg)
        if msg not in seen:
            seen.add(msg)
            print(f"warning: {msg}", file=sys.stderr)


def _fmt(v, nd=4):
    if isinstance(v, bool) or not isinstance(v, int | float | np.number):
        return "n/a"  # None, or a free-form metadata value of another type
    v = float(v)
    if np.isnan(v):
        return "n/a"
    if isinstance(v, float) and np.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = f"{v:.{nd}f}"
    # a log-loss of -1e-17 (probabilities one rounding above 1) is no '-0.0000'
    return text.lstrip("-") if float(text) == 0 else text


def _json_safe(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no inf/NaN)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def _has_non_finite(obj):
    if isinstance(obj, dict):
        return any(_has_non_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_non_finite(v) for v in obj)
    return isinstance(obj, (float, np.floating)) and not np.isfinite(obj)


def _classes_text(classes, limit=12):
    c = [str(v) for v in classes]
    return ", ".join(c[:limit]) + (f", ... ({len(c) - limit} more)" if len(c) > limit else "")


def _model_params_text(model, keys=("penalty", "C", "l1_ratio", "solver", "class_weight")):
    params = model.get_params(deep=False)
    return ", ".join(f"{k}={params[k]!r}" for k in keys if k in params)


def _load_classifier(path):
    from ..io import load_model

    model, meta = load_model(path, return_metadata=True)
    if meta["estimator"] != "SoftmaxRegression":
        raise CLIError(f"model file {os.fspath(path)!r} holds a {meta['estimator']}; the "
                       "command line works with SoftmaxRegression models (not a classifier "
                       "of single labels).")
    return model, meta


def _feature_names(model, meta):
    names = meta.get("feature_names")
    if names is None:
        names = _dict_field(meta, "metadata").get("features")
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                and len(names) == getattr(model, "n_features_in_", -1)):
            return None
    return None if names is None else [str(n) for n in names]


def _csv_format(args):
    """The --sep and --decimal of a command (checked together: argparse checks each)."""
    sep, decimal = getattr(args, "sep", ","), getattr(args, "decimal", ".")
    if sep == decimal:
        raise UsageError(f"--decimal {decimal!r} needs another --sep than {sep!r} (a file with "
                         "decimal commas is usually ';'-separated: --sep ';').")
    return {"sep": sep, "decimal": decimal}


def _read_for_model(model, meta, data, target=None, csv_format=None):
    """Read DATA with the model's feature columns, naming any missing ones."""
    from ..io import DataError, read_frame, read_table

    fmt = csv_format or {}
    names = _feature_names(model, meta)
    if names is None:
        table = read_table(data, target=target, **fmt)
        if table.X.shape[1] != model.n_features_in_:
            raise CLIError(
                f"the model expects {model.n_features_in_} feature columns; "
                f"{os.fspath(data)!r} has {table.X.shape[1]}."
            )
        shown = ", ".join(repr(c) for c in table.feature_names[:8])
        more = ", ..." if len(table.feature_names) > 8 else ""
        print(f"warning: the model has no feature names (it was fitted on an array), so the "
              f"columns of {os.fspath(data)!r} are matched to its features by position "
              f"({shown}{more}); only their count ({model.n_features_in_}) is checked.",
              file=sys.stderr)
        return table
    if target is not None and target in names:
        raise CLIError(f"--target {target!r} is one of the model's features, not its label "
                       f"column (the model's features: {_names_text(names)}).")
    df_cols = set(read_frame(data, known_names=names, **fmt).columns)
    # CSV header names are read stripped (so are the names asked for): a model
    # fitted on ' sepal_width' (from a ', '-separated file) reads 'sepal_width'
    csv = os.path.splitext(os.fspath(data))[1].lower() == ".csv"
    missing = [c for c in names if (c.strip() if csv else c) not in df_cols]
    if missing:
        raise DataError(
            f"{os.fspath(data)!r} is missing the model's feature column"
            f"{'s' if len(missing) > 1 else ''}: {_names_text(missing)}."
        )
    return read_table(data, target=target, features=names, **fmt)


def _names_text(names, limit=12):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _frame(X, names):
    import pandas as pd

    return pd.DataFrame(X, columns=names) if names is not None else X


# --------------------------------------------------------------------- fit
def _build_estimator(args):
    from .. import SoftmaxRegression

    params = {
        "penalty": None if args.penalty == "none" else args.penalty,
        "C": args.C,
        "solver": args.solver,
        "class_weight": args.class_weight,
    }
    if args.penalty == "elasticnet":
        if args.l1_ratio is None:
            raise CLIError("--penalty elasticnet needs --l1-ratio F (a number in [0, 1]).")
        params["l1_ratio"] = args.l1_ratio
    elif args.l1_ratio is not None:
        raise CLIError("--l1-ratio is only used with --penalty elasticnet.")
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    return SoftmaxRegression(**params)


def _split(X, y, size, seed):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(X, y, test_size=size, stratify=y, random_state=seed), True
    except ValueError:  # a class too small to stratify
        return train_test_split(X, y, test_size=size, random_state=seed), False


def _check_label_type(y, target):
    """Refuse float labels (the reader makes integral ones int64): a classifier,
    as in scikit-learn, takes integer or string classes."""
    if np.asarray(y).dtype.kind != "f":
        return
    values = np.unique(y)
    odd = values[values != np.round(values)]
    if odd.size:
        shown = ", ".join(repr(float(v)) for v in odd[:3]) + (", ..." if odd.size > 3 else "")
        what = f"non-integral numbers ({shown})"
    else:
        what = "whole numbers too large to be exact in float64 (beyond 2**53)"
    raise CLIError(
        f"labels of column {target!r} are {what}; classes must be integers or strings "
        "(map them to integers or names first)."
    )


def _check_dask_data(data):
    """Refuse, in one line, data the Dask engine cannot read (it reads Parquet)."""
    data = os.fspath(data)
    ext = os.path.splitext(data)[1].lower()
    if ext == ".csv" or (os.path.isfile(data) and ext not in (".parquet", ".pq")):
        raise CLIError(f"--engine dask reads Parquet data only (a .parquet file, a directory "
                       f"of them or a glob such as 'data/*.parquet'), not {data!r}; for a CSV "
                       "file use the default --engine memory.")


def _check_dir_creatable(path, what):
    """Check, without creating anything, that directory ``path`` exists and is
    writable or can be made (its nearest existing ancestor is a writable
    directory); the error is the one :func:`_prepare_dir` would give later."""
    path = os.fspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise CLIError(f"cannot write {what} to {path!r}: it exists and is not a "
                           "directory.")
        if not os.access(path, os.W_OK):
            raise CLIError(f"cannot write {what} to {path!r}: directory is not writable.")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CLIError(f"cannot create {what} directory {path!r}: {parent!r} is not a "
                       "directory.")
    if not os.access(parent, os.W_OK):
        raise CLIError(f"cannot create {what} directory {path!r}: {parent!r} is not "
                       "writable.")


def _check_split_sizes(n, n_classes, args):
    """Refuse splits too small to hold a row of every class: scikit-learn's
    stratified split needs as many rows as classes on each side, and the
    random split it would fall back to may leave a class out of the training
    rows, depending on the seed.  Sizes as ``train_test_split`` makes them
    (``ceil(fraction * rows)`` held out); calibration takes 20% of the
    training rows."""
    import math

    parts = []
    if args.test_size > 0:
        n_test = math.ceil(args.test_size * n)
        parts += [(f"the held-out split (--test-size {args.test_size:g} of {n} rows)", n_test),
                  ("the training split", n - n_test)]
        n -= n_test
    if args.calibrate:
        n_cal = math.ceil(0.2 * n)
        parts += [(f"the calibration split (20% of {n} training rows)", n_cal),
                  ("the rows left to train on", n - n_cal)]
    for what, rows in parts:
        if rows < n_classes:
            raise CLIError(
                f"{what} would hold {rows} row{'s' if rows != 1 else ''}, fewer than the "
                f"{n_classes} classes, so some class would be missing from it; use more rows, "
                "a different --test-size (0 trains on every row) or leave out --calibrate."
            )


def _check_class_sizes(y, args):
    """Refuse, before splitting, a class with fewer rows than the splits need:
    one to train on, one to hold out (--test-size > 0), one to calibrate on
    (--calibrate).  Otherwise where its rows land depends on the seed, and a
    held-out or calibration label the model never saw fails later."""
    splits = []
    if args.test_size > 0:
        splits.append(f"a held-out split (--test-size {args.test_size:g})")
    if args.calibrate:
        splits.append("a calibration split (--calibrate)")
    need = 1 + len(splits)
    if need == 1:
        return
    values, counts = np.unique(y, return_counts=True)
    small = [(v, int(c)) for v, c in zip(values.tolist(), counts.tolist(), strict=True)
             if c < need]
    if not small:
        _check_split_sizes(len(y), values.size, args)
        return
    v, c = small[0]
    more = f" (and {len(small) - 1} more class{'es' if len(small) > 2 else ''})" \
        if len(small) > 1 else ""
    ways = ["add rows of that class"]
    if args.test_size > 0:
        ways.append("use --test-size 0 to train on every row (no held-out metrics)")
    if args.calibrate:
        ways.append("leave out --calibrate")
    raise CLIError(
        f"class {v!r} of target column {args.target!r} has only {c} row{'s' if c != 1 else ''}"
        f"{more}; {' and '.join(splits)} need{'s' if len(splits) == 1 else ''} at least "
        f"{need} rows of every class (one for each split and one to train on): "
        f"{', or '.join(ways)}."
    )


def _calibration_warning(n_cal):
    """Reword TemperatureScaler's 'lies outside bounds' warning (whose advice,
    to widen the bounds, a command-line user cannot follow)."""
    import re

    def rewrite(msg):
        m = re.match(r"The optimal temperature lies outside bounds=.*; using T=([^.]+(?:\.\d+)?)",
                     msg)
        if m is None:
            return msg
        t = float(m[1])
        effect = ("its probabilities nearly 0 or 1" if t < 1 else
                  "its probabilities nearly uniform")
        return (f"the temperature fitted on the calibration split ({n_cal} rows) reached its "
                f"limit, T={t:g}: that split is too small or too easily separated to calibrate "
                f"on; the model is stored with T={t:g}, which makes {effect}. Use more data, or "
                "fit without --calibrate.")

    return rewrite


def cmd_fit(args):
    from ..io import read_table, save_model

    fmt = _csv_format(args)
    _check_writable_file(args.model, "model file")
    _check_model_path(args.model, args.data)
    if getattr(args, "engine", "memory") == "dask":  # --- Dask engine (issue #7) ---
        _check_dask_data(args.data)
        from ..distributed._cli import fit_from_args

        with _warnings_to_stderr(), _progress(None, True):
            model, meta, lines = fit_from_args(args, _build_estimator(args))
        save_model(model, args.model, metadata=_json_safe(meta))
        _out(*lines, f"model written to {os.fspath(args.model)}")
        return 0  # --- end Dask engine ---
    if getattr(args, "scheduler", None) is not None:
        raise CLIError("--scheduler needs --engine dask.")
    table = read_table(args.data, target=args.target, features=args.features, **fmt)
    X, y = table.X, table.y
    _check_label_type(y, args.target)
    classes = np.unique(y)
    if classes.size < 2:
        raise CLIError(
            f"target column {args.target!r} of {args.data!r} has a single class "
            f"({classes[0].item()!r}); a classifier needs at least two."
        )
    _check_class_sizes(y, args)
    model = _build_estimator(args)
    names = table.feature_names

    stratified = None
    if args.test_size > 0:
        (X_tr, X_te, y_tr, y_te), stratified = _split(X, y, args.test_size, args.seed)
    else:
        X_tr, y_tr, X_te, y_te = X, y, None, None
    X_cal = y_cal = None
    if args.calibrate:
        (X_tr, X_cal, y_tr, y_cal), _ = _split(X_tr, y_tr, 0.2, args.seed)
    if np.unique(y_tr).size < 2:
        raise CLIError("the training split holds a single class; use more data or a smaller "
                       "--test-size.")
    lost = np.setdiff1d(classes, y_tr)
    if lost.size:  # not seen after the up-front check, but a split may still miss one
        raise CLIError(
            f"the training split holds no row of class{'es' if lost.size > 1 else ''} "
            f"{_names_text(lost.tolist(), 5)}; use more rows of "
            f"{'them' if lost.size > 1 else 'it'}, a smaller --test-size or no --calibrate."
        )

    t0 = time.perf_counter()
    with _warnings_to_stderr(), _progress(model, True):
        model.fit(_frame(X_tr, names), y_tr)
    fit_time = time.perf_counter() - t0

    temperature = None
    if args.calibrate:
        from ..models import TemperatureScaler

        with _warnings_to_stderr(rewrite=_calibration_warning(len(y_cal))):
            scaler = TemperatureScaler().fit_estimator(model, _frame(X_cal, names), y_cal)
        temperature = float(scaler.temperature_)

    held_out = None
    if X_te is not None:
        idx = _label_indices(y_te, model.classes_, "the held-out split")
        Xf = _frame(X_te, names)
        held_out = _metrics(idx, _proba(model, Xf, None))
        if temperature is not None:
            cal = _metrics(idx, _proba(model, Xf, temperature))
            held_out.update(log_loss_calibrated=cal["log_loss"], ece_calibrated=cal["ece"])
    train_acc = float(np.mean(model.predict(_frame(X_tr, names)) == y_tr))

    n_iter = getattr(model, "n_iter_", None)
    n_iter = int(np.max(n_iter)) if n_iter is not None else None
    training = {
        "data": os.path.basename(os.fspath(args.data)),
        "target": args.target,
        "n_rows": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_train": int(X_tr.shape[0]),
        "n_calibration": None if X_cal is None else int(X_cal.shape[0]),
        "n_held_out": None if X_te is None else int(X_te.shape[0]),
        "test_size": args.test_size,
        "stratified": stratified,
        "seed": args.seed,
        "fit_seconds": round(fit_time, 4),
        "n_iter": n_iter,
        "train_accuracy": train_acc,
        "held_out": held_out,
    }
    meta = {"features": names, "feature_dtypes": table.feature_dtypes, "training": training}
    # JSON has no inf: a non-finite metric (log-loss inf when a held-out row's
    # true class gets probability 0) is stored as null, and the model is still written
    save_model(model, args.model, temperature=temperature, metadata=_json_safe(meta))

    k = len(model.classes_)
    _out(
        f"trained SoftmaxRegression({_model_params_text(model)})",
        f"  data          {os.fspath(args.data)}: {X.shape[0]} rows x {X.shape[1]} features, "
        f"{k} classes ({_classes_text(model.classes_)})",
        f"  split         {X_tr.shape[0]} train"
        + ("" if X_cal is None else f" / {X_cal.shape[0]} calibration")
        + ("" if X_te is None else f" / {X_te.shape[0]} held-out")
        + ("" if stratified is None else (" (stratified" if stratified else " (random")
           + f", seed {args.seed})"),
        f"  fit           {fit_time:.2f} s, {n_iter} iterations",
        f"  train acc     {_fmt(train_acc)}",
    )
    if temperature is not None:
        _out(f"  temperature   {temperature:.4f} (fitted on the calibration split)")
    if held_out is not None:
        _out(f"held-out metrics ({X_te.shape[0]} rows)",
             f"  accuracy      {_fmt(held_out['accuracy'])}")
        if temperature is None:
            _out(f"  log-loss      {_fmt(held_out['log_loss'])}",
                 f"  ECE           {_fmt(held_out['ece'])} ({N_BINS} bins)")
        else:
            _out(f"  log-loss      {_fmt(held_out['log_loss_calibrated'])} calibrated "
                 f"({_fmt(held_out['log_loss'])} uncalibrated)",
                 f"  ECE           {_fmt(held_out['ece_calibrated'])} calibrated "
                 f"({_fmt(held_out['ece'])} uncalibrated; {N_BINS} bins)")
        if _has_non_finite(held_out):
            _out("  (a held-out row's true class got probability 0, so its log-loss is "
                 "infinite; stored as null in the model file)")
    else:
        _out("held-out metrics: none (--test-size 0)")
    _out(f"model written to {os.fspath(args.model)}")
    return 0


# ----------------------------------------------------------------- predict
_OUTPUT_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cmd_predict(args):
    import pandas as pd

    from ..io import atomic_path

    kind = "csv"
    if args.output is not None:
        _check_writable_file(args.output, "output file")
        ext = os.path.splitext(args.output)[1].lower()
        if ext not in _OUTPUT_KINDS:
            raise CLIError(f"unsupported output type {ext or '(none)'!r} for {args.output!r}; "
                           "use .csv or .parquet.")
        kind = _OUTPUT_KINDS[ext]
        for other, what in ((args.data, "the input data file"), (args.model, "the model file")):
            if _same_file(args.output, other):
                raise CLIError(f"--output {os.fspath(args.output)!r} is {what} "
                               f"{os.fspath(other)!r}; writing the predictions there would "
                               "destroy it. Choose another path.")
    fmt = _csv_format(args)
    model, meta = _load_classifier(args.model)
    table = _read_for_model(model, meta, args.data, csv_format=fmt)
    proba = _proba(model, _frame(table.X, _feature_names(model, meta)), meta.get("temperature"))
    classes = np.asarray(model.classes_)
    pred = classes[np.argmax(proba, axis=1)]
    cols = {}
    if args.proba:
        for j, c in enumerate(classes.tolist()):
            cols[f"proba_{c}"] = proba[:, j]
    cols["prediction"] = pred
    out = pd.DataFrame(cols)
    if args.output is None:
        out.to_csv(sys.stdout, index=False, **fmt)
        return 0
    with atomic_path(args.output) as tmp:
        if kind == "csv":
            out.to_csv(tmp, index=False, **fmt)
        else:
            out.to_parquet(tmp, index=False)
    print(f"wrote {len(out)} predictions to {args.output}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    fmt = _csv_format(args)
    if args.plots is not None:  # before any work or output, as demo does
        _check_dir_creatable(args.plots, "plots")
    model, meta = _load_classifier(args.model)
    table = _read_for_model(model, meta, args.data, target=args.target, csv_format=fmt)
    classes = np.asarray(model.classes_)
    idx = _label_indices(table.y, classes, f"target column {args.target!r} of {args.data!r}",
                         getattr(table, "_label_text", None))
    T = meta.get("temperature")
    Xf = _frame(table.X, _feature_names(model, meta))
    proba = _proba(model, Xf, T)
    m = _metrics(idx, proba)
    raw = _metrics(idx, _proba(model, Xf, None)) if T is not None else None
    pred = np.argmax(proba, axis=1)
    k = len(classes)
    prec, rec, _, support = precision_recall_fscore_support(
        idx, pred, labels=np.arange(k), zero_division=0
    )
    # scikit-learn >= 1.9 returns the support as float64 when no prediction is right
    support = np.asarray(support).round().astype(np.int64)
    cm = confusion_matrix(idx, pred, labels=np.arange(k))

    cal = "" if T is None else f", calibrated with T = {T:.4f}"
    _out(f"evaluated {os.fspath(args.model)} on {os.fspath(args.data)} "
         f"({table.n_rows} rows{cal})",
         f"  accuracy   {_fmt(m['accuracy'])}",
         f"  log-loss   {_fmt(m['log_loss'])}"
         + ("" if raw is None else f" (uncalibrated {_fmt(raw['log_loss'])})"),
         f"  ECE        {_fmt(m['ece'])} ({N_BINS} bins"
         + ("" if raw is None else f"; uncalibrated {_fmt(raw['ece'])}") + ")")
    names = [str(c) for c in classes]
    w = max(5, *(len(n) for n in names))
    _out("per class", f"  {'class':<{w}}  precision  recall  support")
    for j in range(k):
        _out(f"  {names[j]:<{w}}  {prec[j]:9.3f}  {rec[j]:6.3f}  {support[j]:7d}")
    cw = max(w, len(str(cm.max())))
    _out("confusion matrix (rows: true, columns: predicted)",
         "  " + " " * w + "".join(f" {n:>{cw}}" for n in names))
    for j in range(k):
        _out(f"  {names[j]:<{w}}" + "".join(f" {v:>{cw}d}" for v in cm[j]))

    if args.plots is not None:
        from ..plotting import plot_confusion_matrix, plot_loss_curve, plot_reliability_diagram

        out = _prepare_dir(args.plots, "plots")
        written = []
        ax = plot_confusion_matrix(classes[idx], classes[pred], labels=classes)
        written.append(_save_png(ax, os.path.join(out, "confusion_matrix.png")))
        if T is not None:
            ax = plot_reliability_diagram(idx, _proba(model, Xf, None), n_bins=N_BINS,
                                          label="uncalibrated")
            ax = plot_reliability_diagram(idx, proba, n_bins=N_BINS, ax=ax,
                                          label=f"temperature-scaled (T={T:.2f})")
        else:
            ax = plot_reliability_diagram(idx, proba, n_bins=N_BINS, label="model")
        written.append(_save_png(ax, os.path.join(out, "reliability.png")))
        if getattr(model, "loss_curve_", None) is not None and len(model.loss_curve_):
            ax = plot_loss_curve(model.loss_curve_, ylabel=_LOSS_YLABEL)
            written.append(_save_png(ax, os.path.join(out, "loss_curve.png")))
        _out(f"plots written: {', '.join(written)}")
    return 0


_LOSS_YLABEL = "objective: C·Σ cross-entropy + penalty (nats)"


# ----------------------------------------------------------------- inspect
def _dict_field(d, key):
    """``d[key]`` when it is a dict, else ``{}``: the user metadata of a model file
    is free-form JSON (save_model(..., metadata=...)), so the fields the CLI writes
    may be missing or of another type in a file written by the library."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def cmd_inspect(args):
    model, meta = _load_classifier(args.model)
    user = _dict_field(meta, "metadata")
    tr = _dict_field(user, "training")
    names = _feature_names(model, meta)
    dtypes = user.get("feature_dtypes")
    if not (isinstance(dtypes, list) and names is not None and len(dtypes) == len(names)):
        dtypes = None
    classes = [str(c) for c in np.asarray(model.classes_).tolist()]
    _out(f"model file    {os.fspath(args.model)} (format {meta['format']} "
         f"v{meta['format_version']}, softmaxkit {meta.get('softmaxkit_version')}, "
         f"{meta.get('created_utc')})",
         f"estimator     {meta['estimator']}({_model_params_text(model)})",
         f"classes       {len(classes)}: {_classes_text(classes, 20)}")
    if names is None:
        _out(f"features      {model.n_features_in_} (unnamed)")
    else:
        shown = [f"{n} ({t})" for n, t in zip(names, dtypes, strict=False)] if dtypes else names
        more = f", ... ({len(shown) - 12} more)" if len(shown) > 12 else ""
        _out(f"features      {len(names)}: {', '.join(shown[:12])}{more}")
    if tr:
        _out(f"training data {tr.get('data')}: {tr.get('n_rows')} rows x "
             f"{tr.get('n_features')} features, target {tr.get('target')!r}; "
             f"{tr.get('n_train')} used to train, {tr.get('n_iter')} iterations, "
             f"{tr.get('fit_seconds')} s")
        _out(f"train acc     {_fmt(tr.get('train_accuracy'))}")
        ho = _dict_field(tr, "held_out")
        if ho:
            line = (f"held-out      {tr.get('n_held_out')} rows: accuracy "
                    f"{_fmt(ho.get('accuracy'))}, log-loss {_fmt(ho.get('log_loss'))}, ECE "
                    f"{_fmt(ho.get('ece'))}")
            if "ece_calibrated" in ho:
                line += (f" (calibrated: log-loss {_fmt(ho.get('log_loss_calibrated'))}, "
                         f"ECE {_fmt(ho.get('ece_calibrated'))})")
            _out(line)
    T = meta.get("temperature")
    _out(f"temperature   {'none (not calibrated)' if T is None else f'{T:.4f}'}")
    coef = np.asarray(model.coef_)
    fnames = names or [f"x{j}" for j in range(coef.shape[1])]
    top = min(args.top, coef.shape[1])
    _out(f"largest weights per class (top {top} by |w|; intercept last)")
    w = max(5, *(len(c) for c in classes[: coef.shape[0]]))
    for r in range(coef.shape[0]):
        order = [j for j in np.argsort(-np.abs(coef[r]), kind="stable")[:top] if coef[r, j]]
        cells = ", ".join(f"{fnames[j]} {coef[r, j]:+.4g}" for j in order) or "all weights 0"
        nnz = int(np.count_nonzero(coef[r]))
        if 0 < nnz < coef.shape[1]:
            cells += f" ({nnz} of {coef.shape[1]} weights nonzero)"
        label = classes[r] if coef.shape[0] == len(classes) else f"row {r}"
        _out(f"  {label:<{w}}  {cells}; intercept {float(model.intercept_[r]):+.4g}")
    return 0


# -------------------------------------------------------------------- demo
def cmd_demo(args):
    t_start = time.perf_counter()
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from .. import SoftmaxRegression
    from ..models import TemperatureScaler
    from ..plotting import (
        plot_confusion_matrix,
        plot_loss_curve,
        plot_reliability_diagram,
        plot_softmax_jacobian,
        plot_softmax_temperature,
    )

    out = _prepare_dir(args.out, "demo plots")
    digits = load_digits()
    X = digits.data / 16.0  # pixel intensities 0..16 -> [0, 1]
    y = digits.target
    if args.n_samples is not None and args.n_samples < X.shape[0]:
        X, _, y, _ = train_test_split(X, y, train_size=args.n_samples, stratify=y,
                                      random_state=args.seed)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=args.seed)
    X_fit, X_cal, y_fit, y_cal = train_test_split(X_tr, y_tr, test_size=0.2, stratify=y_tr,
                                                  random_state=args.seed)
    model = SoftmaxRegression(C=1.0)
    t0 = time.perf_counter()
    with _warnings_to_stderr():
        model.fit(X_fit, y_fit)
    fit_time = time.perf_counter() - t0
    with _warnings_to_stderr():
        T = float(TemperatureScaler().fit_estimator(model, X_cal, y_cal).temperature_)

    classes = np.asarray(model.classes_)
    idx_te = _label_indices(y_te, classes, "digits")
    p_raw = _proba(model, X_te, None)
    p_cal = _proba(model, X_te, T)
    m_raw, m_cal = _metrics(idx_te, p_raw), _metrics(idx_te, p_cal)
    train_acc = float(np.mean(model.predict(X_fit) == y_fit))
    n_iter = int(np.max(model.n_iter_))

    names = [str(c) for c in classes]
    pred = classes[np.argmax(p_cal, axis=1)]
    # the Boltzmann picture is most telling for an input the model hesitates on
    conf = p_raw.max(axis=1)
    sample = int(np.argmin(np.abs(conf - 0.6)))
    z = np.asarray(model.predict_log_proba(X_te[sample:sample + 1]), dtype=np.float64)[0]
    z = z - z.max()  # logits up to a constant (softmax is shift invariant)

    written = []
    ax = plot_loss_curve(model.loss_curve_, ylabel=_LOSS_YLABEL)
    ax.set_title(f"SoftmaxRegression on digits: training objective ({n_iter} iterations)")
    written.append(_save_png(ax, os.path.join(out, "loss_curve.png")))
    ax = plot_confusion_matrix(y_te, pred, labels=classes,
                               title=f"Digits test set: confusion matrix (n={len(y_te)}, "
                               f"accuracy {m_cal['accuracy']:.3f})")
    written.append(_save_png(ax, os.path.join(out, "confusion_matrix.png")))
    ax = plot_reliability_diagram(idx_te, p_raw, n_bins=N_BINS, label="uncalibrated")
    ax = plot_reliability_diagram(idx_te, p_cal, n_bins=N_BINS, ax=ax,
                                  label=f"temperature-scaled (T={T:.2f})",
                                  title="Digits test set: reliability diagram")
    written.append(_save_png(ax, os.path.join(out, "reliability.png")))
    ax = plot_softmax_temperature(z, class_names=names, mark=T, mark_label="fitted")
    ax.set_title(f"Softmax of one test digit (true {y_te[sample]}) vs temperature T\n"
                 "argmax as T → 0, uniform as T → ∞; red: the fitted temperature", fontsize=10)
    written.append(_save_png(ax, os.path.join(out, "softmax_temperature.png")))
    ax = plot_softmax_jacobian(z, class_names=names)
    ax.set_title(f"Softmax Jacobian at one test digit (true {y_te[sample]})\n"
                 r"$J_{ij} = S_i(\delta_{ij} - S_j)$; rows and columns sum to 0"
                 "\n(entries below 10% of the largest are not labelled)", fontsize=9)
    written.append(_save_png(ax, os.path.join(out, "softmax_jacobian.png")))
    total = time.perf_counter() - t_start

    _out(
        f"softmaxkit demo: SoftmaxRegression({_model_params_text(model)}) on scikit-learn's "
        "digits (8x8 images, 10 classes)",
        f"  data               {X.shape[0]} samples x {X.shape[1]} features: "
        f"{len(y_fit)} train / {len(y_cal)} calibration / {len(y_te)} test (stratified)",
        f"  fit                {fit_time:.2f} s, {n_iter} iterations",
        f"  train accuracy     {_fmt(train_acc)}",
        f"  test accuracy      {_fmt(m_raw['accuracy'])}",
        f"  test log-loss      {_fmt(m_raw['log_loss'])} -> {_fmt(m_cal['log_loss'])} "
        "after temperature scaling",
        f"  test ECE           {_fmt(m_raw['ece'])} -> {_fmt(m_cal['ece'])} "
        f"after temperature scaling ({N_BINS} bins)",
        f"  fitted temperature {T:.4f}",
        f"  plots              {out}: " + ", ".join(os.path.basename(p) for p in written),
        f"  total time         {total:.2f} s",
    )
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: unwinds like Ctrl-C (temporary files
    removed by atomic_path, the target untouched)."""


EXIT_TERMINATED = 128 + signal.SIGTERM if hasattr(signal, "SIGTERM") else 143


@contextlib.contextmanager
def _sigterm_raises():
    """While the block runs, SIGTERM (a timeout, ``kill``, a cancelled CI job)
    raises :class:`_Terminated` instead of killing the process outright, so
    the block's clean-up runs; a second SIGTERM during that clean-up is
    ignored.  The previous handler is restored afterwards.  A no-op outside
    the main thread (where Python cannot install signal handlers) and when
    SIGTERM does not have its default action: an ignored SIGTERM (``trap ''
    TERM``, ``nohup``-style launchers) stays ignored, and a program that runs
    :func:`softmaxkit.cli.main` in-process keeps its own handler."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not \
            threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _command(fn):
    """``fn`` as every command runs: its warnings shown as one-line ``warning:``
    messages (:func:`_warnings_to_stderr`), and SIGTERM turned into a clean
    exit (no partial or temporary file) with one ``error: terminated (SIGTERM)``
    line and exit code 143 (128 + 15)."""

    @functools.wraps(fn)
    def run(args):
        with _sigterm_raises():
            try:
                with _warnings_to_stderr():
                    return fn(args)
            except _Terminated:
                with contextlib.suppress(OSError, ValueError):
                    sys.stdout.flush()
                print("error: terminated (SIGTERM)", file=sys.stderr)
                return EXIT_TERMINATED

    return run


COMMANDS = {
    "demo": _command(cmd_demo),
    "fit": _command(cmd_fit),
    "predict": _command(cmd_predict),
    "evaluate": _command(cmd_evaluate),
    "inspect": _command(cmd_inspect),
}
