"""tinylm.data.bpe: byte-level BPE trained by tinylm.

* training: the hand-worked example of the module docstring, overlapping pairs, the three
  versions (recount, incremental reference, numba kernel) giving the same merges on several
  corpora, and Hugging Face's ``BpeTrainer`` as an oracle for what is comparable (below);
* encoding: the kernel against the reference, the training corpus re-encoded into its own
  final segmentation, ids equal to tiktoken's given the same ranks, round trips;
* tiktoken's special-token rules, JSON, and every bad input.

Hugging Face's trainer (test-only oracle) counts and merges as tinylm does -- chunks from
the same GPT-2 pattern, weighted pair counts, the most frequent pair, left-to-right merging --
but breaks ties by its own ids, which order the bytes by the code points of their printable
stand-ins (GPT-2's byte-to-unicode table: "!".."~" first, then "¡".., the space and the
controls last), not by byte value. So the two merge sequences are equal only up to the
first tie (merge 12 on the corpus here). Beyond it, the test replays HF's merges in tinylm's
incremental counts and checks each is the pair of largest count, ties to the smallest in
HF's ids: HF and tinylm agree on every count and every merge, and differ only in the order
that breaks ties.
"""

from __future__ import annotations

import json
import random
import unicodedata

import numpy
import pytest

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.data.bpe import (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, PairCounts,
                             RankTable, chunk_counts, compile_pattern, merge_by_rank_reference,
                             pair_counts, train_merges, train_merges_by_recount,
                             train_merges_reference)
from tinylm.data.datasets import load_text
from tinylm.data.openai_bpe import bytes_to_unicode
from tinylm.data.tokenizers import load_tokenizer, tokenizer_from_dict

needs_numba = pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
A, B, C, D = 97, 98, 99, 100          # the bytes of "abcd"


def _shared_text(name, n_chars):
    try:
        return load_text(name, download_missing=False)[:n_chars]
    except FileNotFoundError as error:
        pytest.skip(f"dataset {name!r} is not available offline: {error}")


def _words(text, pattern):
    counts = chunk_counts(text, compile_pattern(pattern))
    return [list(chunk.encode("utf-8")) for chunk in counts], list(counts.values())


@pytest.fixture(scope="module")
def shakespeare():
    return _shared_text("tinyshakespeare", 60_000)


# -- training --------------------------------------------------------------------------------------
WORKED_MERGES = [(A, A), (A, B), (256, 257), (A, C), (D, 258), (258, 260), (261, 259)]


@pytest.mark.parametrize("trainer", [train_merges_by_recount, train_merges_reference,
                                     train_merges])
def test_the_worked_example_of_the_docstring(trainer):
    """aaabdaaabac: aa, then ab (the tie with Za goes to the smaller pair), ZY, ac, ..."""
    assert trainer([list(b"aaabdaaabac")], [1], 20) == WORKED_MERGES


def test_the_worked_example_as_a_tokenizer():
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=260, pattern=None)
    assert tok.merges == WORKED_MERGES[:4]
    assert tok.encode("aaabdaaabac").tolist() == [258, D, 258, 259]
    assert tok.encode("aaab").tolist() == [258]
    assert tok.decode([258, D]) == "aaabd"


def test_an_overlapping_pair_merges_left_to_right():
    """"aaa" holds the pair (a, a) twice but merges once: (aa) a."""
    state = PairCounts([list(b"aaa")], [5])
    assert state.pair_count == {(A, A): 10}
    assert state.merge((A, A), 256) == [((256, A), 5)]
    assert state.words == [[256, A]] and state.pair_count == {(256, A): 5}
    assert train_merges_reference([list(b"aaaa")], [1], 5) == [(A, A), (256, 256)]


def test_pair_counts_are_weighted_by_chunk_frequency():
    assert pair_counts([[A, B, A, B], [B, A]], [2, 3]) == {(A, B): 4, (B, A): 5}
    counts = chunk_counts("the cat the dog the", compile_pattern(GPT2_SPLIT_PATTERN))
    assert counts == {"the": 1, " cat": 1, " the": 2, " dog": 1}


def _random_corpus(seed, n_words, alphabet, longest):
    rng = random.Random(seed)
    words = [[rng.choice(alphabet) for _ in range(rng.randint(1, longest))]
             for _ in range(n_words)]
    return words, [rng.randint(1, 5) for _ in words]


