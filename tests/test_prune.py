"""Pruning (tinylm/compress/prune.py): exact sparsity, exactly the chosen heads and neurons,
masks that survive AdamW steps, and a pruned model that still evaluates and fine-tunes."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.compress.prune import (MaskedOptimizer, finetune_pruned, head_masks,
                                   magnitude_masks, neuron_masks, prunable_weights, prune,
                                   pruning_masks, weight_sparsity)
from tinylm.evaluate import evaluate_lm
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW
from tinylm.train.config import TrainConfig

V, D, H, L, BLOCK = 13, 16, 4, 2, 8


def _gpt(seed=0):
    return GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=L, n_head=H, n_embd=D,
                         seed=seed)).to(np.float64)


def _batch(rng):
    return rng.integers(0, V, size=(3, BLOCK)), rng.integers(0, V, size=(3, BLOCK))


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.9])
@pytest.mark.parametrize("embeddings", [False, True])
def test_magnitude_pruning_zeroes_exactly_the_smallest_fraction(sparsity, embeddings):
    model = _gpt()
    weights = prunable_weights(model, embeddings)
    everything = np.concatenate([np.abs(p.data).ravel() for p in weights.values()])
    masks = prune(model, sparsity, include_embeddings=embeddings)
    pruned = round(sparsity * everything.size)
    assert sum(int((~m).sum()) for m in masks.values()) == pruned
    assert weight_sparsity(model, embeddings) == pruned / everything.size
    kept = everything[np.concatenate([m.ravel() for m in masks.values()])]
    if 0 < pruned < everything.size:
        assert kept.min() >= np.sort(everything)[pruned - 1]     # every kept |w| >= every pruned
    assert ("wte" in masks) == embeddings


def test_biases_layernorms_and_embeddings_are_never_ranked_by_default():
    names = set(prunable_weights(_gpt()))
    assert names == {f"h.{i}.{w}" for i in range(L) for w in
                     ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                      "mlp.c_proj.weight")}


def _head_entries(head):
    """The c_attn columns and c_proj rows of ``head``."""
    hd = D // H
    cols = np.concatenate([np.arange(j * D + head * hd, j * D + (head + 1) * hd)
                           for j in range(3)])
    rows = np.arange(head * hd, (head + 1) * hd)
    return cols, rows


def test_head_pruning_removes_exactly_the_weakest_head_of_each_layer():
    model = _gpt()
    weak = {0: 2, 1: 0}
    for layer, head in weak.items():                     # make one head per layer the weakest
        cols, rows = _head_entries(head)
        model.h[layer].attn.c_attn.weight.data[:, cols] *= 0.01
        model.h[layer].attn.c_proj.weight.data[rows, :] *= 0.01
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    masks = prune(model, 1 / H, "heads")
    params = dict(model.named_parameters())
    for layer, head in weak.items():
        cols, rows = _head_entries(head)
        w_qkv, b_qkv = (params[f"h.{layer}.attn.c_attn.{k}"].data for k in ("weight", "bias"))
        w_out = params[f"h.{layer}.attn.c_proj.weight"].data
        assert not w_qkv[:, cols].any() and not b_qkv[cols].any() and not w_out[rows].any()
        assert (~masks[f"h.{layer}.attn.c_attn.weight"]).sum() == D * 3 * (D // H)
        others = np.setdiff1d(np.arange(3 * D), cols)
        np.testing.assert_array_equal(w_qkv[:, others],
                                      before[f"h.{layer}.attn.c_attn.weight"][:, others])
    for name in ("wte", "h.0.attn.c_proj.bias", "h.0.mlp.c_fc.weight", "h.1.ln_1.weight"):
        np.testing.assert_array_equal(params[name].data, before[name])


def test_a_pruned_head_or_neuron_no_longer_influences_the_output(rng):
    idx, _ = _batch(rng)
    for kind, refill in (("heads", "attn.c_attn"), ("neurons", "mlp.c_fc")):
        model = _gpt()
        masks = prune(model, 0.5, kind)
        logits, _ = model.forward(idx)
        for layer in range(L):                           # new input weights for what was cut
            name = f"h.{layer}.{refill}.weight"
            w = dict(model.named_parameters())[name]
            w.data[~masks[name]] = rng.standard_normal(int((~masks[name]).sum()))
        np.testing.assert_allclose(model.forward(idx)[0], logits, rtol=1e-12, atol=1e-12)


def test_neuron_pruning_removes_the_fraction_of_every_layer():
    model = _gpt()
    masks = neuron_masks(model, 0.25)
    for layer in range(L):
        kept_columns = masks[f"h.{layer}.mlp.c_fc.weight"].all(axis=0)            # [4D]
        assert (~kept_columns).sum() == round(0.25 * 4 * D)
        np.testing.assert_array_equal(masks[f"h.{layer}.mlp.c_fc.bias"], kept_columns)
        np.testing.assert_array_equal(masks[f"h.{layer}.mlp.c_proj.weight"].all(axis=1),
                                      kept_columns)


def test_masks_survive_adamw_steps_with_weight_decay_and_old_moments(rng):
    model = _gpt()
    plain = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):                                   # moments full of unmasked history
        model.forward(*_batch(rng))
        model.backward()
        plain.step()
        plain.zero_grad()
    masks = prune(model, 0.6)
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    optimizer = MaskedOptimizer(plain, model, masks)
    for _ in range(10):
        model.forward(*_batch(rng))
        model.backward()
        optimizer.step()
        optimizer.zero_grad()
    params = dict(model.named_parameters())
    for name, keep in masks.items():
        assert np.all(params[name].data[~keep] == 0.0), name
        assert np.all(params[name].data[keep] != before[name][keep]), name     # the rest learns
        for i, p in enumerate(plain.params):
            if p is params[name]:
                assert all(np.all(b[~keep] == 0.0) for b in plain.state[i].values())


def test_masked_optimizer_passes_the_learning_rate_and_state_through():
    model = _gpt()
    opt = MaskedOptimizer(AdamW(model.parameters(), lr=1e-3), model, magnitude_masks(model, 0.5))
    opt.lr = 3e-4
    assert opt.lr == opt.optimizer.lr == 3e-4
    assert opt.state_dict().keys() == opt.optimizer.state_dict().keys()


def test_a_pruned_model_still_evaluates_and_fine_tunes_with_its_zeros(rng, tmp_path):
    model = _gpt()
    ids = rng.integers(0, V, size=400)
    masks = prune(model, 0.5, "neurons")
    cfg = TrainConfig(batch_size=4, block_size=BLOCK, eval_iters=2, optimizer="adamw",
                      weight_decay=0.1, grad_clip=1.0, dtype="float64", progress=False,
                      out_dir=str(tmp_path))
    assert np.isfinite(evaluate_lm(model, ids, 4, BLOCK, max_batches=2)["loss"])
    run = finetune_pruned(model, masks, cfg, ids, ids, steps=5, lr=1e-3, log=lambda _: None)
    assert [e["iter"] for e in run.evals] == [0, 5] and len(run.train_losses) == 5
    params = dict(model.named_parameters())
    assert all(np.all(params[n].data[~k] == 0.0) for n, k in masks.items())


@pytest.mark.parametrize("sparsity", [1.0, -0.1, 1.5])
def test_a_sparsity_outside_0_1_is_refused(sparsity):
    with pytest.raises(ValueError, match=r"sparsity.*\[0, 1\)"):
        pruning_masks(_gpt(), sparsity)


def test_an_unknown_structure_and_embeddings_with_structure_are_refused():
    with pytest.raises(ValueError, match="'layers' is unknown"):
        pruning_masks(_gpt(), 0.5, "layers")
    with pytest.raises(ValueError, match="magnitude pruning only"):
        pruning_masks(_gpt(), 0.5, "heads", include_embeddings=True)


def test_masks_for_another_model_are_refused():
    small = _gpt()
    with pytest.raises(ValueError, match="does not have"):
        MaskedOptimizer(AdamW(small.parameters()), small, {"h.7.mlp.c_fc.weight": None})


def test_head_masks_of_zero_sparsity_keep_everything():
    assert all(m.all() for m in head_masks(_gpt(), 0.0).values())


@pytest.mark.parametrize("kind", [None, "heads", "neurons"])
def test_pruning_and_masked_steps_on_the_device_give_the_hosts_numbers(kind, fake_gpu, rng):
    from tinylm.backend import to_numpy
    batches = [_batch(rng) for _ in range(3)]
    results = []
    for device in ("cpu", "gpu"):
        model = _gpt().to(device=device)
        xp = np if device == "cpu" else fake_gpu
        optimizer = MaskedOptimizer(AdamW(model.parameters(), lr=1e-2), model,
                                    prune(model, 0.5, kind))
        for x, y in batches:
            model.forward(xp.asarray(x), xp.asarray(y))
            model.backward()
            optimizer.step()
            optimizer.zero_grad()
        results.append({n: to_numpy(p.data) for n, p in model.named_parameters()})
    for name, value in results[0].items():
        np.testing.assert_allclose(results[1][name], value, rtol=1e-10, atol=1e-12,
                                   err_msg=name)
