"""mpmath oracle for the softmax family (exact to 60 digits).

``exact_row(x)`` returns the exact softmax, log_softmax and logsumexp of a
1-D float row as mpmath numbers; ``ulp_error`` measures ``|ours - exact| /
spacing(exact)`` with the difference taken in high precision (so 0.5 means
correctly rounded up to half an ulp).
"""

import mpmath
import numpy as np

DPS = 60


def exact_row(x):
    """(softmax, log_softmax, logsumexp) of the float row ``x``, exactly."""
    with mpmath.workdps(DPS):
        xs = [mpmath.mpf(float(v)) for v in np.asarray(x, dtype=np.float64)]
        m = max(xs)
        es = [mpmath.exp(v - m) for v in xs]
        s = mpmath.fsum(es)
        lse = m + mpmath.log(s)
        return [e / s for e in es], [v - lse for v in xs], lse


def ulp_error(ours, exact, dtype=np.float64):
    """Elementwise ``|ours - exact| / spacing(exact)`` in units of ``dtype``."""
    ours = np.atleast_1d(np.asarray(ours, dtype=np.float64))
    exact = exact if isinstance(exact, list) else [exact]
    with mpmath.workdps(DPS):
        pairs = zip(ours, exact, strict=True)
        diff = np.array([float(abs(mpmath.mpf(float(o)) - e)) for o, e in pairs])
    ex = np.array([float(e) for e in exact], dtype=dtype)
    return diff / np.spacing(np.abs(ex)).astype(np.float64)


def random_row(rng, *, max_width=1000, max_spread=20.0, max_offset=1e3):
    """A row of width 3..max_width, spread up to ``max_spread``, offset up
    to ``max_offset`` in magnitude; half the offsets are log-uniform near 0
    (entries of both signs, where ``x - max`` is rounded)."""
    k = int(rng.integers(3, max_width + 1))
    spread = rng.uniform(0, max_spread)
    if rng.random() < 0.5:
        off = rng.uniform(-max_offset, max_offset)
    else:
        off = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-3, np.log10(max_offset))
    return off + spread * (rng.random(k) - 0.5)