def _corpora(shakespeare):
    chinese = "\n".join(line.split("\t")[1] for line in
                        _shared_text("cmn-eng", 400_000).splitlines()[:3000] if "\t" in line)
    return {
        "shakespeare, GPT-2 pattern": (*_words(shakespeare, GPT2_SPLIT_PATTERN), 400),
        "Chinese, GPT-4 pattern": (*_words(chinese, GPT4_SPLIT_PATTERN), 300),
        "shakespeare, no pattern": (*_words(shakespeare[:4000], None), 200),
        "two letters (ties, overlaps)": (*_random_corpus(0, 300, [A, B], 12), 150),
        "runs of one letter": (*_random_corpus(1, 50, [A], 40), 30),
    }


@needs_numba
def test_kernel_reference_and_recount_give_the_same_merges(shakespeare, monkeypatch):
    for name, (words, weights, n_merges) in _corpora(shakespeare).items():
        monkeypatch.setenv("TINYLM_KERNELS", "numba")
        kernel = train_merges(words, weights, n_merges)
        reference = train_merges_reference(words, weights, n_merges)
        assert kernel == reference, name
        assert train_merges_by_recount(words, weights, min(n_merges, 60)) == reference[:60], name


def test_training_stops_when_no_pair_is_left():
    assert train_merges_reference([list(b"ab"), list(b"c")], [1, 1], 10) == [(A, B)]
    tok = BPETokenizer.train("ab", vocab_size=300, pattern=None, special_tokens=["<|end|>"])
    assert tok.merges == [(A, B)] and tok.special_tokens == {"<|end|>": 257}
    assert tok.vocab_size == 258


def test_special_tokens_are_cut_out_of_the_training_text():
    tok = BPETokenizer.train("<|x|>ab<|x|>ab", vocab_size=260, pattern=None,
                             special_tokens=["<|x|>"])
    assert tok.merges == [(A, B)]            # "<|x|>" contributes no pair, "b<" none either


def test_hugging_face_trainer_differs_only_in_its_tie_rule(shakespeare):
    """Module docstring: HF's merges are ours up to the first tie; replayed in tinylm's
    incremental counts, each of its merges is the pair of largest count, ties to the pair
    smallest in HF's ids."""
    hf = pytest.importorskip("tokenizers")
    n_merges = 300
    trainer = hf.trainers.BpeTrainer(vocab_size=256 + n_merges, show_progress=False,
                                     initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet())
    model = hf.Tokenizer(hf.models.BPE())
    model.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    model.train_from_iterator([shakespeare], trainer)
    stand_in = bytes_to_unicode()
    byte_of = {char: b for b, char in stand_in.items()}
    hf_merges = [tuple(bytes(byte_of[c] for c in part) for part in
                       (merge.split(" ") if isinstance(merge, str) else merge))
                 for merge in json.loads(model.to_str())["model"]["merges"]]
    assert len(hf_merges) == n_merges
    hf_byte_id = {b: i for i, b in enumerate(sorted(range(256), key=stand_in.get))}

    def hf_ids(pair):                   # merged tokens: 256 + m in both (no specials here)
        return tuple(hf_byte_id[t] if t < 256 else t for t in pair)

    words, weights = _words(shakespeare, GPT2_SPLIT_PATTERN)
    ours = train_merges_reference(words, weights, n_merges)
    state, id_of, first_tie = PairCounts(words, weights), {bytes([b]): b for b in range(256)}, None
    for m, (a, b) in enumerate(hf_merges):
        largest = max(state.pair_count.values())
        tied = [pair for pair, count in state.pair_count.items() if count == largest]
        assert (id_of[a], id_of[b]) == min(tied, key=hf_ids), f"HF's merge {m}: {a + b!r}"
        if first_tie is None and len(tied) > 1:
            first_tie = m
        assert a + b not in id_of               # no token made twice in this corpus
        id_of[a + b] = 256 + m
        state.merge((id_of[a], id_of[b]), 256 + m)
    assert first_tie is not None
    assert ours[:first_tie] == [(id_of[a], id_of[b]) for a, b in hf_merges[:first_tie]]


# -- encoding --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(shakespeare):
    return BPETokenizer.train(shakespeare, vocab_size=600, special_tokens=["<|endoftext|>"])


