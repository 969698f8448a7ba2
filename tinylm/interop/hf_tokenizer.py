"""The tokenizer files Hugging Face reads, written beside an exported model (chapter 02).

    files, reason = hf_tokenizer_files(tokenizer, model_max_length)   # {name: text}

* A byte-level BPE split with GPT-2's pattern -- one trained by tinylm with the default
  pattern (tinylm/data/bpe.py) or OpenAI's GPT-2 (tinylm/data/openai_bpe.py):
  ``vocab.json`` {token: id}, each token's bytes written in GPT-2's printable characters
  (``bytes_to_unicode``: the space is "Ġ"); ``merges.txt``, the merges in priority order
  after a "#version: 0.2" line, each as its two parts in the same characters; and
  ``tokenizer_config.json`` naming GPT2Tokenizer. ``transformers.AutoTokenizer.
  from_pretrained(DIR)`` then gives tinylm's ids (tests/test_interop_hf_tokenizer.py).
* WordPiece (tinylm/data/wordpiece.py): ``vocab.txt``, one token a line in id order, and
  ``tokenizer_config.json`` naming BertTokenizer with the run's lower-casing and accent
  stripping.

The others have no Hugging Face twin -- characters and words (no such tokenizer class), a BPE
with another split pattern such as cl100k's (GPT2Tokenizer always splits with GPT-2's) --
and ``reason`` says so; the run's own tinylm JSON travels beside the weights either way.
"""

from __future__ import annotations

import json

from tinylm.data.bpe import GPT2_SPLIT_PATTERN
from tinylm.data.openai_bpe import ENDOFTEXT, bytes_to_unicode

MERGES_HEADER = "#version: 0.2"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json")


def printable(token: bytes) -> str:
    """A token's bytes in GPT-2's printable characters (b" the" -> "Ġthe")."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


def _bpe_vocabulary(tokenizer) -> dict:
    """{printable token: id} for every id; two ids with the same bytes cannot both have a
    name in vocab.json, so that is an error naming them."""
    vocab, special_ids = {}, set(tokenizer.special_tokens.values())
    for index in range(tokenizer.vocab_size):
        if index in special_ids:
            continue
        name = printable(tokenizer.token_bytes(index))
        if name in vocab:
            raise ValueError(f"tokens {vocab[name]} and {index} are the same bytes ({name!r}); "
                             "vocab.json maps each string to one id.")
        vocab[name] = index
    vocab.update(tokenizer.special_tokens)
    return vocab


def _ordered_merges(tokenizer) -> list:
    """(a, b) pairs in priority order: a tinylm BPE's list, or OpenAI's {pair: rank}."""
    merges = tokenizer.merges
    if isinstance(merges, dict):
        return [pair for pair, _ in sorted(merges.items(), key=lambda item: item[1])]
    return list(merges)


def bpe_files(tokenizer, model_max_length: int) -> dict:
    """vocab.json, merges.txt and tokenizer_config.json of a GPT-2-pattern byte-level BPE."""
    lines = [MERGES_HEADER] + [f"{printable(tokenizer.token_bytes(a))} "
                               f"{printable(tokenizer.token_bytes(b))}"
                               for a, b in _ordered_merges(tokenizer)]
    end = ENDOFTEXT if ENDOFTEXT in tokenizer.special_tokens else None
    config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False,
              "model_max_length": model_max_length, "bos_token": end, "eos_token": end,
              "unk_token": end, "pad_token": None}
    extra = [t for t in tokenizer.special_tokens if t != ENDOFTEXT]
    if extra:
        config["additional_special_tokens"] = extra
    return {"vocab.json": _json(_bpe_vocabulary(tokenizer)), "merges.txt": "\n".join(lines) + "\n",
            "tokenizer_config.json": _json(config)}


def wordpiece_files(tokenizer, model_max_length: int) -> dict:
    """vocab.txt and tokenizer_config.json of a WordPiece vocabulary (BERT's files)."""
    specials = dict(unk_token=tokenizer.unk, **{f"{name}_token": token for name, token in
                    (("pad", "[PAD]"), ("cls", "[CLS]"), ("sep", "[SEP]"), ("mask", "[MASK]"))
                    if token in tokenizer.specials})
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.lowercase,
              "strip_accents": tokenizer.strip_accents, "tokenize_chinese_chars": True,
              "model_max_length": model_max_length, **specials}
    return {"vocab.txt": "\n".join(tokenizer.vocab.tokens) + "\n",
            "tokenizer_config.json": _json(config)}


def hf_tokenizer_files(tokenizer, model_max_length: int) -> tuple[dict, str | None]:
    """({file name: text}, None) for a tokenizer Hugging Face has a class for, else
    ({}, the reason it has none)."""
    kind = tokenizer.type_name
    if kind == "wordpiece":
        return wordpiece_files(tokenizer, model_max_length), None
    if kind in ("bpe", "openai_bpe") and tokenizer.pattern == GPT2_SPLIT_PATTERN:
        return bpe_files(tokenizer, model_max_length), None
    if kind in ("bpe", "openai_bpe"):
        return {}, ("its BPE splits text with another pattern than GPT-2's, and "
                    "GPT2Tokenizer always uses GPT-2's")
    return {}, f"Hugging Face has no tokenizer class for tinylm's {kind!r} tokenizer"
