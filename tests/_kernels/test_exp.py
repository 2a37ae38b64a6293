"""The vectorisable exp of the kernels vs mpmath and np.exp over the full range."""

import mpmath
import numpy as np
import pytest

pytest.importorskip("numba")
from softmaxkit._kernels._exp import exp_array, exp_array_f64_for_f32

DTYPES = [np.float32, np.float64]
# results are compared with the exact value in units of the spacing of the
# result's dtype (subnormal results: in units of the smallest subnormal)
MAX_ULP = {np.float32: 1.05, np.float64: 2.0}


def _ulp_err(got, x, dt):
    """|got - exp(x)| in ulps of dt, exp(x) from mpmath at 40 digits."""
    with mpmath.workdps(40):
        exact = [mpmath.exp(mpmath.mpf(float(v))) for v in x]
    errs = []
    tiny_sub = mpmath.mpf(float(np.finfo(dt).smallest_subnormal))
    for g, e in zip(got, exact, strict=True):
        # spacing of the exact value rounded to dt
        er = np.array(float(e)).astype(dt)
        sp = max(mpmath.mpf(float(np.spacing(er))), tiny_sub)
        errs.append(float(abs(mpmath.mpf(float(g)) - e) / sp))
    return np.array(errs)


def _run(x, nonpositive):
    out = np.empty_like(x)
    exp_array(np.ascontiguousarray(x), out, nonpositive)
    return out


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_vs_mpmath_full_range(dt):
    info = np.finfo(dt)
    lo = float(np.log(info.smallest_subnormal)) - 1.0  # below: rounds to 0
    hi = float(np.log(info.max))
    rng = np.random.default_rng(1)
    x = np.concatenate([
        rng.uniform(lo, hi, 1500),
        rng.uniform(-1, 1, 300),
        -np.logspace(-30, 2, 100),
        np.logspace(-30, 1.9, 100),
    ]).astype(dt)
    err = _ulp_err(_run(x, False), x, dt)
    assert err.max() <= MAX_ULP[dt], (float(err.max()), x[np.argmax(err)])
    neg = x[x <= 0]
    err = _ulp_err(_run(neg, True), neg, dt)
    assert err.max() <= MAX_ULP[dt], (float(err.max()), neg[np.argmax(err)])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("nonpositive", [False, True])
def test_exp_vs_numpy_dense_sweep(dt, nonpositive):
    """Two million points: within the stated ulps of the (long double) exact
    exp, subnormal results included."""
    info = np.finfo(dt)
    lo = float(np.log(info.smallest_subnormal)) - 2.0
    hi = 0.0 if nonpositive else float(np.log(info.max)) - 0.01
    x = np.linspace(lo, hi, 2_000_003, dtype=dt)
    got = _run(x, nonpositive)
    with np.errstate(all="ignore"):
        exact = np.exp(x.astype(np.longdouble))
    sp = np.maximum(np.spacing(exact.astype(dt)).astype(np.longdouble),
                    np.longdouble(info.smallest_subnormal))
    err = np.abs(got.astype(np.longdouble) - exact) / sp
    tol = MAX_ULP[dt] if np.finfo(np.longdouble).nmant > 52 else MAX_ULP[dt] + 1.0
    assert float(err.max()) <= tol
    assert np.isfinite(got).all()


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_boundaries_and_specials(dt):
    info = np.finfo(dt)
    big = np.log(info.max)  # float64 log of the largest finite value
    x = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30,
                  np.nextafter(dt(big), dt(0)), np.nextafter(dt(big), dt(np.inf)), 1000.0,
                  -1000.0, np.log(info.smallest_subnormal),
                  np.log(info.tiny), info.min, info.max], dtype=dt)
    got = _run(x, False)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    assert got[0] == 0 and got[1] == np.inf and np.isnan(got[2])
    assert got[3] == 1 and got[4] == 1 and got[5] == 1 and got[6] == 1
    # overflow boundary: the last finite input stays finite, the next is inf
    assert np.isfinite(got[7]) and got[8] == np.inf
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    np.testing.assert_array_equal(got == 0, ref == 0)
    np.testing.assert_allclose(got[9:], ref[9:], rtol=4 * info.eps, atol=info.smallest_subnormal)


