"""Minimisers that know nothing of softmax: value, gradient and
Hessian-vector products in, a minimiser out."""

__all__ = []
