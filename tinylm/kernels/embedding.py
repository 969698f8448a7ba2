"""Embedding backward: scatter-add the rows of the upstream gradient into the table.

    dW[v] = sum over positions i with ids[i] == v of dout[i]

A token id that appears k times contributes k rows; a plain ``dW[ids] += dout`` would keep
only one of them, which is the classic embedding-gradient bug.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba


def embedding_backward_reference(ids, dout, num_embeddings: int):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D]."""
    xp = get_array_module(dout)
    dW = xp.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    xp.add.at(dW, ids, dout)
    return dW


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(cache=True, parallel=True)
    def _embedding_backward_numba(ids, dout, dW, n_chunks):
        # Parallel over embedding columns: each thread owns a column slice, so the
        # scatter has no write conflicts and stays in the order of the positions.
        N, D = dout.shape
        for c in numba.prange(n_chunks):
            lo = c * D // n_chunks
            hi = (c + 1) * D // n_chunks
            for i in range(N):
                row = ids[i]
                for d in range(lo, hi):
                    dW[row, d] += dout[i, d]


def embedding_backward(ids, dout, num_embeddings: int):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (dispatching to numba on CPU)."""
    if use_numba(ids, dout):
        dW = numpy.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
        _embedding_backward_numba(numpy.ascontiguousarray(ids, dtype=numpy.int64),
                                  numpy.ascontiguousarray(dout), dW,
                                  max(1, min(dout.shape[1], numba.get_num_threads() * 4)))
        return dW
    return embedding_backward_reference(ids, dout, num_embeddings)
