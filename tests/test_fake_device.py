"""Every model family on the fake device (tests/fake_cupy, the ``fake_gpu`` fixture): the
forward, the backward and an optimizer step give the host's numbers (float64, to
rounding), nothing falls back to the host (a host array meeting a device one raises), the
decoders agree with and without the KV cache, every functional gradient-check case gives
the host's errors, and the n-gram model counts and scores on the device (B3).

The training loop, checkpoints, exact resume and the synchronisation budget are in
tests/test_fake_device_train.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from model_helpers import SMALL, V, small_model
from tinylm.backend import to_numpy
from tinylm.commands.gradcheck import discover_cases
from tinylm.generate import generate
from tinylm.models.bert import BERT, BERTConfig
from tinylm.models.classifier import ClassifierConfig, SequenceClassifier
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.models.ngram import NGramConfig, NGramLM
from tinylm.models.seq2seq_rnn import Seq2SeqRNN, Seq2SeqRNNConfig
from tinylm.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from tinylm.optim import AdamW, clip_grad_norm

B, T = 3, 6


def _on_both(build):
    """The same float64 model twice, on the host and on the (fake) device."""
    return build().to(dtype=np.float64), build().to(dtype=np.float64, device="gpu")


def _batch(rng, vocab=V, shape=(B, T)):
    return rng.integers(0, vocab, size=shape)


def _device_args(fake_gpu, args: dict) -> dict:
    return {k: fake_gpu.asarray(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}


def _assert_same_step(fake_gpu, host, device, args: dict):
    """forward (logits and loss), backward (every gradient), a clipped AdamW step (every
    parameter): the device's numbers are the host's; the device's arrays stay on it."""
    out_h, loss_h = host.forward(**args)
    host.backward()
    out_d, loss_d = device.forward(**_device_args(fake_gpu, args))
    device.backward()
    assert isinstance(out_d, fake_gpu.ndarray) and isinstance(loss_d, fake_gpu.ndarray)
    np.testing.assert_allclose(to_numpy(out_d), out_h, rtol=1e-9, atol=1e-12)
    assert float(loss_d) == pytest.approx(float(loss_h), rel=1e-10)
    steps = []
    for model in (host, device):
        clip_grad_norm(model.parameters(), 0.5)
        steps.append(AdamW(model.parameters(), lr=1e-2, weight_decay=0.1))
    for (name, p), (_, q) in zip(host.named_parameters(), device.named_parameters()):
        assert isinstance(q.grad, fake_gpu.ndarray), name
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-7, atol=1e-12, err_msg=name)
    for opt in steps:
        opt.step()
    for (name, p), (_, q) in zip(host.named_parameters(), device.named_parameters()):
        assert isinstance(q.data, fake_gpu.ndarray), name
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-7, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_language_model_families_step_on_the_device(fake_gpu, rng, family):
    host, device = _on_both(lambda: small_model(family))
    T_ = min(T, SMALL[family].get("block_size", T))
    _assert_same_step(fake_gpu, host, device, {"idx": _batch(rng, shape=(B, T_)),
                                               "targets": _batch(rng, shape=(B, T_))})


def test_bert_with_masks_segments_and_next_sentence_steps_on_the_device(fake_gpu, rng):
    config = dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8,
                  next_sentence=True, dropout=0.0)
    host, device = _on_both(lambda: BERT(BERTConfig(**config)))
    targets = np.where(rng.random((B, T)) < 0.4, _batch(rng), -100)
    targets[:, 0] = 1                                      # at least one masked position
    mask = np.ones((B, T), bool)
    mask[0, -2:] = False                                   # padding at the end of one row
    _assert_same_step(fake_gpu, host, device, {
        "ids": _batch(rng), "targets": targets, "segments": (np.arange(T) >= 3)[None].repeat(B, 0)
        .astype(np.int64), "mask": mask, "nsp_targets": rng.integers(0, 2, size=B)})


@pytest.mark.parametrize("build", [
    lambda: Seq2SeqRNN(Seq2SeqRNNConfig(src_vocab=V, tgt_vocab=V + 2, n_embd=4, n_hidden=6,
                                        cell="gru", attention="general")),
    lambda: Seq2SeqRNN(Seq2SeqRNNConfig(src_vocab=V, tgt_vocab=V + 2, n_embd=4, n_hidden=6,
                                        cell="lstm", attention="general", bidirectional=True)),
    lambda: Seq2SeqTransformer(Seq2SeqTransformerConfig(
        src_vocab=V, tgt_vocab=V + 2, n_embd=8, n_head=2, n_enc_layer=1, n_dec_layer=1,
        max_len=8, dropout=0.0)),
], ids=["rnn-gru-attention", "rnn-lstm-bidirectional", "transformer"])
def test_encoder_decoders_step_on_the_device(fake_gpu, rng, build):
    host, device = _on_both(build)
    src_mask = np.ones((B, T), bool)
    src_mask[1, -2:] = False
    tgt_out = _batch(rng, V + 2)
    tgt_out[2, -1] = -100                                  # target padding
    _assert_same_step(fake_gpu, host, device, {
        "src": _batch(rng), "tgt_in": _batch(rng, V + 2), "tgt_out": tgt_out,
        "src_mask": src_mask})


