"""softmax, log_softmax, logsumexp and softmin: the NumPy reference.

Every fast path in ``softmaxkit._kernels`` must reproduce these functions
(values and edge cases).  The edge-case table of DESIGN.md section 2 is
implemented in ``_fix_nonfinite`` and nowhere else.
"""

from __future__ import annotations

import numpy as np

from .. import _dispatch
from .._validation import (
    as_float_array,
    broadcast_where,
    check_temperature,
    normalize_axes,
)
from .._validation import plain as _plain

__all__ = ["softmax", "log_softmax", "logsumexp", "softmin"]


def _prepare(x, axis, where, temperature, owner, negate=False):
    """Validate and convert; returns (x_work, out_dtype, axes, where_b, T).

    ``x_work`` is ``x / T`` up to a per-slice shift (see ``_prepare_shift``),
    which none of softmax, log_softmax and softmin depends on.
    """
    return _prepare_shift(x, axis, where, temperature, owner, negate)[:5]


def _prepare_shift(x, axis, where, temperature, owner, negate=False):
    """Like ``_prepare`` but also returns the shift ``c`` (keepdims, or None
    for no shift) such that ``x / T == x_work + c / T``.

    With ``negate`` the input is ``-x`` (softmin).  See ``_apply_temperature``
    for when a shift is used: a tiny temperature never overflows ``x / T``
    (the result tends to the arg-max limit instead of splitting the mass
    over spurious infinities).
    """
    xw, out_dtype = as_float_array(x, "x")
    _dispatch.backend()  # an unknown SOFTMAXKIT_BACKEND is an error on every path
    T = check_temperature(_plain(temperature), owner)
    axes = normalize_axes(_plain(axis), xw.ndim, owner)
    wb = broadcast_where(where, xw.shape, owner)
    if negate:
        xw = -xw
    shift = None
    if T != 1.0:
        xw, shift = _apply_temperature(xw, axes, wb, T)
    return xw, out_dtype, axes, wb, T, shift


def _apply_temperature(x, axes, where, T):
    """Return ``(y, c)`` with ``x / T == y + c / T`` per slice.

    Normally ``y = x / T`` and ``c = None`` (when ``T`` is a power of two
    the division is exact and the accuracy is that of ``T = 1``).  When the
    division would overflow a finite entry (a tiny ``T``) or ``T`` is outside
    the normal range of the dtype, every slice is first shifted by its
    finite unmasked maximum ``c`` (else 0) and divided in float64 if need
    be, so the entries stay finite and the result is the arg-max limit.
    """
    dt = x.dtype
    info = np.finfo(dt)
    normal_T = float(info.tiny) <= T <= float(info.max)
    if normal_T:
        with np.errstate(over="ignore", under="ignore"):
            y = x / dt.type(T)
        if not (np.isinf(y) & np.isfinite(x)).any():
            return y, None
    xm = x if where is None else np.where(where, x, -np.inf).astype(dt, copy=False)
    m = np.max(xm, axis=axes, keepdims=True, initial=-np.inf)
    c = np.where(np.isfinite(m), m, 0).astype(dt, copy=False)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        d = x - c
        if normal_T:
            y = d / dt.type(T)
        else:
            y = (d.astype(np.float64) / T).astype(dt)
        # a finite entry must stay finite (only possible overflow: slices
        # with an infinite or NaN max, which were not shifted)
        np.minimum(y, info.max, out=y, where=np.isfinite(d))
    return y, c


def _accumulator(dt):
    """The dtype in which per-slice sums are accumulated: float64 for
    float32 input (only ``_lse_b`` sees float32: the other paths compute
    float32 in float64); for float64 the x87 extended type where the
    platform has one (11 more bits), else float64."""
    if dt == np.float32:
        return np.dtype(np.float64)
    return _WIDE


_WIDE = np.dtype(np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64)


