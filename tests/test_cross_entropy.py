"""Cross-entropy: the numba kernel equals the functional reference (float32, float64; serial
and parallel; ignored rows), and the loss stays finite for huge logits. Its gradient check and
PyTorch parity run in the tables of tests/test_functional_gradcheck.py and
tests/test_functional_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import DTYPES, REL, auto_kernels, needs_numba, split  # noqa: F401

import tinylm.functional as F
from tinylm.functional import cross_entropy as F_ce
from tinylm.kernels import cross_entropy as kernel


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, vocab", [(1, 2), (29, 7), (203, 1003)])
def test_cross_entropy_kernel_equals_reference(n, vocab, dtype, rng, assert_rel_close, split):
    logits = (4.0 * rng.standard_normal((n, vocab))).astype(dtype)
    targets = rng.integers(0, vocab, size=n)
    targets[::3] = -100                                           # ignored rows
    row_grad = np.where(targets != -100, rng.standard_normal(n), 0).astype(dtype)
    loss_fast, probs_fast = kernel.cross_entropy_forward(logits, targets, -100)
    loss_slow, probs_slow = F_ce.cross_entropy_forward_reference(logits, targets, -100)
    assert loss_fast.dtype == loss_slow.dtype == dtype
    assert np.all(loss_fast[targets == -100] == 0)
    assert_rel_close(loss_fast, loss_slow, REL[dtype], "row loss")
    assert_rel_close(probs_fast, probs_slow, REL[dtype], "probs")
    assert_rel_close(probs_fast.sum(axis=1), np.ones(n), REL[dtype], "sum of probs")
    d_fast = kernel.cross_entropy_backward(probs_fast, targets, row_grad, -100)
    d_slow = F_ce.cross_entropy_backward_reference(probs_slow, targets, row_grad, -100)
    assert d_fast.dtype == d_slow.dtype == dtype
    assert np.all(d_fast[targets == -100] == 0)
    assert_rel_close(d_fast, d_slow, REL[dtype], "dlogits")


@needs_numba
def test_cross_entropy_kernel_accepts_non_contiguous_inputs(rng, assert_rel_close):
    logits = rng.standard_normal((9, 12))[:, ::2]                 # a strided view
    targets = rng.integers(0, 6, size=9)
    loss, _ = kernel.cross_entropy_forward(logits, targets, -100)
    assert_rel_close(loss, F_ce.cross_entropy_forward_reference(logits, targets, -100)[0], 1e-13)


def test_cross_entropy_is_stable_for_huge_logits(torch, assert_rel_close):
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 3.0]])
    targets = np.array([2, 1])
    loss, cache = F.cross_entropy_forward(logits, targets)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(targets))
    assert np.isfinite(loss)
    assert_rel_close(loss, expected.item(), 1e-12)
    assert np.all(np.isfinite(F.cross_entropy_backward(1.0, cache)))
