"""sigmoid and log_sigmoid, and the two-class identities with softmax."""

import numpy as np
import scipy.special as sps
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import softmaxkit as smk

from ._oracle import DPS

# entries on a grid of 2^-20 in [-700, 700]: b - a is exact, so both sides
# see the same logit difference
GRID = st.integers(-700 * 2**20, 700 * 2**20).map(lambda k: k / 2**20)


@given(GRID, GRID)
def test_softmax_of_two_is_sigmoid_of_difference(a, b):
    s = smk.softmax([a, b])
    assert_allclose(s[1], smk.sigmoid(b - a), rtol=4 * np.finfo(float).eps, atol=1e-300)
    assert_allclose(s[0], smk.sigmoid(a - b), rtol=4 * np.finfo(float).eps, atol=1e-300)


@given(GRID, GRID)
def test_log_softmax_of_two_is_log_sigmoid_of_difference(a, b):
    ls = smk.log_softmax([a, b])
    assert_allclose(ls[1], smk.log_sigmoid(b - a), rtol=4 * np.finfo(float).eps, atol=0)
    assert_allclose(ls[0], smk.log_sigmoid(a - b), rtol=4 * np.finfo(float).eps, atol=0)


def test_batched_identity():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 2)) * 30
    d = z[:, 1] - z[:, 0]
    assert_allclose(smk.softmax(z)[:, 1], smk.sigmoid(d), rtol=1e-14)
    assert_allclose(smk.log_softmax(z)[:, 1], smk.log_sigmoid(d), rtol=1e-14)


def test_sigmoid_against_mpmath():
    import mpmath

    x = np.array([-700.0, -40.0, -3.5, -1e-8, 0.0, 2.0, 37.0, 800.0])
    with mpmath.workdps(DPS):
        ref = [float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in x]
        lref = [float(-mpmath.log1p(mpmath.exp(-mpmath.mpf(v)))) for v in x]
    assert_allclose(smk.sigmoid(x), ref, rtol=4e-16, atol=0)
    assert_allclose(smk.log_sigmoid(x), lref, rtol=4e-16, atol=0)


def test_log_sigmoid_is_stable_where_the_naive_form_fails():
    x = np.array([-1000.0, 40.0, 800.0])
    with np.errstate(divide="ignore"):
        naive = np.log(sps.expit(x))
    assert naive[0] == -np.inf and naive[1] == 0.0  # what we avoid
    out = smk.log_sigmoid(x)
    assert out[0] == -1000.0
    assert_allclose(out[1], -np.exp(-40.0), rtol=1e-15)
    assert out[2] < 0 or out[2] == -0.0


def test_infinities_and_nan():
    x = np.array([-np.inf, np.inf, np.nan])
    assert_array_equal(smk.sigmoid(x), [0.0, 1.0, np.nan])
    assert_array_equal(smk.log_sigmoid(x), [-np.inf, 0.0, np.nan])


def test_scalar_and_shape():
    assert smk.sigmoid(0.0) == 0.5
    assert np.ndim(smk.sigmoid(0.0)) == 0
    assert smk.log_sigmoid(np.zeros((2, 3))).shape == (2, 3)
