"""The narrow-row kernels (several rows per SIMD vector) vs mpmath and the
NumPy reference.

Rows of at most ``NARROW_MAX`` entries go through ``_narrow.narrow_rows``.
Accuracy is measured against mpmath (40 digits) in units of the spacing of
the result's dtype (logsumexp: of max(|result|, |max(x)|), as in
test_softmax_kernels.py):

- float32 input is evaluated in float64 and rounded once: within 0.5 ulp
  (plus 2**-20 for the float64 evaluation), like the reference;
- float64: softmax <= 4 ulp, log_softmax <= 3, logsumexp <= 2.5 (measured
  at most 3.6 / 2.3 / 2.2 by ``benchmarks/bench_narrow_rows.py --accuracy``;
  the row kernels 3.9 / 2.7 / 2.6 on the same input).

The cross-entropy with integer labels (``ce_labels_narrow``) is checked
against the NumPy reference ``_ce_rows`` and PyTorch.
"""

import math
import os

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("numba")
import softmaxkit as smk
import softmaxkit._kernels as K
from softmaxkit._kernels import _narrow
from softmaxkit.special._softmax import _lse_impl, _softmax_impl

DTYPES = [np.float32, np.float64]
KINDS = ["softmax", "log_softmax", "logsumexp"]
ULP = {  # (softmax, log_softmax, logsumexp)
    np.float32: (0.5 + 2**-20,) * 3,
    np.float64: (4.0, 3.0, 2.5),
}
NMAX = _narrow.NARROW_MAX
TILE = _narrow.TILE


# --------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------
def _mp_exact(x):
    """softmax, log_softmax, logsumexp of each row of the 2-D ``x`` by
    mpmath at 40 digits (finite max per row; -inf entries allowed), from
    ``rest = sum exp(x - max) - 1`` (summed without the 1, so a rest of
    1e-300 keeps its digits) as ``exp(x - max) / (1 + rest)``, ``(x - max) -
    log1p(rest)`` and ``max + log1p(rest)``."""
    sm, lsm, lse = [], [], []
    with mpmath.workdps(40):
        for row in x:
            v = [mpmath.mpf(float(a)) for a in row]
            m = max(v)
            rest = mpmath.fsum(mpmath.exp(a - m) for a in v if a != m)
            rest += sum(1 for a in v if a == m) - 1
            lp = mpmath.log1p(rest)
            lse.append(m + lp)
            lsm.append([(a - m) - lp for a in v])
            sm.append([mpmath.exp(a - m) / (1 + rest) for a in v])
    return sm, lsm, lse


def _ulps(got, exact, dt, scale=None):
    """|got - exact| in units of the spacing of ``exact`` (or of ``scale``
    where larger) rounded to ``dt``; 0 where both are the same infinity."""
    got = np.ravel(got)
    exact = list(np.ravel(np.array(exact, dtype=object)))
    scale = [None] * len(exact) if scale is None else list(np.ravel(scale))
    tiny = mpmath.mpf(float(np.finfo(dt).smallest_subnormal))
    errs = []
    for g, e, s in zip(got, exact, scale, strict=True):
        if mpmath.isinf(e):
            errs.append(0.0 if float(g) == float(e) else np.inf)
            continue
        ref = abs(e) if s is None else max(abs(e), abs(mpmath.mpf(float(s))))
        sp = max(mpmath.mpf(float(np.spacing(np.array(float(ref)).astype(dt)))), tiny)
        errs.append(float(abs(mpmath.mpf(float(g)) - e) / sp))
    return np.array(errs)


def _reference(x, kind):
    """The NumPy reference (``SOFTMAXKIT_BACKEND=numpy``: never a kernel)."""
    old = os.environ.get("SOFTMAXKIT_BACKEND")
    os.environ["SOFTMAXKIT_BACKEND"] = "numpy"
    try:
        if kind == "logsumexp":
            return _lse_impl(x, (1,), None)[:, 0]
        return _softmax_impl(x, (1,), None, kind == "log_softmax")
    finally:
        if old is None:
            del os.environ["SOFTMAXKIT_BACKEND"]
        else:
            os.environ["SOFTMAXKIT_BACKEND"] = old


