"""Agreement with scipy.special and PyTorch, including where they differ
from our edge-case table (there we assert OUR documented value and record
theirs, so the test documents the difference)."""

import numpy as np
import pytest
import scipy.special as sps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from numpy.testing import assert_allclose, assert_array_equal

import softmaxkit as smk

FINITE = arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
                elements=st.floats(-500, 500, allow_nan=False, width=64))


@st.composite
def x_and_axis(draw):
    x = draw(FINITE)
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


# -------------------------------------------------------------------- scipy
@settings(suppress_health_check=[*settings().suppress_health_check,
                                 HealthCheck.function_scoped_fixture])
@given(x_and_axis())
def test_scipy_softmax_log_softmax_logsumexp(backend, xa):
    x, axis = xa
    assert_allclose(smk.softmax(x, axis=axis), sps.softmax(x, axis=axis), rtol=1e-13, atol=1e-300)
    assert_allclose(smk.log_softmax(x, axis=axis), sps.log_softmax(x, axis=axis), rtol=1e-13,
                    atol=1e-13)
    assert_allclose(smk.logsumexp(x, axis=axis), sps.logsumexp(x, axis=axis), rtol=1e-14,
                    atol=1e-13)


@given(FINITE, st.booleans())
def test_scipy_logsumexp_axis_tuple_and_keepdims(x, keepdims):
    axes = tuple(range(x.ndim))[-2:]
    assert_allclose(smk.logsumexp(x, axis=axes, keepdims=keepdims),
                    sps.logsumexp(x, axis=axes, keepdims=keepdims), rtol=1e-14, atol=1e-13)
    assert_allclose(smk.logsumexp(x, axis=None), sps.logsumexp(x), rtol=1e-14, atol=1e-13)


@st.composite
def x_and_b(draw):
    x = draw(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
                    elements=st.floats(-50, 50, width=64)))
    b = draw(arrays(np.float64, x.shape, elements=st.floats(-3, 3, width=64)))
    return x, b


@given(x_and_b())
def test_scipy_logsumexp_with_b_and_return_sign(xb):
    x, b = xb
    res, sign = smk.logsumexp(x, b=b, return_sign=True)
    ref, ref_sign = sps.logsumexp(x, axis=-1, b=b, return_sign=True)
    assert_array_equal(sign, ref_sign)
    ok = np.isfinite(ref)
    # a sum that nearly cancels is ill-conditioned: compare absolutely there
    assert_allclose(res[ok], ref[ok], rtol=1e-12, atol=1e-9)
    assert_array_equal(res[~ok], ref[~ok])
    # without return_sign a negative sum is NaN, as in scipy
    with np.errstate(invalid="ignore"):
        nosign = sps.logsumexp(x, axis=-1, b=b)
    assert_array_equal(np.isnan(smk.logsumexp(x, b=b)), np.isnan(nosign))


def test_scipy_logsumexp_b_broadcast_and_zero_weights():
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    b = np.array([0.5, 0.0, 2.0])
    assert_allclose(smk.logsumexp(x, b=b), sps.logsumexp(x, axis=-1, b=b), rtol=1e-15)
    assert smk.logsumexp([0.0, 1.0], b=[0.0, 0.0]) == -np.inf


def test_scipy_return_sign_of_empty_sum():
    # the sign of an all -inf sum is 0, as in scipy
    res, sign = smk.logsumexp([-np.inf, -np.inf], return_sign=True)
    ref, ref_sign = sps.logsumexp([-np.inf, -np.inf], return_sign=True)
    assert res == ref == -np.inf and sign == ref_sign == 0
    res, sign = smk.logsumexp([1.0, 2.0], return_sign=True)
    assert sign == 1.0


def test_scipy_differs_at_posinf_and_largest_log_softmax_entry():
    # +inf: we give the limit (mass split over the +inf entries), scipy NaN
    x = np.array([np.inf, 1.0, np.inf])
    assert_array_equal(smk.softmax(x), [0.5, 0.0, 0.5])
    with np.errstate(invalid="ignore"):
        assert np.isnan(sps.softmax(x)).all()
    # the largest entry of log_softmax: scipy rounds it to 0, ours is exact
    x = np.array([0.0, -40.0])
    assert sps.log_softmax(x)[0] == 0.0
    assert smk.log_softmax(x)[0] == -np.exp(-40.0)  # -log1p(e^-40) == -e^-40 in float64


