"""Dropout (chapter 04): the functional pair, its keep-mask and the CPU kernel.

* the numba kernel equals the array-module reference of tinylm/functional/dropout.py, bit
  for bit, float32 and float64;
* ``dropout_mask`` is the mask ``dropout_forward`` applies, for the same generator state;
* p outside [0, 1) is a clear error; evaluation and p = 0 pass x through unchanged;
* the module ``Dropout`` back-propagates through the mask of its forward.

The finite-difference check of ``dropout_backward`` is its gradcheck case
(tests/test_functional_gradcheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm import backend
from tinylm.functional.dropout import dropout_backward, dropout_forward, dropout_mask
from tinylm.nn.dropout import Dropout

DTYPES = [np.float32, np.float64]


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_kernel_equals_reference(dtype, rng, monkeypatch):
    x = rng.standard_normal((3, 5, 7)).astype(dtype)
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    y_ref, m_ref = dropout_forward(x, 0.3, np.random.default_rng(2))
    monkeypatch.setenv("TINYLM_KERNELS", "auto")
    y, m = dropout_forward(x, 0.3, np.random.default_rng(2))
    assert y.dtype == m.dtype == dtype and y.shape == m.shape == x.shape
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_mask_is_the_mask_dropout_forward_applies(dtype, kernels, rng):
    x = rng.standard_normal((4, 9)).astype(dtype)
    y, m = dropout_forward(x, 0.25, np.random.default_rng(3))
    mask = dropout_mask(x.shape, 0.25, np.random.default_rng(3), dtype)
    assert mask.dtype == dtype
    np.testing.assert_array_equal(mask, m)
    np.testing.assert_array_equal(y, x * mask)
    assert set(np.unique(mask)) <= {dtype(0), dtype(1 / 0.75)}
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), m), mask)


def test_p_outside_zero_one_is_a_clear_error(rng):
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
            dropout_forward(rng.standard_normal(3), p, rng)
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
            dropout_mask((3,), p, rng, np.float64)


def test_evaluation_and_p_zero_pass_x_through(rng):
    x = rng.standard_normal((2, 3))
    for p, training in ((0.5, False), (0.0, True)):
        y, cache = dropout_forward(x, p, None, training)
        assert y is x and cache is None
        assert dropout_backward(x, cache) is x


def test_dropout_backward_uses_the_forward_mask(rng):
    drop = Dropout(0.3, seed=3)
    x = rng.standard_normal((6, 7))
    y = drop.forward(x)
    dx = drop.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_allclose(dx[dx != 0], 1 / 0.7)
