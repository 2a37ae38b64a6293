"""The compiled softmax, log_softmax and logsumexp kernels vs the NumPy reference.

Accuracy is measured against the reference evaluated in long double (x87
extended where available) on the same input ("exact" below), in units of the
spacing of the result's dtype:

- float32: softmax, log_softmax and logsumexp (in ulps of max(|result|,
  |max(x)|)) <= 0.501 ulp: the kernels evaluate in float64 and round once,
  as the reference does (0.50 ulp); the 0.001 covers the float64 errors
  (exp 2**-37.8 relative, sums) that can tip a near-tie;
- float64: softmax <= 8 ulp, log_softmax <= 4 ulp, logsumexp <= 2 ulp of
  max(|result|, |max(x)|) (sums in float64; the reference uses the x87 type).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("numba")
import softmaxkit as smk
import softmaxkit._kernels as K
from softmaxkit.special._softmax import _lse_impl, _softmax_impl

DTYPES = [np.float32, np.float64]
ULP = {  # (softmax, log_softmax, logsumexp)
    np.float32: (0.501, 0.501, 0.501),
    np.float64: (8.0, 4.0, 2.0),
}
SHAPES = [(1, 1), (5, 1), (3, 7), (64, 300), (2, 3, 50), (7,), (2, 20000)]


@pytest.fixture
def numba_backend(monkeypatch):
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")


@pytest.fixture(params=["dispatch", "row_kernel"])
def kernel_path(request, monkeypatch):
    """Run a test on the kernels as dispatched and, for rows of at most
    ``_narrow.NARROW_MAX`` entries (which the dispatcher sends to the
    narrow-row kernel), also on the row kernel ``_softmax.family_rows``."""
    if request.param == "row_kernel":
        try:
            from softmaxkit._kernels import _narrow
        except ImportError:  # no narrow-row kernel: the row kernel serves all
            return request.param
        monkeypatch.setattr(_narrow, "NARROW_MAX", 0)
    return request.param


def _exact(x, kind):
    n = int(np.prod(x.shape[:-1], dtype=np.int64))
    xl = x.reshape(n, x.shape[-1]).astype(np.longdouble)
    if kind == "logsumexp":
        return _lse_impl(xl, (1,), None)[:, 0].reshape(x.shape[:-1])
    return _softmax_impl(xl, (1,), None, kind == "log_softmax").reshape(x.shape)


def _ulps(got, exact, dt, scale=None):
    ref = np.abs(exact) if scale is None else np.maximum(np.abs(exact), scale)
    sp = np.spacing(ref.astype(dt)).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - exact) / sp


def _check_accuracy(x, dt):
    """Kernel results within the stated ulps of the exact values."""
    x = x.astype(dt)
    for idx, (kind, fn) in enumerate([("softmax", K.softmax), ("log_softmax", K.log_softmax),
                                      ("logsumexp", K.logsumexp)]):
        got = fn(x)
        assert got.dtype == dt
        exact = _exact(x, kind)
        assert got.shape == exact.shape
        if got.size == 0:
            continue
        scale = None
        if kind == "logsumexp":
            scale = np.abs(np.max(x, axis=-1)).astype(np.longdouble)
        err = _ulps(got, exact, dt, scale)
        assert float(err.max()) <= ULP[dt][idx], (kind, float(err.max()))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_exact_values(dt, shape, kernel_path):
    rng = np.random.default_rng(sum(shape))
    _check_accuracy(rng.standard_normal(shape) * 4, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_kernels_hard_inputs(dt, kernel_path):
    """Large magnitudes, ties at the max, both signs (x - max rounded), tiny rest."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 33)) * 30
    x[0] = 1e4 + rng.standard_normal(33)  # large offset
    x[1, :5] = x[1].max() + 1.0  # several maximal entries
    x[2] = [0.0] + [-60.0] * 32  # rest ~ 1e-26: log_softmax of the max is tiny
    x[3] = -1e4 + rng.standard_normal(33)
    x[4] = rng.uniform(-1e-3, 1e-3, 33)
    _check_accuracy(x, dt)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp"])