def _parts(x, axes, where):
    """The shared pieces of the softmax family along ``axes`` (keepdims).

    Returns ``(xm, m, finite_m, shifted, err, p, rest)``:

    - ``xm``: x with masked entries set to -inf; ``m``: the max of the
      unmasked entries (``finite_m = isfinite(m)``);
    - ``shifted = fl(xm - m)`` (for finite m) and ``err`` its rounding
      error, ``xm - m == shifted + err`` exactly (Knuth's TwoSum), or
      None when every subtraction was exact;
    - ``p = exp(shifted)``, so ``exp(xm - m) = p * (1 + err)`` to first
      order (``err`` is at most half an ulp of ``shifted``);
    - ``rest``: the sum of ``exp(xm - m)`` over every entry but one maximal
      entry, in the wider dtype of ``_accumulator``, so that ``sum exp(xm -
      m) = 1 + rest`` and ``logsumexp = m + log1p(rest)``.

    Why the care: ``xm - m`` is rounded when x and m lie in different
    binades (entries of both signs), and ``exp`` turns half an ulp of 16
    into a relative error of 8 ulp; a float64 pairwise sum of a hundred
    terms loses ~2 ulp.  With both removed every result is within a few ulp
    of the exact value.  Slices whose max is not finite hold garbage here;
    ``_fix_nonfinite`` overwrites them.
    """
    dt = x.dtype
    acc = _accumulator(dt)
    xm = x if where is None else np.where(where, x, -np.inf).astype(dt, copy=False)
    m = np.max(xm, axis=axes, keepdims=True, initial=-np.inf)
    finite_m = np.isfinite(m)
    m0 = m if finite_m.all() else np.where(finite_m, m, 0).astype(dt, copy=False)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        shifted = xm - m0
        # TwoSum error of xm + (-m0), computed in place
        bv = shifted - xm
        err = shifted - bv
        np.subtract(xm, err, out=err)
        np.add(m0, bv, out=bv)
        np.subtract(err, bv, out=err)
        del bv
        bad = ~np.isfinite(err)
        if bad.any():
            err[bad] = 0
        if not err.any():
            err = None
        p = np.exp(shifted)
        is_max = shifted == 0
        nmax = np.sum(is_max, axis=axes, keepdims=True)
        # p is exactly 1 at maximal entries: drop them all, add back nmax - 1
        rest = np.sum(p - is_max, axis=axes, keepdims=True, dtype=acc)
        if err is not None:
            rest += np.sum(p * err, axis=axes, keepdims=True, dtype=dt)
        rest += (np.maximum(nmax, 1) - 1).astype(acc)
    return xm, m, finite_m, shifted, err, p, rest


def _slice_counts(x, axes, where):
    """Number of unmasked entries per slice (keepdims)."""
    if where is None:
        k = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        return np.full(shape, k, dtype=np.int64)
    return np.sum(where, axis=axes, keepdims=True)


