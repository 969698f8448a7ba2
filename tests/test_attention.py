"""Attention and positional encodings (chapter 07).

* the CPU causal-attention kernel (BLAS products + numba rows) equals the functional
  reference (causal_attention_*_reference), forward and backward, float32 and float64, in
  one thread and split over threads, with and without a dropout mask;
* every backward here against float64 finite differences, on both kernel paths:
  causal_attention_backward (kernel), scaled_dot_product_attention_backward,
  attention_heads_backward, multi_head_attention_backward, sinusoidal_positional_backward,
  learned_positional_backward;
* parity with PyTorch (float64, 1e-10): F.scaled_dot_product_attention (causal, padding
  mask, Tq < Tk) and nn.MultiheadAttention with its fused in-projection;
* properties: causality, masked keys get zero weight, the two attention paths agree;
* the module: its weights for plots, and its dropout generator saved and restored.

The Transformer block is tests/test_transformer_block.py, dropout tests/test_dropout.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinylm.kernels
from tinylm import backend
from tinylm.functional import attention as A
from tinylm.functional import positional as P
from tinylm.functional.attention import (attention_heads_backward,
                                         multi_head_attention_backward,
                                         scaled_dot_product_attention_backward)
from tinylm.functional.positional import (learned_positional_backward,
                                          sinusoidal_positional_backward)
from tinylm.gradcheck import check_gradients
from tinylm.kernels import attention as K
from tinylm.nn.attention import MultiHeadAttention
from tinylm.nn.transformer import Block

TOL = 1e-7
REL = {np.float32: 3e-6, np.float64: 1e-12}


# -- the fused kernel against its reference ---------------------------------------------------

@pytest.fixture(params=["serial", "parallel"])
def split(request, monkeypatch):
    if request.param == "parallel":
        monkeypatch.setattr(tinylm.kernels, "PARALLEL_MIN_WORK", 0)
    return request.param


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, T, H, hd", [(1, 1, 1, 1), (2, 7, 3, 5), (3, 33, 2, 8)])
@pytest.mark.parametrize("dropout", [False, True])
def test_fused_kernel_equals_reference(B, T, H, hd, dtype, dropout, split, rng,
                                       assert_rel_close, monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")
    qkv = rng.standard_normal((B, T, 3 * H * hd)).astype(dtype)
    dy = rng.standard_normal((B, T, H * hd)).astype(dtype)
    mask = ((rng.random((B, H, T, T)) > 0.25) / 0.75).astype(dtype) if dropout else None
    y, att = K.causal_attention_forward(qkv, H, mask)
    y_ref, att_ref = A.causal_attention_forward_reference(qkv, H, mask)
    dqkv = K.causal_attention_backward(dy, qkv, att, H, mask)
    dqkv_ref = A.fused_attention_backward_reference(dy, qkv, att_ref, H, mask)
    assert y.dtype == att.dtype == dqkv.dtype == dtype
    assert_rel_close(y, y_ref, REL[dtype], "y")
    assert_rel_close(att, att_ref, REL[dtype], "att")
    assert_rel_close(dqkv, dqkv_ref, REL[dtype], "dqkv")
    assert np.all(np.triu(att, k=1) == 0), "weights above the diagonal must be exactly 0"


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, T, H, hd", [(1, 1, 1, 1), (2, 7, 3, 5), (3, 33, 2, 8)])
@pytest.mark.parametrize("dropout, padded", [(False, False), (True, True), (False, True)])
def test_bidirectional_kernel_equals_reference(B, T, H, hd, dtype, dropout, padded, split, rng,
                                               assert_rel_close, monkeypatch):
    """The encoder's fused path, with a key-padding mask (row 1 has no real key: its
    weights and output must be 0, not NaN)."""
    monkeypatch.setenv("TINYLM_KERNELS", "auto")
    qkv = rng.standard_normal((B, T, 3 * H * hd)).astype(dtype)
    dy = rng.standard_normal((B, T, H * hd)).astype(dtype)
    mask = ((rng.random((B, H, T, T)) > 0.25) / 0.75).astype(dtype) if dropout else None
    keep = np.arange(T)[None, :] < np.array([T, 0, max(T - 3, 1)][:B])[:, None] if padded \
        else None
    y, att = K.bidirectional_attention_forward(qkv, H, keep, mask)
    y_ref, att_ref = A.bidirectional_attention_forward_reference(qkv, H, keep, mask)
    dqkv = K.bidirectional_attention_backward(dy, qkv, att, H, mask)
    dqkv_ref = A.fused_attention_backward_reference(dy, qkv, att_ref, H, mask)
    assert y.dtype == att.dtype == dqkv.dtype == dtype
    assert_rel_close(y, y_ref, REL[dtype], "y")
    assert_rel_close(att, att_ref, REL[dtype], "att")
    assert_rel_close(dqkv, dqkv_ref, REL[dtype], "dqkv")
    if padded:
        assert np.all(att[~np.broadcast_to(keep[:, None, None, :], att.shape)] == 0)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dqkv))


def test_the_encoder_takes_the_fused_path_and_agrees_with_the_general_one(kernels, rng,
                                                                          assert_rel_close):
    """A key-padding mask [B, 1, 1, T] without causality is the fused bidirectional path;
    the same mask as a [B, 1, T, T] array goes the general way; both agree, dropout too."""
    qkv = rng.standard_normal((2, 6, 12))
    keys = (np.arange(6)[None, :] < np.array([6, 4])[:, None])[:, None, None, :]
    full = np.broadcast_to(keys, (2, 1, 6, 6)).copy()
    fused = A.attention_heads_forward(qkv, 2, keys, False, 0.3, np.random.default_rng(4))
    general = A.attention_heads_forward(qkv, 2, full, False, 0.3, np.random.default_rng(4))
    assert isinstance(fused[1], A.FusedHeadsCache) and not fused[1].causal
    assert isinstance(general[1], A.MaskedHeadsCache)
    assert_rel_close(fused[0], general[0], 1e-13, "y")
    dy = rng.standard_normal(fused[0].shape)
    assert_rel_close(attention_heads_backward(dy, fused[1]),
                     attention_heads_backward(dy, general[1]), 1e-13, "dqkv")


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dropout", [False, True])
def test_kernel_in_slabs_of_one_batch_row_and_short_query_blocks(dropout, split, rng,
                                                                  assert_rel_close,
                                                                  monkeypatch):
    monkeypatch.setenv("TINYLM_KERNELS", "auto")
    monkeypatch.setattr(K, "SLAB_BYTES", 1)          # every batch row its own slab
    monkeypatch.setattr(K, "QUERY_BLOCK", 4)         # T = 10: blocks of 4, 4 and 2 rows
    B, T, H, hd = 3, 10, 2, 4
    qkv = rng.standard_normal((B, T, 3 * H * hd))
    dy = rng.standard_normal((B, T, H * hd))
    mask = (rng.random((B, H, T, T)) > 0.25) / 0.75 if dropout else None
    y, att = K.causal_attention_forward(qkv, H, mask)
    y_ref, att_ref = A.causal_attention_forward_reference(qkv, H, mask)
    assert_rel_close(y, y_ref, REL[np.float64], "y")
    assert_rel_close(att, att_ref, REL[np.float64], "att")
    assert_rel_close(K.causal_attention_backward(dy, qkv, att, H, mask),
                     A.fused_attention_backward_reference(dy, qkv, att_ref, H, mask),
                     REL[np.float64], "dqkv")


@pytest.mark.skipif(not backend.NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("dropout", [False, True])
def test_causal_attention_backward_kernel_matches_finite_differences(dropout, kernels, rng):
    mask = ((rng.random((2, 2, 5, 5)) > 0.3) / 0.7) if dropout else None

    def forward(qkv):
        y, att = K.causal_attention_forward(qkv, 2, mask)
        return y, (qkv, att)

    def backward(dy, cache):
        qkv, att = cache
        return K.causal_attention_backward(dy, qkv, att, 2, mask)

    report = check_gradients(forward, backward, {"qkv": rng.standard_normal((2, 5, 12))},
                             tolerance=TOL)
    assert report.passed, str(report)


def test_widths_that_do_not_split_into_heads_are_a_clear_error(rng):
    with pytest.raises(ValueError, match="divisible by"):
        A.attention_heads_forward(rng.standard_normal((1, 3, 15)), 2)


# -- finite differences for every functional backward of chapter 07 ---------------------------

BACKWARDS = [scaled_dot_product_attention_backward, attention_heads_backward,
             multi_head_attention_backward, sinusoidal_positional_backward,
             learned_positional_backward]
CASES = A.gradcheck_cases() + P.gradcheck_cases()


@pytest.mark.parametrize("backward", BACKWARDS, ids=lambda f: f.__name__)
def test_every_backward_has_gradcheck_cases(backward):
    assert any(case.backward is backward for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backward_matches_finite_differences(case, kernels):
    report = case.run(seed=1)
    assert report.tolerance <= TOL and report.passed, f"kernels={kernels}\n{report}"


# -- parity with PyTorch ------------------------------------------------------------------------

def _sdpa_parity(torch, q, k, v, mask, causal, assert_rel_close):
    G = np.random.default_rng(5).standard_normal(q.shape[:-1] + (v.shape[-1],))
    out, cache = A.scaled_dot_product_attention_forward(q, k, v, mask, causal)
    grads = scaled_dot_product_attention_backward(G, cache)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    attn_mask = None if mask is None else torch.tensor(mask)
    if causal and q.shape[-2] != k.shape[-2]:     # torch's is_causal is top-left aligned
        attn_mask = torch.tensor(A.causal_mask(q.shape[-2], k.shape[-2], np))
        causal = False
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=attn_mask,
                                                             is_causal=causal)
    (t_out * torch.tensor(G)).sum().backward()
    assert_rel_close(out, t_out.detach().numpy(), 1e-10, "out")
    for name, ours, theirs in zip("qkv", grads, (tq, tk, tv)):
        assert_rel_close(ours, theirs.grad.numpy(), 1e-10, f"d{name}")


def test_sdpa_matches_pytorch_causal(torch, rng, assert_rel_close):
    q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))
    _sdpa_parity(torch, q, k, v, None, True, assert_rel_close)


def test_sdpa_matches_pytorch_with_a_padding_mask(torch, rng, assert_rel_close):
    q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))
    ids = np.array([[3, 1, 4, 1, 0, 0], [2, 7, 1, 8, 2, 8]])
    _sdpa_parity(torch, q, k, v, A.key_padding_mask(ids, 0), False, assert_rel_close)


def test_sdpa_matches_pytorch_for_fewer_queries_than_keys(torch, rng, assert_rel_close):
    q = rng.standard_normal((2, 3, 2, 4))
    k, v = rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 6, 5))
    _sdpa_parity(torch, q, k, v, None, True, assert_rel_close)


@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_attention_matches_torch_multihead_attention(causal, torch, kernels, rng,
                                                               assert_rel_close):
    B, T, D, H = 2, 6, 8, 2
    inputs = {"x": rng.standard_normal((B, T, D)),
              "c_attn_w": 0.3 * rng.standard_normal((D, 3 * D)),
              "c_attn_b": 0.1 * rng.standard_normal(3 * D),
              "c_proj_w": 0.3 * rng.standard_normal((D, D)),
              "c_proj_b": 0.1 * rng.standard_normal(D)}
    G = rng.standard_normal((B, T, D))
    out, cache = A.multi_head_attention_forward(**inputs, n_head=H, causal=causal)
    grads = multi_head_attention_backward(G, cache)

    mha = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():                       # torch stores weights [out, in]
        mha.in_proj_weight.copy_(torch.tensor(inputs["c_attn_w"].T))
        mha.in_proj_bias.copy_(torch.tensor(inputs["c_attn_b"]))
        mha.out_proj.weight.copy_(torch.tensor(inputs["c_proj_w"].T))
        mha.out_proj.bias.copy_(torch.tensor(inputs["c_proj_b"]))
    x = torch.tensor(inputs["x"], requires_grad=True)
    forbidden = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    t_out, _ = mha(x, x, x, attn_mask=forbidden, need_weights=False)
    (t_out * torch.tensor(G)).sum().backward()
    assert_rel_close(out, t_out.detach().numpy(), 1e-10, "out")
    theirs = (x.grad, mha.in_proj_weight.grad.T, mha.in_proj_bias.grad,
              mha.out_proj.weight.grad.T, mha.out_proj.bias.grad)
    names = ("dx", "dc_attn_w", "dc_attn_b", "dc_proj_w", "dc_proj_b")
    for name, ours, t in zip(names, grads, theirs):
        assert_rel_close(ours, t.numpy(), 1e-10, name)


# -- properties -------------------------------------------------------------------------------

def test_causal_attention_never_looks_ahead(kernels, rng):
    qkv = rng.standard_normal((2, 9, 12))
    y, _ = A.attention_heads_forward(qkv, 2)
    changed = qkv.copy()
    changed[:, 5:] = rng.standard_normal((2, 4, 12))      # rewrite the future
    y2, _ = A.attention_heads_forward(changed, 2)
    np.testing.assert_allclose(y[:, :5], y2[:, :5], rtol=0, atol=1e-13)
    assert not np.allclose(y[:, 5:], y2[:, 5:])


def test_padded_keys_get_zero_weight_and_fully_masked_rows_give_zeros(rng):
    q, k, v = (rng.standard_normal((2, 1, 4, 3)) for _ in range(3))
    mask = A.key_padding_mask(np.array([[5, 6, 0, 0], [0, 0, 0, 0]]), 0)
    out, cache = A.scaled_dot_product_attention_forward(q, k, v, mask)
    weights = cache.p
    assert np.all(weights[0, :, :, 2:] == 0)
    np.testing.assert_allclose(weights[0].sum(-1), 1.0)
    assert np.all(out[1] == 0) and np.all(np.isfinite(out))
    grads = scaled_dot_product_attention_backward(np.ones_like(out), cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_fused_and_general_attention_paths_agree_with_dropout(kernels, rng, assert_rel_close):
    qkv = rng.standard_normal((2, 6, 12))
    everything = np.ones((1, 1, 6, 6), dtype=bool)        # a mask that forbids nothing
    fused = A.attention_heads_forward(qkv, 2, None, True, 0.3, np.random.default_rng(4))
    general = A.attention_heads_forward(qkv, 2, everything, True, 0.3, np.random.default_rng(4))
    assert isinstance(fused[1], A.FusedHeadsCache)
    assert isinstance(general[1], A.MaskedHeadsCache)
    assert_rel_close(fused[0], general[0], 1e-13, "y")
    dy = rng.standard_normal(fused[0].shape)
    assert_rel_close(attention_heads_backward(dy, fused[1]),
                     attention_heads_backward(dy, general[1]), 1e-13, "dqkv")


def test_scores_are_scaled_by_one_over_sqrt_d(rng):
    """With K = Q the scores are |q|^2 / sqrt(d); without the scaling they would be |q|^2."""
    q = rng.standard_normal((1, 1, 2, 16))
    _, cache = A.scaled_dot_product_attention_forward(q, q, np.eye(2)[None, None])
    s = q[0, 0] @ q[0, 0].T / math.sqrt(16)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(cache.p[0, 0], e / e.sum(-1, keepdims=True), rtol=1e-13)


def test_sinusoidal_encoding_follows_the_formula_and_rotates_with_position():
    pe = P.sinusoidal_encoding(50, 8, np, np.float64)
    t, i = 13, 2
    assert pe[t, 2 * i] == pytest.approx(math.sin(t / 10000 ** (2 * i / 8)), abs=1e-15)
    assert pe[t, 2 * i + 1] == pytest.approx(math.cos(t / 10000 ** (2 * i / 8)), abs=1e-15)
    np.testing.assert_allclose(P.sinusoidal_encoding(5, 8, np, np.float64, start=13), pe[13:18])
    # PE[t + k] = R_k PE[t] with a rotation R_k per frequency: check the norms of the pairs.
    pairs = pe.reshape(50, 4, 2)
    np.testing.assert_allclose((pairs ** 2).sum(-1), 1.0, rtol=1e-13)
    assert P.sinusoidal_encoding(3, 5, np, np.float32).shape == (3, 5)


def test_learned_positions_beyond_the_table_are_a_clear_error(rng):
    with pytest.raises(ValueError, match="crop the context"):
        P.learned_positional_forward(rng.standard_normal((1, 4, 3)), rng.standard_normal((5, 3)),
                                     start=2)


def test_multi_head_attention_module_keeps_its_weights_for_plots(rng):
    mha = MultiHeadAttention(8, 2)
    mha.forward(rng.standard_normal((3, 5, 8)).astype(np.float32))
    w = mha.attention_weights
    assert w.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 3)


def test_multi_head_attention_holds_its_dropout_probability_and_generator(rng):
    """The module applies dropout to its attention weights through functional; it keeps p
    (attn_pdrop) and the seeded generator (attn_dropout), whose state a checkpoint saves."""
    mha = MultiHeadAttention(8, 2, dropout=0.3, seed=4).to(dtype=np.float64)
    x = rng.standard_normal((2, 5, 8))
    mha.forward(x)
    generators = (mha.attn_dropout, mha.resid_dropout)
    states = [g.get_rng_state() for g in generators]
    first = mha.forward(x)
    for g, state in zip(generators, states):
        g.set_rng_state(state)
    np.testing.assert_array_equal(mha.forward(x), first)
    mha.resid_dropout.set_rng_state(states[1])        # only the weights' masks differ
    assert not np.array_equal(mha.forward(x), first)
    assert mha.attn_pdrop == 0.3 and "attn.attn_dropout" in dict(
        Block(8, 2, dropout=0.3).named_modules())
    np.testing.assert_array_equal(mha.eval().forward(x), mha.forward(x))
