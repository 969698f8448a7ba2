"""numba kernels of layer normalisation over the rows of a [N, C] array.

The maths, and the reference these kernels must agree with, are in
tinylm/functional/layernorm.py. Each row's mean and variance are summed in float64 (also
for float32 rows); the backward adds dgamma and dbeta into one float64 partial sum per
thread chunk, summed afterwards. Called on NumPy arrays only, when
``tinylm.backend.use_numba`` says so.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks


if NUMBA_AVAILABLE:
    import math

    import numba

    @numba.njit(**JIT)
    def _forward_rows(x, gamma, beta, eps, y, mean, rstd, lo, hi):
        C = x.shape[1]
        for n in range(lo, hi):
            xn, yn = x[n], y[n]                         # row views indexed from 0: SIMD loops
            s = 0.0                                     # float64 sums, also for float32 rows
            for c in range(C):
                s += xn[c]
            mu = s / C
            v = 0.0
            for c in range(C):
                d = xn[c] - mu
                v += d * d
            r = 1.0 / math.sqrt(v / C + eps)
            for c in range(C):
                yn[c] = (xn[c] - mu) * r * gamma[c] + beta[c]
            mean[n] = mu
            rstd[n] = r

    @numba.njit(**JIT)
    def _backward_rows(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, lo, hi):
        """dx for rows lo..hi-1; adds their share of dgamma and dbeta (float64 [C])."""
        C = x.shape[1]
        for n in range(lo, hi):
            xn, dyn, dxn = x[n], dy[n], dx[n]           # row views indexed from 0: SIMD loops
            mu = mean[n]
            r = rstd[n]
            sg = 0.0
            sgx = 0.0
            for c in range(C):
                xhat = (xn[c] - mu) * r
                g = dyn[c] * gamma[c]
                sg += g
                sgx += g * xhat
                dgamma[c] += dyn[c] * xhat
                dbeta[c] += dyn[c]
            sg /= C
            sgx /= C
            for c in range(C):
                xhat = (xn[c] - mu) * r
                dxn[c] = r * (dyn[c] * gamma[c] - sg - xhat * sgx)

    @numba.njit(parallel=True, **JIT)
    def _forward_parallel(x, gamma, beta, eps, y, mean, rstd, n_chunks):
        N = x.shape[0]
        for k in numba.prange(n_chunks):
            _forward_rows(x, gamma, beta, eps, y, mean, rstd,
                          k * N // n_chunks, (k + 1) * N // n_chunks)

    @numba.njit(parallel=True, **JIT)
    def _backward_parallel(dy, x, mean, rstd, gamma, dx, dgamma_parts, dbeta_parts):
        # dgamma/dbeta sum over rows: each chunk adds into its own row of the partial sums,
        # which are added up afterwards (no two threads write the same entry).
        N = x.shape[0]
        n_chunks = dgamma_parts.shape[0]
        for k in numba.prange(n_chunks):
            _backward_rows(dy, x, mean, rstd, gamma, dx, dgamma_parts[k], dbeta_parts[k],
                           k * N // n_chunks, (k + 1) * N // n_chunks)


def layernorm_forward(x, gamma, beta, eps: float):
    """x [N, C] -> (y [N, C], mean [N], rstd [N]), NumPy arrays."""
    x = numpy.ascontiguousarray(x)
    N, C = x.shape
    y = numpy.empty_like(x)
    mean = numpy.empty(N, dtype=x.dtype)
    rstd = numpy.empty(N, dtype=x.dtype)
    chunks = parallel_chunks(N * C, N)
    if chunks == 1:
        _forward_rows(x, gamma, beta, eps, y, mean, rstd, 0, N)
    else:
        _forward_parallel(x, gamma, beta, eps, y, mean, rstd, chunks)
    return y, mean, rstd


def layernorm_backward(dy, x, mean, rstd, gamma):
    """-> (dx [N, C], dgamma [C], dbeta [C]), NumPy arrays."""
    dy, x = numpy.ascontiguousarray(dy), numpy.ascontiguousarray(x)
    N, C = x.shape
    dx = numpy.empty_like(x)
    chunks = parallel_chunks(N * C, N)
    dgamma_parts = numpy.zeros((chunks, C))                      # float64 partial sums [K, C]
    dbeta_parts = numpy.zeros((chunks, C))
    if chunks == 1:
        _backward_rows(dy, x, mean, rstd, gamma, dx, dgamma_parts[0], dbeta_parts[0], 0, N)
    else:
        _backward_parallel(dy, x, mean, rstd, gamma, dx, dgamma_parts, dbeta_parts)
    return (dx, dgamma_parts.sum(axis=0).astype(x.dtype),
            dbeta_parts.sum(axis=0).astype(x.dtype))
