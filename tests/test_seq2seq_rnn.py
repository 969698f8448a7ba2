"""The recurrent encoder-decoder (tinylm/models/seq2seq_rnn.py): finite-difference gradients
of the whole model, its PyTorch twin (tinylm/bench/twins/seq2seq.py), step-by-step decoding
against teacher forcing, beam-search reordering, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.bench.twins.seq2seq import (seq2seq_twin, twin_arrays, twin_grads,
                                        twin_parameters, twin_seq2seq_loss)
from tinylm.beam_search import beam_search, greedy_decode
from tinylm.models.seq2seq_rnn import Seq2SeqRNN, Seq2SeqRNNConfig
from tinylm.optim import AdamW, decay_groups

CELLS = ["gru", "lstm"]
ATTENTIONS = ["none", "dot", "general"]


def tiny(cell="gru", attention="general", **overrides):
    config = dict(src_vocab=7, tgt_vocab=6, n_embd=3, n_hidden=4, n_layer=2, cell=cell,
                  attention=attention) | overrides
    return Seq2SeqRNN(Seq2SeqRNNConfig(**config)).to(dtype=np.float64)


def batch(rng, B=2, S=5, T=4, padded=True):
    """src [B, S], tgt_in/tgt_out [B, T] (tgt_out padded with -100), src_mask [B, S] (the
    last row has 3 real tokens: two length groups)."""
    src, tgt_in = rng.integers(0, 7, (B, S)), rng.integers(0, 6, (B, T))
    tgt_out = rng.integers(0, 6, (B, T))
    tgt_out[0, -1] = -100
    mask = np.ones((B, S), dtype=bool)
    if padded:
        mask[-1, -2:] = False
    return src, tgt_in, tgt_out, mask


def loss_of(model, data):
    src, tgt_in, tgt_out, mask = data
    return float(model.forward(src, tgt_in, tgt_out, src_mask=mask)[1])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_gradients_match_central_differences(cell, attention, rng):
    model, data = tiny(cell, attention), batch(rng)
    model.zero_grad()
    loss_of(model, data)
    model.backward()
    eps = 1e-6
    for name, p in model.named_parameters():
        flat, grad = p.data.reshape(-1), p.grad.reshape(-1)
        for i in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss_of(model, data)
            flat[i] = old - eps
            down = loss_of(model, data)
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - grad[i]) <= 1e-7 + 1e-5 * abs(numeric), (name, i)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_matches_the_torch_twin(cell, attention, rng, torch):
    model, (src, tgt_in, tgt_out, mask) = tiny(cell, attention), batch(rng)
    twin = seq2seq_twin(torch, model)
    logits, loss = model.forward(src, tgt_in, tgt_out, src_mask=mask, label_smoothing=0.1)
    model.zero_grad()
    model.backward()
    t_logits, t_loss = twin_seq2seq_loss(torch, twin, attention, src, tgt_in, tgt_out, mask,
                                         label_smoothing=0.1)
    t_loss.backward()
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-9)
    assert abs(float(loss) - t_loss.item()) < 1e-9
    theirs = twin_grads(twin)
    ours = dict(model.named_parameters())
    assert set(theirs) == set(ours)
    for name, p in ours.items():
        np.testing.assert_allclose(p.grad, theirs[name], rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("cell, attention", [("gru", "general"), ("lstm", "dot")])
def test_ten_adamw_steps_match_torch_adamw(cell, attention, rng, torch):
    model, (src, tgt_in, tgt_out, mask) = tiny(cell, attention), batch(rng)
    twin = seq2seq_twin(torch, model)
    hyper = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-8)
    ours = AdamW(decay_groups(model.parameters(), 0.1), **hyper)
    theirs = torch.optim.AdamW(decay_groups(twin_parameters(twin), 0.1), **hyper)
    for _ in range(10):
        ours.zero_grad()
        model.forward(src, tgt_in, tgt_out, src_mask=mask, label_smoothing=0.1)
        model.backward()
        ours.step()
        theirs.zero_grad()
        twin_seq2seq_loss(torch, twin, attention, src, tgt_in, tgt_out, mask, 0.1)[1].backward()
        theirs.step()
    after, start = twin_arrays(twin), tiny(cell, attention).state_dict()
    assert set(after) == set(start)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, after[name], rtol=0, atol=1e-9, err_msg=name)
    assert max(np.abs(p.data - start[name]).max() for name, p in model.named_parameters()) > 1e-2


@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_gradients_twin_and_adamw(cell, rng, torch):
    """Both stacks, the concatenated keys and the summed initial state: central differences
    on a few weights of each stack, then the twin's loss, every gradient and 10 AdamW steps."""
    model, data = tiny(cell, bidirectional=True), batch(rng)
    src, tgt_in, tgt_out, mask = data
    model.zero_grad()
    model.forward(src, tgt_in, tgt_out, src_mask=mask)
    model.backward()
    for name in ("encoder.W_x_l0", "reverse_encoder.W_h_l1", "reverse_encoder.b_x_l0", "w_att"):
        p = dict(model.named_parameters())[name]
        for i in range(0, p.data.size, max(1, p.data.size // 5)):
            flat, keep = p.data.reshape(-1), p.data.reshape(-1)[i]
            flat[i] = keep + 1e-6
            up = loss_of(model, data)
            flat[i] = keep - 1e-6
            down = loss_of(model, data)
            flat[i] = keep
            numeric = (up - down) / 2e-6
            assert abs(numeric - p.grad.reshape(-1)[i]) <= 1e-7 + 1e-5 * abs(numeric), (name, i)
    twin = seq2seq_twin(torch, model)
    t_logits, t_loss = twin_seq2seq_loss(torch, twin, "general", src, tgt_in, tgt_out, mask)
    t_loss.backward()
    theirs = twin_grads(twin)
    assert set(theirs) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name], rtol=0, atol=1e-9, err_msg=name)
    hyper = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-8)
    ours = AdamW(decay_groups(model.parameters(), 0.1), **hyper)
    other = torch.optim.AdamW(decay_groups(twin_parameters(twin), 0.1), **hyper)
    for _ in range(10):
        ours.zero_grad()
        model.forward(src, tgt_in, tgt_out, src_mask=mask)
        model.backward()
        ours.step()
        other.zero_grad()
        twin_seq2seq_loss(torch, twin, "general", src, tgt_in, tgt_out, mask)[1].backward()
        other.step()
    after = twin_arrays(twin)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, after[name], rtol=0, atol=1e-9, err_msg=name)


