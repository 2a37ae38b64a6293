"""Proper scoring rules for multiclass probabilities: log loss and Brier score."""

from __future__ import annotations

import numpy as np

from ._checks import check_labels_proba

__all__ = ["log_loss", "brier_score"]


def log_loss(y, proba):
    """Mean negative log-likelihood of the true classes.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True class indices into the columns of ``proba`` (ints in ``[0, K)``).
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; each row sums to 1.

    Returns
    -------
    loss : float
        ``-mean_i log proba[i, y_i]``; ``inf`` when a true class has
        probability exactly 0.

    Notes
    -----
    .. math:: \\mathrm{LL} = -\\frac{1}{n} \\sum_i \\log p_{i, y_i}.

    Unlike :func:`sklearn.metrics.log_loss`, probabilities are not clipped
    away from 0, so a confident mistake is reported as the infinite loss it
    is; otherwise the two agree.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import log_loss
    >>> round(log_loss([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]])), 6)
    0.458145
    """
    y, proba = check_labels_proba(y, proba, "log_loss")
    py = proba[np.arange(y.shape[0]), y].astype(np.float64)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(py)))


def brier_score(y, proba):
    """Multiclass Brier score (Brier 1950): mean squared distance to the one-hot label.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True class indices into the columns of ``proba`` (ints in ``[0, K)``).
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; each row sums to 1.

    Returns
    -------
    score : float
        In ``[0, 2]``; 0 for a perfect, certain prediction.

    Notes
    -----
    .. math:: \\mathrm{BS} = \\frac{1}{n} \\sum_i \\sum_k (p_{ik} - [y_i = k])^2.

    This is Brier's original multiclass definition, the sum over all ``K``
    classes (not halved). It equals scikit-learn's
    ``brier_score_loss(y, proba, labels=range(K), scale_by_half=False)``; for
    two classes it is twice the common binary Brier score
    :math:`\\frac{1}{n}\\sum_i (p_{i1} - y_i)^2`, which is what
    ``scale_by_half=True`` (scikit-learn's default for binary ``y``) gives.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import brier_score
    >>> round(brier_score([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]])), 6)
    0.29
    """
    y, proba = check_labels_proba(y, proba, "brier_score")
    d = proba.astype(np.float64, copy=True)
    d[np.arange(y.shape[0]), y] -= 1.0
    return float(np.mean(np.sum(d * d, axis=1)))
