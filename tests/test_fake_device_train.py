"""The training loop on the fake device (tests/fake_cupy): checkpoints with dropout (B1),
an exact resume (B2), and the budget of host synchronisations per training step.

A synchronisation makes the host wait until the device has finished everything queued so
far, then copies a result back: on a GPU it costs the launch latency of the whole queue,
and a training step should queue its work and move on. Before these tests a step of every
language model synchronised 14 times (the id range checks, the cross-entropy's target
count and boolean masks, the clipping norm, the loss); now a step synchronises never and
the loop reads the losses of ``log_interval`` steps at once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import tinylm.train.loop as loop
from model_helpers import SMALL, learnable_ids, small_model
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.nn.dropout import Dropout
from tinylm.train.config import TrainConfig

STEP_BUDGET = 0     # synchronisations inside one training step (the loss is read later)


def _ids(n=1200, V=7, seed=0):
    return learnable_ids(n, V, seed)


def _config(tmp_path, **overrides):
    values = dict(batch_size=4, block_size=8, lr=3e-3, max_iters=24, eval_interval=8,
                  eval_iters=2, schedule="cosine", warmup_iters=3, min_lr=3e-4, grad_clip=1.0,
                  weight_decay=0.1, log_interval=5, out_dir=str(tmp_path), progress=False,
                  seed=3, device="gpu")
    values.update(overrides)
    return TrainConfig(**values)


def _gpt(seed=1):
    return GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16,
                         dropout=0.1, seed=seed))


def _train(model, cfg, resume=False):
    ids = _ids()
    return loop.train(model, "gpt", cfg, ids[:1000], ids[1000:], resume=resume,
                      log=lambda *_: None)


def test_a_device_run_with_dropout_writes_its_checkpoint(fake_gpu, tmp_path):
    """B1: the dropout generators' state used to be CuPy's ``bit_generator.state`` method,
    which JSON cannot hold: the first checkpoint of a GPU run with dropout crashed."""
    _train(_gpt(), _config(tmp_path, max_iters=8))
    saved = json.loads((tmp_path / "ckpt.json").read_text())["rng"]
    assert saved and all(s == {"device": "gpu", "seed": s["seed"], "draws": s["draws"]}
                         for s in saved.values()), saved
    assert any(s["draws"] == 8 for s in saved.values())   # one mask a step at each site


def test_an_interrupted_device_run_resumes_exactly(fake_gpu, tmp_path, monkeypatch):
    """B2: the generators used to be restored on the host, so a resumed GPU run drew other
    dropout masks than the uninterrupted one."""
    straight = _train(_gpt(), _config(tmp_path / "a"))
    real_step = loop.train_step

    def crashing_step(model, optimizer, batcher, cfg, lr, xp, it):
        if it == 13:
            raise KeyboardInterrupt("simulated power cut")
        return real_step(model, optimizer, batcher, cfg, lr, xp, it)

    monkeypatch.setattr(loop, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        _train(_gpt(), _config(tmp_path / "b"))
    monkeypatch.setattr(loop, "train_step", real_step)
    resumed = _train(_gpt(seed=99), _config(tmp_path / "b"), resume=True)
    assert resumed.train_losses == straight.train_losses
    assert [e["val_loss"] for e in resumed.evals] == [e["val_loss"] for e in straight.evals]


def test_device_dropout_masks_depend_on_seed_and_count_only(fake_gpu):
    """The state is (seed, masks drawn): restoring it gives the masks that follow."""
    x = fake_gpu.ones((4, 5))
    first = Dropout(0.5, seed=3)
    masks = [fake_gpu.asnumpy(first.forward(x)) for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1])
    second = Dropout(0.5, seed=3)
    second.set_rng_state(first.get_rng_state())
    later = fake_gpu.asnumpy(second.forward(x))
    third = Dropout(0.5, seed=3)
    third.set_rng_state({"device": "gpu", "seed": 3, "draws": 1})
    np.testing.assert_array_equal(fake_gpu.asnumpy(third.forward(x)), masks[1])
    assert not any(np.array_equal(later, m) for m in masks)
    with pytest.raises(ValueError, match="count of 'draws'"):
        third.set_rng_state({"device": "gpu", "seed": 3, "draws": -1})
    np.testing.assert_array_equal(fake_gpu.asnumpy(third.forward(x)), masks[2])  # unchanged


def test_a_host_checkpoints_generator_state_is_unchanged(rng):
    """On the host the state is NumPy's own dict, as before (old checkpoints still load)."""
    drop = Dropout(0.5, seed=3)
    drop.forward(rng.standard_normal((2, 3)))
    assert drop.get_rng_state()["bit_generator"] == "PCG64"


@pytest.mark.parametrize("family", sorted(SMALL))
def test_a_training_step_stays_within_its_synchronisation_budget(fake_gpu, tmp_path,
                                                                 monkeypatch, family):
    """No step waits for the device; the loop reads the losses once every log_interval
    steps (plus evaluation and checkpoints, which are not steps and are not counted)."""
    real_step, real_read = loop.train_step, loop._read_losses
    per_step, reads = [], []

    def counted_step(*args):
        before = len(fake_gpu.syncs)
        loss = real_step(*args)
        per_step.append(len(fake_gpu.syncs) - before)
        return loss

    def counted_read(unread, *args):
        before, pending = len(fake_gpu.syncs), len(unread)
        real_read(unread, *args)
        reads.append((pending, len(fake_gpu.syncs) - before)) if pending else None

    monkeypatch.setattr(loop, "train_step", counted_step)
    monkeypatch.setattr(loop, "_read_losses", counted_read)
    cfg = _config(tmp_path, block_size=SMALL[family].get("block_size", 8))
    run = loop.train(small_model(family), family, cfg, _ids()[:1000], _ids()[1000:],
                     log=lambda *_: None)
    assert len(run.train_losses) == cfg.max_iters
    assert max(per_step) <= STEP_BUDGET, fake_gpu.syncs.summary()
    assert all(n == 1 for _, n in reads), reads                    # one copy per read
    assert len(reads) <= cfg.max_iters // cfg.log_interval + cfg.max_iters // cfg.eval_interval


def test_a_bad_id_in_a_device_batch_is_named_as_on_the_host(fake_gpu, tmp_path):
    """The batch is checked on the host before it moves: the model's own message."""
    ids = _ids()
    ids[100:900] = 9                                               # outside the vocabulary
    with pytest.raises(ValueError, match=r"GPT.forward: idx holds token id 9"):
        loop.train(_gpt(), "gpt", _config(tmp_path), ids[:1000], _ids()[1000:],
                   log=lambda *_: None)


def test_a_diverged_device_run_names_the_first_bad_step(fake_gpu, tmp_path, monkeypatch):
    """On a device the loss is read a few steps late; the error still names its step."""
    real_step = loop.train_step

    def poisoning_step(model, optimizer, batcher, cfg, lr, xp, it):
        if it == 6:
            model.wte.data[...] = np.nan
        return real_step(model, optimizer, batcher, cfg, lr, xp, it)

    monkeypatch.setattr(loop, "train_step", poisoning_step)
    with pytest.raises(loop.NonFiniteLossError, match="at step 6"):
        _train(_gpt(), _config(tmp_path))