def _hard_rows(width, dt, rng):
    """``TILE + 13`` rows (a full tile and a partial one) of ordinary and
    hard finite-max rows of the given width."""
    n = TILE + 13
    x = rng.standard_normal((n, width)) * 4
    x[::7] *= 30  # many exp underflow to 0 or to float32 subnormals
    x[1::11] += 1e3  # large max: x - max rounds in float64 (the TwoSum correction)
    x[3] = 1e4 + rng.standard_normal(width)  # large offset
    x[4] = -1e4 + rng.standard_normal(width)
    x[5, : max(1, width // 2)] = x[5].max() + 1.0  # ties at the max
    x[6] = -60.0 if dt == np.float64 else -20.0  # rest tiny: log_softmax(max) ~ -rest
    x[6, 0] = 0.0  # ... and logsumexp ~ rest, max 0
    x[7] = rng.uniform(-1e-3, 1e-3, width)
    x[8, 1:] = -np.inf  # one finite entry
    x[TILE - 1, 1::2] = -np.inf  # the last lane of the first tile
    x[-1] = -3.0 - np.arange(width) * 0.1  # max < 0: logsumexp cancels (redone)
    return x.astype(dt)


# --------------------------------------------------------------------------
# the vectorised log1p
# --------------------------------------------------------------------------
def test_log1p_parts_vs_mpmath():
    """log1p(h + l) for the kernels' rest = h + l (h a multiple of 2**-40 in
    [0, 2**13), 0 <= l < 64 * 2**-40): within 1 ulp, exact at 0."""
    rng = np.random.default_rng(0)
    n = 1500
    ints = np.concatenate([
        np.exp(rng.uniform(0, math.log(2.0**53), n)).astype(np.int64),  # log-uniform
        rng.integers(0, 2**41, 200),  # [0, 2)
        np.array([0, 1, 2, 2**40 - 1, 2**40, 2**40 + 1, 2**41, 2**52 - 1]),
        # u = 1 + h next to sqrt(2) 2**k, where the reduction u = 2**k z switches k
        (np.array([[(math.sqrt(2) * 2.0**k - 1) * 2.0**40] for k in range(13)]).astype(np.int64)
         + np.array([-1, 0, 1])).ravel(),
    ])
    h = ints.astype(np.float64) * 2.0**-40
    h = h[h < 2.0**13]
    scale = rng.choice([0.0, 1e-300, 1e-20, 2.0**-40, 64 * 2.0**-40], h.size)
    l = rng.random(h.size) * scale
    h, l = np.append(h, 0.0), np.append(l, 0.0)  # rest = 0: a row of one max
    out = np.empty_like(h)
    _narrow.log1p_array(h, l, out)
    assert out[-1] == 0.0
    with mpmath.workdps(40):
        exact = [mpmath.log1p(mpmath.mpf(float(a)) + mpmath.mpf(float(b))) for a, b in zip(h, l,
                                                                                          strict=True)]
    err = _ulps(out, exact, np.float64)
    assert err.max() <= 1.0, (float(err.max()), h[np.argmax(err)], l[np.argmax(err)])


# --------------------------------------------------------------------------
# accuracy against mpmath
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("width", [1, 2, 3, 10, 33, NMAX])
def test_narrow_vs_mpmath(dt, width):
    x = _hard_rows(width, dt, np.random.default_rng(width))
    sm, lsm, lse = _mp_exact(x)
    got = [K.softmax(x), K.log_softmax(x), K.logsumexp(x)]
    for idx, (g, exact) in enumerate(zip(got, (sm, lsm, lse), strict=True)):
        assert g.dtype == dt
        scale = np.max(x, axis=1) if idx == 2 else None
        err = _ulps(g, exact, dt, scale)
        assert err.max() <= ULP[dt][idx], (KINDS[idx], float(err.max()), np.argmax(err))


@pytest.mark.parametrize("dt", DTYPES)
def test_public_api_both_backends_vs_mpmath(dt, backend):
    """The public functions on narrow, non-contiguous input: the NumPy
    reference and the dispatched kernel within the same bounds of the exact
    values."""
    base = _hard_rows(2 * 10, dt, np.random.default_rng(9))
    x = base[:, ::2]  # 10-wide, not contiguous
    assert not x.flags.c_contiguous
    sm, lsm, lse = _mp_exact(x)
    for idx, (fn, exact) in enumerate(zip((smk.softmax, smk.log_softmax, smk.logsumexp),
                                          (sm, lsm, lse), strict=True)):
        got = fn(x)
        assert got.dtype == dt
        scale = np.max(x, axis=1) if idx == 2 else None
        err = _ulps(got, exact, dt, scale)
        assert err.max() <= ULP[dt][idx], (backend, KINDS[idx], float(err.max()))


# --------------------------------------------------------------------------
# edge cases and the NumPy reference
# --------------------------------------------------------------------------
def _edge_rows(width, dt):
    inf, nan = np.inf, np.nan
    rows = []
    for special in ([nan], [inf], [inf, inf], [-inf], [nan, inf, -inf], [inf] * width,
                    [-inf] * width, [nan] * width):
        r = np.linspace(-2.0, 2.0, width)
        r[: len(special)] = special[:width]
        rows.append(r)
    return np.array(rows, dtype=dt)


def _assert_matches_reference(got, ref, dt, scale=None):
    """Same NaN / +inf / -inf pattern and the same non-finite values; finite
    values within the sum of both errors (float32: 1 ulp, float64: 8)."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    fin = np.isfinite(ref)
    size = np.abs(ref) if scale is None else np.maximum(np.abs(ref), np.abs(scale))
    with np.errstate(invalid="ignore", over="ignore"):
        ulps = 1.0 if dt == np.float32 else 8.0
        tol = ulps * np.spacing(size.astype(dt)) + np.finfo(dt).smallest_subnormal
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    assert np.all(diff[fin] <= tol[fin]), float(np.max((diff - tol)[fin]))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("width", [1, 4, 10, NMAX])
@pytest.mark.parametrize("kind", KINDS)
def test_edge_rows_inside_tiles(dt, width, kind):
    """NaN rows, +inf ties, all -inf rows at the first and last lanes of a
    tile and in the partial last tile: exactly the edge-case table."""
    rng = np.random.default_rng(width)
    n = 2 * TILE + 21
    x = (rng.standard_normal((n, width)) * 5).astype(dt)
    edge = _edge_rows(width, dt)
    pos = [0, 1, TILE - 1, TILE, 2 * TILE - 1, 2 * TILE, n - 1, n - 5]
    for p, row in zip(pos, edge, strict=True):
        x[p] = row
    got = getattr(K, kind)(x)
    ref = _reference(x, kind)
    scale = np.max(x, axis=1) if kind == "logsumexp" else None
    _assert_matches_reference(got, ref, dt, scale)
    # the exact values of the table: 0, 1/count, -log(count), NaN rows
    if kind != "logsumexp":
        special = ~np.isfinite(np.max(x, axis=1))
        np.testing.assert_array_equal(got[special], ref[special])


finite_or_not = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -0.0, -np.inf, -np.inf]),
)


@given(
    data=st.data(),
    width=st.integers(1, NMAX + 1),
    n=st.integers(1, 2 * TILE + 7),
    f32=st.booleans(),
)
def test_narrow_agrees_with_reference_property(data, width, n, f32):
    """Widths 1..NARROW_MAX + 1 (the last one: the row kernel), row counts
    that are not multiples of the tile, any mix of finite, infinite and NaN
    entries and whole special rows: the reference's results."""
    dt = np.float32 if f32 else np.float64
    x = data.draw(hnp.arrays(np.float64, (n, width), elements=finite_or_not))
    special = data.draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), max_size=4))
    for v in special:
        x[data.draw(st.integers(0, n - 1))] = v
    x = x.astype(dt)
    for kind in KINDS:
        got = getattr(K, kind)(x)
        assert got.dtype == dt
        scale = np.max(x, axis=1) if kind == "logsumexp" else None
        _assert_matches_reference(got, _reference(x, kind), dt, scale)


