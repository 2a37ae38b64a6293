"""Input validation shared by every public entry point.

Validation happens once, at the public function or estimator method; kernels
and private helpers trust their input.  All parameter errors use one message
form (see ``param_error``).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "check_temperature",
    "normalize_axes",
    "broadcast_where",
    "param_error",
    "check_scalar_param",
    "check_choice_param",
]


def plain(value):
    """``value`` with NumPy scalars as plain Python scalars, also inside a tuple,
    list or dict, so that an error message shows ``0.5`` and not NumPy 2's repr
    ``np.float64(0.5)``.  Anything else is returned unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (tuple, list):
        return type(value)(plain(v) for v in value)
    if type(value) is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def first_missing_label(y):
    """Index of the first missing label (float NaN, None, pandas.NA or NaT) of the
    1-D labels ``y``, or None: the estimators' rule, in memory and on Dask."""
    if y.dtype.kind == "f":
        bad = np.flatnonzero(np.isnan(y))
    elif y.dtype.kind in "mM":
        bad = np.flatnonzero(np.isnat(y))
    elif y.dtype.kind == "O":
        try:  # pandas' isna: the same rule, vectorised (5x faster than a loop)
            from pandas import isna
        except ImportError:  # pragma: no cover - pandas is an extra
            isna = None
        if isna is not None:
            bad = np.flatnonzero(np.asarray(isna(y), dtype=bool))
        else:  # pragma: no cover
            bad = np.flatnonzero([
                v is None or (isinstance(v, float | np.floating) and v != v)
                or type(v).__name__ in ("NAType", "NaTType")
                or (isinstance(v, np.datetime64 | np.timedelta64) and np.isnat(v))
                for v in y
            ])
    else:
        return None
    return int(bad[0]) if bad.size else None


def check_label_kinds(y, where=""):
    """Refuse 1-D labels ``y`` that mix strings and other values (``'a'`` and ``1``):
    NumPy would turn ``1`` into ``'1'`` and merge it with a ``'1'`` label.  ``where``
    (e.g. ``" in partition 2"``) goes into the ValueError."""
    if y.dtype.kind != "O":
        return
    types = set(map(type, y))  # C-speed, unlike a loop of isinstance
    if any(issubclass(t, str) for t in types) and not all(issubclass(t, str) for t in types):
        first = next(v for v in y if isinstance(v, str))
        other = next(v for v in y if not isinstance(v, str))
        raise ValueError(f"y mixes strings and other labels (e.g. {plain(first)!r} and "
                         f"{plain(other)!r}){where}; labels must be all strings or all "
                         "numbers.")


def nullable_to_numpy(x, name, owner):
    """``x`` as a NumPy array when it is a pandas Series or DataFrame of numeric or
    boolean columns, some of a nullable (extension) dtype such as ``Int64``,
    ``Float64`` or ``boolean`` (which ``np.asarray`` turns into an object array);
    a ValueError naming the first missing value (``pd.NA``) when it holds one.
    Anything else is returned unchanged."""
    if not type(x).__module__.startswith("pandas"):
        return x
    import pandas as pd

    if isinstance(x, pd.DataFrame):
        dtypes = list(x.dtypes)
    elif isinstance(x, pd.Series):
        dtypes = [x.dtype]
    else:
        return x
    np_dtypes = [getattr(d, "numpy_dtype", d) for d in dtypes]
    if (not any(isinstance(d, pd.api.extensions.ExtensionDtype) for d in dtypes)
            or not all(isinstance(d, np.dtype) and d.kind in "biuf" for d in np_dtypes)):
        return x
    na = np.asarray(x.isna(), dtype=bool)
    if na.any():
        first = [int(v) for v in np.argwhere(na)[0]]
        where = f"row {first[0]}"
        if na.ndim == 2:
            label = plain(x.columns[first[1]])
            where += f", column {first[1]}" + ("" if label == first[1] else f" ({label!r})")
        value = x.iat[tuple(first)]
        shown = "pd.NA" if value is pd.NA else repr(plain(value))
        raise ValueError(
            f"{name} of {owner} holds a missing value ({shown}) at {where}; drop or fill the "
            "missing values first."
        )
    return x.to_numpy(dtype=np.result_type(*np_dtypes))


