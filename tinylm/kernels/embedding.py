"""numba kernel of the embedding backward: scatter-add gradient rows into a table.

The maths and the reference are in tinylm/functional/embedding.py. The kernel splits the
table's columns over threads, so no two threads write the same entry and every entry sums
its rows in position order (the same result on any thread count). Called on NumPy arrays
only, when ``tinylm.backend.use_numba`` says so.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks


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


def embedding_backward(ids, dout, dW):
    """ids [N] int, dout [N, D], dW [V, D] C-contiguous (NumPy): dW[ids[i]] += dout[i]."""
    N, D = dout.shape
    ids = numpy.ascontiguousarray(ids, dtype=numpy.int64)
    dout = numpy.ascontiguousarray(dout)
    chunks = parallel_chunks(N * D, D)
    if chunks == 1:
        _scatter_add_columns(ids, dout, dW, 0, D)
    else:
        _scatter_add_parallel(ids, dout, dW, chunks)
    return dW
