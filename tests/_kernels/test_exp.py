"""The vectorisable exp of the kernels vs mpmath and np.exp over the full range."""

import mpmath
import numpy as np
import pytest

pytest.importorskip("numba")
from softmaxkit._kernels._exp import exp_array

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
