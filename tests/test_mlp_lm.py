"""The Bengio-style MLP language model: gradients, a PyTorch twin, learning, decoding."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.backend import default_rng
from tinylm.bench.twins.mlp import mlp_lm_twin_logits, mlp_lm_twin_parameters
from tinylm.generate import generate
from tinylm.gradcheck import check_model_gradients
from tinylm.models import get_model_class
from tinylm.models.mlp_lm import MLPConfig, MLPLM
from tinylm.train.presets import get_preset


def _batch(rng, V=9, B=3, T=7):
    x = rng.integers(0, V, size=(B, T))
    return x, rng.integers(0, V, size=(B, T))


def test_registered_under_mlp():
    assert get_model_class("mlp") is MLPLM


@pytest.mark.parametrize("direct", [False, True])
def test_every_parameter_gradient_matches_finite_differences(direct):
    model = MLPLM(MLPConfig(vocab_size=9, block_size=3, n_embd=4, n_hidden=6,
                            direct=direct)).to(np.float64)
    if direct:   # zero-initialised: give the direct weights values that matter
        model.w_direct.assign(np.random.default_rng(5).standard_normal(model.w_direct.shape))
    x, y = _batch(np.random.default_rng(0))
    report = check_model_gradients(model, x, y, tolerance=1e-7)
    assert report.passed, str(report)


@pytest.mark.parametrize("direct", [False, True])
def test_matches_a_pytorch_twin(torch, direct):
    cfg = MLPConfig(vocab_size=9, block_size=4, n_embd=5, n_hidden=7, direct=direct)
    model = MLPLM(cfg).to(np.float64)
    if direct:
        model.w_direct.assign(np.random.default_rng(6).standard_normal(model.w_direct.shape))
    x, y = _batch(np.random.default_rng(1), T=6)
    logits, loss = model.forward(x, y)
    model.backward()

    t = mlp_lm_twin_parameters(torch, model)
    t_logits = mlp_lm_twin_logits(torch, t, cfg, x)
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, cfg.vocab_size),
                                               torch.tensor(y).reshape(-1))
    t_loss.backward()
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(float(loss), t_loss.item(), rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, t[name].grad.numpy(), rtol=1e-10, atol=1e-13,
                                   err_msg=name)


def test_overfits_a_tiny_batch():
    model = MLPLM(MLPConfig(vocab_size=6, block_size=3, n_embd=8, n_hidden=32))
    x, y = _batch(np.random.default_rng(2), V=6, B=2, T=8)
    x[:, :] = y[:, :]   # predicting the token itself from a window that contains it: learnable
    first = None
    for _ in range(300):
        model.zero_grad()
        _, loss = model.forward(x, y)
        first = float(loss) if first is None else first
        model.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad
    assert float(loss) < 0.05 < first


def test_decoding_interface_equals_full_forward():
    model = MLPLM(MLPConfig(vocab_size=7, block_size=3, n_embd=4, n_hidden=8)).to(np.float64)
    prompt = np.array([[1, 2, 3, 4, 5]])
    logits, state = model.start_decoding(prompt)
    np.testing.assert_allclose(logits, model.forward(prompt)[0][:, -1])
    logits2, _ = model.decode_step(np.array([6]), state)
    np.testing.assert_allclose(logits2, model.forward(np.array([[1, 2, 3, 4, 5, 6]]))[0][:, -1])


def test_greedy_generation_is_deterministic_and_sampling_is_seeded():
    model = MLPLM(MLPConfig(vocab_size=7, block_size=3, n_embd=4, n_hidden=8))
    prompt = np.array([[1, 2]])
    a = generate(model, prompt, 10, default_rng(0), greedy=True)
    b = generate(model, prompt, 10, default_rng(5), greedy=True)
    np.testing.assert_array_equal(a, b)
    s1 = generate(model, prompt, 10, default_rng(3), temperature=1.0)
    s2 = generate(model, prompt, 10, default_rng(3), temperature=1.0)
    np.testing.assert_array_equal(s1, s2)
    assert s1.shape == (1, 10)


def test_presets_build_the_models_of_chapter_03():
    """The demo and the run that beats the 5-gram (chapter 03, section 10) keep their shapes."""
    presets = {name: get_preset(name) for name in ("shakespeare-char-mlp",
                                                   "shakespeare-char-mlp-large")}
    sizes = {}
    for name, preset in presets.items():
        assert preset["model"] == "mlp" and preset["train"]["tokenizer"] == "char"
        model = get_model_class("mlp").from_config(dict(preset["model_config"], vocab_size=65))
        sizes[name] = model.num_parameters()
    # n=6, d=32, H=768: 66*32 + 192*768 + 768 + 768*65 + 65
    assert sizes["shakespeare-char-mlp"] == 200_321
    # n=6, d=48, H=1536: 66*48 + 288*1536 + 1536 + 1536*65 + 65
    assert sizes["shakespeare-char-mlp-large"] == 546_977
    large = presets["shakespeare-char-mlp-large"]
    assert large["model_config"]["block_size"] == 6 and large["train"]["max_iters"] == 16000


def test_bad_configuration_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"MLPConfig.block_size=0 must be an integer >= 1"):
        MLPLM(MLPConfig(block_size=0))
    with pytest.raises(ValueError, match="unknown configuration keys"):
        MLPLM.from_config({"vocab_size": 5, "hiden": 3})
    model = MLPLM(MLPConfig(vocab_size=5, block_size=2, n_embd=2, n_hidden=3))
    with pytest.raises(ValueError, match="token ids"):
        model.forward(np.array([[1, 9]]))


@pytest.mark.parametrize("rows", [6, 40])   # 6 < B*T: projected tables; 40 >= B*T: concatenation
def test_window_projection_equals_embed_concatenate_project(rows, kernels):
    """window_projection_forward/backward against the textbook concatenation, both kernel paths."""
    from tinylm.functional.embedding import embedding_backward, embedding_forward
    from tinylm.functional.linear import linear_backward, linear_forward
    from tinylm.functional.window_projection import (window_projection_backward,
                                                     window_projection_forward)
    from tinylm.gradcheck import check_gradients
    rng = np.random.default_rng(4)
    n, d, H, R, B, T = 3, 4, 5, rows, 2, 7
    ids = rng.integers(0, R, size=(B, T + n - 1))
    C, W, bias = rng.standard_normal((R, d)), rng.standard_normal((n * d, H)), rng.standard_normal(H)
    dpre = rng.standard_normal((B, T, H))
    pre, cache = window_projection_forward(ids, C, W, bias)
    dC, dW, dbias = window_projection_backward(dpre, cache)
    emb, emb_cache = embedding_forward(ids, C)
    ctx = np.concatenate([emb[:, k:k + T] for k in range(n)], axis=-1)
    ref, lin_cache = linear_forward(ctx, W, bias)
    dctx, dW_ref, dbias_ref = linear_backward(dpre, lin_cache)
    demb = np.zeros_like(emb)
    for k in range(n):
        demb[:, k:k + T] += dctx[..., k * d:(k + 1) * d]
    np.testing.assert_allclose(pre, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dC, embedding_backward(demb, emb_cache), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dbias, dbias_ref, rtol=1e-12, atol=1e-12)
    report = check_gradients(window_projection_forward, window_projection_backward,
                             {"ids": ids, "C": C, "W": W, "bias": bias}, tolerance=1e-7)
    assert report.passed, str(report)
    with pytest.raises(ValueError, match="multiple"):
        window_projection_forward(ids, C, W[:-1], bias)


def test_token_dropout_replaces_context_tokens_in_training_only():
    from tinylm.nn import TokenDropout
    drop = TokenDropout(0.3, seed=4)
    ids = np.random.default_rng(0).integers(0, 9, size=(50, 40))
    out = drop.forward(ids, fill=9)
    dropped = out != ids
    assert np.all(out[dropped] == 9) and out.dtype == ids.dtype
    assert 0.25 < dropped.mean() < 0.35, "about p of the tokens are replaced"
    assert np.array_equal(TokenDropout(0.3, seed=4).forward(ids, fill=9), out), "seeded"
    drop.eval()
    assert drop.forward(ids, fill=9) is ids
    with pytest.raises(TypeError, match="no gradient"):
        drop.backward(np.ones(3))


def test_token_dropout_model_trains_on_the_holed_window_and_evaluates_on_the_full_one():
    cfg = MLPConfig(vocab_size=9, block_size=4, n_embd=5, n_hidden=7, token_dropout=0.5)
    model = MLPLM(cfg).to(np.float64)
    x, y = _batch(np.random.default_rng(3), T=6)
    plain = MLPLM(MLPConfig(vocab_size=9, block_size=4, n_embd=5, n_hidden=7)).to(np.float64)
    model.eval()
    np.testing.assert_array_equal(model.forward(x)[0], plain.forward(x)[0])
    model.train()
    assert not np.allclose(model.forward(x)[0], plain.forward(x)[0])
    # the gradient is that of the model on the ids actually used: the checker calls
    # reset_state() before every forward, which here rewinds the dropout generator
    state = model.token_dropout.get_rng_state()
    model.reset_state = lambda: model.token_dropout.set_rng_state(state)
    report = check_model_gradients(model, x, y, tolerance=1e-7)
    assert report.passed, str(report)
