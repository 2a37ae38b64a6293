"""The edge-case table of DESIGN.md section 2, one named test per row and
function, plus dtype rules and input validation.

Rows: finite, some_neginf, posinf, all_neginf, masked, all_masked, nan,
empty.  Functions: softmax, log_softmax, logsumexp, softmin, and the gradient
column (softmax_jacobian, softmax_vjp, softmax_jvp, log_softmax_vjp).
Value tests use 2-D input and the ``backend`` fixture so that they also run
on the compiled kernels.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import softmaxkit as smk

from ._oracle import exact_row

inf, nan = np.inf, np.nan


def _exact(x):
    S, L, lse = exact_row(x)
    return (np.array([float(v) for v in S]), np.array([float(v) for v in L]), float(lse))


def _grads(x, g, where=None):
    """All four derivatives at x with cotangent g (jacobian, vjp, jvp, lvjp)."""
    y = smk.softmax(x, where=where)
    ly = smk.log_softmax(x, where=where)
    return (smk.softmax_jacobian(x, where=where), smk.softmax_vjp(y, g, where=where),
            smk.softmax_jvp(y, g, where=where), smk.log_softmax_vjp(ly, g, where=where))


# ---------------------------------------------------------------- finite values
FINITE = np.array([[3.0, 1.0, -3.0, 0.5], [-700.0, -702.5, -699.0, -710.0]])


def test_finite_softmax(backend):
    out = smk.softmax(FINITE)
    for r in range(2):
        assert_allclose(out[r], _exact(FINITE[r])[0], rtol=4e-16, atol=0)


def test_finite_log_softmax(backend):
    out = smk.log_softmax(FINITE)
    for r in range(2):
        assert_allclose(out[r], _exact(FINITE[r])[1], rtol=4e-16, atol=0)


def test_finite_logsumexp(backend):
    out = smk.logsumexp(FINITE)
    assert_allclose(out, [_exact(FINITE[r])[2] for r in range(2)], rtol=4e-16, atol=0)


def test_finite_softmin(backend):
    out = smk.softmin(FINITE)
    for r in range(2):
        assert_allclose(out[r], _exact(-FINITE[r])[0], rtol=4e-16, atol=0)


def test_finite_gradient(backend):
    g = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, 1.0, -1.0]])
    for d in _grads(FINITE, g):
        assert np.isfinite(d).all()


# ------------------------------------------------------ some -inf, some finite
SOME_NEGINF = np.array([[1.0, -inf, 2.0, -inf], [-inf, 0.0, -inf, -inf]])
SOME_NEGINF_ENTRY = np.isneginf(SOME_NEGINF)


def test_some_neginf_softmax(backend):
    out = smk.softmax(SOME_NEGINF)
    assert_array_equal(out[SOME_NEGINF_ENTRY], 0.0)
    assert_allclose(out[0, [0, 2]], smk.softmax([1.0, 2.0]), rtol=1e-15)
    assert_array_equal(out[1], [0.0, 1.0, 0.0, 0.0])


def test_some_neginf_log_softmax(backend):
    out = smk.log_softmax(SOME_NEGINF)
    assert_array_equal(out[SOME_NEGINF_ENTRY], -inf)
    assert_allclose(out[0, [0, 2]], smk.log_softmax([1.0, 2.0]), rtol=1e-15)
    assert out[1, 1] == 0.0


def test_some_neginf_logsumexp(backend):
    out = smk.logsumexp(SOME_NEGINF)
    assert np.isfinite(out).all()
    assert_allclose(out, [np.logaddexp(1.0, 2.0), 0.0], rtol=1e-15)


def test_some_neginf_softmin(backend):
    # softmin sees -x: +inf entries of x play the role of -inf
    x = -SOME_NEGINF
    out = smk.softmin(x)
    assert_array_equal(out[SOME_NEGINF_ENTRY], 0.0)
    assert_allclose(out[0, [0, 2]], smk.softmax([1.0, 2.0]), rtol=1e-15)


def test_some_neginf_gradient(backend):
    g = np.array([[1.0, 5.0, -1.0, 2.0], [3.0, 1.0, -2.0, 7.0]])
    J, vjp, jvp, lvjp = _grads(SOME_NEGINF, g)
    for d in (J, vjp, jvp, lvjp):
        assert np.isfinite(d).all()  # never NaN at -inf
    assert_array_equal(vjp[SOME_NEGINF_ENTRY], 0.0)  # softmax VJP 0 at -inf
    assert_array_equal(jvp[SOME_NEGINF_ENTRY], 0.0)
    # the softmax Jacobian has zero rows and columns at -inf entries
    assert_array_equal(J[0, 1], 0.0)
    assert_array_equal(J[0, :, 1], 0.0)
    # log_softmax: y_j = x_j - lse moves one-for-one with a -inf x_j
    assert_array_equal(lvjp[SOME_NEGINF_ENTRY], g[SOME_NEGINF_ENTRY])
    # the logsumexp gradient is softmax(x): 0 at -inf
    assert_array_equal(smk.softmax(SOME_NEGINF)[SOME_NEGINF_ENTRY], 0.0)


# ------------------------------------------------------- one or more +inf
POSINF = np.array([[inf, 1.0, inf, -inf], [0.0, inf, 5.0, 2.0]])


def test_posinf_softmax(backend):
    assert_array_equal(smk.softmax(POSINF), [[0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])


def test_posinf_log_softmax(backend):
    out = smk.log_softmax(POSINF)
    assert_array_equal(out, [[-np.log(2.0), -inf, -np.log(2.0), -inf], [-inf, 0.0, -inf, -inf]])


def test_posinf_logsumexp(backend):
    assert_array_equal(smk.logsumexp(POSINF), [inf, inf])


def test_posinf_softmin(backend):
    # for softmin the -inf entries of x share the mass
    assert_array_equal(smk.softmin(-POSINF), [[0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])


def test_posinf_gradient(backend):
    g = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert_array_equal(smk.softmax_jacobian(POSINF), 0.0)
    # one +inf holds all the mass: y is one-hot and the VJP/JVP are 0
    y = smk.softmax(POSINF[1])
    assert_array_equal(smk.softmax_vjp(y, g[1]), 0.0)
    assert_array_equal(smk.softmax_jvp(y, g[1]), 0.0)
    # VJPs see only y: with two tied +inf entries they are finite (documented)
    for d in _grads(POSINF, g)[1:]:
        assert np.isfinite(d).all()


# --------------------------------------------------- all -inf, not masked
ALL_NEGINF = np.array([[-inf, -inf, -inf], [0.0, 1.0, 2.0]])


def test_all_neginf_softmax(backend):
    out = smk.softmax(ALL_NEGINF)
    assert np.isnan(out[0]).all()
    assert np.isfinite(out[1]).all()


def test_all_neginf_log_softmax(backend):
    out = smk.log_softmax(ALL_NEGINF)
    assert np.isnan(out[0]).all()
    assert np.isfinite(out[1]).all()


def test_all_neginf_logsumexp(backend):
    out = smk.logsumexp(ALL_NEGINF)
    assert out[0] == -inf
    assert np.isfinite(out[1])


def test_all_neginf_softmin(backend):
    out = smk.softmin(-ALL_NEGINF)  # all +inf for softmin is all -inf of -x
    assert np.isnan(out[0]).all()


def test_all_neginf_gradient(backend):
    # the Jacobian (which sees x) is finite: 0
    J = smk.softmax_jacobian(ALL_NEGINF)
    assert_array_equal(J[0], 0.0)
    assert np.isfinite(J).all()
    # the VJPs see y = NaN (documented): NaN, like a NaN input; masking the
    # slice gives the finite 0
    g = np.ones_like(ALL_NEGINF)
    where = np.array([[False] * 3, [True] * 3])
    for d in _grads(ALL_NEGINF, g, where=where):
        assert np.isfinite(d).all()
        assert_array_equal(d[0], 0.0)
    assert np.isnan(smk.softmax_vjp(smk.softmax(ALL_NEGINF), g)[0]).all()


# -------------------------------------------------- entries masked by where
MASK_X = np.array([[1.0, 50.0, 2.0, nan], [3.0, 4.0, inf, 5.0]])
MASK = np.array([[True, False, True, False], [True, True, False, True]])


def test_masked_softmax(backend):
    out = smk.softmax(MASK_X, where=MASK)
    assert_array_equal(out[~MASK], 0.0)
    assert_allclose(out[0, [0, 2]], smk.softmax([1.0, 2.0]), rtol=1e-15)
    assert_allclose(out[1, [0, 1, 3]], smk.softmax([3.0, 4.0, 5.0]), rtol=1e-15)


def test_masked_log_softmax(backend):
    out = smk.log_softmax(MASK_X, where=MASK)
    assert_array_equal(out[~MASK], -inf)
    assert_allclose(out[1, [0, 1, 3]], smk.log_softmax([3.0, 4.0, 5.0]), rtol=1e-15)


def test_masked_logsumexp(backend):
    out = smk.logsumexp(MASK_X, where=MASK)
    assert_allclose(out, [np.logaddexp(1.0, 2.0), smk.logsumexp([3.0, 4.0, 5.0])], rtol=1e-15)


def test_masked_softmin(backend):
    out = smk.softmin(MASK_X, where=MASK)
    assert_array_equal(out[~MASK], 0.0)
    assert_allclose(out[1, [0, 1, 3]], smk.softmax([-3.0, -4.0, -5.0]), rtol=1e-15)


def test_masked_gradient(backend):
    g = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 8.0, 2.0]])
    J, vjp, jvp, lvjp = _grads(MASK_X, g, where=MASK)
    for d in (J, vjp, jvp, lvjp):
        assert np.isfinite(d).all()
    for d in (vjp, jvp, lvjp):
        assert_array_equal(d[~MASK], 0.0)
    assert_array_equal(J[~MASK], 0.0)  # rows of masked entries
    assert_array_equal(np.swapaxes(J, 1, 2)[~MASK], 0.0)  # and columns
    lvjp = _grads(MASK_X, g, where=MASK)[3]
    # equals the VJP of the unmasked sub-problem
    ly = smk.log_softmax([3.0, 4.0, 5.0])
    assert_allclose(lvjp[1, [0, 1, 3]], smk.log_softmax_vjp(ly, g[1, [0, 1, 3]]), rtol=1e-15)


# ---------------------------------------------------- every entry masked
ALL_MASKED = np.array([[False, False, False], [True, False, True]])
AM_X = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


def test_all_masked_softmax(backend):
    out = smk.softmax(AM_X, where=ALL_MASKED)
    assert_array_equal(out[0], 0.0)
    assert_allclose(out[1, [0, 2]], smk.softmax([1.0, 3.0]), rtol=1e-15)


def test_all_masked_log_softmax(backend):
    assert_array_equal(smk.log_softmax(AM_X, where=ALL_MASKED)[0], -inf)


def test_all_masked_logsumexp(backend):
    out = smk.logsumexp(AM_X, where=ALL_MASKED)
    assert out[0] == -inf
    assert_allclose(out[1], np.logaddexp(1.0, 3.0), rtol=1e-15)


def test_all_masked_softmin(backend):
    assert_array_equal(smk.softmin(AM_X, where=ALL_MASKED)[0], 0.0)


def test_all_masked_gradient(backend):
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for d in _grads(AM_X, g, where=ALL_MASKED):
        assert_array_equal(d[0], 0.0)


# -------------------------------------------------------- any NaN (unmasked)
NAN_X = np.array([[1.0, nan, 2.0], [1.0, 2.0, 3.0], [nan, inf, -inf]])


def test_nan_softmax(backend):
    out = smk.softmax(NAN_X)
    assert np.isnan(out[[0, 2]]).all()
    assert np.isfinite(out[1]).all()


def test_nan_log_softmax(backend):
    out = smk.log_softmax(NAN_X)
    assert np.isnan(out[[0, 2]]).all()
    assert np.isfinite(out[1]).all()


def test_nan_logsumexp(backend):
    out = smk.logsumexp(NAN_X)
    assert np.isnan(out[[0, 2]]).all()
    assert np.isfinite(out[1])


def test_nan_softmin(backend):
    out = smk.softmin(NAN_X)
    assert np.isnan(out[[0, 2]]).all()
    assert np.isfinite(out[1]).all()


def test_nan_gradient(backend):
    g = np.ones_like(NAN_X)
    for d in _grads(NAN_X, g):
        assert np.isnan(d[0]).all() and np.isnan(d[2]).all()
        assert np.isfinite(d[1]).all()


# ------------------------------------------------------------------ empty axis
EMPTY = np.zeros((3, 0))


def test_empty_softmax(backend):
    assert smk.softmax(EMPTY).shape == (3, 0)


def test_empty_log_softmax(backend):
    assert smk.log_softmax(EMPTY).shape == (3, 0)


def test_empty_logsumexp(backend):
    assert_array_equal(smk.logsumexp(EMPTY), [-inf, -inf, -inf])
    assert smk.logsumexp([]) == -inf


def test_empty_softmin(backend):
    assert smk.softmin(EMPTY).shape == (3, 0)


def test_empty_gradient():
    J, vjp, jvp, lvjp = _grads(EMPTY, EMPTY)
    assert J.shape == (3, 0, 0)
    assert vjp.shape == jvp.shape == lvjp.shape == (3, 0)


# ----------------------------------------------------------------------- dtypes
FUNCS = {
    "softmax": smk.softmax,
    "log_softmax": smk.log_softmax,
    "logsumexp": smk.logsumexp,
    "softmin": smk.softmin,
    "softmax_jacobian": smk.softmax_jacobian,
    "sigmoid": smk.sigmoid,
    "log_sigmoid": smk.log_sigmoid,
}
TEMP_FUNCS = ["softmax", "log_softmax", "logsumexp", "softmin"]


def test_float16_logsumexp_of_70000_zeros():
    out = smk.logsumexp(np.zeros(70_000, dtype=np.float16))
    assert out.dtype == np.float16
    assert np.isfinite(out)
    assert out == np.float16(11.16)
    assert out == np.float16(np.log(70_000.0))


@pytest.mark.parametrize("name", list(FUNCS))
def test_float16_in_float16_out(name):
    x = np.array([[0.5, -1.0, 2.0], [60000.0, 60000.0, 0.0]], dtype=np.float16)
    out = FUNCS[name](x)
    assert out.dtype == np.float16
    assert np.isfinite(out).all()  # 60000 + 60000 would overflow float16
    ref = FUNCS[name](x.astype(np.float32)).astype(np.float16)
    assert_array_equal(out, ref)


@pytest.mark.parametrize("name", list(FUNCS))
def test_float32_stays_float32(name, backend):
    x = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    out = FUNCS[name](x)
    assert out.dtype == np.float32
    assert_allclose(out, FUNCS[name](x.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.bool_])
def test_int_and_bool_become_float64(name, dtype):
    x = np.array([[1, 0, 1]], dtype=dtype)
    out = FUNCS[name](x)
    assert out.dtype == np.float64
    assert_array_equal(out, FUNCS[name](x.astype(np.float64)))


@pytest.mark.parametrize("name", list(FUNCS))
def test_complex_raises_typeerror(name):
    with pytest.raises(TypeError, match="complex"):
        FUNCS[name](np.array([1.0 + 1j, 2.0]))


@pytest.mark.parametrize("name", list(FUNCS))
def test_non_numeric_raises_typeerror(name):
    with pytest.raises(TypeError, match="real numeric"):
        FUNCS[name](np.array(["a", "b"]))


@pytest.mark.parametrize(
    "name,grad",
    [("softmax_vjp", smk.softmax_vjp), ("softmax_jvp", smk.softmax_jvp),
     ("log_softmax_vjp", smk.log_softmax_vjp)],
)
def test_derivative_dtypes(name, grad):
    y32 = np.array([0.25, 0.75], dtype=np.float32)
    assert grad(y32, y32).dtype == np.float32
    assert grad(y32, y32.astype(np.float64)).dtype == np.float64
    assert grad(y32.astype(np.float16), y32.astype(np.float16)).dtype == np.float16
    assert grad(np.array([0, 1]), np.array([1, 0])).dtype == np.float64
    with pytest.raises(TypeError, match="complex"):
        grad(y32, y32 + 1j)


# ------------------------------------------------------------------ temperature
@pytest.mark.parametrize("name", TEMP_FUNCS)
@pytest.mark.parametrize("T", [0.0, -1.0, nan, inf, -inf])
def test_bad_temperature_raises_valueerror(name, T):
    msg = rf"The 'temperature' parameter of {name} must be a float in \(0, inf\); got"
    with pytest.raises(ValueError, match=msg):
        FUNCS[name]([1.0, 2.0], temperature=T)


@pytest.mark.parametrize("name", TEMP_FUNCS)
@pytest.mark.parametrize("T", [True, "1.0", None, [1.0]])
def test_non_real_temperature_raises_typeerror(name, T):
    with pytest.raises(TypeError, match="'temperature' parameter"):
        FUNCS[name]([1.0, 2.0], temperature=T)


@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_integer_and_numpy_temperature_accepted(name):
    x = np.array([1.0, 2.0, 4.0])
    assert_allclose(FUNCS[name](x, temperature=2), FUNCS[name](x, temperature=np.float32(2.0)))


def test_tiny_temperature_tends_to_argmax():
    # x / T overflows here; the result is the limit, not a split over +inf
    x = np.array([1.0, 3.0, 2.0])
    assert_array_equal(smk.softmax(x, temperature=1e-310), [0.0, 1.0, 0.0])
    assert_array_equal(smk.log_softmax(x, temperature=1e-310)[1], 0.0)
    assert_array_equal(smk.softmin(x, temperature=1e-310), [1.0, 0.0, 0.0])
    assert smk.logsumexp(x, temperature=1e-310) == 3.0
    x32 = x.astype(np.float32)  # T below float32's range
    assert_array_equal(smk.softmax(x32, temperature=1e-50), [0.0, 1.0, 0.0])
    assert smk.logsumexp(x32, temperature=1e-50) == np.float32(3.0)


# ------------------------------------------------------------------------- axes
@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_axis_tuple_equals_reshape(name, backend):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    f = FUNCS[name]
    out = f(x, axis=(1, 3))
    moved = np.moveaxis(x, (1, 3), (2, 3)).reshape(2, 4, 15)
    ref = f(moved, axis=-1)
    if name == "logsumexp":
        assert_allclose(out, ref, rtol=1e-14)
    else:
        assert_allclose(np.moveaxis(out, (1, 3), (2, 3)).reshape(2, 4, 15), ref, rtol=1e-14)


@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_axis_int_equals_moveaxis(name, backend):
    x = np.random.default_rng(1).normal(size=(4, 3, 2))
    f = FUNCS[name]
    ref = f(np.moveaxis(x, 0, -1))
    out = f(x, axis=0)
    assert_allclose(out if name == "logsumexp" else np.moveaxis(out, 0, -1), ref, rtol=1e-14)
    assert_allclose(f(x, axis=-3), out, rtol=0)


@pytest.mark.parametrize("name", TEMP_FUNCS + ["softmax_jacobian"])
@pytest.mark.parametrize("axis", [2, -3, (0, 2)])
def test_bad_axis_raises(name, axis):
    with pytest.raises((ValueError, TypeError), match="axis"):
        FUNCS[name](np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("name", TEMP_FUNCS)
@pytest.mark.parametrize("axis", [1.0, "0", True])
def test_non_integer_axis_raises_typeerror(name, axis):
    with pytest.raises(TypeError, match="axis"):
        FUNCS[name](np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_repeated_axis_raises(name):
    # the message names the function (NumPy's own said only "repeated axis")
    with pytest.raises(ValueError, match=f"axis of {name} names an axis twice"):
        FUNCS[name](np.ones((2, 3)), axis=(1, -1))


def test_logsumexp_axis_none_and_keepdims():
    x = np.arange(6.0).reshape(2, 3)
    assert_allclose(smk.logsumexp(x, axis=None), smk.logsumexp(x.ravel()), rtol=1e-15)
    assert smk.logsumexp(x, axis=1, keepdims=True).shape == (2, 1)
    assert smk.logsumexp(x, axis=(0, 1), keepdims=True).shape == (1, 1)


# -------------------------------------------------------------------- where
@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_where_broadcasts(name):
    x = np.random.default_rng(2).normal(size=(3, 4))
    row = np.array([True, False, True, True])
    f = FUNCS[name]
    out = f(x, where=row)
    full = f(x, where=np.broadcast_to(row, x.shape))
    assert_array_equal(out, full)
    sub = f(x[:, row])
    if name == "logsumexp":
        assert_allclose(out, sub, rtol=1e-15)
    else:
        assert_allclose(out[:, row], sub, rtol=1e-15)


@pytest.mark.parametrize("name", TEMP_FUNCS + ["softmax_jacobian"])
def test_wrong_where_shape_raises(name):
    with pytest.raises(ValueError, match="does not broadcast"):
        FUNCS[name](np.ones((2, 3)), where=np.ones(2, dtype=bool))


@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_non_bool_where_raises(name):
    with pytest.raises(TypeError, match="boolean"):
        FUNCS[name](np.ones((2, 3)), where=np.ones((2, 3)))


# ------------------------------------------------------- messages with NumPy scalars
@pytest.mark.parametrize("name", TEMP_FUNCS)
def test_numpy_scalar_parameters_print_as_plain_numbers(name):
    """NumPy 2 reprs scalars as np.float64(-1.0); messages must show -1.0."""
    with pytest.raises(ValueError, match=r"got -1\.0\.$") as e:
        FUNCS[name]([1.0, 2.0], temperature=np.float64(-1.0))
    assert "np." not in str(e.value)
    with pytest.raises(ValueError, match=r"got 0\.0\.$"):
        FUNCS[name]([1.0, 2.0], temperature=np.float32(0.0))
    with pytest.raises(TypeError, match=r"got \(1\.0,\)\.$") as e:
        FUNCS[name](np.ones((2, 3)), axis=(np.float64(1.0),))
    assert "np." not in str(e.value)


def test_numpy_scalar_axis_of_derivatives_prints_plain():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"single int; got 1\.0 \(reshape") as e:
        smk.softmax_jacobian(x, axis=np.float64(1.0))
    assert "np." not in str(e.value)
    with pytest.raises(TypeError, match=r"got 1\.0\.$") as e:
        smk.softmax_vjp(x, x, axis=np.float64(1.0))
    assert "np." not in str(e.value)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "softmin", "sigmoid"])
@pytest.mark.parametrize("dt, out", [(">f2", np.float16), (">f4", np.float32),
                                     (">f8", np.float64)])
def test_non_native_byte_order_keeps_its_precision(name, dt, out):
    """Big-endian float16/float32 (FITS, HDF5, network data) is float16/float32:
    it once failed the dtype-equality test and came back as float64."""
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]], dtype=dt)
    got = getattr(smk, name)(x)
    assert got.dtype == out
    assert_array_equal(got, getattr(smk, name)(x.astype(out)))


@pytest.mark.parametrize("name", ["softmax", "logsumexp"])
def test_integer_temperature_beyond_float64_is_a_parameter_error(name):
    with pytest.raises(ValueError, match="'temperature' parameter of"):
        getattr(smk, name)([1.0, 2.0], temperature=10**400)



def test_float32_log_softmax_below_the_range_is_minus_inf_without_a_warning(backend):
    """log_softmax([3.4e38, -3.4e38]) is -6.8e38 exactly, beyond float32: the
    reference's float64 result rounds to -inf, which NumPy reported with an
    "overflow encountered in cast" RuntimeWarning (the kernel was silent)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = smk.log_softmax(np.float32([[3.4e38, -3.4e38]]))
    assert out.dtype == np.float32
    assert_array_equal(out, np.float32([[0.0, -np.inf]]))