def test_bidirectional_keys_read_the_source_both_ways(rng):
    """The reverse half of a key depends on the tokens after its position, the forward half
    only on those before; a padded row encodes as it would alone."""
    model = tiny(bidirectional=True)
    src = rng.integers(0, 7, (1, 5))
    changed = src.copy()
    changed[0, 4] = (src[0, 4] + 1) % 7
    keys, _ = model._encode(src, None)
    other, _ = model._encode(changed, None)
    H = model.config.n_hidden
    np.testing.assert_array_equal(keys[0, :4, :H], other[0, :4, :H])
    assert np.abs(keys[0, 0, H:] - other[0, 0, H:]).max() > 1e-6
    padded = np.concatenate([src, np.zeros((1, 2), dtype=src.dtype)], axis=1)
    mask = np.arange(7)[None, :] < 5
    both = np.concatenate([padded, rng.integers(0, 7, (1, 7))])
    keys_padded, _ = model._encode(both, np.concatenate([mask, np.ones((1, 7), bool)]))
    np.testing.assert_allclose(keys_padded[0, :5], keys[0], atol=1e-12)
    np.testing.assert_array_equal(keys_padded[0, 5:], 0.0)


@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_decode_steps_reproduce_teacher_forcing(cell, rng):
    model, (src, tgt_in, _, mask) = tiny(cell, bidirectional=True), batch(rng)
    logits, _ = model.forward(src, tgt_in, src_mask=mask)
    state = model.encode(src, mask)
    for t in range(tgt_in.shape[1]):
        log_probs, state = model.decode_step(tgt_in[:, t], state)
        np.testing.assert_allclose(log_probs, _log_softmax(logits[:, t]), atol=1e-12)


