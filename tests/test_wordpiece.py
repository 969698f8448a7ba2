"""tinylm.data.wordpiece: BERT's tokenizer, exact against Hugging Face's ``tokenizers``.

* the character rules (normaliser and pre-tokenizer) against ``BertNormalizer`` and
  ``BertPreTokenizer``: every ASCII character, every character whose Unicode category has not
  changed since Unicode 3.2, and varied text;
* the encoder against HF's ``WordPiece`` model (same vocabulary, the Bert normaliser and
  pre-tokenizer): ids on the lines of five datasets, under a tinylm-trained and an HF-trained
  vocabulary, uncased and cased, special tokens in the text, [UNK] and over-long words;
* round trips over random strings, training (determinism, the kernel against the reference,
  the incremental counts against a recount after every merge, the pieces), JSON, bad input.

``tokenizers`` is a test-only oracle (``hf`` fixture): without it those tests are skipped.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata
from collections import Counter

import numpy
import pytest

from tinylm.data import pretraining
from tinylm.data.datasets import load_text
from tinylm.data.wordpiece import (BERT_SPECIALS, CONTINUATION, PairCounts, WordPieceTokenizer,
                                   initial_alphabet, normalize, pre_tokenize, score,
                                   train_merges, train_merges_reference)


@pytest.fixture(scope="module")
def hf():
    return pytest.importorskip("tokenizers")


def _shared_lines(name, n, column=None):
    """The first ``n`` non-empty lines of dataset ``name`` (its ``column``-th tab field)."""
    try:
        text = load_text(name, download_missing=False)
    except FileNotFoundError as error:
        pytest.skip(f"dataset {name!r} is not available offline: {error}")
    lines = [line for line in text.splitlines() if line.strip()]
    if column is not None:
        lines = [line.split("\t")[column] for line in lines if line.count("\t") >= column]
    return lines[:n]


@pytest.fixture(scope="module")
def corpora():
    return {"tinyshakespeare": _shared_lines("tinyshakespeare", 2000),
            "fra-eng (English)": _shared_lines("fra-eng", 2000, column=0),
            "sms_spam": _shared_lines("sms_spam", 2000, column=1),
            "cmn-eng (Chinese)": _shared_lines("cmn-eng", 1000, column=1),
            "tangshi300 (raw JSON)": _shared_lines("tangshi300", 1000)}


VARIED = [
    "Hello, World! It's 3.14159 -- isn't it?!?",
    "Ünïcödé àccénts: café, naïve, Ångström, façade; ÉCOLE",
    "ΟΔΟΣ Σίσυφος ΣΑΣ İstanbul ǅ ß ﬁ Ⅻ",
    "我累死了。你好，世界！「中文」標點…… 𠀀𪜀",
    "日本語のテキスト、カタカナ ひらがな 한국어 텍스트",
    "emoji 🙂🙂 👍🏽 👨‍👩‍👧 ✓ ★ ❤️ and digits 123abc ٣٤ ①",
    "punctuation runs: ...!!!??? ((([[{}]]))) \"quoted\" 'single' `tick` ~^|<>+=$%#@&*_-/\\",
    "spaces\u00a0nbsp\u2003em\u3000ideographic\ttab\nnewline\r\nCRLF \u2028 \u0085 nel",
    "controls\x00nul\x07bel\x0bvt\x0cff\x1cfs\x7fdel\u200bzwsp\u200dzwj\ufeffbom\ufffdrepl",
    "mixed-case WordPiece ##hash tokens [CLS] [sep] [UNK]x <unk> don't can't",
    "a" * 100 + " " + "b" * 101 + " x",
    "",
    "   \t\n  ",
]


# -- the character rules --------------------------------------------------------------------------
def _first_difference(mine, theirs) -> str:
    for i, (x, y) in enumerate(zip(mine, theirs)):
        if x != y:
            return f"first difference at {i}: {mine[max(0, i - 5):i + 5]!r} vs " \
                   f"{theirs[max(0, i - 5):i + 5]!r}"
    return f"lengths {len(mine)} vs {len(theirs)}"


def _check_rules(hf, text):
    for lowercase, strip in [(True, None), (False, None), (True, False), (False, True)]:
        oracle = hf.normalizers.BertNormalizer(lowercase=lowercase, strip_accents=strip)
        mine, theirs = normalize(text, lowercase, strip), oracle.normalize_str(text)
        assert mine == theirs, (lowercase, strip, _first_difference(mine, theirs))
    mine = pre_tokenize(text)
    theirs = [w for w, _ in hf.pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text)]
    assert mine == theirs, _first_difference(mine, theirs)


def test_rules_match_hf_on_every_ascii_character(hf):
    for cp in range(128):
        _check_rules(hf, f"a{chr(cp)}b {chr(cp)}")


def test_rules_match_hf_on_every_stable_code_point(hf):
    """Every character assigned in Unicode 3.2 with the category it still has (the module
    docstring says why later additions may differ), each between two letters."""
    old = unicodedata.ucd_3_2_0
    chars = [c for c in map(chr, range(sys.maxunicode + 1))
             if unicodedata.category(c) not in ("Cn", "Cs")
             and old.category(c) == unicodedata.category(c)]
    assert len(chars) > 90_000
    _check_rules(hf, " ".join(f"a{c}b" for c in chars))


@pytest.mark.parametrize("text", VARIED)
def test_rules_match_hf_on_varied_text(hf, text):
    _check_rules(hf, text)


def test_rules_match_hf_on_dataset_lines(hf, corpora):
    for lines in corpora.values():
        _check_rules(hf, "\n".join(lines))


def test_documented_rules():
    assert normalize("ÉCOLE Ça") == "ecole ca"
    assert normalize("ÉCOLE", lowercase=False) == "ÉCOLE"
    assert normalize("ÉCOLE", strip_accents=False) == "école"
    assert normalize("ΟΔΟΣ") == "οδοσ"                 # no final sigma: one character at a time
    assert normalize("a\x0bb\u0085c\u200bd\te") == "abcd e"   # VT, NEL, ZWSP deleted; tab -> " "
    assert normalize("中文ok") == " 中  文 ok"
    assert pre_tokenize("don't $5+3 🙂🙂 abc123 ...") == [
        "don", "'", "t", "$", "5", "+", "3", "🙂🙂", "abc123", ".", ".", "."]
    assert pre_tokenize("x\x1cy") == ["x\x1cy"]          # U+001C is not White_Space


# -- encoding against HF's WordPiece model --------------------------------------------------------
def _hf_tokenizer(hf, tokenizer: WordPieceTokenizer):
    """HF's twin of ``tokenizer``: its specials are "added special tokens", found in the raw
    text before normalisation, as tinylm finds them (and BertTokenizerFast)."""
    model = hf.models.WordPiece({t: i for i, t in enumerate(tokenizer.vocab.tokens)},
                                unk_token=tokenizer.unk,
                                max_input_chars_per_word=tokenizer.max_input_chars_per_word)
    oracle = hf.Tokenizer(model)
    oracle.normalizer = hf.normalizers.BertNormalizer(lowercase=tokenizer.lowercase,
                                                      strip_accents=tokenizer.strip_accents)
    oracle.pre_tokenizer = hf.pre_tokenizers.BertPreTokenizer()
    oracle.add_special_tokens(list(tokenizer.specials))
    return oracle


def _assert_same_ids(hf, tokenizer, lines):
    oracle = _hf_tokenizer(hf, tokenizer)
    theirs = [e.ids for e in oracle.encode_batch(lines, add_special_tokens=False)]
    for line, ids in zip(lines, theirs):
        mine = tokenizer.encode(line)
        assert mine.dtype == numpy.int64
        assert mine.tolist() == ids, (line, tokenizer.split(line),
                                      [oracle.id_to_token(i) for i in ids])


@pytest.fixture(scope="module")
def trained(corpora):
    """A tinylm vocabulary trained on a third of every corpus (the rest is unseen text)."""
    lines = [line for part in corpora.values() for line in part[::3]]
    return WordPieceTokenizer.train(lines, 3000, min_frequency=2)


@pytest.fixture(scope="module")
def hf_trained(hf, corpora):
    """HF's WordPieceTrainer on the same lines, its vocabulary loaded into tinylm."""
    oracle = hf.Tokenizer(hf.models.WordPiece(unk_token="[UNK]"))
    oracle.normalizer = hf.normalizers.BertNormalizer()
    oracle.pre_tokenizer = hf.pre_tokenizers.BertPreTokenizer()
    trainer = hf.trainers.WordPieceTrainer(vocab_size=3000, special_tokens=list(BERT_SPECIALS),
                                           show_progress=False)
    oracle.train_from_iterator([line for part in corpora.values() for line in part[::3]],
                               trainer)
    return WordPieceTokenizer(sorted(oracle.get_vocab(), key=oracle.get_vocab().get))


