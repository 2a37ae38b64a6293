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


# ---------------------------------------------------------- numerical safety (review 3)
def test_adam_is_scale_invariant_even_for_huge_gradients():
    # g * g overflowed to inf for |g| > 1.3e154: the step m / sqrt(v) was 0 and the
    # coordinate froze for good.  Adam's step does not depend on the gradient's scale,
    # so a run on 1e200 * g must follow the run on g
    runs = []
    for scale in (1.0, 1e200, 1e-200):
        opt = Adam(learning_rate=0.1, eps=1e-300)
        x = np.array([3.0, -2.0])
        path = []
        for _ in range(200):
            x = opt.step(x, scale * 2 * x)
            path.append(x)
        assert np.all(np.isfinite(opt.s)) and np.all(opt.s > 0)
        runs.append(np.array(path))
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(runs[2], runs[0], rtol=1e-12, atol=0)
    # the review's case: one huge gradient, then ordinary ones: the first step is the
    # usual normalised one (x[0] stayed at 3.0 before), and nothing is inf
    opt = Adam(learning_rate=0.1)
    x = opt.step(np.array([3.0, -2.0]), np.array([1e200, -4.0]))
    np.testing.assert_allclose(x, [3.0 - 0.1 / np.sqrt(1.001), -2.0 + 0.1 / np.sqrt(1.001)])
    for _ in range(20):
        x = opt.step(x, 2 * x)
    assert x[0] < 3.0 - 0.1 and np.all(np.isfinite(opt.m)) and np.all(np.isfinite(opt.s))


@pytest.mark.parametrize("method", ["adam", "sgd"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_adam_refuses_a_non_finite_gradient_and_keeps_its_state(method, bad):
    opt = Adam(learning_rate=0.1, method=method)
    x = opt.step(np.ones(2), np.ones(2))
    t, m, s = opt.t, opt.m.copy(), opt.s.copy()
    with pytest.raises(ValueError, match=r"The gradient g passed to Adam.step must be "
                                         r"finite; got 1 NaN or inf entries of 2"):
        opt.step(x, np.array([bad, 1.0]))
    with pytest.raises(ValueError, match="The parameters x passed to Adam.step must be finite"):
        opt.step(np.array([bad, 1.0]), np.ones(2))
    assert opt.t == t
    np.testing.assert_array_equal(opt.m, m)
    np.testing.assert_array_equal(opt.s, s)
    assert np.all(np.isfinite(opt.step(x, np.ones(2))))


def test_sgd_refuses_an_overflowing_step():
    opt = Adam(learning_rate=10.0, method="sgd", decay=0.0)
    with pytest.raises(ValueError, match="Adam.step overflowed"):
        opt.step(np.array([1.0]), np.array([1e308]))
    assert opt.t == 0


def test_adam_restarts_its_bias_corrections_with_the_moments():
    # a new shape zeroed m and v but not the step count, so the bias corrections were
    # skipped: after 1000 steps a new 3-vector's first step was 0.178, not lr_t
    opt = Adam(learning_rate=0.1)
    for _ in range(1000):
        opt.step(np.zeros(2), np.ones(2))
    x = opt.step(np.ones(3), np.ones(3))
    lr_t = 0.1 / np.sqrt(1 + 1e-3 * 1001)  # the decaying step goes on
    np.testing.assert_allclose(1 - x, lr_t, rtol=1e-6)
    assert opt.t == 1001
    # and the next steps are those of a fresh optimiser at that step size
    ref = Adam(learning_rate=0.1)
    ref.t = 1000
    ref._k = 0
    y = ref.step(np.ones(3), np.ones(3))
    for g in (np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -1.0])):
        x, y = opt.step(x, g), ref.step(y, g)
    np.testing.assert_array_equal(x, y)


def test_the_second_moment_round_trips_through_v():
    # the model file stores v: setting it back gives the same root, bit for bit
    opt = Adam()
    x = np.array([1.0, -2.0, 3.0])
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = opt.step(x, rng.standard_normal(3) * 10.0 ** rng.integers(-100, 100, 3))
    s = opt.s.copy()
    opt.v = opt.v
    np.testing.assert_array_equal(opt.s, s)
    assert Adam().v is None


# ------------------------------------------------------------- l1: proximal Adam
def _lasso_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 8))
    y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.3 * rng.standard_normal(100)
    return X, y, 0.1


@pytest.mark.parametrize("method", ["adam", "sgd"])
def test_proximal_adam_solves_the_lasso_with_exact_zeros(method):
    from sklearn.linear_model import Lasso

    X, y, alpha = _lasso_problem()
    n = len(y)
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=10**6).fit(X, y).coef_
    assert np.count_nonzero(ref) == 3
    opt = Adam(learning_rate=0.05, method=method)
    w = np.zeros(8)
    for _ in range(3000):
        w = opt.step(w, X.T @ (X @ w - y) / n, l1=alpha)
    np.testing.assert_array_equal(w == 0, ref == 0)
    np.testing.assert_allclose(w, ref, atol=1e-8)
    if method == "sgd":
        return  # minibatch noise beyond the l1 weight defeats plain SGD's thresholds
    # minibatches: Adam's averaged gradient keeps the zeros exact, the rest within
    # the noise
    opt = Adam(learning_rate=0.05, decay=1e-2)
    w = np.zeros(8)
    rng = np.random.default_rng(1)
    for _ in range(300):
        for b in np.array_split(rng.permutation(n), 5):
            w = opt.step(w, X[b].T @ (X[b] @ w - y[b]) / len(b), l1=np.full(8, alpha))
    np.testing.assert_array_equal(w == 0, ref == 0)
    np.testing.assert_allclose(w, ref, atol=2e-2)


def test_a_subgradient_never_gives_zeros_the_proximal_step_does():
    X, y, alpha = _lasso_problem()
    opt = Adam(learning_rate=0.05)
    w = np.zeros(8)
    for _ in range(3000):
        w = opt.step(w, X.T @ (X @ w - y) / len(y) + alpha * np.sign(w))
    assert np.count_nonzero(w) == 8


@pytest.mark.parametrize(("l1", "msg"), [
    (-0.1, "must be finite and non-negative"),
    (np.nan, "must be finite and non-negative"),
    (np.ones(3), r"must be a float or an array of x's shape \(2,\); got an array of shape "
                 r"\(3,\)"),
    ("a", "must be a real number or array"),
])
def test_adam_checks_l1(l1, msg):
    opt = Adam()
    with pytest.raises((ValueError, TypeError), match=r"The 'l1' parameter of Adam.step " + msg):
        opt.step(np.ones(2), np.ones(2), l1=l1)
    assert opt.t == 0
