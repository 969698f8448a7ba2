"""numba kernels of the fused softmax + cross-entropy over rows of logits [N, V].

The derivation, and the reference these kernels must agree with, are in
tinylm/functional/cross_entropy.py. Each row takes one pass for the maximum, one for the
exponentials (for float32 data from the SIMD exp of tinylm/kernels/simd_exp.py; float64
keeps libm's) and one to normalise; the sum of a row is float64, also for float32 data.
Called on NumPy arrays only, when ``tinylm.backend.use_numba`` says so.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks
from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace


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
    """logits [N, V], targets [N] int (NumPy) -> (row_loss [N], probs [N, V])."""
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


def cross_entropy_backward(probs, targets, row_grad, ignore_index: int):
    """Gradient of sum_n row_grad[n] * loss_n with respect to the logits [N, V] (NumPy)."""
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
