"""Minibatch first-order optimisation (Adam / SGD) for streaming fits."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice_param, check_scalar_param
from ._base import _HOOKS

__all__ = ["Adam"]


class Adam:
    """Minibatch Adam (or plain SGD) whose state survives between calls, for
    ``partial_fit``.

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

    Raises
    ------
    ValueError, TypeError
        When a parameter is out of its range or of the wrong type (checked here, at
        construction).

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
        self.v = None

    def step(self, x, g, objective=float("nan")):
        """Return the updated parameters after one minibatch gradient ``g``
        (shape like ``x``); calls the :func:`on_iteration` hooks."""
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"The gradient g passed to Adam.step must have x's shape "
                             f"{x.shape}; got shape {g.shape}.")
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
