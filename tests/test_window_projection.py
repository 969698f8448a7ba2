"""Window sum (the MLP LM's first layer): the numba gather-sum and scatter-add equal the
functional references (float32, float64; serial and parallel). The projection's gradient
check runs in tests/test_functional_gradcheck.py, its PyTorch parity in tests/test_mlp_lm.py."""

from __future__ import annotations

import pytest
from kernel_helpers import DTYPES, REL, needs_numba, split  # noqa: F401

from tinylm.functional import window_projection as F_wp
from tinylm.kernels import window_sum as kernel


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, rows, H, B, T", [(1, 2, 1, 1, 1), (3, 7, 5, 2, 9), (16, 66, 130, 4, 64)])
def test_window_sum_kernel_equals_reference(n, rows, H, B, T, dtype, rng, assert_rel_close, split):
    tables = rng.standard_normal((n, rows, H)).astype(dtype)
    ids = rng.integers(0, rows, size=(B, T + n - 1))
    dout = rng.standard_normal((B, T, H)).astype(dtype)
    assert_rel_close(kernel.window_sum(tables, ids, T),
                     F_wp.window_sum_reference(tables, ids, T), REL[dtype], "out")
    assert_rel_close(kernel.window_sum_backward(dout, ids, n, rows),
                     F_wp.window_sum_backward_reference(dout, ids, n, rows), REL[dtype],
                     "dtables")