def test_encoding_the_corpus_gives_its_final_training_segmentation(shakespeare):
    words, weights = _words(shakespeare, GPT2_SPLIT_PATTERN)
    merges = train_merges_reference(words, weights, 300)
    state = PairCounts(words, weights)
    for m, pair in enumerate(merges):
        state.merge(pair, 256 + m)
    ranks = {pair: 256 + m for m, pair in enumerate(merges)}
    assert [merge_by_rank_reference(word, ranks) for word in words] == state.words


@needs_numba
def test_the_encoding_kernel_equals_the_reference(trained, monkeypatch):
    rng = random.Random(3)
    pieces = [b"the", b"  ", b"aaaa", b"e t", bytes(range(8))]
    chunks = [list(rng.choice(pieces) * rng.randint(1, 30)) for _ in range(300)] + [[], [A]]
    table = RankTable({(a, b): 256 + m for m, (a, b) in enumerate(trained.merges)})
    monkeypatch.setenv("TINYLM_KERNELS", "numba")
    kernel = table.merge_chunks(chunks)
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    assert kernel == table.merge_chunks(chunks)
    limits = [rng.randint(256, 600) for _ in chunks]
    monkeypatch.setenv("TINYLM_KERNELS", "numba")
    kernel = table.merge_chunks(chunks, limits)
    monkeypatch.setenv("TINYLM_KERNELS", "reference")
    assert kernel == table.merge_chunks(chunks, limits)


def _tiktoken_twin(tok):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {tok.token_bytes(i): i for i in range(256 + len(tok.merges))}
    assert len(ranks) == 256 + len(tok.merges)          # no two tokens share their bytes
    return tiktoken.Encoding("tinylm-test", pat_str=tok.pattern, mergeable_ranks=ranks,
                             special_tokens=tok.special_tokens)


def _random_strings(seed, n):
    rng = random.Random(seed)
    pieces = ["the", " ", "  ", "\n", "\t", "123", "4567", "'s", "é", "中文", "🙂", "👍🏽",
              "<|", "|>", "endoftext", "!?", "\r\n", "\u00a0", "ǅ", "x"]
    strings = []
    for _ in range(n):
        if rng.random() < 0.5:
            strings.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))))
        else:
            points = [rng.choice([rng.randint(32, 0x7F), rng.randint(0, 0x2FFF),
                                  rng.randint(0xE000, 0x10FFFF)]) for _ in range(40)]
            strings.append("".join(chr(cp) for cp in points[:rng.randint(0, 20)]
                                   if unicodedata.category(chr(cp)) != "Cn"))
    return strings


def test_ids_equal_tiktoken_given_the_same_ranks(trained, shakespeare):
    twin = _tiktoken_twin(trained)
    assert trained.encode(shakespeare).tolist() == twin.encode(shakespeare)
    for text in _random_strings(5, 500):
        assert trained.encode_ordinary(text).tolist() == twin.encode_ordinary(text), text


@pytest.mark.parametrize("pattern", [GPT4_SPLIT_PATTERN, None])
def test_decode_inverts_encode(shakespeare, pattern):
    tok = BPETokenizer.train(shakespeare[:20_000], vocab_size=400, pattern=pattern)
    for text in _random_strings(7, 300):
        ids = tok.encode(text)
        assert ids.dtype == numpy.int64 and tok.decode(ids) == text
        assert tok.decode_bytes(ids) == text.encode("utf-8")


def test_decode_replaces_a_cut_character_as_tiktoken_does():
    tok = BPETokenizer([])
    ids = tok.encode("中")                           # three byte tokens
    assert tok.decode(ids[:2]) == "\ufffd" and tok.decode_bytes(ids[:2]) == "中".encode()[:2]


def test_a_lone_surrogate_is_encoded_as_tiktoken_does(trained):
    twin = _tiktoken_twin(trained)
    for text in ["a\ud800b", "\udfff", "x\ud83d\ude42"]:
        assert trained.encode(text).tolist() == twin.encode(text)


# -- special tokens --------------------------------------------------------------------------------
def test_special_tokens_follow_tiktoken(trained):
    twin = _tiktoken_twin(trained)
    text = "one<|endoftext|>two <|endoftext|>"
    for kwargs in [dict(allowed_special="all"), dict(allowed_special={"<|endoftext|>"}),
                   dict(disallowed_special=()), dict(allowed_special=set(), disallowed_special=())]:
        assert trained.encode(text, **kwargs).tolist() == twin.encode(text, **kwargs), kwargs
    assert trained.encode_ordinary(text).tolist() == twin.encode_ordinary(text)
    assert trained.encode(text, allowed_special="all").tolist().count(trained.vocab_size - 1) == 2
    for tokenizer in (trained, twin):
        with pytest.raises(ValueError, match="disallowed special token|which is disallowed"):
            tokenizer.encode(text)


