"""The array backend: module dispatch, devices, generators and the kernel switch."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm import backend


def test_numpy_arrays_dispatch_to_numpy():
    assert backend.get_array_module(np.zeros(3)) is np
    assert backend.get_array_module(np.zeros(3), 1.0, None) is np
    assert backend.get_array_module() is np


def test_default_dtype_is_float32():
    assert backend.DEFAULT_DTYPE == np.float32


def test_seeded_generators_repeat_their_draws():
    a = backend.default_rng(7).standard_normal(5)
    b = backend.default_rng(7).standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float64


def test_cpu_moves_return_numpy_arrays():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(backend.to_device(x, "cpu"), x)
    np.testing.assert_array_equal(backend.to_numpy([1, 2]), np.array([1, 2]))
    assert backend.array_module_for("cpu") is np


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.to_device(np.zeros(1), "tpu")


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present here")
def test_asking_for_a_gpu_without_one_explains_what_is_needed():
    with pytest.raises(RuntimeError, match="CuPy"):
        backend.to_device(np.zeros(1), "gpu")
    with pytest.raises(RuntimeError, match="device='cpu'"):
        backend.array_module_for("gpu")


@pytest.mark.parametrize("value, mode", [(None, "auto"), ("", "auto"), ("auto", "auto"),
                                         ("reference", "reference"), (" Reference ", "reference")])
def test_kernel_mode_reads_the_environment(value, mode, monkeypatch):
    if value is None:
        monkeypatch.delenv(backend.KERNEL_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(backend.KERNEL_ENV_VAR, value)
    assert backend.kernel_mode() == mode


def test_an_unknown_kernel_mode_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv(backend.KERNEL_ENV_VAR, "turbo")
    with pytest.raises(ValueError, match="TINYLM_KERNELS='turbo' is not one of"):
        backend.kernel_mode()


def test_use_numba_follows_the_switch_and_the_array_type(monkeypatch):
    monkeypatch.setenv(backend.KERNEL_ENV_VAR, "reference")
    assert not backend.use_numba(np.zeros(2))
    monkeypatch.setenv(backend.KERNEL_ENV_VAR, "auto")
    assert backend.use_numba(np.zeros(2)) == backend.NUMBA_AVAILABLE
    assert not backend.use_numba(np.zeros(2), [1.0, 2.0])     # not an ndarray: no numba


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
def test_forcing_numba_works_when_it_is_installed(monkeypatch):
    monkeypatch.setenv(backend.KERNEL_ENV_VAR, "numba")
    assert backend.kernel_mode() == "numba" and backend.use_numba(np.zeros(2))


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="needs numba")
def test_numba_kernels_use_the_workqueue_threading_layer():
    """A fresh interpreter that imports tinylm runs its parallel kernels on numba's workqueue
    layer (whose idle workers sleep instead of spinning against OpenBLAS), unless the user
    chose a layer with $NUMBA_THREADING_LAYER."""
    import os
    import subprocess
    import sys

    script = ("import numpy, numba, tinylm.backend\n"
              "from tinylm.kernels import gelu\n"
              "gelu.gelu_forward(numpy.ones(1 << 18), 'tanh')\n"
              "print(numba.threading_layer())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["NUMBA_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "workqueue"
    env["NUMBA_THREADING_LAYER"] = "omp"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == "omp"