def test_bidirectional_refuses_dot_attention():
    with pytest.raises(ValueError, match="bidirectional.*general"):
        Seq2SeqRNNConfig(src_vocab=5, tgt_vocab=5, attention="dot", bidirectional=True)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_decode_steps_reproduce_teacher_forcing(cell, attention, rng):
    model, (src, tgt_in, _, mask) = tiny(cell, attention), batch(rng)
    logits, _ = model.forward(src, tgt_in, src_mask=mask)
    state = model.encode(src, mask)
    for t in range(tgt_in.shape[1]):
        log_probs, state = model.decode_step(tgt_in[:, t], state)
        np.testing.assert_allclose(log_probs, _log_softmax(logits[:, t]), atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_reorder_selects_rows_and_beam_search_runs(cell, rng):
    model, (src, _, _, mask) = tiny(cell), batch(rng, B=3)
    state = model.encode(src, mask)
    picked = model.reorder(state, np.array([2, 0]))
    alone = model.encode(src[[2, 0]], mask[[2, 0]])
    ids = np.array([1, 3])
    np.testing.assert_allclose(model.decode_step(ids, picked)[0],
                               model.decode_step(ids, alone)[0], atol=1e-13)
    beams = beam_search(model.decode_step, state, 3, bos_id=0, eos_id=1, beam_width=3,
                        max_len=6, reorder=model.reorder)
    greedy = greedy_decode(model.decode_step, model.encode(src, mask), 3, bos_id=0, eos_id=1,
                           max_len=6)
    assert len(beams) == len(greedy) == 3


@pytest.mark.parametrize("cell", CELLS)
def test_a_padded_row_decodes_as_it_would_alone(cell, rng):
    """Row 1 has 3 real tokens of 5: its logits equal those of src[1, :3] on its own."""
    model, (src, tgt_in, _, mask) = tiny(cell), batch(rng)
    logits, _ = model.forward(src, tgt_in, src_mask=mask)
    alone, _ = model.forward(src[1:, :3], tgt_in[1:])
    np.testing.assert_allclose(logits[1:], alone, atol=1e-13)


def test_the_mask_must_be_right_padding(rng):
    model, (src, tgt_in, tgt_out, mask) = tiny(), batch(rng)
    mask[0, 1] = False
    with pytest.raises(ValueError, match="src_mask"):
        model.forward(src, tgt_in, tgt_out, src_mask=mask)


def test_a_second_backward_raises(rng):
    model, (src, tgt_in, tgt_out, mask) = tiny(), batch(rng)
    model.forward(src, tgt_in, tgt_out, src_mask=mask)
    model.backward()
    with pytest.raises(RuntimeError, match="already"):
        model.backward()
    model.forward(src, tgt_in, src_mask=mask)
    with pytest.raises(RuntimeError, match="no loss"):
        model.backward()


def test_bad_inputs_name_the_argument(rng):
    model, (src, tgt_in, tgt_out, mask) = tiny(), batch(rng)
    with pytest.raises(ValueError, match="src"):
        model.forward(src[:, :0], tgt_in, tgt_out)
    with pytest.raises(ValueError, match="src"):
        model.encode(np.zeros((0, 3), dtype=np.int64))
    bad = src.copy()
    bad[1, 2] = 7
    with pytest.raises(ValueError, match="src"):
        model.forward(bad, tgt_in, tgt_out)
    bad = tgt_in.copy()
    bad[0, 0] = -1
    with pytest.raises(ValueError, match="tgt_in"):
        model.forward(src, bad, tgt_out)
    bad = tgt_out.copy()
    bad[0, 1] = 6
    with pytest.raises(ValueError, match="tgt_out"):
        model.forward(src, tgt_in, bad)
    with pytest.raises(ValueError, match="src_mask"):
        model.forward(src, tgt_in, tgt_out, src_mask=mask[:, :2])
    with pytest.raises(ValueError, match="prev_ids"):
        model.decode_step(np.array([0, 6]), model.encode(src, mask))


@pytest.mark.parametrize("field, value", [("cell", "rnn"), ("attention", "additive"),
                                          ("n_hidden", 0), ("src_vocab", 0)])
def test_config_range_checks_name_the_field(field, value):
    config = dict(src_vocab=5, tgt_vocab=5) | {field: value}
    with pytest.raises(ValueError, match=field):
        Seq2SeqRNNConfig(**config)
