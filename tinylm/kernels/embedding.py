"""Embedding backward: scatter-add the rows of the upstream gradient into the table.

    dW[v] = sum over positions i with ids[i] == v of dout[i]

A token id that appears k times contributes k rows; a plain ``dW[ids] += dout`` would keep
only one of them, which is the classic embedding-gradient bug.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba
from tinylm.kernels import JIT, parallel_chunks


def _table(dout, num_embeddings: int, out):
    """The [num_embeddings, D] array to add into: ``out`` itself, or fresh zeros."""
    xp = get_array_module(dout)
    if out is None:
        return xp.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    if out.shape != (num_embeddings, dout.shape[1]) or out.dtype != dout.dtype:
        raise ValueError(f"embedding backward: out has shape {out.shape} ({out.dtype}); it must "
                         f"be [{num_embeddings}, {dout.shape[1]}] of dtype {dout.dtype}.")
    return out


def embedding_backward_reference(ids, dout, num_embeddings: int, out=None):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (added into ``out`` if given)."""
    xp = get_array_module(dout)
    dW = _table(dout, num_embeddings, out)
    xp.add.at(dW, ids, dout)
    return dW


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _scatter_add_columns(ids, dout, dW, lo, hi):
        """dW[ids[i], lo:hi] += dout[i, lo:hi] for every position i, in position order."""
        for i in range(ids.shape[0]):
            row = ids[i]
            for d in range(lo, hi):
                dW[row, d] += dout[i, d]

    @numba.njit(parallel=True, **JIT)
    def _scatter_add_parallel(ids, dout, dW, n_chunks):
        # Each chunk owns a slice of columns: no two threads write the same entry, and each
        # entry still sums its rows in position order (the same result on any thread count).
        D = dout.shape[1]
        for c in numba.prange(n_chunks):
            _scatter_add_columns(ids, dout, dW, c * D // n_chunks, (c + 1) * D // n_chunks)


def embedding_backward(ids, dout, num_embeddings: int, out=None):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (dispatching to numba on CPU).

    With ``out`` (a [num_embeddings, D] gradient accumulator) the rows are added into it and
    it is returned: a 10,000-word table is then neither allocated nor summed per step.
    """
    if use_numba(ids, dout) and (out is None or out.flags.c_contiguous):
        N, D = dout.shape
        ids = numpy.ascontiguousarray(ids, dtype=numpy.int64)
        dout = numpy.ascontiguousarray(dout)
        dW = _table(dout, num_embeddings, out)
        chunks = parallel_chunks(N * D, D)
        if chunks == 1:
            _scatter_add_columns(ids, dout, dW, 0, D)
        else:
            _scatter_add_parallel(ids, dout, dW, chunks)
        return dW
    return embedding_backward_reference(ids, dout, num_embeddings, out)
