"""Minibatch first-order optimisation (Adam / SGD) for streaming fits."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice_param, check_scalar_param
from ._base import _HOOKS

__all__ = ["Adam"]


class Adam:
    """Minibatch Adam (or plain SGD) whose state survives between calls, for
    ``partial_fit``; optionally proximal for an l1 term.

    Parameters
    ----------
    learning_rate : float in (0, inf), default=1e-2
        Base step size ``lr0``.
    beta1, beta2 : float in [0, 1), default=0.9, 0.999
        Adam's moment decay rates (1 would divide by ``1 - beta^t = 0``); not used by
        ``method="sgd"``, but checked all the same.
    eps : float, default=1e-8
        Added to the root of the second moment: in (0, inf) for Adam (with 0 a
        coordinate whose gradients were all 0 gets ``0 / 0``); ``method="sgd"`` does
        not use it and also accepts 0.
    decay : float in [0, inf), default=1e-3
        The step at update ``t`` is ``lr0 / sqrt(1 + decay * t)``, so that repeated
        passes converge instead of hovering at a noise level.
    method : {"adam", "sgd"}, default="adam"
        ``"sgd"`` is plain (decaying-step) gradient descent: ``x -= lr_t * g``.

    Attributes
    ----------
    t : int
        Number of updates so far (it sets the decaying step).
    m : ndarray or None
        The first moment (None before the first update).
    s : ndarray or None
        The root of the second moment, ``sqrt(v)``, kept as a root (updated with
        ``hypot``) so that no finite gradient overflows it: ``g * g`` is inf for
        ``|g| > 1.3e154``, and an infinite ``v`` froze that coordinate for good.
    v : ndarray or None
        ``s ** 2`` (computed on access; inf beyond float64's range).  Setting it
        sets ``s = sqrt(v)`` (exact: ``sqrt(s * s) == s`` in binary floating point
        away from overflow and underflow).

    Raises
    ------
    ValueError, TypeError
        When a parameter is out of its range or of the wrong type (checked here, at
        construction).

    Notes
    -----
    Adam: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``x -= lr_t * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
    ``m_hat = m / (1 - b1^k)``, ``v_hat = v / (1 - b2^k)``, ``k`` the number of
    updates since the moments started (at the first update, or when ``x`` changed
    shape and they restarted from 0).

    With ``l1`` (``step(x, g, l1=...)``, ``g`` the gradient of the smooth part only)
    the update is the proximal step of ``sum(l1 |x|)`` in Adam's diagonal metric:
    ``x = soft(x - lr_t m_hat / (sqrt(v_hat) + eps), lr_t l1 / (sqrt(v_hat) + eps))``
    with ``soft(u, c) = sign(u) max(|u| - c, 0)`` (for ``"sgd"``:
    ``soft(x - lr_t g, lr_t l1)``), so that coordinates whose gradient stays within
    their l1 weight become exactly 0, as in the lasso; adding the subgradient
    ``l1 sign(x)`` to ``g`` instead leaves them oscillating around 0.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxkit.solvers import Adam
    >>> opt = Adam(learning_rate=0.1)
    >>> x = np.array([3.0, -2.0])
    >>> for _ in range(500):
    ...     x = opt.step(x, 2 * x, objective=float(x @ x))
    >>> bool(np.all(np.abs(x) < 1e-2))
    True

    Minimising ``(x - 1)^2 + 3 |x|`` (the minimiser is 0: the gradient 2 (x - 1) is -2
    there, within the l1 weight 3):

    >>> opt = Adam(learning_rate=0.1)
    >>> x = np.array([2.0])
    >>> for _ in range(500):
    ...     x = opt.step(x, 2 * (x - 1), l1=3.0)
    >>> x
    array([0.])
    """

    def __init__(self, learning_rate=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, decay=1e-3,
                 method="adam"):
        self.method = check_choice_param(method, "method", "Adam", ("adam", "sgd"))
        self.learning_rate = check_scalar_param(learning_rate, "learning_rate", "Adam",
                                                low=0, low_open=True, high=np.inf,
                                                high_open=True)
        self.beta1 = check_scalar_param(beta1, "beta1", "Adam", low=0, high=1,
                                        high_open=True)
        self.beta2 = check_scalar_param(beta2, "beta2", "Adam", low=0, high=1,
                                        high_open=True)
        self.eps = check_scalar_param(eps, "eps", "Adam", low=0,
                                      low_open=self.method == "adam", high=np.inf,
                                      high_open=True)
        self.decay = check_scalar_param(decay, "decay", "Adam", low=0, high=np.inf,
                                        high_open=True)
        self.t = 0
        self.m = None
        self.s = None
        self._k = None  # updates since the moments restarted; None: as many as t

    @property
    def v(self):
        if self.s is None:
            return None
        with np.errstate(over="ignore"):
            return self.s * self.s

    @v.setter
    def v(self, value):
        self.s = None if value is None else np.sqrt(np.asarray(value, dtype=np.float64))

    def step(self, x, g, objective=float("nan"), *, l1=None):
        """Return the updated parameters after one minibatch gradient ``g``; calls
        the :func:`on_iteration` hooks.

        Parameters
        ----------
        x : array_like
            The current parameters (finite).
        g : array_like of x's shape
            The minibatch gradient (finite) of the smooth part of the objective.
        objective : float, optional
            The minibatch objective, passed to the hooks.
        l1 : float or array_like of x's shape or None, default=None
            Non-negative finite l1 weights: the update is then the proximal step of
            ``sum(l1 |x|)`` (see Notes), which sets coordinates exactly to 0.

        Returns
        -------
        ndarray of x's shape (float64)

        Raises
        ------
        ValueError
            When ``g`` has another shape than ``x``, ``x`` or ``g`` has NaN or inf
            entries (one such gradient would make every later step NaN), ``l1`` is
            of another shape, negative or not finite, or the new parameters overflow
            (``"sgd"`` with a huge ``lr_t * g``); the state is then left as it was.
        """
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"The gradient g passed to Adam.step must have x's shape "
                             f"{x.shape}; got shape {g.shape}.")
        for name, arr in (("gradient g", g), ("parameters x", x)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            if bad:
                raise ValueError(f"The {name} passed to Adam.step must be finite; got "
                                 f"{bad} NaN or inf entries of {arr.size} (the optimiser's "
                                 "state is unchanged).")
        if l1 is not None:
            l1 = self._check_l1(l1, x.shape)
        m, root, k0 = self.m, self.s, self._k
        if m is None or m.shape != x.shape:
            # new parameters: the moments, and their bias corrections, start afresh
            m, root, k0 = np.zeros_like(x), np.zeros_like(x), 0
        t = self.t + 1
        k = t if k0 is None else k0 + 1
        lr = self.learning_rate / np.sqrt(1.0 + self.decay * t)
        with np.errstate(over="ignore"):  # an overflow is refused below
            x_new, m, root = self._update(x, g, l1, lr, k, m, root)
        if not np.all(np.isfinite(x_new)):
            raise ValueError(f"Adam.step overflowed: the step lr_t * g = {lr:.3g} * g has "
                             "entries beyond float64's range (the optimiser's state is "
                             "unchanged); lower the learning rate or scale the objective.")
        self.t, self.m, self.s = t, m, root
        self._k = None if k0 is None else k
        x = x_new
        hooks = _HOOKS.get()
        if hooks:
            info = {"iteration": self.t, "objective": float(objective),
                    "grad_norm": float(np.max(np.abs(g))) if g.size else 0.0,
                    "max_iter": 0}
            for fn in hooks:
                fn(info)
        return x

    def _update(self, x, g, l1, lr, k, m, root):
        """The new (x, m, s) after a step of size ``lr`` at bias-correction count k."""
        if self.method == "sgd":
            x_new = x - lr * g
            if l1 is not None:
                x_new = _soft(x_new, lr * l1)
            return x_new, m, root
        b1, b2 = self.beta1, self.beta2
        m = b1 * m + (1 - b1) * g
        root = np.hypot(np.sqrt(b2) * root, np.sqrt(1 - b2) * np.abs(g))
        denom = root / np.sqrt(1 - b2 ** k) + self.eps
        x_new = x - lr * (m / (1 - b1 ** k)) / denom
        if l1 is not None:
            x_new = _soft(x_new, lr * l1 / denom)
        return x_new, m, root

    @staticmethod
    def _check_l1(l1, shape):
        from ._base import _real_array

        arr = _real_array(l1, "The 'l1' parameter of Adam.step")
        if arr.ndim and arr.shape != shape:
            raise ValueError(f"The 'l1' parameter of Adam.step must be a float or an array "
                             f"of x's shape {shape}; got an array of shape {arr.shape}.")
        arr = np.asarray(arr, dtype=np.float64)
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            bad = arr[(arr < 0) | ~np.isfinite(arr)].ravel()[0]
            raise ValueError(f"The 'l1' parameter of Adam.step must be finite and "
                             f"non-negative (a float in [0, inf) or an array of them); "
                             f"got an entry {float(bad)!r}.")
        return np.broadcast_to(arr, shape)


def _soft(u, c):
    return np.sign(u) * np.maximum(np.abs(u) - c, 0.0)
