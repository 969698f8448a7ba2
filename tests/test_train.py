"""The training loop: it learns, it resumes exactly, it refuses to continue a diverged run."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinylm.checkpoint as checkpoint
import tinylm.train.loop as loop
from model_helpers import learnable_ids
from tinylm.checkpoint import load_checkpoint
from tinylm.models.mlp_lm import MLPConfig, MLPLM
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.models.rnn_lm import LSTMLM, RecurrentLMConfig
from tinylm.train.config import TrainConfig
from tinylm.train.setup import with_training_window


def _ids(n=3000, V=12, seed=0):
    return learnable_ids(n, V, seed)


def _config(tmp_path, **overrides):
    values = dict(batch_size=8, block_size=16, lr=3e-3, max_iters=40, eval_interval=10,
                  eval_iters=4, schedule="cosine", warmup_iters=5, min_lr=3e-4, grad_clip=1.0,
                  weight_decay=0.1, out_dir=str(tmp_path), progress=False, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def _model(seed=1):
    return MLPLM(MLPConfig(vocab_size=12, block_size=4, n_embd=8, n_hidden=32, dropout=0.1,
                           seed=seed))


def test_training_lowers_the_validation_loss(tmp_path):
    ids = _ids()
    run = loop.train(_model(), "mlp", _config(tmp_path, max_iters=60), ids[:2500], ids[2500:],
                     log=lambda *_: None)
    assert run.evals[-1]["val_loss"] < 0.7 * run.evals[0]["val_loss"]
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert (tmp_path / "ckpt.json").exists()


def test_interrupted_then_resumed_run_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    ids = _ids()
    straight = loop.train(_model(), "mlp", _config(tmp_path / "a"), ids[:2500], ids[2500:],
                          log=lambda *_: None)

    real_step = loop.train_step

    def crashing_step(model, optimizer, batcher, cfg, lr, xp, it):
        if it == 27:
            raise KeyboardInterrupt("simulated power cut")
        return real_step(model, optimizer, batcher, cfg, lr, xp, it)

    monkeypatch.setattr(loop, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        loop.train(_model(), "mlp", _config(tmp_path / "b"), ids[:2500], ids[2500:],
                   log=lambda *_: None)
    monkeypatch.setattr(loop, "train_step", real_step)
    # a fresh process would rebuild the model from scratch: different init, same checkpoint
    fresh = _model(seed=99)
    resumed = loop.train(fresh, "mlp", _config(tmp_path / "b"), ids[:2500], ids[2500:],
                         resume=True, log=lambda *_: None)
    assert resumed.train_losses == straight.train_losses
    assert [e["val_loss"] for e in resumed.evals] == [e["val_loss"] for e in straight.evals]


def test_diverged_loss_stops_with_a_clear_error(tmp_path):
    model = _model()
    model.w_out.data[:] = np.nan
    ids = _ids()
    with pytest.raises(loop.NonFiniteLossError, match="Lower the learning rate"):
        loop.train(model, "mlp", _config(tmp_path, eval_interval=1000), ids[:2500], ids[2500:],
                   log=lambda *_: None)


def test_epochs_require_sequential_batching(tmp_path):
    ids = _ids()
    with pytest.raises(ValueError, match="sequential"):
        loop.train(_model(), "mlp", _config(tmp_path, epochs=2), ids[:2500], ids[2500:],
                   log=lambda *_: None)


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_the_training_window_defaults_to_the_model_context():
    gpt = GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=8))
    assert with_training_window(TrainConfig(), gpt).block_size == 8
    assert with_training_window(TrainConfig(block_size=5), gpt).block_size == 5
    assert with_training_window(TrainConfig(), _model()).block_size == 4
    assert with_training_window(TrainConfig(block_size=16), _model()).block_size == 16


def test_a_window_longer_than_gpt_positions_or_missing_for_an_rnn_is_a_clear_error():
    gpt = GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match=r"block_size=9 is longer than the model's "
                                         r"block_size=8"):
        with_training_window(TrainConfig(block_size=9), gpt)
    lstm = LSTMLM(RecurrentLMConfig(vocab_size=12, n_embd=4, n_hidden=4))
    with pytest.raises(ValueError, match="LSTMLM has no fixed context"):
        with_training_window(TrainConfig(), lstm)
    assert with_training_window(TrainConfig(block_size=20), lstm).block_size == 20


# -- nothing lost: a diverged run, a Ctrl-C and a kill during a save keep the last good model --

def _saved_iteration(folder):
    _, meta = load_checkpoint(folder / "ckpt")
    return meta["run"]["iteration"]


def test_a_nan_validation_loss_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = loop.train_step

    def poisoning_step(model, optimizer, batcher, cfg, lr, xp, it):
        loss = real_step(model, optimizer, batcher, cfg, lr, xp, it)
        if it == 19:                 # weights blow up after a step whose own loss was finite
            model.w_out.data[:] = np.nan
        return loss

    monkeypatch.setattr(loop, "train_step", poisoning_step)
    ids = _ids()
    with pytest.raises(loop.NonFiniteLossError, match="last good checkpoint .* is kept"):
        loop.train(_model(), "mlp", _config(tmp_path), ids[:2500], ids[2500:],
                   log=lambda *_: None)
    assert _saved_iteration(tmp_path) == 10
    assert "NaN" not in (tmp_path / "ckpt.json").read_text()


def test_non_finite_parameters_are_never_saved(tmp_path):
    model = _model()
    model.w_hidden.data[0, 0] = np.inf
    with pytest.raises(loop.NonFiniteLossError, match="w_hidden"):
        loop.save_run(tmp_path, model, "mlp", _config(tmp_path), loop.RunState())
    assert not (tmp_path / "ckpt.json").exists()


def test_ctrl_c_names_the_checkpoint_that_survives(tmp_path, monkeypatch):
    real_step = loop.train_step

    def interrupted_step(model, optimizer, batcher, cfg, lr, xp, it):
        if it == 23:
            raise KeyboardInterrupt
        return real_step(model, optimizer, batcher, cfg, lr, xp, it)

    monkeypatch.setattr(loop, "train_step", interrupted_step)
    ids = _ids()
    with pytest.raises(KeyboardInterrupt, match="step 23; the checkpoint of step 20 .* --resume"):
        loop.train(_model(), "mlp", _config(tmp_path), ids[:2500], ids[2500:],
                   log=lambda *_: None)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    ids = _ids()
    return loop.train(_model(), "mlp", _config(tmp_path_factory.mktemp("straight")),
                      ids[:2500], ids[2500:], log=lambda *_: None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
@pytest.mark.parametrize("step", checkpoint.SAVE_STEPS)
def test_a_run_killed_at_any_step_of_a_save_resumes_exactly(tmp_path, step, straight_run):
    """The child trains and dies (os._exit, as kill -9) at ``step`` of its third save (step
    20); the folder must resume, from step 10 or 20, into the uninterrupted run's numbers."""
    ids = _ids()
    pid = os.fork()
    if pid == 0:
        saves = []

        def die_at(reached):
            saves.append(reached)
            if reached == step and saves.count(step) == 3:
                os._exit(137)
        checkpoint.fault_hook = die_at
        try:
            loop.train(_model(), "mlp", _config(tmp_path), ids[:2500], ids[2500:],
                       log=lambda *_: None)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 137
    committed = checkpoint.SAVE_STEPS.index(step) >= checkpoint.SAVE_STEPS.index("committed")
    assert _saved_iteration(tmp_path) == (20 if committed else 10)
    resumed = loop.train(_model(seed=99), "mlp", _config(tmp_path), ids[:2500], ids[2500:],
                         resume=True, log=lambda *_: None)
    assert resumed.train_losses == straight_run.train_losses
    assert [e["val_loss"] for e in resumed.evals] == [e["val_loss"] for e in straight_run.evals]
