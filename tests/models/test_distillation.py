"""distillation_targets and the Hinton et al. (2015) recipe for a linear student."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

from softmaxkit import distillation_targets


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), K=st.integers(2, 7),
       T=st.floats(0.05, 50.0), alpha=st.floats(0.0, 1.0))
def test_targets_formula(seed, n, K, T, alpha):
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=3.0, size=(n, K))
    y = rng.integers(0, K, size=n)
    t = distillation_targets(v, y, temperature=T, alpha=alpha)
    expected = alpha * sp_softmax(v / T, axis=1) + (1 - alpha) * np.eye(K)[y]
    np.testing.assert_allclose(t, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(distillation_targets(v, temperature=T),
                               sp_softmax(v / T, axis=1), rtol=1e-12, atol=1e-300)


def test_alpha_extremes_and_dtype():
    v = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    np.testing.assert_array_equal(distillation_targets(v, [2, 0], alpha=0.0),
                                  np.eye(3, dtype=np.float32)[[2, 0]])
    np.testing.assert_allclose(distillation_targets(v, [2, 0], alpha=1.0, temperature=3.0),
                               sp_softmax(v.astype(float) / 3.0, axis=1), rtol=1e-6)
    assert distillation_targets(v, [2, 0]).dtype == np.float32
    assert distillation_targets(np.array([[1, 2]])).dtype == np.float64
    # float16 logits are computed in float32 and returned as float16 (they came back
    # float32), like softmax itself
    v16 = np.array([[100, 0, -100], [1, 2, 3]], dtype=np.float16)
    for y in (None, [2, 0]):
        out = distillation_targets(v16, y, alpha=0.7)
        assert out.dtype == np.float16
        want = distillation_targets(v16.astype(np.float64), y, alpha=0.7)
        np.testing.assert_allclose(out.astype(np.float64), want, atol=1e-3)


def _soft_ce(z, v, T):
    """Hinton's soft term CE(softmax(v/T), softmax(z/T)) for one row (scipy oracle)."""
    return -np.sum(sp_softmax(v / T) * sp_log_softmax(z / T))


def _num_grad(f, z, h=1e-6):
    g = np.empty_like(z)
    for k in range(z.size):
        e = np.zeros_like(z)
        e[k] = h
        g[k] = (f(z + e) - f(z - e)) / (2 * h)
    return g


def test_soft_term_gradient_scales_as_one_over_T_squared():
    rng = np.random.default_rng(0)
    K = 5
    z = rng.normal(size=K)
    v = rng.normal(scale=2.0, size=K)
    z -= z.mean()
    v -= v.mean()
    limit = (z - v) / K          # Hinton et al. eq. (3): T^2 * gradient -> (z - v) / K
    errs = []
    for T in (10.0, 100.0, 1000.0):
        # numerical gradient in the variable u = z (scaled steps keep it accurate at large T)
        g = _num_grad(lambda u, T=T: _soft_ce(u, v, T), z, h=1e-4 * T)
        np.testing.assert_allclose(g, (sp_softmax(z / T) - sp_softmax(v / T)) / T,
                                   rtol=1e-5, atol=1e-12 / T**2)
        errs.append(np.max(np.abs(T**2 * g - limit)) / np.max(np.abs(limit)))
    # the T^2-rescaled gradient converges to the T-free limit at rate 1/T
    assert errs[1] < 0.15 * errs[0] and errs[2] < 0.15 * errs[1] and errs[2] < 1e-3
    # so doubling T at large T divides the raw gradient by 4
    g1 = (sp_softmax(z / 500.0) - sp_softmax(v / 500.0)) / 500.0
    g2 = (sp_softmax(z / 1000.0) - sp_softmax(v / 1000.0)) / 1000.0
    assert np.linalg.norm(g1) / np.linalg.norm(g2) == pytest.approx(4.0, rel=2e-3)