def _fix_nonfinite(kind, out, x, xm, m, finite_m, axes, where):
    """Apply the edge-case table to the slices whose max is not finite.

    kind is "softmax", "log_softmax" or "logsumexp"; ``out`` is modified in
    place where needed and returned.
    """
    if finite_m.all():
        return out
    posinf = m == np.inf
    neginf = m == -np.inf
    nan = np.isnan(m)
    nunmasked = _slice_counts(x, axes, where)
    all_masked = neginf & (nunmasked == 0)
    undefined = neginf & (nunmasked > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "logsumexp":
            out = np.where(posinf, np.inf, out)
            out = np.where(neginf, -np.inf, out)
            out = np.where(nan, np.nan, out)
            return out.astype(x.dtype, copy=False)
        is_inf = xm == np.inf
        ninf = np.sum(is_inf, axis=axes, keepdims=True)
        if kind == "softmax":
            inf_val = np.where(is_inf, 1.0 / np.maximum(ninf, 1), 0.0)
            masked_val = 0.0
        else:
            inf_val = np.where(is_inf, -np.log(np.maximum(ninf, 1)), -np.inf)
            masked_val = -np.inf
        out = np.where(posinf, inf_val, out)
        out = np.where(all_masked, masked_val, out)
        out = np.where(undefined | nan, np.nan, out)
    return out.astype(x.dtype, copy=False)


def _softmax_impl(x, axes, where, log):
    """softmax / log_softmax of an already validated float array."""
    kind = "log_softmax" if log else "softmax"
    if where is None and axes == (x.ndim - 1,):
        fast = _dispatch.kernel(kind, x)
        if fast is not None:
            return fast(x)
    if x.dtype == np.float32:
        # float32 is computed in float64 (exact conversion) and rounded once
        res = _softmax_impl(x.astype(np.float64), axes, where, log)
        with np.errstate(over="ignore"):  # below -max32 rounds to -inf, correctly
            return res.astype(np.float32)
    xm, m, finite_m, shifted, err, p, rest = _parts(x, axes, where)
    dt = x.dtype
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if log:
            out = shifted - np.log1p(rest).astype(dt)
            if err is not None:
                out += err
        else:
            # p * (1 + err) / (1 + rest); the reciprocal is rounded once
            out = p * (1 / (1 + rest)).astype(dt)
            if err is not None:
                out += out * err
    return _fix_nonfinite(kind, out, x, xm, m, finite_m, axes, where)


def softmax(x, axis=-1, *, where=None, temperature=1.0):
    r"""Softmax of ``x`` along ``axis``: ``exp(x_i / T) / sum_j exp(x_j / T)``.

    Parameters
    ----------
    x : array_like, shape (..., K, ...)
        Input scores (logits).  Integer and bool input is computed in
        float64; float16 is computed in float32 and returned as float16;
        complex input raises TypeError.
    axis : int or tuple of ints, default -1
        Axis (or axes, treated jointly) along which the values sum to 1.
    where : array_like of bool, broadcastable to ``x.shape``, optional
        Entries that take part.  Masked entries (False) get probability 0;
        a slice with every entry masked is all 0.
    temperature : float in (0, inf), default 1.0
        ``T``; the result is ``softmax(x / T)``.

    Returns
    -------
    ndarray, same shape as ``x``
        Non-negative values that sum to 1 along ``axis`` (for slices with at
        least one finite or +inf unmasked entry).

    Notes
    -----
    Computed with the max shift, ``exp(x - m) / (1 + rest)`` where ``m`` is
    the max and ``rest`` the sum of ``exp(x_j - m)`` over every entry but one
    maximal entry.  Two roundings are compensated: the error of ``x - m``
    (TwoSum; it matters when ``x`` and ``m`` lie in different binades, where
    ``exp`` would turn it into up to 16 ulp) and that of the sum (accumulated
    in extended precision where the platform has it, float64 for float32
    input).  Against mpmath on 2000 float64 rows of width 3..1000, spread up
    to 20 and offsets up to 1e3 the worst entry is within 2.3 ulp (SciPy:
    18 ulp); see benchmarks/RESULTS.md.  float32 input is computed in
    float64 on this reference path and rounded once (within 0.5 ulp of
    float32).  With a temperature, ``x / T`` is rounded once more (exact
    when ``T`` is a power of two).

    Edge cases (DESIGN.md section 2):

    - ``-inf`` entries get 0; if every unmasked entry is ``-inf`` the slice
      is NaN (the value is undefined);
    - one or more ``+inf`` entries share the mass equally (the limit), the
      rest get 0;
    - a NaN anywhere in the unmasked slice makes the whole slice NaN;
    - an empty axis gives an empty result.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.softmax([3.0, 1.0, -3.0]).round(4)
    array([0.8789, 0.1189, 0.0022])
    >>> smk.softmax([1.0, 2.0, 3.0], where=[True, False, True]).round(4)
    array([0.1192, 0.    , 0.8808])
    >>> smk.softmax([0.0, float("inf"), float("inf")])
    array([0. , 0.5, 0.5])
    """
    xw, out_dtype, axes, wb, _ = _prepare(x, axis, where, temperature, "softmax")
    return _softmax_impl(xw, axes, wb, log=False).astype(out_dtype, copy=False)


def log_softmax(x, axis=-1, *, where=None, temperature=1.0):
    r"""Logarithm of the softmax, ``x_i / T - logsumexp(x / T)``, computed stably.

    Parameters
    ----------
    x : array_like, shape (..., K, ...)
        Input scores (logits); dtype rules as in :func:`softmax`.
    axis : int or tuple of ints, default -1
        Axis (or axes) of the normalisation.
    where : array_like of bool, broadcastable to ``x.shape``, optional
        Entries that take part; masked entries get ``-inf``.
    temperature : float in (0, inf), default 1.0
        The result is ``log_softmax(x / T)``.

    Returns
    -------
    ndarray, same shape as ``x``
        Values <= 0 whose exponentials sum to 1 along ``axis``.

    Notes
    -----
    ``log_softmax(x) = (x - m) - log1p(rest)`` with ``m = max(x)`` and
    ``rest`` the sum of ``exp(x_j - m)`` over every entry but one maximal
    one.  Both terms are <= 0, so there is no cancellation and every entry,
    including the largest (whose value is ``-log1p(rest)``, possibly tiny),
    is accurate to a few ulp (measured worst: 1.3 ulp, see
    benchmarks/RESULTS.md); ``x - m - log(sum)`` loses up to 1e5 ulp there,
    and rounds ``-log1p(rest)`` to 0 once ``rest`` is below 1e-16.
    ``+inf`` entries get ``-log(count of +inf)``, the others ``-inf``;
    masked entries get ``-inf``; an all ``-inf`` slice is NaN.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.log_softmax([3.0, 1.0, -3.0]).round(4)
    array([-0.1291, -2.1291, -6.1291])
    >>> float(smk.log_softmax([0.0, -40.0])[0])  # exact, not 0.0
    -4.248354255291589e-18
    """
    xw, out_dtype, axes, wb, _ = _prepare(x, axis, where, temperature, "log_softmax")
    return _softmax_impl(xw, axes, wb, log=True).astype(out_dtype, copy=False)


def softmin(x, axis=-1, *, where=None, temperature=1.0):
    r"""Softmin, ``softmax(-x)``: the smallest entries get the most mass.

    Parameters
    ----------
    x : array_like, shape (..., K, ...)
        Input values (energies, distances).
    axis : int or tuple of ints, default -1
        Axis (or axes) along which the result sums to 1.
    where : array_like of bool, broadcastable to ``x.shape``, optional
        Entries that take part; masked entries get 0.
    temperature : float in (0, inf), default 1.0
        The result is ``softmax(-x / T)`` (a Boltzmann distribution at
        temperature ``T`` over energies ``x``).

    Returns
    -------
    ndarray, same shape as ``x``

    Notes
    -----
    The edge-case table applies to ``-x``: ``-inf`` entries share the mass,
    ``+inf`` entries get 0.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.softmin([3.0, 1.0, -3.0]).round(4)
    array([0.0024, 0.0179, 0.9796])
    """
    xw, out_dtype, axes, wb, _ = _prepare(x, axis, where, temperature, "softmin", negate=True)
    return _softmax_impl(xw, axes, wb, log=False).astype(out_dtype, copy=False)


def logsumexp(x, axis=-1, *, b=None, where=None, keepdims=False, temperature=1.0,
              return_sign=False):
    r"""``T * log(sum_j b_j * exp(x_j / T))`` along ``axis``, computed stably.

    Parameters
    ----------
    x : array_like, shape (..., K, ...)
        Input values; dtype rules as in :func:`softmax`.
    axis : int or tuple of ints or None, default -1
        Axis (or axes) to reduce; None reduces over all axes.
    b : array_like, broadcastable to ``x.shape``, optional
        Scale factors for ``exp(x)``, as in :func:`scipy.special.logsumexp`.
        May be negative when ``return_sign=True``.
    where : array_like of bool, broadcastable to ``x.shape``, optional
        Entries that take part; a fully masked slice gives ``-inf``.
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    temperature : float in (0, inf), default 1.0
        Returns ``T * logsumexp(x / T)``, a smooth maximum that tends to
        ``max(x)`` as ``T -> 0`` and is ``max(x) + T log(count of max)``
        close to it.
    return_sign : bool, default False
        Also return the sign of the sum (needed when ``b`` has negative
        entries).  Without it a negative sum gives NaN.

    Returns
    -------
    res : ndarray, shape of ``x`` without ``axis`` (or with size-1 axes)
    sign : ndarray, same shape as ``res``, only with ``return_sign=True``

    Notes
    -----
    ``logsumexp(x) = m + log1p(rest)`` with ``m = max(x)`` and ``rest`` the
    sum of ``exp(x_j - m)`` over all entries but one maximal entry, both
    accumulated in extended precision where the platform has one (measured
    worst error 0.7 ulp where the sum does not cancel, see
    benchmarks/RESULTS.md).  When the result is much smaller in magnitude
    than ``m`` (``m < 0`` and ``log1p(rest)`` close to ``-m``) the sum
    cancels and the error is bounded relative to ``|m|``, not to the result:
    about one ulp of ``|m|`` (measured: up to 1.1 ulp of ``|m|``, which was
    23 ulp of a result 1000 times smaller than ``m``; 61 ulp on the compiled
    path), as for any method whose terms ``exp(x_j - m)`` are rounded to the
    working precision.  With ``temperature=T`` the
    result is ``c + T * logsumexp((x - c) / T)``, ``c`` the max when ``x /
    T`` would overflow (so a tiny ``T`` gives ``max(x)``, not ``inf``).

    Any ``+inf`` gives ``+inf``; an all ``-inf``, fully masked or empty slice
    gives ``-inf``; a NaN gives NaN.  ``return_sign`` gives the sign of the
    sum ``sum_j b_j exp(x_j)``: 1 (or that of the ``b``-weighted sum), 0 for
    an empty or all ``-inf`` sum (as in SciPy), NaN for a NaN slice.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> round(float(smk.logsumexp([1000.0, 1000.0])), 6)
    1000.693147
    >>> float(smk.logsumexp([1.0, 3.0], temperature=1e-3))
    3.0
    >>> res, sign = smk.logsumexp([0.0, 0.0], b=[1.0, -2.0], return_sign=True)
    >>> float(res), float(sign)  # log|1 - 2| and the sign of 1 - 2
    (0.0, -1.0)
    """
    xw, out_dtype, axes, wb, T, shift = _prepare_shift(x, axis, where, temperature, "logsumexp")
    if b is None:
        res = _lse_impl(xw, axes, wb)
        sign = None
        if return_sign:
            # the sign of sum(exp(x)): 1, or 0 for an empty sum (-inf)
            sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0))
            sign = sign.astype(xw.dtype)
    else:
        res, sign = _lse_b(xw, axes, wb, b)
        if not return_sign:
            res = np.where(sign < 0, np.nan, res)
    if T != 1.0:
        # T * logsumexp(x / T) = c + T * logsumexp((x - c) / T)
        with np.errstate(over="ignore", invalid="ignore"):
            res = T * res.astype(np.float64)
            if shift is not None:
                res += shift
            res = res.astype(xw.dtype)
    if not keepdims:
        res = np.squeeze(res, axis=axes)
        if sign is not None:
            sign = np.squeeze(sign, axis=axes)
    res = _as_out(res, out_dtype)
    if return_sign:
        return res, _as_out(sign, out_dtype)
    return res


