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

    @numba.njit(cache=True, parallel=True)
    def _window_sum_numba(tables, ids, out):
        n = tables.shape[0]
        B, T, H = out.shape
        for bt in numba.prange(B * T):
            b, t = bt // T, bt % T
            r = ids[b, t]
            for h in range(H):
                out[b, t, h] = tables[0, r, h]
            for k in range(1, n):
                r = ids[b, t + k]
                for h in range(H):
                    out[b, t, h] += tables[k, r, h]

    @numba.njit(cache=True, parallel=True)
    def _window_sum_backward_numba(dout, ids, dtables, n_chunks):
        # Each thread owns a slice of the H columns: no two threads write the same element.
        n = dtables.shape[0]
        B, T, H = dout.shape
        for c in numba.prange(n_chunks):
            lo, hi = c * H // n_chunks, (c + 1) * H // n_chunks
            for b in range(B):
                for t in range(T):
                    for k in range(n):
                        r = ids[b, t + k]
                        for h in range(lo, hi):
                            dtables[k, r, h] += dout[b, t, h]


def window_sum(tables, ids, T: int):
    """tables [n, R, H], ids [B, T+n-1] int -> out [B, T, H]."""
    if use_numba(tables, ids):
        out = numpy.empty((ids.shape[0], T, tables.shape[2]), dtype=tables.dtype)
        _window_sum_numba(numpy.ascontiguousarray(tables), ids.astype(numpy.int64), out)
        return out
    return window_sum_reference(tables, ids, T)


def window_sum_backward(dout, ids, n: int, R: int):
    """dout [B, T, H], ids [B, T+n-1] -> dtables [n, R, H]."""
    if use_numba(dout, ids):
        import numba
        dtables = numpy.zeros((n, R, dout.shape[2]), dtype=dout.dtype)
        n_chunks = max(1, min(dout.shape[2] // 16, numba.get_num_threads() * 2))
        _window_sum_backward_numba(numpy.ascontiguousarray(dout), ids.astype(numpy.int64),
                                   dtables, n_chunks)
        return dtables
    return window_sum_backward_reference(dout, ids, n, R)
