"""The sparse linear layer: the numba kernels equal the array-module references (float32,
float64; serial and parallel), forward and backward equal the dense products and PyTorch's
sparse CSR product, CSR helpers, and malformed CSR input. Its gradient check runs in
tests/test_functional_gradcheck.py."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import DTYPES, REL, auto_kernels, needs_numba, split  # noqa: F401

from tinylm import backend
from tinylm.functional import sparse_linear as S


def _sparse(rng, n, f, density=0.2, dtype=np.float64):
    A = (rng.standard_normal((n, f)) * (rng.random((n, f)) < density)).astype(dtype)
    if n > 2:
        A[2] = 0                                          # an empty row
    return A


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, f, c", [(1, 1, 1), (37, 13, 5), (301, 1001, 2)])
def test_kernels_equal_the_references(n, f, c, dtype, rng, assert_rel_close, auto_kernels,
                                      split):
    X = S.csr_from_dense(_sparse(rng, n, f, dtype=dtype))
    W = rng.standard_normal((f, c)).astype(dtype)
    dY = rng.standard_normal((n, c)).astype(dtype)
    assert backend.use_numba(X.data, W)
    for fast, slow, dense in ((S.csr_matmul, S.csr_matmul_reference, W),
                              (S.csr_transpose_matmul, S.csr_transpose_matmul_reference, dY)):
        got, expected = fast(X, dense), slow(X, dense)
        assert got.dtype == expected.dtype == dtype
        assert_rel_close(got, expected, REL[dtype], fast.__name__)


def test_forward_and_backward_equal_the_dense_products(rng, assert_rel_close, kernels):
    A = _sparse(rng, 40, 70)
    W, b, dY = rng.standard_normal((70, 3)), rng.standard_normal(3), rng.standard_normal((40, 3))
    Y, cache = S.sparse_linear_forward(S.csr_from_dense(A), W, b)
    assert_rel_close(Y, A @ W + b, 1e-13, "Y")
    dW, db = S.sparse_linear_backward(dY, cache)
    assert_rel_close(dW, A.T @ dY, 1e-13, "dW")
    assert_rel_close(db, dY.sum(axis=0), 1e-13, "db")
    _, no_bias = S.sparse_linear_forward(S.csr_from_dense(A), W)
    assert S.sparse_linear_backward(dY, no_bias)[1] is None


def test_repeated_columns_in_a_row_add(kernels):
    X = S.CSRMatrix(np.array([1.0, 2.0, 4.0]), np.array([1, 1, 0]), np.array([0, 2, 3]), (2, 2))
    np.testing.assert_array_equal(S.csr_to_dense(X), [[0.0, 3.0], [4.0, 0.0]])
    Y, cache = S.sparse_linear_forward(X, np.eye(2))
    np.testing.assert_array_equal(Y, [[0.0, 3.0], [4.0, 0.0]])
    np.testing.assert_array_equal(S.sparse_linear_backward(np.ones((2, 2)), cache)[0],
                                  [[4.0, 4.0], [3.0, 3.0]])


def test_the_output_has_the_weights_dtype(rng, kernels):
    X = S.csr_from_dense(_sparse(rng, 5, 4))                   # float64 values
    Y, cache = S.sparse_linear_forward(X, np.ones((4, 2), dtype=np.float32))
    assert Y.dtype == np.float32
    assert S.sparse_linear_backward(np.ones((5, 2), dtype=np.float32), cache)[0].dtype == np.float32


def test_csr_round_trip(rng):
    A = _sparse(rng, 9, 6)
    X = S.csr_from_dense(A)
    assert X.nnz == np.count_nonzero(A) and X.shape == (9, 6)
    np.testing.assert_array_equal(S.csr_to_dense(X), A)


def test_malformed_csr_is_refused(rng):
    X = S.csr_from_dense(_sparse(rng, 4, 5, density=0.6))
    W = np.ones((5, 2))
    with pytest.raises(TypeError, match="must be a CSRMatrix"):
        S.sparse_linear_forward(np.ones((4, 5)), W)
    with pytest.raises(ValueError, match=r"column indices must lie in \[0, 5\)"):
        S.sparse_linear_forward(X._replace(indices=X.indices + 5), W)
    bad_indptr = X.indptr.copy()
    bad_indptr[1], bad_indptr[2] = bad_indptr[2], bad_indptr[1] - 1
    with pytest.raises(ValueError, match="without ever falling"):
        S.sparse_linear_forward(X._replace(indptr=bad_indptr), W)
    with pytest.raises(ValueError, match="CSR arrays disagree"):
        S.sparse_linear_forward(X._replace(shape=(5, 5)), W)
    with pytest.raises(TypeError, match="data must be floating"):
        S.sparse_linear_forward(X._replace(data=X.data.astype(int)), W)
    with pytest.raises(ValueError, match="X has 5 features but W expects 4"):
        S.sparse_linear_forward(X, np.ones((4, 2)))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_matches_torch_sparse_mm(rng, torch, assert_rel_close, kernels):
    A = _sparse(rng, 30, 50)
    X = S.csr_from_dense(A)
    W, b, dY = rng.standard_normal((50, 4)), rng.standard_normal(4), rng.standard_normal((30, 4))
    Xt = torch.sparse_csr_tensor(torch.from_numpy(X.indptr), torch.from_numpy(X.indices),
                                 torch.from_numpy(X.data), size=X.shape,
                                 check_invariants=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    Yt = Xt @ Wt + bt
    Yt.backward(torch.from_numpy(dY))
    Y, cache = S.sparse_linear_forward(X, W, b)
    dW, db = S.sparse_linear_backward(dY, cache)
    assert_rel_close(Y, Yt.detach().numpy(), 1e-13, "Y")
    assert_rel_close(dW, Wt.grad.numpy(), 1e-13, "dW")
    assert_rel_close(db, bt.grad.numpy(), 1e-13, "db")
