"""Encoder attention (tinylm/functional/encoder_attention.py) and label smoothing against PyTorch.

Luong's and Bahdanau's attention against the same formulas written in torch with autograd;
cross-attention against ``torch.nn.functional.multi_head_attention_forward`` with the same
weights; label smoothing against ``torch.nn.functional.cross_entropy``. All float64; the
gradients are those of sum(out * G) for a random G.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.functional import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.encoder_attention import (additive_attention_backward,
                                                 additive_attention_forward,
                                                 cross_attention_backward,
                                                 cross_attention_forward, masked_softmax,
                                                 multiplicative_attention_backward,
                                                 multiplicative_attention_forward, source_mask)

REL = 1e-10


def _t(torch, a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _source(rng, B=3, S=6, Dk=4, Dv=5):
    return (rng.standard_normal((B, S, Dk)), rng.standard_normal((B, S, Dv)),
            source_mask(np.array([S, 2, 4])[:B], S, np))


def _torch_attend(torch, scores, values, mask):
    """scores [B, T, S] -> (context [B, T, Dv], weights [B, T, S]), masked like tinylm."""
    scores = scores.masked_fill(~torch.as_tensor(mask)[:, None, :], float("-inf"))
    alpha = torch.softmax(scores, dim=-1)
    return alpha @ values, alpha


def _compare(torch, assert_rel_close, ours, theirs, tensors, names, upstream):
    """ours = (context, weights, grads); theirs = (context, weights) in torch."""
    context, weights, grads = ours
    assert_rel_close(context, theirs[0].detach().numpy(), REL, "context")
    assert_rel_close(weights, theirs[1].detach().numpy(), REL, "weights")
    (theirs[0] * torch.tensor(upstream)).sum().backward()
    for name, ours_g, t in zip(names, grads, tensors):
        assert_rel_close(ours_g, t.grad.numpy(), REL, f"d{name}")


@pytest.mark.parametrize("steps", [False, True], ids=["one step", "all steps"])
@pytest.mark.parametrize("general", [False, True], ids=["dot", "general"])
def test_luong_attention_matches_torch(torch, rng, assert_rel_close, steps, general):
    keys, values, mask = _source(rng, Dk=4 if general else 7)
    query = rng.standard_normal((3, 2, 7) if steps else (3, 7))
    W = rng.standard_normal((7, 4)) if general else None
    context, cache = multiplicative_attention_forward(query, keys, values, W, mask)
    weights = cache.weights
    G = rng.standard_normal(context.shape)
    dq, dk, dv, dW = multiplicative_attention_backward(G, cache)
    assert (dW is None) == (W is None)

    tq, tk, tv = _t(torch, query), _t(torch, keys), _t(torch, values)
    q3 = tq if steps else tq[:, None, :]
    g = q3 if W is None else q3 @ (tW := _t(torch, W))
    tc, ta = _torch_attend(torch, g @ tk.transpose(1, 2), tv, mask)
    if not steps:
        tc, ta = tc[:, 0], ta[:, 0]
    tensors = [tq, tk, tv] + ([] if W is None else [tW])
    _compare(torch, assert_rel_close, (context, weights, (dq, dk, dv, dW)), (tc, ta),
             tensors, ["query", "keys", "values", "W"], G)


@pytest.mark.parametrize("steps", [False, True], ids=["one step", "all steps"])
def test_bahdanau_attention_matches_torch(torch, rng, assert_rel_close, steps):
    keys, values, mask = _source(rng)
    query = rng.standard_normal((3, 4, 7) if steps else (3, 7))
    W_q, W_k, v = (rng.standard_normal((7, 8)), rng.standard_normal((4, 8)),
                   rng.standard_normal(8))
    context, cache = additive_attention_forward(query, keys, values, W_q, W_k, v, mask)
    weights = cache.weights
    G = rng.standard_normal(context.shape)
    grads = additive_attention_backward(G, cache)

    tensors = [_t(torch, a) for a in (query, keys, values, W_q, W_k, v)]
    tq, tk, tv, tWq, tWk, tva = tensors
    q3 = tq if steps else tq[:, None, :]
    h = torch.tanh((q3 @ tWq)[:, :, None, :] + (tk @ tWk)[:, None, :, :])   # [B, T, S, A]
    tc, ta = _torch_attend(torch, h @ tva, tv, mask)
    if not steps:
        tc, ta = tc[:, 0], ta[:, 0]
    _compare(torch, assert_rel_close, (context, weights, grads), (tc, ta), tensors,
             ["query", "keys", "values", "W_q", "W_k", "v"], G)


def _cross_weights(rng, D):
    return {"w_q": 0.5 * rng.standard_normal((D, D)), "b_q": 0.1 * rng.standard_normal(D),
            "w_kv": 0.5 * rng.standard_normal((D, 2 * D)),
            "b_kv": 0.1 * rng.standard_normal(2 * D),
            "w_o": 0.5 * rng.standard_normal((D, D)), "b_o": 0.1 * rng.standard_normal(D)}


@pytest.mark.parametrize("masked", [True, False], ids=["padding", "no mask"])
def test_cross_attention_matches_torch_multi_head_attention(torch, rng, assert_rel_close,
                                                             masked):
    B, T, S, D, H = 3, 4, 6, 8, 2
    x, memory = rng.standard_normal((B, T, D)), rng.standard_normal((B, S, D))
    mask = source_mask(np.array([6, 2, 5]), S, np) if masked else None
    w = _cross_weights(rng, D)
    out, cache = cross_attention_forward(x, memory, **w, n_head=H, src_mask=mask)
    G = rng.standard_normal(out.shape)
    grads = cross_attention_backward(G, cache)

    names = ["x", "memory", *w]
    tensors = [_t(torch, a) for a in (x, memory, *w.values())]
    tx, tm, tw_q, tb_q, tw_kv, tb_kv, tw_o, tb_o = tensors
    t_out, t_att = torch.nn.functional.multi_head_attention_forward(
        tx.transpose(0, 1), tm.transpose(0, 1), tm.transpose(0, 1), D, H,
        torch.cat([tw_q, tw_kv], dim=1).T, torch.cat([tb_q, tb_kv]), None, None, False, 0.0,
        tw_o.T, tb_o, training=False,
        key_padding_mask=None if mask is None else ~torch.as_tensor(mask),
        need_weights=True, average_attn_weights=False)                  # [T, B, D], [B, H, T, S]
    t_out = t_out.transpose(0, 1)
    assert_rel_close(out, t_out.detach().numpy(), REL, "out")
    assert_rel_close(cache.att, t_att.detach().numpy(), REL, "attention weights")
    (t_out * torch.tensor(G)).sum().backward()
    for name, ours, t in zip(names, grads, tensors):
        assert_rel_close(ours, t.grad.numpy(), REL, f"d{name}")


# -- the shared parts: masks and their errors ------------------------------------------------

def test_padding_gets_exactly_zero_weight_and_one_step_is_a_slice_of_all_steps(rng):
    keys, values, mask = _source(rng, Dk=7)
    query = rng.standard_normal((3, 4, 7))
    c_all, all_cache = multiplicative_attention_forward(query, keys, values, mask=mask)
    a_all = all_cache.weights
    assert np.all(a_all[~np.broadcast_to(mask[:, None, :], a_all.shape)] == 0.0)
    np.testing.assert_allclose(a_all.sum(axis=-1), 1.0, atol=1e-12)
    c_one, one_cache = multiplicative_attention_forward(query[:, 2], keys, values, mask=mask)
    a_one = one_cache.weights
    np.testing.assert_allclose(c_one, c_all[:, 2], atol=1e-12)
    np.testing.assert_allclose(a_one, a_all[:, 2], atol=1e-12)


def test_padding_changes_nothing_when_the_padded_keys_are_dropped(rng):
    keys, values, mask = _source(rng, Dk=7)
    query = rng.standard_normal((3, 7))
    context, _ = multiplicative_attention_forward(query, keys, values, mask=mask)
    alone, _ = multiplicative_attention_forward(query[1:2], keys[1:2, :2], values[1:2, :2])
    np.testing.assert_allclose(context[1:2], alone, atol=1e-12)


def test_a_source_row_with_every_position_masked_is_an_error(rng):
    keys, values, mask = _source(rng, Dk=7)
    mask[1] = False
    with pytest.raises(ValueError, match="source row 1 has every position masked"):
        multiplicative_attention_forward(rng.standard_normal((3, 7)), keys, values, mask=mask)


@pytest.mark.parametrize("bad", [np.ones((3, 5), dtype=bool), np.ones((6, 3), dtype=bool)])
def test_a_mask_of_the_wrong_shape_is_named(rng, bad):
    keys, values, _ = _source(rng, Dk=7)
    with pytest.raises(ValueError, match=r"source mask has shape .* need \[B, S\]"):
        multiplicative_attention_forward(rng.standard_normal((3, 7)), keys, values, mask=bad)


def test_an_integer_mask_is_rejected(rng):
    keys, values, mask = _source(rng, Dk=7)
    with pytest.raises(ValueError, match="must be bool"):
        multiplicative_attention_forward(rng.standard_normal((3, 7)), keys, values,
                                         mask=mask.astype(int))


def test_shape_errors_name_the_arrays(rng):
    keys, values, mask = _source(rng)
    with pytest.raises(ValueError, match="need W"):
        multiplicative_attention_forward(rng.standard_normal((3, 7)), keys, values,
                                         rng.standard_normal((7, 5)), mask)
    with pytest.raises(ValueError, match="need W_q"):
        additive_attention_forward(rng.standard_normal((3, 7)), keys, values,
                                   rng.standard_normal((6, 8)), rng.standard_normal((4, 8)),
                                   rng.standard_normal(8), mask)
    with pytest.raises(ValueError, match=r"query has shape"):
        multiplicative_attention_forward(rng.standard_normal(7), keys, values)
    with pytest.raises(ValueError, match="cross_attention"):
        cross_attention_forward(rng.standard_normal((3, 2, 8)), rng.standard_normal((3, 4, 6)),
                                **_cross_weights(rng, 8), n_head=2)


def test_masked_softmax_without_mask_is_the_softmax(rng):
    scores = rng.standard_normal((2, 3, 4))
    e = np.exp(scores)
    np.testing.assert_allclose(masked_softmax(scores, None), e / e.sum(-1, keepdims=True),
                               atol=1e-14)


# -- label smoothing -------------------------------------------------------------------------

@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
def test_label_smoothing_matches_torch(torch, rng, eps, kernels):
    logits = 3.0 * rng.standard_normal((4, 5, 9))
    targets = rng.integers(0, 9, size=(4, 5))
    targets[:, ::2] = -100
    targets[0, :] = -100
    loss, cache = cross_entropy_forward(logits, targets, label_smoothing=eps)
    dlogits = cross_entropy_backward(1.7, cache)
    tz = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tz.reshape(-1, 9), torch.tensor(targets).reshape(-1),
                                               ignore_index=-100, label_smoothing=eps)
    (1.7 * t_loss).backward()
    assert abs(float(loss) - t_loss.item()) <= 1e-12 * max(1.0, abs(t_loss.item()))
    assert np.max(np.abs(dlogits - tz.grad.numpy())) <= 1e-12


def test_label_smoothing_zero_is_the_plain_loss_bit_for_bit(rng, kernels):
    logits = rng.standard_normal((6, 11)).astype(np.float32)
    targets = rng.integers(0, 11, size=6)
    plain, plain_cache = cross_entropy_forward(logits, targets)
    zero, zero_cache = cross_entropy_forward(logits, targets, label_smoothing=0.0)
    assert plain == zero
    np.testing.assert_array_equal(cross_entropy_backward(1.0, plain_cache),
                                  cross_entropy_backward(1.0, zero_cache))


def test_label_smoothing_keeps_float32(rng):
    logits = rng.standard_normal((6, 11)).astype(np.float32)
    loss, cache = cross_entropy_forward(logits, rng.integers(0, 11, size=6), label_smoothing=0.1)
    assert loss.dtype == np.float32 and cross_entropy_backward(1.0, cache).dtype == np.float32


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_label_smoothing_outside_0_1_is_an_error(rng, eps):
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        cross_entropy_forward(rng.standard_normal((2, 3)), np.array([0, 1]), label_smoothing=eps)
