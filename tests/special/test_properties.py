"""Hypothesis property tests of the softmax family and its derivatives."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from numpy.testing import assert_allclose

import softmaxkit as smk

FLOATS = st.floats(-60.0, 60.0, allow_nan=False, allow_infinity=False, width=64)
X = arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
           elements=FLOATS)
# the ``backend`` fixture only sets an environment variable, so it may be
# shared by all the examples of a test
BACKEND_OK = settings(suppress_health_check=[*settings().suppress_health_check,
                                             HealthCheck.function_scoped_fixture])
ROWS = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=FLOATS)


@st.composite
def x_and_axis(draw):
    x = draw(X)
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@st.composite
def rows_and_vector(draw):
    x = draw(ROWS)
    g = draw(arrays(np.float64, x.shape, elements=st.floats(-10, 10, width=64)))
    return x, g


@BACKEND_OK
@given(x_and_axis())
def test_sums_to_one(backend, xa):
    x, axis = xa
    for f in (smk.softmax, smk.softmin):
        s = f(x, axis=axis)
        assert (s >= 0).all() and (s <= 1).all()
        assert_allclose(s.sum(axis=axis), 1.0, rtol=0, atol=1e-14)
    assert_allclose(np.exp(smk.log_softmax(x, axis=axis)).sum(axis=axis), 1.0, atol=1e-14)


@BACKEND_OK
@given(x_and_axis(), st.floats(-1e3, 1e3))
def test_shift_invariance(backend, xa, c):
    x, axis = xa
    assert_allclose(smk.softmax(x + c, axis=axis), smk.softmax(x, axis=axis),
                    rtol=1e-10, atol=1e-300)
    assert_allclose(smk.log_softmax(x + c, axis=axis), smk.log_softmax(x, axis=axis),
                    rtol=1e-10, atol=1e-10)
    assert_allclose(smk.logsumexp(x + c, axis=axis), smk.logsumexp(x, axis=axis) + c,
                    rtol=1e-13, atol=1e-10)


@BACKEND_OK
@given(x_and_axis(), st.floats(0.05, 20.0))
def test_temperature_equals_scaled_input(backend, xa, T):
    x, axis = xa
    kw = {"axis": axis, "temperature": T}
    assert_allclose(smk.softmax(x, **kw), smk.softmax(x / T, axis=axis), rtol=1e-12, atol=1e-300)
    assert_allclose(smk.softmin(x, **kw), smk.softmax(-x / T, axis=axis), rtol=1e-12,
                    atol=1e-300)
    assert_allclose(smk.log_softmax(x, **kw), smk.log_softmax(x / T, axis=axis), rtol=1e-12,
                    atol=1e-12)
    assert_allclose(smk.logsumexp(x, **kw), T * smk.logsumexp(x / T, axis=axis), rtol=1e-12,
                    atol=1e-12)


@BACKEND_OK
@given(x_and_axis())
def test_log_softmax_is_x_minus_logsumexp(backend, xa):
    x, axis = xa
    ref = x - smk.logsumexp(x, axis=axis, keepdims=True)
    assert_allclose(smk.log_softmax(x, axis=axis), ref, rtol=1e-13, atol=1e-12)
    # and the log of softmax where that is representable
    s = smk.softmax(x, axis=axis)
    big = s > 1e-300
    assert_allclose(smk.log_softmax(x, axis=axis)[big], np.log(s[big]), rtol=1e-13, atol=1e-13)


@BACKEND_OK
@given(x_and_axis())
def test_softmin_is_softmax_of_minus_x(backend, xa):
    x, axis = xa
    assert_allclose(smk.softmin(x, axis=axis), smk.softmax(-x, axis=axis), rtol=1e-15, atol=0)


@given(ROWS)
def test_jacobian_rows_and_columns_sum_to_zero(x):
    J = smk.softmax_jacobian(x)
    assert J.shape == x.shape + (x.shape[-1],)
    assert_allclose(J.sum(axis=-1), 0.0, atol=1e-15)
    assert_allclose(J.sum(axis=-2), 0.0, atol=1e-15)
    assert_allclose(J, np.swapaxes(J, -1, -2), rtol=0, atol=0)  # symmetric
    s = smk.softmax(x)
    ref = np.einsum("ni,ij->nij", s, np.eye(x.shape[-1])) - s[:, :, None] * s[:, None, :]
    assert_allclose(J, ref, rtol=1e-15, atol=1e-300)


@given(rows_and_vector())
def test_vjp_is_jacobian_transpose_times_g(xg):
    x, g = xg
    J = smk.softmax_jacobian(x)
    y = smk.softmax(x)
    ref = np.einsum("nij,ni->nj", J, g)
    assert_allclose(smk.softmax_vjp(y, g), ref, rtol=1e-9, atol=1e-14)


@given(rows_and_vector())
def test_jvp_is_jacobian_times_v(xv):
    x, v = xv
    J = smk.softmax_jacobian(x)
    y = smk.softmax(x)
    ref = np.einsum("nij,nj->ni", J, v)
    assert_allclose(smk.softmax_jvp(y, v), ref, rtol=1e-9, atol=1e-14)


def _central_difference(f, x, h=1e-5):
    """d f(x)[r] / d x[r, j] for a row-wise f returning shape (n,)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        grad[idx] = (f(x + e)[idx[0]] - f(x - e)[idx[0]]) / (2 * h)
    return grad


