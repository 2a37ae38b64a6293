"""Soft targets for knowledge distillation (Hinton, Vinyals & Dean 2015)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_scalar_param, check_temperature
from ..metrics._checks import check_labels
from ..special import softmax

__all__ = ["distillation_targets"]

_OWNER = "distillation_targets"


def distillation_targets(teacher_logits, y=None, *, temperature=2.0, alpha=0.5):
    """Targets that mix a teacher's softened distribution with the hard labels.

    Parameters
    ----------
    teacher_logits : array-like of shape (n_samples, n_classes)
        The teacher's logits (finite).
    y : array-like of shape (n_samples,), default=None
        Hard labels as class indices in ``[0, n_classes)``. ``None`` gives the
        pure soft targets ``softmax(teacher_logits / temperature)`` (``alpha``
        is then not used).
    temperature : float > 0, default=2.0
        Softening temperature ``T`` of the teacher.
    alpha : float in [0, 1], default=0.5
        Weight of the soft targets; ``1 - alpha`` goes to the one-hot labels.

    Returns
    -------
    targets : ndarray of shape (n_samples, n_classes)
        Rows are probability distributions,
        ``alpha * softmax(teacher_logits / T) + (1 - alpha) * onehot(y)``, in
        the logits' floating dtype (float64 for integer input; float16 logits
        are computed in float32). Pass them to
        ``SoftmaxRegression().fit(X, targets)``; with ``T != 1`` see the Notes
        for the student's temperature.

    Notes
    -----
    Cross-entropy is linear in its target, so fitting a student with logits
    :math:`z` on these targets minimises

    .. math::

        \\alpha\\, \\mathrm{CE}(\\mathrm{softmax}(v / T), z)
            + (1 - \\alpha)\\, \\mathrm{CE}(y, z),

    the Hinton et al. (2015) objective with the student evaluated at
    temperature 1. Hinton et al. evaluate the soft term at the student's
    temperature too, :math:`\\mathrm{CE}(\\mathrm{softmax}(v/T),
    \\mathrm{softmax}(z/T))`, whose gradient with respect to the student's
    logits is

    .. math::

        \\frac{1}{T}\\left(\\mathrm{softmax}(z/T) - \\mathrm{softmax}(v/T)\\right)
            \\approx \\frac{1}{K T^2}\\,(z - v)
            \\quad (T \\gg |z|, |v|,\\ \\textstyle\\sum_k z_k = \\sum_k v_k = 0),

    i.e. it shrinks as :math:`1/T^2`; that is why they multiply the soft term
    by :math:`T^2`, which keeps the balance between the soft and the hard term
    when ``T`` changes.

    The student's temperature: a student fitted at temperature 1 on
    ``softmax(v / T)`` learns the *softened* teacher, so it predicts
    ``softmax(v / T)``, flatter than the teacher for ``T > 1``.  Hinton et al.
    train the student at temperature ``T`` and use it at temperature 1; for a
    *linear* student :math:`z = W x + b` that is the same fit with
    :math:`(W, b)` multiplied by ``T`` afterwards.  For the unpenalised pure
    soft fit (``y=None``) this is exact: a student that can represent the
    teacher's logits recovers ``softmax(v)`` (see the example).  With a
    penalty or a hard term there is no exact rescaling (the penalty and the
    hard labels act at the student's temperature): multiply by ``T`` or not,
    and tune ``T`` and ``alpha``, on held-out data.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit import distillation_targets
    >>> v = np.array([[2.0, 0.0, -2.0]])
    >>> distillation_targets(v, temperature=2.0).round(4)
    array([[0.6652, 0.2447, 0.09  ]])
    >>> distillation_targets(v, [1], temperature=2.0, alpha=0.5).round(4)
    array([[0.3326, 0.6224, 0.045 ]])

    A linear teacher is recovered from its softened outputs once the student's
    coefficients are multiplied by ``T``:

    >>> from softmaxkit import SoftmaxRegression
    >>> from softmaxkit.special import softmax
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> logits = X @ rng.normal(size=(3, 4))              # the teacher's logits
    >>> T = 4.0
    >>> student = SoftmaxRegression(penalty=None, tol=1e-10).fit(
    ...     X, distillation_targets(logits, temperature=T))
    >>> bool(np.abs(student.predict_proba(X) - softmax(logits / T, axis=1)).max() < 1e-6)
    True
    >>> student.coef_ *= T
    >>> student.intercept_ *= T
    >>> bool(np.abs(student.predict_proba(X) - softmax(logits, axis=1)).max() < 1e-6)
    True
    """
    z, out_dtype = as_float_array(teacher_logits, "teacher_logits")
    if z.ndim != 2:
        raise ValueError(
            f"teacher_logits of {_OWNER} must be a 2-D array of shape (n_samples, n_classes); "
            f"got shape {z.shape}."
        )
    if z.shape[1] < 2:
        raise ValueError(
            f"teacher_logits of {_OWNER} must have at least 2 columns; got {z.shape[1]}."
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(f"teacher_logits of {_OWNER} must be finite; it contains NaN or inf.")
    T = check_temperature(temperature, _OWNER)
    a = check_scalar_param(alpha, "alpha", _OWNER, kind=float, low=0.0, high=1.0)
    soft = softmax(z, axis=1, temperature=T)
    if y is None:
        return soft.astype(out_dtype, copy=False)
    idx = check_labels(y, z.shape[1], _OWNER, n_samples=z.shape[0])
    out = soft * soft.dtype.type(a)
    out[np.arange(z.shape[0]), idx] += soft.dtype.type(1.0 - a)
    return out.astype(out_dtype, copy=False)
