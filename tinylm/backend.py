"""The array backend: which array module does the maths, in which dtype, on which device.

Layer 1 of the house; everything else imports from here and nothing here imports tinylm.

* ``get_array_module(*arrays)`` returns ``numpy`` or ``cupy`` depending on where the arrays
  live, so the same function runs on the CPU and on a GPU without change.
* ``DEFAULT_DTYPE`` is float32; gradient checks pass float64 arrays and every function
  preserves the dtype it is given.
* ``default_rng(seed, device)`` makes seeded generators on either device (``derive_seed``
  numbers a model's other ones); ``to_numpy`` / ``to_device`` move arrays, ``device_of``
  names an array's device.
* ``use_numba(*arrays)`` tells a kernel whether its numba version may run: numba must be
  importable, the arrays must be NumPy arrays, and the environment variable
  ``TINYLM_KERNELS`` must not be ``reference`` (``TINYLM_KERNELS=reference`` forces the plain
  array-module implementations everywhere, which is how the kernels are tested).

Chapter 11 ("Efficiency") measures the kernels, the GPU path and what a host synchronisation
costs; chapter 07 shows where the kernels fit in a GPT.
"""

from __future__ import annotations

import importlib.util
import os

import numpy

DEFAULT_DTYPE = numpy.float32
KERNEL_ENV_VAR = "TINYLM_KERNELS"
_KERNEL_CHOICES = ("auto", "numba", "reference")

try:  # CuPy is optional: present only on machines with an NVIDIA GPU.
    import cupy  # type: ignore
    _CUPY_IMPORT_ERROR = None
except Exception as e:  # noqa: BLE001 - any import failure means "no GPU backend"
    cupy, _CUPY_IMPORT_ERROR = None, e

NUMBA_AVAILABLE = importlib.util.find_spec("numba") is not None
THREADING_LAYER_ENV_VAR = "NUMBA_THREADING_LAYER"

if NUMBA_AVAILABLE and THREADING_LAYER_ENV_VAR not in os.environ:
    # numba's parallel kernels and OpenBLAS's matmuls take turns on the same cores. numba's
    # default OpenMP layer keeps its workers spinning after a parallel region, stealing the
    # cores from the next matmul: a 2-core GPT training step took 300 ms instead of 84 ms,
    # an LSTM step 105 ms instead of 80 ms (``tinylm bench gpt``). The workqueue layer's
    # workers sleep. Set $NUMBA_THREADING_LAYER to choose another layer.
    import numba

    numba.config.THREADING_LAYER = "workqueue"


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return numpy


def gpu_unavailable_reason() -> str | None:
    """Why ``device="gpu"`` cannot be used here, or None when it can (CuPy imports and
    sees at least one CUDA device): the answer ``gpu_available()`` keeps to itself."""
    if cupy is None:
        return (f"CuPy does not import ({type(_CUPY_IMPORT_ERROR).__name__}: "
                f"{_CUPY_IMPORT_ERROR}); pip install 'tinylm[gpu]' on a machine with an "
                "NVIDIA GPU.")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001 - a broken driver means no GPU
        return f"CuPy {cupy.__version__} imports but finds no usable CUDA device ({e})."
    return None if count > 0 else f"CuPy {cupy.__version__} sees no CUDA device."


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return gpu_unavailable_reason() is None


def device_of(a) -> str:
    """``"gpu"`` for a CuPy array, else ``"cpu"``."""
    return "cpu" if get_array_module(a) is numpy else "gpu"


def to_numpy(a):
    """Copy an array (NumPy or CuPy) to host memory as a NumPy array."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return numpy.asarray(a)


def to_device(a, device: str):
    """Move an array to ``"cpu"`` (NumPy) or ``"gpu"`` (CuPy)."""
    if device == "cpu":
        return to_numpy(a)
    if device == "gpu":
        if not gpu_available():
            raise RuntimeError("device='gpu' needs CuPy and a CUDA GPU; install cupy-cuda12x "
                               "on a machine with an NVIDIA GPU, or use device='cpu'.")
        return cupy.asarray(a)
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'gpu'.")


def array_module_for(device: str):
    """The array module that holds arrays on ``device`` (``"cpu"`` or ``"gpu"``)."""
    if device == "cpu":
        return numpy
    to_device(numpy.zeros(1), device)  # raises a clear error when no GPU is usable
    return cupy


def default_rng(seed=None, device: str = "cpu"):
    """A seeded generator on ``device``: NumPy's on ``"cpu"`` (parameters are initialised
    there, then moved), CuPy's on ``"gpu"``. ``seed`` is an int or a
    ``numpy.random.SeedSequence``.

    The GPU generator uses cuRAND's Philox bit generator rather than CuPy's default XORWOW:
    starting a Philox stream sets a counter, while XORWOW jumps each of its thousands of
    device threads ahead to its own subsequence, and tinylm starts a fresh device generator
    for every dropout mask (tinylm/nn/dropout.py says why)."""
    if device == "cpu":
        return numpy.random.default_rng(seed)
    xp = array_module_for(device)
    return xp.random.Generator(xp.random.Philox4x3210(seed))


def rng_from_state(state, owner: str):
    """A NumPy generator restored from a saved ``rng.bit_generator.state`` (plain JSON-able
    data); a state that is not one raises ValueError naming ``owner``, not numpy's
    KeyError or TypeError from deep inside the setter."""
    rng = default_rng(0)
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ValueError(f"{owner}: the saved generator state (a {type(state).__name__}) is "
                         f"not a state of NumPy's {type(rng.bit_generator).__name__} generator "
                         f"({type(e).__name__}: {e}); restore a state that the same tinylm "
                         "saved.") from e
    return rng


def derive_seed(seed: int, stream: int) -> int:
    """The seed of a model's generator number ``stream`` (>= 0): seed + stream.

    A model seeded with s draws its weights from default_rng(s) and gives each of its other
    generators (dropout masks) its own stream number k, so each uses default_rng(s + k): the
    streams differ from one another, and the same s always rebuilds the same model.
    """
    if stream < 0:
        raise ValueError(f"derive_seed: stream={stream} must be >= 0.")
    return seed + stream


def substream(seed: int, k: int) -> numpy.random.SeedSequence:
    """The seed of draw number ``k`` (>= 0) of a stream seeded ``seed``: NumPy's way of
    spawning independent child streams, which CuPy's generators accept as a seed too."""
    return numpy.random.SeedSequence(seed, spawn_key=(k,))


def kernel_mode() -> str:
    """The kernel selection requested by ``$TINYLM_KERNELS``: auto, numba or reference."""
    mode = os.environ.get(KERNEL_ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in _KERNEL_CHOICES:
        raise ValueError(f"{KERNEL_ENV_VAR}={mode!r} is not one of {_KERNEL_CHOICES}.")
    if mode == "numba" and not NUMBA_AVAILABLE:
        raise RuntimeError(f"{KERNEL_ENV_VAR}=numba but numba is not installed; "
                           "pip install numba, or unset the variable.")
    return mode


def use_numba(*arrays) -> bool:
    """True when a kernel should run its numba version on these arrays."""
    if not NUMBA_AVAILABLE or kernel_mode() == "reference":
        return False
    return all(isinstance(a, numpy.ndarray) for a in arrays)
