"""Validation shared by the metrics (and by the calibration helpers)."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, param_error, plain

__all__ = ["check_labels", "check_proba", "check_labels_proba", "check_n_bins"]


def check_labels(y, n_classes, owner, *, name="y", n_samples=None):
    """Return ``y`` as a 1-D ``np.intp`` array of class indices in ``[0, n_classes)``.

    Integral floats (``2.0``) are accepted; anything else that is not an
    integer raises TypeError/ValueError naming the first bad entry.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} of {owner} must be a 1-D array of class indices; got shape {arr.shape}."
        )
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} of {owner} has {arr.shape[0]} entries but there are {n_samples} rows of "
            "scores; they must match."
        )
    kind = arr.dtype.kind
    if kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} of {owner} must hold integer class indices; got {plain(arr[i])!r} at "
                f"position {i}."
            )
    elif kind not in "biu":
        raise TypeError(
            f"{name} of {owner} must hold integer class indices; got dtype {arr.dtype}."
        )
    # the range is checked on the values as given, before the cast to intp: that cast
    # wraps a uint64 2**63 to -2**63 and is undefined for a float beyond intp (1e20)
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} of {owner} must hold class indices in [0, {n_classes}) (the number of "
            f"columns); got {int(arr[i])} at position {i}."
        )
    return arr.astype(np.intp, copy=False)


def check_proba(proba, owner, *, name="proba"):
    """Return ``proba`` as a float (n, K) array of probability rows.

    Entries must be finite and in [0, 1], rows must sum to 1 within a
    tolerance that scales with the number of classes and the resolution of
    the input's own dtype (float16 input is checked against float16's eps,
    not that of the float32 it is computed in).
    """
    p, in_dtype = as_float_array(proba, name)
    if p.ndim != 2:
        raise ValueError(
            f"{name} of {owner} must be a 2-D array of shape (n_samples, n_classes); got shape "
            f"{p.shape}."
        )
    if p.shape[1] < 1:
        raise ValueError(f"{name} of {owner} must have at least one column; got shape {p.shape}.")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} of {owner} must be finite; it contains NaN or inf.")
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"{name} of {owner} must hold probabilities in [0, 1].")
    s = p.sum(axis=1, dtype=np.float64)
    bad = np.abs(s - 1.0) > _row_sum_tol(in_dtype, p.shape[1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"each row of {name} of {owner} must sum to 1; row {i} sums to {float(s[i])!r}."
        )
    return p


def _row_sum_tol(dtype, n_classes):
    """``|sum(row) - 1|`` allowed for ``n_classes`` probabilities stored in ``dtype``.

    ``100 K eps`` of the input's own dtype (float32: ``1.2e-5 K``), at least
    ``1e-6``.  For float16 ``10 eps`` (``9.8e-3``) whatever ``K``, the rule
    ``SoftmaxRegression`` applies to float16 soft targets: rounding each
    probability to float16 moves the sum by a relative error per entry, so the
    row-sum error stays near ``0.3 eps`` for any ``K`` (measured up to K = 4000;
    a softmax done in float16 arithmetic within ``0.75 eps``), while ``K eps``
    would pass rows 50% off at K = 500.
    """
    eps = float(np.finfo(dtype).eps)
    if dtype == np.float16:
        return 10 * eps
    return max(1e-6, 100 * n_classes * eps)


def check_labels_proba(y, proba, owner):
    """Validate a (labels, probabilities) pair; returns ``(y, proba)``."""
    p = check_proba(proba, owner)
    yy = check_labels(y, p.shape[1], owner, n_samples=p.shape[0])
    if yy.shape[0] == 0:
        raise ValueError(f"{owner} needs at least one sample; got 0.")
    return yy, p


def check_n_bins(n_bins, owner):
    """``n_bins`` must be an int >= 1."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral):
        raise param_error("n_bins", owner, "an int in [1, inf)", n_bins, exc=TypeError)
    if n_bins < 1:
        raise param_error("n_bins", owner, "an int in [1, inf)", n_bins)
    return int(n_bins)
