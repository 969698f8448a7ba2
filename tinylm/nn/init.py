"""Parameter initialisers. Arrays are drawn on the host from a seeded generator (so a seed
gives the same model on CPU and GPU) in the default dtype.

* ``uniform_fan_in``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) -- PyTorch's default for Linear,
  RNN, LSTM and GRU weights.
* ``normal``: N(0, std^2) -- GPT-2's 0.02, embeddings' 1.
"""

from __future__ import annotations

import math

from tinylm.backend import DEFAULT_DTYPE, array_module_for, default_rng


def _rng(rng):
    return default_rng(0) if rng is None else rng


def uniform_fan_in(shape, fan_in: int, rng=None, dtype=DEFAULT_DTYPE):
    bound = 1.0 / math.sqrt(fan_in)
    return _rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def normal(shape, std: float = 1.0, rng=None, dtype=DEFAULT_DTYPE):
    return (_rng(rng).standard_normal(shape) * std).astype(dtype)


def zeros(shape, dtype=DEFAULT_DTYPE):
    return array_module_for("cpu").zeros(shape, dtype=dtype)


def ones(shape, dtype=DEFAULT_DTYPE):
    return array_module_for("cpu").ones(shape, dtype=dtype)
