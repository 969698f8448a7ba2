"""Inverted dropout on CPU: the scaled keep-mask and its product with x in one pass.

The maths and the array-module reference are in tinylm/functional/dropout.py: given draws
u ~ U[0, 1) of x's shape, m = [u >= p] / (1 - p) and y = x o m. The reference forms the
boolean mask, the scaled mask and the product as three arrays; this numba kernel writes m
over u and y in a single pass (for the MLP language model's [32, 64, 768] hidden layer:
~1 ms instead of ~5 ms besides the draws themselves).
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _apply(x, u, p, scale, y):
        """u <- m, y <- x m, over flat arrays (indexed from 0: SIMD)."""
        zero = scale - scale
        for i in range(x.size):
            m = scale if u[i] >= p else zero
            u[i] = m
            y[i] = x[i] * m


def apply_dropout(x, u, p: float):
    """x, u [any shape], u a C-contiguous array of x's dtype -> (y, m); u is overwritten
    by m."""
    flat = numpy.ascontiguousarray(x).reshape(-1)
    y = numpy.empty_like(flat)
    _apply(flat, u.reshape(-1), x.dtype.type(p), x.dtype.type(1.0 / (1.0 - p)), y)
    return y.reshape(x.shape), u
