"""Dataset readers: CSV (pandas) and Parquet (pyarrow) into a numeric
feature matrix and a label vector, with one-line errors for bad data."""

from __future__ import annotations

import dataclasses
import math
import os
import re

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


def read_frame(path, *, text_column=None, known_names=None, sep=",", decimal="."):
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
    known_names : list of str, optional
        Column names known to exist (a model's features): a CSV whose first
        line holds all of them is read with that line as its header even when
        every name is a number (which is otherwise taken for a header-less
        file, see :func:`read_table`).
    sep : str, default ","
        The CSV field separator: one character, e.g. ``";"`` or ``"\t"``.
        Parquet files ignore it.
    decimal : str, default "."
        The CSV decimal mark: ``"."`` or ``","`` (with ``sep=";"``, as in many
        European locales).  Parquet files ignore it.

    Returns
    -------
    frame : pandas.DataFrame of shape (n_rows, n_columns)
        Column names converted to str (CSV header names stripped of
        surrounding whitespace); at least one row and one column.

    Raises
    ------
    DataError
        A missing, empty, unreadable or header-only file, an unsupported
        extension, a column name used twice (pandas would silently rename
        the second ``a`` to ``a.1``), a CSV column with an empty header name
        (a row index saved by ``DataFrame.to_csv``, or a trailing separator),
        data lines with more fields than the header, a CSV whose first line
        looks like data (see :func:`read_table`), a CSV read as a single
        column named like ``'a;b;c'`` (another separator than ``sep``), or a Parquet
        column that is a saved row index (``'__index_level_0__'``,
        ``'Unnamed: 0'``) or has an empty name.

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
    sep, decimal = check_csv_format(sep, decimal)
    if not os.path.exists(path):
        raise DataError(f"input file {path!r} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"input file {path!r} is a directory.")
    if os.path.getsize(path) == 0:
        raise DataError(f"input file {path!r} is empty.")
    if kind == "csv":
        pd = _import_pandas("CSV")
        try:
            df = _read_csv(pd, path, text_column, known_names, sep, decimal)
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
    if kind == "parquet":
        check_parquet_names(df.columns, path)
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


def _check_unique(names, path, *, stripped=False):
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise DataError(
            f"{path!r} has more than one column named {_show(dups)}"
            f"{' (surrounding spaces stripped)' if stripped else ''}; column names must be "
            "unique."
        )


_UNNAMED = re.compile(r"Unnamed: \d+")  # pandas' name for a CSV column without a name
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # a pandas index stored in Parquet


def check_parquet_names(names, path):
    """Refuse a Parquet column with an empty name or that is a saved row index."""
    for i, n in enumerate(names):
        if n == "":
            raise DataError(f"column {i + 1} of {path!r} has an empty name; name it or drop "
                            "it.")
        if _PANDAS_INDEX.fullmatch(n):
            raise DataError(
                f"column {n!r} of {path!r} is a row index stored as a column (a pandas index "
                "written without its pandas metadata), not a feature; drop it, or write the "
                "file with DataFrame.to_parquet(..., index=False)."
            )
        if _UNNAMED.fullmatch(n):
            raise DataError(
                f"column {n!r} of {path!r} looks like a row index: pandas names a CSV column "
                "with an empty header that way (an index saved by DataFrame.to_csv); drop it, "
                "or save the data with index=False."
            )


_SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


def check_csv_format(sep, decimal):
    """Validate the CSV ``sep`` and ``decimal`` arguments; returns them.

    ``sep`` is one character that is not a quote, a line break, a letter, a
    digit, ``"."``, ``"-"`` or ``"+"``; ``decimal`` is ``"."`` or ``","``
    and differs from ``sep``.  TypeError / ValueError otherwise."""
    for name, value in (("sep", sep), ("decimal", decimal)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str of one character; got "
                            f"{type(value).__name__}.")
    if len(sep) != 1 or sep in "\"'\r\n.-+" or sep.isalnum():
        raise ValueError(
            f"sep must be one character other than a quote, a line break, a letter, a digit, "
            f"'.', '-' or '+', e.g. ',' or ';' or '\\t'; got {sep!r}.")
    if decimal not in (".", ","):
        raise ValueError(f"decimal must be '.' or ','; got {decimal!r}.")
    if decimal == sep:
        raise ValueError(f"decimal and sep must differ; both are {sep!r} (a file with decimal "
                         "commas usually has sep=';').")
    return sep, decimal


def _sep_hint(sep):
    """How to read a file separated by ``sep``, for messages."""
    return f"read it with sep={sep!r} (on the command line: --sep {_cli_sep(sep)})"


def _cli_sep(sep):
    return "tab" if sep == "\t" else f"'{sep}'"


def _check_csv_header(names, path, sep=","):
    """Refuse a CSV header with an empty name, a name used twice (after
    stripping) or one pandas' index column name, and a single column that is
    a whole line of another separator than ``sep``; ``names`` are the
    stripped names."""
    if len(names) == 1:
        for other in _SEPARATORS:
            if other != sep and other in names[0]:
                raise DataError(
                    f"{path!r} has a single column, named {names[0]!r}: the file may be "
                    f"separated by {other!r} ({_SEP_NAMES[other]}), not {sep!r}; "
                    f"{_sep_hint(other)}."
                )
    empty = [i for i, n in enumerate(names) if n == ""]
    if empty:
        i = empty[0]
        where = f"column {i + 1} of {path!r} has an empty header name"
        if i == len(names) - 1 and len(names) > 1:
            raise DataError(
                f"{where} (the last column): the lines probably end with a trailing {sep!r}; "
                "remove the trailing separator (or name the column)."
            )
        if i == 0 and len(names) > 1:
            raise DataError(
                f"{where}: it looks like a row index saved by pandas' DataFrame.to_csv; drop "
                "that column, or save the data with index=False."
            )
        raise DataError(f"{where}; name it or drop it.")
    _check_unique(names, path, stripped=True)
    for n in names:
        if _UNNAMED.fullmatch(n):
            raise DataError(
                f"column {n!r} of {path!r} looks like a row index: pandas names a column "
                "with an empty header that way (an index saved by DataFrame.to_csv); drop "
                "it, or save the data with index=False."
            )


def _is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _numbered_names(names):
    """Whether ``names`` are whole numbers in strictly increasing or decreasing
    order (``0,1,2``: pandas' names of an unnamed frame; wavelengths, years,
    wavenumbers ``4000,3998,...``): a real header."""
    if not all(n.isdigit() for n in names):
        return False
    values = [int(n) for n in names]
    pairs = list(zip(values, values[1:], strict=False))
    return all(a < b for a, b in pairs) or all(a > b for a, b in pairs)


_NO_HEADER = ("the first line looks like data, not a header (every column name is a "
              "number); softmaxkit needs a header row")


def _looks_like_data(names, df=None, target=None):
    """Whether the CSV header ``names`` is really a row of data: every name is
    a number (but not ``0,1,2``-style numbering), or every name but
    ``target``'s is and ``target``'s name is one of its own column's labels."""
    if all(_is_number(n) for n in names):
        return not _numbered_names(names)
    if target is None or df is None or target not in names or _is_number(target):
        return False
    others = [n for n in names if n != target]
    if not others or not all(_is_number(n) for n in others) or _numbered_names(others):
        return False
    return bool((df[target].astype(str).str.strip() == target).any())


def _read_csv(pd, path, text_column, known_names=None, sep=",", decimal="."):
    """pandas.read_csv with the header names stripped, refusing a bad header
    (see :func:`_check_csv_header`, :func:`_looks_like_data`) and data lines
    longer than it, and reading ``text_column`` (when present) as exact text."""
    # the header as written: pandas renames a repeated 'a' to 'a.1' and an
    # empty name to 'Unnamed: 0' when it reads
    try:  # the header and the first data line
        raw = pd.read_csv(path, header=None, nrows=2, dtype=str, keep_default_na=False,
                          na_filter=False, sep=sep)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m is None:
            raise
        if m[1] == "1":  # 'a;b;c' then '1,5;2': a ';'-separated file with decimal commas
            head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                               na_filter=False, sep=sep)
            _check_csv_header([str(n).strip() for n in head.iloc[0].tolist()], path, sep)
        # pandas would take the extra leading field(s) as the row index when it
        # reads with the header, shifting every column
        raise DataError(_long_line(path, int(m[2]), m[3], m[1], sep)) from None
    if not len(raw):
        return pd.read_csv(path, sep=sep)  # raises (empty file) as pandas does
    names = [str(n).strip() for n in raw.iloc[0].tolist()]
    _check_csv_header(names, path, sep)
    known = known_names is not None and {str(k).strip() for k in known_names} <= set(names)
    if not known and _looks_like_data(names):
        raise DataError(f"{path!r}: {_NO_HEADER}.")
    kwargs = {"header": 0, "names": names, "sep": sep, "decimal": decimal}
    if text_column is not None and text_column in names:
        na = _na_defaults()
        # keep_default_na=False with a per-column na_values: the usual missing-value
        # markers everywhere but in the text column, which is read verbatim
        kwargs.update(dtype={text_column: str}, keep_default_na=False,
                      na_values={n: na for n in names if n != text_column})
    try:
        df = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m is None:
            raise
        raise DataError(_long_line(path, int(m[2]), m[3], m[1], sep)) from None
    if not known and text_column is not None and _looks_like_data(names, df, text_column):
        raise DataError(f"{path!r}: {_NO_HEADER}.")
    return df


def _long_line(path, line, saw, expected, sep=","):
    """The message for a data line (``line``: 1-based line of the file, the
    header being line 1) with more fields than the header."""
    return (f"data row {line - 1} (line {line}) of {path!r} has more fields ({saw}) than "
            f"the header ({expected}): the data lines probably end with a trailing {sep!r}, "
            "or the header misses a column name.")


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


def read_table(path, *, target=None, features=None, require_target=True, sep=",",
               decimal="."):
    """Read a CSV or Parquet file into numeric features and labels.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (read with pandas) or ``.parquet`` / ``.pq`` file (read
        with pyarrow through pandas).  A CSV file needs a header row: its
        names are stripped of surrounding whitespace (as are ``target`` and
        ``features``), and a first line whose names are all numbers is taken
        for data and refused, unless they are whole numbers in increasing or
        decreasing order (``0,1,2``, as pandas writes for unnamed columns;
        wavelengths, years, wavenumbers) or the line holds every name of
        ``features`` (a model's); so is a target column whose name is one of
        its own labels while every other name is a number.
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
    sep, decimal : str, default "," and "."
        The CSV field separator and decimal mark (see :func:`read_frame`);
        Parquet files ignore them.

    Returns
    -------
    Table
        ``X`` of shape (n_rows, n_features) float64, ``y`` of shape (n_rows,)
        or None, the feature names and dtypes.

    Raises
    ------
    DataError
        A one-line message for: a missing input file, an unsupported
        extension, an empty or header-only file, a CSV without a header row,
        a column with an empty name or that is a saved row index (see
        :func:`read_frame`), a missing target or feature
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
    if _file_kind(path) == "csv":  # CSV header names are read stripped
        target = target.strip() if isinstance(target, str) else target
        if features is not None:
            features = [str(f).strip() for f in features]
    df = read_frame(path, text_column=target, known_names=features, sep=sep,
                    decimal=decimal)
    pd = _import_pandas("CSV")
    columns = list(df.columns)
    y = label_text = None
    if target is not None:
        if target in columns:
            y, label_text = _labels(pd, df[target], target, path,
                                    text=_file_kind(path) == "csv")
        elif require_target:
            hint = ""
            numbers = [c for c in columns if _is_number(c)]
            if (_file_kind(path) == "csv" and len(columns) - len(numbers) <= 1
                    and not _numbered_names(numbers)):
                hint = ("; the first line looks like data, not a header (softmaxkit needs a "
                        "header row)")
            raise DataError(
                f"target column {target!r} not found in {path!r}; columns are: "
                f"{_show(columns)}{hint}."
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
