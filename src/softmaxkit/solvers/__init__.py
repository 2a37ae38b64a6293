"""Minimisers that know nothing of softmax: value, gradient and
Hessian-vector products in, a minimiser out.

Every solver stops on the same rule (``max |projected gradient| <= tol * max(1,
|f|)``), returns an :class:`OptimizeResult`, warns with scikit-learn's
``ConvergenceWarning`` when ``max_iter`` is hit and calls the hooks installed by
:func:`on_iteration` once per iteration.
"""

from ._base import OptimizeResult, on_iteration
from ._lbfgs import lbfgs
from ._newton import hessian_from_hessp, newton_cholesky, trust_region_newton_cg
from ._proximal import l1_optimality, proximal_newton
from ._stochastic import Adam

__all__ = [
    "OptimizeResult",
    "on_iteration",
    "trust_region_newton_cg",
    "newton_cholesky",
    "hessian_from_hessp",
    "lbfgs",
    "proximal_newton",
    "l1_optimality",
    "Adam",
]