def test_bad_inputs():
    v = np.zeros((4, 3))
    with pytest.raises(ValueError, match="'temperature' parameter of distillation_targets"):
        distillation_targets(v, temperature=0.0)
    with pytest.raises(TypeError, match="'temperature' parameter of distillation_targets"):
        distillation_targets(v, temperature="2")
    with pytest.raises(ValueError, match=r"'alpha' parameter of distillation_targets must be a "
                                         r"float in \[0.0, 1.0\]; got 1.5"):
        distillation_targets(v, [0, 1, 2, 0], alpha=1.5)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*got 3 at position 1"):
        distillation_targets(v, [0, 3, 2, 0])      # labels with more classes than the logits
    with pytest.raises(ValueError, match="3 entries but there are 4 rows"):
        distillation_targets(v, [0, 1, 2])
    with pytest.raises(ValueError, match="2-D"):
        distillation_targets(np.zeros(3))
    with pytest.raises(ValueError, match="at least 2 columns"):
        distillation_targets(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        distillation_targets(np.array([[0.0, np.nan]]))


def _kl_rows(p, q):
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def test_linear_student_on_soft_targets():
    from softmaxkit import SoftmaxRegression

    rng = np.random.default_rng(2)
    n, d, K = 500, 3, 4
    X = rng.normal(size=(n + 3000, d))
    # a non-linear teacher a linear student cannot copy exactly; labels drawn from it
    A, B = rng.normal(size=(d, K)), rng.normal(scale=0.3, size=(d, K))
    v = X @ A + (X**2) @ B
    y = (rng.random(len(X))[:, None] > np.cumsum(sp_softmax(v, 1), 1)).sum(1)
    tr, te = slice(0, n), slice(n, None)

    P = distillation_targets(v[tr], temperature=1.0)
    soft = SoftmaxRegression(penalty=None, tol=1e-10).fit(X[tr], P)
    hard = SoftmaxRegression(penalty=None, tol=1e-10).fit(X[tr], y[tr])
    # stationary point of the soft objective mean_i CE(P_i, softmax(W x_i + b)):
    # gradient [X 1]^T (softmax(Z) - P) / n, computed here independently of the fit
    Z = X[tr] @ soft.coef_.T + soft.intercept_
    R = sp_softmax(Z, axis=1) - P
    grad = np.column_stack([X[tr], np.ones(n)]).T @ R / n
    assert np.linalg.norm(grad) < 1e-6
    # ... and a better copy of the teacher than the hard-label student, also held out
    teacher = sp_softmax(v[te], axis=1)
    kl_soft = _kl_rows(teacher, soft.predict_proba(X[te]))
    kl_hard = _kl_rows(teacher, hard.predict_proba(X[te]))
    assert kl_soft < 0.85 * kl_hard
    assert _kl_rows(sp_softmax(v[tr], 1), soft.predict_proba(X[tr])) < \
        _kl_rows(sp_softmax(v[tr], 1), hard.predict_proba(X[tr]))


@pytest.mark.parametrize("T", [2.0, 4.0])
def test_student_at_temperature_T_recovers_the_teacher(T):
    """The docstring said the unpenalised pure soft fit "reaches the same predictive
    distribution either way"; a student fitted at temperature 1 on softmax(v/T)
    predicts the softened teacher, and Hinton's student (trained at T, used at 1)
    is that fit with its coefficients times T."""
    from scipy.optimize import minimize

    from softmaxkit import SoftmaxRegression

    rng = np.random.default_rng(4)
    n, d, K = 400, 3, 4
    X = rng.normal(size=(n, d))
    v = X @ rng.normal(size=(d, K)) + rng.normal(size=K)     # a linear teacher
    student = SoftmaxRegression(penalty=None, tol=1e-10).fit(
        X, distillation_targets(v, temperature=T))
    P1 = student.predict_proba(X)
    np.testing.assert_allclose(P1, sp_softmax(v / T, axis=1), atol=1e-6)
    assert np.abs(P1 - sp_softmax(v, axis=1)).max() > 0.05       # flatter than the teacher
    # Hinton's student, by scipy: minimise CE(softmax(v/T), softmax(z/T)), z = [X 1] B
    Xd = np.column_stack([X, np.ones(n)])
    target = sp_softmax(v / T, axis=1)

    def f(b):
        Z = Xd @ b.reshape(d + 1, K) / T
        return -np.sum(target * sp_log_softmax(Z, axis=1)) / n

    B = minimize(f, np.zeros((d + 1) * K), method="BFGS", options={"gtol": 1e-10}).x
    hinton = sp_softmax(Xd @ B.reshape(d + 1, K), axis=1)      # used at temperature 1
    np.testing.assert_allclose(hinton, sp_softmax(v, axis=1), atol=1e-4)
    student.coef_ = student.coef_ * T
    student.intercept_ = student.intercept_ * T
    np.testing.assert_allclose(student.predict_proba(X), hinton, atol=1e-4)


def test_mixed_targets_fit_equals_weighted_objective():
    # CE is linear in the target, so the fit on the mixture minimises
    # alpha * soft CE + (1 - alpha) * hard CE: check its gradient vanishes
    from softmaxkit import SoftmaxRegression

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    v = X @ rng.normal(size=(3, 3)) * 2
    y = v.argmax(1)
    y[::7] = (y[::7] + 1) % 3                      # some label noise
    T, alpha = 3.0, 0.3
    student = SoftmaxRegression(penalty=None, tol=1e-10).fit(
        X, distillation_targets(v, y, temperature=T, alpha=alpha))
    S = student.predict_proba(X)
    Xd = np.column_stack([X, np.ones(400)])
    g_soft = Xd.T @ (S - sp_softmax(v / T, axis=1)) / 400
    g_hard = Xd.T @ (S - np.eye(3)[y]) / 400
    assert np.linalg.norm(alpha * g_soft + (1 - alpha) * g_hard) < 1e-6
    assert np.linalg.norm(g_soft) > 1e-3 and np.linalg.norm(g_hard) > 1e-3
