"""The Transformer encoder-decoder (tinylm/models/seq2seq_transformer.py): the decoder block
pair against torch ops and the DecoderBlock module, the whole model against its PyTorch
twin (tinylm/bench/twins/seq2seq_transformer.py) in float64 -- logits, loss, every gradient
and 10 AdamW steps --, KV-cached decoding against teacher forcing, beam search, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.bench.twins.seq2seq_transformer import (seq2seq_transformer_twin, twin_arrays,
                                                    to_torch_layout)
from tinylm.beam_search import beam_search, greedy_decode
from tinylm.functional import transformer_decoder_block as TDB
from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from tinylm.nn.decoder_block import DecoderBlock
from tinylm.optim import AdamW, decay_groups

VARIANTS = [("sinusoidal", False), ("learned", False), ("sinusoidal", True), ("learned", True)]
IDS = [f"{p}-{'shared' if s else 'separate'}" for p, s in VARIANTS]


def tiny(positions="sinusoidal", share=False, dropout=0.0, scale=0.3, **overrides):
    """A float64 model whose weights are all redrawn ~ N(0, scale^2) (plus 1 on the layer
    norms' gains), so that every gradient is large enough for a 1e-9 comparison to mean
    something (the real initialisation leaves the encoder's near 1e-20)."""
    V = 9 if share else 8
    config = dict(src_vocab=9, tgt_vocab=V, n_embd=8, n_head=2, n_enc_layer=2, n_dec_layer=2,
                  max_len=7, positions=positions, share_embeddings=share,
                  dropout=dropout) | overrides
    model = Seq2SeqTransformer(Seq2SeqTransformerConfig(**config)).to(dtype=np.float64)
    rng = np.random.default_rng(7)
    for name, p in model.named_parameters():
        gain = name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or \
            name.endswith("_ln.weight") or name.endswith("ln_cross_attn.weight")
        p.data[...] = scale * rng.standard_normal(p.shape) + (1.0 if gain else 0.0)
    return model


def batch(rng, B=3, S=5, T=4, src_vocab=9, tgt_vocab=8):
    """src [B, S] with row 1 padded after 3 tokens, tgt_in/tgt_out [B, T] (tgt_out padded
    with -100)."""
    src, tgt_in = rng.integers(0, src_vocab, (B, S)), rng.integers(0, tgt_vocab, (B, T))
    tgt_out = rng.integers(0, tgt_vocab, (B, T))
    tgt_out[0, -1] = -100
    mask = np.ones((B, S), dtype=bool)
    mask[1, 3:] = False
    return src, tgt_in, tgt_out, mask


def as_torch(torch, *arrays):
    return [None if a is None else torch.from_numpy(a) for a in arrays]


# -- the decoder block ----------------------------------------------------------------------

def _torch_decoder_block(torch, inputs, H):
    """The decoder block in torch ops, from the functional pair's keyword arguments."""
    F, t = torch.nn.functional, {k: v for k, v in inputs.items()}
    D = t["x"].shape[-1]

    def ln(x, name):
        return F.layer_norm(x, (D,), t[f"{name}_w"], t[f"{name}_b"], eps=1e-5)

    def heads(x):
        B, n, _ = x.shape
        return x.view(B, n, H, D // H).transpose(1, 2)

    def attend(q, k, v, **kw):
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), **kw)
        return y.transpose(1, 2).reshape(q.shape)

    x = t["x"]
    q, k, v = (ln(x, "ln_1") @ t["attn_c_attn_w"] + t["attn_c_attn_b"]).split(D, dim=-1)
    x = x + attend(q, k, v, is_causal=True) @ t["attn_c_proj_w"] + t["attn_c_proj_b"]
    q = ln(x, "ln_cross_attn") @ t["crossattention_q_attn_w"] + t["crossattention_q_attn_b"]
    kv = t["memory"] @ t["crossattention_c_attn_w"] + t["crossattention_c_attn_b"]
    k, v = kv.split(D, dim=-1)
    mask = None if t["src_mask"] is None else t["src_mask"][:, None, None, :]
    c = attend(q, k, v, attn_mask=mask)
    x = x + c @ t["crossattention_c_proj_w"] + t["crossattention_c_proj_b"]
    h = F.gelu(ln(x, "ln_2") @ t["mlp_c_fc_w"] + t["mlp_c_fc_b"], approximate="tanh")
    return x + h @ t["mlp_c_proj_w"] + t["mlp_c_proj_b"]


@pytest.mark.parametrize("padded", [True, False])
def test_decoder_block_matches_torch_ops_in_float64(padded, rng, torch, assert_rel_close):
    inputs = TDB._decoder_inputs(rng, padded=padded)
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    out, cache = TDB.decoder_block_forward(**{k: v for k, v in inputs.items() if k != "seed"})
    G = rng.standard_normal(out.shape)
    grads = dict(zip(arrays, TDB.decoder_block_backward(G, cache)))
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    mask = None if inputs["src_mask"] is None else torch.from_numpy(inputs["src_mask"])
    t_out = _torch_decoder_block(torch, {**leaves, "src_mask": mask}, inputs["n_head"])
    (t_out * torch.from_numpy(G)).sum().backward()
    assert_rel_close(out, t_out.detach().numpy(), 1e-12, "out")
    for name, leaf in leaves.items():
        assert_rel_close(grads[name], leaf.grad.numpy(), 1e-10, name)


def test_decoder_block_module_equals_the_functional_pair(rng, assert_rel_close):
    D, H = 8, 2
    block = DecoderBlock(D, H, rng=rng).to(dtype=np.float64)
    x, memory = rng.standard_normal((2, 3, D)), rng.standard_normal((2, 4, D))
    mask = np.array([[True] * 4, [True, True, False, False]])
    out = block.forward(x, memory, mask)
    dout = rng.standard_normal(out.shape)
    block.zero_grad()
    dx, dmemory = block.backward(dout)
    weights = [p.data for _, p in block.named_parameters()]
    f_out, cache = TDB.decoder_block_forward(x, memory, *weights, H, src_mask=mask)
    f_grads = TDB.decoder_block_backward(dout, cache)
    assert_rel_close(out, f_out, 1e-13, "out")
    assert_rel_close(dx, f_grads[0], 1e-13, "dx")
    assert_rel_close(dmemory, f_grads[1], 1e-13, "dmemory")
    names = [n.replace(".weight", "_w").replace(".bias", "_b").replace(".", "_")
             for n, _ in block.named_parameters()]
    assert names == list(TDB.decoder_block_parameter_shapes(D))
    for (name, p), grad in zip(block.named_parameters(), f_grads[2:]):
        assert_rel_close(p.grad, grad, 1e-13, name)


# -- the whole model against its twin --------------------------------------------------------

@pytest.mark.parametrize("positions, share", VARIANTS, ids=IDS)
def test_logits_loss_and_every_gradient_match_the_twin(positions, share, rng, torch):
    model = tiny(positions, share)
    src, tgt_in, tgt_out, mask = batch(rng, tgt_vocab=model.config.tgt_vocab)
    twin = seq2seq_transformer_twin(torch, model)
    logits, loss = model.forward(src, tgt_in, tgt_out, src_mask=mask, label_smoothing=0.1)
    model.zero_grad()
    model.backward()
    t_logits, t_loss = twin(*as_torch(torch, src, tgt_in, tgt_out, mask), label_smoothing=0.1)
    t_loss.backward()
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=1e-9)
    assert abs(float(loss) - t_loss.item()) < 1e-9
    theirs = twin_arrays(twin, "grad")
    ours = dict(model.named_parameters())
    assert set(theirs) == set(ours)
    assert ("src_embedding.weight" in ours) is not share
    for name, p in ours.items():
        assert np.abs(p.grad).max() > 1e-6, f"{name}: a vanishing gradient tests nothing"
        np.testing.assert_allclose(p.grad, theirs[name], rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("positions, share", [VARIANTS[0], VARIANTS[3]], ids=[IDS[0], IDS[3]])
def test_ten_adamw_steps_match_torch_adamw(positions, share, rng, torch):
    model = tiny(positions, share)
    src, tgt_in, tgt_out, mask = batch(rng, tgt_vocab=model.config.tgt_vocab)
    twin = seq2seq_transformer_twin(torch, model)
    hyper = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-8)
    ours = AdamW(decay_groups(model.parameters(), 0.1), **hyper)
    theirs = torch.optim.AdamW(decay_groups(list(twin.parameters()), 0.1), **hyper)
    t_batch = as_torch(torch, src, tgt_in, tgt_out, mask)
    for _ in range(10):
        ours.zero_grad()
        model.forward(src, tgt_in, tgt_out, src_mask=mask, label_smoothing=0.1)
        model.backward()
        ours.step()
        theirs.zero_grad()
        twin(*t_batch, label_smoothing=0.1)[1].backward()
        theirs.step()
    after = twin_arrays(twin)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, after[name], rtol=0, atol=1e-9, err_msg=name)
    start = tiny(positions, share)
    moved = max(np.abs(p.data - q.data).max()
                for p, q in zip(model.parameters(), start.parameters()))
    assert moved > 1e-2


