"""The one-file GPT-2 (tinylm/reference/gpt2.py) equals the modular GPT (tinylm/models/gpt.py)
in float64: logits, loss, the gradient of every parameter, and ten AdamW steps; and it keeps
its promise of importing NumPy only."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, decay_groups
from tinylm.reference import gpt2 as one_file

CONFIG = GPTConfig(vocab_size=17, block_size=10, n_layer=2, n_head=2, n_embd=12, seed=3)
LR, BETAS, WD = 3e-3, (0.9, 0.99), 0.1


def _batch(seed=0, B=3, T=10):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, CONFIG.vocab_size, (B, T)),
            rng.integers(0, CONFIG.vocab_size, (B, T)))


@pytest.fixture
def model():
    return GPT(CONFIG).to(dtype=np.float64).eval()


def _params(model) -> dict:
    return {name: value.copy() for name, value in model.state_dict().items()}


def test_logits_loss_and_every_gradient_equal_the_modular_gpt(model, assert_rel_close):
    idx, targets = _batch(T=7)                              # shorter than block_size
    logits, loss = model.forward(idx, targets)
    model.backward()
    p = _params(model)
    ref_logits, ref_loss, cache = one_file.gpt2_forward(p, idx, targets, CONFIG.n_layer,
                                                        CONFIG.n_head)
    assert_rel_close(ref_logits, logits, 1e-12, "logits")
    assert abs(ref_loss - float(loss)) <= 1e-12 * abs(float(loss))
    grads = one_file.gpt2_backward(p, cache, CONFIG.n_layer)
    named = dict(model.named_parameters())
    assert sorted(grads) == sorted(named)
    for name, param in named.items():
        assert_rel_close(grads[name], param.grad, 1e-10, name)


def test_the_one_file_gradient_matches_finite_differences(model):
    """An independent check of the one file itself, on a few entries of each tensor."""
    idx, targets = _batch(seed=1, B=2, T=5)
    p = _params(model)
    _, _, cache = one_file.gpt2_forward(p, idx, targets, CONFIG.n_layer, CONFIG.n_head)
    grads = one_file.gpt2_backward(p, cache, CONFIG.n_layer)
    rng, h = np.random.default_rng(0), 1e-6
    for name in ("wte", "wpe", "h.0.attn.c_attn.weight", "h.1.mlp.c_fc.bias", "ln_f.weight"):
        for flat in rng.choice(p[name].size, size=3, replace=False):
            index = np.unravel_index(flat, p[name].shape)
            saved = p[name][index]
            p[name][index] = saved + h
            up = one_file.gpt2_forward(p, idx, targets, CONFIG.n_layer, CONFIG.n_head)[1]
            p[name][index] = saved - h
            down = one_file.gpt2_forward(p, idx, targets, CONFIG.n_layer, CONFIG.n_head)[1]
            p[name][index] = saved
            numeric = (up - down) / (2 * h)
            assert abs(numeric - grads[name][index]) <= 1e-9 + 1e-6 * abs(numeric), name


def test_ten_adamw_steps_equal_tinylms_optimizer(model, assert_rel_close):
    p = _params(model)
    optimizer = AdamW(decay_groups(model.parameters(), WD), lr=LR, betas=BETAS)
    state = {"t": 0, "m": {}, "v": {}}
    for step in range(10):
        idx, targets = _batch(seed=step)
        _, loss = model.forward(idx, targets)
        model.backward()
        optimizer.step()
        optimizer.zero_grad()
        _, ref_loss, cache = one_file.gpt2_forward(p, idx, targets, CONFIG.n_layer,
                                                   CONFIG.n_head)
        one_file.adamw_step(p, one_file.gpt2_backward(p, cache, CONFIG.n_layer), state, LR,
                            BETAS, weight_decay=WD)
        assert abs(ref_loss - float(loss)) <= 1e-11 * abs(float(loss)), step
    for name, value in model.state_dict().items():
        assert_rel_close(p[name], value, 1e-10, name)


def test_it_imports_numpy_only():
    tree = ast.parse(Path(one_file.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"numpy"}