def check_class_weights(w, classes):
    """Per-class weights ``w`` (shape (K,)) must be finite and non-negative: the
    estimators' ValueError, in memory and on Dask, naming the first bad class."""
    w = np.asarray(w, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        raise ValueError("class_weight must be finite and non-negative; got "
                         f"{float(w[bad[0]])!r} for class {plain(classes[bad[0]])!r}.")
    return w


def class_weight_vector(class_weight, classes, totals, weight_sum):
    """Per-class weights of SoftmaxRegression, in memory and on Dask, from the sample-weighted
    class ``totals`` (soft targets: ``sum_i s_i Y_i``) and ``weight_sum`` (``sum_i
    s_i``): "balanced" is ``weight_sum / (K * totals)`` (scikit-learn >= 1.6), a
    class of total 0 refused; a dict may name classes only (1 for the others);
    the weights must be finite and non-negative."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):  # "balanced" (checked by _check_params)
        empty = np.flatnonzero(~(totals > 0))
        if empty.size:
            raise ValueError(
                "class_weight='balanced' needs samples of positive weight in every "
                f"class; class {plain(classes[empty[0]])!r} has none (a total "
                "sample weight of 0).")
        w = weight_sum / (classes.size * totals)
    else:
        unknown = [k for k in class_weight if not any(k == c for c in classes.tolist())]
        if unknown:
            shown = ", ".join(repr(plain(k)) for k in unknown[:5])
            what = ("keys that are not classes" if len(unknown) > 1
                    else "a key that is not a class")
            raise ValueError(
                f"class_weight has {what} of y: {shown} "
                f"(the classes are {[plain(c) for c in classes[:10]]!r}"
                f"{' ...' if classes.size > 10 else ''}).")
        w = np.array([float(class_weight.get(c, 1.0)) for c in classes])
    return check_class_weights(w, classes)  # as in memory: finite, non-negative


def _soft_base_tol(dtype):
    """The row-sum tolerance of probabilities held in the float ``dtype``
    (by size, so that a big-endian '>f8' is float64): 1e-6 for float64, 1e-4
    for float32, 10 eps for float16; 0 for anything else (integers, None)."""
    if dtype is None or np.dtype(dtype).kind != "f":
        return 0.0
    size = np.dtype(dtype).itemsize
    if size >= 8:
        return 1e-6
    if size == 4:
        return 1e-4
    return 10.0 * float(np.finfo(np.float16).eps)


def soft_target_tol(dtype, stored=None):
    """``|sum(row) - 1|`` a row of soft targets may have when the computation runs
    in ``dtype`` and the probabilities were stored in ``stored``: the looser of the
    two dtypes' tolerances (1e-6 for float64, 1e-4 for float32: a float32 softmax
    over 50,257 classes sums to 1 within 8.5e-6; 10 eps = 9.8e-3 for float16, as a
    row rounded to float16 sums to 1 only within about 0.3 eps16).  The one rule
    of the estimators (in memory and on Dask), ``cross_entropy`` and
    ``LinearSoftmaxLoss`` (the metrics' checks allow more:
    ``metrics._row_sum_tol``)."""
    return max(_soft_base_tol(dtype), _soft_base_tol(stored))


def products_fit(amax, n, dtype, margin=1e-4):
    """Whether sums over ``n`` rows of products of entries up to ``amax`` (the
    Gram-type sums of the Hessian and its preconditioners, ``sum_i x_ij x_ik``)
    stay below ``margin`` times ``dtype``'s overflow threshold (by default 1e4
    times below: the rule for optional float32 shortcuts)."""
    return amax <= np.sqrt(float(np.finfo(dtype).max) * margin / max(n, 1))


def check_entry_range(amax, n, dtype):
    """The estimators' ValueError (in memory and on Dask) when X's entries, up to
    ``amax`` in absolute value over ``n`` rows, are too large for the curvature sums
    in ``dtype`` (``products_fit``): the solvers would stop on a non-finite Hessian
    or return a useless model."""
    dtype = np.dtype(dtype)
    if products_fit(amax, n, dtype, margin=1.0):  # refused only where they overflow
        return
    extra = "" if dtype == np.float64 else ", or pass float64 X"
    raise ValueError(
        f"X has entries up to {amax:.3g} in absolute value: sums of their products over "
        f"{n} rows overflow {dtype.name}.  Scale the features (e.g. "
        f"sklearn.preprocessing.StandardScaler){extra}.")


def param_error(param, owner, expected, got, exc=ValueError):
    """Build the one standard parameter error.

    ``param_error("C", "SoftmaxRegression", "a float in (0, inf]", -1)`` gives
    ``ValueError("The 'C' parameter of SoftmaxRegression must be a float in
    (0, inf]; got -1.")``; NumPy scalars show as plain numbers.
    """
    return exc(f"The {param!r} parameter of {owner} must be {expected}; got {plain(got)!r}.")


def as_float_array(x, name="x"):
    """Convert ``x`` to a floating array for computation.

    Returns ``(work, out_dtype)``: ``work`` is float32 or float64 and is what
    the computation runs in; ``out_dtype`` is the dtype of the result.

    - float32 / float64 stay as they are;
    - float16 is computed in float32 and returned as float16;
    - bool and integer input becomes float64;
    - complex input raises TypeError, and so does anything non-numeric.
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real; got complex dtype {arr.dtype}.")
    if kind == "f":
        # by size, not dtype equality: a big-endian '>f4' is float32 too (converted to
        # the native byte order)
        size = arr.dtype.itemsize
        if size == 2:
            return arr.astype(np.float32), np.dtype(np.float16)
        if size in (4, 8):
            native = np.dtype(np.float32 if size == 4 else np.float64)
            return arr.astype(native, copy=False), native
        # longdouble: compute in float64
        return arr.astype(np.float64), np.dtype(np.float64)
    if kind in "biu":
        return arr.astype(np.float64), np.dtype(np.float64)
    raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}.")


