"""Adam / SGD: parameters are validated at construction (the standard message
form), never a silent NaN, an uphill step or Adam run for a misspelt method."""

import re

import numpy as np
import pytest

from softmaxkit.solvers import Adam


@pytest.mark.parametrize(("kw", "exc", "msg"), [
    ({"method": "SGD"}, ValueError,
     "The 'method' parameter of Adam must be one of {'adam', 'sgd'}; got 'SGD'."),
    ({"method": None}, ValueError, "The 'method' parameter of Adam must be one of"),
    ({"learning_rate": -1}, ValueError,
     "The 'learning_rate' parameter of Adam must be a float in (0, inf); got -1."),
    ({"learning_rate": 0.0}, ValueError, "The 'learning_rate' parameter of Adam"),
    ({"learning_rate": np.inf}, ValueError, "The 'learning_rate' parameter of Adam"),
    ({"learning_rate": np.nan}, ValueError, "The 'learning_rate' parameter of Adam"),
    ({"learning_rate": "0.1"}, TypeError, "The 'learning_rate' parameter of Adam"),
    ({"beta1": 1.0}, ValueError,
     "The 'beta1' parameter of Adam must be a float in [0, 1); got 1.0."),
    ({"beta1": -0.1}, ValueError, "The 'beta1' parameter of Adam"),
    ({"beta2": 1}, ValueError, "The 'beta2' parameter of Adam must be a float in [0, 1)"),
    ({"eps": 0}, ValueError, "The 'eps' parameter of Adam must be a float in (0, inf); got 0."),
    ({"eps": -1e-8, "method": "sgd"}, ValueError,
     "The 'eps' parameter of Adam must be a float in [0, inf); got -1e-08."),
    ({"decay": -1e-3}, ValueError,
     "The 'decay' parameter of Adam must be a float in [0, inf); got -0.001."),
    ({"decay": None}, TypeError, "The 'decay' parameter of Adam"),
])
def test_adam_validates_its_parameters(kw, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        Adam(**kw)


def test_adam_valid_edges():
    # beta = 0 and eps = 0 with SGD (which does not use eps) are fine and finite
    opt = Adam(learning_rate=0.1, beta1=0.0, beta2=0.0, eps=0.0, decay=0.0, method="sgd")
    x = opt.step(np.array([1.0, 0.0]), np.array([2.0, 0.0]))
    np.testing.assert_array_equal(x, [0.8, 0.0])
    opt = Adam(beta1=0.0, beta2=0.0)
    assert np.all(np.isfinite(opt.step(np.ones(2), np.zeros(2))))
    # numbers are stored as floats (the model file writes them back)
    opt = Adam(learning_rate=1, decay=0)
    assert type(opt.learning_rate) is float and type(opt.decay) is float


def test_adam_step_refuses_a_gradient_of_another_shape():
    opt = Adam()
    with pytest.raises(ValueError, match=r"must have x's shape \(2,\); got shape \(3,\)"):
        opt.step(np.ones(2), np.ones(3))
    assert opt.t == 0