def _as_out(a, dtype):
    a = np.asarray(a).astype(dtype, copy=False)
    return a[()] if a.ndim == 0 else a


def _lse_impl(x, axes, where):
    """logsumexp with keepdims of a validated float array."""
    if where is None and axes == (x.ndim - 1,):
        fast = _dispatch.kernel("logsumexp", x)
        if fast is not None:
            return fast(x)[..., None]
    if x.dtype == np.float32:
        return _lse_impl(x.astype(np.float64), axes, where).astype(np.float32)
    xm, m, finite_m, shifted, err, p, rest = _parts(x, axes, where)
    with np.errstate(invalid="ignore"):
        out = (m + np.log1p(rest)).astype(x.dtype)
    return _fix_nonfinite("logsumexp", out, x, xm, m, finite_m, axes, where)


def _lse_b(x, axes, where, b):
    """logsumexp with scale factors ``b`` (scipy semantics); keepdims."""
    bw, _ = as_float_array(b, "b")
    try:
        bw = np.broadcast_to(bw, x.shape).astype(x.dtype, copy=False)
    except ValueError:
        raise ValueError(
            f"b of logsumexp with shape {bw.shape} does not broadcast to x's shape {x.shape}."
        ) from None
    active = bw != 0
    if where is not None:
        active = active & where
    xm = np.where(active, x, -np.inf).astype(x.dtype, copy=False)
    m = np.max(xm, axis=axes, keepdims=True, initial=-np.inf)
    m0 = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = np.sum(np.where(active, bw * np.exp(xm - m0), 0), axis=axes, keepdims=True,
                   dtype=_accumulator(x.dtype))
        sign = np.sign(s)
        out = np.log(np.abs(s)) + m0
        # +inf entries: the sum is dominated by them (sign of their b's sum)
        posinf = m == np.inf
        if posinf.any():
            binf = np.sum(np.where(xm == np.inf, bw, 0), axis=axes, keepdims=True)
            sign = np.where(posinf, np.sign(binf), sign)
            out = np.where(posinf, np.where(binf == 0, np.nan, np.inf), out)
        out = np.where(m == -np.inf, -np.inf, out)
        sign = np.where(m == -np.inf, 0.0, sign)
        nan = np.isnan(m) | np.isnan(s)
        out = np.where(nan, np.nan, out)
        sign = np.where(nan, np.nan, sign)
    return out.astype(x.dtype, copy=False), sign.astype(x.dtype, copy=False)
