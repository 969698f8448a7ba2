"""What all kernels share: ``TINYLM_KERNELS`` picks the path (the reference path never runs
numba), the shared SIMD exp, and the thread helpers of ``tinylm/kernels/threads.py``.

Each op's kernel-against-reference tests live with its concept (tests/test_layernorm.py,
tests/test_attention.py, tests/test_recurrent.py, ...).
"""

from __future__ import annotations

import numpy as np
import pytest

import tinylm.kernels
from tinylm import backend
from tinylm.functional import activations as F_act
from tinylm.functional import cross_entropy as F_ce
from tinylm.functional import embedding as F_emb
from tinylm.functional import layernorm as F_ln
from tinylm.functional.attention import attention_heads_forward
from tinylm.functional.dropout import dropout_forward
from tinylm.functional.lstm import lstm_forward
from tinylm.kernels import (adam, attention, cross_entropy, dropout, embedding, gelu, layernorm,
                            recurrent, tanh)
from tinylm.optim import adam as optim_adam

pytestmark = pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")

@pytest.fixture(autouse=True)
def auto_kernels(monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")


# -- selection ---------------------------------------------------------------------------------

NUMBA_FUNCTIONS = [   # (module, its serial numba kernel, a small call that reaches it)
    (embedding, "_scatter_add_columns",
     lambda rng: F_emb.scatter_add_rows(rng.integers(0, 3, 4), rng.standard_normal((4, 2)), 3)),
    (cross_entropy, "_forward_rows",
     lambda rng: F_ce.cross_entropy_forward(rng.standard_normal((4, 3)), rng.integers(0, 3, 4))),
    (layernorm, "_forward_rows",
     lambda rng: F_ln.layernorm_forward(rng.standard_normal((4, 3)), np.ones(3), np.zeros(3))),
    (gelu, "_forward_range", lambda rng: F_act.gelu_forward(rng.standard_normal(5), "tanh")),
    (attention, "_softmax_rows",
     lambda rng: attention_heads_forward(rng.standard_normal((2, 4, 6)), 1)),
    (tanh, "_tanh_rational",
     lambda rng: F_act.tanh_forward(rng.standard_normal(5).astype(np.float32))),
    (dropout, "_apply", lambda rng: dropout_forward(rng.standard_normal(5), 0.3, rng)),
    (recurrent, "lstm_step_forward",
     lambda rng: lstm_forward(rng.standard_normal((2, 3, 4)), None, None,
                              rng.standard_normal((4, 8)), rng.standard_normal((2, 8)),
                              np.zeros(8))),
    (adam, "_adam_update_flat",
     lambda rng: optim_adam.adam_update(*(rng.random(3) for _ in range(5)), 1e-3, 0.9, 0.99,
                                        1e-8, 0.1, True, 1)),
]


def _refuse(*args, **kwargs):
    raise AssertionError("the numba kernel ran")


@pytest.mark.parametrize("module, numba_fn, call", NUMBA_FUNCTIONS,
                         ids=[m.__name__.rsplit(".", 1)[1] for m, _, _ in NUMBA_FUNCTIONS])
def test_tinylm_kernels_reference_never_runs_numba(module, numba_fn, call, monkeypatch, rng):
    monkeypatch.setattr(module, numba_fn, _refuse)
    with pytest.raises(AssertionError, match="numba kernel ran"):
        call(rng)                                                 # auto: numba is used
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    assert not backend.use_numba(np.zeros(3))
    call(rng)                                                     # reference: it is not


def test_an_unknown_tinylm_kernels_value_raises_naming_the_variable(monkeypatch, rng):
    monkeypatch.setenv("TINYLM_KERNELS", "fastest")
    with pytest.raises(ValueError, match="TINYLM_KERNELS='fastest'"):
        F_act.gelu_forward(rng.standard_normal(3), "tanh")




def test_simd_exp_is_within_float32_rounding_of_exp(rng):
    from tinylm.kernels.simd_exp import EXP_POLY, exp_inplace
    z = np.concatenate([np.linspace(-87.0, 87.0, 100_001),
                        20.0 * rng.standard_normal(10_000)]).astype(np.float32)
    z = np.clip(z, -87.0, 87.0)
    out = z.copy()
    exp_inplace(out, np.empty(z.size, dtype=np.int32), EXP_POLY)
    truth = np.exp(z.astype(np.float64))
    assert np.max(np.abs(out - truth) / truth) < 4e-7
    assert exp_inplace.__module__ == "tinylm.kernels.simd_exp"




def test_split_over_threads_covers_the_range_once_and_restores_blas(monkeypatch):
    from tinylm.kernels import threads
    monkeypatch.setattr(tinylm.kernels, "PARALLEL_MIN_WORK", 0)
    before = [lib.num_threads for lib in threads._blas_libraries()]
    seen, inside = [], []

    def record(lo, hi):
        seen.extend(range(lo, hi))
        inside.append([lib.num_threads for lib in threads._blas_libraries()])

    threads.split_over_threads(record, 7, work=10 ** 9)
    assert sorted(seen) == list(range(7))
    if tinylm.kernels.parallel_chunks(10 ** 9, 7) > 1:
        assert all(n == 1 for counts in inside for n in counts), "BLAS single-threaded inside"
    assert [lib.num_threads for lib in threads._blas_libraries()] == before

    def fail(lo, hi):
        if lo > 0:
            raise RuntimeError("worker failed")
    if tinylm.kernels.parallel_chunks(10 ** 9, 7) > 1:
        with pytest.raises(RuntimeError, match="worker failed"):
            threads.split_over_threads(fail, 7, work=10 ** 9)
        assert [lib.num_threads for lib in threads._blas_libraries()] == before


@pytest.mark.parametrize("choice, single", [("1", True), ("blas", False)])
def test_time_loop_blas_follows_tinylm_loop_threads_and_restores_blas(choice, single, monkeypatch):
    from tinylm.kernels import threads
    monkeypatch.setenv(threads.LOOP_THREADS_ENV_VAR, choice)
    before = [lib.num_threads for lib in threads._blas_libraries()]
    with threads.time_loop_blas():
        inside = [lib.num_threads for lib in threads._blas_libraries()]
    assert inside == ([1] * len(before) if single else before)
    assert [lib.num_threads for lib in threads._blas_libraries()] == before