def test_float32_kernels_equal_reference(kind, monkeypatch, kernel_path):
    """float32: the kernel and the reference both round the (nearly) exact
    value once, so they agree bitwise except on near-ties, where they are
    adjacent float32 numbers."""
    rng = np.random.default_rng(17)
    for k in (257, 10):
        x = (rng.standard_normal((3000 // k * 10, k)) * 6).astype(np.float32)
        x[0] = 1e4 + rng.standard_normal(k).astype(np.float32)
        x[1, ::2] = -np.inf
        got = getattr(K, kind)(x)
        monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numpy")
        ref = (_lse_impl(x, (1,), None)[:, 0] if kind == "logsumexp"
               else _softmax_impl(x, (1,), None, kind == "log_softmax"))
        monkeypatch.delenv("SOFTMAXKIT_BACKEND")
        assert ref.dtype == got.dtype == np.float32
        differ = got != ref
        assert np.count_nonzero(differ) <= 1e-3 * got.size
        np.testing.assert_array_equal(np.nextafter(ref[differ], got[differ]), got[differ])


@pytest.mark.parametrize("dt", DTYPES)
def test_log_softmax_near_zero_keeps_precision(dt, numba_backend):
    x = np.array([0.0, -40.0 if dt == np.float64 else -20.0], dtype=dt)
    got = smk.log_softmax(x)[0]
    exact = -np.exp(np.longdouble(x[1]))  # log(1/(1+e)) = -log1p(e) ~ -e
    assert got != 0
    assert abs(got - exact) <= 2 * np.spacing(dt(abs(exact)))


@pytest.mark.parametrize("dt", DTYPES)
def test_empty_shapes(dt):
    for shape in [(0, 4), (4, 0), (0, 0), (2, 0, 3)]:
        x = np.zeros(shape, dtype=dt)
        np.testing.assert_array_equal(K.softmax(x), _exact(x, "softmax").astype(dt))
        assert K.softmax(x).shape == shape
        lse = K.logsumexp(x)
        assert lse.shape == shape[:-1]
        if shape[-1] == 0:
            assert np.all(lse == -np.inf)


def _edge_rows(dt):
    inf, nan = np.inf, np.nan
    return np.array([
        [1.0, -inf, 2.0, -inf],  # some -inf
        [1.0, inf, 2.0, -inf],  # one +inf
        [inf, inf, 2.0, -inf],  # two +inf share the mass
        [inf, inf, inf, inf],
        [-inf, -inf, -inf, -inf],  # undefined: NaN / lse -inf
        [1.0, nan, 2.0, 3.0],  # NaN: whole row NaN
        [nan, inf, -inf, 0.0],
        [-inf, 5.0, -inf, -inf],
    ], dtype=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "logsumexp"])
def test_edge_case_table_exact(dt, kind, monkeypatch, kernel_path):
    x = _edge_rows(dt)
    fn = getattr(K, kind)
    ref = (_lse_impl(x, (1,), None)[:, 0] if kind == "logsumexp"
           else _softmax_impl(x, (1,), None, kind == "log_softmax"))
    _assert_edge_equal(fn(x), ref, dt)
    # the same rows inside a wide row (columns split over threads)
    monkeypatch.setattr(K, "n_threads", lambda: 3)
    monkeypatch.setattr(K, "_MIN_WIDE", 8)
    for r in range(x.shape[0]):
        wide = np.concatenate([x[r:r + 1]] + [np.full((1, 16), -np.inf, dt)], axis=1)
        ref_w = (_lse_impl(wide, (1,), None)[:, 0] if kind == "logsumexp"
                 else _softmax_impl(wide, (1,), None, kind == "log_softmax"))
        _assert_edge_equal(fn(wide), ref_w, dt)


def _assert_edge_equal(got, ref, dt):
    """Non-finite results and exact values (0, 1/count, -log(count)) equal;
    the finite values of ordinary rows within a few ulp."""
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    np.testing.assert_array_equal(got[~np.isfinite(ref)], ref[~np.isfinite(ref)])
    np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(dt).eps, atol=0)


@pytest.mark.parametrize("dt", DTYPES)
def test_wide_rows_split_over_threads(dt, monkeypatch):
    """Fewer rows than threads: columns in blocks on the pool, same values."""
    monkeypatch.setattr(K, "n_threads", lambda: 4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 40000)) * 5
    x[1, 123] = x[1].max() + 2  # a clear max in one block
    _check_accuracy(x, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_non_contiguous_and_readonly_input(dt, numba_backend):
    rng = np.random.default_rng(7)
    base = (rng.standard_normal((30, 40)) * 3).astype(dt)
    for x in (base.T, base[::2, ::3], base[:, 5:25]):
        assert not x.flags.c_contiguous
        for fn in (smk.softmax, smk.log_softmax, smk.logsumexp):
            np.testing.assert_array_equal(fn(x), fn(np.ascontiguousarray(x)))
    ro = base.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(smk.softmax(ro), smk.softmax(base))


def test_public_api_routes_through_kernels(monkeypatch):
    """With SOFTMAXKIT_BACKEND=numba the public functions use the kernels
    (other axes, masks and float16 keep their reference semantics)."""
    calls = []
    real = K.get

    def spy(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(K, "get", spy)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    x = np.random.default_rng(0).standard_normal((6, 5))
    smk.softmax(x)
    smk.log_softmax(x, temperature=0.5)
    smk.logsumexp(x)
    assert calls == ["softmax", "log_softmax", "logsumexp"]
    h = x.astype(np.float16)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numpy")
    ref16 = smk.softmax(h)
    ref_ax0 = smk.softmax(x, axis=0)
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", "numba")
    got16 = smk.softmax(h)
    assert got16.dtype == np.float16
    np.testing.assert_allclose(got16.astype(np.float32), ref16.astype(np.float32), rtol=1e-3)
    np.testing.assert_allclose(smk.softmax(x, axis=0), ref_ax0, rtol=1e-14)


finite_or_not = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -0.0]),
)


@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                 elements=finite_or_not),
    f32=st.booleans(),
)
def test_kernels_agree_with_reference_property(x, f32):
    """Any mix of finite, infinite and NaN entries: the same non-finite pattern
    as the reference and the same values within the stated ulps."""
    dt = np.float32 if f32 else np.float64
    x = x.astype(dt)
    for kind in ("softmax", "log_softmax", "logsumexp"):
        got = getattr(K, kind)(x)
        ref = (_lse_impl(x, (1,), None)[:, 0] if kind == "logsumexp"
               else _softmax_impl(x, (1,), None, kind == "log_softmax"))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
        fin = np.isfinite(ref)
        with np.errstate(invalid="ignore"):
            tol = 16 * np.finfo(dt).eps * np.maximum(np.abs(ref), 1.0)
            diff = np.abs(got - ref)
        assert np.all(diff[fin] <= tol[fin])
