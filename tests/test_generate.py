"""Decoding (tinylm/generate.py) and GPT's KV cache (chapter 10).

* the KV cache gives the logits of full recomputation at every step, in float64 to 1e-10,
  including after the context outgrows block_size (where the window slides);
* generation with and without the cache produces the same tokens (greedy and sampled);
* greedy, temperature, top-k and top-p do what their definitions say; stop tokens stop;
* user errors are reported clearly.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.functional.softmax import softmax_forward
from tinylm.generate import filter_logits, generate, sample_next
from tinylm.models.base import LanguageModel
from tinylm.models.gpt import GPT, GPTConfig

CONFIG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture
def model():
    return GPT(GPTConfig(**CONFIG, seed=3)).to(dtype=np.float64).eval()


def test_kv_cache_logits_equal_full_recomputation_at_every_step(model, kernels, rng):
    prompt = rng.integers(0, 11, size=(3, 3))
    logits, state = model.start_decoding(prompt)
    ids = prompt
    for step in range(14):                       # 3 + 14 tokens: well past block_size = 8
        window = ids[:, -CONFIG["block_size"]:]
        full, _ = model.forward(window)
        scale = np.abs(full[:, -1]).max()
        assert np.abs(logits - full[:, -1]).max() <= 1e-10 * scale, f"step {step}"
        nxt = rng.integers(0, 11, size=3)
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
        logits, state = model.decode_step(nxt, state)


def test_the_cache_fills_to_block_size_then_the_window_slides(model, rng):
    _, state = model.start_decoding(rng.integers(0, 11, size=(1, 6)))
    assert state["caches"][0].length == 6
    for _ in range(4):
        _, state = model.decode_step(np.array([1]), state)
    assert state["caches"][0].length == CONFIG["block_size"]
    assert state["ids"].shape == (1, 10)


def test_a_prompt_longer_than_block_size_is_cropped(model, rng):
    prompt = rng.integers(0, 11, size=(2, 12))
    logits, _ = model.start_decoding(prompt)
    full, _ = model.forward(prompt[:, -8:])
    np.testing.assert_allclose(logits, full[:, -1], rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(greedy=True), dict(temperature=0.8, top_k=4),
                                    dict(temperature=1.3, top_p=0.9)])
def test_generation_with_and_without_the_cache_gives_the_same_tokens(model, kwargs, rng):
    prompt = rng.integers(0, 11, size=(2, 2))
    cached = generate(model, prompt, 15, np.random.default_rng(7), **kwargs)
    recomputed = generate(model, prompt, 15, np.random.default_rng(7), use_cache=False,
                          **kwargs)
    assert cached.shape == (2, 15)
    np.testing.assert_array_equal(cached, recomputed)


def test_greedy_decoding_follows_the_argmax_of_the_recomputed_logits(model, rng):
    prompt = rng.integers(0, 11, size=(1, 3))
    new = generate(model, prompt, 6, np.random.default_rng(0), greedy=True)[0]
    ids = prompt
    for token in new:
        logits, _ = LanguageModel.start_decoding(model, ids)
        assert token == logits[0].argmax()
        ids = np.concatenate([ids, [[token]]], axis=1)


def test_zero_temperature_top1_and_tiny_top_p_are_all_greedy(model, rng):
    prompt = rng.integers(0, 11, size=(2, 2))
    greedy = generate(model, prompt, 8, np.random.default_rng(1), greedy=True)
    for kwargs in (dict(temperature=0.0), dict(top_k=1), dict(top_p=1e-9)):
        np.testing.assert_array_equal(
            generate(model, prompt, 8, np.random.default_rng(1), **kwargs), greedy)


def test_generate_restores_training_mode(model, rng):
    model.train()
    generate(model, rng.integers(0, 11, size=(1, 2)), 3, np.random.default_rng(0))
    assert model.training


def test_top_k_keeps_exactly_the_k_largest_logits():
    logits = np.array([[0.1, 2.0, -1.0, 3.0, 0.5]])
    kept = np.isfinite(filter_logits(logits, top_k=2))[0]
    np.testing.assert_array_equal(kept, [False, True, False, True, False])


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probs = np.array([[0.5, 0.05, 0.3, 0.15]])
    logits = np.log(probs)
    np.testing.assert_array_equal(np.isfinite(filter_logits(logits, top_p=0.75))[0],
                                  [True, False, True, False])        # 0.5 + 0.3 >= 0.75
    np.testing.assert_array_equal(np.isfinite(filter_logits(logits, top_p=0.5))[0],
                                  [True, False, False, False])       # the best token alone
    np.testing.assert_array_equal(np.isfinite(filter_logits(logits, top_p=0.81))[0],
                                  [True, False, True, True])
    assert np.isfinite(filter_logits(logits, top_p=1.0)).all()


def test_sampling_follows_the_tempered_distribution():
    logits = np.log(np.array([[0.6, 0.3, 0.1]])).repeat(20000, axis=0)
    rng = np.random.default_rng(0)
    for temperature in (1.0, 0.5, 2.0):
        ids = sample_next(logits, rng, temperature=temperature)
        expected, _ = softmax_forward(logits[0] / temperature)
        freq = np.bincount(ids, minlength=3) / len(ids)
        np.testing.assert_allclose(freq, expected, atol=0.015)


def test_generation_stops_once_every_row_has_a_stop_token(model, rng):
    prompt = rng.integers(0, 11, size=(1, 2))
    free = generate(model, prompt, 12, np.random.default_rng(2))[0]
    stop = int(free[4])
    first = int(np.argmax(free == stop))
    stopped = generate(model, prompt, 12, np.random.default_rng(2), stop_ids=[stop])[0]
    np.testing.assert_array_equal(stopped, free[:first + 1])


def test_decoding_errors_are_clear(model, rng):
    with pytest.raises(ValueError, match="prompt must be"):
        generate(model, np.zeros((2,), dtype=int), 3, rng)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, np.zeros((1, 2), dtype=int), 3, rng, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(np.zeros((1, 4)), top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(np.zeros((1, 4)), top_p=1.5)
