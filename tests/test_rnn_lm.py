"""The recurrent language models (tinylm/models/rnn_lm.py) as a whole: gradient checks of
the full models, truncated BPTT (carried state), decoding, training and presets; and the
models against an Embedding + RNN/LSTM/GRU + Linear twin (tinylm/bench/twins/recurrent.py),
including a few optimizer steps of truncated BPTT with the state carried (detached) across
batches. The layers they are built from are in tests/test_recurrent.py."""

from __future__ import annotations

import numpy as np
import pytest

from test_recurrent import KINDS, REL, _np, assert_grads_match
from tinylm.bench.twins.recurrent import lm_state_from_twin, recurrent_lm_twin
from tinylm.bench.twins.recurrent import twin_lm_loss as _torch_lm_loss
from tinylm.generate import generate
from tinylm.gradcheck import check_model_gradients
from tinylm.models import get_model_class
from tinylm.models.rnn_lm import GRULM, LSTMLM, RNNLM, RecurrentLMConfig
from tinylm.nn.recurrent import GRU, LSTM, RNN
from tinylm.optim import SGD, AdamW, clip_grad_norm
from tinylm.train.presets import get_preset

MODELS = {"rnn": RNNLM, "lstm": LSTMLM, "gru": GRULM}


def tiny(cls, **overrides):
    config = dict(vocab_size=7, n_embd=4, n_hidden=5, n_layer=2, init_range=0.5) | overrides
    return cls(RecurrentLMConfig(**config))


@pytest.mark.parametrize("name", MODELS)
def test_registry_builds_each_family_from_a_plain_dict(name):
    cls = get_model_class(name)
    assert cls is MODELS[name]
    model = cls.from_config({"vocab_size": 11, "n_embd": 3, "n_hidden": 4, "n_layer": 2})
    assert model.stateful and model.context_size is None
    logits, loss = model.forward(np.zeros((2, 3), dtype=np.int64))
    assert logits.shape == (2, 3, 11) and loss is None


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("batch", [1, 2], ids=["V > tokens", "V <= tokens: folded table"])
def test_whole_model_gradients_match_finite_differences(name, tie, batch, rng, kernels):
    model = tiny(MODELS[name], n_hidden=4, tie_weights=tie).to(dtype=np.float64)
    idx, targets = rng.integers(0, 7, (batch, 5)), rng.integers(0, 7, (batch, 5))
    report = check_model_gradients(model, idx, targets, tolerance=1e-6)
    assert report.passed, str(report)
    assert model._folded == (batch == 2)


@pytest.mark.parametrize("layer", [RNN, LSTM, GRU])
@pytest.mark.parametrize("batch_first", [True, False])
def test_an_embedding_table_input_equals_looking_up_first(layer, batch_first, rng, kernels):
    """forward_from_ids(ids, E) (layer 0 reads (E W_x + b)[ids]) is forward(E[ids]), and
    backward_to_embedding returns dL/dE, the scatter-add of dL/dx, with the same parameter
    gradients."""
    folded = layer(3, 4, num_layers=2, batch_first=batch_first).to(dtype=np.float64)
    plain = layer(3, 4, num_layers=2, batch_first=batch_first).to(dtype=np.float64)
    plain.load_state_dict(folded.state_dict())
    E = rng.standard_normal((6, 3))
    ids = rng.integers(0, 6, (2, 5) if batch_first else (5, 2))
    state = rng.standard_normal((2, 2, 4))
    state = (state, rng.standard_normal((2, 2, 4))) if layer is LSTM else state
    y1, s1 = folded.forward_from_ids(ids, E, state)
    y2, s2 = plain.forward(E[ids], state)
    np.testing.assert_allclose(y1, y2, atol=1e-14)
    dy = rng.standard_normal(y1.shape)
    dE, d1 = folded.backward_to_embedding(dy)
    dx, d2 = plain.backward(dy)
    dE_expected = np.zeros_like(E)
    np.add.at(dE_expected, ids.reshape(-1), dx.reshape(-1, 3))
    np.testing.assert_allclose(dE, dE_expected, atol=1e-13)
    for (n, p), q in zip(folded.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, atol=1e-13, err_msg=n)


