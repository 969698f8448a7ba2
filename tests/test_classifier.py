"""The text classifier (tinylm/models/classifier.py) on its three backbones: the whole
backward against float64 central differences, pooling against PyTorch, the fine-tuning
strategies' gradients (probe, top blocks, LoRA), learning, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.functional.pooling import pool_backward, pool_forward
from tinylm.models.classifier import SequenceClassifier
from tinylm.nn.lora import apply_lora
from tinylm.optim import AdamW

V = 17
BACKBONES = {
    "bert": ({"vocab_size": V, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 8,
              "dropout": 0.0}, "first"),
    "gpt": ({"vocab_size": V, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 8}, "last"),
    "lstm": ({"vocab_size": V, "n_embd": 6, "n_hidden": 7, "n_layer": 2}, "last"),
}


def _classifier(name, pooling=None, n_classes=3, dropout=0.0):
    config, default = BACKBONES[name]
    return SequenceClassifier.from_config({
        "backbone": name, "backbone_config": config, "n_classes": n_classes,
        "pooling": pooling or default, "dropout": dropout}).to(np.float64)


def _batch(rng, B=4, T=7):
    ids = rng.integers(5, V, size=(B, T))
    lengths = np.array([7, 3, 5, 1])[:B]
    mask = np.arange(T)[None, :] < lengths[:, None]
    ids[~mask] = 0
    return ids, mask, rng.integers(0, 3, size=B)


def _check_all_gradients(model, batch, rng, entries=5):
    model.zero_grad()
    model.forward(*batch)
    model.backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert not p.grad.any(), name
            continue
        chosen = rng.choice(p.size, size=min(entries, p.size), replace=False)
        flat = p.data.reshape(-1)
        numeric = []
        for i in chosen:
            saved = flat[i]
            flat[i] = saved + 1e-6
            plus = float(model.forward(*batch)[1])
            flat[i] = saved - 1e-6
            minus = float(model.forward(*batch)[1])
            flat[i] = saved
            numeric.append((plus - minus) / 2e-6)
        analytic = p.grad.reshape(-1)[chosen]
        scale = max(np.abs(numeric).max(), np.abs(analytic).max())
        assert np.abs(analytic - numeric).max() < 1e-6 * scale + 1e-9, name


@pytest.mark.parametrize("name, pooling", [("bert", "first"), ("bert", "mean"),
                                           ("gpt", "last"), ("gpt", "mean"),
                                           ("lstm", "last"), ("lstm", "mean")])
def test_the_whole_classifier_backward_matches_central_differences(name, pooling, rng):
    _check_all_gradients(_classifier(name, pooling), _batch(rng), rng)


def test_padding_does_not_change_a_causal_or_recurrent_classifier(rng):
    """Right padding is invisible to GPT's and the LSTM's last real token."""
    for name in ("gpt", "lstm"):
        model = _classifier(name)
        ids = rng.integers(5, V, size=(1, 4))
        padded = np.concatenate([ids, np.zeros((1, 3), dtype=ids.dtype)], axis=1)
        mask = np.arange(7)[None, :] < 4
        np.testing.assert_allclose(model.forward(padded, mask)[0], model.forward(ids)[0],
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("how", ["first", "last", "mean"])
def test_pooling_matches_pytorch(how, torch, rng):
    h = rng.standard_normal((3, 5, 4))
    mask = np.arange(5)[None, :] < np.array([5, 2, 4])[:, None]
    p, cache = pool_forward(h, mask, how)
    dp = rng.standard_normal(p.shape)
    th = torch.tensor(h, requires_grad=True)
    tm = torch.tensor(mask)
    if how == "first":
        tp = th[:, 0]
    elif how == "last":
        tp = th[torch.arange(3), tm.sum(1) - 1]
    else:
        tp = (th * tm[..., None]).sum(1) / tm.sum(1, keepdim=True)
    (tp * torch.tensor(dp)).sum().backward()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(pool_backward(dp, cache), th.grad.numpy(), rtol=1e-13)


def test_a_linear_probe_trains_the_head_only(rng):
    model = _classifier("bert")
    model.backbone.requires_grad_(False)
    _check_all_gradients(model, _batch(rng), rng)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight",
                                                                           "head.bias"]


def test_training_the_top_block_gives_it_the_full_fine_tuning_gradient(rng):
    batch = _batch(rng)
    for name in ("bert", "gpt"):
        full, top = _classifier(name), _classifier(name)
        for model in (full, top):
            model.zero_grad()
        top.backbone.requires_grad_(False)
        blocks = top.backbone.h
        blocks[len(blocks) - 1].requires_grad_(True)
        grads = {}
        for key, model in (("full", full), ("top", top)):
            model.forward(*batch)
            model.backward()
            grads[key] = {n: p.grad.copy() for n, p in model.named_parameters()}
        for n, g in grads["top"].items():
            if n.startswith("backbone.h.1.") or n.startswith("head."):
                np.testing.assert_allclose(g, grads["full"][n], rtol=1e-12, atol=1e-15)
            else:
                assert not g.any(), n


def test_lora_on_a_bert_classifier_is_gradient_checked(rng):
    model = _classifier("bert")
    apply_lora(model.backbone, rank=2, alpha=4, rng=np.random.default_rng(0))
    model.head.requires_grad_(True)
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            p.data[...] = 0.3 * rng.standard_normal(p.shape)
    _check_all_gradients(model, _batch(rng), rng)


def test_a_tiny_classifier_learns_which_texts_hold_a_token(rng):
    """Class 1 iff token 7 occurs: each backbone separates a training set."""
    for name in BACKBONES:
        model = _classifier(name, n_classes=2).to(np.float32)
        opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
        ids = rng.integers(8, V, size=(64, 6))
        labels = rng.integers(0, 2, size=64)
        ids[labels == 1, rng.integers(0, 6, size=int(labels.sum()))] = 7
        for _ in range(120):
            model.forward(ids, None, labels)
            model.backward()
            opt.step()
            opt.zero_grad()
        logits, _ = model.eval().forward(ids)
        assert (logits.argmax(axis=1) == labels).mean() > 0.95, name


def test_bad_input_is_named(rng):
    model = _classifier("gpt")
    ids, mask, _ = _batch(rng)
    with pytest.raises(ValueError, match="class label"):
        model.forward(ids, mask, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="pools with one of"):
        _classifier("gpt", pooling="first")
    with pytest.raises(ValueError, match="at least 2 classes"):
        _classifier("bert", n_classes=1)
    with pytest.raises(RuntimeError, match="no loss"):
        model.forward(ids, mask)
        model.backward()
