"""numba kernels of the sparse linear layer: CSR @ dense and CSR^T @ dense.

The maths and the references are in tinylm/functional/sparse_linear.py. Called on NumPy
arrays only, when ``tinylm.backend.use_numba`` says so; the CSR arrays have been checked
there (the loops below index without bounds checks).

* ``csr_matmul``: Y = X W. Rows are independent, so row ranges go to numba's threads; each
  row sums its entries in storage order, the same on any thread count.
* ``csr_transpose_matmul``: dW = X^T dY, a scatter-add into rows of dW that any row of X may
  hit. Each thread owns a slice of dW's columns (as the embedding kernel does), so no two
  threads write the same entry and every entry sums in row order. With C = 2 classes that
  is at most two chunks; below ``PARALLEL_MIN_WORK`` it runs serially.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT, parallel_chunks


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _matmul_rows(data, indices, indptr, W, Y, lo, hi):
        """Y[i] = sum_k data[k] W[indices[k]] over row i's entries, rows lo .. hi - 1."""
        C = W.shape[1]
        for i in range(lo, hi):
            for k in range(indptr[i], indptr[i + 1]):
                x, j = data[k], indices[k]
                for c in range(C):
                    Y[i, c] += x * W[j, c]

    @numba.njit(parallel=True, **JIT)
    def _matmul_parallel(data, indices, indptr, W, Y, n_chunks):
        N = Y.shape[0]
        for t in numba.prange(n_chunks):
            _matmul_rows(data, indices, indptr, W, Y, t * N // n_chunks, (t + 1) * N // n_chunks)

    @numba.njit(**JIT)
    def _transpose_matmul_columns(data, indices, indptr, dY, dW, lo, hi):
        """dW[indices[k], lo:hi] += data[k] dY[i, lo:hi] over every entry k of every row i."""
        for i in range(dY.shape[0]):
            for k in range(indptr[i], indptr[i + 1]):
                x, j = data[k], indices[k]
                for c in range(lo, hi):
                    dW[j, c] += x * dY[i, c]

    @numba.njit(parallel=True, **JIT)
    def _transpose_matmul_parallel(data, indices, indptr, dY, dW, n_chunks):
        C = dY.shape[1]
        for t in numba.prange(n_chunks):
            _transpose_matmul_columns(data, indices, indptr, dY, dW,
                                      t * C // n_chunks, (t + 1) * C // n_chunks)


def _contiguous(data, indices, indptr, dense):
    """The CSR arrays as the kernels take them: values in the dense operand's dtype, int64
    indices, everything C-contiguous."""
    return (numpy.ascontiguousarray(data, dtype=dense.dtype),
            numpy.ascontiguousarray(indices, dtype=numpy.int64),
            numpy.ascontiguousarray(indptr, dtype=numpy.int64),
            numpy.ascontiguousarray(dense))


def csr_matmul(data, indices, indptr, W):
    """CSR X [N, F] (its three arrays), W [F, C] (NumPy) -> X W [N, C] in W's dtype."""
    data, indices, indptr, W = _contiguous(data, indices, indptr, W)
    N = indptr.shape[0] - 1
    Y = numpy.zeros((N, W.shape[1]), dtype=W.dtype)
    chunks = parallel_chunks(data.shape[0] * W.shape[1], N)
    if chunks == 1:
        _matmul_rows(data, indices, indptr, W, Y, 0, N)
    else:
        _matmul_parallel(data, indices, indptr, W, Y, chunks)
    return Y


def csr_transpose_matmul(data, indices, indptr, dY, n_features: int):
    """CSR X [N, F] (its three arrays), dY [N, C] (NumPy) -> X^T dY [F, C] in dY's dtype."""
    data, indices, indptr, dY = _contiguous(data, indices, indptr, dY)
    C = dY.shape[1]
    dW = numpy.zeros((n_features, C), dtype=dY.dtype)
    chunks = parallel_chunks(data.shape[0] * C, C)
    if chunks == 1:
        _transpose_matmul_columns(data, indices, indptr, dY, dW, 0, C)
    else:
        _transpose_matmul_parallel(data, indices, indptr, dY, dW, chunks)
    return dW
