"""Validation shared by the metrics (and by the calibration helpers)."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, param_error, plain, soft_target_tol

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

    Entries must be finite and in [0, 1], rows must sum to 1 within the
    tolerance of the input's own dtype (float16 input is checked against
    float16's, not that of the float32 it is computed in): 1e-6 for float64,
    1e-4 for float32, ``10 eps`` for float16, as for soft targets in the losses,
    plus what summing K probabilities and rounding them to subnormals can add
    (see ``_row_sum_tol``).
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
    """``|sum(row) - 1|`` allowed for ``n_classes`` (K) probabilities stored in ``dtype``.

    ``soft_target_tol(dtype) + K * (u + tiny / 2)``: the losses' and estimators'
    rule for soft targets (1e-6 for float64, 1e-4 for float32, ``10 eps = 9.8e-3``
    for float16), plus the worst-case error of summing K terms, ``K u`` with ``u``
    the unit roundoff (``eps / 2``) of the float the sum runs in (float32 for
    float16 probabilities: a sum accumulated in float16 drifts by percents, 2.5%
    for SciPy's float16 softmax along axis 0 over 1000 classes, and is refused),
    plus ``tiny / 2`` per entry, ``tiny`` the dtype's smallest subnormal (float16's
    subnormals below 6.1e-5 are spaced 6e-8 apart).  That is 1e-4 + 6e-8 K for
    float32 (2.0e-3 at K = 32,000, where the old ``100 K eps`` was 0.38 and passed
    rows summing to 0.7), 9.8e-3 + 8.9e-8 K for float16, 1e-6 for float64.

    Measured on rows of normal logits (scale 0.01 to 30, K = 2 to 100,000), all
    within it: ``softmaxkit.softmax`` sums to 1 within 4e-16 (float64), 4.4e-8
    (float32), 3.3e-4 (float16) whatever K (its sums run pairwise or in a wider
    float); ``scipy.special.softmax`` along axis 1 within 7e-16, 2.6e-7, 6.9e-4,
    but along axis 0, where NumPy sums sequentially, float32 rows stray 1.7e-4
    at K = 1e5 (a plain float32 loop: 0.01-0.02 K eps, 2e-3 at K = 1e6), hence
    the ``K u`` term; float64 probabilities rounded to float32 within 4.6e-8,
    rounded to float16 within 3.2e-3 at K = 1e5 and 3e-2 at K = 1e6 (many tiny
    probabilities, each rounded to a subnormal by up to ``2**-25``), hence the
    ``K tiny / 2`` term.

    Refused: rows off by more than that, such as 0.7 or 0.99 in float32 and
    0.9999 in float64 at any K, and the zeros of SciPy's float16 softmax whose
    sum overflowed (1e5 classes of similar logits).
    """
    acc = np.float32 if np.dtype(dtype).itemsize < 4 else dtype
    unit = float(np.finfo(acc).eps) / 2
    tiny = float(np.finfo(dtype).smallest_subnormal)
    return soft_target_tol(dtype) + n_classes * (unit + tiny / 2)


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
