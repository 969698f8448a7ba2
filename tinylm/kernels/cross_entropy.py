"""Fused softmax + cross-entropy over rows of logits.

Forward, per row n with target y_n (rows whose target is ``ignore_index`` score 0):

    m_n    = max_j z_nj                        (subtracted so that exp never overflows)
    p_nj   = exp(z_nj - m_n) / sum_k exp(z_nk - m_n)      = softmax(z_n)_j
    loss_n = m_n + log sum_k exp(z_nk - m_n) - z_{n, y_n} = logsumexp(z_n) - z_{n, y_n}

Backward, given the upstream gradient g_n of each row's loss:

    dz_nj = g_n * (p_nj - [j == y_n])

The forward keeps the probabilities p [N, V] for the backward. The exponential is the
expensive part (a libm call per entry, about 3 ns, against well under 1 ns for a multiply),
so computing it once and storing it beats storing only logsumexp and recomputing p, at the
cost of one [N, V] array, the size of the logits. For float32 data the numba kernel takes
the exponentials from the SIMD exp of tinylm/kernels/simd_exp.py; float64 (gradient checks,
parity tests) keeps libm's.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import JIT, parallel_chunks
from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace


def cross_entropy_forward_reference(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], probs [N, V])."""
    xp = get_array_module(logits)
    m = logits.max(axis=1, keepdims=True)                                # [N, 1]
    exps = xp.exp(logits - m)                                            # [N, V]
    sums = exps.sum(axis=1, keepdims=True)                               # [N, 1]
    lse = (m + xp.log(sums))[:, 0]                                       # [N]
    valid = targets != ignore_index                                      # [N]
    safe = xp.where(valid, targets, 0)                                   # [N]
    picked = xp.take_along_axis(logits, safe[:, None], axis=1)[:, 0]     # [N]
    row_loss = xp.where(valid, lse - picked, 0).astype(logits.dtype)     # [N]
    return row_loss, exps / sums


def cross_entropy_backward_reference(probs, targets, row_grad, ignore_index: int):
    """probs [N, V], row_grad [N] (0 on ignored rows) -> dlogits [N, V]."""
    xp = get_array_module(probs)
    dlogits = probs * row_grad[:, None]                                  # [N, V]
    valid = targets != ignore_index
    rows = xp.arange(probs.shape[0])[valid]
    dlogits[rows, targets[valid]] -= row_grad[valid]
    return dlogits


if NUMBA_AVAILABLE:
    import math

    import numba

    @numba.njit(**JIT)
    def _forward_rows(logits, targets, ignore_index, simd, ex, row_loss, probs, lo, hi):
        """Rows lo..hi-1; ``simd`` (float32 data) takes the exponentials from exp_inplace."""
        V = logits.shape[1]
        bits = numpy.empty(V, dtype=numpy.int32)         # scratch of exp_inplace
        for n in range(lo, hi):
            zn, pn = logits[n], probs[n]                # row views indexed from 0: SIMD loops
            m = zn[0]
            for j in range(1, V):
                m = max(m, zn[j])
            if simd:
                for j in range(V):
                    pn[j] = zn[j] - m
                exp_inplace(pn, bits, ex)
            else:
                for j in range(V):
                    pn[j] = math.exp(zn[j] - m)
            s = 0.0                                     # float64 sum, also for float32 rows
            for j in range(V):
                s += pn[j]
            inv = 1.0 / s
            for j in range(V):
                pn[j] *= inv
            t = targets[n]
            row_loss[n] = 0.0 if t == ignore_index else m + math.log(s) - zn[t]

    @numba.njit(**JIT)
    def _backward_rows(probs, targets, row_grad, ignore_index, dlogits, lo, hi):
        V = probs.shape[1]
        for n in range(lo, hi):
            g = row_grad[n]
            for j in range(V):
                dlogits[n, j] = probs[n, j] * g
            t = targets[n]
            if t != ignore_index:
                dlogits[n, t] -= g

    @numba.njit(parallel=True, **JIT)
    def _forward_parallel(logits, targets, ignore_index, simd, ex, row_loss, probs, n_chunks):
        N = logits.shape[0]
        for c in numba.prange(n_chunks):
            _forward_rows(logits, targets, ignore_index, simd, ex, row_loss, probs,
                          c * N // n_chunks, (c + 1) * N // n_chunks)

    @numba.njit(parallel=True, **JIT)
    def _backward_parallel(probs, targets, row_grad, ignore_index, dlogits, n_chunks):
        N = probs.shape[0]
        for c in numba.prange(n_chunks):
            _backward_rows(probs, targets, row_grad, ignore_index, dlogits,
                           c * N // n_chunks, (c + 1) * N // n_chunks)


def cross_entropy_forward(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], probs [N, V])."""
    if use_numba(logits, targets):
        logits = numpy.ascontiguousarray(logits)
        targets = numpy.ascontiguousarray(targets, dtype=numpy.int64)
        N, V = logits.shape
        row_loss = numpy.empty(N, dtype=logits.dtype)
        probs = numpy.empty_like(logits)
        chunks = parallel_chunks(N * V, N)
        args = (logits, targets, ignore_index, logits.dtype == numpy.float32, EXP_POLY,
                row_loss, probs)
        if chunks == 1:
            _forward_rows(*args, 0, N)
        else:
            _forward_parallel(*args, chunks)
        return row_loss, probs
    return cross_entropy_forward_reference(logits, targets, ignore_index)


def cross_entropy_backward(probs, targets, row_grad, ignore_index: int):
    """Gradient of sum_n row_grad[n] * loss_n with respect to the logits [N, V]."""
    if use_numba(probs, targets):
        targets = numpy.ascontiguousarray(targets, dtype=numpy.int64)
        row_grad = numpy.ascontiguousarray(row_grad, dtype=probs.dtype)
        N, V = probs.shape
        dlogits = numpy.empty_like(probs)
        chunks = parallel_chunks(N * V, N)
        if chunks == 1:
            _backward_rows(probs, targets, row_grad, ignore_index, dlogits, 0, N)
        else:
            _backward_parallel(probs, targets, row_grad, ignore_index, dlogits, chunks)
        return dlogits
    return cross_entropy_backward_reference(probs, targets, row_grad, ignore_index)
