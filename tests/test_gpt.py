"""The GPT model (tinylm/models/gpt.py) against a PyTorch twin, llm.c style.

The twin (tinylm/bench/twins/gpt.py) is a small nanoGPT written with explicit attention arithmetic (masked_fill +
softmax, not F.scaled_dot_product_attention), so it is an independent specification. With
identical weights, tinylm and the twin must agree on the logits, the loss, the gradient of
every parameter, and the losses of 10 AdamW steps with gradient clipping (float64 within
1e-9 relative, float32 within 1e-4), on both kernel paths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinylm.bench.twins.gpt import gpt_twin as torch_twin
from tinylm.bench.twins.gpt import to_torch_layout as _to_torch_layout
from tinylm.models import get_model_class
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.optim import AdamW, clip_grad_norm, decay_groups
from tinylm.train.presets import get_preset

CONFIG = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")
REL = {np.float64: 1e-9, np.float32: 1e-4}
LR, BETAS, WD = 3e-3, (0.9, 0.99), 0.1


def _batch(rng, B=3, T=8):
    return (rng.integers(0, CONFIG["vocab_size"], size=(B, T)),
            rng.integers(0, CONFIG["vocab_size"], size=(B, T)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logits_loss_and_every_gradient_match_pytorch(dtype, torch, kernels, rng,
                                                      assert_rel_close):
    model = GPT(GPTConfig(**CONFIG)).to(dtype=dtype)
    twin = torch_twin(torch, model)
    idx, targets = _batch(rng)
    logits, loss = model.forward(idx, targets)
    model.zero_grad()
    model.backward()
    t_logits, t_loss = twin(torch.tensor(idx), torch.tensor(targets))
    t_loss.backward()
    assert logits.dtype == dtype
    assert_rel_close(logits, t_logits.detach().numpy(), REL[dtype], "logits")
    assert_rel_close(loss, t_loss.item(), REL[dtype], "loss")
    theirs = dict(twin.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert sorted(names) == sorted(theirs), "every parameter has a twin"
    for name, p in model.named_parameters():
        assert p.grad.dtype == dtype
        expected = _to_torch_layout(name, theirs[name].grad.numpy())    # back to [in, out]
        assert_rel_close(p.grad, expected, REL[dtype], f"grad {name}",
                         scale=max(np.abs(expected).max(), 1e-12))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ten_adamw_steps_with_clipping_match_pytorch(dtype, torch, kernels, rng,
                                                     assert_rel_close):
    model = GPT(GPTConfig(**CONFIG)).to(dtype=dtype)
    twin = torch_twin(torch, model)
    opt = AdamW(decay_groups(model.parameters(), WD), lr=LR, betas=BETAS)
    t_opt = torch.optim.AdamW(decay_groups(twin.parameters(), WD), lr=LR,
                              betas=BETAS)
    ours, theirs = [], []
    for _ in range(10):
        idx, targets = _batch(rng)
        _, loss = model.forward(idx, targets)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        ours.append(float(loss))
        t_opt.zero_grad()
        _, t_loss = twin(torch.tensor(idx), torch.tensor(targets))
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
        t_opt.step()
        theirs.append(t_loss.item())
    assert_rel_close(ours, theirs, REL[dtype], "losses of 10 AdamW steps")
    assert ours[-1] < ours[0]
    final = dict(twin.named_parameters())
    assert_rel_close(model.h[1].mlp.c_fc.weight.data,
                     final["h.1.mlp.c_fc.weight"].detach().numpy().T, 10 * REL[dtype],
                     "weights after 10 steps")


def test_initialisation_follows_nanogpt():
    model = GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=6, n_head=4, n_embd=96))
    p = dict(model.named_parameters())
    assert p["wte"].data.std() == pytest.approx(0.02, rel=0.05)
    assert p["h.0.attn.c_attn.weight"].data.std() == pytest.approx(0.02, rel=0.05)
    assert p["h.3.mlp.c_proj.weight"].data.std() == pytest.approx(0.02 / math.sqrt(12), rel=0.05)
    assert p["h.2.attn.c_proj.weight"].data.std() == pytest.approx(0.02 / math.sqrt(12), rel=0.1)
    assert np.all(p["h.0.mlp.c_fc.bias"].data == 0) and np.all(p["ln_f.weight"].data == 1)
    assert p["wte"].data.dtype == np.float32
    D = 96
    assert model.num_parameters() == 50 * D + 64 * D + 6 * (12 * D * D + 13 * D) + 2 * D


def test_weight_tying_gives_wte_both_gradients(rng):
    """Through the head alone (targets only) the lookup still adds its scatter rows."""
    model = GPT(GPTConfig(**CONFIG)).to(dtype=np.float64)
    idx, targets = _batch(rng)
    model.forward(idx, targets)
    model.zero_grad()
    model.backward()
    unused = sorted(set(range(CONFIG["vocab_size"])) - set(idx.ravel()))
    assert unused, "the test needs a token id missing from idx"
    head_only = model.wte.grad[unused]
    assert np.abs(head_only).max() > 0          # unused rows still get the head's gradient


def test_dropout_is_seeded_and_off_in_evaluation(rng):
    model = GPT(GPTConfig(**CONFIG, dropout=0.3)).to(dtype=np.float64)
    idx, targets = _batch(rng)
    a = model.forward(idx, targets)[1]
    b = model.forward(idx, targets)[1]
    assert a != b, "two training passes draw different masks"
    again = GPT(GPTConfig(**CONFIG, dropout=0.3)).to(dtype=np.float64)
    assert again.forward(idx, targets)[1] == a, "same seed, same masks"
    model.eval()
    plain = GPT(GPTConfig(**CONFIG)).to(dtype=np.float64).eval()
    assert model.forward(idx, targets)[1] == pytest.approx(float(plain.forward(idx, targets)[1]),
                                                           rel=1e-12)


def test_gradient_with_dropout_matches_finite_differences(rng):
    """Each loss evaluation restores the dropout generators, so all see the same masks."""
    model = GPT(GPTConfig(**CONFIG, dropout=0.2)).to(dtype=np.float64)
    idx, targets = _batch(rng)
    dropouts = [m for _, m in model.named_modules() if hasattr(m, "get_rng_state")]
    model.forward(idx, targets)                              # create the generators
    states = [m.get_rng_state() for m in dropouts]

    def loss():
        for m, s in zip(dropouts, states):
            m.set_rng_state(s)
        return float(model.forward(idx, targets)[1])

    loss()
    model.zero_grad()
    model.backward()
    for name in ("wpe", "h.0.attn.c_attn.weight", "h.1.mlp.c_fc.bias"):
        p = dict(model.named_parameters())[name]
        flat, grad = p.data.reshape(-1), p.grad.reshape(-1).copy()
        for i in rng.choice(flat.size, 4, replace=False):
            saved = flat[i]
            flat[i] = saved + 1e-6
            up = loss()
            flat[i] = saved - 1e-6
            down = loss()
            flat[i] = saved
            assert (up - down) / 2e-6 == pytest.approx(grad[i], abs=1e-8 * max(1, abs(grad).max()))


def test_a_tiny_gpt_overfits_one_batch(rng):
    model = GPT(GPTConfig(**CONFIG))
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    idx, targets = _batch(rng, B=2)
    for _ in range(80):
        _, loss = model.forward(idx, targets)
        model.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss) < 0.1


def test_configuration_errors_are_clear(rng):
    with pytest.raises(ValueError, match="n_embd=.*divisible"):
        GPT(GPTConfig(n_embd=10, n_head=3))
    with pytest.raises(ValueError, match="block_size"):
        GPT(GPTConfig(**CONFIG)).forward(rng.integers(0, 13, size=(1, 9)))
    with pytest.raises(ValueError, match="unknown configuration keys"):
        GPT.from_config({"n_layers": 2})
    with pytest.raises(RuntimeError, match="forward"):
        GPT(GPTConfig(**CONFIG)).backward()


def test_registry_presets_and_state_dict_round_trip(rng):
    assert get_model_class("gpt") is GPT
    for name, layers, width in [("shakespeare-char-cpu", 4, 128), ("shakespeare-char", 6, 384)]:
        preset = get_preset(name)
        assert preset["model"] == "gpt"
        assert (preset["model_config"]["n_layer"], preset["model_config"]["n_embd"]) == (layers, width)
    model = GPT.from_config(dict(CONFIG, seed=1))
    copy = GPT.from_config(dict(CONFIG, seed=2))
    copy.load_state_dict(model.state_dict())
    idx, targets = _batch(rng)
    assert float(model.forward(idx, targets)[1]) == float(copy.forward(idx, targets)[1])


def test_attention_maps_are_causal_distributions(rng):
    model = GPT(GPTConfig(**CONFIG))
    model.forward(_batch(rng)[0])
    maps = model.attention_maps()
    assert len(maps) == CONFIG["n_layer"] and maps[0].shape == (3, 2, 8, 8)
    np.testing.assert_allclose(maps[0].sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(maps[1], k=1) == 0)


def test_a_resumed_gpt_run_with_dropout_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    """Checkpoints carry the weights, AdamW's moments, the batcher and every Dropout
    generator (embeddings, attention weights, both residual branches)."""
    import tinylm.train.loop as loop
    from tinylm.train.config import TrainConfig

    ids = (5 * np.arange(2600)) % 13                     # a learnable pattern, with noise
    ids[::7] = np.random.default_rng(0).integers(0, 13, size=ids[::7].shape)
    config = dict(CONFIG, dropout=0.1)

    def cfg(out):
        return TrainConfig(batch_size=4, block_size=8, lr=3e-3, max_iters=12, eval_interval=4,
                           eval_iters=2, schedule="cosine", warmup_iters=2, grad_clip=1.0,
                           weight_decay=0.1, out_dir=str(tmp_path / out), progress=False)

    straight = loop.train(GPT.from_config(config), "gpt", cfg("a"), ids[:2000], ids[2000:],
                          log=lambda *_: None)
    real_step = loop.train_step

    def crashing_step(model, optimizer, batcher, c, lr, xp, it):
        if it == 9:
            raise KeyboardInterrupt("simulated power cut")
        return real_step(model, optimizer, batcher, c, lr, xp, it)

    monkeypatch.setattr(loop, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        loop.train(GPT.from_config(config), "gpt", cfg("b"), ids[:2000], ids[2000:],
                   log=lambda *_: None)
    monkeypatch.setattr(loop, "train_step", real_step)
    fresh = GPT.from_config(dict(config, seed=5))
    resumed = loop.train(fresh, "gpt", cfg("b"), ids[:2000], ids[2000:], resume=True,
                         log=lambda *_: None)
    assert resumed.train_losses == straight.train_losses
    assert [e["val_loss"] for e in resumed.evals] == [e["val_loss"] for e in straight.evals]
