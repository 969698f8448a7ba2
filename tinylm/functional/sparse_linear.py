"""The linear layer on a sparse input: Y = X W + b, with X a CSR matrix.

Shapes: X [N, F] sparse (CSR), W [F, C], b [C] -> Y [N, C]. A bag-of-words or TF-IDF row
has a few dozen non-zero entries out of F = 10^4 .. 10^6 features, so X is stored as the
list of its non-zero entries, row after row (compressed sparse rows, CSR):

    data    [nnz]   the values x_k
    indices [nnz]   the column (feature) j_k of each value
    indptr  [N+1]   row i holds entries k = indptr[i] .. indptr[i+1] - 1

Writing r_k for the row of entry k, the product touches only the non-zero entries:

    Y_ic = b_c + sum_{k : r_k = i} x_k W_{j_k c}        (cost nnz * C instead of N * F * C)

Backward, with dY = dL/dY [N, C]. Y_ic depends on W_jc through the entries of row i in
column j, and on b_c once per row, so

    dW_jc = sum_i X_ij dY_ic = sum_{k : j_k = j} x_k dY_{r_k c}       dW = X^T dY  [F, C]
    db_c  = sum_i dY_ic                                               db           [C]

No gradient flows to X: it is data (features computed from text), not a parameter. dW is
a scatter-add over the entries (a column j that occurs in many rows sums all of them),
the transpose of the forward's gather. A row may even repeat a column; the entry values
then add, in the product and in the gradient alike.

The references below run on NumPy and CuPy; on NumPy arrays the numba kernels of
tinylm/kernels/sparse.py compute the same products (rows in parallel for X W). Y has W's
dtype (the CSR values are cast to it). Chapter 09, section "A baseline: TF-IDF and
logistic regression".
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import sparse as sparse_kernel


class CSRMatrix(NamedTuple):
    """A sparse [N, F] matrix in compressed-sparse-row form (see the module docstring)."""

    data: object          # [nnz] float
    indices: object       # [nnz] int, column of each value
    indptr: object        # [N + 1] int, row i is data[indptr[i]:indptr[i + 1]]
    shape: tuple          # (N, F)

    @property
    def nnz(self) -> int:
        return int(self.data.shape[0])


class SparseLinearCache(NamedTuple):
    X: CSRMatrix
    has_bias: bool


def _check_arrays(X: CSRMatrix, owner: str) -> None:
    if not isinstance(X, CSRMatrix):
        raise TypeError(f"{owner}: X must be a CSRMatrix (tinylm.functional.sparse_linear), "
                        f"got a {type(X).__name__}; build one with csr_from_dense(...) or "
                        "TfidfVectorizer.transform(...).")
    if len(X.shape) != 2:
        raise ValueError(f"{owner}: a CSRMatrix has a 2-D shape (N, F), got {X.shape}.")
    if X.data.ndim != 1 or X.indices.shape != X.data.shape or X.indptr.shape != (X.shape[0] + 1,):
        raise ValueError(f"{owner}: CSR arrays disagree: data {X.data.shape}, indices "
                         f"{X.indices.shape} (both [nnz]) and indptr {X.indptr.shape} "
                         f"(must be [N + 1] = [{X.shape[0] + 1}]).")
    if X.data.dtype.kind != "f" or not {X.indices.dtype.kind, X.indptr.dtype.kind} <= set("iu"):
        raise TypeError(f"{owner}: CSR data must be floating and indices/indptr integers, got "
                        f"{X.data.dtype}, {X.indices.dtype}, {X.indptr.dtype}.")


def check_csr(X: CSRMatrix, owner: str = "sparse_linear") -> None:
    """Raise unless X is a well-formed CSRMatrix: the kernels index W and Y without bounds
    checks, so a column outside [0, F) or a row pointer out of order must be caught here.
    Costs one pass over indices and indptr."""
    _check_arrays(X, owner)
    xp = get_array_module(X.indptr)
    F = X.shape[1]
    if int(X.indptr[0]) != 0 or int(X.indptr[-1]) != X.nnz or bool((xp.diff(X.indptr) < 0).any()):
        raise ValueError(f"{owner}: indptr must rise from 0 to nnz = {X.nnz} without ever "
                         f"falling; got {int(X.indptr[0])} .. {int(X.indptr[-1])}.")
    if X.nnz and (int(X.indices.min()) < 0 or int(X.indices.max()) >= F):
        raise ValueError(f"{owner}: column indices must lie in [0, {F}), got "
                         f"{int(X.indices.min())} .. {int(X.indices.max())}; the features "
                         "were made by another vectorizer than the one this model uses?")


def _entry_rows(X: CSRMatrix):
    """r [nnz]: the row of each stored entry, the last i with indptr[i] <= k (empty rows
    share their pointer with the next row and are skipped)."""
    xp = get_array_module(X.indptr)
    return xp.searchsorted(X.indptr, xp.arange(X.nnz), side="right") - 1


def csr_matmul_reference(X: CSRMatrix, W):
    """X [N, F] CSR, W [F, C] -> X W [N, C]: Y[r_k] += x_k W[j_k] over the entries k."""
    xp = get_array_module(W)
    Y = xp.zeros((X.shape[0], W.shape[1]), dtype=W.dtype)                   # [N, C]
    xp.add.at(Y, _entry_rows(X), X.data.astype(W.dtype)[:, None] * W[X.indices])
    return Y


def csr_transpose_matmul_reference(X: CSRMatrix, dY):
    """X [N, F] CSR, dY [N, C] -> X^T dY [F, C]: dW[j_k] += x_k dY[r_k] over the entries k."""
    xp = get_array_module(dY)
    dW = xp.zeros((X.shape[1], dY.shape[1]), dtype=dY.dtype)                # [F, C]
    xp.add.at(dW, X.indices, X.data.astype(dY.dtype)[:, None] * dY[_entry_rows(X)])
    return dW


def csr_matmul(X: CSRMatrix, W):
    """X W [N, C] (numba on NumPy arrays, else the reference)."""
    if use_numba(X.data, X.indices, X.indptr, W):
        return sparse_kernel.csr_matmul(X.data, X.indices, X.indptr, W)
    return csr_matmul_reference(X, W)


def csr_transpose_matmul(X: CSRMatrix, dY):
    """X^T dY [F, C] (numba on NumPy arrays, else the reference)."""
    if use_numba(X.data, X.indices, X.indptr, dY):
        return sparse_kernel.csr_transpose_matmul(X.data, X.indices, X.indptr, dY, X.shape[1])
    return csr_transpose_matmul_reference(X, dY)


def sparse_linear_forward(X: CSRMatrix, W, b=None):
    """X [N, F] CSR, W [F, C], b [C] or None -> (Y = X W + b [N, C], cache)."""
    check_csr(X)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"sparse_linear: X has {X.shape[1]} features but W expects "
                         f"{W.shape[0]} (W shape {W.shape}); vectorize with the vectorizer "
                         "the weights were trained with.")
    Y = csr_matmul(X, W)                                                    # [N, C]
    if b is not None:
        Y += b
    return Y, SparseLinearCache(X, b is not None)


def sparse_linear_backward(dY, cache: SparseLinearCache):
    """dY [N, C] -> (dW = X^T dY [F, C], db = sum_i dY_i [C] or None). X gets no gradient."""
    dW = csr_transpose_matmul(cache.X, dY)                                  # [F, C]
    db = dY.sum(axis=0) if cache.has_bias else None                         # [C]
    return dW, db


def csr_from_dense(A) -> CSRMatrix:
    """A dense [N, F] array -> its CSRMatrix (the non-zero entries, row by row)."""
    xp = get_array_module(A)
    rows, cols = xp.nonzero(A)                                              # row-major order
    indptr = xp.zeros(A.shape[0] + 1, dtype=xp.int64)
    indptr[1:] = xp.cumsum(xp.bincount(rows, minlength=A.shape[0]))
    return CSRMatrix(A[rows, cols], cols.astype(xp.int64), indptr, tuple(A.shape))


def csr_to_dense(X: CSRMatrix):
    """A CSRMatrix -> the dense [N, F] array it stands for (repeated columns add)."""
    check_csr(X, "csr_to_dense")
    xp = get_array_module(X.data)
    A = xp.zeros(X.shape, dtype=X.data.dtype)
    xp.add.at(A, (_entry_rows(X), X.indices), X.data)
    return A


def _sparse_input(rng, n: int, f: int, density: float = 0.3) -> CSRMatrix:
    """A random [n, f] CSR matrix with about ``density`` of its entries set; row 1 empty."""
    A = rng.standard_normal((n, f)) * (rng.random((n, f)) < density)
    A[1] = 0.0
    return csr_from_dense(A)


def _repeated_columns(rng) -> CSRMatrix:
    """3 x 4 with row 0 storing column 2 twice and column 0 used by every row."""
    data = rng.standard_normal(7)
    xp = get_array_module(data)
    return CSRMatrix(data, xp.asarray([2, 0, 2, 0, 3, 0, 1]), xp.asarray([0, 3, 5, 7]), (3, 4))


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py). X is a
    CSRMatrix, not a float array, so the checker leaves it alone and checks W and b."""
    return [
        GradcheckCase("sparse_linear", sparse_linear_forward, sparse_linear_backward,
                      lambda rng: {"X": _sparse_input(rng, 6, 5),
                                   "W": rng.standard_normal((5, 3)),
                                   "b": rng.standard_normal(3)}),
        GradcheckCase("sparse_linear[no bias]", sparse_linear_forward, sparse_linear_backward,
                      lambda rng: {"X": _sparse_input(rng, 4, 7),
                                   "W": rng.standard_normal((7, 2)), "b": None}),
        GradcheckCase("sparse_linear[repeated columns]", sparse_linear_forward,
                      sparse_linear_backward,
                      lambda rng: {"X": _repeated_columns(rng),
                                   "W": rng.standard_normal((4, 3)),
                                   "b": rng.standard_normal(3)}),
    ]
