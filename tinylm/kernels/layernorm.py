"""Layer normalisation over the last axis of a [N, C] array.

Forward:   mu = mean(x),  var = mean((x - mu)^2),  rstd = 1 / sqrt(var + eps),
           xhat = (x - mu) * rstd,   y = gamma * xhat + beta

Backward (per row; g = gamma * dy):

    dbeta  = sum_n dy_n                 dgamma = sum_n dy_n * xhat_n
    dx     = rstd * (g - mean(g) - xhat * mean(g * xhat))

The dx formula comes from differentiating through mu and var; chapter 03 derives it.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba


def layernorm_forward_reference(x, gamma, beta, eps: float):
    """x [N, C], gamma [C], beta [C] -> (y [N, C], mean [N], rstd [N])."""
    xp = get_array_module(x)
    mean = x.mean(axis=1)                                         # [N]
    xc = x - mean[:, None]                                        # [N, C]
    var = (xc * xc).mean(axis=1)                                  # [N]
    rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)             # [N]
    y = xc * rstd[:, None] * gamma + beta                         # [N, C]
    return y, mean, rstd


def layernorm_backward_reference(dy, x, mean, rstd, gamma):
    """-> (dx [N, C], dgamma [C], dbeta [C])."""
    xhat = (x - mean[:, None]) * rstd[:, None]                    # [N, C]
    g = dy * gamma                                                # [N, C]
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True)
                          - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


if NUMBA_AVAILABLE:
    import math

    import numba

    @numba.njit(cache=True, parallel=True)
    def _layernorm_forward_numba(x, gamma, beta, eps, y, mean, rstd):
        N, C = x.shape
        for n in numba.prange(N):
            s = 0.0
            for c in range(C):
                s += x[n, c]
            mu = s / C
            v = 0.0
            for c in range(C):
                d = x[n, c] - mu
                v += d * d
            r = 1.0 / math.sqrt(v / C + eps)
            for c in range(C):
                y[n, c] = (x[n, c] - mu) * r * gamma[c] + beta[c]
            mean[n] = mu
            rstd[n] = r

    @numba.njit(cache=True, parallel=True)
    def _layernorm_backward_numba(dy, x, mean, rstd, gamma, dx, dgamma_rows, dbeta_rows):
        # dgamma/dbeta are reduced over rows; each thread accumulates into its own chunk
        # row of the partial-sum arrays, summed afterwards (no write conflicts).
        N, C = x.shape
        n_chunks = dgamma_rows.shape[0]
        for k in numba.prange(n_chunks):
            lo = k * N // n_chunks
            hi = (k + 1) * N // n_chunks
            for n in range(lo, hi):
                mu = mean[n]
                r = rstd[n]
                sg = 0.0
                sgx = 0.0
                for c in range(C):
                    xhat = (x[n, c] - mu) * r
                    g = dy[n, c] * gamma[c]
                    sg += g
                    sgx += g * xhat
                    dgamma_rows[k, c] += dy[n, c] * xhat
                    dbeta_rows[k, c] += dy[n, c]
                sg /= C
                sgx /= C
                for c in range(C):
                    xhat = (x[n, c] - mu) * r
                    dx[n, c] = r * (dy[n, c] * gamma[c] - sg - xhat * sgx)


def layernorm_forward(x, gamma, beta, eps: float):
    """x [N, C] -> (y [N, C], mean [N], rstd [N])."""
    if use_numba(x, gamma, beta):
        x = numpy.ascontiguousarray(x)
        y = numpy.empty_like(x)
        mean = numpy.empty(x.shape[0], dtype=x.dtype)
        rstd = numpy.empty(x.shape[0], dtype=x.dtype)
        _layernorm_forward_numba(x, gamma, beta, eps, y, mean, rstd)
        return y, mean, rstd
    return layernorm_forward_reference(x, gamma, beta, eps)


def layernorm_backward(dy, x, mean, rstd, gamma):
    """-> (dx [N, C], dgamma [C], dbeta [C])."""
    if use_numba(dy, x, gamma):
        import numba
        dy = numpy.ascontiguousarray(dy)
        n_chunks = max(1, min(x.shape[0], numba.get_num_threads() * 2))
        dx = numpy.empty_like(x)
        dgamma_rows = numpy.zeros((n_chunks, x.shape[1]), dtype=x.dtype)
        dbeta_rows = numpy.zeros((n_chunks, x.shape[1]), dtype=x.dtype)
        _layernorm_backward_numba(dy, x, mean, rstd, gamma, dx, dgamma_rows, dbeta_rows)
        return dx, dgamma_rows.sum(axis=0), dbeta_rows.sum(axis=0)
    return layernorm_backward_reference(dy, x, mean, rstd, gamma)
