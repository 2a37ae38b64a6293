"""Dataset readers: CSV (pandas) and Parquet (pyarrow) into a numeric
feature matrix and a label vector, with one-line errors for bad data."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

__all__ = ["DataError", "Table", "read_table", "SUPPORTED_EXTENSIONS"]

SUPPORTED_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DataError(ValueError):
    """Input data cannot be used: missing file or column, empty table, a
    non-numeric or missing feature value, a missing label.  The message is one
    line naming the file, the column and (1-based) data row."""


@dataclasses.dataclass
class Table:
    """A dataset read by :func:`read_table`.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features), float64
        The feature matrix, every value finite.
    y : ndarray of shape (n_rows,) or None
        Labels (int64, float64 or fixed-width str; from Parquet also bool),
        None when no target was asked for.
    feature_names : list of str, length n_features
    feature_dtypes : list of str, length n_features
        The column dtypes as read (e.g. ``'int64'``, ``'float64'``).
    columns : list of str
        Every column of the file, in order.
    path : str
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list
    feature_dtypes: list
    columns: list
    path: str

    @property
    def n_rows(self):
        return self.X.shape[0]


def _file_kind(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise DataError(
            f"unsupported file type {ext or '(none)'!r} for {path!r}; use .csv or .parquet."
        )
    return SUPPORTED_EXTENSIONS[ext]


def _import_pandas(kind):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed in the test env
        raise ImportError(
            f"reading {kind} files needs pandas: pip install 'softmaxkit[parquet]'"
        ) from None
    if kind == "Parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:  # pragma: no cover
            raise ImportError(
                "reading Parquet files needs pyarrow: pip install 'softmaxkit[parquet]'"
            ) from None
    return pd


def read_frame(path, *, text_column=None):
    """Read a CSV or Parquet file (chosen by extension) into a pandas DataFrame.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.parquet`` or ``.pq``.
    text_column : str, optional
        A CSV column read as the exact text of each field: no type guessing
        (``"01"`` stays ``"01"``, ``"1.0"`` stays ``"1.0"``) and no missing-value
        markers (``"NA"``, ``"None"``, ``"null"`` are text; an empty field is
        ``""``).  Other columns are read as usual.  Parquet columns keep their
        stored type, so this has no effect there.

    Returns
    -------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
        Column names converted to str; at least one row and one column.

    Raises
    ------
    DataError
        A missing, empty, unreadable or header-only file, an unsupported
        extension, or a column name used twice (pandas would silently rename
        the second ``a`` to ``a.1``).

    Examples
    --------
    >>> import os, tempfile
    >>> from softmaxkit.io import DataError, read_frame
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "only_header.csv")
    >>> _ = open(p, "w").write("a,b,label\\n")
    >>> try:
    ...     read_frame(p)
    ... except DataError as exc:
    ...     print(str(exc).replace(d, "DIR"))
    input file 'DIR/only_header.csv' has a header but no data rows.
    """
    path = os.fspath(path)
    kind = _file_kind(path)
    if not os.path.exists(path):
        raise DataError(f"input file {path!r} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"input file {path!r} is a directory.")
    if os.path.getsize(path) == 0:
        raise DataError(f"input file {path!r} is empty.")
    if kind == "csv":
        pd = _import_pandas("CSV")
        try:
            df = _read_csv(pd, path, text_column)
        except DataError:
            raise
        except pd.errors.EmptyDataError:
            raise DataError(f"input file {path!r} is empty.") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot parse CSV file {path!r}: {msg}") from None
    else:
        pd = _import_pandas("Parquet")
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for bad files
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot read Parquet file {path!r}: {msg}") from None
    df.columns = [str(c) for c in df.columns]
    _check_unique(df.columns, path)
    if df.shape[1] == 0:
        raise DataError(f"input file {path!r} is empty.")
    if df.shape[0] == 0:
        raise DataError(f"input file {path!r} has a header but no data rows.")
    return df


# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES);
# a copy in case that private name moves.
_NA_DEFAULTS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                "nan", "null")


def _na_defaults():
    try:
        from pandas._libs.parsers import STR_NA_VALUES
    except ImportError:  # pragma: no cover - depends on the pandas version
        return list(_NA_DEFAULTS)
    return sorted(STR_NA_VALUES)


def _check_unique(names, path):
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise DataError(
            f"{path!r} has more than one column named {_show(dups)}; column names must be "
            "unique."
        )


def _read_csv(pd, path, text_column):
    """pandas.read_csv, refusing duplicate header names and reading
    ``text_column`` (when present) as exact text."""
    # the header as written: pandas renames a repeated 'a' to 'a.1' when it reads
    raw = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                      na_filter=False)
    _check_unique([n for n in raw.iloc[0].tolist() if n != ""] if len(raw) else [], path)
    if text_column is None:
        return pd.read_csv(path)
    names = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    if text_column not in names:
        return pd.read_csv(path)
    na = _na_defaults()
    # keep_default_na=False with a per-column na_values: the usual missing-value
    # markers everywhere but in the text column, which is read verbatim
    return pd.read_csv(path, dtype={text_column: str}, keep_default_na=False,
                       na_values={n: na for n in names if n != text_column})


