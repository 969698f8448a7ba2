"""LoRA (tinylm/functional/lora.py, tinylm/nn/lora.py): the functional pair against PyTorch
autograd, a LoRA'd GPT against its base model, finite differences of the adapters'
gradients, training then merging, the parameter count, the KV-cache path, bad settings.

The functional pair's own finite-difference checks are its ``gradcheck_cases()``, run by
tests/test_functional_gradcheck.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.functional.lora import lora_linear_backward, lora_linear_forward
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.nn.linear import Linear
from tinylm.nn.lora import LoRALinear, apply_lora, merge_lora
from tinylm.optim import AdamW

CONFIG = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)
RANK, ALPHA = 2, 4.0


def _gpt(**overrides):
    return GPT(GPTConfig(**{**CONFIG, **overrides})).to(dtype=np.float64)


def _batch(rng, B=3, T=8):
    V = CONFIG["vocab_size"]
    return rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))


def _lora_gpt(rng=None, **settings):
    """A float64 tiny GPT with adapters; with ``rng``, every lora_B is random instead of 0
    (as after some training), so the adapters change the function."""
    model = _gpt()
    apply_lora(model, **{"rank": RANK, "alpha": ALPHA, **settings})
    if rng is not None:
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.assign(0.3 * rng.standard_normal(p.shape))
    return model


# -- (1) the functional pair against PyTorch autograd -----------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("frozen_base", [False, True], ids=["full", "frozen base"])
def test_the_pair_matches_pytorch_autograd(bias, frozen_base, torch, rng, assert_rel_close):
    x, W = rng.standard_normal((2, 5, 6)), rng.standard_normal((6, 7))
    b = rng.standard_normal(7) if bias else None
    A, B, scale = rng.standard_normal((6, 3)), rng.standard_normal((3, 7)), 4.0 / 3
    y, cache = lora_linear_forward(x, W, b, A, B, scale, frozen_base=frozen_base)
    dy = rng.standard_normal(y.shape)
    dx, dW, db, dA, dB = lora_linear_backward(dy, cache)

    arrays = {"x": x, "W": W, "A": A, "B": B, **({"b": b} if bias else {})}
    t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    t_y = (torch.nn.functional.linear(t["x"], t["W"].T, t.get("b"))
           + scale * (t["x"] @ t["A"]) @ t["B"])
    (t_y * torch.tensor(dy)).sum().backward()

    assert y.dtype == np.float64
    assert_rel_close(y, t_y.detach().numpy(), 1e-12, "y")
    for name, ours in [("x", dx), ("A", dA), ("B", dB)]:
        assert_rel_close(ours, t[name].grad.numpy(), 1e-12, f"d{name}")
    if frozen_base:
        assert dW is None and db is None
    else:
        assert_rel_close(dW, t["W"].grad.numpy(), 1e-12, "dW")
        if bias:
            assert_rel_close(db, t["b"].grad.numpy(), 1e-12, "db")
    if not bias:
        assert db is None


def test_the_pair_rejects_an_adapter_that_does_not_fit_the_weight(rng):
    x, W = rng.standard_normal((4, 6)), rng.standard_normal((6, 5))
    with pytest.raises(ValueError, match=r"need A \[I, r\] and B \[r, O\]"):
        lora_linear_forward(x, W, None, rng.standard_normal((6, 2)),
                            rng.standard_normal((3, 5)), 1.0)


# -- (2) a LoRA'd GPT starts as its base model; only the adapters learn -----------------------

def test_a_lora_gpt_starts_equal_to_its_base_and_only_the_adapters_are_trainable(rng):
    base, model = _gpt(), _lora_gpt()
    idx, targets = _batch(rng)
    np.testing.assert_array_equal(model.forward(idx)[0], base.forward(idx)[0])   # B = 0

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.split(".")[-1] in ("lora_A", "lora_B") for name in trainable)
    assert len(trainable) == 2 * 4 * CONFIG["n_layer"]
    assert len(model.trainable_parameters()) == len(trainable)

    model.forward(idx, targets)
    model.zero_grad()
    model.backward()
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            assert np.abs(p.grad).max() > 0, name
        elif name.endswith("lora_A"):          # dA = s x^T (dy B^T) carries B = 0
            assert not p.grad.any(), name
        else:
            assert not p.grad.any(), f"frozen {name} has a gradient"

    opt = AdamW(model.trainable_parameters(), lr=1e-2)
    opt.step()                                 # B != 0 now, so A learns from here on
    model.zero_grad()
    model.forward(idx, targets)
    model.backward()
    for name, p in model.named_parameters():
        assert (np.abs(p.grad).max() > 0) == name.endswith(("lora_A", "lora_B")), name


def test_other_parameters_may_be_unfrozen_after_apply_lora(rng):
    model = _lora_gpt(targets=("attn.c_attn",))
    model.ln_f.requires_grad_(True)
    assert len(model.trainable_parameters()) == 2 * CONFIG["n_layer"] + 2
    idx, targets = _batch(rng)
    model.forward(idx, targets)
    model.backward()
    assert np.abs(model.ln_f.weight.grad).max() > 0
    assert not model.h[0].attn.c_attn.weight.grad.any()
    assert isinstance(model.h[0].attn.c_proj, Linear)          # not a target


def test_an_unfrozen_base_gets_its_gradient_as_a_plain_linear_would(rng):
    x, dy = rng.standard_normal((3, 4, 6)), rng.standard_normal((3, 4, 5))
    plain = Linear(6, 5, rng=np.random.default_rng(1)).to(dtype=np.float64)
    lora = LoRALinear(Linear(6, 5, rng=np.random.default_rng(1)).to(dtype=np.float64), 2, 2.0)
    lora.weight.requires_grad = lora.bias.requires_grad = True
    plain.forward(x)
    lora.forward(x)
    np.testing.assert_array_equal(lora.backward(dy), plain.backward(dy))        # B = 0
    np.testing.assert_array_equal(lora.weight.grad, plain.weight.grad)
    np.testing.assert_array_equal(lora.bias.grad, plain.bias.grad)


# -- (3) finite differences of the adapters' gradients through the whole model -----------------

def test_the_adapters_gradients_match_finite_differences_through_a_whole_gpt(rng):
    model = _lora_gpt(rng)
    idx, targets = _batch(rng, B=2)

    def loss() -> float:
        return float(model.forward(idx, targets)[1])

    loss()
    model.zero_grad()
    model.backward()
    h, checked = 1e-6, 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        flat, grad = p.data.reshape(-1), p.grad.reshape(-1).copy()
        entries = rng.choice(flat.size, size=min(12, flat.size), replace=False)
        numeric = np.zeros(entries.size)
        for j, i in enumerate(entries):
            saved = flat[i]
            flat[i] = saved + h
            up = loss()
            flat[i] = saved - h
            down = loss()
            flat[i] = saved
            numeric[j] = (up - down) / (2 * h)
        scale = max(np.abs(grad[entries]).max(), np.abs(numeric).max())
        assert scale > 0, name
        rel = np.abs(grad[entries] - numeric).max() / scale
        assert rel < 1e-6, f"{name}: relative error {rel:.1e}"
        checked += 1
    assert checked == 2 * 4 * CONFIG["n_layer"]


# -- (4) training lowers the loss; merging gives the same function with the base names --------

def test_training_the_adapters_lowers_the_loss_and_merging_keeps_the_function(rng,
                                                                              assert_rel_close):
    model = _lora_gpt()
    base_names = list(_gpt().state_dict())
    idx, targets = _batch(rng)
    opt = AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(15):
        _, loss = model.forward(idx, targets)
        model.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.1, losses

    lora_logits = model.forward(idx)[0]
    merged = merge_lora(model)
    assert merged is model
    assert not any(isinstance(m, LoRALinear) for _, m in model.named_modules())
    assert list(model.state_dict()) == base_names
    assert model.trainable_parameters() == []                  # frozen, as the base was
    assert_rel_close(model.forward(idx)[0], lora_logits, 1e-12, "merged logits")


# -- (5) the parameter count ------------------------------------------------------------------

def test_the_trainable_parameters_are_r_times_in_plus_out_per_adapted_layer():
    model, base = _gpt(), _gpt()
    report = apply_lora(model, rank=3, alpha=6.0)
    adapted = [m for _, m in model.named_modules() if isinstance(m, LoRALinear)]
    assert len(report.layers) == len(adapted) == 4 * CONFIG["n_layer"]
    assert report.layers[0] == "h.0.attn.c_attn"
    expected = sum(3 * (m.in_features + m.out_features) for m in adapted)
    D = CONFIG["n_embd"]
    assert expected == CONFIG["n_layer"] * 3 * ((D + 3 * D) + (D + D) + (D + 4 * D) + (4 * D + D))
    assert report.trainable == expected == sum(p.size for p in model.trainable_parameters())
    assert report.total == base.num_parameters() + expected == model.num_parameters()
    assert report.fraction == pytest.approx(expected / report.total)
    assert "trainable" in str(report) and adapted[0].scale == 2.0


# -- (6) bad settings ------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    (dict(rank=0, alpha=1.0), "rank=0 must be an integer >= 1"),
    (dict(rank=2.5, alpha=1.0), "rank=2.5 must be an integer >= 1"),
    (dict(rank=17, alpha=1.0), r"h\.0\.attn\.c_attn: LoRA rank larger than the layer"),
    (dict(rank=2, alpha=0.0), "alpha=0.0 must be a positive number"),
    (dict(rank=2, alpha=-1.0), "alpha=-1.0 must be a positive number"),
    (dict(rank=2, alpha=1.0, targets=("attn.q_proj",)),
     r"no Linear of GPT matches the targets \('attn.q_proj',\); its Linear layers are "
     r"\['h\.0\.attn\.c_attn', 'h\.0\.attn\.c_proj', 'h\.0\.mlp\.c_fc'"),
])
def test_bad_settings_raise_clearly_and_leave_the_model_unchanged(settings, message):
    model = _gpt()
    with pytest.raises(ValueError, match=message):
        apply_lora(model, **settings)
    assert len(model.trainable_parameters()) == len(model.parameters())
    assert not any(isinstance(m, LoRALinear) for _, m in model.named_modules())


def test_applying_lora_twice_and_merging_without_adapters_raise():
    model = _lora_gpt()
    with pytest.raises(ValueError, match="already has LoRA adapters .* merge_lora"):
        apply_lora(model, rank=RANK, alpha=ALPHA)
    merge_lora(model)
    with pytest.raises(ValueError, match="no LoRA layers to merge"):
        merge_lora(model)


def test_a_target_matches_whole_name_parts_only():
    model = _gpt()
    with pytest.raises(ValueError, match="no Linear of GPT matches"):
        apply_lora(model, rank=2, alpha=1.0, targets=("ttn.c_attn",))
    assert len(apply_lora(model, rank=2, alpha=1.0, targets="c_fc").layers) == 2


# -- (7) KV-cache decoding ---------------------------------------------------------------------

def test_kv_cache_decoding_of_a_lora_model_equals_the_merged_models(rng, assert_rel_close):
    from tinylm.generate import generate

    model = _lora_gpt(rng).eval()
    prompt = rng.integers(0, CONFIG["vocab_size"], size=(2, 3))
    steps = [rng.integers(0, CONFIG["vocab_size"], size=2) for _ in range(4)]

    def decode():
        logits, state = model.start_decoding(prompt)
        out = [logits]
        for ids in steps:
            logits, state = model.decode_step(ids, state)
            out.append(logits)
        return np.stack(out)

    lora_logits = decode()
    full = model.forward(np.concatenate([prompt, np.stack(steps, axis=1)], axis=1))[0]
    assert_rel_close(lora_logits, full[:, 2:].transpose(1, 0, 2), 1e-12, "cache vs full")
    lora_tokens = generate(model, prompt, 10, np.random.default_rng(0), greedy=True)
    merge_lora(model)
    assert_rel_close(decode(), lora_logits, 1e-12, "merged decoding")
    np.testing.assert_array_equal(generate(model, prompt, 10, np.random.default_rng(0),
                                           greedy=True), lora_tokens)
