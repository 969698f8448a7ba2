"""``tinylm bench seq2seq-twin``: the PyTorch twin trained on a run's own batches, schedule and
steps ends where the run ended (float32, dropout 0), and both are scored the same way."""

from __future__ import annotations

import argparse
import json
import random

import pytest

import tinylm.train.seq2seq_run as seq2seq_run
from tinylm.bench import seq2seq_twin
from tinylm.cli import main

WORDS = ("red", "green", "blue", "cat", "dog", "sun", "moon", "tree")


def word_copy_pairs(n: int = 500, seed: int = 0) -> list:
    """("w1 .. wk", "W1 .. Wk") for n distinct sequences of 3-6 words, each word translated
    to its upper case: BLEU is meaningful on it (many 4-grams), unlike single-token
    outputs."""
    r, seen = random.Random(seed), {}
    while len(seen) < n:
        words = [r.choice(WORDS) for _ in range(r.randint(3, 6))]
        seen[" ".join(words)] = " ".join(words).upper()
    return list(seen.items())


TINY_TRANSFORMER = ["--model", "n_embd=32", "--model", "n_head=2", "--model", "n_enc_layer=1",
                    "--model", "n_dec_layer=1", "--model", "max_len=10", "--model",
                    "dropout=0.0"]
TINY_RUN = ["--setting", "src_scheme=words", "--setting", "tgt_scheme=words", "--setting",
            "min_count=1", "--setting", "token_budget=512", "--setting", "lr=0.003",
            "--setting", "warmup_steps=10", "--setting", "lr_schedule=cosine", "--setting",
            "max_tokens=8", "--setting", "valid_fraction=0.1", "--setting",
            "test_fraction=0.1", "--setting", "max_minutes=0", "--progress", "false"]


@pytest.fixture
def reversal_run(tmp_path, monkeypatch):
    monkeypatch.setattr(seq2seq_run, "load_pairs", lambda name, reverse=False: word_copy_pairs())
    out = tmp_path / "run"
    assert main(["train", "seq2seq", "--preset", "cmn-eng", "--out-dir", str(out),
                 "--max-steps", "150", "--eval-interval", "50", *TINY_TRANSFORMER,
                 *TINY_RUN]) == 0
    return out


def test_the_twin_retraces_the_run_and_scores_alike(reversal_run, torch):
    args = argparse.Namespace(run=str(reversal_run), beam=1, limit=0, threads=1)
    result = seq2seq_twin.run(args)
    meta = json.loads((reversal_run / "ckpt.json").read_text())
    assert result["steps"] == 150 == meta["run"]["iteration"]
    assert result["metric"] == "bleu" and result["pairs"] > 0
    # same start, batches and schedule: the float32 trajectories stay together
    assert abs(result["tinylm_best_val_loss"] - result["torch_best_val_loss"]) < 2e-3
    assert abs(result["difference"]) <= 2.0
    first = meta["run"]["evals"][0]["val_loss"]
    assert result["tinylm_best_val_loss"] < first          # it learned, so the runs moved


def test_a_recurrent_run_is_refused(tmp_path, monkeypatch, torch):
    monkeypatch.setattr(seq2seq_run, "load_pairs", lambda name, reverse=False: word_copy_pairs())
    out = tmp_path / "rnn"
    assert main(["train", "seq2seq", "--preset", "addition", "--out-dir", str(out),
                 "--max-steps", "2", "--model", "n_embd=8", "--model", "n_hidden=8",
                 "--setting", "max_tokens=40", "--progress", "false"]) == 0
    with pytest.raises(ValueError, match="'rnn' run"):
        seq2seq_twin.run(argparse.Namespace(run=str(out), beam=1, limit=0, threads=1))