SMALL_ROWS = arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 6)),
                    elements=st.floats(-8.0, 8.0, width=64))


@st.composite
def small_rows_and_vector(draw):
    x = draw(SMALL_ROWS)
    g = draw(arrays(np.float64, x.shape, elements=st.floats(-3, 3, width=64)))
    return x, g


@given(small_rows_and_vector())
def test_log_softmax_vjp_matches_finite_differences(xg):
    x, g = xg
    fd = _central_difference(lambda z: np.sum(g * smk.log_softmax(z), axis=-1), x)
    got = smk.log_softmax_vjp(smk.log_softmax(x), g)
    assert_allclose(got, fd, rtol=1e-6, atol=1e-7)


@given(small_rows_and_vector())
def test_softmax_vjp_matches_finite_differences(xg):
    x, g = xg
    fd = _central_difference(lambda z: np.sum(g * smk.softmax(z), axis=-1), x)
    assert_allclose(smk.softmax_vjp(smk.softmax(x), g), fd, rtol=1e-6, atol=1e-7)


@given(SMALL_ROWS)
def test_logsumexp_gradient_is_softmax(x):
    fd = _central_difference(smk.logsumexp, x)
    assert_allclose(smk.softmax(x), fd, rtol=1e-6, atol=1e-7)


@BACKEND_OK
@given(ROWS, st.floats(1e-12, 1e-3))
def test_logsumexp_tends_to_max_as_temperature_goes_to_zero(backend, x, T):
    m = x.max(axis=-1)
    count = (x == m[:, None]).sum(axis=-1)
    got = smk.logsumexp(x, temperature=T)
    # max <= T lse(x / T) <= max + T log K, and -> max + T log(count) for T -> 0
    K = x.shape[-1]
    assert (got >= m - 4 * np.spacing(np.abs(m)) - 1e-300).all()
    assert (got <= m + T * np.log(K) + 4 * np.spacing(np.abs(m) + T * np.log(K))).all()
    # T log(count + r) - T log(count) <= T r / count, r = sum over non-max of e^{-(m - x)/T}
    with np.errstate(under="ignore"):
        r = np.where(x == m[:, None], 0.0, np.exp(-(m[:, None] - x) / T)).sum(axis=-1)
    assert (np.abs(got - (m + T * np.log(count))) <= T * r / count + 1e-13).all()


@given(x_and_axis(), st.data())
def test_where_equals_computing_on_the_kept_entries(xa, data):
    x, axis = xa
    xr = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    keep = data.draw(arrays(np.bool_, xr.shape[-1:]))
    s = smk.softmax(xr, where=keep)
    ls = smk.log_softmax(xr, where=keep)
    lse = smk.logsumexp(xr, where=keep)
    if keep.any():
        assert_allclose(s[:, keep], smk.softmax(xr[:, keep]), rtol=1e-15)
        assert_allclose(ls[:, keep], smk.log_softmax(xr[:, keep]), rtol=1e-15)
        assert_allclose(lse, smk.logsumexp(xr[:, keep]), rtol=1e-15)
    else:
        assert (lse == -np.inf).all()
    assert (s[:, ~keep] == 0).all() and (ls[:, ~keep] == -np.inf).all()