def test_each_forward_takes_its_own_backward(rng):
    layer = LSTM(3, 4)
    E, ids = rng.standard_normal((6, 3)), rng.integers(0, 6, (2, 5))
    y, _ = layer.forward_from_ids(ids, E)
    with pytest.raises(RuntimeError, match="backward_to_embedding"):
        layer.backward(np.ones_like(y))
    y, _ = layer.forward(E[ids])
    with pytest.raises(RuntimeError, match=r"its backward is backward\(\)"):
        layer.backward_to_embedding(np.ones_like(y))


def test_initial_loss_is_about_log_vocab_with_small_weights(rng):
    model = LSTMLM(RecurrentLMConfig(vocab_size=50, n_embd=8, n_hidden=8, init_range=0.01))
    _, loss = model.forward(rng.integers(0, 50, (4, 6)), rng.integers(0, 50, (4, 6)))
    assert abs(float(loss) - np.log(50)) < 0.01


@pytest.mark.parametrize("name", MODELS)
def test_carried_state_makes_consecutive_windows_one_stream(name, rng):
    """Truncated BPTT: two forwards over consecutive windows give the logits of one forward
    over the whole stream; reset_state() starts afresh."""
    model = tiny(MODELS[name]).to(dtype=np.float64)
    stream = rng.integers(0, 7, (3, 12))
    whole, _ = model.forward(stream)
    model.reset_state()
    first, _ = model.forward(stream[:, :5])
    second, _ = model.forward(stream[:, 5:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-13)
    model.reset_state()
    again, _ = model.forward(stream[:, 5:])
    assert not np.allclose(again, second)


def test_carried_state_is_a_constant_for_the_backward(rng):
    """The gradient of the second window does not reach the first window's inputs: the
    carried state is a plain array (gradients stop at the boundary)."""
    model = tiny(LSTMLM).to(dtype=np.float64)
    stream, targets = rng.integers(0, 7, (2, 10)), rng.integers(0, 7, (2, 10))
    model.forward(stream[:, :5], targets[:, :5])
    carried = tuple(s.copy() for s in model._carry)
    model.zero_grad()
    model.forward(stream[:, 5:], targets[:, 5:])
    model.backward()
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    # the same window started from the same state, with nothing before it
    model.reset_state()
    model._carry = carried
    model.zero_grad()
    model.forward(stream[:, 5:], targets[:, 5:])
    model.backward()
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[n], err_msg=n)


def test_a_batch_of_another_size_needs_reset_state(rng):
    model = tiny(GRULM)
    model.forward(rng.integers(0, 7, (3, 4)))
    with pytest.raises(ValueError, match="reset_state"):
        model.forward(rng.integers(0, 7, (2, 4)))
    model.reset_state()
    model.forward(rng.integers(0, 7, (2, 4)))