def test_the_disallowed_error_says_which_token_and_how_to_allow_it(trained):
    with pytest.raises(ValueError) as error:
        trained.encode("ok <|endoftext|>")
    message = str(error.value)
    assert "'<|endoftext|>'" in message and "at character 3" in message
    assert "allowed_special={'<|endoftext|>'}" in message and "'all'" in message
    assert "disallowed_special=()" in message


@pytest.mark.parametrize("kwargs, match", [
    (dict(allowed_special="<|endoftext|>"), "pass a set of special tokens"),
    (dict(disallowed_special="none"), "pass a set of special tokens"),
    (dict(allowed_special={"<|fim|>"}), "not special tokens of this tokenizer"),
    (dict(disallowed_special={"<|fim|>"}), "not special tokens of this tokenizer"),
])
def test_bad_special_token_arguments_are_named(trained, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trained.encode("text", **kwargs)


def test_the_longer_of_two_overlapping_special_tokens_is_matched():
    tok = BPETokenizer([], special_tokens={"<|a|>": 256, "<|a|>b": 257})
    assert tok.encode("<|a|>b<|a|>", allowed_special="all").tolist() == [257, 256]


# -- storage ---------------------------------------------------------------------------------------
def test_json_round_trip(trained, tmp_path):
    path = tmp_path / "bpe.json"
    trained.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["type"] == "bpe" and state["pattern"] == GPT2_SPLIT_PATTERN
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer) and loaded.merges == trained.merges
    assert loaded.special_tokens == trained.special_tokens
    text = "Tokens, again: <|endoftext|> 12345"
    assert (loaded.encode(text, allowed_special="all").tolist()
            == trained.encode(text, allowed_special="all").tolist())
    assert tokenizer_from_dict(trained.to_dict()).to_dict() == trained.to_dict()


# -- bad input -------------------------------------------------------------------------------------
def test_a_vocabulary_below_256_is_refused():
    with pytest.raises(ValueError, match="needs vocab_size >= 256"):
        BPETokenizer.train("some text", vocab_size=255)
    with pytest.raises(ValueError, match="needs vocab_size >= 258"):
        BPETokenizer.train("some text", vocab_size=257, special_tokens=["<a>", "<b>"])


def test_an_empty_corpus_is_refused():
    with pytest.raises(ValueError, match="corpus is empty"):
        BPETokenizer.train("", vocab_size=300)


@pytest.mark.parametrize("merges, match", [
    ([[97, 98], [256, 300]], "merge 1 is \\[256, 300\\]"),
    ([[97]], "merge 0 is"),
    ([["a", "b"]], "merge 0 is"),
    ([[-1, 98]], "merge 0 is"),
])
def test_bad_merges_are_named(merges, match):
    with pytest.raises(ValueError, match=match):
        BPETokenizer(merges)


def test_bad_special_tokens_and_patterns_are_named():
    with pytest.raises(ValueError, match="come after the bytes and the merges"):
        BPETokenizer([[97, 98]], special_tokens={"<s>": 256})
    with pytest.raises(ValueError, match="share an id"):
        BPETokenizer([], special_tokens={"<s>": 256, "</s>": 256})
    with pytest.raises(ValueError, match="non-empty strings"):
        BPETokenizer([], special_tokens={"": 256})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        BPETokenizer([], pattern="(unclosed")


def test_encoding_something_other_than_text_is_named():
    with pytest.raises(TypeError, match="encodes a str, not bytes: decode the bytes first"):
        BPETokenizer([]).encode(b"abc")
    with pytest.raises(TypeError, match="encodes a str, not list"):
        BPETokenizer([]).encode_ordinary(["abc"])


def test_undecodable_ids_are_named():
    tok = BPETokenizer([[97, 98]], special_tokens={"<s>": 300})
    assert tok.vocab_size == 301 and tok.decode([256, 300]) == "ab<s>"
    for ids, bad in [([1, 301], 301), ([-1], -1), ([257], 257)]:
        with pytest.raises(ValueError, match=f"cannot decode id {bad} at position"):
            tok.decode(ids)
