"""Applying an inverted-dropout mask in one pass.

Given uniform draws u ~ U[0, 1) of x's shape (from the caller's seeded generator), keep
the units with u >= p and scale them by 1 / (1 - p):

    m = [u >= p] / (1 - p),     y = x * m

The reference forms the boolean mask, the scaled mask and the product as three arrays;
the numba kernel writes m over u and y in a single pass (for the MLP language model's
[32, 64, 768] hidden layer: ~1 ms instead of ~5 ms besides the draws themselves).
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, use_numba
from tinylm.kernels import JIT


def apply_dropout_reference(x, u, p: float):
    """x, u [any shape] -> (y, m) with m = [u >= p] / (1 - p) and y = x * m."""
    scaled_mask = (u >= p) * x.dtype.type(1.0 / (1.0 - p))
    return x * scaled_mask, scaled_mask


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
    """Like ``apply_dropout_reference``; on CPU the draws ``u`` are overwritten by the mask."""
    if use_numba(x, u) and x.dtype == u.dtype and u.flags.c_contiguous:
        flat = numpy.ascontiguousarray(x).reshape(-1)
        y = numpy.empty_like(flat)
        _apply(flat, u.reshape(-1), x.dtype.type(p), x.dtype.type(1.0 / (1.0 - p)), y)
        return y.reshape(x.shape), u
    return apply_dropout_reference(x, u, p)
