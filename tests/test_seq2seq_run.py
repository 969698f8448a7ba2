"""Sequence-to-sequence runs from the command line: the pair tokens, the batches and the
learning rate, then a tiny ``tinylm train seq2seq`` (a string-reversal task made here, in
place of the dataset) that learns, resumes exactly, translates, evaluates and draws its
attention, and the mistakes a user can make (each a one-line error)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

import tinylm.train.seq2seq_run as seq2seq_run
from cli_helpers import run_cli
from tinylm.cli import main
from tinylm.data.pair_tokens import (SPECIALS, UNK_ID, SideVocabulary, join_word_tokens,
                                     word_tokens)
from tinylm.train.seq2seq_run import (evaluation_batches, lr_at, prepare_pairs,
                                      seq2seq_settings, training_batches)
from tinylm.train.translator import load_translator

TINY_MODEL = ["--model", "n_embd=16", "--model", "n_hidden=32"]
TINY_RUN = ["--setting", "token_budget=256", "--setting", "lr=0.01", "--setting",
            "lr_schedule=constant", "--setting", "warmup_steps=10", "--setting",
            "max_tokens=8", "--setting", "valid_fraction=0.1", "--progress", "false"]


def reversal_pairs(n: int = 600, seed: int = 0) -> list:
    """(s, s reversed) for n distinct strings of 2-4 letters of "abcdef"."""
    r, seen = random.Random(seed), {}
    while len(seen) < n:
        s = "".join(r.choice("abcdef") for _ in range(r.randint(2, 4)))
        seen[s] = s[::-1]
    return list(seen.items())


# -- tokens and vocabularies --------------------------------------------------------------
def test_word_tokens_mark_spaces_and_split_punctuation():
    assert word_tokens("I'm here.") == ["\u2581I", "'", "m", "\u2581here", "."]
    assert join_word_tokens(word_tokens("I'm here.")) == "I'm here."


def test_word_tokens_round_trip_on_varied_text():
    r = random.Random(1)
    alphabet = "abcXYZ éàç汉字0123456789.,!?'\"-:;()«»"
    for _ in range(500):
        text = " ".join("".join(r.choice(alphabet) for _ in range(r.randint(1, 6))).strip()
                        or "x" for _ in range(r.randint(1, 8)))
        text = " ".join(text.split())                           # single spaces between chunks
        assert join_word_tokens(word_tokens(text)) == text


def test_a_vocabulary_decodes_what_it_encodes_and_marks_unknown_words():
    side = SideVocabulary.build(["I'm here.", "You're here!"], "words")
    assert side.vocab.tokens[:4] == list(SPECIALS)
    assert side.decode(side.encode("I'm here!")) == "I'm here!"
    assert side.encode("I'm there.")[3] == UNK_ID
    assert side.unknown_words("I'm there, there.") == ["\u2581there", ","]
    assert SideVocabulary.from_dict(json.loads(json.dumps(side.to_dict()))).vocab.tokens == \
        side.vocab.tokens
    with pytest.raises(ValueError, match="U\\+2581"):
        word_tokens("a \u2581 b")


def test_the_vocabularies_come_from_the_training_split_only():
    pairs = reversal_pairs(600)
    settings = seq2seq_settings({"valid_fraction": 0.1, "test_fraction": 0.1})
    data = prepare_pairs(settings, pairs=[*pairs, ("zz", "yy")])
    held_out = data.valid + data.test
    train_chars = set("".join(s for s, _ in data.train))
    assert set(data.source.vocab.tokens[4:]) == train_chars
    if ("zz", "yy") in held_out:
        assert "z" not in data.source.vocab and "y" not in data.target.vocab


# -- batches and the learning rate --------------------------------------------------------
def test_batches_are_a_pure_function_of_seed_and_epoch_and_cover_every_pair_once():
    r = random.Random(2)
    src = [r.randint(1, 12) for _ in range(700)]
    tgt = [r.randint(1, 12) for _ in range(700)]
    first = training_batches(src, tgt, 200, seed=3, epoch=0)
    assert [b.tolist() for b in first] == [b.tolist() for b in
                                           training_batches(src, tgt, 200, seed=3, epoch=0)]
    other = training_batches(src, tgt, 200, seed=3, epoch=1)
    assert [b.tolist() for b in first] != [b.tolist() for b in other]
    assert len(first) == len(other)                         # the same batches per epoch
    for batches in (first, other, evaluation_batches(src, tgt, 200)):
        assert sorted(np.concatenate(batches).tolist()) == list(range(700))
        for b in batches:
            cost = len(b) * (max(src[i] for i in b) + max(tgt[i] for i in b) + 1)
            assert cost <= 200 or len(b) == 1


def test_learning_rate_schedules():
    s = seq2seq_settings({"lr": 1e-3, "warmup_steps": 100, "lr_schedule": "inverse_sqrt"})
    assert lr_at(0, s) == pytest.approx(1e-5) and lr_at(99, s) == pytest.approx(1e-3)
    assert lr_at(399, s) == pytest.approx(1e-3 * math.sqrt(100 / 400))
    s = seq2seq_settings({"lr": 1e-3, "warmup_steps": 10, "lr_schedule": "cosine",
                          "min_lr": 1e-4, "max_steps": 110})
    assert lr_at(60, s) == pytest.approx(1e-4 + 0.5 * 9e-4) and lr_at(500, s) == 1e-4
    s = seq2seq_settings({"lr": 2e-3, "warmup_steps": 4, "lr_schedule": "constant"})
    assert [lr_at(i, s) for i in (0, 3, 1000)] == pytest.approx([5e-4, 2e-3, 2e-3])


# -- a run from the command line ----------------------------------------------------------
@pytest.fixture
def reversal_data(monkeypatch):
    """``load_pairs`` of the run gives the reversal task, whatever the dataset name."""
    monkeypatch.setattr(seq2seq_run, "load_pairs", lambda name, reverse=False: reversal_pairs())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run of 120 steps (with its own patch: module-scoped)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(seq2seq_run, "load_pairs", lambda name, reverse=False: reversal_pairs())
    out = tmp_path_factory.mktemp("seq2seq") / "run"
    try:
        assert main(["train", "seq2seq", "--preset", "addition", "--out-dir", str(out),
                     "--max-steps", "120", "--eval-interval", "60", *TINY_MODEL,
                     *TINY_RUN]) == 0
    finally:
        patch.undo()
    return out


def test_a_run_learns_and_eval_prints_exact_match(trained, reversal_data, capsys):
    meta = json.loads((trained / "ckpt.json").read_text())
    assert meta["model"] == "seq2seq" and meta["run"]["iteration"] == 120
    assert meta["provenance"]["vocab"]["source"]["scheme"] == "chars"
    assert [e["iter"] for e in meta["run"]["evals"]] == [60, 120]
    assert (trained / "loss.png").exists()
    status, out, _ = run_cli(["eval", str(trained), "--split", "val"], capsys)
    assert status == 0 and out.startswith("val: exact match")
    assert float(out.split()[3]) >= 80.0


def test_translate_prints_and_names_unknown_characters(trained, capsys):
    status, out, err = run_cli(["translate", str(trained), "abc", "fed", "--beam", "3"], capsys)
    assert status == 0 and len(out.splitlines()) == 2
    status, out, err = run_cli(["translate", str(trained), "abz"], capsys)
    assert status == 0 and "'z'" in err and "<unk>" in err


def test_attention_png_is_written(trained, tmp_path, capsys):
    png = tmp_path / "att.png"
    status, _, _ = run_cli(["translate", str(trained), "abcd", "--attention-png", str(png)], capsys)
    assert status == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sentence, message", [("  ", "empty"),
                                               ("abcdefabc", "max_tokens=8")])
def test_bad_sentences_are_refused(trained, sentence, message, capsys):
    status, _, err = run_cli(["translate", str(trained), sentence], capsys)
    assert status == 1 and message in err


def test_a_trained_run_is_kept_unless_resumed_or_overwritten(trained, reversal_data, capsys):
    status, _, err = run_cli(["train", "seq2seq", "--preset", "addition", "--out-dir",
                              str(trained), "--max-steps", "1"], capsys)
    assert status == 1 and "--resume" in err and "--overwrite" in err
    status, _, err = run_cli(["train", "seq2seq", "--preset", "addition", "--out-dir",
                              str(trained), "--resume", "--setting", "min_count=2"], capsys)
    assert status == 1 and "cannot change min_count" in err


def test_resume_continues_exactly(tmp_path, reversal_data):
    def train(out, steps, *extra):
        assert main(["train", "seq2seq", "--preset", "addition", "--out-dir", str(out),
                     "--max-steps", str(steps), "--eval-interval", "10", *extra, *TINY_RUN,
                     *([] if "--resume" in extra else TINY_MODEL)]) == 0

    train(tmp_path / "straight", 20)
    train(tmp_path / "resumed", 10)
    train(tmp_path / "resumed", 20, "--resume")
    a = load_translator(tmp_path / "straight").model.state_dict()
    b = load_translator(tmp_path / "resumed").model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_translation_run_is_scored_by_bleu(tmp_path, reversal_data, capsys):
    out = tmp_path / "bleu"
    assert main(["train", "seq2seq", "--preset", "addition", "--out-dir", str(out),
                 "--max-steps", "5", "--setting", "dataset=fra-eng", "--setting",
                 "tgt_scheme=words", *TINY_MODEL, *TINY_RUN]) == 0
    capsys.readouterr()
    status, out_text, _ = run_cli(["eval", str(out), "--split", "test", "--limit", "20"], capsys)
    assert status == 0 and out_text.startswith("test: BLEU ") and "over 20 sentences" in out_text


@pytest.mark.parametrize("argv, message", [
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["--preset", "ptb-small"], "is for model 'lstm'"),
    (["--preset", "addition", "--batch-size", "8"], "--batch-size does not apply to seq2seq"),
    (["--preset", "addition", "--setting", "beam=3"], "beam is not a seq2seq setting"),
    (["--preset", "addition", "--setting", "family=lstm"], "family='lstm' must be one of"),
    (["--preset", "addition", "--model", "src_vocab=3"], "src_vocab cannot be set"),
])
def test_bad_training_settings_are_one_line_errors(argv, message, tmp_path, reversal_data,
                                                  capsys):
    status, _, err = run_cli(["train", "seq2seq", "--out-dir", str(tmp_path / "x"), *argv],
                             capsys)
    assert status == 1 and message in err, err
    assert not (tmp_path / "x").exists()


def test_seq2seq_flags_are_refused_for_language_models(capsys):
    status, _, err = run_cli(["train", "gpt", "--max-steps", "3"], capsys)
    assert status == 1 and "--max-steps applies to `tinylm train seq2seq` only" in err