# --------------------------------------------------------------------------
# dispatch, threads, tiling
# --------------------------------------------------------------------------
def test_dispatch_uses_narrow_kernel_up_to_threshold(monkeypatch):
    calls = []
    real = _narrow.narrow_rows

    def spy(*args):
        calls.append(args[0].shape[1])
        return real(*args)

    monkeypatch.setattr(_narrow, "narrow_rows", spy)
    for width in (1, 10, NMAX, NMAX + 1, 300):
        x = np.random.default_rng(width).standard_normal((3, width))
        K.softmax(x)
        K.logsumexp(x.astype(np.float32))
    assert sorted(set(calls)) == [1, 10, NMAX]
    K.softmax(np.zeros((4, 0)))  # empty rows: the row kernel
    assert 0 not in calls


@pytest.mark.parametrize("dt", DTYPES)
def test_rows_independent_of_tiles_and_threads(dt, monkeypatch):
    """One row per lane: a row's result does not depend on its tile, its
    lane or the split of the rows over threads (bitwise)."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3 * TILE + 17, 10)) * 6).astype(dt)
    x[5, 3] = np.nan
    x[77, 2:4] = np.inf
    monkeypatch.setattr(K, "n_threads", lambda: 1)
    one = [getattr(K, kind)(x) for kind in KINDS]
    monkeypatch.setattr(K, "n_threads", lambda: 3)
    monkeypatch.setattr(K, "_MIN_PARALLEL", 1)
    three = [getattr(K, kind)(x) for kind in KINDS]
    shifted = [getattr(K, kind)(x[7:]) for kind in KINDS]  # other lanes and tiles
    for a, b, c in zip(one, three, shifted, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[7:], c)
    for i in (0, 5, 77, len(x) - 1):  # a row alone in a padded tile
        for kind, a in zip(KINDS, one, strict=True):
            np.testing.assert_array_equal(getattr(K, kind)(x[i:i + 1])[0], a[i])


@pytest.mark.parametrize("dt", DTYPES)
def test_empty_and_single_entry_rows(dt):
    x = np.zeros((0, 10), dtype=dt)
    assert K.softmax(x).shape == (0, 10)
    assert K.logsumexp(x).shape == (0,)
    x = np.array([[3.0], [-np.inf], [np.inf], [np.nan], [-1e30]], dtype=dt)
    np.testing.assert_array_equal(K.softmax(x)[:, 0], [1.0, np.nan, 1.0, np.nan, 1.0])
    np.testing.assert_array_equal(K.log_softmax(x)[:, 0], [0.0, np.nan, 0.0, np.nan, 0.0])
    np.testing.assert_array_equal(K.logsumexp(x), x[:, 0])


# --------------------------------------------------------------------------
# cross-entropy with integer labels
# --------------------------------------------------------------------------
CE_TOL = {np.float32: dict(rtol=2e-6, atol=2e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def _ce_problem(width, dt, seed):
    """Logits with non-finite rows at the first and last lanes of a tile and
    in the partial last tile, labels with ignored rows, class weights."""
    rng = np.random.default_rng(seed)
    n = 2 * TILE + 21
    z = (rng.standard_normal((n, width)) * 4).astype(dt)
    y = rng.integers(0, width, n).astype(np.intp)
    inf, nan = np.inf, np.nan
    z[0, 0] = inf  # +inf at the label or not
    z[TILE - 1, :] = -inf
    z[TILE, -1] = nan
    z[2 * TILE, 0] = -inf  # a -inf logit: +inf loss where it is the label
    y[2 * TILE] = 0
    z[n - 1, :] = inf
    y[[3, TILE + 1, n - 2]] = -100
    w = rng.uniform(0.2, 2.0, width).astype(dt)
    w[0] = 0.0  # a zero class weight
    return z, y, w


def _ce_reference(z, y, w, ign, eps, need_grad):
    from softmaxkit.losses._cross_entropy import _ce_rows

    old = os.environ.get("SOFTMAXKIT_BACKEND")
    os.environ["SOFTMAXKIT_BACKEND"] = "numpy"
    try:
        return _ce_rows(z, y, w, ign, eps, need_grad)
    finally:
        if old is None:
            del os.environ["SOFTMAXKIT_BACKEND"]
        else:
            os.environ["SOFTMAXKIT_BACKEND"] = old


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("width", [1, 2, 5, NMAX, NMAX + 1])
@pytest.mark.parametrize("weighted,eps,need_grad", [(False, 0.0, True), (True, 0.1, True),
                                                    (True, 0.9, False), (False, 0.3, True)])
def test_ce_labels_narrow_vs_reference(dt, width, weighted, eps, need_grad):
    z, y, w = _ce_problem(width, dt, width)
    w = w if weighted else None
    ref = _ce_reference(z, y, w, -100, eps, need_grad)
    got = K.cross_entropy(z, y, w, -100, eps, need_grad)
    for a, b, name in zip(ref, got, ("loss", "wsum", "grad"), strict=True):
        if a is None:
            assert b is None
            continue
        assert b.dtype == dt and b.shape == a.shape, name
        for test in (np.isnan, np.isposinf, np.isneginf):
            np.testing.assert_array_equal(test(b), test(a), err_msg=name)
        fin = np.isfinite(a)
        np.testing.assert_allclose(b[fin], a[fin], err_msg=name, **CE_TOL[dt])
        np.testing.assert_array_equal(b[~fin], a[~fin], err_msg=name)
    # the gradient written over the logits: the same values
    zi = z.copy()
    got_i = K.cross_entropy(zi, y, w, -100, eps, True, overwrite_z=True)
    assert got_i[2] is zi
    np.testing.assert_array_equal(got_i[0], K.cross_entropy(z, y, w, -100, eps, True)[0])
    np.testing.assert_array_equal(zi, K.cross_entropy(z, y, w, -100, eps, True)[2])


@pytest.mark.parametrize("width", [2, 10])
def test_ce_labels_narrow_vs_torch(width):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(width)
    z = rng.standard_normal((TILE + 9, width)) * 3
    y = rng.integers(0, width, len(z)).astype(np.intp)
    y[[1, TILE]] = -100
    w = rng.uniform(0.5, 2.0, width)
    loss, wsum, grad = K.cross_entropy(z, y, w, -100, 0.05, True)
    zt = torch.tensor(z, requires_grad=True)
    lt = F.cross_entropy(zt, torch.tensor(y), weight=torch.tensor(w), ignore_index=-100,
                         label_smoothing=0.05, reduction="none")
    lt.sum().backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(wsum, np.where(y == -100, 0.0, w[y % width]))


def test_ce_dispatch_uses_narrow_kernel_up_to_threshold(monkeypatch):
    calls = []
    real = _narrow.ce_labels_narrow

    def spy(*args):
        calls.append(args[0].shape[1])
        return real(*args)

    monkeypatch.setattr(_narrow, "ce_labels_narrow", spy)
    for width in (1, 7, NMAX, NMAX + 1):
        z = np.random.default_rng(width).standard_normal((5, width))
        K.cross_entropy(z, np.zeros(5, dtype=np.intp))
        K.cross_entropy(z, np.full((5, width), 1.0 / width))  # probabilities: row kernel
    assert calls == [1, 7, NMAX]


@given(
    data=st.data(),
    width=st.integers(1, NMAX + 1),
    n=st.integers(1, TILE + 9),
    f32=st.booleans(),
    eps=st.sampled_from([0.0, 0.2]),
)
def test_ce_labels_narrow_property(data, width, n, f32, eps):
    """Any mix of finite, infinite and NaN logits, ignored rows, any width up
    to NARROW_MAX + 1: the reference's losses, weights and gradients."""
    dt = np.float32 if f32 else np.float64
    z = data.draw(hnp.arrays(np.float64, (n, width), elements=finite_or_not)).astype(dt)
    y = np.array(data.draw(st.lists(st.integers(-1, width - 1), min_size=n, max_size=n)),
                 dtype=np.intp)  # -1: ignored
    with np.errstate(all="ignore"):
        ref = _ce_reference(z, y, None, -1, eps, True)
    got = K.cross_entropy(z, y, None, -1, eps, True)
    for a, b, name in zip(ref, got, ("loss", "wsum", "grad"), strict=True):
        for test in (np.isnan, np.isposinf, np.isneginf):
            np.testing.assert_array_equal(test(b), test(a), err_msg=name)
        fin = np.isfinite(a)
        np.testing.assert_allclose(b[fin], a[fin], err_msg=name, **CE_TOL[dt])
