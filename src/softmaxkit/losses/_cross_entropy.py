"""Cross-entropy of logits against class labels or probabilities (NumPy reference).

The row core ``_ce_rows`` (contract 1 of the design) works on validated
``(n, K)`` arrays; the public functions validate once, move the class axis
last, ask ``softmaxkit._dispatch.kernel("cross_entropy", z)`` for a compiled
twin of the core and reduce.  The softmax itself comes from
``softmaxkit.special`` (``_softmax_impl``), never re-derived here.

Semantics follow ``torch.nn.functional.cross_entropy`` (weights, ignored
labels, label smoothing, probability targets, the three reductions) except
where the design's edge-case table says otherwise; every difference is
listed in the Notes of :func:`cross_entropy`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _dispatch
from .._validation import (
    as_float_array,
    broadcast_where,
    check_choice_param,
    check_scalar_param,
    check_temperature,
    param_error,
    soft_target_tol,
)
from .._validation import plain as _plain
from ..special._softmax import _softmax_impl

__all__ = ["cross_entropy", "cross_entropy_and_grad", "cross_entropy_hvp", "one_hot"]

_REDUCTIONS = ("mean", "sum", "none")


class _Got(str):
    """A 'got' value for ``param_error`` that prints without quotes."""

    def __repr__(self):
        return str(self)


# --------------------------------------------------------------------------- row core


def _mul0(a, logq):
    """``a * logq`` with ``0 * log 0 = 0`` (a zero coefficient on a ``-inf``
    log-probability contributes nothing); NaN still propagates."""
    with np.errstate(invalid="ignore"):
        prod = a * logq
    zero = (a == 0) & (logq == -np.inf)
    if zero.any():
        prod = np.where(zero, 0, prod).astype(prod.dtype, copy=False)
    return prod


def _ce_rows(z, target, weight=None, ignore_index=None, label_smoothing=0.0, need_grad=True):
    """Per-row cross-entropy of validated ``(n, K)`` logits (contract 1).

    Parameters
    ----------
    z : ndarray, shape (n, K), float32 or float64, C-contiguous
        Logits already divided by the temperature, classes on the last axis.
    target : ndarray, shape (n,) of np.intp or shape (n, K) of z's dtype
        Class labels (entries equal to ``ignore_index`` allowed, all others in
        ``[0, K)``) or probabilities (non-negative rows summing to 1).
    weight : ndarray, shape (K,), z's dtype, optional
        Class weights.
    ignore_index : int, optional
        Label value whose rows are ignored.
    label_smoothing : float in [0, 1]
        PyTorch's label smoothing ``eps``.
    need_grad : bool
        Also return the gradient.

    Returns
    -------
    loss : ndarray, shape (n,)
        Per-sample loss as PyTorch's ``reduction="none"`` gives it.
    wsum : ndarray, shape (n,)
        Each sample's share of the "mean" denominator (``weight[y_i]``, 0 for
        ignored rows, 1 for probability targets).
    grad : ndarray, shape (n, K), or None
        ``d loss[i] / d z[i, :]`` (zero rows for ignored samples).
    """
    return _ce_core(z, target, weight, ignore_index, label_smoothing, need_grad, None)


def _ce_core(z, target, weight, ignore_index, label_smoothing, need_grad, mask):
    """``_ce_rows`` plus an optional ``(n, K)`` boolean class mask ``mask``.

    Masked classes do not exist for their sample: probability 0, no share of
    the label smoothing (which spreads over the sample's unmasked classes);
    a sample with every class masked is left out (loss 0, wsum 0, grad 0).
    Targets on masked classes never reach the core: ``_validate`` refuses them
    (``_check_target_unmasked``).
    """
    n, K = z.shape
    dt = z.dtype
    eps = float(label_smoothing)
    if mask is None:
        logq = _softmax_impl(z, (1,), None, log=True)
        active = None
        k_eff = dt.type(K)
    else:
        logq = _softmax_impl(z, (1,), mask, log=True)
        kcount = mask.sum(axis=1)
        active = kcount > 0
        k_eff = np.maximum(kcount, 1).astype(dt)[:, None]
    rows = np.arange(n)

    if target.ndim == 1:  # class labels
        valid = np.ones(n, dtype=bool) if ignore_index is None else target != ignore_index
        if active is not None:
            valid &= active
        yv = np.where(valid, target, 0)
        wy = np.ones(n, dtype=dt) if weight is None else weight[yv]
        wy = np.where(valid, wy, 0).astype(dt, copy=False)
        loss = -_mul0(wy, logq[rows, yv])
        smooth_coef = None
        if eps > 0:
            wc = np.ones(K, dtype=dt) if weight is None else weight
            smooth_coef = (wc[None, :] * (dt.type(eps) / k_eff)).astype(dt, copy=False)
            if mask is not None:
                smooth_coef = np.where(mask, smooth_coef, 0).astype(dt, copy=False)
            smooth = -np.sum(_mul0(smooth_coef, logq), axis=1)
            loss = dt.type(1 - eps) * loss + smooth
        loss = np.where(valid, loss, 0).astype(dt, copy=False)
        wsum = wy
        grad = None
        if need_grad:
            S = np.exp(logq)
            if smooth_coef is None:
                grad = wy[:, None] * S
                grad[rows, yv] -= wy
            else:
                A = np.broadcast_to(smooth_coef, (n, K)).copy()
                A[rows, yv] += dt.type(1 - eps) * wy
                grad = np.sum(A, axis=1, keepdims=True) * S - A
            grad[~valid] = 0
        return loss, wsum, grad

    # probability targets
    A = target
    if eps > 0:
        spread = dt.type(eps) / k_eff
        if mask is not None:
            spread = np.where(mask, spread, 0).astype(dt, copy=False)
        A = dt.type(1 - eps) * A + spread
    if weight is not None:
        A = A * weight[None, :]
    loss = -np.sum(_mul0(A, logq), axis=1)
    wsum = np.ones(n, dtype=dt)
    if active is not None:
        loss = np.where(active, loss, 0).astype(dt, copy=False)
        wsum = active.astype(dt)
    grad = None
    if need_grad:
        S = np.exp(logq)
        grad = np.sum(A, axis=1, keepdims=True) * S - A
        if active is not None:
            grad[~active] = 0
    return loss, wsum, grad


# --------------------------------------------------------------------------- validation


def _check_axis(axis, ndim, owner):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(
            f"axis of {owner} must be an int (the class axis); got {_plain(axis)!r}."
        )
    return int(np.lib.array_utils.normalize_axis_index(int(axis), ndim))


def _check_logits(logits, axis, temperature, owner):
    zw, out_dtype = as_float_array(logits, "logits")
    if zw.ndim == 0:
        raise ValueError(
            f"logits of {owner} must have at least one dimension (the class axis); got a scalar."
        )
    T = check_temperature(_plain(temperature), owner)
    ax = _check_axis(axis, zw.ndim, owner)
    return zw, out_dtype, T, ax


def _check_weight(weight, K, dtype, owner):
    if weight is None:
        return None
    w = np.asarray(weight)
    expected = f"an array of shape ({K},) holding one finite non-negative weight per class"
    if w.dtype.kind not in "biuf":
        raise param_error("weight", owner, expected, _Got(f"dtype {w.dtype}"), exc=TypeError)
    if w.shape != (K,):
        raise param_error("weight", owner, expected, _Got(f"an array of shape {w.shape}"))
    bad = ~np.isfinite(w) | (w < 0) if w.dtype.kind == "f" else w < 0
    if bad.any():
        i = int(np.argmax(bad))
        raise param_error("weight", owner, expected, _Got(f"{w[i].item()!r} at index {i}"))
    return np.ascontiguousarray(w, dtype=dtype)


def _first_position(bad):
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _check_labels(t, K, ignore_index, owner):
    """Return ``(labels as intp, ignore value for the core)``."""
    if ignore_index is not None:
        ignored = t == ignore_index
        bad = ((t < 0) | (t >= K)) & ~ignored
    else:
        ignored = None
        bad = (t < 0) | (t >= K)
    if bad.any():
        pos = _first_position(bad)
        extra = "" if ignore_index is None else f" and not ignore_index={ignore_index}"
        raise ValueError(
            f"target of {owner} holds the label {t[pos].item()!r} at position {pos}, outside "
            f"the class range [0, {K}){extra}."
        )
    if ignored is None or not ignored.any():
        return t.astype(np.intp, copy=False), None
    # ignored entries become -1 (never a class), whatever ignore_index and dtype were
    return np.where(ignored, -1, t).astype(np.intp), -1


def _prob_tol(dtype):
    """``|sum(p) - 1|`` allowed for probability targets stored in ``dtype``: the
    estimators' rule (``_validation.soft_target_tol``): 1e-6 for float64, 1e-4 for
    float32 (a float32 softmax over 50,257 classes sums to 1 within 8.5e-6), 10 eps
    for float16."""
    return soft_target_tol(dtype)


def _check_probabilities(t, ax, dtype, owner, where=None):
    """Validate float probabilities (logits' shape); return them in ``dtype``.  Rows
    that ``where`` masks entirely (padding, left out of the loss) need not sum to 1."""
    tol = _prob_tol(t.dtype)
    pw = t.astype(dtype, copy=False)
    finite = np.isfinite(pw)
    if not finite.all():
        pos = _first_position(~finite)
        raise ValueError(
            f"target of {owner} holds probabilities, which must be finite; got "
            f"{t[pos].item()!r} at position {pos}."
        )
    neg = pw < 0
    if neg.any():
        pos = _first_position(neg)
        raise ValueError(
            f"target of {owner} holds probabilities, which must be non-negative; got "
            f"{t[pos].item()!r} at position {pos}."
        )
    sums = np.sum(pw, axis=ax, dtype=np.float64)
    off = np.abs(sums - 1.0) > tol
    if where is not None:
        off &= np.any(where, axis=ax)
    if off.any():
        pos = _first_position(off)
        raise ValueError(
            f"target of {owner} holds probabilities, which must sum to 1 along axis {ax} "
            f"(within {tol:g}); the row at position {pos} sums to {float(sums[pos]):.10g}."
        )
    return pw


def _validate(logits, target, axis, weight, ignore_index, label_smoothing, where, reduction,
              temperature, owner):
    """Validate everything once; return the 2-D problem and how to undo the reshape."""
    zw, out_dtype, T, ax = _check_logits(logits, axis, temperature, owner)
    K = zw.shape[ax]
    if K == 0:
        raise ValueError(f"logits of {owner} must have at least one class along axis {ax}.")
    reduction = check_choice_param(_plain(reduction), "reduction", owner, _REDUCTIONS)
    eps = check_scalar_param(_plain(label_smoothing), "label_smoothing", owner, kind=float,
                             low=0.0, high=1.0)
    ignore_index = check_scalar_param(_plain(ignore_index), "ignore_index", owner, kind=int,
                                      high_open=True, allow_none=True)
    w = _check_weight(weight, K, zw.dtype, owner)
    wb = broadcast_where(where, zw.shape, owner)

    lab_shape = zw.shape[:ax] + zw.shape[ax + 1:]
    t = np.asarray(target)
    kind = t.dtype.kind
    if kind in "iu" or (kind == "f" and t.size == 0 and t.shape == lab_shape):
        if t.shape != lab_shape:
            raise ValueError(
                f"target of {owner} has an integer dtype, so it holds class labels and must "
                f"have logits' shape without the class axis, {lab_shape}; got shape {t.shape}. "
                f"Pass probabilities as a float array of logits' shape {zw.shape}."
            )
        y, ign = _check_labels(t, K, ignore_index, owner)
        y2 = np.ascontiguousarray(y.reshape(-1))
    elif kind == "f":
        if t.shape != zw.shape:
            raise ValueError(
                f"target of {owner} has a float dtype, so it holds probabilities and must have "
                f"logits' shape {zw.shape}; got shape {t.shape}. Pass class labels as an "
                f"integer array of shape {lab_shape}."
            )
        if ignore_index is not None:
            raise ValueError(
                f"ignore_index of {owner} applies to class labels only; target holds "
                f"probabilities (as in PyTorch, which also refuses it)."
            )
        pw = _check_probabilities(t, ax, zw.dtype, owner, wb)
        y2 = np.ascontiguousarray(np.moveaxis(pw, ax, -1).reshape(-1, K))
        ign = None
    else:
        raise TypeError(
            f"target of {owner} must be integer class labels or float probabilities; "
            f"got dtype {t.dtype}."
        )

    moved_shape = lab_shape + (K,)
    z = np.moveaxis(zw, ax, -1).reshape(-1, K)
    mask = None
    if wb is not None:
        mask = np.ascontiguousarray(np.moveaxis(wb, ax, -1).reshape(-1, K))
        _check_target_unmasked(t, y2, mask, ax, lab_shape, owner)
    z = _divide_by_temperature(z, mask, T) if T != 1.0 else np.ascontiguousarray(z)
    return dict(z=z, target=y2, weight=w, ignore_index=ign, eps=eps, mask=mask,
                reduction=reduction, T=T, ax=ax, lab_shape=lab_shape,
                moved_shape=moved_shape, out_dtype=out_dtype)


def _check_target_unmasked(t, y2, mask, ax, lab_shape, owner):
    """Refuse a target on a class that ``where`` masks out for its sample.

    A masked class does not exist for that sample, so a label on it (or
    probability mass on it) is as invalid as a label outside ``[0, K)``.
    Samples with every class masked are left out (padding) and not checked;
    ignored labels (``-1`` in ``y2``) are not checked either.
    """
    n = mask.shape[0]
    live = mask.any(axis=1)
    if y2.ndim == 1:
        labelled = live & (y2 >= 0)
        on_masked = labelled & ~mask[np.arange(n), np.where(labelled, y2, 0)]
        if on_masked.any():
            pos = tuple(int(i) for i in np.unravel_index(int(np.argmax(on_masked)), lab_shape))
            raise ValueError(
                f"target of {owner} holds the label {t[pos].item()!r} at position {pos}, a "
                f"class that where masks out for that sample; a label must be one of its "
                f"sample's unmasked classes (samples with every class masked are left out)."
            )
        return
    on_masked = live[:, None] & ~mask & (y2 > 0)
    if on_masked.any():
        i, c = (int(v) for v in np.argwhere(on_masked)[0])
        pos = np.unravel_index(i, lab_shape) if lab_shape else ()
        pos = tuple(int(v) for v in pos[:ax]) + (c,) + tuple(int(v) for v in pos[ax:])
        raise ValueError(
            f"target of {owner} puts probability {t[pos].item()!r} at position {pos} on a "
            f"class that where masks out for that sample; probabilities must be 0 on masked "
            f"classes (samples with every class masked are left out)."
        )


def _divide_by_temperature(z, mask, T):
    """``(z - c) / T`` with ``c`` each row's finite (unmasked) max, else 0.

    The loss and its gradient do not depend on a per-row shift; shifting first
    means a tiny ``T`` sends the logits below the max towards ``-inf`` (the
    arg-max limit) instead of overflowing the largest ones to ``+inf``.  The
    division runs in float64 when ``T`` is outside the working dtype's normal
    range (a float32 ``T = 1e-40`` would otherwise round to 0).
    """
    zm = z if mask is None else np.where(mask, z, -np.inf)
    m = np.max(zm, axis=1, keepdims=True, initial=-np.inf)
    c = np.where(np.isfinite(m), m, 0).astype(z.dtype, copy=False)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        d = z - c
    return _divide(d, T)


def _divide(a, T):
    """``a / T``, in float64 when ``T`` is outside ``a``'s normal range."""
    dt = a.dtype
    info = np.finfo(dt)
    with np.errstate(over="ignore", under="ignore"):
        if info.tiny <= T <= info.max:
            return a / dt.type(T)
        return (a.astype(np.float64) / T).astype(dt)


def _as_out(a, dtype):
    a = np.asarray(a).astype(dtype, copy=False)
    return a[()] if a.ndim == 0 else a


def _cross_entropy(args, need_grad):
    p = _validate(*args)
    z = p["z"]
    core_args = (z, p["target"], p["weight"], p["ignore_index"], p["eps"], need_grad)
    # (a masked call needs no kernel but still refuses an unknown SOFTMAXKIT_BACKEND)
    fast = _dispatch.kernel("cross_entropy", z) if p["mask"] is None else _dispatch.backend()
    if callable(fast):
        loss, wsum, grad = fast(*core_args)
    else:
        loss, wsum, grad = _ce_core(*core_args, p["mask"])

    red = p["reduction"]
    if red == "none":
        out = loss.reshape(p["lab_shape"])
    elif red == "sum":
        out = np.sum(loss)
    else:
        denom = np.sum(wsum)
        if denom == 0:
            # no sample counts: 0.0 with a zero gradient (NaN logits still show)
            nan_rows = np.isnan(loss)
            out = np.nan if nan_rows.any() else 0.0
            if grad is not None:
                grad = np.where(nan_rows[:, None], np.nan, np.zeros_like(grad))
        else:
            out = np.sum(loss) / denom
            if grad is not None:
                grad = grad / denom
    out = _as_out(out, p["out_dtype"])
    if not need_grad:
        return out, None
    if p["T"] != 1.0:
        grad = _divide(grad, p["T"])
    grad = np.moveaxis(grad.reshape(p["moved_shape"]), -1, p["ax"])
    return out, grad.astype(p["out_dtype"], copy=False)


# --------------------------------------------------------------------------- public API


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=None,
                  label_smoothing=0.0, where=None, reduction="mean", temperature=1.0):
    r"""Cross-entropy between ``softmax(logits / T)`` and class labels or probabilities.

    Parameters
    ----------
    logits : array_like, shape (..., K, ...)
        Unnormalised scores with the ``K`` classes along ``axis``.  Integer and
        bool input is computed in float64; float16 is computed in float32 and
        the result returned as float16; complex input raises TypeError.
        ``-inf`` logits are allowed (probability 0), NaN propagates.
    target : array_like
        Either integer class labels of logits' shape without the class axis,
        each in ``[0, K)`` or equal to ``ignore_index``; or float
        probabilities of logits' shape, non-negative and summing to 1 along
        ``axis`` (within 1e-6 for float64 targets, 1e-4 for float32, 10 eps =
        9.8e-3 for float16; rows that ``where`` masks entirely are not
        checked for their sum).  The dtype decides:
        integers are labels, floats are probabilities.
    axis : int, default -1
        The class axis (``axis=1`` is PyTorch's layout ``(N, C, d1, ...)``).
    weight : array_like, shape (K,), optional
        Finite non-negative per-class weights ``w``.
    ignore_index : int, optional
        Label value whose samples are left out (loss 0, no share of the
        mean).  Only for label targets.
    label_smoothing : float in [0, 1], default 0.0
        ``eps``: the target becomes ``(1 - eps) * target + eps / K``.
    where : array_like of bool, broadcastable to logits' shape, optional
        Classes that exist for each sample (as in :func:`softmax`).  Masked
        classes get probability 0 and no share of the smoothing, which spreads
        ``eps`` over the ``K_i`` unmasked classes of sample ``i``; a label or
        probability mass on a masked class raises ValueError (see Notes); a
        sample with every class masked is left out like an ignored one.
    reduction : {"mean", "sum", "none"}, default "mean"
        How per-sample losses are combined (see Notes).
    temperature : float in (0, inf), default 1.0
        ``T``: the loss is computed on ``logits / T``.

    Returns
    -------
    loss : scalar, or ndarray of logits' shape without the class axis for ``"none"``
        In logits' result dtype (float16 in, float16 out).

    Raises
    ------
    ValueError
        A label outside ``[0, K)`` other than ``ignore_index`` (the message
        names the first bad value and its position), probabilities that are
        negative, not finite or do not sum to 1 (the message names the row),
        a label or positive probability on a class that ``where`` masks out
        for a sample with at least one unmasked class (the message names the
        first one), ``ignore_index`` with probability targets, a bad ``reduction``,
        ``label_smoothing``, ``weight``, ``temperature`` or ``axis``.
    TypeError
        Complex logits, a target that is neither integer nor float.

    See Also
    --------
    cross_entropy_and_grad : the loss and its gradient w.r.t. ``logits``.
    cross_entropy_hvp : Hessian-vector products.

    Notes
    -----
    With ``z = logits / T``, ``log q = log_softmax(z)`` and per-sample target
    coefficients ``a_c`` the per-sample loss is

    .. math:: \ell_i = -\sum_c a_{ic} \log q_{ic}, \qquad 0 \cdot \log 0 = 0,

    where for a label ``y_i`` (PyTorch's definition, class weights included)

    .. math:: a_{ic} = (1 - \varepsilon)\, w_{y_i} [c = y_i] + \frac{\varepsilon}{K} w_c

    and for probabilities ``p_i``: ``a_ic = w_c ((1 - eps) p_ic + eps / K)``
    (``w = 1`` without ``weight``).  Reductions: ``"sum"`` is
    :math:`\sum_i \ell_i`; ``"mean"`` is :math:`\sum_i \ell_i / \sum_i w_{y_i}`
    over non-ignored samples for labels (PyTorch's weighted mean) and
    :math:`\sum_i \ell_i / N` for probabilities (PyTorch divides by the
    number of samples there, whatever the weights).

    Edge cases: a zero coefficient on a class of probability 0 (a ``-inf``
    logit) contributes 0, so soft targets with 0 mass on ``-inf`` logits give
    a finite loss.  **Label smoothing with a** ``-inf`` **logit gives**
    ``+inf``: the smoothed target puts ``eps / K > 0`` mass on a class whose
    probability is 0, and ``-(eps / K) log 0 = +inf`` is the exact value.
    A ``"mean"`` over zero counting samples (all ignored, masked or of zero
    weight) is ``0.0`` with a zero gradient.  NaN logits give a NaN loss
    (ignored samples excepted, as in PyTorch).

    **A target on a masked class is an error, not** ``+inf``: ``where=False``
    says the class does not exist for that sample (DESIGN.md section 2: the
    loss ignores it and the gradient is 0 there), so a label on it, or
    probability mass > 0 on it, is invalid data like a label outside
    ``[0, K)`` and raises ValueError naming the first such position, in
    :func:`cross_entropy` and :func:`cross_entropy_and_grad` alike, for every
    ``reduction``, class weight and ``label_smoothing``.  This differs from a
    ``-inf`` logit on the target class, a valid model output whose exact loss
    is ``+inf``.  A sample with every class masked (padding) is left out
    whatever its target, and an ignored label is never checked.

    Where PyTorch differs: it returns NaN for a mean over zero samples,
    NaN for ``0 * log 0`` (a zero target or weight on a ``-inf`` logit), a
    NaN gradient on an ignored sample whose logits hold NaN, and accepts
    negative weights and negative "probabilities"; softmaxkit returns the
    values above (a zero gradient for ignored samples) and raises on the
    latter two.  Like PyTorch it refuses ``ignore_index`` with probability
    targets.  With ``T != 1`` each sample's logits are shifted by their
    maximum before the division (the loss does not change), so a tiny ``T``
    approaches the arg-max limit instead of overflowing.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> round(float(smk.cross_entropy(logits, [0, 1])), 6)
    0.396378
    >>> smk.cross_entropy(logits, [0, 1], reduction="none").round(4)
    array([0.2413, 0.5514])
    >>> p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> round(float(smk.cross_entropy(logits, p)), 6)        # one-hot == labels
    0.396378
    >>> float(smk.cross_entropy([[0.0, -np.inf]], [[1.0, 0.0]]))   # 0 * log 0 = 0
    0.0
    >>> float(smk.cross_entropy([[0.0, -np.inf]], [0], label_smoothing=0.1))
    inf
    >>> mask = [[True, True, False]]                  # class 2 does not exist here
    >>> round(float(smk.cross_entropy(logits[:1], [1], where=mask)), 6)
    1.701413
    >>> smk.cross_entropy(logits[:1], [2], where=mask)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: target of cross_entropy holds the label 2 at position (0,), a class that where ...
    """
    out, _ = _cross_entropy((logits, target, axis, weight, ignore_index, label_smoothing,
                             where, reduction, temperature, "cross_entropy"), need_grad=False)
    return out


def cross_entropy_and_grad(logits, target, *, axis=-1, weight=None, ignore_index=None,
                           label_smoothing=0.0, where=None, reduction="mean", temperature=1.0):
    r"""Cross-entropy and its gradient with respect to ``logits``.

    Parameters
    ----------
    logits : array_like, shape (..., K, ...)
        As in :func:`cross_entropy`.
    target : array_like
        Labels of logits' shape without the class axis, or probabilities of
        logits' shape; as in :func:`cross_entropy`.
    axis : int, default -1
        The class axis.
    weight : array_like, shape (K,), optional
        Per-class weights.
    ignore_index : int, optional
        Label value whose samples are left out.
    label_smoothing : float in [0, 1], default 0.0
        PyTorch's label smoothing.
    where : array_like of bool, broadcastable to logits' shape, optional
        Classes that exist for each sample.
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`cross_entropy`.
    temperature : float in (0, inf), default 1.0
        The loss is computed on ``logits / T``.

    Returns
    -------
    loss : scalar, or ndarray of logits' shape without the class axis
        Exactly :func:`cross_entropy`'s value.
    grad : ndarray, same shape as ``logits``
        The gradient of ``loss`` w.r.t. ``logits`` (for ``"none"``: of
        ``loss.sum()``, i.e. each sample's slice is the gradient of its own
        loss).  Zero for ignored or fully masked samples and at every masked
        entry, finite at ``-inf`` logits, NaN for samples with NaN logits.
        A target on a masked class raises ValueError, as in
        :func:`cross_entropy`.

    Notes
    -----
    With the coefficients ``a_ic`` of :func:`cross_entropy` and
    ``S_i = softmax(z_i)``,

    .. math:: \frac{\partial \ell_i}{\partial z_i} = \Big(\sum_c a_{ic}\Big) S_i - a_i,
              \qquad \frac{\partial}{\partial\,\mathrm{logits}} = \frac{1}{T}
              \frac{\partial}{\partial z},

    which is ``softmax(z) - onehot(y)`` for a plain label; ``"mean"`` divides
    by the same denominator as the loss.  The softmax Jacobian is never formed.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> loss, grad = smk.cross_entropy_and_grad([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], [0, 1])
    >>> round(float(loss), 6)
    0.396378
    >>> grad.round(4)                  # (softmax(z) - onehot) / n
    array([[-0.1072,  0.0876,  0.0196],
           [ 0.106 , -0.2119,  0.106 ]])
    """
    return _cross_entropy((logits, target, axis, weight, ignore_index, label_smoothing,
                           where, reduction, temperature, "cross_entropy_and_grad"),
                          need_grad=True)


def cross_entropy_hvp(logits, v, *, axis=-1, temperature=1.0, sample_weight=None):
    r"""Hessian-vector product of the summed cross-entropy w.r.t. ``logits``.

    Parameters
    ----------
    logits : array_like, shape (..., K, ...)
        Logits; dtype rules as in :func:`cross_entropy`.
    v : array_like, same shape as ``logits``
        The direction.
    axis : int, default -1
        The class axis.
    temperature : float in (0, inf), default 1.0
        ``T``; the loss is computed on ``logits / T``.
    sample_weight : array_like, logits' shape without the class axis, optional
        Finite per-sample factors ``s_i`` (broadcastable to that shape).

    Returns
    -------
    ndarray, same shape as ``logits``
        ``H v`` where ``H`` is the Hessian of ``sum_i s_i CE(logits_i / T, t_i)``.

    Notes
    -----
    For any target whose coefficients sum to 1 (labels, probabilities, label
    smoothing without class weights) the Hessian of a sample's loss does not
    depend on the target:

    .. math:: H_i = \frac{s_i}{T^2}\big(\mathrm{diag}(S_i) - S_i S_i^\top\big),
              \qquad H_i v_i = \frac{s_i}{T^2}\big(S_i v_i - S_i \langle S_i, v_i\rangle\big),

    with ``S_i = softmax(logits_i / T)``; it is never formed.  With class
    weights and labels the factor is ``w_{y_i}`` (pass
    ``sample_weight=weight[y]``).  ``-inf`` logits have ``S = 0`` and a zero
    row; NaN logits give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> smk.cross_entropy_hvp([[0.0, 0.0]], [[1.0, 0.0]])
    array([[ 0.25, -0.25]])
    """
    owner = "cross_entropy_hvp"
    zw, out_dtype, T, ax = _check_logits(logits, axis, temperature, owner)
    vw, _ = as_float_array(v, "v")
    if vw.shape != zw.shape:
        raise ValueError(
            f"v of {owner} must have logits' shape {zw.shape}; got shape {vw.shape}."
        )
    vw = vw.astype(zw.dtype, copy=False)
    lab_shape = zw.shape[:ax] + zw.shape[ax + 1:]
    sw = None
    if sample_weight is not None:
        sw, _ = as_float_array(sample_weight, "sample_weight")
        try:
            sw = np.broadcast_to(sw, lab_shape).astype(zw.dtype, copy=False)
        except ValueError:
            raise ValueError(
                f"sample_weight of {owner} with shape {sw.shape} does not broadcast to "
                f"logits' shape without the class axis, {lab_shape}."
            ) from None
        if not np.isfinite(sw).all():
            pos = _first_position(~np.isfinite(sw))
            raise ValueError(
                f"sample_weight of {owner} must be finite; got {sw[pos].item()!r} at "
                f"position {pos}."
            )
    K = zw.shape[ax]
    z = np.moveaxis(zw, ax, -1).reshape(-1, K)
    z = _divide_by_temperature(z, None, T) if T != 1.0 else z
    S = _softmax_impl(z, (1,), None, log=False)
    vm = np.moveaxis(vw, ax, -1).reshape(-1, K)
    with np.errstate(invalid="ignore"):
        hv = S * (vm - np.sum(S * vm, axis=1, keepdims=True))
    if sw is not None:
        with np.errstate(invalid="ignore"):
            hv = hv * sw.reshape(-1, 1)
    if T != 1.0:
        hv = _divide(_divide(hv, T), T)
    hv = np.moveaxis(hv.reshape(lab_shape + (K,)), -1, ax)
    return hv.astype(out_dtype, copy=False)


def one_hot(labels, n_classes, dtype=float):
    """One-hot encoding of integer class labels.

    Parameters
    ----------
    labels : array_like of int, any shape
        Class indices in ``[0, n_classes)``.
    n_classes : int >= 0
        Number of classes ``K``.
    dtype : data-type, default float
        dtype of the result.

    Returns
    -------
    ndarray, shape ``labels.shape + (n_classes,)``
        1 at ``[..., labels[...]]``, 0 elsewhere.

    Raises
    ------
    ValueError
        A label outside ``[0, n_classes)`` (the message names the first bad
        value and its position) or a negative ``n_classes``.
    TypeError
        Non-integer labels or ``n_classes``.

    Notes
    -----
    ``one_hot(y, K)[..., c] = [y == c]``; ``cross_entropy(z, one_hot(y, K))``
    equals ``cross_entropy(z, y)``.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.one_hot([0, 2, 1], 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    K = check_scalar_param(_plain(n_classes), "n_classes", "one_hot", kind=int, low=0,
                           high_open=True)
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and y.size == 0):
        raise TypeError(f"labels of one_hot must be integers; got dtype {y.dtype}.")
    bad = (y < 0) | (y >= K)
    if bad.any():
        pos = _first_position(bad)
        raise ValueError(
            f"labels of one_hot holds {y[pos].item()!r} at position {pos}, outside [0, {K})."
        )
    out = np.zeros(y.shape + (K,), dtype=dtype)
    if y.size:
        np.put_along_axis(out, y.astype(np.intp)[..., None], 1, axis=-1)
    return out
