"""cross_entropy against torch.nn.functional.cross_entropy (values and autograd gradients).

Every combination of weight x ignore_index x label_smoothing x target kind x
reduction x dtype x layout, on both backends.  Where PyTorch is documented to
differ from softmaxkit (0 * log 0, mean over zero samples) the test asserts our
documented value.
"""

import itertools
import zlib

import numpy as np
import pytest

import softmaxkit as smk
from softmaxkit.losses._cross_entropy import _ce_rows

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}
IGNORE = 1  # a real class index: samples labelled 1 are ignored


def _torch_ce(x, target, *, weight=None, ignore_index=None, label_smoothing=0.0,
              reduction="mean", T=1.0):
    """PyTorch's loss and d(loss or loss.sum())/dx, x with classes on axis 1."""
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target)
    if tt.dtype in (torch.int32, torch.int64):
        tt = tt.long()
    kw = {}
    if weight is not None:
        kw["weight"] = torch.tensor(weight)
    if ignore_index is not None:
        kw["ignore_index"] = ignore_index
    loss = F.cross_entropy(xt / T, tt, label_smoothing=label_smoothing, reduction=reduction,
                           **kw)
    (loss.sum() if reduction == "none" else loss).backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _case(rng, shape, dtype, kind, n_ignored=True):
    """Logits of ``shape`` (classes on axis 1) and a target of ``kind``."""
    K = shape[1]
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    lab_shape = shape[:1] + shape[2:]
    if kind == "labels":
        y = rng.integers(0, K, size=lab_shape)
        y.flat[0] = 0  # at least one sample is never ignored
        return x, y
    p = rng.dirichlet(np.ones(K) * 0.7, size=lab_shape)  # (..., K)
    p = np.moveaxis(p, -1, 1).astype(dtype)
    return x, p


COMBOS = [
    c
    for c in itertools.product(
        ["labels", "probs"], [False, True], [None, IGNORE], [0.0, 0.15],
        ["mean", "sum", "none"],
    )
    if not (c[0] == "probs" and c[2] is not None)
]


