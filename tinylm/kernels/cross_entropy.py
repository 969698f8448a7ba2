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

    @numba.njit(cache=True, parallel=True)
    def _cross_entropy_forward_numba(logits, targets, ignore_index, row_loss, lse):
        N, V = logits.shape
        for n in numba.prange(N):
            m = logits[n, 0]
            for j in range(1, V):
                if logits[n, j] > m:
                    m = logits[n, j]
            s = 0.0
            for j in range(V):
                s += math.exp(logits[n, j] - m)
            lse[n] = m + math.log(s)
            t = targets[n]
            row_loss[n] = 0.0 if t == ignore_index else lse[n] - logits[n, t]

    @numba.njit(cache=True, parallel=True)
    def _cross_entropy_backward_numba(logits, lse, targets, row_grad, ignore_index, dlogits):
        N, V = logits.shape
        for n in numba.prange(N):
            g = row_grad[n]
            for j in range(V):
                dlogits[n, j] = math.exp(logits[n, j] - lse[n]) * g
            t = targets[n]
            if t != ignore_index:
                dlogits[n, t] -= g


def cross_entropy_forward(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], lse [N])."""
    if use_numba(logits, targets):
        logits = numpy.ascontiguousarray(logits)
        row_loss = numpy.empty(logits.shape[0], dtype=logits.dtype)
        lse = numpy.empty(logits.shape[0], dtype=logits.dtype)
        _cross_entropy_forward_numba(logits, targets.astype(numpy.int64, copy=False),
                                     ignore_index, row_loss, lse)
        return row_loss, lse
    return cross_entropy_forward_reference(logits, targets, ignore_index)


def cross_entropy_backward(logits, lse, targets, row_grad, ignore_index: int):
    """Gradient of sum_n row_grad[n] * loss_n with respect to the logits [N, V]."""
    if use_numba(logits, targets):
        logits = numpy.ascontiguousarray(logits)
        dlogits = numpy.empty_like(logits)
        _cross_entropy_backward_numba(logits, lse, targets.astype(numpy.int64, copy=False),
                                      row_grad.astype(logits.dtype, copy=False),
                                      ignore_index, dlogits)
        return dlogits
    return cross_entropy_backward_reference(logits, lse, targets, row_grad, ignore_index)
