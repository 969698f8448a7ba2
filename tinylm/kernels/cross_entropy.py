"""Fused softmax + cross-entropy over rows of logits.

Forward, per row n with target y_n (rows whose target is ``ignore_index`` score 0):

    lse_n  = log sum_j exp(z_nj)              (computed as m + log sum exp(z - m), m = max z)
    loss_n = lse_n - z_{n, y_n}

Backward, given the upstream gradient g_n of each row's loss:

    dz_nj = g_n * (softmax(z_n)_j - [j == y_n]),   softmax(z_n)_j = exp(z_nj - lse_n)

Only ``lse`` is kept between the passes: the probabilities are recomputed from the logits,
so no second [N, V] array is stored.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import FASTMATH, parallel_chunks


def cross_entropy_forward_reference(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], lse [N])."""
    xp = get_array_module(logits)
    m = logits.max(axis=1, keepdims=True)                                # [N, 1]
    lse = (m + xp.log(xp.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]  # [N]
    valid = targets != ignore_index                                      # [N]
    safe = xp.where(valid, targets, 0)                                   # [N]
    picked = xp.take_along_axis(logits, safe[:, None], axis=1)[:, 0]     # [N]
    row_loss = xp.where(valid, lse - picked, 0).astype(logits.dtype)     # [N]
    return row_loss, lse


def cross_entropy_backward_reference(logits, lse, targets, row_grad, ignore_index: int):
    """row_grad [N] (0 on ignored rows) -> dlogits [N, V]."""
    xp = get_array_module(logits)
    dlogits = xp.exp(logits - lse[:, None]) * row_grad[:, None]          # [N, V]
    valid = targets != ignore_index
    rows = xp.arange(logits.shape[0])[valid]
    dlogits[rows, targets[valid]] -= row_grad[valid]
    return dlogits


if NUMBA_AVAILABLE:
    import math

    import numba

    @numba.njit(cache=True, fastmath=FASTMATH)
    def _forward_rows(logits, targets, ignore_index, row_loss, lse, lo, hi):
        V = logits.shape[1]
        for n in range(lo, hi):
            m = logits[n, 0]
            for j in range(1, V):
                m = max(m, logits[n, j])
            s = 0.0                                     # float64 sum, also for float32 rows
            for j in range(V):
                s += math.exp(logits[n, j] - m)
            lse[n] = m + math.log(s)
            t = targets[n]
            row_loss[n] = 0.0 if t == ignore_index else lse[n] - logits[n, t]

    @numba.njit(cache=True, fastmath=FASTMATH)
    def _backward_rows(logits, lse, targets, row_grad, ignore_index, dlogits, lo, hi):
        V = logits.shape[1]
        for n in range(lo, hi):
            g = row_grad[n]
            for j in range(V):
                dlogits[n, j] = math.exp(logits[n, j] - lse[n]) * g
            t = targets[n]
            if t != ignore_index:
                dlogits[n, t] -= g

    @numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
    def _forward_parallel(logits, targets, ignore_index, row_loss, lse, n_chunks):
        N = logits.shape[0]
        for c in numba.prange(n_chunks):
            _forward_rows(logits, targets, ignore_index, row_loss, lse,
                          c * N // n_chunks, (c + 1) * N // n_chunks)

    @numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
    def _backward_parallel(logits, lse, targets, row_grad, ignore_index, dlogits, n_chunks):
        N = logits.shape[0]
        for c in numba.prange(n_chunks):
            _backward_rows(logits, lse, targets, row_grad, ignore_index, dlogits,
                           c * N // n_chunks, (c + 1) * N // n_chunks)


def cross_entropy_forward(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], lse [N])."""
    if use_numba(logits, targets):
        logits = numpy.ascontiguousarray(logits)
        targets = numpy.ascontiguousarray(targets, dtype=numpy.int64)
        N, V = logits.shape
        row_loss = numpy.empty(N, dtype=logits.dtype)
        lse = numpy.empty(N, dtype=logits.dtype)
        chunks = parallel_chunks(N * V, N)
        if chunks == 1:
            _forward_rows(logits, targets, ignore_index, row_loss, lse, 0, N)
        else:
            _forward_parallel(logits, targets, ignore_index, row_loss, lse, chunks)
        return row_loss, lse
    return cross_entropy_forward_reference(logits, targets, ignore_index)


def cross_entropy_backward(logits, lse, targets, row_grad, ignore_index: int):
    """Gradient of sum_n row_grad[n] * loss_n with respect to the logits [N, V]."""
    if use_numba(logits, targets):
        logits = numpy.ascontiguousarray(logits)
        targets = numpy.ascontiguousarray(targets, dtype=numpy.int64)
        row_grad = numpy.ascontiguousarray(row_grad, dtype=logits.dtype)
        N, V = logits.shape
        dlogits = numpy.empty_like(logits)
        chunks = parallel_chunks(N * V, N)
        if chunks == 1:
            _backward_rows(logits, lse, targets, row_grad, ignore_index, dlogits, 0, N)
        else:
            _backward_parallel(logits, lse, targets, row_grad, ignore_index, dlogits, chunks)
        return dlogits
    return cross_entropy_backward_reference(logits, lse, targets, row_grad, ignore_index)
