"""Hugging Face tokenizer files written by tinylm (tinylm/interop/hf_tokenizer.py), with
transformers as the oracle: ``AutoTokenizer.from_pretrained(DIR)`` on what tinylm wrote gives
tinylm's ids and text back -- for a BPE trained here, OpenAI's GPT-2 (whose merges.txt is then
GPT-2's own vocab.bpe, line for line) and a WordPiece; the tokenizers Hugging Face has no class
for get no files and a reason; ``tinylm export-hf`` writes the files and removes stale ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import run_cli
from tinylm.cli import main
from tinylm.data.bpe import GPT4_SPLIT_PATTERN, BPETokenizer
from tinylm.data.datasets import dataset_path, load_text
from tinylm.data.openai_bpe import OpenAIBPETokenizer
from tinylm.data.tokenizers import CharTokenizer
from tinylm.data.wordpiece import WordPieceTokenizer
from tinylm.interop.hf_tokenizer import hf_tokenizer_files, printable

transformers = pytest.importorskip("transformers")

SAMPLES = ["The Time Traveller (for so it will be convenient to speak of him)",
           "  leading spaces,\ttabs\n\n\nand blank lines   ", "digits 1234567 and 3.14159",
           "naïve café, 你好世界, emoji 🙂🚀", "x"]


def _write(files: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _hf(tokenizer, folder: Path):
    files, reason = hf_tokenizer_files(tokenizer, model_max_length=64)
    assert reason is None
    return transformers.AutoTokenizer.from_pretrained(_write(files, folder))


def test_printable_is_gpt2s_spelling():
    assert printable(b" the") == "Ġthe" and printable(b"\n") == "Ċ"


def test_a_bpe_trained_here_encodes_in_transformers_to_the_same_ids(tmp_path):
    text = load_text("timemachine")
    tinylm_bpe = BPETokenizer.train(text[:20_000], vocab_size=400)
    theirs = _hf(tinylm_bpe, tmp_path / "bpe")
    assert len(theirs) == tinylm_bpe.vocab_size
    for sample in SAMPLES + [text[100_000:104_000]]:
        ids = tinylm_bpe.encode(sample).tolist()
        assert theirs.encode(sample) == ids, sample
        assert theirs.decode(ids) == sample


def test_gpt2s_files_come_out_as_openai_published_them(tmp_path):
    gpt2 = OpenAIBPETokenizer("gpt2")
    files, _ = hf_tokenizer_files(gpt2, model_max_length=1024)
    published = dataset_path("gpt2.merges").read_text(encoding="utf-8").splitlines()
    written = files["merges.txt"].splitlines()
    assert written[1:] == [line for line in published[1:] if line]        # 50,000 merges
    theirs = _hf(gpt2, tmp_path / "gpt2")
    assert theirs.convert_tokens_to_ids("<|endoftext|>") == 50256
    for sample in SAMPLES + [load_text("tinyshakespeare")[:3000]]:
        assert theirs.encode(sample) == gpt2.encode(sample).tolist(), sample


def test_a_wordpiece_encodes_in_transformers_to_the_same_ids(tmp_path):
    lines = load_text("timemachine").splitlines()[:2000]
    wordpiece = WordPieceTokenizer.train(lines, vocab_size=800)
    theirs = _hf(wordpiece, tmp_path / "wordpiece")
    assert type(theirs).__name__.startswith("Bert")
    for sample in SAMPLES[:4] + lines[2000:2040]:
        assert theirs.encode(sample, add_special_tokens=False) == \
            wordpiece.encode(sample).tolist(), sample


@pytest.mark.parametrize("tokenizer, reason", [
    (CharTokenizer.from_text("abc"), "no tokenizer class for tinylm's 'char'"),
    (BPETokenizer.train("some text to learn from", vocab_size=260,
                        pattern=GPT4_SPLIT_PATTERN), "another pattern than GPT-2's"),
])
def test_tokenizers_without_a_hugging_face_class_get_a_reason(tokenizer, reason):
    files, why = hf_tokenizer_files(tokenizer, model_max_length=64)
    assert files == {} and reason in why


@pytest.fixture
def bpe_run(tmp_path):
    assert main(["train", "gpt", "--preset", "shakespeare-bpe-cpu", "--dataset", "timemachine",
                 "--subword-vocab-size", "300", "--max-iters", "2", "--eval-interval", "2",
                 "--progress", "false", "--out-dir", str(tmp_path / "run"), "--model",
                 "n_layer=1", "--model", "n_embd=16", "--model", "n_head=2"]) == 0
    return tmp_path / "run"


def test_export_hf_writes_the_tokenizer_files_and_removes_stale_ones(bpe_run, tmp_path,
                                                                     capsys):
    status, out, err = run_cli(["export-hf", str(bpe_run), str(tmp_path / "hf")], capsys)
    assert status == 0 and "vocab.json, merges.txt" in out, err
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert theirs.model_max_length == 64
    status, _, err = run_cli(["train", "gpt", "--preset", "shakespeare-char-cpu", "--dataset",
                              "timemachine", "--max-iters", "1", "--eval-interval", "1",
                              "--progress", "false", "--out-dir", str(tmp_path / "chars"),
                              "--model", "n_layer=1", "--model", "n_embd=16", "--model",
                              "n_head=2"], capsys)
    assert status == 0, err
    status, out, err = run_cli(["export-hf", str(tmp_path / "chars"), str(tmp_path / "hf"),
                                "--overwrite"], capsys)
    assert status == 0 and "note: no Hugging Face tokenizer files" in out, err
    assert not (tmp_path / "hf" / "vocab.json").exists()
    assert not (tmp_path / "hf" / "merges.txt").exists()