def test_ids_equal_hf_on_datasets(hf, corpora, trained, hf_trained):
    for tokenizer in (trained, hf_trained):
        for lines in corpora.values():
            _assert_same_ids(hf, tokenizer, lines)


def test_ids_equal_hf_cased_and_without_accent_stripping(hf, corpora, trained):
    lines = corpora["fra-eng (English)"][:500] + corpora["sms_spam"][:500] + VARIED
    for lowercase, strip in [(False, None), (True, False), (False, True)]:
        state = {**trained.to_dict(), "lowercase": lowercase, "strip_accents": strip}
        _assert_same_ids(hf, WordPieceTokenizer.from_dict(state), lines)


def test_ids_equal_hf_with_special_tokens_in_the_text(hf, trained):
    lines = ["[CLS] hello [SEP]world[MASK][MASK] [unk] [UNK]x", "a[PAD]b", "[SEP", "[[SEP]]",
             "[CLS][SEP]", "no specials here", "[MASK]"]
    _assert_same_ids(hf, trained, lines)
    assert trained.split("[CLS] Hi[SEP]") == ["[CLS]", *trained.split("hi"), "[SEP]"]


def test_unk_and_long_words_equal_hf(hf, trained):
    small = WordPieceTokenizer([*BERT_SPECIALS, "a", "b", "##a", "##b", "ab", "##ab", "c"])
    lines = ["ab ba abc cab c ca cd a" + "b" * 98, "a" * 100, "a" * 101, "c" * 50, VARIED[-3]]
    assert small.split("ab abab ca cd a") == ["ab", "ab", "##ab", "c", "##a", "[UNK]", "a"]
    assert small.split("a" * 100) == ["a"] + ["##a"] * 99
    assert small.split("a" * 101) == ["[UNK]"]
    for tokenizer in (small, trained):
        _assert_same_ids(hf, tokenizer, lines + VARIED)


