"""Embedding: the numba scatter-add equals the functional reference (float32, float64; serial
and parallel; repeated ids), both add into a given accumulator, and the module sums the rows
of repeated ids. Its gradient check and PyTorch parity run in the tables of
tests/test_functional_gradcheck.py and tests/test_functional_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import DTYPES, REL, auto_kernels, needs_numba, split  # noqa: F401

from tinylm import backend, nn
from tinylm.functional import embedding as F_emb


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, d, vocab", [(1, 1, 1), (37, 13, 5), (301, 67, 1001)])
def test_embedding_backward_kernel_equals_reference(n, d, vocab, dtype, rng, assert_rel_close,
                                                    auto_kernels, split):
    ids = rng.integers(0, max(1, vocab // 3), size=n)           # a third of the table: repeats
    dout = rng.standard_normal((n, d)).astype(dtype)
    assert backend.use_numba(ids, dout)
    fast = F_emb.scatter_add_rows(ids, dout, vocab)
    slow = F_emb.embedding_backward_reference(ids, dout, vocab)
    assert fast.dtype == slow.dtype == dtype
    assert_rel_close(fast, slow, REL[dtype], "dW")


@pytest.mark.parametrize("scatter", ["scatter_add_rows", "embedding_backward_reference"])
def test_embedding_backward_adds_into_out(scatter, rng, assert_rel_close, kernels):
    ids = rng.integers(0, 5, size=40)                             # ids repeat
    dout = rng.standard_normal((40, 300))                         # big enough to run in parallel
    acc = rng.standard_normal((5, 300))
    expected = acc + F_emb.embedding_backward_reference(ids, dout, 5)
    result = getattr(F_emb, scatter)(ids, dout, 5, out=acc)
    assert result is acc
    assert_rel_close(acc, expected, 1e-13, "accumulated dW")
    with pytest.raises(ValueError, match="out has shape"):
        getattr(F_emb, scatter)(ids, dout, 5, out=np.zeros((5, 299)))


def test_embedding_module_sums_the_rows_of_repeated_ids(rng):
    emb = nn.Embedding(5, 3, rng=rng)
    ids = np.array([[1, 1, 4], [1, 0, 4]])
    out = emb.forward(ids)
    np.testing.assert_array_equal(out[0, 0], emb.weight.data[1])
    assert emb.backward(np.ones((2, 3, 3), dtype=np.float32)) is None
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [1, 3, 0, 0, 2])
