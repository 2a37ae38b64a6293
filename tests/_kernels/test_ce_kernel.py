"""The compiled cross-entropy row kernel vs ``_ce_rows`` (contract 1) and PyTorch."""

import itertools

import numpy as np
import pytest

pytest.importorskip("numba")
import softmaxkit as smk
import softmaxkit._kernels as K
from softmaxkit.losses._cross_entropy import _ce_rows

DTYPES = [np.float32, np.float64]
# the kernel sums in float64; the reference in the working dtype
TOL = {np.float32: dict(rtol=2e-6, atol=2e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def _problem(dt, nonfinite, n=40, k=7, seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * 3).astype(dt)
    y = rng.integers(0, k, n).astype(np.intp)
    y[[3, 11]] = -100  # ignored when ignore_index=-100
    P = rng.dirichlet(np.ones(k), n).astype(dt)
    P[5] = 0
    P[5, 2] = 1  # a one-hot row: 0 * log 0 terms
    w = rng.uniform(0.2, 2.0, k).astype(dt)
    w[4] = 0  # a zero class weight
    if nonfinite:
        z[0, 3] = np.inf
        z[1, :] = -np.inf
        z[2, 4] = np.nan
        z[4, [1, 5]] = np.inf
        z[6, 2] = -np.inf
        y[6] = 2  # label on a -inf logit: +inf loss
        z[7, :3] = -np.inf
        z[8, 4] = -np.inf  # -inf on the zero-weight class
        P[9] = 0
        P[9, 0] = 1
        z[9, 1] = -np.inf  # 0 * log 0 with a -inf logit
    return z, y, P, w


def _assert_same(ref, got, dt):
    for a, b, name in zip(ref, got, ("loss", "wsum", "grad"), strict=True):
        if a is None:
            assert b is None
            continue
        assert b.dtype == a.dtype == dt, name
        assert b.shape == a.shape, name
        np.testing.assert_array_equal(np.isnan(b), np.isnan(a), err_msg=name)
        np.testing.assert_array_equal(np.isinf(b), np.isinf(a), err_msg=name)
        fin = np.isfinite(a)
        np.testing.assert_allclose(b[fin], a[fin], err_msg=name, **TOL[dt])
        np.testing.assert_array_equal(b[~fin], a[~fin], err_msg=name)


CASES = list(itertools.product(
    DTYPES, [False, True], ["labels", "probs"], [False, True], [None, -100],
    [0.0, 0.1, 1.0], [True, False]))


@pytest.mark.parametrize("dt,nonfinite,kind,weighted,ignore,eps,need_grad", [
    c for c in CASES
    if not (c[2] == "probs" and c[4] is not None)  # ignore_index: labels only
    # the reference computes (1 - eps) * (-w_y log q_y) = 0 * inf = NaN at
    # eps = 1 with a -inf log-probability; the kernel drops the zero term
    and not (c[1] and c[5] == 1.0)
])
def test_kernel_equals_reference_rows(dt, nonfinite, kind, weighted, ignore, eps, need_grad):
    z, y, P, w = _problem(dt, nonfinite)
    if ignore is None:
        y = np.abs(y) % z.shape[1]
    target = y if kind == "labels" else P
    weight = w if weighted else None
    ref = _ce_rows(z, target, weight, ignore, eps, need_grad)
    got = K.cross_entropy(z, target, weight, ignore, eps, need_grad)
    _assert_same(ref, got, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_kernel_label_smoothing_full_with_infinite_logits(dt):
    """eps = 1 with -inf logits: the label term has coefficient 0; the kernel
    gives the exact smoothing term (+inf where a class of non-zero weight has
    a -inf logit, finite where it has zero weight)."""
    z = np.array([[0.0, 1.0, -np.inf], [0.0, 1.0, -np.inf]], dtype=dt)
    y = np.array([2, 0], dtype=np.intp)
    loss, _, grad = K.cross_entropy(z, y, np.array([1.0, 1.0, 0.0], dt), None, 1.0, True)
    # -(1/3) (log q0 + log q1) with the -inf class weighted 0
    lq = np.log(np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum())
    np.testing.assert_allclose(loss, [-lq.sum() / 3] * 2, rtol=1e-6)
    assert np.isfinite(grad).all()
    loss2, _, _ = K.cross_entropy(z, y, None, None, 1.0, False)
    assert np.all(loss2 == np.inf)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (0, 5), (2, 3000), (300, 40)])
def test_kernel_shapes(dt, shape):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * 2).astype(dt)
    y = rng.integers(0, shape[1], shape[0]).astype(np.intp)
    _assert_same(_ce_rows(z, y), K.cross_entropy(z, y), dt)
    P = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dt)
    _assert_same(_ce_rows(z, P, None, None, 0.2), K.cross_entropy(z, P, None, None, 0.2), dt)
    zt = np.asfortranarray(z)  # non-contiguous input is accepted
    _assert_same(_ce_rows(z, y), K.cross_entropy(zt, y), dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_kernel_vs_torch(dt, kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, y, P, w = _problem(dt, False, n=64, k=11, seed=4)
    y = np.abs(y) % 11
    y[[2, 9]] = -100
    target = y if kind == "labels" else P
    ign = -100 if kind == "labels" else None
    loss, wsum, grad = K.cross_entropy(z, target, w, ign, 0.15, True)
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    tt = torch.tensor(target if kind == "labels" else target.astype(np.float64))
    kw = dict(weight=torch.tensor(w.astype(np.float64)), label_smoothing=0.15, reduction="none")
    if ign is not None:
        kw["ignore_index"] = ign
    lt = F.cross_entropy(zt, tt, **kw)
    lt.sum().backward()
    tol = TOL[dt] if dt == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, lt.detach().numpy(), **tol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), **tol)
    if kind == "labels":
        np.testing.assert_allclose(wsum, np.where(y == -100, 0, w[np.abs(y) % 11]), rtol=0)