def test_decode_equals_hf_wordpiece_decoder(hf, corpora, trained):
    decoder = hf.decoders.WordPiece(prefix=CONTINUATION, cleanup=False)
    for lines in corpora.values():
        ids = trained.encode(" ".join(lines[:100]))
        assert trained.decode(ids) == decoder.decode(trained.split(" ".join(lines[:100])))


# -- round trips ----------------------------------------------------------------------------------
ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            "éÉàüñçøßΣσπЖжא中文字我了。，！「」🙂👍.,;:!?'\"()-_/#$%&*+<=>@[]^`{|}~"
            "\u0301\u00a0\t\n\x00\u200b ")


def _random_texts(seed, n):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60))) for _ in range(n)]


def test_round_trip_gives_the_normalised_words():
    """Random strings over a varied alphabet. Trained on them, the vocabulary covers every
    word, so decode(encode(s)) is the normalised words joined by spaces; under a vocabulary
    that lacks some characters, a word it cannot cover comes back as [UNK]."""
    texts = _random_texts(0, 300)
    covering = WordPieceTokenizer.train(texts, 600)
    for text in texts:
        assert covering.decode(covering.encode(text)) == " ".join(covering.words(text))
    for text in _random_texts(1, 100):                             # unseen words
        expected = [w if covering.word_pieces(w) != ["[UNK]"] else "[UNK]"
                    for w in covering.words(text)]
        assert covering.decode(covering.encode(text)) == " ".join(expected)
    partial = WordPieceTokenizer([*BERT_SPECIALS, *"abcdefghij", *("##" + c for c in "abcde")])
    for text in _random_texts(2, 100):
        expected = [w if w[0] in "abcdefghij" and set(w[1:]) <= set("abcde") else "[UNK]"
                    for w in partial.words(text)]
        assert partial.decode(partial.encode(text)) == " ".join(expected)


