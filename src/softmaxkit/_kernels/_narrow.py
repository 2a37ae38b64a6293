"""softmax, log_softmax, logsumexp and cross-entropy of narrow rows, several
rows per SIMD vector (numba).

The row kernels of ``_softmax.py`` run vector loops along each row: on rows
of ten entries those loops are mostly set-up and remainder, and each row
ends in one scalar libm ``log1p``.  Here a tile of ``TILE`` rows (64) is
transposed into a small float64 buffer of shape ``(K, TILE)``, so that every
step -- the row maxima, the exponentials and their sums, the ``log1p`` and
the outputs -- is a vector loop over the 64 rows of the tile, with one row
per SIMD lane.  ``narrow_rows(x, out, kind, lo, hi)`` has the contract of
``_softmax.family_rows`` (``kind`` 0: softmax, 1: log_softmax, 2: logsumexp
into ``out[:, 0]``; a 4-column float64 ``out`` for logsumexp also receives
``(m, h, l)``, see ``_softmax._lse_out``) and is chosen by
``softmaxkit._kernels`` for rows of at most ``NARROW_MAX`` (48) entries.

The same formulas and accuracy scheme as the row kernels, per row with ``m =
max(x)`` finite:

- ``rest = sum_{x_j != m} exp(x_j - m) + (count(x_j == m) - 1)``.  Every
  ``e_j = exp(x_j - m)`` in [0, 1] is split into an int64 fixed-point part
  ``round_down(e_j * 2**40)`` and a float64 remainder below 2**-40
  (``_softmax.split_sum_term``); the int64 parts add up exactly, and the
  entries equal to ``m`` contribute exactly ``2**40`` each (``exp(0)`` is
  exactly 1), so ``h = (sum of the int64 parts - 2**40) * 2**-40`` is the
  exact fixed-point part of ``rest`` including ``count - 1``, and ``l``, the
  sum of the remainders, adds at most ``K * 2**-40`` with relative error
  ``K * 2**-53`` of itself.  The sums run down the columns of the buffer in
  a fixed order (no reassociation is needed to vectorise over rows).
- float64 input: ``x_j - m`` is corrected by its TwoSum rounding error
  ``err`` (``exp(x_j - m) = exp(s) * (1 + err)``), as in the row kernels.
  float32 input is loaded as float64 and everything is evaluated in float64
  (``x_j - m`` is then exact or within 2**-53 of itself, no TwoSum), each
  result rounded once to float32 at the store.
- ``log1p(rest)`` is vectorised too (``log1p_parts``): ``u = 1 + h`` is exact
  (``h`` is a multiple of 2**-40 below 2**13), ``log1p(rest) = log(u) +
  log1p(l / u)`` with the second term ``t - t**2 / 2`` (``t <= K * 2**-40``,
  truncation below 2**-68 relative) and ``log(u)`` by the fdlibm/musl
  reduction ``u = 2**k z``, ``z`` in [sqrt(2)/2, sqrt(2)), and the fdlibm
  polynomial in ``s = f / (2 + f)``, ``f = z - 1`` (< 1 ulp); branch-free.
  It returns ``k ln2_hi`` (exact), ``f`` (exact) and a small correction, so
  that logsumexp ``m + log1p(rest)`` and log_softmax ``(x - m) - log1p(rest)``
  add them with TwoSum: both are within about half an ulp plus the error of
  ``rest``.
- softmax: ``exp(x - m) * (1 / (1 + rest))``; log_softmax ``(x - m) -
  log1p(rest)`` (float64: ``(s - L_hi) + (err - L_lo)``); logsumexp ``m +
  log1p(rest)``.

``ce_labels_narrow`` does the same for the cross-entropy with integer
labels (the contract of ``_cross_entropy.ce_labels``: class weights,
``ignore_index``, label smoothing, the gradient optionally written over the
logits), chosen by ``softmaxkit._kernels.cross_entropy`` for at most
``NARROW_MAX`` classes; probability targets keep the row kernel.

Rows whose max is NaN, +inf or -inf (a NaN entry, a +inf entry, all -inf)
are finished by the row kernels' ``_fix_row`` (the edge-case table of
DESIGN.md section 2; cross-entropy: ``_cross_entropy._nonfinite_row``);
``-inf`` entries of other rows give ``exp = 0``.

Threshold ``NARROW_MAX = 48`` and ``TILE = 64``, measured on the 2-core
AVX-512 VM (single-thread CPU time against the row kernels, interleaved in
one process: ``python benchmarks/bench_narrow_rows.py --threshold``, table
in benchmarks/RESULTS.md): the narrow kernels are 6-9x faster at K = 2,
2.5-4.4x at K = 8, 1.8-2.6x at K = 16, 1.1-1.6x at K = 32, 0.9-1.3x at
K = 48 (float32 softmax the one below 1) and 0.7-0.95x at K = 64, where a
row is a whole number of SIMD vectors, the row kernels' best case; the same
for the cross-entropy.  Tiles of 32 or 128 rows were not faster.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._cross_entropy import _nonfinite_row
from ._exp import _bits_f64, _f64_bits, expneg_f64_for_f32, fexpneg, fmaximum, like
from ._softmax import _fix_row

__all__ = ["NARROW_MAX", "TILE", "narrow_rows", "ce_labels_narrow", "log1p_array"]

NARROW_MAX = 48  # rows of at most this many entries: ``narrow_rows``, ``ce_labels_narrow``
TILE = 64  # rows per tile (SIMD lanes x vectors); a compile-time constant

_OPTS = {"error_model": "numpy", "nogil": True}
_FIX = 2.0**40  # fixed-point scale of the exact part of the sums (as _softmax.py)
_UNFIX = 2.0**-40
_ONE_FIX = 1 << 40  # exp(0) = 1 in fixed point

# fdlibm e_log.c: log(1 + f) = f - f**2/2 + s (f**2/2 + R(s**2)), s = f / (2 + f)
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_LN2HI = 6.93147180369123816490e-01  # 32 significant bits: k * _LN2HI is exact
_LN2LO = 1.90821492927058770002e-10
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(2)/2
_MANT = (1 << 52) - 1


def _is_f64(x):  # pragma: no cover - replaced by the overload inside numba
    return x.dtype == np.float64


@overload(_is_f64, inline="always")
def _ol_is_f64(x):
    v = x.dtype == types.float64
    return lambda x: v


@njit(inline="always", **_OPTS)
def _two_sum(a, b):
    """``(s, e)``: ``s = fl(a + b)`` and ``a + b = s + e`` exactly."""
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


@njit(inline="always", fastmath={"contract"}, **_OPTS)
def log1p_parts(h, l):
    """``log1p(h + l)`` as ``(a, b, c)``; ``a + b + c`` summed with TwoSum is
    within 1 ulp (tests/_kernels/test_narrow.py, against mpmath).

    ``h`` a multiple of 2**-40 in [0, 2**13), ``0 <= l <= 2**-30``; ``a = k
    ln2_hi`` and ``b = f`` are exact, ``c`` is the small rest (see the
    module docstring).  Branch-free: vectorises.
    """
    u = 1.0 + h  # exact
    t = l / u
    tc = t - 0.5 * t * t  # log1p(t), |t| <= 2**-30
    ix = _f64_bits(u)
    tmp = ix - _SQRT_HALF_BITS
    k = tmp >> 52
    z = _bits_f64((tmp & _MANT) + _SQRT_HALF_BITS)  # u = 2**k z, z in [0.707, 1.414)
    f = z - 1.0  # exact
    s = f / (2.0 + f)
    zz = s * s
    w = zz * zz
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = zz * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    kf = np.float64(k)
    c = (s * (hfsq + (t2 + t1)) - hfsq) + (kf * _LN2LO + tc)
    return kf * _LN2HI, f, c


@njit(cache=True, **_OPTS)
def log1p_array(h, l, out):
    """``out = log1p(h + l)`` by ``log1p_parts`` (tests)."""
    for i in range(h.shape[0]):
        a, b, c = log1p_parts(h[i], l[i])
        s, e = _two_sum(a, b)
        out[i] = s + (e + c)


@njit(cache=True, fastmath={"contract"}, **_OPTS)
def narrow_rows(x, out, kind, lo, hi):
    """softmax (kind 0), log_softmax (1) or logsumexp (2, into ``out[:, 0]``)
    of the rows ``lo:hi`` of the C-contiguous ``x`` (n, K), ``1 <= K``, in
    tiles of ``TILE`` rows (the contract of ``_softmax.family_rows``)."""
    K = x.shape[1]
    R = TILE
    f64 = _is_f64(x)
    buf = np.empty((K, R))  # the tile, transposed: one row per lane
    m = np.empty(R)  # row max (0 where not finite)
    mraw = np.empty(R)  # row max
    ahi = np.empty(R, dtype=np.int64)  # fixed-point part of sum exp(x - m)
    alo = np.empty(R)  # sum of the remainders
    alc = np.empty(R)  # float64 input: the rounding errors of that sum (TwoSum)
    hh = np.empty(R)  # rest = hh + alo, hh exact
    Lh = np.empty(R)  # the row's result (logsumexp), log1p(rest) or 1/(1 + rest)
    Ll = np.empty(R)  # log_softmax: low part of log1p(rest)
    for i0 in range(lo, hi, R):
        nr = min(R, hi - i0)
        for r in range(nr):
            for j in range(K):
                buf[j, r] = np.float64(x[i0 + r, j])
        for r in range(nr, R):  # the last tile: padded with zeros, not stored
            for j in range(K):
                buf[j, r] = 0.0

        for r in range(R):
            m[r] = -np.inf
        for j in range(K):
            for r in range(R):
                m[r] = fmaximum(m[r], buf[j, r])  # NaN-propagating
        nbad = 0
        for r in range(R):
            mr = m[r]
            mraw[r] = mr
            ok = (mr - mr) == 0.0
            nbad += 0 if ok else 1
            m[r] = mr if ok else 0.0  # rows fixed at the end; keep the lanes harmless
            ahi[r] = 0
            alo[r] = 0.0
            alc[r] = 0.0

        # exp(x - m) and its fixed-point sum (softmax: kept in the buffer)
        if kind == 0:
            for j in range(K):
                for r in range(R):
                    e = _shift_exp(buf[j, r], m[r], f64)
                    buf[j, r] = e
                    _add_term(ahi, alo, alc, r, e, f64)
        else:
            for j in range(K):
                for r in range(R):
                    _add_term(ahi, alo, alc, r, _shift_exp(buf[j, r], m[r], f64), f64)

        for r in range(R):
            h = np.float64(ahi[r] - _ONE_FIX) * _UNFIX
            hh[r] = h
            alo[r] = alo[r] + alc[r]
        if kind == 0:
            for r in range(R):
                Lh[r] = 1.0 / ((1.0 + hh[r]) + alo[r])
        elif kind == 1:
            for r in range(R):
                a, b, c = log1p_parts(hh[r], alo[r])
                s1, e1 = _two_sum(a, b)
                lh = s1 + (e1 + c)
                Lh[r] = lh
                Ll[r] = (s1 - lh) + (e1 + c)
        else:
            for r in range(R):
                a, b, c = log1p_parts(hh[r], alo[r])
                s1, e1 = _two_sum(m[r], a)
                s2, e2 = _two_sum(s1, b)
                Lh[r] = s2 + ((e1 + e2) + c)

        if kind == 0:
            for r in range(nr):
                c = Lh[r]
                for j in range(K):
                    out[i0 + r, j] = buf[j, r] * c
        elif kind == 1:
            for r in range(nr):
                mr = m[r]
                lh = Lh[r]
                ll = Ll[r]
                for j in range(K):
                    out[i0 + r, j] = _log_softmax_entry(buf[j, r], mr, lh, ll, f64)
        elif out.shape[1] == 4:
            for r in range(nr):
                out[i0 + r, 0] = Lh[r]
                out[i0 + r, 1] = m[r]
                out[i0 + r, 2] = hh[r]
                out[i0 + r, 3] = alo[r]
        else:
            for r in range(nr):
                out[i0 + r, 0] = Lh[r]

        if nbad:
            for r in range(nr):
                mr = mraw[r]
                if (mr - mr) != 0.0:
                    _fix_row(x, out, i0 + r, kind, like(mr, x))


@njit(inline="always", fastmath={"contract"}, **_OPTS)
def _shift_exp(xj, m, f64):
    """``exp(xj - m)`` for float64 ``xj <= m`` (``m`` finite); with ``f64``
    (float64 input) corrected by the TwoSum error of ``xj - m``."""
    s = xj - m
    if f64:
        bv = s - xj
        err = (xj - (s - bv)) - (m + bv)
        err = err if err == err else 0.0  # xj = -inf
        p = fexpneg(s)
        return p + p * err
    # float32 input: a float64 exp accurate to 2**-37, ample for one rounding to float32
    return expneg_f64_for_f32(s)


@njit(inline="always", **_OPTS)
def _add_term(ahi, alo, alc, r, e, f64):
    """Add ``e`` in [0, 1] to the sum of lane ``r``: its fixed-point part
    ``round_down(e * 2**40)`` to ``ahi[r]`` (exact), the remainder below
    2**-40 to ``alo[r]``; for float64 input with its TwoSum rounding error
    added up in ``alc[r]`` (so that a sum of tiny terms, all in the
    remainders, is accurate to about half an ulp, whatever K)."""
    eh = np.int64(e * _FIX)
    ahi[r] += eh
    el = e - np.float64(eh) * _UNFIX  # exact
    if f64:
        s, er = _two_sum(alo[r], el)
        alo[r] = s
        alc[r] += er
    else:
        alo[r] += el


@njit(inline="always", fastmath={"contract"}, **_OPTS)
def _log_softmax_entry(xj, m, lh, ll, f64):
    """``(xj - m) - (lh + ll)``; float64 input: with the TwoSum error of
    ``xj - m``."""
    s = xj - m
    if f64:
        bv = s - xj
        err = (xj - (s - bv)) - (m + bv)
        err = err if err == err else 0.0
        return (s - lh) + (err - ll)
    return s - lh


# --------------------------------------------------------------------------
# cross-entropy with integer labels (the contract of _cross_entropy.ce_labels)
# --------------------------------------------------------------------------
@njit(cache=True, fastmath={"contract"}, **_OPTS)
def ce_labels_narrow(z, y, w, wtot, ignore, has_ignore, eps, loss, wsum, grad, need_grad,
                     inplace, lo, hi):
    """``_cross_entropy.ce_labels`` (same arguments and results) for narrow
    rows, in tiles of ``TILE`` rows with one row per SIMD lane.

    Per row: ``a = (1 - eps) w_y``, ``b = eps / K``, ``C = a + b sum_j w_j``;
    loss ``C log1p(rest) + a (m - z_y) + b sum_{w_j != 0} w_j (m - z_j)``,
    gradient ``C exp(z_j - m) / (1 + rest) - b w_j - a [j == y]``; rows with
    a non-finite max go to ``_cross_entropy._nonfinite_row``, ignored rows
    get a zero loss, weight and gradient.  ``grad`` may be ``z`` (each tile
    is read into the buffer before any row of it is written); ``inplace``
    is accepted for the signature and not needed.
    """
    K = z.shape[1]
    R = TILE
    f64 = _is_f64(z)
    b = eps / K
    buf = np.empty((K, R))
    m = np.empty(R)
    mraw = np.empty(R)
    ahi = np.empty(R, dtype=np.int64)
    alo = np.empty(R)
    alc = np.empty(R)
    s2 = np.empty(R)
    dy = np.empty(R)
    av = np.empty(R)  # a = (1 - eps) w_y
    inv = np.empty(R)  # C / (1 + rest)
    yl = np.zeros(R, dtype=np.int64)
    skip = np.zeros(R, dtype=np.int64)  # 1: ignored row, 2: non-finite max
    for i0 in range(lo, hi, R):
        nr = min(R, hi - i0)
        for r in range(nr):
            for j in range(K):
                buf[j, r] = np.float64(z[i0 + r, j])
        for r in range(nr, R):
            for j in range(K):
                buf[j, r] = 0.0
        for r in range(R):
            m[r] = -np.inf
        for j in range(K):
            for r in range(R):
                m[r] = fmaximum(m[r], buf[j, r])
        for r in range(R):
            mr = m[r]
            mraw[r] = mr
            ok = (mr - mr) == 0.0
            m[r] = mr if ok else 0.0
            skip[r] = 0 if ok else 2
            ahi[r] = 0
            alo[r] = 0.0
            alc[r] = 0.0
            s2[r] = 0.0
        for r in range(nr):
            yi = y[i0 + r]
            if has_ignore and yi == ignore:
                skip[r] = 1
                yl[r] = 0
            else:
                yl[r] = yi
            dy[r] = m[r] - buf[yl[r], r]
            av[r] = (1.0 - eps) * np.float64(w[yl[r]])
        for r in range(nr, R):
            yl[r] = 0
            dy[r] = 0.0
            av[r] = 0.0

        for j in range(K):
            wj = np.float64(w[j])
            for r in range(R):
                xj = buf[j, r]
                e = _shift_exp(xj, m[r], f64)
                buf[j, r] = e
                s2[r] += 0.0 if wj == 0 else wj * (m[r] - xj)
                _add_term(ahi, alo, alc, r, e, f64)

        for r in range(R):
            h = np.float64(ahi[r] - _ONE_FIX) * _UNFIX
            l = alo[r] + alc[r]
            ta, tb, tc = log1p_parts(h, l)
            L = ta + (tb + tc)
            a = av[r]
            C = a + b * wtot
            li = C * L
            li += 0.0 if a == 0 else a * dy[r]
            li += 0.0 if b == 0 else b * s2[r]
            inv[r] = C / ((1.0 + h) + l)
            alo[r] = li  # the loss of lane r (the sum is no longer needed)

        for r in range(nr):
            i = i0 + r
            if skip[r] == 1:
                loss[i] = like(0.0, loss)
                wsum[i] = like(0.0, wsum)
                if need_grad:
                    for j in range(K):
                        grad[i, j] = like(0.0, grad)
                continue
            wsum[i] = w[yl[r]]
            if skip[r] == 2:
                continue
            loss[i] = like(alo[r], loss)
            if need_grad:
                c = inv[r]
                a = av[r]
                yi = yl[r]
                if f64:
                    for j in range(K):
                        grad[i, j] = buf[j, r] * c - b * np.float64(w[j])
                    if a != 0:
                        grad[i, yi] = grad[i, yi] - a
                else:
                    for j in range(K):
                        g = buf[j, r] * c - b * np.float64(w[j])
                        grad[i, j] = like(g - a if j == yi else g, grad)

        for r in range(nr):
            if skip[r] == 2:
                i = i0 + r
                yi = yl[r]
                coef = np.empty(K)
                for j in range(K):
                    coef[j] = b * np.float64(w[j])
                coef[yi] += av[r]
                loss[i] = like(_nonfinite_row(z, i, like(mraw[r], z), coef, grad, need_grad),
                               loss)