@pytest.mark.parametrize("backbone, config", [
    ("bert", dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)),
    ("gpt", dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)),
    ("lstm", dict(vocab_size=V, n_embd=4, n_hidden=6)),
])
def test_the_classifier_steps_on_the_device(fake_gpu, rng, backbone, config):
    pooling = {"bert": "first", "gpt": "last", "lstm": "last"}[backbone]
    host, device = _on_both(lambda: SequenceClassifier(ClassifierConfig(
        backbone=backbone, backbone_config=config, n_classes=3, pooling=pooling,
        dropout=0.0)))
    mask = np.ones((B, T), bool)
    mask[0, -3:] = False
    _assert_same_step(fake_gpu, host, device, {"ids": _batch(rng), "mask": mask,
                                               "labels": rng.integers(0, 3, size=B)})


def test_gpt_trains_on_the_device_with_dropout(fake_gpu, rng):
    model = GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=16,
                          dropout=0.1)).to(device="gpu")
    opt = AdamW(model.parameters(), lr=1e-2)
    idx, targets = fake_gpu.asarray(_batch(rng)), fake_gpu.asarray(_batch(rng))
    losses = []
    for _ in range(25):
        _, loss = model.forward(idx, targets)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("family", sorted(SMALL))
def test_decoding_on_the_device_gives_the_hosts_tokens(fake_gpu, rng, family):
    """The incremental decoder (GPT's KV cache, a carried recurrent state) on the device
    gives the host's tokens, and for a model without carried state the same as
    recomputing the whole context."""
    model = small_model(family).to(dtype=np.float64, device="gpu").eval()
    prompt = fake_gpu.asarray(_batch(rng, shape=(2, 3)))
    cached = generate(model, prompt, 6, np.random.default_rng(0), top_k=4)
    if not model.stateful:
        recomputed = generate(model, prompt, 6, np.random.default_rng(0), top_k=4,
                              use_cache=False)
        np.testing.assert_array_equal(cached, recomputed)
    host = small_model(family).to(dtype=np.float64).eval()
    np.testing.assert_array_equal(
        cached, generate(host, to_numpy(prompt), 6, np.random.default_rng(0), top_k=4))


def test_top_p_sampling_runs_on_the_device(fake_gpu, rng):
    model = small_model("gpt").to(dtype=np.float64, device="gpu").eval()
    prompt = fake_gpu.asarray(_batch(rng, shape=(2, 3)))
    out = generate(model, prompt, 5, np.random.default_rng(0), top_p=0.9, temperature=0.8)
    assert out.shape == (2, 5)


CASES = discover_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_gradient_check_case_gives_the_hosts_numbers_on_the_device(
        fake_gpu, monkeypatch, case):
    """The host runs the array-module references too (``TINYLM_KERNELS=reference``), so
    both sides do the same arithmetic; a seeded case draws its mask from the device's
    generator, so there only the verdict can be compared."""
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    host, device = case.run(), case.run(device="gpu")
    assert device.passed, str(device)
    if not case.seeded:
        for h, d in zip(host.tensors, device.tensors):
            assert d.rel_error == pytest.approx(h.rel_error, rel=1e-6, abs=1e-13), h.name
            assert d.max_abs_error == pytest.approx(h.max_abs_error, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("smoothing", ["add_k", "kneser_ney"])
def test_the_ngram_model_counts_and_scores_on_the_device(fake_gpu, rng, smoothing):
    """B3: fitting on device ids used to call repeat with a device array of counts."""
    config = NGramConfig(vocab_size=V, order=3, smoothing=smoothing)
    stream = rng.integers(0, V, size=200)
    stream[50:60] = 2                                      # repeated n-grams, unseen others
    host, device = NGramLM(config).fit(stream), NGramLM(config).fit(fake_gpu.asarray(stream))
    assert device.device == "gpu"
    idx, targets = _batch(rng), _batch(rng)
    logits_h, loss_h = host.forward(idx, targets)
    logits_d, loss_d = device.forward(fake_gpu.asarray(idx), fake_gpu.asarray(targets))
    np.testing.assert_allclose(to_numpy(logits_d), logits_h, rtol=1e-12)
    assert float(loss_d) == pytest.approx(float(loss_h), rel=1e-12)