def test_random_strings_equal_hf(hf):
    texts = _random_texts(3, 300)
    tokenizer = WordPieceTokenizer.train(texts[:150], 500)     # the other half: unseen words
    _assert_same_ids(hf, tokenizer, texts)


# -- training -------------------------------------------------------------------------------------
def _pieces_are_valid(tokenizer, lines):
    for line in lines:
        for word in tokenizer.words(line):
            pieces = tokenizer.word_pieces(word)
            if pieces == ["[UNK]"]:
                continue
            assert not pieces[0].startswith(CONTINUATION)
            assert all(p.startswith(CONTINUATION) for p in pieces[1:])
            assert "".join(p.removeprefix(CONTINUATION) for p in pieces) == word
            assert all(p in tokenizer.vocab for p in pieces)


def test_trained_vocabulary(corpora, trained):
    assert trained.vocab.tokens[:5] == list(BERT_SPECIALS) == list(pretraining.SPECIALS)
    assert trained.vocab_size == 3000
    seen = [line for part in corpora.values() for line in part[::3]]
    words = {w for line in seen for w in trained.words(line)}
    assert all(trained.word_pieces(w) != ["[UNK]"] for w in words)   # training words covered
    _pieces_are_valid(trained, [line for part in corpora.values() for line in part])
    tokens = trained.vocab.tokens
    n_alphabet = sum(len(t.removeprefix(CONTINUATION)) == 1 for t in tokens[5:])
    assert all(len(t.removeprefix(CONTINUATION)) == 1 for t in tokens[5:5 + n_alphabet])
    for k in range(5 + n_alphabet, len(tokens)):     # a merge: an earlier a + an earlier ##b
        t, earlier = tokens[k], set(tokens[:k])
        prefix = CONTINUATION if t.startswith(CONTINUATION) else ""
        body = t.removeprefix(prefix)
        assert any(prefix + body[:m] in earlier and CONTINUATION + body[m:] in earlier
                   for m in range(1, len(body))), t


@pytest.mark.parametrize("options", [dict(), dict(min_frequency=3, limit_alphabet=60),
                                     dict(lowercase=False)], ids=["default", "limits", "cased"])
def test_kernel_equals_reference_and_is_deterministic(corpora, monkeypatch, options):
    lines = corpora["tinyshakespeare"][:1500] + corpora["cmn-eng (Chinese)"][:300]
    runs = {}
    for mode in ("reference", "auto", "auto"):
        monkeypatch.setenv("TINYLM_KERNELS", mode)
        runs.setdefault(mode, []).append(WordPieceTokenizer.train(lines, 1500, **options)
                                         .vocab.tokens)
    assert runs["reference"][0] == runs["auto"][0] == runs["auto"][1]


REPEATS = ["aaaa aaa aa a abab ababab abba baab", "aaaaaaa ab ab ab ba ba aab", "bbbbbb abc"]


def _recount(state: PairCounts):
    """The counts from scratch: symbols, pairs, and the words each pair is in."""
    symbols, pairs, where = Counter(), Counter(), {}
    for w, (word, n) in enumerate(zip(state.words, state.weights)):
        for s in word:
            symbols[s] += n
        for pair in zip(word, word[1:]):
            pairs[pair] += n
            where.setdefault(pair, set()).add(w)
    return symbols, pairs, where


@pytest.mark.parametrize("texts, limit", [(REPEATS, 1000), ("tinyshakespeare", 300)],
                         ids=["repeats", "shakespeare"])
