"""tanh and GELU: the numba kernels equal the functional references (float32, float64;
serial and parallel), and the float32 rational tanh is within 3e-7 of tanh. Gradient checks
and PyTorch parity run in the tables of tests/test_functional_gradcheck.py and
tests/test_functional_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_helpers import DTYPES, REL, auto_kernels, needs_numba, split  # noqa: F401

from tinylm.functional import activations as F_act
from tinylm.kernels import gelu as gelu_kernel

pytestmark = needs_numba


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 5, 101)])
def test_gelu_kernel_equals_reference(shape, approximate, dtype, rng, assert_rel_close, split):
    x = (3.0 * rng.standard_normal(shape)).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    fast = gelu_kernel.gelu_forward(x, approximate)
    slow = F_act.gelu_forward_reference(x, approximate)
    assert fast.shape == slow.shape == shape and fast.dtype == slow.dtype == dtype
    # Measured against |x| and |dout|: for x << 0, gelu(x) is a tiny difference of O(|x|)
    # terms, which the float32 reference rounds at the scale of |x|.
    assert_rel_close(fast, slow, REL[dtype], "gelu", scale=np.abs(x).max())
    d_fast = gelu_kernel.gelu_backward(dout, x, approximate)
    d_slow = F_act.gelu_backward_reference(dout, x, approximate)
    assert d_fast.dtype == d_slow.dtype == dtype
    assert_rel_close(d_fast, d_slow, REL[dtype], "dgelu", scale=np.abs(dout).max())


def test_gelu_kernel_accepts_non_contiguous_inputs(rng, assert_rel_close):
    x = rng.standard_normal((5, 14))[:, ::2]                      # a strided view
    assert_rel_close(gelu_kernel.gelu_forward(x, "tanh"), F_act.gelu_forward_reference(x, "tanh"),
                     1e-13)


def test_rational_tanh_is_within_3e7_of_tanh(rng, auto_kernels):
    x = np.concatenate([np.linspace(-10.0, 10.0, 100_001),
                        3.0 * rng.standard_normal(10_000)]).astype(np.float32)
    fast, _ = F_act.tanh_forward(x)
    assert fast.dtype == np.float32
    assert np.max(np.abs(fast - np.tanh(x.astype(np.float64)))) < 3.5e-7
    assert np.all(np.abs(fast) <= 1.0) and np.all(np.sign(fast) == np.sign(x))
    x64 = x.astype(np.float64)
    assert np.array_equal(F_act.tanh_forward(x64)[0], np.tanh(x64)), "float64 takes NumPy's tanh"