def _numeric_column(pd, s, name, path):
    """Return column ``s`` as float64, or raise DataError naming the first bad row."""
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        not_number = np.zeros(len(s), dtype=bool)
    else:
        coerced = pd.to_numeric(s, errors="coerce")
        values = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
        not_number = (s.notna() & coerced.isna()).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"column {name!r}, row {i + 1} of {path!r}"
        if not_number[i]:
            raise DataError(f"{where}: {s.iloc[i]!r} is not a number (features must be numeric).")
        if np.isnan(values[i]):
            raise DataError(f"{where}: missing value (features must be numeric, no NaN).")
        raise DataError(f"{where}: {values[i]} is not finite.")
    return values


def _text_labels_rule(pd, s, where, path):
    """Labels from the exact text of a CSV column, by the rule in :func:`read_table`.

    Returns ``(y, texts, codes)``: the labels, the distinct stripped label
    texts and, per row, the index of its text (``texts[codes]`` is the
    stripped text of every row).  Work per row is vectorised (pandas'
    hashing); Python only touches the distinct values."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    if np.any(codes < 0):  # not produced for a text column, but be safe
        i = int(np.flatnonzero(codes < 0)[0])
        raise DataError(f"{where}, row {i + 1} of {path!r}: missing label.")
    # strip surrounding whitespace on the distinct texts, then merge ' 1' and '1'
    stripped = [str(u).strip() for u in np.asarray(uniq, dtype=object).tolist()]
    codes2, texts = pd.factorize(pd.Series(stripped, dtype=object))
    codes = codes2[codes]
    texts = np.asarray(texts, dtype=object)
    bad = [k for k, t in enumerate(texts.tolist()) if t == ""]
    if bad:
        i = int(np.flatnonzero(codes == bad[0])[0])
        raise DataError(f"{where}, row {i + 1} of {path!r}: missing label.")
    _refuse_nul(texts, codes, where, path)
    values = _numeric_texts(pd, texts)
    if values is not None:
        return values[codes], texts, codes
    # exact (stripped) strings; fixed-width unicode without a per-row loop
    return np.asarray(texts.tolist(), dtype=str)[codes], texts, codes


def _numeric_texts(pd, texts):
    """The distinct label texts as numbers (int64 or float64), or None when
    one of them is not a finite number or two of them give the same number
    (``"1"`` and ``"01"``, ``"1"`` and ``"1.0"``: distinct labels)."""
    num = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    kind = num.dtype.kind
    if kind == "u":  # above int64's range: compare and store as floats
        if num.max() < 2**63:
            num = num.astype(np.int64)
        else:
            num = num.astype(np.float64)
        kind = num.dtype.kind
    if kind == "i":
        values = num.to_numpy(dtype=np.int64)  # exact: every text an integer in int64
    elif kind == "f":
        values = num.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            return None
    else:  # pragma: no cover - to_numeric gives int or float here
        return None
    if len(np.unique(values)) != len(values):
        return None
    return _integral_to_int(values) if values.dtype.kind == "f" else values


def _integral_to_int(v):
    """Finite float labels as int64 when all are integers within +-2**53 (the
    previous release's rule, and Parquet's), else ``v`` itself."""
    if np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.all(np.abs(v) <= 2**53):
        return v.astype(np.int64)
    return v


def _refuse_nul(texts, codes, where, path):
    # fixed-width unicode drops trailing NULs: 'a\x00' would become 'a'
    for k, t in enumerate(texts.tolist()):
        if t.endswith("\x00"):
            i = int(np.flatnonzero(codes == k)[0])
            raise DataError(f"{where}, row {i + 1} of {path!r}: the label {t!r} ends with a "
                            "NUL character, which labels cannot hold.")


def _labels(pd, s, name, path, *, text=False):
    """Labels of column ``s``; ``text``: ``s`` holds the exact text of a CSV
    column (see :func:`read_table` for the rule).  Returns ``(y, label_text)``
    where ``label_text`` is ``(texts, codes)`` for a text column, else None."""
    where = f"target column {name!r}"
    if text:
        y, texts, codes = _text_labels_rule(pd, s, where, path)
        return y, (texts, codes)
    missing = np.array(s.isna().to_numpy(), dtype=bool)
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        missing |= s.eq("").fillna(False).to_numpy(dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{where}, row {i + 1} of {path!r}: missing label.")
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=bool), None
    if pd.api.types.is_integer_dtype(s):
        return s.to_numpy(dtype=np.int64), None
    if pd.api.types.is_float_dtype(s):
        return _integral_to_int(s.to_numpy(dtype=np.float64)), None
    codes, uniq = pd.factorize(s.astype(str))
    texts = np.asarray(uniq, dtype=object)
    _refuse_nul(texts, codes, where, path)
    return np.asarray(texts.tolist(), dtype=str)[codes], None


def _check_numeric_kinds(pd, df, features, path):
    """Refuse date/time feature columns, which pandas would turn into epoch numbers."""
    bad = []
    for f in features:
        dt = df[f].dtype
        # kind 'M': datetime64 and tz-aware datetimes, 'm': timedelta64
        if getattr(dt, "kind", None) in ("M", "m") or isinstance(dt, pd.PeriodDtype):
            bad.append(f"{f!r} ({dt})")
    if bad:
        raise DataError(
            f"feature column{'s' if len(bad) > 1 else ''} {', '.join(bad)} of {path!r} "
            f"hold{'' if len(bad) > 1 else 's'} dates or durations; features must be numeric "
            "(convert them to numbers first, or leave them out of the features)."
        )


def read_table(path, *, target=None, features=None, require_target=True):
    """Read a CSV or Parquet file into numeric features and labels.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (read with pandas) or ``.parquet`` / ``.pq`` file (read
        with pyarrow through pandas), with a header row.
    target : str, optional
        The label column.  In a CSV file it is read as text, never guessed
        at by pandas, and surrounding whitespace is stripped (``" 1"`` is
        ``"1"``); an empty label is missing and raises DataError.  If every
        label is a finite number and no two distinct texts give the same
        number, the labels are numbers: int64 when all are integral
        (``"1.0"``, ``"2.0"`` give 1, 2, as a Parquet float column does;
        integers beyond +-2**53 only when written as integers), else
        float64.  Otherwise they are the exact stripped strings: ``"1"``,
        ``"01"`` and ``"2"`` are three string classes (``"1"`` and
        ``"01"`` give the same number), ``"1"`` and ``"1.0"`` two, and
        ``"NA"``, ``"None"`` and ``"null"`` are labels like any other.  A
        Parquet column keeps its stored type (integral floats become
        int64).
    features : sequence of str, optional
        Feature columns, in this order.  Default: every column except
        ``target``.
    require_target : bool, default True
        When false, a missing ``target`` column is allowed and ``y`` is None.

    Returns
    -------
    Table
        ``X`` of shape (n_rows, n_features) float64, ``y`` of shape (n_rows,)
        or None, the feature names and dtypes.

    Raises
    ------
    DataError
        A one-line message for: a missing input file, an unsupported
        extension, an empty or header-only file, a missing target or feature
        column, a column name used twice, a date/time feature column, a
        non-numeric, missing (NaN) or infinite feature value (naming the
        column and the 1-based data row, header excluded), a missing (empty)
        label or one ending with a NUL character.
    ImportError
        pandas/pyarrow are not installed (names the extra to install).

    Examples
    --------
    >>> import os, tempfile
    >>> from softmaxkit.io import read_table
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "toy.csv")
    ...     _ = open(p, "w").write("a,b,label\\n1,2.5,cat\\n3,4,dog\\n")
    ...     t = read_table(p, target="label")
    >>> t.X
    array([[1. , 2.5],
           [3. , 4. ]])
    >>> t.y, t.feature_names
    (array(['cat', 'dog'], dtype='<U3'), ['a', 'b'])
    """
    path = os.fspath(path)
    df = read_frame(path, text_column=target)
    pd = _import_pandas("CSV")
    columns = list(df.columns)
    y = label_text = None
    if target is not None:
        if target in columns:
            y, label_text = _labels(pd, df[target], target, path,
                                    text=_file_kind(path) == "csv")
        elif require_target:
            raise DataError(
                f"target column {target!r} not found in {path!r}; columns are: "
                f"{_show(columns)}."
            )
    if features is None:
        features = [c for c in columns if c != target]
        if not features:
            raise DataError(f"{path!r} has no feature columns besides the target {target!r}.")
    else:
        features = [str(f) for f in features]
        missing = [f for f in features if f not in columns]
        if missing:
            raise DataError(
                f"feature column{'s' if len(missing) > 1 else ''} not found in {path!r}: "
                f"{_show(missing)}."
            )
        if target is not None and target in features:
            raise DataError(f"the target column {target!r} is also listed as a feature.")
    _check_numeric_kinds(pd, df, features, path)
    X = np.empty((df.shape[0], len(features)), dtype=np.float64)
    dtypes = []
    for j, f in enumerate(features):
        X[:, j] = _numeric_column(pd, df[f], f, path)
        dtypes.append(str(df[f].dtype))
    table = Table(X=X, y=y, feature_names=features, feature_dtypes=dtypes, columns=columns,
                  path=path)
    # the stripped label texts of a CSV (distinct texts, per-row index): the CLI
    # matches labels to a model's string classes by spelling ('01' is not '1')
    table._label_text = label_text
    return table


def _show(names, limit=20):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