def test_public_cross_entropy_uses_kernel(backend):
    """cross_entropy_and_grad agrees on both paths of the dispatcher."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((50, 9)).astype(np.float32)
    y = rng.integers(0, 9, 50)
    loss, grad = smk.cross_entropy_and_grad(z, y, label_smoothing=0.05, reduction="mean")
    torch = pytest.importorskip("torch")
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y), label_smoothing=0.05)
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("nonfinite", [False, True])
def test_kernel_gradient_written_over_the_logits(dt, kind, nonfinite):
    """overwrite_z=True (used by linear_cross_entropy) gives the same values
    (to the last bits) with the gradient stored in the logits' own memory."""
    z, y, P, w = _problem(dt, nonfinite)
    target = y if kind == "labels" else P
    ign = -100 if kind == "labels" else None
    ref = K.cross_entropy(z, target, w, ign, 0.1, True)
    zc = z.copy()
    got = K.cross_entropy(zc, target, w, ign, 0.1, True, overwrite_z=True)
    assert got[2] is zc
    # equal up to the summation order (aliasing changes LLVM's vectorisation)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        eps = np.finfo(dt).eps
        np.testing.assert_allclose(a, b, rtol=8 * eps, atol=8 * eps)


# --------------------------------------------------------------------------
# float32 accuracy: the kernel evaluates in float64 and rounds once
# --------------------------------------------------------------------------
F32_ULP = 0.501  # max error of loss and gradient entries, ulps (see below)


@pytest.fixture(params=["dispatch", "row_kernel"])
def kernel_path(request, monkeypatch):
    """Run a test on the kernel as dispatched and, for rows of at most
    ``_narrow.NARROW_MAX`` classes (which the dispatcher may send to a
    narrow-row kernel), also on the row kernel ``ce_labels``/``ce_probs``."""
    if request.param == "row_kernel":
        try:
            from softmaxkit._kernels import _narrow
        except ImportError:  # no narrow-row kernel: the row kernel serves all
            return request.param
        monkeypatch.setattr(_narrow, "NARROW_MAX", 0)
    return request.param


def _coefficients(z, target, weight, ignore, eps):
    """``a_ij``: the loss is ``-sum_j a_ij log_softmax(z_i)_j`` (float64)."""
    n, k = z.shape
    w = np.ones(k) if weight is None else weight.astype(np.float64)
    if target.ndim == 2:
        return w[None, :] * ((1 - eps) * target.astype(np.float64) + eps / k)
    A = np.broadcast_to(w * (eps / k), (n, k)).copy()
    valid = np.ones(n, bool) if ignore is None else target != ignore
    rows = np.flatnonzero(valid)
    A[rows, target[rows]] += (1 - eps) * w[target[rows]]
    A[~valid] = 0
    return A


