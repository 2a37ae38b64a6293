"""The two-class special case: sigmoid and log_sigmoid.

For two classes softmax reduces to the logistic function of the logit
difference: ``softmax([a, b])[1] = e^b / (e^a + e^b) = 1 / (1 + e^(a - b))
= sigmoid(b - a)``, and ``log_softmax([a, b])[1] = log_sigmoid(b - a)``.
Softmax regression with two classes is therefore logistic regression on the
difference of the two weight vectors.
"""

from __future__ import annotations

from .._validation import as_float_array

__all__ = ["sigmoid", "log_sigmoid"]


def sigmoid(x):
    r"""The logistic function ``1 / (1 + exp(-x))``, elementwise.

    Parameters
    ----------
    x : array_like, any shape
        Input values.  Integer and bool input is computed in float64;
        float16 is computed in float32 and returned as float16; complex
        input raises TypeError.

    Returns
    -------
    ndarray or scalar, same shape as ``x``
        Values in [0, 1]: 0 at ``-inf``, 1 at ``+inf``, NaN at NaN.

    Notes
    -----
    ``sigmoid(x) = 1 / (1 + e^{-x})``, computed by
    :func:`scipy.special.expit` (no overflow for any input).  It is the
    two-class softmax: ``softmax([a, b])[1] == sigmoid(b - a)``.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.sigmoid([-1000.0, 0.0, 2.0]).round(4)
    array([0.    , 0.5   , 0.8808])
    >>> round(float(smk.softmax([1.0, 3.0])[1]), 12), round(float(smk.sigmoid(3.0 - 1.0)), 12)
    (0.880797077978, 0.880797077978)
    """
    from scipy.special import expit

    xw, out_dtype = as_float_array(x, "x")
    return expit(xw).astype(out_dtype, copy=False)


def log_sigmoid(x):
    r"""``log(sigmoid(x)) = -log(1 + exp(-x))``, elementwise and stable.

    Parameters
    ----------
    x : array_like, any shape
        Input values; dtype rules as in :func:`sigmoid`.

    Returns
    -------
    ndarray or scalar, same shape as ``x``
        Values <= 0: ``x`` for very negative ``x`` (no ``log(0) = -inf``),
        ``-exp(-x)`` (tiny, not rounded to 0) for large ``x``, ``-inf`` at
        ``-inf``, 0 at ``+inf``.

    Notes
    -----
    ``log_sigmoid(x) = -softplus(-x)``, computed by
    :func:`scipy.special.log_expit`, which is accurate for every input where
    ``np.log(expit(x))`` underflows to ``-inf`` or rounds to 0.  It is the
    two-class log_softmax: ``log_softmax([a, b])[1] == log_sigmoid(b - a)``.

    Examples
    --------
    >>> import softmaxkit as smk
    >>> smk.log_sigmoid([-1000.0, 0.0, 40.0])
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    """
    from scipy.special import log_expit

    xw, out_dtype = as_float_array(x, "x")
    return log_expit(xw).astype(out_dtype, copy=False)
