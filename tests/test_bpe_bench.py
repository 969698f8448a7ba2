"""``tinylm bench tokenizer`` runs at a toy size and reports both comparisons and the table."""

from __future__ import annotations

import json

from tinylm.cli import main


def test_bench_tokenizer_reports_training_encoding_and_bytes_per_token(capsys):
    assert main(["bench", "tokenizer", "--chars", "20000", "--vocab-size", "2000",
                 "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tinylm_train_s"] > 0 and result["tinylm_encode_mb_per_s"] > 0
    assert {"hf_train_s", "train_ratio", "tiktoken_encode_mb_per_s", "encode_ratio"} <= set(result)
    if result["tiktoken_version"] is not None:
        assert result["ids_equal_tiktoken"] is True
    table = result["bytes_per_token"]
    assert set(table) == {"char", "word", "wordpiece-2000", "bpe-2000", "gpt2", "cl100k"}
    assert all(set(row) == {"english", "chinese", "code"} for row in table.values())
    assert table["char"]["english"] == 1.0 and table["gpt2"]["english"] > 2
