"""tinylm.data.openai_bpe: GPT-2 (r50k_base) and cl100k_base ids equal to tiktoken's.

tiktoken (a test-only oracle) builds its encoders offline from the same registered files,
with the pattern and special tokens of ``tiktoken_ext/openai_public.py`` -- read from that
module itself, its downloads pointed at the local files. Equality is checked on Tiny
Shakespeare (whole), both sides of the English-Chinese pairs, Chinese poems, emoji, digit
and white-space runs, random byte strings decoded with errors="replace", random Unicode and
lone surrogates; decode(encode(s)) == s on many random strings; the files' parsers against
each other (vocab.bpe's ranks are r50k's, its merges the ones reconstructed from the ranks)
and on corrupt or truncated copies; special tokens, JSON, bad ids.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

from tinylm.data.bpe import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN
from tinylm.data.datasets import dataset_path, load_text
from tinylm.data.openai_bpe import (ENCODINGS, OpenAIBPETokenizer, bytes_to_unicode,
                                    merges_from_ranks, read_gpt2_merges, read_tiktoken_ranks)
from tinylm.data.poetry import read_poem_file
from tinylm.data.tokenizers import load_tokenizer, tokenizer_from_dict

TIKTOKEN_NAMES = {"gpt2": "r50k_base", "cl100k": "cl100k_base"}


def _path(dataset):
    try:
        return dataset_path(dataset, download_missing=False)
    except FileNotFoundError as error:
        pytest.skip(f"{dataset!r} is not available offline: {error}")


@pytest.fixture(scope="module")
def openai_public():
    """tiktoken's own definitions (``r50k_base()``, ``cl100k_base()``), loading the local
    files instead of downloading."""
    pytest.importorskip("tiktoken")
    from tiktoken import load
    from tiktoken_ext import openai_public as module

    local = {f"{TIKTOKEN_NAMES[name]}.tiktoken": _path(e.dataset) for name, e in ENCODINGS.items()}

    def from_local_file(url, expected_hash=None):
        return load.load_tiktoken_bpe(str(local[url.rsplit("/", 1)[-1]]), expected_hash)

    patch = pytest.MonkeyPatch()
    patch.setattr(module, "load_tiktoken_bpe", from_local_file)
    definitions = {name: getattr(module, tiktoken_name)()
                   for name, tiktoken_name in TIKTOKEN_NAMES.items()}
    patch.undo()
    return definitions


@pytest.fixture(scope="module")
def tiktoken_encoders(openai_public):
    import tiktoken
    return {name: tiktoken.Encoding(name, pat_str=d["pat_str"],
                                    mergeable_ranks=d["mergeable_ranks"],
                                    special_tokens=d["special_tokens"])
            for name, d in openai_public.items()}


@pytest.fixture(scope="module")
def ours():
    for encoding in ENCODINGS.values():
        _path(encoding.dataset)
    return {name: OpenAIBPETokenizer(name) for name in ENCODINGS}


def test_patterns_and_special_tokens_are_tiktokens(openai_public):
    assert openai_public["gpt2"]["pat_str"] == GPT2_SPLIT_PATTERN == ENCODINGS["gpt2"].pattern
    assert openai_public["cl100k"]["pat_str"] == GPT4_SPLIT_PATTERN == ENCODINGS["cl100k"].pattern
    for name, definition in openai_public.items():
        assert ENCODINGS[name].special_tokens == definition["special_tokens"]
    assert ENCODINGS["cl100k"].special_tokens == {
        "<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


def test_the_ranks_are_tiktokens(openai_public):
    for name, definition in openai_public.items():
        assert read_tiktoken_ranks(_path(ENCODINGS[name].dataset)) == definition["mergeable_ranks"]


def test_the_known_example(ours):
    assert ours["gpt2"].encode("This is some text").tolist() == [1212, 318, 617, 2420]
    assert ours["gpt2"].vocab_size == 50257 and ours["cl100k"].vocab_size == 100277


# -- ids equal to tiktoken's -----------------------------------------------------------------------
def _texts():
    shakespeare = load_text("tinyshakespeare", download_missing=False)
    pairs = [line.split("\t") for line in
             load_text("cmn-eng", download_missing=False).splitlines()[:6000]]
    poems = "\n".join(poem.text for poem in read_poem_file("tangshi300"))
    rng = random.Random(11)
    random_bytes = [bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
                    .decode("utf-8", errors="replace") for _ in range(300)]
    return {
        "tinyshakespeare": shakespeare,
        "cmn-eng English": "\n".join(p[0] for p in pairs),
        "cmn-eng Chinese": "\n".join(p[1] for p in pairs),
        "tangshi300 poems": poems,
        "emoji": "Hi 🙂🙂 👍🏽 family: 👨‍👩‍👧‍👦 flags 🇨🇳🇬🇧 ❤️ 🫠 done.🎉",
        "digits": "1 12 123 1234 12345 3.14159265358979 2024-01-01 ٣٤٥ ００７ " + "9" * 200,
        "white space": "a  b   c\t\td\n\n\ne \r\n\r\n f\u00a0\u3000g" + " " * 300 + "\n" * 50
                       + "  \n  x" + "\t \n " * 20 + "   ",
        "contractions": "I'm you're he'll they've it's DON'T 'S 'll O'Neil",
        "random bytes (errors=replace)": "".join(random_bytes),
    }


def _random_unicode(seed, n):
    """Random strings of code points of every plane, surrogates included, each assigned in
    Python's Unicode tables (module docstring of tinylm/data/bpe.py: on the characters
    assigned later the regex module and tiktoken's Rust tables disagree)."""
    rng = random.Random(seed)

    def code_point():
        while True:
            cp = rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0x7FF),
                             rng.randint(0x800, 0xFFFF), rng.randint(0x10000, 0x10FFFF),
                             rng.choice([0x20, 0x0A, 0x27, 0x30, 0x4E00, 0x1F642])])
            if unicodedata.category(chr(cp)) != "Cn":
                return cp

    return ["".join(chr(code_point()) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_ids_equal_tiktoken_on_real_and_odd_text(name, ours, tiktoken_encoders):
    try:
        texts = _texts()
    except FileNotFoundError as error:
        pytest.skip(f"a dataset is not available offline: {error}")
    for label, text in texts.items():
        assert (ours[name].encode_ordinary(text).tolist()
                == tiktoken_encoders[name].encode_ordinary(text)), label


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_ids_equal_tiktoken_on_random_unicode_and_round_trip(name, ours, tiktoken_encoders):
    """Random code points, surrogates included: a lone surrogate is U+FFFD to both (it has no
    UTF-8); every other string comes back from decode(encode(s)) exactly."""
    tok, twin = ours[name], tiktoken_encoders[name]
    for text in _random_unicode(13, 3000):
        ids = tok.encode_ordinary(text)
        assert ids.tolist() == twin.encode_ordinary(text), repr(text)
        has_surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        if not has_surrogate:
            assert tok.decode(ids) == text


# -- the files -------------------------------------------------------------------------------------
def test_gpt2_vocab_bpe_gives_the_same_ranks_and_merges(ours):
    ranks = read_gpt2_merges(_path("gpt2.merges"))
    assert ranks == read_tiktoken_ranks(_path("gpt2.tiktoken"))
    stand_in = bytes_to_unicode()
    assert stand_in[ord(" ")] == "Ġ" and stand_in[ord("\n")] == "Ċ" and stand_in[ord("A")] == "A"
    assert len(set(stand_in.values())) == 256
    byte_of = {char: b for b, char in stand_in.items()}
    lines = _path("gpt2.merges").read_text(encoding="utf-8").splitlines()[1:]
    from_file = {}
    for rank, line in enumerate(lines, start=256):
        first, second = (bytes(byte_of[c] for c in part) for part in line.split())
        from_file[(ranks[first], ranks[second])] = rank
    assert ours["gpt2"].merges == from_file


def test_cl100k_merges_are_reconstructed(ours):
    merges = ours["cl100k"].merges
    assert len(merges) == 100256 - 256
    tok = ours["cl100k"]
    assert all(tok.token_bytes(a) + tok.token_bytes(b) == tok.token_bytes(rank)
               for (a, b), rank in list(merges.items())[::97])


def _copy_lines(source, tmp_path, edit):
    lines = source.read_bytes().splitlines(keepends=True)[:400]
    path = tmp_path / source.name
    path.write_bytes(b"".join(edit(lines)))
    return path


@pytest.mark.parametrize("edit, line, problem", [
    (lambda lines: lines[:300] + [lines[300][:3]], 301, "expected '<base64 token> <rank>'"),
    (lambda lines: lines[:10] + [b"!!!! 10\n"] + lines[11:], 11, "is not base64"),
    (lambda lines: lines[:5] + lines[6:], 6, "rank 6 where 5 comes next"),
    (lambda lines: lines[:20] + [lines[3].split()[0] + b" 20\n"] + lines[21:], 21,
     "again \\(first at line 4\\)"),
])
def test_a_corrupt_ranks_file_is_named_with_its_line(tmp_path, edit, line, problem):
    path = _copy_lines(_path("gpt2.tiktoken"), tmp_path, edit)
    with pytest.raises(ValueError, match=f"{path}, line {line}: .*{problem}"):
        read_tiktoken_ranks(path)


def test_a_ranks_file_without_every_byte_is_refused(tmp_path):
    path = _copy_lines(_path("gpt2.tiktoken"), tmp_path, lambda lines: lines[:100])
    with pytest.raises(ValueError, match="no token for the single bytes"):
        read_tiktoken_ranks(path)


@pytest.mark.parametrize("edit, line, problem", [
    (lambda lines: lines[:50] + [b"\xc4\xa0\n"], 51, "expected a merge"),
    (lambda lines: lines[:7] + ["Ġ\u4e00 t\n".encode()] + lines[8:], 8,
     "not in GPT-2's byte-to-unicode table"),
    (lambda lines: lines[:9] + ["Ġzzq e\n".encode()] + lines[10:], 10,
     "not a token made before this merge"),
    (lambda lines: lines[:12] + [lines[1]] + lines[13:], 13, "makes a token made before"),
])
def test_a_corrupt_merges_file_is_named_with_its_line(tmp_path, edit, line, problem):
    path = _copy_lines(_path("gpt2.merges"), tmp_path, edit)
    with pytest.raises(ValueError, match=f"{path}, line {line}: .*{problem}"):
        read_gpt2_merges(path)


def test_a_token_that_is_no_merge_is_named():
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"abc"] = 256                           # neither "ab" nor "bc" is a token
    with pytest.raises(ValueError, match="b'abc' \\(rank 256\\) is not the merge of two"):
        merges_from_ranks(ranks)


# -- special tokens, storage, bad input ------------------------------------------------------------
@pytest.mark.parametrize("name", list(ENCODINGS))
def test_special_tokens_follow_tiktoken(name, ours, tiktoken_encoders):
    tok, twin = ours[name], tiktoken_encoders[name]
    text = "a<|endoftext|>b <|fim_prefix|>x<|endofprompt|>"
    specials = set(ENCODINGS[name].special_tokens)
    for kwargs in [dict(allowed_special="all"), dict(allowed_special={"<|endoftext|>"}),
                   dict(allowed_special={"<|endoftext|>"}, disallowed_special=()),
                   dict(disallowed_special=())]:
        if name == "cl100k" and kwargs == dict(allowed_special={"<|endoftext|>"}):
            continue                    # <|fim_prefix|> is then disallowed: tested below
        assert tok.encode(text, **kwargs).tolist() == twin.encode(text, **kwargs), kwargs
    for tokenizer in (tok, twin):
        with pytest.raises(ValueError, match="disallowed special token|which is disallowed"):
            tokenizer.encode(text)
        if "<|fim_prefix|>" in specials:
            with pytest.raises(ValueError, match="'<\\|fim_prefix\\|>'"):
                tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    if "<|fim_prefix|>" in specials:
        assert tok.encode("<|fim_prefix|>", allowed_special="all").tolist() == [100258]
    assert tok.encode("<|endoftext|>", allowed_special="all").tolist() == [
        ENCODINGS[name].special_tokens["<|endoftext|>"]]


def test_json_stores_only_the_name(ours, tmp_path):
    path = tmp_path / "gpt2.json"
    ours["gpt2"].save(path)
    assert path.read_text(encoding="utf-8").split() == ['{', '"type":', '"openai_bpe",',
                                                         '"name":', '"gpt2"', '}']
    loaded = load_tokenizer(path)
    text = "Hello, tokenizer <|endoftext|>"
    assert (loaded.encode(text, allowed_special="all").tolist()
            == ours["gpt2"].encode(text, allowed_special="all").tolist())
    assert tokenizer_from_dict({"type": "openai_bpe", "name": "cl100k"}).vocab_size == 100277


def test_bad_names_and_ids_are_named(ours):
    with pytest.raises(ValueError, match="unknown OpenAI encoding 'gpt5'; known: "):
        OpenAIBPETokenizer("gpt5")
    for bad in (100256, 100261, 100277):
        with pytest.raises(ValueError, match=f"cannot decode id {bad} at position 1"):
            ours["cl100k"].decode([15339, bad])
    assert ours["cl100k"].token_bytes(100257) == b"<|endoftext|>"