def test_incremental_counts_equal_a_recount_after_every_merge(corpora, texts, limit):
    texts = corpora["tinyshakespeare"][:40] if texts == "tinyshakespeare" else texts
    splitter = WordPieceTokenizer(list(BERT_SPECIALS))
    counts = Counter(w for text in texts for w in splitter.words(text))
    symbols, words, weights = initial_alphabet(counts, None, 100)
    state = PairCounts(words, weights, symbols)
    for _ in range(limit):
        if not state.pair_count:
            break
        # the best pair by a plain max over every pair (the heap's answer must be the same)
        best = max(state.pair_count, key=lambda p: (state.score(p), state.pair_count[p],
                                                    -p[0], -p[1]))
        dirty = state.merge(*best)
        symbol_counts, pair_counts, where = _recount(state)
        assert dict(pair_counts) == state.pair_count
        assert [symbol_counts[s] for s in range(len(state.symbols))] == state.symbol_count
        for pair in pair_counts:
            assert pair in state.pairs_of[pair[0]] and pair in state.pairs_of[pair[1]]
            assert where[pair] <= state.where[pair]
        assert all(p in pair_counts for s in state.pairs_of for p in state.pairs_of[s])
        assert dirty <= set(state.pair_count)
    assert len(set(state.symbols)) == len(state.symbols)      # every merge made a new string
    size = len(state.symbols)
    assert train_merges_reference(words, weights, symbols, size, 1) == state.symbols
    assert train_merges(words, weights, symbols, size, 1) == state.symbols


def test_score_and_min_frequency():
    assert score(2, 4, 8) == 2 / 32
    # "ab" x3, "ac" x1, "dc" x5: (a, ##b) scores 3 / (4 * 3) = 0.25, ahead of the more frequent
    # (d, ##c) at 5 / (5 * 6); min_frequency=4 leaves (d, ##c) alone, then nothing
    words, weights, symbols = [[0, 1], [0, 2], [3, 2]], [3, 1, 5], ["a", "##b", "##c", "d"]
    assert train_merges_reference(words, weights, symbols, 5, 1)[4:] == ["ab"]
    assert train_merges_reference(words, weights, symbols, 6, 4)[4:] == ["dc"]


def test_works_as_the_pretraining_tokenizer(trained, corpora):
    lines = corpora["tinyshakespeare"][:50]
    stream = pretraining.token_stream(trained, lines)
    assert stream.dtype == numpy.int64 and stream[-1] == pretraining.SEP_ID
    assert (stream == pretraining.SEP_ID).sum() == len(lines)
    assert pretraining.unknown_rate(trained, lines) < 0.01


# -- storage and bad input ------------------------------------------------------------------------
def test_json_round_trip(tmp_path, trained, corpora):
    path = tmp_path / "wordpiece.json"
    trained.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["type"] == "wordpiece" and state["tokens"] == trained.vocab.tokens
    loaded = WordPieceTokenizer.load(path)
    assert loaded.to_dict() == trained.to_dict()
    lines = corpora["sms_spam"][:200]
    assert all((loaded.encode(x) == trained.encode(x)).all() for x in lines)
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        WordPieceTokenizer.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not 'wordpiece'"):
        WordPieceTokenizer.from_dict({**state, "type": "word"})


def test_bad_input(trained):
    for empty in ("", "  \n\t ", ["", "\x00\x07"], ["[SEP] [CLS]"]):
        with pytest.raises(ValueError, match="no words"):
            WordPieceTokenizer.train(empty, 100)
    with pytest.raises(ValueError, match=r"vocab_size=7 is smaller than the 5 special tokens "
                                         r"plus the 3 symbols.*vocab_size >= 8.*limit_alphabet"):
        WordPieceTokenizer.train("abc abc", 7)
    with pytest.raises(ValueError, match="min_frequency=0"):
        WordPieceTokenizer.train("abc", 100, min_frequency=0)
    with pytest.raises(ValueError, match="limit_alphabet=0"):
        WordPieceTokenizer.train("abc", 100, limit_alphabet=0)
    with pytest.raises(ValueError, match=r"\['hello'\] read as one word"):
        WordPieceTokenizer.train("abc", 100, specials=("[UNK]", "hello"))
    for ids in ([0, 3000], [-1], numpy.array([[5, 99999]])):
        with pytest.raises(ValueError, match=r"cannot decode id -?\d+ at position \d+: ids must "
                                             r"lie in \[0, 3000\)"):
            trained.decode(ids)
    with pytest.raises(ValueError, match=r"no unknown token '\[UNK\]'.*Add it"):
        WordPieceTokenizer(["[PAD]", "a", "##b"], specials=["[PAD]"])
    with pytest.raises(ValueError, match=r"special tokens \['\[MASK\]'\] are not in the vocab"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="max_input_chars_per_word=0"):
        WordPieceTokenizer(list(BERT_SPECIALS), max_input_chars_per_word=0)