@pytest.mark.parametrize("kind,use_w,ignore_index,eps,reduction", COMBOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 2, 3)], ids=["2d", "nd"])
def test_matches_torch(backend, kind, use_w, ignore_index, eps, reduction, dtype, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, use_w, ignore_index, eps, shape)).encode()))
    x, t = _case(rng, shape, dtype, kind)
    w = rng.uniform(0.2, 3.0, size=shape[1]).astype(dtype) if use_w else None
    kw = dict(weight=w, ignore_index=ignore_index, label_smoothing=eps, reduction=reduction)
    ref, ref_grad = _torch_ce(x, t, **kw)
    ours = smk.cross_entropy(x, t, axis=1, **kw)
    loss, grad = smk.cross_entropy_and_grad(x, t, axis=1, **kw)
    assert np.asarray(ours).dtype == dtype and grad.dtype == dtype
    assert np.shape(ours) == ref.shape
    np.testing.assert_allclose(ours, ref, **TOL[dtype])
    np.testing.assert_allclose(loss, ref, **TOL[dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_class_axis_last_matches_torch(backend, kind):
    """axis=-1 on (..., K) equals torch on the moved layout."""
    rng = np.random.default_rng(1)
    x, t = _case(rng, (4, 6, 3), np.float64, kind)
    xl = np.moveaxis(x, 1, -1)
    tl = t if kind == "labels" else np.moveaxis(t, 1, -1)
    ref, ref_grad = _torch_ce(x, t, label_smoothing=0.1)
    loss, grad = smk.cross_entropy_and_grad(xl, tl, label_smoothing=0.1)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    np.testing.assert_allclose(grad, np.moveaxis(ref_grad, 1, -1), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("T", [0.3, 2.5])
def test_temperature_matches_torch(backend, T):
    rng = np.random.default_rng(2)
    x, y = _case(rng, (6, 4), np.float64, "labels")
    ref, ref_grad = _torch_ce(x, y, label_smoothing=0.05, T=T)
    loss, grad = smk.cross_entropy_and_grad(x, y, temperature=T, label_smoothing=0.05)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_row_core_contract(kind, eps):
    """_ce_rows returns (torch's 'none' loss, mean denominator shares, per-row grads)."""
    rng = np.random.default_rng(3)
    x, t = _case(rng, (9, 5), np.float64, kind)
    w = rng.uniform(0.5, 2.0, size=5)
    ign = None
    if kind == "labels":
        t = t.astype(np.intp)
        t[[2, 5]] = -100
        ign = -100
    ref, ref_grad = _torch_ce(x, t, weight=w, label_smoothing=eps, reduction="none",
                              **({} if ign is None else {"ignore_index": ign}))
    loss, wsum, grad = _ce_rows(np.ascontiguousarray(x), t, w, ign, eps)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-14)
    if kind == "labels":
        expected_w = np.where(t == -100, 0.0, w[np.where(t == -100, 0, t)])
    else:
        expected_w = np.ones(9)
    np.testing.assert_array_equal(wsum, expected_w)
    # the torch "mean" is sum(loss) / sum(wsum)
    kw = {} if ign is None else {"ignore_index": ign}
    ref_mean, _ = _torch_ce(x, t, weight=w, label_smoothing=eps, **kw)
    np.testing.assert_allclose(loss.sum() / wsum.sum(), ref_mean, rtol=1e-12)
    assert _ce_rows(np.ascontiguousarray(x), t, w, ign, eps, need_grad=False)[2] is None


def test_nan_in_ignored_sample_is_dropped_like_torch(backend):
    """An ignored sample does not count, whatever its logits (PyTorch agrees)."""
    x = np.array([[0.5, 1.0, -1.0], [np.nan, 0.0, 0.0], [2.0, 0.0, 1.0]])
    y = np.array([0, -100, 2])
    for eps in (0.0, 0.1):
        ref, ref_grad = _torch_ce(x, y, ignore_index=-100, label_smoothing=eps)
        loss, grad = smk.cross_entropy_and_grad(x, y, ignore_index=-100, label_smoothing=eps)
        np.testing.assert_allclose(loss, ref, rtol=1e-12)
        keep = y != -100
        np.testing.assert_allclose(grad[keep], ref_grad[keep], rtol=1e-12)
        # torch's gradient on the ignored row is NaN (0 * NaN in log_softmax's
        # backward); the ignored sample's gradient is exactly 0 here.
        assert np.isnan(ref_grad[1]).all()
        np.testing.assert_array_equal(grad[1], 0.0)


def test_where_torch_differs_zero_times_log_zero(backend):
    """Soft target 0 at a -inf logit: torch gives NaN, softmaxkit the exact finite value."""
    x = np.array([[0.3, -np.inf, 1.2]])
    p = np.array([[0.4, 0.0, 0.6]])
    ref, _ = _torch_ce(x, p)
    assert np.isnan(ref)  # PyTorch's documented-by-behaviour difference
    expected, _ = _torch_ce(x[:, [0, 2]], p[:, [0, 2]])  # drop the impossible class
    loss, grad = smk.cross_entropy_and_grad(x, p)
    np.testing.assert_allclose(loss, expected, rtol=1e-14)
    assert grad[0, 1] == 0 and np.isfinite(grad).all()


def test_where_torch_differs_mean_over_no_samples(backend):
    """torch returns NaN for a mean over zero samples; softmaxkit returns 0.0."""
    x = np.array([[0.3, 0.1], [1.0, -1.0]])
    y = np.array([-100, -100])
    ref, _ = _torch_ce(x, y, ignore_index=-100)
    assert np.isnan(ref)
    loss, grad = smk.cross_entropy_and_grad(x, y, ignore_index=-100)
    assert loss == 0.0 and not np.signbit(loss)
    np.testing.assert_array_equal(grad, np.zeros_like(x))
