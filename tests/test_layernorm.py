"""Layer normalisation: the numba kernel equals the functional reference (float32, float64;
serial and parallel). Its gradient check and PyTorch parity run in the tables of
tests/test_functional_gradcheck.py and tests/test_functional_parity.py."""

from __future__ import annotations

import pytest
from kernel_helpers import DTYPES, REL, auto_kernels, needs_numba, split  # noqa: F401

from tinylm.functional import layernorm as F_ln
from tinylm.kernels import layernorm as kernel


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(1, 3), (33, 17), (257, 385)])
def test_layernorm_kernel_equals_reference(n, c, dtype, rng, assert_rel_close, split):
    x = (1.5 + 2.0 * rng.standard_normal((n, c))).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal((n, c)).astype(dtype)
    fast = kernel.layernorm_forward(x, gamma, beta, 1e-5)
    slow = F_ln.layernorm_forward_reference(x, gamma, beta, 1e-5)
    for name, a, b in zip(("y", "mean", "rstd"), fast, slow):
        assert a.dtype == b.dtype == dtype, name
        assert_rel_close(a, b, REL[dtype], name)
    grads_fast = kernel.layernorm_backward(dy, x, fast[1], fast[2], gamma)
    grads_slow = F_ln.layernorm_backward_reference(dy, x, slow[1], slow[2], gamma)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), grads_fast, grads_slow):
        assert a.dtype == b.dtype == dtype, name
        assert_rel_close(a, b, 10 * REL[dtype], name)
