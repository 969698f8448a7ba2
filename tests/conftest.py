"""Shared fixtures.

* ``rng``       a seeded NumPy generator (draws float64 by default, as gradient checks need);
* ``torch``     the torch module, or the test is skipped when PyTorch is not installed;
* ``kernels``   runs the test twice, with ``TINYLM_KERNELS=reference`` and ``=auto``;
* ``assert_rel_close``  ``max|a - b| / max|b| <= rel``, the error measure of tinylm.gradcheck
  (``scale=`` replaces max|b| where the natural scale is another array's);
* ``fake_gpu``  tinylm on the fake device (tests/fake_cupy) in place of CuPy.

With ``TINYLM_REQUIRE_GPU=1`` (``make gpu-test``) a ``gpu``-marked test that skips fails
instead: on a machine meant to have a GPU, a skip means the GPU path went untested.

OpenBLAS is limited to one thread (unless the caller chose otherwise) before NumPy loads it:
the suite runs one pytest worker per core, and a multi-threaded BLAS in each worker makes the
small matrix products of the tests many times slower (threads waiting for busy cores). The
variable is inherited by the notebook kernels the suite starts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(params=["reference", "auto"])
def kernels(request, monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", request.param)
    return request.param


def _assert_rel_close(actual, expected, rel, name="array", scale=None):
    """``scale`` (default max|expected|) is what the error is measured against."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    if scale is None:
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
    assert err <= rel, f"{name}: relative error {err:.2e} > {rel:.0e}"


@pytest.fixture
def assert_rel_close():
    return _assert_rel_close


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: torch's thread pool would only wait for busy cores (the suite runs one
    pytest worker per core)."""
    try:
        import torch
    except ImportError:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def fake_gpu(monkeypatch):
    """tinylm on the fake device (tests/fake_cupy): the CPU stand-in for CuPy takes the place
    of ``tinylm.backend.cupy``, the one reference through which tinylm reaches CuPy, and of
    ``cupyx`` in ``sys.modules``; ``device="gpu"`` then means the fake. Its ``syncs`` log
    starts empty."""
    import sys

    import fake_cupy
    import tinylm.backend

    monkeypatch.setattr(tinylm.backend, "cupy", fake_cupy)
    for name, module in fake_cupy.cupyx_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    fake_cupy.syncs.clear()
    return fake_cupy


REQUIRE_GPU_ENV_VAR = "TINYLM_REQUIRE_GPU"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped ``gpu`` test fails when $TINYLM_REQUIRE_GPU is set (see the docstring)."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and item.get_closest_marker("gpu") is not None
            and os.environ.get(REQUIRE_GPU_ENV_VAR)):
        from tinylm.backend import gpu_unavailable_reason
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} skipped although ${REQUIRE_GPU_ENV_VAR} is set: "
                           f"{gpu_unavailable_reason() or 'the GPU is there; see the skip reason'}"
                           f" ({report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''})")
