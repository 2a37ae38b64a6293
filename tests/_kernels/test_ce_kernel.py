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
