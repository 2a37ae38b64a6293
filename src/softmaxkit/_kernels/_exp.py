"""A vectorisable exponential for float32 and float64 (numba).

``numba``'s ``np.exp``/``math.exp`` call libm one element at a time, which
stops LLVM from vectorising the loops of the softmax kernels.  ``fexp``
below is a branch-free exp that LLVM turns into SIMD code:

1. clamp ``x`` to ``[LO, HI]`` (beyond which the result is 0 or +inf anyway;
   NaN passes through the comparisons unchanged);
2. ``n = round(x / ln 2)`` with the "shifter" trick: ``t = x * log2(e) +
   1.5 * 2**p`` rounds ``x * log2(e)`` to an integer held in the low bits of
   ``t`` (no float-to-int conversion, so NaN is harmless);
3. Cody-Waite reduction ``r = x - n * ln2_hi - n * ln2_lo`` where ``n *
   ln2_hi`` is exact, so ``|r| <= ln(2) / 2`` carries the full precision;
4. ``exp(r)``: the Cephes polynomial (float32, degree 7 in ``r``) or the
   Taylor polynomial of degree 13 (float64), both as ``1 + (r + r^2 P(r))``
   so that the final result rounds once;
5. scale by ``2**n`` built from the exponent bits, in two factors ``2**(n//2)``
   and ``2**(n - n//2)`` so that both are normal numbers: the first product
   is exact and the second rounds once, which gives correctly scaled
   subnormal results and a clean overflow to ``+inf``.  ``fexpneg`` (for
   ``x <= 0``, all the softmax kernels need) adds ``n + 64`` (float64: ``n +
   512``) to the exponent field of the polynomial's value and multiplies
   once by ``2**-64`` (``2**-512``): two integer operations fewer, the same
   single rounding into the subnormals.

Compiled with the "contract" fast-math flag only (fused multiply-adds, each
rounding once: never less accurate); no flag that reassociates or assumes
finite values.

Accuracy (tested against mpmath in tests/_kernels/test_exp.py): about 1 ulp
over the whole range, including the subnormal range; ``exp(-inf) = 0``,
``exp(+inf) = +inf``, ``exp(nan) = nan``.

``expneg_f64_for_f32`` is what the float32 kernels use: they evaluate in
float64 and round once at the store, so their exp is a float64 one (for
``x <= 0``) with a degree-8 polynomial whose relative error, 2**-37.8, is far
below float32's 2**-24 (the float64 kernels keep the degree-13 one).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["fexp", "fexpneg", "fmaximum", "like", "exp_array", "expneg_f64_for_f32",
           "exp_array_f64_for_f32"]


# --------------------------------------------------------------------------
# LLVM intrinsics
# --------------------------------------------------------------------------
@intrinsic
def fmaximum(typingctx, a, b):
    """NaN-propagating maximum (``llvm.maximum``); vectorises as a reduction."""
    if a != b or a not in (types.float32, types.float64):
        return None
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        t = args[0].type
        name = "llvm.maximum.f64" if isinstance(t, ir.DoubleType) else "llvm.maximum.f32"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def _f64_bits(typingctx, x):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_f64(typingctx, i):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f32_bits(typingctx, x):
    sig = types.int64(types.float32)

    def codegen(context, builder, signature, args):
        return builder.sext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_f32(typingctx, i):
    sig = types.float32(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return sig, codegen


# --------------------------------------------------------------------------
# float64
# --------------------------------------------------------------------------
_LO64 = -760.0  # exp(x) rounds to 0 below -745.13 - ln 2
_HI64 = 710.0  # exp(x) overflows above 709.78
_LOG2E64 = 1.4426950408889634
_SHIFT64 = 6755399441055744.0  # 1.5 * 2**52
_SHIFT64_BITS = int(np.array(_SHIFT64).view(np.int64))
_LN2HI64 = 6.93147180369123816490e-01  # fdlibm: 32 significant bits
_LN2LO64 = 1.90821492927058770002e-10
_T2 = 1.0 / 2.0
_T3 = 1.0 / 6.0
_T4 = 1.0 / 24.0
_T5 = 1.0 / 120.0
_T6 = 1.0 / 720.0
_T7 = 1.0 / 5040.0
_T8 = 1.0 / 40320.0
_T9 = 1.0 / 362880.0
_T10 = 1.0 / 3628800.0
_T11 = 1.0 / 39916800.0
_T12 = 1.0 / 479001600.0
_T13 = 1.0 / 6227020800.0


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _expm_poly64(r):
    """exp(r) for |r| <= ln(2)/2 as ``1 + (r + r**2 P(r))``: Taylor to degree
    13 (truncation < 5e-18), the 1 added last so the result rounds once."""
    p = _T13 * r + _T12
    p = p * r + _T11
    p = p * r + _T10
    p = p * r + _T9
    p = p * r + _T8
    p = p * r + _T7
    p = p * r + _T6
    p = p * r + _T5
    p = p * r + _T4
    p = p * r + _T3
    p = p * r + _T2
    return 1.0 + (r + (r * r) * p)


@njit(error_model="numpy", fastmath={"contract"})
def exp64(x):
    xc = _LO64 if x < _LO64 else x
    xc = _HI64 if xc > _HI64 else xc
    t = xc * _LOG2E64 + _SHIFT64
    nf = t - _SHIFT64
    n = _f64_bits(t) - _SHIFT64_BITS
    r = (xc - nf * _LN2HI64) - nf * _LN2LO64
    e = _expm_poly64(r)
    n1 = n >> 1
    n2 = n - n1
    return (e * _bits_f64((n1 + 1023) << 52)) * _bits_f64((n2 + 1023) << 52)


_SCALE64_DOWN = 2.0 ** -512


@njit(error_model="numpy", fastmath={"contract"})
def expneg64(x):
    """exp(x) for x <= 0 (or NaN): as ``exp64`` with a cheaper final scaling,
    ``2**(n + 512)`` added to the exponent bits, then one multiplication by
    ``2**-512`` (exact, or one correct rounding into the subnormals)."""
    xc = _LO64 if x < _LO64 else x
    t = xc * _LOG2E64 + _SHIFT64
    nf = t - _SHIFT64
    n = _f64_bits(t) - _SHIFT64_BITS
    r = (xc - nf * _LN2HI64) - nf * _LN2LO64
    e = _expm_poly64(r)
    return _bits_f64(_f64_bits(e) + ((n + 512) << 52)) * _SCALE64_DOWN


# --------------------------------------------------------------------------
# float64 exp for results that are rounded to float32 (the float32 kernels)
# --------------------------------------------------------------------------
# q(r) = (exp(r) - 1 - r) / r**2 on |r| <= ln(2)/2: Chebyshev interpolant of
# degree 6 (mpmath.chebyfit, 50 digits), so exp(r) = 1 + r (1 + r q(r)) is a
# degree-8 polynomial (8 fused multiply-adds in Horner form) with relative
# error 4.3e-12 (2**-37.8) against the 2**-24 of float32: the float32
# kernels' single rounding at the store is then within 0.5 + 2**-13 ulp.
# The reduction is one fused multiply-add, r = x - n ln2 with ln 2 rounded
# to float64: |n| <= 1097 makes its error below 2**-43 (the two-constant
# Cody-Waite split of the float64 exp is not needed at this precision).
# Measured against mpmath in tests/_kernels/test_exp.py.
_LN2_64 = 0.6931471805599453  # ln 2 rounded to float64 (error < 2**-54)
_Q0 = 0.5
_Q1 = 0.16666666718997508
_Q2 = 0.041666666718980845
_Q3 = 0.008333298483754886
_Q4 = 0.001388885404961482
_Q5 = 0.0001989927395864936
_Q6 = 2.4859578222625295e-05


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _expm_poly64_for32(r):
    p = _Q6 * r + _Q5
    p = p * r + _Q4
    p = p * r + _Q3
    p = p * r + _Q2
    p = p * r + _Q1
    p = p * r + _Q0
    p = p * r + 1.0
    return p * r + 1.0


@njit(error_model="numpy", fastmath={"contract"})
def expneg_f64_for_f32(x):
    """exp(x) in float64 for float64 ``x <= 0`` (or -inf), accurate to about
    2**-37 relative: enough for a result that is rounded once to float32.

    As ``expneg64`` with the shorter polynomial ``_expm_poly64_for32``;
    ``exp(-inf) = 0`` exactly, ``exp(0) = 1`` exactly, results below 2**-1022
    (all of which round to 0 in float32) are subnormal or 0.  NaN input is
    not supported (as for ``expneg64``, the result is then garbage; the
    kernels call it only on ``x - max`` of rows with a finite max).
    Branch-free: vectorises.
    """
    xc = _LO64 if x < _LO64 else x
    t = xc * _LOG2E64 + _SHIFT64
    nf = t - _SHIFT64
    n = _f64_bits(t) - _SHIFT64_BITS
    r = xc - nf * _LN2_64
    e = _expm_poly64_for32(r)
    return _bits_f64(_f64_bits(e) + ((n + 512) << 52)) * _SCALE64_DOWN


# --------------------------------------------------------------------------
# float32 (every constant is a float32 so nothing is promoted to float64)
# --------------------------------------------------------------------------
_f = np.float32
_LO32 = _f(-110.0)  # exp(x) rounds to 0 below -103.97
_HI32 = _f(89.0)  # exp(x) overflows above 88.72
_LOG2E32 = _f(1.44269504088896341)
_SHIFT32 = _f(12582912.0)  # 1.5 * 2**23
_SHIFT32_BITS = int(np.array(_SHIFT32).view(np.int32))
_C1_32 = _f(0.693359375)  # Cephes expf: 9 significant bits
_C2_32 = _f(-2.12194440e-4)
_E0 = _f(1.9875691500e-4)
_E1 = _f(1.3981999507e-3)
_E2 = _f(8.3334519073e-3)
_E3 = _f(4.1665795894e-2)
_E4 = _f(1.6666665459e-1)
_E5 = _f(5.0000001201e-1)
_ONE32 = _f(1.0)


@njit(error_model="numpy", fastmath={"contract"})
def exp32(x):
    xc = _LO32 if x < _LO32 else x
    xc = _HI32 if xc > _HI32 else xc
    t = xc * _LOG2E32 + _SHIFT32
    nf = t - _SHIFT32
    n = _f32_bits(t) - _SHIFT32_BITS
    r = (xc - nf * _C1_32) - nf * _C2_32
    z = r * r
    p = (((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5) * z + r + _ONE32
    n1 = n >> 1
    n2 = n - n1
    return (p * _bits_f32((n1 + 127) << 23)) * _bits_f32((n2 + 127) << 23)


_SCALE32_DOWN = _f(2.0 ** -64)


@njit(error_model="numpy", fastmath={"contract"})
def expneg32(x):
    """exp(x) for x <= 0 (or NaN): as ``exp32`` with a cheaper final scaling
    (``2**(n + 64)`` into the exponent bits, then times ``2**-64``)."""
    xc = _LO32 if x < _LO32 else x
    t = xc * _LOG2E32 + _SHIFT32
    nf = t - _SHIFT32
    n = _f32_bits(t) - _SHIFT32_BITS
    r = (xc - nf * _C1_32) - nf * _C2_32
    z = r * r
    p = (((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5) * z + r + _ONE32
    return _bits_f32(_f32_bits(p) + ((n + 64) << 23)) * _SCALE32_DOWN


# --------------------------------------------------------------------------
# generic entry points used by the kernels
# --------------------------------------------------------------------------
def fexp(x):  # pragma: no cover - replaced by the overload inside numba
    return np.exp(x)


@overload(fexp, inline="always")
def _ol_fexp(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if x == types.float64:
        return lambda x: exp64(x)
    return None


def fexpneg(x):  # pragma: no cover - replaced by the overload inside numba
    return np.exp(x)


@overload(fexpneg, inline="always")
def _ol_fexpneg(x):
    """exp for x <= 0 (the shifted logits of the softmax kernels)."""
    if x == types.float32:
        return lambda x: expneg32(x)
    if x == types.float64:
        return lambda x: expneg64(x)
    return None


def like(v, ref):  # pragma: no cover - replaced by the overload inside numba
    return np.asarray(v, dtype=np.asarray(ref).dtype)[()]


@overload(like, inline="always")
def _ol_like(v, ref):
    """``v`` converted to the scalar type of ``ref`` (a float or a float array)."""
    dt = getattr(ref, "dtype", ref)
    if dt == types.float32:
        return lambda v, ref: np.float32(v)
    return lambda v, ref: np.float64(v)


@njit(cache=True, error_model="numpy", nogil=True, fastmath={"contract"})
def exp_array(x, out, nonpositive):
    """``out[:] = exp(x)`` for 1-D arrays (tests and benchmarks); with
    ``nonpositive`` the variant for ``x <= 0`` used by the kernels."""
    if nonpositive:
        for i in range(x.shape[0]):
            out[i] = fexpneg(x[i])
    else:
        for i in range(x.shape[0]):
            out[i] = fexp(x[i])


@njit(cache=True, error_model="numpy", nogil=True, fastmath={"contract"})
def exp_array_f64_for_f32(x, out):
    """``out[:] = expneg_f64_for_f32(x)`` for 1-D float64 arrays (tests and
    benchmarks of the float32 kernels' exp)."""
    for i in range(x.shape[0]):
        out[i] = expneg_f64_for_f32(x[i])
