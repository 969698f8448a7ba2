"""Embedding backward: scatter-add the rows of the upstream gradient into the table.

    dW[v] = sum over positions i with ids[i] == v of dout[i]

A token id that appears k times contributes k rows; a plain ``dW[ids] += dout`` would keep
only one of them, which is the classic embedding-gradient bug.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import FASTMATH, parallel_chunks


def embedding_backward_reference(ids, dout, num_embeddings: int):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D]."""
    xp = get_array_module(dout)
    dW = xp.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    xp.add.at(dW, ids, dout)
    return dW


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(cache=True, fastmath=FASTMATH)
    def _scatter_add_columns(ids, dout, dW, lo, hi):
        """dW[ids[i], lo:hi] += dout[i, lo:hi] for every position i, in position order."""
        for i in range(ids.shape[0]):
            row = ids[i]
            for d in range(lo, hi):
                dW[row, d] += dout[i, d]

    @numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
    def _scatter_add_parallel(ids, dout, dW, n_chunks):
        # Each chunk owns a slice of columns: no two threads write the same entry, and each
        # entry still sums its rows in position order (the same result on any thread count).
        D = dout.shape[1]
        for c in numba.prange(n_chunks):
            _scatter_add_columns(ids, dout, dW, c * D // n_chunks, (c + 1) * D // n_chunks)


def embedding_backward(ids, dout, num_embeddings: int):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (dispatching to numba on CPU)."""
    if use_numba(ids, dout):
        N, D = dout.shape
        ids = numpy.ascontiguousarray(ids, dtype=numpy.int64)
        dout = numpy.ascontiguousarray(dout)
        dW = numpy.zeros((num_embeddings, D), dtype=dout.dtype)
        chunks = parallel_chunks(N * D, D)
        if chunks == 1:
            _scatter_add_columns(ids, dout, dW, 0, D)
        else:
            _scatter_add_parallel(ids, dout, dW, chunks)
        return dW
    return embedding_backward_reference(ids, dout, num_embeddings)
