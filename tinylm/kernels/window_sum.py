"""numba kernels of the gather-sum and scatter-add over a sliding window of token ids.

They accelerate the MLP LM's first layer; the maths and the references they must agree
with are in tinylm/functional/window_projection.py. The forward splits the positions over
threads; the backward splits the H columns, so no two threads write the same entry.
Called on NumPy arrays only, when ``tinylm.backend.use_numba`` says so.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks


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
    """tables [n, R, H], ids [B, T+n-1] int (NumPy) -> out [B, T, H]."""
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


def window_sum_backward(dout, ids, n: int, R: int):
    """dout [B, T, H], ids [B, T+n-1] (NumPy) -> dtables [n, R, H]."""
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