def check_temperature(temperature, owner):
    """Return ``temperature`` as a float after checking it is finite and > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise param_error(
            "temperature", owner, "a float in (0, inf)", temperature, exc=TypeError
        )
    try:
        t = float(temperature)
    except OverflowError:  # an int beyond float64
        t = np.inf
    if not (np.isfinite(t) and t > 0):
        raise param_error("temperature", owner, "a float in (0, inf)", temperature)
    return t


def normalize_axes(axis, ndim, owner="softmax"):
    """Return ``axis`` (an int or a tuple of ints) as a sorted tuple of
    non-negative ints; raises ``numpy.exceptions.AxisError`` (a ValueError)
    when an axis is out of range, TypeError when it is not an integer."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        axes = (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axis of {owner} must be an int or a tuple of ints; got {axis!r}.")
    out = np.lib.array_utils.normalize_axis_tuple(axes, ndim, allow_duplicate=True)
    if len(set(out)) != len(out):
        raise ValueError(f"axis of {owner} names an axis twice; got {axis!r} for an "
                         f"array of {ndim} dimensions.")
    return tuple(sorted(out))


def broadcast_where(where, shape, owner="softmax"):
    """Return ``where`` as a boolean array of ``shape`` (or None)."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"where of {owner} must be a boolean array; got dtype {w.dtype}.")
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"where of {owner} with shape {w.shape} does not broadcast to x's shape {shape}."
        ) from None


def check_scalar_param(value, param, owner, *, kind=float, low=None, high=None,
                       low_open=False, high_open=False, allow_none=False):
    """Check a scalar hyper-parameter; return it converted to ``kind``.

    ``low``/``high`` are bounds; ``*_open`` make them strict.  The error uses
    the standard message form, e.g. "a float in (0, inf]".
    """
    if value is None and allow_none:
        return None
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    name = "an int" if kind is int else "a float"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open else "]"
    expected = f"{name} in {left}{lo}, {hi}{right}"
    if allow_none:
        expected += " or None"
    ok_type = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise param_error(param, owner, expected, value, exc=TypeError)
    v = kind(value)
    if kind is float and np.isnan(v):
        raise param_error(param, owner, expected, value)
    if low is not None and (v < low or (low_open and v == low)):
        raise param_error(param, owner, expected, value)
    if high is not None and (v > high or (high_open and v == high)):
        raise param_error(param, owner, expected, value)
    return v


def check_choice_param(value, param, owner, choices):
    """Check that ``value`` is one of ``choices`` (compared with ==)."""
    for c in choices:
        if (c is None and value is None) or (c is not None and isinstance(value, type(c))
                                              and value == c):
            return value
    shown = ", ".join(repr(c) for c in choices)
    raise param_error(param, owner, f"one of {{{shown}}}", value)