def test_the_twin_layout_round_trips():
    w = np.arange(6.0).reshape(2, 3)
    assert to_torch_layout("encoder.0.attn.c_attn.weight", w).shape == (3, 2)
    assert to_torch_layout("tgt_embedding.weight", w).shape == (2, 3)


def test_twin_trains_and_decodes_greedily_on_its_own(rng, torch):
    model = tiny()
    twin = seq2seq_transformer_twin(torch, model)
    assert isinstance(twin, torch.nn.Module)
    src, tgt_in, tgt_out, mask = as_torch(torch, *batch(rng))
    optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = twin(src, tgt_in, tgt_out, mask)[1]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    twin.eval()
    ids = twin.greedy(src, bos_id=0, eos_id=1, max_len=5, src_mask=mask)
    assert ids.shape[0] == 3 and 1 <= ids.shape[1] <= 5


# -- gradients of the whole model, dropout --------------------------------------------------

def test_gradients_with_dropout_match_central_differences(rng):
    """Dropout on: every forward redraws the masks from the reseeded generators."""
    model = tiny("learned", dropout=0.2)
    src, tgt_in, tgt_out, mask = batch(rng)

    def loss():
        for _, m in model.named_modules():
            if hasattr(m, "seed") and hasattr(m, "set_rng_state"):
                m.set_rng_state(None)
        return float(model.forward(src, tgt_in, tgt_out, src_mask=mask)[1])

    model.zero_grad()
    loss()
    model.backward()
    eps = 1e-6
    for name, p in model.named_parameters():
        flat, grad = p.data.reshape(-1), p.grad.reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - grad[i]) <= 1e-8 + 1e-6 * abs(numeric), (name, i)


