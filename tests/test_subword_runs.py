"""Language-model runs on subword tokens (TrainConfig.tokenizer "bpe", "gpt2", "cl100k"):
the text is split before it is encoded, a BPE learns its merges from the training part only,
``tinylm eval`` reports nats per character, and an imported GPT-2 records its tokenizer."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
from tinylm.cli import main
from tinylm.data import CharTokenizer, WordTokenizer, load_text
from tinylm.data.bpe import BPETokenizer
from tinylm.data.openai_bpe import OpenAIBPETokenizer
from tinylm.data.wordpiece import WordPieceTokenizer
from tinylm.train.config import TrainConfig
from tinylm.train.setup import make_tokenizer, prepare_data, tokenizer_kind

DATASET = "timemachine"


@pytest.fixture(scope="module")
def bpe_data():
    return prepare_data(TrainConfig(dataset=DATASET, tokenizer="bpe", subword_vocab_size=300))


def test_a_bpe_run_learns_its_merges_from_the_training_text_only(bpe_data):
    text = load_text(DATASET)
    cut = int(len(text) * 0.9)
    expected = BPETokenizer.train(text[:cut], vocab_size=300)
    assert bpe_data.tokenizer.vocab_size == 300
    assert bpe_data.tokenizer.merges == expected.merges
    assert bpe_data.tokenizer.decode(bpe_data.train) == text[:cut]
    assert bpe_data.tokenizer.decode(bpe_data.val) == text[cut:]


def test_subword_and_character_runs_are_scored_on_the_same_characters(bpe_data):
    chars = prepare_data(TrainConfig(dataset=DATASET, tokenizer="char"))
    assert chars.tokenizer.decode(chars.val) == bpe_data.tokenizer.decode(bpe_data.val)
    assert len(bpe_data.val) < len(chars.val)           # merges make the stream shorter


def test_make_tokenizer_builds_every_kind():
    text = "the cat sat on the mat. the cat ate."
    assert isinstance(make_tokenizer("char", text), CharTokenizer)
    assert isinstance(make_tokenizer("word", text), WordTokenizer)
    assert make_tokenizer("bpe", text, subword_vocab_size=260).vocab_size == 260
    assert make_tokenizer("gpt2", text).vocab_size == 50257
    assert make_tokenizer("cl100k", text).name == "cl100k"


def test_tokenizer_kind_names_what_a_run_records():
    text = "the cat sat on the mat"
    assert tokenizer_kind(OpenAIBPETokenizer("gpt2")) == "gpt2"
    assert tokenizer_kind(BPETokenizer.train(text, vocab_size=260)) == "bpe"
    assert tokenizer_kind(CharTokenizer.from_text(text)) == "char"
    wordpiece = WordPieceTokenizer.train([text], vocab_size=60)
    with pytest.raises(ValueError, match="'wordpiece'.*--tokenizer PATH"):
        tokenizer_kind(wordpiece)


@pytest.mark.parametrize("setting, message", [
    ({"tokenizer": "sentencepiece"}, "tokenizer .*'bpe', 'gpt2', 'cl100k'"),
    ({"subword_vocab_size": 100}, "subword_vocab_size .* >= 256"),
])
def test_bad_tokenizer_settings_are_refused_by_name(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bpe-run")
    status = main(["train", "gpt", "--preset", "shakespeare-bpe-cpu", "--dataset", DATASET,
                   "--subword-vocab-size", "300", "--max-iters", "6", "--eval-interval", "3",
                   "--progress", "false", "--out-dir", str(out), "--model", "n_layer=1",
                   "--model", "n_embd=32", "--model", "n_head=2"])
    assert status == 0
    return out


def test_a_bpe_gpt_run_trains_evaluates_per_character_and_generates(bpe_run, capsys):
    meta = json.loads((bpe_run / "ckpt.json").read_text())
    assert meta["train_config"]["tokenizer"] == "bpe"
    assert meta["provenance"]["tokenizer"]["type"] == "bpe"
    status, out, err = run_cli(["eval", str(bpe_run)], capsys)
    assert status == 0, err
    per_token, per_char = out.splitlines()[:2]
    loss = float(per_token.split("loss ")[1].split()[0])
    tokens = int(per_token.split("over ")[1].split()[0].replace(",", ""))
    nats_per_char = float(per_char.split("= ")[1].split()[0])
    characters = int(per_char.split("over ")[1].split()[0].replace(",", ""))
    assert nats_per_char == pytest.approx(loss * tokens / characters, rel=1e-3)
    status, out, err = run_cli(["generate", str(bpe_run), "--prompt", "The Time",
                                "--max-new-tokens", "5", "--seed", "0"], capsys)
    assert status == 0 and out.startswith("The Time"), err


def test_a_bpe_gpt_run_resumes_with_its_own_merges(bpe_run, capsys):
    before = json.loads((bpe_run / "ckpt.json").read_text())["provenance"]["tokenizer"]
    status, _, err = run_cli(["train", "gpt", "--resume", "--out-dir", str(bpe_run),
                              "--max-iters", "9", "--progress", "false"], capsys)
    assert status == 0, err
    meta = json.loads((bpe_run / "ckpt.json").read_text())
    assert meta["run"]["iteration"] == 9
    assert meta["provenance"]["tokenizer"] == before