@pytest.mark.parametrize("dt", DTYPES)
def test_expneg_specials(dt):
    x = np.array([-np.inf, 0.0, -0.0, -1e-40, np.finfo(dt).min], dtype=dt)
    got = _run(x, True)
    np.testing.assert_array_equal(got, [0.0, 1.0, 1.0, 1.0, 0.0])


# --------------------------------------------------------------------------
# the float64 exp of the float32 kernels (rounded once to float32 there)
# --------------------------------------------------------------------------
# the relative error bound it must meet: far below float32's 2**-24, so that
# a result rounded once to float32 is within 0.5 + 2**-13 ulp
REL_F64_FOR_F32 = 2.0 ** -37


def _run_f64_for_f32(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    exp_array_f64_for_f32(x, out)
    return out


def test_exp_f64_for_f32_polynomial_range_vs_mpmath():
    """On the reduced range |r| <= ln(2)/2 (where only the polynomial acts)
    and around it, the relative error against mpmath is below 2**-37."""
    a = float(np.log(2) / 2)
    r = -np.linspace(0, 3 * a, 1201)  # x <= 0: the reduced r covers [-a, a]
    got = _run_f64_for_f32(r)
    with mpmath.workdps(40):
        rel = [abs(mpmath.mpf(float(g)) / mpmath.exp(mpmath.mpf(float(v))) - 1)
               for g, v in zip(got, r, strict=True)]
    assert float(max(rel)) <= REL_F64_FOR_F32, float(max(rel))
    # the bound is not loose by orders of magnitude: it is what the degree-8
    # polynomial gives (a degree-6 one would be 2**-26)
    assert float(max(rel)) > 2.0 ** -42


def test_exp_f64_for_f32_full_range():
    """Random points over the range the float32 kernels use (x - max down to
    the float32 underflow and beyond) vs mpmath, and a dense sweep vs the
    long-double exp; rounded to float32 it is the correctly rounded float32
    exp to within 0.5 + 2**-13 ulp (bitwise equal except for near-ties)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([-rng.uniform(0, 110, 1500), -np.logspace(-30, 2.5, 200),
                        -rng.uniform(700, 745, 100)])
    got = _run_f64_for_f32(x)
    with mpmath.workdps(40):
        exact = [mpmath.exp(mpmath.mpf(float(v))) for v in x]
    normal = np.array([e > mpmath.mpf(2.0 ** -1022) for e in exact])
    rel = np.array([float(abs(mpmath.mpf(float(g)) / e - 1))
                    for g, e in zip(got, exact, strict=True)])
    assert rel[normal].max() <= REL_F64_FOR_F32
    # dense sweep over float32 inputs
    xs = np.linspace(-104.0, 0.0, 1_000_003).astype(np.float32).astype(np.float64)
    got = _run_f64_for_f32(xs)
    exact = np.exp(xs.astype(np.longdouble))
    wide = np.finfo(np.longdouble).nmant > 52
    rel = np.abs(got.astype(np.longdouble) / exact - 1)
    assert float(rel.max()) <= (REL_F64_FOR_F32 if wide else REL_F64_FOR_F32 + 2.0 ** -52)
    g32 = got.astype(np.float32)
    e32 = exact.astype(np.float32)
    sp = np.spacing(e32).astype(np.longdouble)
    ulps = np.abs(g32.astype(np.longdouble) - exact) / sp
    assert float(ulps.max()) <= 0.5 + 2.0 ** -13 + (0 if wide else 2.0 ** -20)
    assert np.count_nonzero(g32 != e32) <= 1e-4 * xs.size


def test_exp_f64_for_f32_specials():
    x = np.array([-np.inf, 0.0, -0.0, -1e-300, -5e-324, -745.2, -760.0, -800.0, -1e300,
                  -np.log(2.0), -708.0])
    got = _run_f64_for_f32(x)
    np.testing.assert_array_equal(got[:8], [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert got[8] == 0.0
    assert abs(got[9] / 0.5 - 1) <= REL_F64_FOR_F32
    assert got[10] > 0 and abs(got[10] / np.exp(-708.0) - 1) <= REL_F64_FOR_F32