# ------------------------------------------------------------------ PyTorch
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_softmax_log_softmax_logsumexp(backend, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 7, 9)) * 20).astype(dtype)
    t = torch.from_numpy(x)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for axis in (-1, 0, 1):
        assert_allclose(smk.softmax(x, axis=axis), torch.softmax(t, dim=axis).numpy(),
                        rtol=rtol, atol=1e-30)
        assert_allclose(smk.log_softmax(x, axis=axis), torch.log_softmax(t, dim=axis).numpy(),
                        rtol=rtol, atol=rtol)
        assert_allclose(smk.logsumexp(x, axis=axis), torch.logsumexp(t, dim=axis).numpy(),
                        rtol=rtol, atol=rtol)
        assert smk.softmax(x, axis=axis).dtype == torch.softmax(t, dim=axis).numpy().dtype
    assert_allclose(smk.logsumexp(x, axis=(0, 2)), torch.logsumexp(t, dim=(0, 2)).numpy(),
                    rtol=rtol)
    assert_allclose(smk.softmin(x), torch.nn.functional.softmin(t, dim=-1).numpy(), rtol=rtol,
                    atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_gradients(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 6)) * 5).astype(dtype)
    x[0, 2] = -np.inf  # a -inf entry: both give a finite gradient, 0 for softmax
    g = rng.standard_normal((4, 6)).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for fwd, vjp in ((torch.softmax, smk.softmax_vjp), (torch.log_softmax, smk.log_softmax_vjp)):
        t = torch.from_numpy(x.copy()).requires_grad_(True)
        y = fwd(t, dim=-1)
        y.backward(torch.from_numpy(g))
        ours = vjp(y.detach().numpy(), g)
        assert ours.dtype == dtype
        assert np.isfinite(ours).all()
        assert_allclose(ours, t.grad.numpy(), rtol=rtol, atol=rtol)
    # the full Jacobian
    t = torch.from_numpy(x[1].astype(np.float64))
    J = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, dim=-1), t).numpy()
    assert_allclose(smk.softmax_jacobian(x[1].astype(np.float64)), J, rtol=1e-12, atol=1e-15)
    # JVP
    v = torch.from_numpy(g[1].astype(np.float64))
    _, jv = torch.autograd.functional.jvp(lambda z: torch.softmax(z, dim=-1), t, v)
    y1 = smk.softmax(x[1].astype(np.float64))
    assert_allclose(smk.softmax_jvp(y1, g[1].astype(np.float64)), jv.numpy(), rtol=1e-12,
                    atol=1e-15)


def test_torch_differs_on_fully_masked_row():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, True, True], [True, False, True]])
    mask[0] = False  # row 0 fully masked
    t = torch.from_numpy(x).masked_fill(~torch.from_numpy(mask), float("-inf"))
    # PyTorch: a fully masked row is NaN for softmax and log_softmax
    assert torch.isnan(torch.softmax(t, dim=-1)[0]).all()
    assert torch.isnan(torch.log_softmax(t, dim=-1)[0]).all()
    assert torch.logsumexp(t, dim=-1)[0].item() == float("-inf")
    # ours (DESIGN.md table, "every entry masked"): 0, -inf, -inf
    assert_array_equal(smk.softmax(x, where=mask)[0], 0.0)
    assert_array_equal(smk.log_softmax(x, where=mask)[0], -np.inf)
    assert smk.logsumexp(x, where=mask)[0] == -np.inf
    # the partially masked row agrees
    assert_allclose(smk.softmax(x, where=mask)[1], torch.softmax(t, dim=-1)[1].numpy(),
                    rtol=1e-15)
    # without where, an all -inf row is undefined for us too (NaN), as in torch
    assert np.isnan(smk.softmax(t.numpy())[0]).all()


def test_torch_differs_on_posinf():
    torch = pytest.importorskip("torch")
    x = np.array([np.inf, 0.0, np.inf, 1.0])
    t = torch.from_numpy(x)
    # PyTorch computes inf - inf: NaN
    assert torch.isnan(torch.softmax(t, dim=-1)).all()
    assert torch.isnan(torch.log_softmax(t, dim=-1)).all()
    assert torch.logsumexp(t, dim=-1).item() == float("inf")
    # ours: the limit, mass shared by the +inf entries
    assert_array_equal(smk.softmax(x), [0.5, 0.0, 0.5, 0.0])
    assert_array_equal(smk.log_softmax(x), [-np.log(2), -np.inf, -np.log(2), -np.inf])
    assert smk.logsumexp(x) == np.inf


def test_torch_float16_logsumexp_of_zeros():
    torch = pytest.importorskip("torch")
    z = np.zeros(70_000, dtype=np.float16)
    ours = smk.logsumexp(z)
    theirs = torch.logsumexp(torch.from_numpy(z).float(), dim=0).half().item()
    assert ours == np.float16(theirs) == np.float16(11.16)


def test_logsumexp_b_validation():
    with pytest.raises(ValueError, match="b of logsumexp with shape"):
        smk.logsumexp(np.ones((2, 3)), b=np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        smk.logsumexp(np.ones(3), b=np.ones(3) * 1j)


def test_logsumexp_b_against_mpmath():
    import mpmath

    from ._oracle import DPS, ulp_error

    x = np.array([0.5, -3.25, 2.0, 7.125])
    b = np.array([0.25, 3.0, -0.5, 1.5])
    with mpmath.workdps(DPS):
        s = mpmath.fsum(mpmath.mpf(float(bi)) * mpmath.exp(mpmath.mpf(float(xi)))
                        for xi, bi in zip(x, b, strict=True))
        exact = mpmath.log(abs(s))
    res, sign = smk.logsumexp(x, b=b, return_sign=True)
    assert sign == 1.0
    assert ulp_error(res, exact).max() <= 2


@pytest.mark.parametrize("T", [0.25, 3.0, 1e-3])
def test_scipy_logsumexp_b_with_temperature(T):
    x = np.array([[0.5, -3.25, 2.0, 7.125], [1.0, 1.0, -2.0, 0.0]])
    b = np.array([0.25, 3.0, -0.5, 1.5])
    res, sign = smk.logsumexp(x, b=b, temperature=T, return_sign=True)
    ref, ref_sign = sps.logsumexp(x / T, axis=-1, b=b, return_sign=True)
    assert_array_equal(sign, ref_sign)
    assert_allclose(res, T * ref, rtol=1e-14)