def _f32_errors(z, target, weight, ignore, eps):
    """Max ulps of the float32 kernel's loss and gradient against ``_ce_rows``
    evaluated in long double (x87 extended where available; float64 else).
    Gradient entries ``C softmax_j - a_j`` cancel where the two terms are
    close, and there even the exact float64 evaluation has an error of
    2**-53 a_j: they are measured in ulps of ``max(|g_j|, a_j)``."""
    wide = np.longdouble
    tl = target if target.ndim == 1 else target.astype(wide)
    wl = None if weight is None else weight.astype(wide)
    ex_loss, _, ex_grad = _ce_rows(z.astype(wide), tl, wl, ignore, eps, True)
    loss, _, grad = K.cross_entropy(z, target, weight, ignore, eps, True)
    assert loss.dtype == grad.dtype == np.float32
    sp = np.spacing(np.abs(ex_loss).astype(np.float32)).astype(wide)
    e_loss = np.abs(loss.astype(wide) - ex_loss) / sp
    A = _coefficients(z, target, weight, ignore, eps).astype(wide)
    scale = np.maximum(np.abs(ex_grad), A)
    sp = np.spacing(scale.astype(np.float32)).astype(wide)
    e_grad = np.abs(grad.astype(wide) - ex_grad) / sp
    return float(e_loss.max()), float(e_grad.max())


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("eps,weighted", [(0.0, False), (0.1, True), (1.0, False)])
@pytest.mark.parametrize("shape,scale", [((2000, 12), 4.0), ((60, 700), 8.0),
                                          ((300, 33), 30.0)])
def test_kernel_float32_within_half_ulp(kind, eps, weighted, shape, scale, kernel_path):
    """Loss and gradient entries are the exact values rounded once to float32
    (within 0.501 ulp), like the reference evaluated in float64 and rounded."""
    n, k = shape
    rng = np.random.default_rng(n + k)
    z = (rng.standard_normal(shape) * scale).astype(np.float32)
    z[0] = 1e4 + rng.standard_normal(k).astype(np.float32)  # large offset
    z[1, : min(3, k)] = z[1].max() + 1  # tied maxima
    z[2, 1:] = -60.0  # p_max within 1e-26 of 1: the label entry cancels
    z[2, 0] = 0.0
    y = rng.integers(0, k, n).astype(np.intp)
    y[2] = 0
    y[5] = -100
    w = rng.uniform(0.2, 2.0, k).astype(np.float32) if weighted else None
    if kind == "labels":
        target, ign = y, -100
    else:
        target = rng.dirichlet(np.full(k, 0.3), n).astype(np.float32)
        ign = None
    e_loss, e_grad = _f32_errors(z, target, w, ign, eps)
    assert e_loss <= F32_ULP, e_loss
    assert e_grad <= F32_ULP, e_grad


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_kernel_float32_gradient_written_over_the_logits_accuracy(kind):
    """The in-place variant (linear_cross_entropy) is as accurate, and its
    values equal the out-of-place kernel's bitwise."""
    rng = np.random.default_rng(21)
    z = (rng.standard_normal((64, 300)) * 5).astype(np.float32)
    y = rng.integers(0, 300, 64).astype(np.intp)
    target = y if kind == "labels" else rng.dirichlet(np.ones(300), 64).astype(np.float32)
    ref = K.cross_entropy(z, target, None, None, 0.05, True)
    zc = z.copy()
    got = K.cross_entropy(zc, target, None, None, 0.05, True, overwrite_z=True)
    assert got[2] is zc
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[2], ref[2])
    wide = np.longdouble
    tl = target if kind == "labels" else target.astype(wide)
    _, _, ex = _ce_rows(z.astype(wide), tl, None, None, 0.05, True)
    A = _coefficients(z, target, None, None, 0.05).astype(wide)
    sp = np.spacing(np.maximum(np.abs(ex), A).astype(np.float32)).astype(wide)
    assert float((np.abs(got[2].astype(wide) - ex) / sp).max()) <= F32_ULP


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_kernel_float32_equals_reference_in_float64_rounded(kind, kernel_path):
    """The float32 kernel equals the reference evaluated in float64 and
    rounded to float32 (``_ce_rows`` on float64 logits), bitwise except on
    near-ties (at most 1e-3 of the entries), where they are adjacent."""
    rng = np.random.default_rng(8)
    n, k = 500, 40
    z = (rng.standard_normal((n, k)) * 4).astype(np.float32)
    w = rng.uniform(0.5, 2.0, k).astype(np.float32)
    if kind == "labels":
        target = rng.integers(0, k, n).astype(np.intp)
        t64 = target
    else:
        target = rng.dirichlet(np.ones(k), n).astype(np.float32)
        t64 = target.astype(np.float64)
    got = K.cross_entropy(z, target, w, None, 0.1, True)
    ref = _ce_rows(z.astype(np.float64), t64, w.astype(np.float64), None, 0.1, True)
    for g, r in ((got[0], ref[0]), (got[2], ref[2])):
        r = r.astype(np.float32)
        differ = g != r
        assert np.count_nonzero(differ) <= max(1, 1e-3 * g.size)
        np.testing.assert_array_equal(np.nextafter(r[differ], g[differ]), g[differ])