def test_dropout_is_active_in_training_only(rng):
    model = tiny(dropout=0.3)
    src, tgt_in, _, mask = batch(rng)
    train_logits, _ = model.forward(src, tgt_in, src_mask=mask)
    eval_logits, _ = model.eval().forward(src, tgt_in, src_mask=mask)
    assert not np.allclose(train_logits, eval_logits)
    np.testing.assert_array_equal(eval_logits, model.forward(src, tgt_in, src_mask=mask)[0])


# -- decoding ---------------------------------------------------------------------------------

def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("positions, share", VARIANTS, ids=IDS)
def test_cached_decode_steps_reproduce_the_full_forward(positions, share, rng):
    model = tiny(positions, share).eval()
    src, tgt_in, _, mask = batch(rng, T=7, tgt_vocab=model.config.tgt_vocab)
    logits, _ = model.forward(src, tgt_in, src_mask=mask)
    state = model.encode(src, mask)
    for t in range(tgt_in.shape[1]):
        log_probs, state = model.decode_step(tgt_in[:, t], state)
        np.testing.assert_allclose(log_probs, _log_softmax(logits[:, t]), atol=1e-12,
                                   err_msg=f"position {t}")
    assert state.caches[0].length == 7
    with pytest.raises(ValueError, match="max_len=7"):
        model.decode_step(tgt_in[:, 0], state)


def test_a_padded_row_decodes_as_it_would_alone(rng):
    model = tiny().eval()
    src, tgt_in, _, mask = batch(rng)
    logits, _ = model.forward(src, tgt_in, src_mask=mask)
    alone, _ = model.forward(src[1:2, :3], tgt_in[1:2])
    np.testing.assert_allclose(logits[1:2], alone, atol=1e-12)


def test_reorder_selects_rows_and_beam_width_one_is_greedy(rng):
    model = tiny().eval()
    src, _, _, mask = batch(rng)
    picked = model.reorder(model.encode(src, mask), np.array([2, 0, 0]))
    alone = model.encode(src[[2, 0, 0]], mask[[2, 0, 0]])
    for ids in (np.array([1, 3, 4]), np.array([2, 2, 5])):
        ours, picked = model.decode_step(ids, picked)
        theirs, alone = model.decode_step(ids, alone)
        np.testing.assert_allclose(ours, theirs, atol=1e-13)
    kwargs = dict(bos_id=0, eos_id=1, max_len=6)
    beam = beam_search(model.decode_step, model.encode(src, mask), 3, beam_width=1,
                       length_penalty=None, reorder=model.reorder, **kwargs)
    greedy = greedy_decode(model.decode_step, model.encode(src, mask), 3, **kwargs)
    assert [b.tokens for b in beam] == [g.tokens for g in greedy]
    wide = beam_search(model.decode_step, model.encode(src, mask), 3, beam_width=4,
                       reorder=model.reorder, **kwargs)
    assert len(wide) == 3 and all(1 <= len(b.tokens) <= 6 for b in wide)


