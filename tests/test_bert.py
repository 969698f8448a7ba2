"""BERT (tinylm/models/bert.py) against a PyTorch twin, llm.c style, and the MLM masking rule.

* With identical weights, tinylm and the twin (tinylm/bench/twins/bert.py) agree on the MLM
  logits, the loss (MLM + NSP), the gradient of every parameter, and the losses of 10 AdamW
  steps with clipping: float64 within 1e-9, float32 within 1e-4; post-LN and pre-LN, with
  padding and two segments.
* The whole model's backward against float64 central differences.
* Padding is invisible to the real tokens; pooling; a frozen bottom gets no gradient and
  the top gets the same one; BERT refuses to generate.
* The 15 % / 80-10-10 masking rule, statistically (tinylm/data/masking.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.bench.twins.bert import bert_twin, to_torch_layout
from tinylm.data.masking import choose_positions, mask_tokens
from tinylm.models.bert import BERT, BERTConfig
from tinylm.optim import AdamW, clip_grad_norm, decay_groups

CONFIG = dict(vocab_size=23, block_size=10, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
REL = {np.float64: 1e-9, np.float32: 1e-4}
LR, BETAS, WD = 3e-3, (0.9, 0.999), 0.01
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(rng, B=3, T=9, V=CONFIG["vocab_size"]):
    """ids [B, T] (row 1 padded after 6 tokens), MLM targets, segments, mask, NSP labels."""
    ids = rng.integers(5, V, size=(B, T))
    mask = np.ones((B, T), dtype=bool)
    mask[1, 6:] = False
    ids[~mask] = 0
    maskable = mask.copy()
    maskable[:, 0] = False
    inputs, targets = mask_tokens(ids, maskable, V, mask_id=4, first_normal_id=5, rng=rng,
                                  mask_prob=0.3)
    segments = (np.arange(T)[None, :] >= 4).astype(np.int64).repeat(B, axis=0)
    return inputs, targets, segments, mask, rng.integers(0, 2, size=B)


def _torch_batch(torch, batch):
    ids, targets, segments, mask, nsp = batch
    return (torch.tensor(ids), torch.tensor(targets), torch.tensor(segments),
            torch.tensor(mask), torch.tensor(nsp))


def _model(dtype=np.float64, **extra):
    return BERT(BERTConfig(**{**CONFIG, "next_sentence": True, **extra})).to(dtype=dtype)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logits_loss_and_every_gradient_match_pytorch(dtype, norm_first, torch, kernels, rng,
                                                      assert_rel_close):
    model = _model(dtype, norm_first=norm_first)
    twin = bert_twin(torch, model)
    batch = _batch(rng)
    ids, targets, segments, mask, nsp = batch
    logits, loss = model.forward(ids, targets, segments, mask, nsp)
    model.zero_grad()
    model.backward()
    t_logits, t_loss = twin(*_torch_batch(torch, batch))
    t_loss.backward()
    assert logits.dtype == dtype and logits.shape == (int((targets != -100).sum()), 23)
    assert_rel_close(logits, t_logits.detach().numpy(), REL[dtype], "logits")
    assert_rel_close(loss, t_loss.item(), REL[dtype], "loss")
    theirs = dict(twin.named_parameters())
    assert sorted(n for n, _ in model.named_parameters()) == sorted(theirs)
    for name, p in model.named_parameters():
        expected = to_torch_layout(name, theirs[name].grad.numpy())
        assert_rel_close(p.grad, expected, REL[dtype], f"grad {name}",
                         scale=max(np.abs(expected).max(), 1e-12))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ten_adamw_steps_with_clipping_match_pytorch(dtype, torch, kernels, rng,
                                                     assert_rel_close):
    model = _model(dtype)
    twin = bert_twin(torch, model)
    opt = AdamW(decay_groups(model.parameters(), WD), lr=LR, betas=BETAS)
    t_opt = torch.optim.AdamW(decay_groups(twin.parameters(), WD), lr=LR, betas=BETAS)
    ours, theirs = [], []
    for _ in range(10):
        batch = _batch(rng)
        _, loss = model.forward(*batch)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        ours.append(float(loss))
        t_opt.zero_grad()
        _, t_loss = twin(*_torch_batch(torch, batch))
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
        t_opt.step()
        theirs.append(t_loss.item())
    assert_rel_close(ours, theirs, REL[dtype], "losses of 10 AdamW steps")
    final = dict(twin.named_parameters())
    assert_rel_close(model.h[1].mlp.c_fc.weight.data,
                     final["h.1.mlp.c_fc.weight"].detach().numpy().T, 10 * REL[dtype],
                     "weights after 10 steps")


def _numeric_gradient(model, batch, p, entries, h=1e-6):
    flat = p.data.reshape(-1)
    out = []
    for i in entries:
        saved = flat[i]
        flat[i] = saved + h
        plus = float(model.forward(*batch)[1])
        flat[i] = saved - h
        minus = float(model.forward(*batch)[1])
        flat[i] = saved
        out.append((plus - minus) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_the_whole_backward_matches_central_differences(norm_first, rng):
    """MLM head on the gathered positions, NSP head, pooler, blocks, the three tables."""
    model = _model(norm_first=norm_first)
    batch = _batch(rng)
    model.zero_grad()
    model.forward(*batch)
    model.backward()
    for name, p in model.named_parameters():
        entries = rng.choice(p.size, size=min(6, p.size), replace=False)
        numeric = _numeric_gradient(model, batch, p, entries)
        analytic = p.grad.reshape(-1)[entries]
        # central differences of a loss of about 3 with h = 1e-6 carry ~1e-10 of rounding
        scale = max(np.abs(numeric).max(), np.abs(analytic).max())
        assert np.abs(analytic - numeric).max() < 1e-6 * scale + 1e-9, name


def test_padding_is_invisible_to_the_real_tokens(rng):
    model = _model()
    ids = rng.integers(5, 23, size=(1, 6))
    padded = np.concatenate([ids, np.zeros((1, 3), dtype=ids.dtype)], axis=1)
    mask = np.arange(9)[None, :] < 6
    alone = model.encode(ids)
    together = model.encode(padded, mask=mask)
    np.testing.assert_allclose(together[:, :6], alone, rtol=1e-12, atol=1e-12)
    assert not np.allclose(model.encode(padded)[:, :6], alone)     # the mask matters


def test_pooled_features_and_a_frozen_bottom(rng):
    model = _model()
    ids, _, segments, mask, _ = _batch(rng)
    first = model.features(ids, mask, "first", segments)
    h = model.encode(ids, segments, mask)
    np.testing.assert_allclose(first, np.tanh(h[:, 0] @ model.pooler.weight.data
                                              + model.pooler.bias.data), rtol=1e-12)
    mean = model.features(ids, mask, "mean", segments)
    np.testing.assert_allclose(mean[1], h[1, :6].mean(axis=0), rtol=1e-12)
    dp = rng.standard_normal(first.shape)

    def grads():
        model.zero_grad()
        model.features(ids, mask, "first", segments)
        model.features_backward(dp)
        return {n: p.grad.copy() for n, p in model.named_parameters()}
    full = grads()
    for table in (model.wte, model.wpe, model.wtt):
        table.requires_grad = False
    model.ln_emb.requires_grad_(False)
    model.h[0].requires_grad_(False)
    frozen = grads()
    for name in full:
        if name.startswith(("wte", "wpe", "wtt", "ln_emb", "h.0.")):
            assert not frozen[name].any(), name
        else:
            np.testing.assert_array_equal(frozen[name], full[name], err_msg=name)
    with pytest.raises(ValueError, match="no privileged last token"):
        model.features(ids, mask, "last")


def test_bert_refuses_to_generate_and_names_bad_input(rng):
    model = _model()
    ids, targets, segments, mask, nsp = _batch(rng)
    with pytest.raises(TypeError, match="cannot generate"):
        model.start_decoding(ids)
    with pytest.raises(ValueError, match="more than block_size"):
        model.forward(np.ones((1, 11), dtype=np.int64))
    with pytest.raises(ValueError, match="segment id"):
        model.forward(ids, targets, segments + 1)
    with pytest.raises(ValueError, match="bool array"):
        model.forward(ids, targets, segments, mask.astype(int))
    empty = mask.copy()
    empty[0] = False
    with pytest.raises(ValueError, match="no real token"):
        model.forward(ids, targets, segments, empty)
    with pytest.raises(ValueError, match="no masked position"):
        model.forward(ids, np.full_like(ids, -100))
    with pytest.raises(ValueError, match="no NSP head"):
        BERT(BERTConfig(**CONFIG)).forward(ids, targets, nsp_targets=nsp)
    with pytest.raises(ValueError, match="divisible"):
        BERTConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="gelu"):
        BERTConfig(gelu="relu")


def test_a_tiny_bert_learns_to_fill_in_a_masked_copy(rng):
    """Each row is a token repeated: after training, the masked positions are predicted."""
    model = BERT(BERTConfig(**{**CONFIG, "dropout": 0.0}))
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(300):
        ids = rng.integers(5, 23, size=(16, 1)).repeat(8, axis=1)
        batch = mask_tokens(ids, np.ones_like(ids, dtype=bool), 23, 4, 5, rng)
        _, loss = model.forward(batch.inputs, batch.targets)
        model.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert np.mean(losses[-10:]) < 0.05 * losses[0]


# -- the masking rule -------------------------------------------------------------------------

def test_masking_follows_the_15_80_10_10_rule_statistically():
    """200,000 maskable tokens: counts within 5 standard deviations of the rule, random
    replacements uniform over the ordinary vocabulary (chi-square), specials never touched."""
    rng = np.random.default_rng(0)
    B, T, V, first = 4000, 52, 40, 5
    ids = rng.integers(first, V, size=(B, T))
    maskable = np.ones((B, T), dtype=bool)
    maskable[:, 0] = maskable[:, -1] = False                   # [CLS] ... [SEP]
    batch = mask_tokens(ids, maskable, V, mask_id=4, first_normal_id=first, rng=rng)
    chosen = batch.targets != -100
    np.testing.assert_array_equal(chosen.sum(axis=1), round(0.15 * 50))   # k per row
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    np.testing.assert_array_equal(batch.targets[chosen], ids[chosen])
    np.testing.assert_array_equal(batch.inputs[~chosen], ids[~chosen])
    n = int(chosen.sum())
    is_mask = batch.inputs[chosen] == 4
    unchanged = batch.inputs[chosen] == ids[chosen]
    # a random replacement may draw the original token (probability 1 / 35): unchanged
    # positions are 0.1 + 0.1 / 35 of the chosen ones, replaced ones 0.1 * 34 / 35
    expected = {"mask": 0.8, "unchanged": 0.1 + 0.1 / (V - first),
                "replaced": 0.1 * (1 - 1 / (V - first))}
    observed = {"mask": is_mask.sum(), "unchanged": unchanged.sum(),
                "replaced": (~is_mask & ~unchanged).sum()}
    for key, p in expected.items():
        sd = np.sqrt(n * p * (1 - p))
        assert abs(observed[key] - n * p) < 5 * sd, (key, observed[key], n * p)
    replaced = batch.inputs[chosen][~is_mask & ~unchanged]
    assert replaced.min() >= first                             # never a special token
    counts = np.bincount(replaced - first, minlength=V - first)
    expected_count = counts.sum() / (V - first)
    chi2 = ((counts - expected_count) ** 2 / expected_count).sum()
    assert chi2 < 80, chi2        # 34 degrees of freedom: P(chi2 > 80) < 1e-5


def test_masking_is_uniform_over_positions_and_repeatable():
    maskable = np.ones((20000, 10), dtype=bool)
    chosen = choose_positions(maskable, 0.3, np.random.default_rng(1))
    per_position = chosen.mean(axis=0)
    np.testing.assert_allclose(per_position, 0.3, atol=0.015)
    ids = np.arange(5, 15)[None, :].repeat(4, axis=0)
    a = mask_tokens(ids, maskable[:4], 20, 4, 5, np.random.default_rng(7))
    b = mask_tokens(ids, maskable[:4], 20, 4, 5, np.random.default_rng(7))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)


def test_masking_names_bad_input():
    ids = np.full((2, 4), 7)
    ok = np.ones((2, 4), dtype=bool)
    with pytest.raises(ValueError, match="no maskable token"):
        mask_tokens(ids, np.array([[True] * 4, [False] * 4]), 20, 4, 5, np.random.default_rng())
    with pytest.raises(ValueError, match="mask_prob"):
        mask_tokens(ids, ok, 20, 4, 5, np.random.default_rng(), mask_prob=1.5)
    with pytest.raises(ValueError, match="special tokens come first"):
        mask_tokens(ids, ok, 20, 6, 5, np.random.default_rng())
    with pytest.raises(ValueError, match="sum <= 1"):
        mask_tokens(ids, ok, 20, 4, 5, np.random.default_rng(), mask_fraction=0.95)
