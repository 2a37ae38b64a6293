"""Derivatives of softmax and log_softmax: the explicit Jacobian, and the
vector-Jacobian / Jacobian-vector products that never form it.

With ``s = softmax(x)`` along an axis of length K the Jacobian is

    J[i, j] = d s_i / d x_j = s_i (delta_ij - s_j),   i.e.  J = diag(s) - s s^T,

a symmetric matrix whose rows and columns each sum to 0.  Backpropagation
only ever needs ``g -> J^T g = s * (g - <g, s>)`` (the VJP) or ``v -> J v =
s * (v - <v, s>)`` (the JVP, equal because J is symmetric), which cost O(K)
instead of O(K^2).  For ``y = log_softmax(x)``, ``d y_i / d x_j = delta_ij -
s_j`` and the VJP is ``g - exp(y) * sum(g)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, broadcast_where, normalize_axes
from .._validation import plain as _plain
from ._softmax import _softmax_impl

__all__ = ["softmax_jacobian", "softmax_vjp", "softmax_jvp", "log_softmax_vjp"]


def _prepare_pair(y, g, axis, where, owner, gname):
    """Validate ``y`` and the (co)tangent ``g``: same shape, real dtypes.

    Returns ``(yw, gw, out_dtype, axes, where_b)``; both work arrays share
    one float dtype (float64 unless both are float32/float16).
    """
    yw, y_out = as_float_array(y, "y")
    gw, g_out = as_float_array(g, gname)
    if yw.shape != gw.shape:
        raise ValueError(
            f"{gname} of {owner} must have the same shape as y; "
            f"got {gname}.shape={gw.shape} and y.shape={yw.shape}."
        )
    axes = normalize_axes(_plain(axis), yw.ndim, owner)
    wb = broadcast_where(where, yw.shape, owner)
    work = np.result_type(yw.dtype, gw.dtype)
    out_dtype = np.result_type(y_out, g_out)
    return yw.astype(work, copy=False), gw.astype(work, copy=False), out_dtype, axes, wb


def softmax_jacobian(x, axis=-1, *, where=None):
    r"""The explicit Jacobian of :func:`softmax`, ``diag(s) - s s^T`` per slice.

    Parameters
    ----------
    x : array_like, shape (..., K, ...)
        Input scores; dtype rules as in :func:`softmax` (float16 computed in
        float32 and returned as float16, integers and bool as float64,
        complex raises TypeError).
    axis : int, default -1
        The softmax axis (a single axis; for several axes reshape first).
    where : array_like of bool, broadcastable to ``x.shape``, optional
        Entries that take part, as in :func:`softmax`; rows and columns of
        masked entries are 0.

    Returns
    -------
    jac : ndarray, shape ``x.shape + (K,)``
        ``jac[..., i, j] = d softmax(x)[..., i] / d x[..., j]`` for
        ``axis=-1``.  For another axis ``a`` the reduced axis stays where it
        is and holds the output index ``i``, and the new last axis holds the
        input index ``j``: ``jac[i0, .., i_a = i, .., i_{n-1}, j] = d s[i0,
        .., i, .., i_{n-1}] / d x[i0, .., j, .., i_{n-1}]``.  For example for
        ``x`` of shape (K, n) and ``axis=0`` the result has shape (K, n, K)
        and ``jac[:, c, :]`` is the K x K Jacobian of column ``c``.

    Notes
    -----
    ``J_ij = s_i (delta_ij - s_j)``; J is symmetric and its rows and columns
    each sum to 0.  Memory is O(n K^2): to backpropagate use
    :func:`softmax_vjp` / :func:`softmax_jvp`, which never form J.

    Edge cases (the gradient column of the table in DESIGN.md section 2):
    ``-inf`` and masked entries have zero rows and columns; a slice with a
    ``+inf`` entry (softmax saturated) and an all ``-inf`` slice (softmax
    undefined) have ``J = 0``; a NaN makes the whole slice's Jacobian NaN;
    an empty axis gives an empty result of shape ``x.shape + (0,)``.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> J = smk.softmax_jacobian([3.0, 1.0, -3.0])
    >>> J.round(4)
    array([[ 0.1065, -0.1045, -0.0019],
           [-0.1045,  0.1048, -0.0003],
           [-0.0019, -0.0003,  0.0022]])
    >>> bool(abs(J.sum(axis=0)).max() < 1e-16 and abs(J.sum(axis=1)).max() < 1e-16)
    True
    """
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(
            f"axis of softmax_jacobian must be a single int; got {_plain(axis)!r} "
            "(reshape to combine several axes)."
        )
    xw, out_dtype = as_float_array(x, "x")
    axes = normalize_axes(axis, xw.ndim, "softmax_jacobian")
    a = axes[0]
    wb = broadcast_where(where, xw.shape, "softmax_jacobian")
    s = np.moveaxis(_softmax_impl(xw, axes, wb, log=False), a, -1)
    xm = xw if wb is None else np.where(wb, xw, -np.inf)
    xm = np.moveaxis(xm, a, -1)
    K = s.shape[-1]
    jac = -s[..., :, None] * s[..., None, :]
    diag = np.arange(K)
    jac[..., diag, diag] += s
    if K:
        # table: saturated (+inf) and undefined (all -inf) slices have J = 0
        with np.errstate(invalid="ignore"):
            has_nan = np.isnan(xm).any(axis=-1)
            zero = (np.any(xm == np.inf, axis=-1) | np.all(xm == -np.inf, axis=-1)) & ~has_nan
        if zero.any():
            jac[zero] = 0
    return np.moveaxis(jac, -2, a).astype(out_dtype, copy=False)


def softmax_vjp(y, g, axis=-1, *, where=None):
    r"""Vector-Jacobian product of softmax: ``J^T g = y * (g - sum(g * y))``.

    Parameters
    ----------
    y : array_like, shape (..., K, ...)
        ``softmax(x, axis)``, the forward output (the Jacobian depends on
        ``x`` only through it).
    g : array_like, same shape as ``y``
        The cotangent ``dL / dy``.
    axis : int or tuple of ints, default -1
        The softmax axis (axes) used in the forward pass.
    where : array_like of bool, broadcastable to ``y.shape``, optional
        The forward pass's mask; masked entries get 0 and their ``g`` is
        ignored.  (If ``y`` came from ``softmax(x, where=...)`` it is 0 at
        masked entries, so the mask changes nothing but is accepted for
        symmetry with :func:`log_softmax_vjp`.)

    Returns
    -------
    ndarray, same shape as ``y``
        ``dL / dx``.  float32 if both inputs are float32 (float16 if both are
        float16), else float64.

    Notes
    -----
    ``(J^T g)_j = sum_i g_i s_i (delta_ij - s_j) = s_j (g_j - <g, s>)``;
    O(K) time and memory, the Jacobian is never formed.

    Edge cases: entries with ``y = 0`` (``-inf`` or masked inputs) get
    exactly 0, never NaN (for finite ``g``).  A slice saturated by a single
    ``+inf`` (``y`` one-hot) gets 0.  The function sees ``y`` only: when
    k >= 2 entries tied at ``+inf`` share the mass, the result is the
    formula's value (the derivative with respect to the tied entries),
    whereas :func:`softmax_jacobian`, which sees ``x``, returns the table's 0.
    An all ``-inf`` slice has a NaN ``y`` (softmax is undefined there), which
    cannot be told apart from a NaN input, so its VJP is NaN like that of
    any slice with a NaN; mask such slices with ``where`` to get 0.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> x = np.array([3.0, 1.0, -3.0]); g = np.array([1.0, 0.0, 0.0])
    >>> smk.softmax_vjp(smk.softmax(x), g).round(4)
    array([ 0.1065, -0.1045, -0.0019])
    """
    yw, gw, out_dtype, axes, wb = _prepare_pair(y, g, axis, where, "softmax_vjp", "g")
    return _product(yw, gw, axes, wb).astype(out_dtype, copy=False)


def softmax_jvp(y, v, axis=-1, *, where=None):
    r"""Jacobian-vector product of softmax: ``J v = y * (v - sum(v * y))``.

    Parameters
    ----------
    y : array_like, shape (..., K, ...)
        ``softmax(x, axis)``, the forward output.
    v : array_like, same shape as ``y``
        The tangent (a perturbation of ``x``).
    axis : int or tuple of ints, default -1
        The softmax axis (axes).
    where : array_like of bool, broadcastable to ``y.shape``, optional
        The forward pass's mask; masked entries get 0 and their ``v`` is
        ignored.

    Returns
    -------
    ndarray, same shape as ``y``
        The directional derivative of ``softmax(x)`` along ``v``.

    Notes
    -----
    ``(J v)_i = sum_j s_i (delta_ij - s_j) v_j = s_i (v_i - <v, s>)``.  J is
    symmetric, so this is the same expression as :func:`softmax_vjp`; the
    edge cases are those of :func:`softmax_vjp`.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> y = smk.softmax([3.0, 1.0, -3.0])
    >>> smk.softmax_jvp(y, [1.0, 1.0, 1.0])  # shifting x does not move softmax
    array([0., 0., 0.])
    >>> smk.softmax_jvp(y, [0.0, 1.0, 0.0]).round(4)
    array([-0.1045,  0.1048, -0.0003])
    """
    yw, vw, out_dtype, axes, wb = _prepare_pair(y, v, axis, where, "softmax_jvp", "v")
    return _product(yw, vw, axes, wb).astype(out_dtype, copy=False)


def _product(y, g, axes, where):
    """``y * (g - sum(g * y))`` along ``axes``; 0 at masked entries."""
    with np.errstate(invalid="ignore", over="ignore"):
        if where is not None:
            y = np.where(where, y, 0)
            g = np.where(where, g, 0)
        # y == 0 entries must not turn an infinite g into NaN in the sum
        gy = np.where(y == 0, 0, g * y)
        inner = np.sum(gy, axis=axes, keepdims=True)
        out = y * (g - inner)
        out = np.where(y == 0, 0, out)
    return out.astype(y.dtype, copy=False)


def log_softmax_vjp(y, g, axis=-1, *, where=None):
    r"""Vector-Jacobian product of log_softmax: ``g - exp(y) * sum(g)``.

    Parameters
    ----------
    y : array_like, shape (..., K, ...)
        ``log_softmax(x, axis)``, the forward output.
    g : array_like, same shape as ``y``
        The cotangent ``dL / dy``.
    axis : int or tuple of ints, default -1
        The axis (axes) of the forward pass.
    where : array_like of bool, broadcastable to ``y.shape``, optional
        The forward pass's mask.  Masked entries of ``y`` are constants
        (``-inf``): they get 0 and their ``g`` is left out of the sum.
        Without ``where`` a ``-inf`` entry of ``y`` is taken to come from a
        ``-inf`` input, which does take part (see Notes).

    Returns
    -------
    ndarray, same shape as ``y``
        ``dL / dx``.

    Notes
    -----
    ``d y_i / d x_j = delta_ij - s_j`` with ``s = exp(y)``, so ``(J^T g)_j =
    g_j - s_j sum_i g_i``.  O(K), the Jacobian is never formed.

    Edge cases: at a ``-inf`` input ``s_j = 0`` and the gradient is
    ``g_j`` (``y_j = x_j - logsumexp(x)`` moves one-for-one with ``x_j``):
    finite, never NaN.  Masked entries (with ``where``) get 0, and an all
    masked slice is 0.  A NaN in ``y`` (a NaN input, or an all ``-inf`` slice,
    where log_softmax is undefined) makes the slice NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import softmaxkit as smk
    >>> y = smk.log_softmax([3.0, 1.0, -3.0])
    >>> smk.log_softmax_vjp(y, [1.0, 0.0, 0.0]).round(4)
    array([ 0.1211, -0.1189, -0.0022])
    """
    yw, gw, out_dtype, axes, wb = _prepare_pair(y, g, axis, where, "log_softmax_vjp", "g")
    with np.errstate(invalid="ignore", over="ignore"):
        if wb is not None:
            gw = np.where(wb, gw, 0)
        s = np.exp(yw)
        if wb is not None:
            s = np.where(wb, s, 0)
        total = np.sum(gw, axis=axes, keepdims=True)
        out = gw - np.where(s == 0, 0, s * total)
        if wb is not None:
            out = np.where(wb, out, 0)
    return out.astype(out_dtype, copy=False)
