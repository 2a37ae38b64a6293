"""Minibatch first-order optimisation (Adam / SGD) for streaming fits."""

from __future__ import annotations

import numpy as np

from ._base import _HOOKS

__all__ = ["Adam"]


class Adam:
    """Minibatch Adam (or plain SGD) whose state survives between calls, for
    ``partial_fit``.

    Parameters
    ----------
    learning_rate : float, default=1e-2
        Base step size ``lr0``.
    beta1, beta2 : float, default=0.9, 0.999
        Moment decay rates (``beta1 = beta2 = 0`` with ``method="sgd"`` gives SGD).
    eps : float, default=1e-8
        Added to the root of the second moment.
    decay : float, default=1e-3
        The step at update ``t`` is ``lr0 / sqrt(1 + decay * t)``, so that repeated
        passes converge instead of hovering at a noise level.
    method : {"adam", "sgd"}, default="adam"

    Notes
    -----
    Adam: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``x -= lr_t * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

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
    """

    def __init__(self, learning_rate=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, decay=1e-3,
                 method="adam"):
        self.learning_rate = float(learning_rate)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.decay = float(decay)
        self.method = method
        self.t = 0
        self.m = None
        self.v = None

    def step(self, x, g, objective=float("nan")):
        """Return the updated parameters after one minibatch gradient ``g``
        (shape like ``x``); calls the :func:`on_iteration` hooks."""
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if self.m is None or self.m.shape != x.shape:
            self.m = np.zeros_like(x)
            self.v = np.zeros_like(x)
        self.t += 1
        lr = self.learning_rate / np.sqrt(1.0 + self.decay * self.t)
        if self.method == "sgd":
            x = x - lr * g
        else:
            b1, b2 = self.beta1, self.beta2
            self.m *= b1
            self.m += (1 - b1) * g
            self.v *= b2
            self.v += (1 - b2) * g * g
            mhat = self.m / (1 - b1 ** self.t)
            vhat = self.v / (1 - b2 ** self.t)
            x = x - lr * mhat / (np.sqrt(vhat) + self.eps)
        hooks = _HOOKS.get()
        if hooks:
            info = {"iteration": self.t, "objective": float(objective),
                    "grad_norm": float(np.max(np.abs(g))) if g.size else 0.0,
                    "max_iter": 0}
            for fn in hooks:
                fn(info)
        return x