def test_attention_maps_are_the_cross_attention_weights(rng):
    model = tiny()
    src, tgt_in, _, mask = batch(rng)
    model.forward(src, tgt_in, src_mask=mask)
    maps = model.attention_maps()
    assert len(maps) == 2 and maps[0].shape == (3, 2, 4, 5)
    np.testing.assert_allclose(maps[0].sum(axis=-1), 1.0)
    assert np.all(maps[1][1, :, :, 3:] == 0)              # row 1's padding gets no weight


# -- misuse and bad input -------------------------------------------------------------------

def test_a_second_backward_raises(rng):
    model = tiny()
    src, tgt_in, tgt_out, mask = batch(rng)
    model.forward(src, tgt_in, tgt_out, src_mask=mask)
    model.backward()
    with pytest.raises(RuntimeError, match="already"):
        model.backward()
    model.forward(src, tgt_in, src_mask=mask)
    with pytest.raises(RuntimeError, match="no loss"):
        model.backward()


def test_bad_inputs_name_the_argument_and_the_fix(rng):
    model = tiny()
    src, tgt_in, tgt_out, mask = batch(rng)
    with pytest.raises(ValueError, match="src"):
        model.forward(src[:, :0], tgt_in, tgt_out)
    with pytest.raises(ValueError, match="src"):
        model.encode(np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="max_len=7"):
        model.forward(np.zeros((3, 8), dtype=np.int64), tgt_in, tgt_out)
    with pytest.raises(ValueError, match="max_len=7"):
        model.encode(np.zeros((3, 8), dtype=np.int64))
    with pytest.raises(ValueError, match="tgt_in.*max_len=7"):
        model.forward(src, np.zeros((3, 8), dtype=np.int64))
    bad = src.copy()
    bad[1, 2] = 9
    with pytest.raises(ValueError, match="src"):
        model.forward(bad, tgt_in, tgt_out)
    bad = tgt_out.copy()
    bad[0, 1] = 8
    with pytest.raises(ValueError, match="tgt_out"):
        model.forward(src, tgt_in, bad)
    with pytest.raises(ValueError, match="src_mask"):
        model.forward(src, tgt_in, tgt_out, src_mask=mask[:, :2])
    with pytest.raises(TypeError, match="src_mask"):
        model.forward(src, tgt_in, tgt_out, src_mask=mask.astype(np.int64))
    empty = mask.copy()
    empty[2] = False
    with pytest.raises(ValueError, match="src_mask"):
        model.encode(src, empty)
    with pytest.raises(ValueError, match="prev_ids"):
        model.decode_step(np.array([0, 8, 1]), model.encode(src, mask))


@pytest.mark.parametrize("field, value", [("positions", "rotary"), ("n_head", 3),
                                          ("n_enc_layer", 0), ("dropout", 1.0),
                                          ("max_len", 0), ("embedding_std", 0.0)])
def test_config_range_checks_name_the_field(field, value):
    config = dict(src_vocab=5, tgt_vocab=5, n_embd=8, n_head=2) | {field: value}
    with pytest.raises(ValueError, match=field):
        Seq2SeqTransformerConfig(**config)


def test_shared_embeddings_need_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings.*src_vocab=5.*tgt_vocab=6"):
        Seq2SeqTransformerConfig(src_vocab=5, tgt_vocab=6, share_embeddings=True)


@pytest.mark.parametrize("embedding_std, first_loss", [(None, "high"), (0.02, "uniform")])
def test_the_token_tables_scale_sets_the_first_loss(embedding_std, first_loss):
    """The paper's N(0, 1/D) tables make the tied head predict the input token (a first loss
    far above ln V); N(0, 0.02^2) tables start at ln V, the loss of a uniform guess."""
    V, D = 400, 64
    config = Seq2SeqTransformerConfig(src_vocab=V, tgt_vocab=V, n_embd=D, n_head=4,
                                      n_enc_layer=1, n_dec_layer=1, max_len=16, dropout=0.0,
                                      embedding_std=embedding_std)
    model = Seq2SeqTransformer(config)
    expected_std = 1 / np.sqrt(D) if embedding_std is None else embedding_std
    assert abs(model.tgt_embedding.weight.data.std() / expected_std - 1) < 0.02
    rng = np.random.default_rng(3)
    src, tgt = rng.integers(0, V, (8, 10)), rng.integers(0, V, (8, 11))
    logits, loss = model.forward(src, tgt[:, :-1], tgt[:, 1:])
    copies_its_input = np.mean(logits.argmax(axis=-1) == tgt[:, :-1])
    if first_loss == "uniform":
        assert abs(float(loss) - np.log(V)) < 0.05
    else:
        assert float(loss) > np.log(V) + 1 and copies_its_input > 0.9
