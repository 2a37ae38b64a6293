"""Solver arguments that used to be accepted and then silently do nothing (or fail
inside SciPy) are refused with the standard parameter message."""

import re

import numpy as np
import pytest

from softmaxkit.solvers import lbfgs, trust_region_newton_cg

from .test_solver_input import X_STAR, hessp_a, quad


@pytest.mark.parametrize(("kw", "exc", "msg"), [
    ({"max_cg": 0}, ValueError,
     "The 'max_cg' parameter of trust_region_newton_cg must be an int in [1, inf] or None; "
     "got 0."),
    ({"max_cg": -1}, ValueError, "The 'max_cg' parameter of trust_region_newton_cg"),
    ({"max_cg": 2.5}, TypeError, "The 'max_cg' parameter of trust_region_newton_cg"),
    ({"delta0": 0}, ValueError,
     "The 'delta0' parameter of trust_region_newton_cg must be a float in (0, inf] or None; "
     "got 0."),
    ({"delta0": -1.0}, ValueError, "The 'delta0' parameter"),
    ({"delta0": np.nan}, ValueError, "The 'delta0' parameter"),
])
def test_tr_validates_max_cg_and_delta0(kw, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        trust_region_newton_cg(quad, hessp_a, np.zeros(2), **kw)


def test_tr_valid_max_cg_and_delta0_work():
    for kw in ({"max_cg": 1}, {"delta0": 1e-3}, {"delta0": np.inf},
               {"max_cg": None, "delta0": None}):
        res = trust_region_newton_cg(quad, hessp_a, np.zeros(2), tol=1e-10, **kw)
        assert res.converged
        np.testing.assert_allclose(res.x, X_STAR, atol=1e-9)


@pytest.mark.parametrize(("memory", "exc"), [(0, ValueError), (-3, ValueError),
                                             (2.0, TypeError), (None, TypeError)])
def test_lbfgs_validates_memory(memory, exc):
    with pytest.raises(exc, match=re.escape("The 'memory' parameter of lbfgs must be an int "
                                            "in [1, inf]; got")):
        lbfgs(quad, np.zeros(2), memory=memory)


def test_lbfgs_memory_one_works():
    res = lbfgs(quad, np.zeros(2), memory=1, tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.x, X_STAR, atol=1e-9)
