"""softmax_jacobian, softmax_vjp, softmax_jvp, log_softmax_vjp: layouts,
axes and validation (values: test_properties, test_agreement, and the
gradient column in test_edge_cases)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import softmaxkit as smk

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(3, 4, 5))


def _jac_1d(row):
    s = smk.softmax(row)
    return np.diag(s) - np.outer(s, s)


def test_jacobian_last_axis_layout():
    J = smk.softmax_jacobian(X3)
    assert J.shape == (3, 4, 5, 5)
    for i, j in np.ndindex(3, 4):
        assert_allclose(J[i, j], _jac_1d(X3[i, j]), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("axis", [0, 1, -2, -3])
def test_jacobian_other_axis_layout(axis):
    # documented: the reduced axis stays in place and holds the output index
    # i, the new last axis holds the input index j
    J = smk.softmax_jacobian(X3, axis=axis)
    a = axis % 3
    K = X3.shape[a]
    assert J.shape == X3.shape + (K,)
    others = [d for d in range(3) if d != a]
    for idx in np.ndindex(*(X3.shape[d] for d in others)):
        sl = [slice(None)] * 3
        for d, v in zip(others, idx, strict=True):
            sl[d] = v
        row = X3[tuple(sl)]
        assert_allclose(J[tuple(sl)], _jac_1d(row), rtol=1e-15, atol=1e-300)


def test_jacobian_axis_0_example_from_docstring():
    x = RNG.normal(size=(4, 2))
    J = smk.softmax_jacobian(x, axis=0)
    assert J.shape == (4, 2, 4)
    assert_allclose(J[:, 1, :], _jac_1d(x[:, 1]), rtol=1e-15)


def test_jacobian_axis_must_be_single_int():
    with pytest.raises(TypeError, match="single int"):
        smk.softmax_jacobian(X3, axis=(0, 1))
    with pytest.raises(ValueError, match="axis"):
        smk.softmax_jacobian(X3, axis=3)


def test_jacobian_one_dimensional_and_single_entry():
    assert_allclose(smk.softmax_jacobian([2.0]), [[0.0]])
    J = smk.softmax_jacobian([0.0, 0.0])
    assert_allclose(J, [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-15)


@pytest.mark.parametrize("grad", [smk.softmax_vjp, smk.softmax_jvp, smk.log_softmax_vjp])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_products_along_any_axis_equal_moveaxis(grad, axis):
    y = smk.softmax(X3, axis=axis) if grad is not smk.log_softmax_vjp else smk.log_softmax(
        X3, axis=axis)
    g = RNG.normal(size=X3.shape)
    out = grad(y, g, axis=axis)
    ref = grad(np.moveaxis(y, axis, -1), np.moveaxis(g, axis, -1))
    assert_allclose(np.moveaxis(out, axis, -1), ref, rtol=1e-15, atol=1e-300)


def test_vjp_along_any_axis_equals_jacobian():
    g = RNG.normal(size=X3.shape)
    J = smk.softmax_jacobian(X3, axis=1)  # (3, 4[i], 5, 4[j])
    ref = np.einsum("aibj,aib->ajb", J, g)
    assert_allclose(smk.softmax_vjp(smk.softmax(X3, axis=1), g, axis=1), ref, rtol=1e-12,
                    atol=1e-15)


@pytest.mark.parametrize("grad", [smk.softmax_vjp, smk.softmax_jvp, smk.log_softmax_vjp])
def test_products_axis_tuple_equals_reshape(grad):
    fwd = smk.log_softmax if grad is smk.log_softmax_vjp else smk.softmax
    y = fwd(X3, axis=(1, 2))
    g = RNG.normal(size=X3.shape)
    out = grad(y, g, axis=(1, 2))
    ref = grad(y.reshape(3, 20), g.reshape(3, 20))
    assert_allclose(out.reshape(3, 20), ref, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("grad", [smk.softmax_vjp, smk.softmax_jvp, smk.log_softmax_vjp])
def test_products_validate_shapes_and_axes(grad):
    y = smk.softmax(X3)
    with pytest.raises(ValueError, match="same shape as y"):
        grad(y, np.ones((3, 4)))
    with pytest.raises(ValueError, match="axis"):
        grad(y, y, axis=3)
    with pytest.raises(TypeError, match="axis"):
        grad(y, y, axis=1.5)
    with pytest.raises(ValueError, match="does not broadcast"):
        grad(y, y, where=np.ones(4, dtype=bool))
    with pytest.raises(TypeError, match="real numeric"):
        grad(y, np.full(y.shape, "a"))


def test_products_ignore_cotangent_at_masked_entries():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    keep = np.array([True, False, True, True])
    g1 = np.array([1.0, 100.0, -2.0, 0.5])
    g2 = np.array([1.0, -7.0, -2.0, 0.5])
    for fwd, grad in ((smk.softmax, smk.softmax_vjp), (smk.log_softmax, smk.log_softmax_vjp)):
        y = fwd(x, where=keep)
        assert_allclose(grad(y, g1, where=keep), grad(y, g2, where=keep), rtol=0)


def test_vjp_infinite_cotangent_at_zero_probability_is_zero():
    y = smk.softmax([0.0, -np.inf, 1.0])
    out = smk.softmax_vjp(y, [1.0, np.inf, 2.0])
    assert out[1] == 0.0 and np.isfinite(out).all()
