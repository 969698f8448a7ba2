"""Gather-sum and scatter-add over a sliding window of token ids (the MLP LM's fast path).

Forward, for tables P [n, R, H] and padded ids [B, T+n-1]:

    out[b, t] = sum_{k<n} P[k, ids[b, t+k]]                       out: [B, T, H]

Backward, given dout [B, T, H]:

    dP[k, r] = sum_{(b, t) : ids[b, t+k] = r} dout[b, t]          dP: [n, R, H]

(a scatter-add per window offset k: an id seen twice receives two rows).
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import JIT, parallel_chunks


def window_sum_reference(tables, ids, T: int):
    """tables [n, R, H], ids [B, T+n-1] int -> out [B, T, H]."""
    xp = get_array_module(tables)
    out = xp.take(tables[0], ids[:, 0:T], axis=0)                   # [B, T, H]
    for k in range(1, tables.shape[0]):
        out += xp.take(tables[k], ids[:, k:k + T], axis=0)
    return out


def window_sum_backward_reference(dout, ids, n: int, R: int):
    """dout [B, T, H], ids [B, T+n-1] -> dtables [n, R, H]."""
    xp = get_array_module(dout)
    B, T, H = dout.shape
    dtables = xp.zeros((n, R, H), dtype=dout.dtype)
    flat = dout.reshape(B * T, H)
    for k in range(n):
        xp.add.at(dtables[k], ids[:, k:k + T].reshape(-1), flat)
    return dtables


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _gather_sum_rows(tables, ids, out, lo, hi):
        """out[b, t] = sum_k tables[k, ids[b, t+k]] for the flat positions bt in [lo, hi)."""
        n = tables.shape[0]
        _, T, H = out.shape
        for bt in range(lo, hi):
            b, t = bt // T, bt % T
            r = ids[b, t]
            for h in range(H):
                out[b, t, h] = tables[0, r, h]
            for k in range(1, n):
                r = ids[b, t + k]
                for h in range(H):
                    out[b, t, h] += tables[k, r, h]

    @numba.njit(parallel=True, **JIT)
    def _gather_sum_parallel(tables, ids, out, n_chunks):
        rows = out.shape[0] * out.shape[1]
        for c in numba.prange(n_chunks):
            _gather_sum_rows(tables, ids, out, c * rows // n_chunks, (c + 1) * rows // n_chunks)

    @numba.njit(**JIT)
    def _scatter_add_columns(dout, ids, dtables, lo, hi):
        """dtables[k, ids[b, t+k], lo:hi] += dout[b, t, lo:hi], in position order."""
        n = dtables.shape[0]
        B, T, _ = dout.shape
        for b in range(B):
            for t in range(T):
                src = dout[b, t, lo:hi]             # slices indexed from 0: SIMD loops
                for k in range(n):
                    dst = dtables[k, ids[b, t + k], lo:hi]
                    for h in range(src.shape[0]):
                        dst[h] += src[h]

    @numba.njit(parallel=True, **JIT)
    def _scatter_add_parallel(dout, ids, dtables, n_chunks):
        # Each chunk owns a slice of the H columns: no two threads write the same entry.
        H = dout.shape[2]
        for c in numba.prange(n_chunks):
            _scatter_add_columns(dout, ids, dtables, c * H // n_chunks, (c + 1) * H // n_chunks)


def window_sum(tables, ids, T: int):
    """tables [n, R, H], ids [B, T+n-1] int -> out [B, T, H]."""
    if use_numba(tables, ids):
        n, _, H = tables.shape
        out = numpy.empty((ids.shape[0], T, H), dtype=tables.dtype)
        tables = numpy.ascontiguousarray(tables)
        ids = numpy.ascontiguousarray(ids, dtype=numpy.int64)
        chunks = parallel_chunks(out.size * n, ids.shape[0] * T)
        if chunks == 1:
            _gather_sum_rows(tables, ids, out, 0, ids.shape[0] * T)
        else:
            _gather_sum_parallel(tables, ids, out, chunks)
        return out
    return window_sum_reference(tables, ids, T)


def window_sum_backward(dout, ids, n: int, R: int):
    """dout [B, T, H], ids [B, T+n-1] -> dtables [n, R, H]."""
    if use_numba(dout, ids):
        H = dout.shape[2]
        dtables = numpy.zeros((n, R, H), dtype=dout.dtype)
        dout = numpy.ascontiguousarray(dout)
        ids = numpy.ascontiguousarray(ids, dtype=numpy.int64)
        chunks = parallel_chunks(dout.size * n, H)
        if chunks == 1:
            _scatter_add_columns(dout, ids, dtables, 0, H)
        else:
            _scatter_add_parallel(dout, ids, dtables, chunks)
        return dtables
    return window_sum_backward_reference(dout, ids, n, R)
