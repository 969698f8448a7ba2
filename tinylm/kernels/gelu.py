"""GELU, element-wise: exact and tanh-approximated.

Exact:   gelu(x) = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
         gelu'(x) = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

Tanh:    u = sqrt(2/pi) * (x + 0.044715 x^3),   gelu(x) = x * (1 + tanh u) / 2
         gelu'(x) = (1 + tanh u) / 2 + x * (1 - tanh^2 u) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2) / 2
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import FASTMATH, parallel_chunks

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TANH_COEF = 0.044715

_erf_host = numpy.frompyfunc(math.erf, 1, 1)


def _erf(x):
    """erf for NumPy (NumPy has no erf ufunc) or CuPy (cupyx.scipy.special.erf)."""
    xp = get_array_module(x)
    if xp is numpy:
        return _erf_host(x).astype(x.dtype)
    from cupyx.scipy.special import erf  # type: ignore
    return erf(x)


def gelu_forward_reference(x, approximate: str):
    """Element-wise GELU of any-shaped x; approximate is 'none' or 'tanh'."""
    xp = get_array_module(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + xp.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x * x * x)))
    return 0.5 * x * (1.0 + _erf(x * INV_SQRT_2))


def gelu_backward_reference(dout, x, approximate: str):
    """dout, x [any shape] -> dx = dout * gelu'(x)."""
    xp = get_array_module(x)
    if approximate == "tanh":
        t = xp.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x * x * x))
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_COEF * x * x)
        return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + _erf(x * INV_SQRT_2))
    pdf = INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return dout * (cdf + x * pdf)


if NUMBA_AVAILABLE:
    import numba

    # The tanh form uses (1 + tanh u) / 2 = sigmoid(2u): one exp is about twice as fast as
    # a tanh, and with s = sigmoid(2u) the derivative (1 - tanh^2 u) / 2 becomes 2 s (1 - s).

    @numba.njit(cache=True, fastmath=FASTMATH)
    def _forward_range(x, tanh_approx, out, lo, hi):
        for i in range(lo, hi):
            v = x[i]
            if tanh_approx:
                u = SQRT_2_OVER_PI * (v + TANH_COEF * v * v * v)
                out[i] = v / (1.0 + math.exp(-2.0 * u))                  # v * sigmoid(2u)
            else:
                out[i] = 0.5 * v * (1.0 + math.erf(v * INV_SQRT_2))

    @numba.njit(cache=True, fastmath=FASTMATH)
    def _backward_range(dout, x, tanh_approx, dx, lo, hi):
        for i in range(lo, hi):
            v = x[i]
            if tanh_approx:
                s = 1.0 / (1.0 + math.exp(-2.0 * SQRT_2_OVER_PI * (v + TANH_COEF * v * v * v)))
                du = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_COEF * v * v)
                dx[i] = dout[i] * (s + 2.0 * v * s * (1.0 - s) * du)
            else:
                cdf = 0.5 * (1.0 + math.erf(v * INV_SQRT_2))
                dx[i] = dout[i] * (cdf + v * INV_SQRT_2PI * math.exp(-0.5 * v * v))

    @numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
    def _forward_parallel(x, tanh_approx, out, n_chunks):
        n = x.size
        for c in numba.prange(n_chunks):
            _forward_range(x, tanh_approx, out, c * n // n_chunks, (c + 1) * n // n_chunks)

    @numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
    def _backward_parallel(dout, x, tanh_approx, dx, n_chunks):
        n = x.size
        for c in numba.prange(n_chunks):
            _backward_range(dout, x, tanh_approx, dx, c * n // n_chunks, (c + 1) * n // n_chunks)


def gelu_forward(x, approximate: str):
    """Element-wise GELU of any-shaped x (dispatching to numba on CPU)."""
    if use_numba(x):
        flat = numpy.ascontiguousarray(x).reshape(-1)
        out = numpy.empty_like(flat)
        chunks = parallel_chunks(flat.size, flat.size)
        if chunks == 1:
            _forward_range(flat, approximate == "tanh", out, 0, flat.size)
        else:
            _forward_parallel(flat, approximate == "tanh", out, chunks)
        return out.reshape(x.shape)
    return gelu_forward_reference(x, approximate)


def gelu_backward(dout, x, approximate: str):
    """dout, x [any shape] -> dx (dispatching to numba on CPU)."""
    if use_numba(dout, x):
        flat = numpy.ascontiguousarray(x).reshape(-1)
        dflat = numpy.ascontiguousarray(dout, dtype=flat.dtype).reshape(-1)
        dx = numpy.empty_like(flat)
        chunks = parallel_chunks(flat.size, flat.size)
        if chunks == 1:
            _backward_range(dflat, flat, approximate == "tanh", dx, 0, flat.size)
        else:
            _backward_parallel(dflat, flat, approximate == "tanh", dx, chunks)
        return dx.reshape(x.shape)
    return gelu_backward_reference(dout, x, approximate)
