"""What the tests of a numba kernel share: its dtypes, tolerances and the two numba paths.

Sizes in those tests are odd on purpose (rows and columns that divide into no thread chunk
evenly). Both float32 and float64, and both numba paths: the serial kernel (small problems)
and the parallel driver (forced by setting the work threshold to 0). A test module takes the
fixtures with ``from kernel_helpers import auto_kernels, split  # noqa: F401``.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinylm.kernels
from tinylm import backend

needs_numba = pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")

DTYPES = [np.float32, np.float64]
# Tolerances relative to the largest entry: kernel and reference sum in different orders (and
# numba accumulates float32 rows in float64), so they agree to rounding, not bit for bit.
REL = {np.float32: 2e-6, np.float64: 1e-13}


@pytest.fixture
def auto_kernels(monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")


@pytest.fixture(params=["serial", "parallel"])
def split(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(tinylm.kernels, "PARALLEL_MIN_WORK", 0)
    return request.param
