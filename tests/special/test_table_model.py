"""The whole edge-case table at once: random rows mixing finite values,
-inf, +inf and NaN, with random masks, against a row-by-row model of the
table written directly from DESIGN.md section 2 (finite parts from SciPy)."""

import numpy as np
import scipy.special as sps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

import softmaxkit as smk

inf, nan = np.inf, np.nan

ENTRY = st.one_of(st.floats(-30, 30, width=64), st.sampled_from([-inf, -inf, inf, nan]))


@st.composite
def rows_and_mask(draw):
    n = draw(st.integers(1, 5))
    k = draw(st.integers(0, 6))
    x = draw(arrays(np.float64, (n, k), elements=ENTRY))
    keep = draw(st.one_of(st.none(), arrays(np.bool_, (n, k))))
    return x, keep


def model_row(x, keep):
    """(softmax, log_softmax, logsumexp) of one row by the table."""
    k = x.size
    keep = np.ones(k, bool) if keep is None else keep
    xs = x[keep]
    s = np.zeros(k)
    ls = np.full(k, -inf)
    if xs.size == 0:                       # every entry masked / empty axis
        return s, ls, -inf
    if np.isnan(xs).any():                 # any NaN: whole slice NaN
        return np.full(k, nan), np.full(k, nan), nan
    if (xs == inf).any():                  # +inf entries share the mass
        pos = keep & (x == inf)
        s[pos] = 1.0 / pos.sum()
        ls[pos] = -np.log(pos.sum())
        return s, ls, inf
    if (xs == -inf).all():                 # all -inf, not masked: undefined
        return np.full(k, nan), np.full(k, nan), -inf
    s[keep] = sps.softmax(xs)              # finite (some -inf allowed)
    ls[keep] = sps.log_softmax(xs)
    return s, ls, sps.logsumexp(xs)


@settings(suppress_health_check=[*settings().suppress_health_check,
                                 HealthCheck.function_scoped_fixture])
@given(rows_and_mask())
def test_table_model(backend, xk):
    x, keep = xk
    with np.errstate(all="ignore"):
        s, ls, lse = smk.softmax(x, where=keep), smk.log_softmax(x, where=keep), \
            smk.logsumexp(x, where=keep)
        smin = smk.softmin(-x, where=keep)
        for r in range(x.shape[0]):
            ms, mls, mlse = model_row(x[r], None if keep is None else keep[r])
            assert_allclose(s[r], ms, rtol=1e-13, atol=1e-300)
            assert_allclose(smin[r], ms, rtol=1e-13, atol=1e-300)
            assert_allclose(ls[r], mls, rtol=1e-13, atol=1e-13)
            assert_allclose(lse[r], mlse, rtol=1e-13, atol=1e-13)
            # the gradient column: never NaN unless the slice is NaN
            g = np.ones(x.shape[1])
            J = smk.softmax_jacobian(x[r], where=None if keep is None else keep[r])
            vjp = smk.softmax_vjp(s[r], g, where=None if keep is None else keep[r])
            if not np.isnan(ms).any():
                assert np.isfinite(J).all() and np.isfinite(vjp).all()
            elif np.isnan(x[r][keep[r] if keep is not None else slice(None)]).any():
                assert np.isnan(J).all()


def test_model_covers_every_row():
    # the model itself distinguishes the table's rows
    assert_array_equal(model_row(np.array([1.0, -inf]), None)[0], [1.0, 0.0])
    assert_array_equal(model_row(np.array([inf, inf, 0.0]), None)[0], [0.5, 0.5, 0.0])
    assert np.isnan(model_row(np.array([-inf, -inf]), None)[0]).all()
    assert_array_equal(model_row(np.array([1.0, 2.0]), np.array([False, False]))[0], 0.0)
    assert np.isnan(model_row(np.array([nan, 1.0]), None)[2])
    assert model_row(np.zeros(0), None)[2] == -inf
