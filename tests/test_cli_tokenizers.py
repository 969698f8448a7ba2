"""``tinylm tokenize`` and ``tinylm train-tokenizer``: a few small cases and bad input."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
from tinylm.data.datasets import dataset_path
from tinylm.data.tokenizers import load_tokenizer


@pytest.fixture(scope="module", autouse=True)
def openai_files():
    for name in ("gpt2.tiktoken", "cl100k.tiktoken"):
        try:
            dataset_path(name, download_missing=False)
        except FileNotFoundError as error:
            pytest.skip(f"{name!r} is not available offline: {error}")


def test_tokenize_prints_ids_tokens_and_boundaries(capsys):
    status, out, err = run_cli(["tokenize", "This is some text"], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert "4 tokens, 17 bytes" in lines[0]
    assert lines[2].split() == ["0", "1212", "0-4", "'This'"]
    assert lines[5].split() == ["3", "2420", "12-17", "'", "text'"]
    assert lines[-1] == "boundaries: This| is| some| text"


def test_tokenize_json_prints_only_the_ids(capsys, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("<|endoftext|>hi\n", encoding="utf-8")
    status, out, _ = run_cli(["tokenize", "--tokenizer", "cl100k", "--file", str(path),
                              "--json", "--allowed-special", "all"], capsys)
    assert status == 0 and json.loads(out) == [100257, 6151, 198]


def test_tokenize_shows_a_cut_character_as_bytes(capsys):
    status, out, _ = run_cli(["tokenize", "文"], capsys)
    assert status == 0 and "b'\\xe6\\x96'" in out and "0-2" in out


@pytest.mark.parametrize("argv, message", [
    (["tokenize", "<|endoftext|>"], "--allowed-special TOKEN"),
    (["tokenize"], "not neither"),
    (["tokenize", "x", "--file", "f.txt"], "not both"),
    (["tokenize", "x", "--tokenizer", "gpt5"], "neither an OpenAI encoding"),
    (["tokenize", "x", "--allowed-special", "<|fim|>"], "not special tokens of this"),
])
def test_tokenize_bad_input_is_named(capsys, argv, message):
    status, _, err = run_cli(argv, capsys)
    assert status == 1 and message in err, err


def test_train_tokenizer_bpe_and_wordpiece(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("low lower lowest newer newest wider <|end|>\n" * 50, encoding="utf-8")
    out_path = tmp_path / "bpe.json"
    status, out, err = run_cli(["train-tokenizer", "--corpus", str(corpus), "--vocab-size",
                                "280", "--kind", "bpe", "--out", str(out_path),
                                "--special", "<|end|>"], capsys)
    assert status == 0, err
    assert "wrote" in out and "bytes a token" in out
    bpe = load_tokenizer(out_path)
    assert bpe.type_name == "bpe" and bpe.special_tokens == {"<|end|>": bpe.vocab_size - 1}
    assert bpe.decode(bpe.encode(" lowest newer")) == " lowest newer"
    status, out, _ = run_cli(["tokenize", "--tokenizer", str(out_path), " lowest"], capsys)
    assert status == 0 and "1 tokens" in out

    out_path = tmp_path / "wp.json"
    status, _, err = run_cli(["train-tokenizer", "--corpus", str(corpus), "--vocab-size",
                              "60", "--kind", "wordpiece", "--out", str(out_path)], capsys)
    assert status == 0, err
    assert load_tokenizer(out_path).type_name == "wordpiece"
    status, out, _ = run_cli(["tokenize", "--tokenizer", str(out_path), "lowest"], capsys)
    assert status == 0 and "boundaries: " in out


def test_train_tokenizer_on_a_registered_dataset(capsys, tmp_path):
    out_path = tmp_path / "bpe.json"
    status, out, err = run_cli(["train-tokenizer", "--corpus", "tinyshakespeare",
                                "--vocab-size", "300", "--kind", "bpe", "--pattern", "gpt4",
                                "--out", str(out_path)], capsys)
    assert status == 0, err
    assert load_tokenizer(out_path).vocab_size == 300


@pytest.mark.parametrize("argv, status, message", [
    (["--corpus", "nowhere.txt", "--vocab-size", "300", "--kind", "bpe"], 1,
     "neither a registered dataset nor a file"),
    (["--corpus", "CORPUS", "--vocab-size", "100", "--kind", "bpe"], 1,
     "needs vocab_size >= 256"),
    (["--corpus", "CORPUS", "--vocab-size", "300", "--kind", "wordpiece", "--pattern", "gpt2"],
     1, "--pattern and --special are for --kind bpe"),
    (["--corpus", "CORPUS", "--vocab-size", "300", "--kind", "bpe", "--min-frequency", "2"],
     1, "--min-frequency is for --kind wordpiece"),
    (["--corpus", "CORPUS", "--vocab-size", "0", "--kind", "bpe"], 2, "must be an integer"),
    (["--corpus", "CORPUS", "--vocab-size", "300", "--kind", "unigram"], 2, "invalid choice"),
])
def test_train_tokenizer_bad_input_is_named(capsys, tmp_path, argv, status, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n", encoding="utf-8")
    argv = [str(corpus) if a == "CORPUS" else a for a in argv]
    result = run_cli(["train-tokenizer", *argv, "--out", str(tmp_path / "t.json")], capsys)
    assert result[0] == status and message in result[2], result[2]


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """``tinylm tokenize --file BIG | head -1``: the closed pipe ends the command quietly."""
    import subprocess
    import sys

    text = tmp_path / "long.txt"
    text.write_text("to be or not to be\n" * 20000, encoding="utf-8")
    done = subprocess.run(f"'{sys.executable}' -m tinylm tokenize --tokenizer gpt2 --file "
                          f"'{text}' | head -1", shell=True, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.startswith("gpt2: ")
    assert done.stderr == ""
