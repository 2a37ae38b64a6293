"""Shared test configuration."""

import os

# scikit-learn's check_array_api_input only runs with SciPy's array-API mode on,
# which must be set before SciPy is first imported; without it the check skips.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["numpy", "numba"])
def backend(request, monkeypatch):
    """Run a test on the NumPy reference and on the dispatched fast path."""
    monkeypatch.setenv("SOFTMAXKIT_BACKEND", request.param)
    return request.param