def test_errors_a_user_can_cause(rng):
    with pytest.raises(ValueError, match="tie_weights"):
        LSTMLM(RecurrentLMConfig(vocab_size=9, n_embd=4, n_hidden=6, tie_weights=True))
    with pytest.raises(ValueError, match="n_layer"):
        LSTMLM(RecurrentLMConfig(n_layer=0))
    with pytest.raises(ValueError, match="unknown configuration keys"):
        LSTMLM.from_config({"hidden": 3})
    model = tiny(RNNLM)
    with pytest.raises(RuntimeError, match="forward"):
        model.backward()
    model.forward(rng.integers(0, 7, (2, 3)))          # no targets: nothing to backpropagate
    with pytest.raises(RuntimeError, match="targets"):
        model.backward()
    with pytest.raises(ValueError, match="features"):
        LSTM(3, 4).forward(np.zeros((2, 5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(h, c\)"):
        LSTM(3, 4, num_layers=2).forward(np.zeros((2, 5, 3), dtype=np.float32),
                                         (np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))


@pytest.mark.parametrize("name", MODELS)
def test_incremental_decoding_matches_the_full_forward(name, rng):
    model = tiny(MODELS[name]).to(dtype=np.float64).eval()
    seq = rng.integers(0, 7, (2, 9))
    model.reset_state()
    full, _ = model.forward(seq)
    logits, state = model.start_decoding(seq[:, :4])
    np.testing.assert_allclose(logits, full[:, 3], atol=1e-13)
    for t in range(4, 9):
        logits, state = model.decode_step(seq[:, t], state)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-13)


def test_generate_continues_a_prompt(rng):
    model = tiny(LSTMLM)
    new = generate(model, np.array([[1, 2, 3]]), 6, rng, temperature=0.8)
    assert new.shape == (1, 6) and new.min() >= 0 and new.max() < 7
    greedy_a = generate(model, np.array([[1, 2, 3]]), 5, rng, greedy=True)
    greedy_b = generate(model, np.array([[1, 2, 3]]), 5, rng, greedy=True)
    np.testing.assert_array_equal(greedy_a, greedy_b)


def test_dropout_is_active_in_training_only(rng):
    model = tiny(LSTMLM, dropout=0.5, n_layer=3)
    idx = rng.integers(0, 7, (2, 6))
    model.eval()
    a, _ = model.forward(idx)
    model.reset_state()
    b, _ = model.forward(idx)
    np.testing.assert_array_equal(a, b)
    model.train()
    model.reset_state()
    c, _ = model.forward(idx)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("layer", [RNN, LSTM, GRU])
def test_layers_are_batch_first_by_default_and_keep_the_dtype(layer, rng):
    module = layer(3, 4, num_layers=2)
    y, state = module.forward(rng.standard_normal((2, 5, 3)).astype(np.float32))
    assert y.shape == (2, 5, 4) and y.dtype == np.float32
    states = state if isinstance(state, tuple) else (state,)
    assert all(s.shape == (2, 2, 4) for s in states)
    dx, _ = module.backward(np.ones_like(y))
    assert dx.shape == (2, 5, 3) and dx.dtype == np.float32
    assert {n.split("_l")[0] for n, _ in module.named_parameters()} == {"W_x", "W_h", "b_x", "b_h"}


@pytest.mark.parametrize("name", MODELS)
def test_a_model_learns_a_repeating_sequence(name, rng):
    """Overfit: a period-5 pattern becomes almost certain within 80 AdamW steps."""
    model = tiny(MODELS[name], vocab_size=6, n_embd=8, n_hidden=16, n_layer=1, init_range=0.0)
    opt = AdamW(model.parameters(), lr=0.03, weight_decay=0.0)
    stream = np.tile(np.array([0, 3, 1, 4, 2]), 30)
    x = np.stack([stream[i:i + 20] for i in range(0, 60, 15)])
    y = np.stack([stream[i + 1:i + 21] for i in range(0, 60, 15)])
    first = None
    for _ in range(80):
        model.reset_state()
        _, loss = model.forward(x, y)
        first = float(loss) if first is None else first
        model.backward()
        opt.step()
        opt.zero_grad()
    assert first > 1.5 and float(loss) < 0.1


def test_presets_build_their_models():
    for name in ("ptb-small", "shakespeare-char-lstm", "ptb-small-gru"):
        preset = get_preset(name)
        model = get_model_class(preset["model"]).from_config(
            dict(preset["model_config"], vocab_size=10000 if "ptb" in name else 65))
        assert model.stateful
    ptb = get_preset("ptb-small")
    assert ptb["model_config"]["n_hidden"] == 200 and ptb["model_config"]["n_layer"] == 2
    assert ptb["train"]["batching"] == "sequential" and ptb["train"]["epochs"] == 13
    model = get_model_class("lstm").from_config(dict(ptb["model_config"], vocab_size=10000))
    assert model.num_parameters() == 4_653_200          # as Zaremba et al.'s, biases doubled


def test_training_through_the_loop_lowers_the_validation_loss(tmp_path):
    from tinylm.train.config import TrainConfig
    from tinylm.train.loop import train

    text_ids = np.tile(np.arange(9), 200) ^ (np.arange(1800) % 7 == 0)
    cfg = TrainConfig(batching="sequential", batch_size=4, block_size=8, optimizer="adamw",
                      lr=0.02, max_iters=60, eval_interval=30, eval_iters=0, progress=False,
                      out_dir=str(tmp_path), grad_clip=1.0)
    model = LSTMLM(RecurrentLMConfig(vocab_size=10, n_embd=8, n_hidden=16, init_range=0.0))
    run = train(model, "lstm", cfg, text_ids[:1500], text_ids[1500:], log=lambda *_: None)
    assert run.evals[-1]["val_loss"] < 0.5 * run.evals[0]["val_loss"]


# -- against a PyTorch twin ------------------------------------------------------------------

LM_CLASSES = {"rnn": RNNLM, "lstm": LSTMLM, "gru": GRULM}


def _lm_pair(torch, kind, V=13, E=6, H=6, L=2, tie=False, seed=0):
    """A float64 tinylm LM and its torch twin (Embedding, RNN stack, Linear), same weights."""
    twin = recurrent_lm_twin(torch, kind, V, E, H, L, tie=tie, seed=seed)
    config = RecurrentLMConfig(vocab_size=V, n_embd=E, n_hidden=H, n_layer=L, tie_weights=tie)
    model = LM_CLASSES[kind](config).to(dtype=np.float64)
    model.load_state_dict(lm_state_from_twin(twin, L, tie))
    return model, twin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("V", [13, 40], ids=["folded embedding (V <= B*T)", "V > B*T"])
def test_language_model_matches_torch_twin(kind, tie, V, torch, rng, kernels, assert_rel_close):
    model, twin = _lm_pair(torch, kind, V=V, tie=tie)
    idx, targets = rng.integers(0, V, (3, 9)), rng.integers(0, V, (3, 9))
    logits, loss = model.forward(idx, targets)
    model.backward()
    t_logits, t_loss, _ = _torch_lm_loss(torch, twin, idx, targets)
    t_loss.backward()
    assert_rel_close(logits, _np(t_logits), REL, "logits")
    assert_rel_close(loss, t_loss.item(), REL, "loss")
    emb, rnn, head = twin
    params = dict(model.named_parameters())
    assert_rel_close(params["embedding.weight"].grad, _np(emb.weight.grad), REL, "embedding")
    assert_rel_close(params["b_out"].grad, _np(head.bias.grad), REL, "b_out")
    if not tie:
        assert_rel_close(params["w_out"].grad, _np(head.weight.grad).T, REL, "w_out")
    assert_grads_match(params, rnn, 2, assert_rel_close, prefix="rnn.")


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_truncated_bptt_training_steps_match_torch(optimizer, torch, rng, assert_rel_close):
    """Four steps over consecutive windows of one stream: state carried and detached,
    gradients clipped by global norm, then SGD or AdamW -- losses and weights agree."""
    model, twin = _lm_pair(torch, "lstm", V=11, E=5, H=7, L=2, seed=4)
    params = [p for _, p in model.named_parameters()]
    t_params = [*twin[0].parameters(), *twin[1].parameters(), *twin[2].parameters()]
    if optimizer == "sgd":
        opt, t_opt = SGD(params, lr=0.5), torch.optim.SGD(t_params, lr=0.5)
    else:
        opt = AdamW(params, lr=0.01, weight_decay=0.1)
        t_opt = torch.optim.AdamW(t_params, lr=0.01, weight_decay=0.1)
    stream = rng.integers(0, 11, (4, 4 * 6 + 1))           # B = 4 rows, 4 windows of T = 6
    t_state = None
    for k in range(4):
        x, y = stream[:, 6 * k:6 * k + 6], stream[:, 6 * k + 1:6 * k + 7]
        _, loss = model.forward(x, y)
        model.backward()
        clip_grad_norm(params, 0.5)
        opt.step()
        opt.zero_grad()
        _, t_loss, t_state = _torch_lm_loss(torch, twin, x, y, t_state)
        t_state = tuple(s.detach() for s in t_state)
        t_opt.zero_grad()
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(t_params, 0.5)
        t_opt.step()
        assert_rel_close(loss, t_loss.item(), REL, f"loss at step {k}")
    assert_rel_close(dict(model.named_parameters())["rnn.W_h_l1"].data,
                     _np(twin[1].weight_hh_l1).T, REL, "W_h_l1 after 4 steps")
    assert_rel_close(dict(model.named_parameters())["embedding.weight"].data,
                     _np(twin[0].weight), REL, "embedding after 4 steps")
