"""Each numba kernel equals its plain reference; ``TINYLM_KERNELS`` picks the path.

Sizes are odd on purpose (rows and columns that divide into no thread chunk evenly); rows
with ``ignore_index`` and repeated token ids are included. Both float32 and float64, and both
numba paths: the serial kernel (small problems) and the parallel driver (forced here by
setting the work threshold to 0).
"""

from __future__ import annotations

import numpy as np
import pytest

import tinylm.kernels
from tinylm import backend
from tinylm.kernels import (adam, attention, cross_entropy, dropout, embedding, gelu, layernorm,
                            tanh)

pytestmark = pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")

DTYPES = [np.float32, np.float64]
# Tolerances relative to the largest entry: the two paths sum in different orders (and
# numba accumulates float32 rows in float64), so they agree to rounding, not bit for bit.
REL = {np.float32: 2e-6, np.float64: 1e-13}


@pytest.fixture(autouse=True)
def auto_kernels(monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")


@pytest.fixture(params=["serial", "parallel"])
def split(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(tinylm.kernels, "PARALLEL_MIN_WORK", 0)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, d, vocab", [(1, 1, 1), (37, 13, 5), (301, 67, 1001)])
def test_embedding_backward_numba_equals_reference(n, d, vocab, dtype, rng, assert_rel_close,
                                                   split):
    ids = rng.integers(0, max(1, vocab // 3), size=n)           # a third of the table: repeats
    dout = rng.standard_normal((n, d)).astype(dtype)
    assert backend.use_numba(ids, dout)
    fast = embedding.embedding_backward(ids, dout, vocab)
    slow = embedding.embedding_backward_reference(ids, dout, vocab)
    assert fast.dtype == slow.dtype == dtype
    assert_rel_close(fast, slow, REL[dtype], "dW")


@pytest.mark.parametrize("kernel", ["embedding_backward", "embedding_backward_reference"])
def test_embedding_backward_adds_into_out(kernel, rng, assert_rel_close):
    ids = rng.integers(0, 5, size=40)                             # ids repeat
    dout = rng.standard_normal((40, 300))                         # big enough to run in parallel
    acc = rng.standard_normal((5, 300))
    expected = acc + embedding.embedding_backward_reference(ids, dout, 5)
    result = getattr(embedding, kernel)(ids, dout, 5, out=acc)
    assert result is acc
    assert_rel_close(acc, expected, 1e-13, "accumulated dW")
    with pytest.raises(ValueError, match="out has shape"):
        getattr(embedding, kernel)(ids, dout, 5, out=np.zeros((5, 299)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, vocab", [(1, 2), (29, 7), (203, 1003)])
def test_cross_entropy_numba_equals_reference(n, vocab, dtype, rng, assert_rel_close, split):
    logits = (4.0 * rng.standard_normal((n, vocab))).astype(dtype)
    targets = rng.integers(0, vocab, size=n)
    targets[::3] = -100                                           # ignored rows
    row_grad = np.where(targets != -100, rng.standard_normal(n), 0).astype(dtype)
    loss_fast, probs_fast = cross_entropy.cross_entropy_forward(logits, targets, -100)
    loss_slow, probs_slow = cross_entropy.cross_entropy_forward_reference(logits, targets, -100)
    assert loss_fast.dtype == loss_slow.dtype == dtype
    assert np.all(loss_fast[targets == -100] == 0)
    assert_rel_close(loss_fast, loss_slow, REL[dtype], "row loss")
    assert_rel_close(probs_fast, probs_slow, REL[dtype], "probs")
    assert_rel_close(probs_fast.sum(axis=1), np.ones(n), REL[dtype], "sum of probs")
    d_fast = cross_entropy.cross_entropy_backward(probs_fast, targets, row_grad, -100)
    d_slow = cross_entropy.cross_entropy_backward_reference(probs_slow, targets, row_grad, -100)
    assert d_fast.dtype == d_slow.dtype == dtype
    assert np.all(d_fast[targets == -100] == 0)
    assert_rel_close(d_fast, d_slow, REL[dtype], "dlogits")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c", [(1, 3), (33, 17), (257, 385)])
def test_layernorm_numba_equals_reference(n, c, dtype, rng, assert_rel_close, split):
    x = (1.5 + 2.0 * rng.standard_normal((n, c))).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal((n, c)).astype(dtype)
    fast = layernorm.layernorm_forward(x, gamma, beta, 1e-5)
    slow = layernorm.layernorm_forward_reference(x, gamma, beta, 1e-5)
    for name, a, b in zip(("y", "mean", "rstd"), fast, slow):
        assert a.dtype == b.dtype == dtype, name
        assert_rel_close(a, b, REL[dtype], name)
    grads_fast = layernorm.layernorm_backward(dy, x, fast[1], fast[2], gamma)
    grads_slow = layernorm.layernorm_backward_reference(dy, x, slow[1], slow[2], gamma)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), grads_fast, grads_slow):
        assert a.dtype == b.dtype == dtype, name
        assert_rel_close(a, b, 10 * REL[dtype], name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 5, 101)])
def test_gelu_numba_equals_reference(shape, approximate, dtype, rng, assert_rel_close, split):
    x = (3.0 * rng.standard_normal(shape)).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    fast = gelu.gelu_forward(x, approximate)
    slow = gelu.gelu_forward_reference(x, approximate)
    assert fast.shape == slow.shape == shape and fast.dtype == slow.dtype == dtype
    # Measured against |x| and |dout|: for x << 0, gelu(x) is a tiny difference of O(|x|)
    # terms, which the float32 reference rounds at the scale of |x|.
    assert_rel_close(fast, slow, REL[dtype], "gelu", scale=np.abs(x).max())
    d_fast = gelu.gelu_backward(dout, x, approximate)
    d_slow = gelu.gelu_backward_reference(dout, x, approximate)
    assert d_fast.dtype == d_slow.dtype == dtype
    assert_rel_close(d_fast, d_slow, REL[dtype], "dgelu", scale=np.abs(dout).max())


def test_kernels_accept_non_contiguous_inputs(rng, assert_rel_close):
    logits = rng.standard_normal((9, 12))[:, ::2]                 # a strided view
    targets = rng.integers(0, 6, size=9)
    loss, _ = cross_entropy.cross_entropy_forward(logits, targets, -100)
    assert_rel_close(loss, cross_entropy.cross_entropy_forward_reference(logits, targets, -100)[0],
                     1e-13)
    x = rng.standard_normal((5, 14))[:, ::2]
    assert_rel_close(gelu.gelu_forward(x, "tanh"), gelu.gelu_forward_reference(x, "tanh"), 1e-13)


# -- selection ---------------------------------------------------------------------------------

NUMBA_FUNCTIONS = [   # (module, its serial numba kernel, a small call that reaches it)
    (embedding, "_scatter_add_columns",
     lambda rng: embedding.embedding_backward(rng.integers(0, 3, 4), rng.standard_normal((4, 2)),
                                              3)),
    (cross_entropy, "_forward_rows",
     lambda rng: cross_entropy.cross_entropy_forward(rng.standard_normal((4, 3)),
                                                     rng.integers(0, 3, 4), -100)),
    (layernorm, "_forward_rows",
     lambda rng: layernorm.layernorm_forward(rng.standard_normal((4, 3)), np.ones(3), np.zeros(3),
                                             1e-5)),
    (gelu, "_forward_range", lambda rng: gelu.gelu_forward(rng.standard_normal(5), "tanh")),
    (attention, "_softmax_rows",
     lambda rng: attention.causal_attention_forward(rng.standard_normal((2, 4, 6)), 1)),
    (tanh, "_tanh_rational", lambda rng: tanh.tanh(rng.standard_normal(5).astype(np.float32))),
    (dropout, "_apply", lambda rng: dropout.apply_dropout(rng.standard_normal(5),
                                                          rng.random(5), 0.3)),
    (adam, "_adam_update_flat",
     lambda rng: adam.adam_update(*(rng.random(3) for _ in range(5)), 1e-3, 0.9, 0.99,
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
        gelu.gelu_forward(rng.standard_normal(3), "tanh")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, rows, H, B, T", [(1, 2, 1, 1, 1), (3, 7, 5, 2, 9), (16, 66, 130, 4, 64)])
def test_window_sum_numba_equals_reference(n, rows, H, B, T, dtype, rng, assert_rel_close, split):
    from tinylm.kernels import window_sum
    tables = rng.standard_normal((n, rows, H)).astype(dtype)
    ids = rng.integers(0, rows, size=(B, T + n - 1))
    dout = rng.standard_normal((B, T, H)).astype(dtype)
    assert_rel_close(window_sum.window_sum(tables, ids, T),
                     window_sum.window_sum_reference(tables, ids, T), REL[dtype], "out")
    assert_rel_close(window_sum.window_sum_backward(dout, ids, n, rows),
                     window_sum.window_sum_backward_reference(dout, ids, n, rows), REL[dtype],
                     "dtables")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, True), (0.1, True), (0.1, False)])
def test_adam_update_numba_equals_reference(weight_decay, decoupled, dtype, rng,
                                            assert_rel_close):
    """Three steps on a [7, 13] parameter: p, m and v agree (same operations, same order)."""
    shape = (7, 13)
    states = [[rng.standard_normal(shape).astype(dtype), np.zeros(shape, dtype),
               np.zeros(shape, dtype)]]                           # p, m, v
    states.append([a.copy() for a in states[0]])
    for t in (1, 2, 3):
        g = rng.standard_normal(shape).astype(dtype)
        for state, update in zip(states, (adam.adam_update, adam.adam_update_reference)):
            update(*state[:1], g, *state[1:], np.empty(shape, dtype), 1e-2, 0.9, 0.99, 1e-8,
                   weight_decay, decoupled, t)
    for name, fast, slow in zip(("p", "m", "v"), *states):
        assert_rel_close(fast, slow, REL[dtype], name)


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


def test_rational_tanh_is_within_3e7_of_tanh(rng):
    x = np.concatenate([np.linspace(-10.0, 10.0, 100_001),
                        3.0 * rng.standard_normal(10_000)]).astype(np.float32)
    fast = tanh.tanh(x)
    assert fast.dtype == np.float32
    assert np.max(np.abs(fast - np.tanh(x.astype(np.float64)))) < 3.5e-7
    assert np.all(np.abs(fast) <= 1.0) and np.all(np.sign(fast) == np.sign(x))
    x64 = x.astype(np.float64)
    assert np.array_equal(tanh.tanh(x64), np.tanh(x64)), "float64 takes NumPy's tanh"


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_kernel_equals_reference(dtype, rng):
    x = rng.standard_normal((3, 5, 7)).astype(dtype)
    u = rng.random(x.shape, dtype=dtype)
    y_ref, m_ref = dropout.apply_dropout_reference(x, u, 0.3)
    y, m = dropout.apply_dropout(x, u.copy(), 0.3)
    assert y.dtype == m.dtype == dtype and y.shape == m.shape == x.shape
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(y, y_ref)


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
