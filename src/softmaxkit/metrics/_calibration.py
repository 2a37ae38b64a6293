"""Calibration metrics: top-label reliability curve and expected calibration error."""

from __future__ import annotations

import numpy as np

from ._checks import check_labels_proba, check_n_bins

__all__ = ["reliability_curve", "expected_calibration_error"]


def _top_label(y, proba, n_bins):
    """Per-sample confidence, correctness and bin index (float64, bool, intp)."""
    conf = proba.max(axis=1).astype(np.float64)
    correct = proba.argmax(axis=1) == y
    # edges[m] is the float64 quotient m / M (correctly rounded); np.linspace's
    # edges can fall an ulp below it (M = 7: 5/7), which put a confidence of
    # exactly 5/7 in the bin above
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    # bin m holds edges[m] < conf <= edges[m + 1]; conf == 0 goes to the first bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return conf, correct, idx


def reliability_curve(y, proba, n_bins=15):
    """Top-label reliability curve on equal-width confidence bins.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True class indices into the columns of ``proba`` (ints in ``[0, K)``).
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; each row sums to 1.
    n_bins : int, default=15
        Number of equal-width bins on ``[0, 1]``.

    Returns
    -------
    confidence : ndarray of shape (n_bins,)
        Mean top-label confidence ``max_k proba[i, k]`` of the samples in each
        bin; NaN for an empty bin.
    accuracy : ndarray of shape (n_bins,)
        Fraction of the samples in each bin whose arg-max class is the true
        class; NaN for an empty bin.
    counts : ndarray of shape (n_bins,), dtype int64
        Number of samples in each bin.

    Notes
    -----
    Bin ``m`` (0-based) holds the samples whose confidence
    :math:`\\hat p_i = \\max_k p_{ik}` satisfies :math:`m/M < \\hat p_i \\le (m+1)/M`
    (the first bin also holds :math:`\\hat p_i = 0`), with :math:`m/M` the
    float64 quotient, so a confidence of exactly ``k / M`` lies in bin ``k - 1``
    for every ``M``; float32 and float16 confidences are compared by their
    exact values. This is the binning of Guo et al.,
    "On Calibration of Modern Neural Networks", ICML 2017, and of netcal's
    ``ECE``. Ties in the arg-max go to the lowest class index.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import reliability_curve
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    >>> conf, acc, counts = reliability_curve([0, 1, 1, 1], proba, n_bins=2)
    >>> conf
    array([   nan, 0.7375])
    >>> acc
    array([ nan, 0.75])
    >>> counts
    array([0, 4])
    """
    owner = "reliability_curve"
    M = check_n_bins(n_bins, owner)
    y, proba = check_labels_proba(y, proba, owner)
    conf, correct, idx = _top_label(y, proba, M)
    counts = np.bincount(idx, minlength=M).astype(np.int64)
    conf_sum = np.bincount(idx, weights=conf, minlength=M)
    acc_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=M)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(counts > 0, conf_sum / np.maximum(counts, 1), np.nan)
        accuracy = np.where(counts > 0, acc_sum / np.maximum(counts, 1), np.nan)
    return confidence, accuracy, counts


def expected_calibration_error(y, proba, n_bins=15):
    """Top-label expected calibration error (ECE) with equal-width bins.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True class indices into the columns of ``proba`` (ints in ``[0, K)``).
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; each row sums to 1.
    n_bins : int, default=15
        Number of equal-width bins on ``[0, 1]`` (15 as in Guo et al. 2017).

    Returns
    -------
    ece : float
        In ``[0, 1]``; 0 for a perfectly calibrated top-label prediction.

    Notes
    -----
    With :math:`B_m` the samples whose top-label confidence
    :math:`\\hat p_i = \\max_k p_{ik}` lies in :math:`(m/M, (m+1)/M]` (see
    :func:`reliability_curve`),

    .. math::

        \\mathrm{ECE} = \\sum_{m} \\frac{|B_m|}{n}
            \\left| \\mathrm{acc}(B_m) - \\mathrm{conf}(B_m) \\right|,

    where :math:`\\mathrm{acc}(B_m)` is the fraction of :math:`B_m` whose
    arg-max class is correct and :math:`\\mathrm{conf}(B_m)` the mean of
    :math:`\\hat p_i` over :math:`B_m`. This is the definition of Guo et al.,
    "On Calibration of Modern Neural Networks", ICML 2017 (eq. 3), and of
    netcal's ``ECE(bins=15)`` on the top label. Empty bins contribute 0.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    >>> round(expected_calibration_error([0, 1, 1, 1], proba, n_bins=2), 4)
    0.0125
    """
    owner = "expected_calibration_error"
    M = check_n_bins(n_bins, owner)
    y, proba = check_labels_proba(y, proba, owner)
    conf, correct, idx = _top_label(y, proba, M)
    gap = np.bincount(idx, weights=correct - conf, minlength=M)
    return float(np.sum(np.abs(gap)) / y.shape[0])
