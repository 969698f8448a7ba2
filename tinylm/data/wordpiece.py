"""WordPiece（词片）: BERT's subword tokenizer -- its normaliser, pre-tokenizer, greedy
longest-match encoder, and a trainer for its vocabulary (chapter 02).

    tok = WordPieceTokenizer.train(lines, vocab_size=16384)     # or WordPieceTokenizer(tokens)
    tok.split("Héllo, wörld!")     # ['hello', ',', 'w', '##or', '##ld', '!'] (say)
    ids = tok.encode(text)         # numpy int64
    tok.decode(ids)                # the normalised words, joined by spaces, '##' glued on

A text goes through four steps, each the one of Hugging Face's ``BertTokenizerFast`` (the
``tokenizers`` library: ``BertNormalizer``, ``BertPreTokenizer``, ``WordPiece``), and gives
the same ids for any vocabulary (tests/test_wordpiece.py checks them):

1. Special tokens. The specials ([PAD] [UNK] [CLS] [SEP] [MASK]) are found in the raw text
   first, exactly as written (case-sensitive, anywhere, longest first); each is one token and
   the text between them goes on through steps 2-4 piece by piece, as HF does with "added
   special tokens".
2. Normalisation (``normalize``; BERT's BasicTokenizer, HF's BertNormalizer), character by
   character:
   * clean: delete NUL, U+FFFD and every control character -- Unicode categories Cc, Cf,
     Co and Cs, except tab, line feed and carriage return; note that VT, FF and U+0085 are
     Cc, so they are deleted, not turned into spaces. Unassigned code points (Cn) are kept.
   * white space: every character with Unicode's White_Space property (``WHITESPACE``;
     Rust's ``char::is_whitespace``, which is not Python's ``str.isspace``: U+001C..U+001F
     are not White_Space) becomes " ".
   * CJK: a space either side of every CJK ideograph (``CJK_RANGES``), so each is a word.
     Hangul, hiragana and katakana are not in those blocks and stay in their words.
   * accents (when ``strip_accents``, which defaults to ``lowercase``): Unicode NFD, then
     delete the non-spacing marks (category Mn): "é" = "e" + U+0301 -> "e".
   * lower case (when ``lowercase``): each character's own lower-case mapping, with no
     context (Python's ``str.lower`` would write a word-final capital sigma as "ς";
     BERT's mapping, one character at a time, gives "σ").
3. Pre-tokenisation (``pre_tokenize``; HF's BertPreTokenizer): split on white space (the
   spaces are dropped) and around every punctuation character, which is its own word.
   Punctuation: the 32 ASCII symbols ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~`` (so "$", "+",
   "<", "^", "`", "|" and "~" count, though Unicode calls them symbols) and every character
   of the Unicode categories P* (Pc Pd Pe Pf Pi Po Ps). Emoji (So) and digits stay inside
   words: "abc123" and "🙂🙂" are single words.
4. WordPiece (``WordPieceTokenizer.word_pieces``): greedy longest-match-first over each
   word. From the word's start, take the longest prefix that is in the vocabulary; then,
   from where it ended, the longest "##"-prefixed continuation that is; and so on. If at
   some point no piece fits, or the word has more than ``max_input_chars_per_word`` (100)
   characters, the whole word becomes [UNK] -- not just the part that failed (BERT's rule).

Unicode tables. The categories come from Python's ``unicodedata`` (Unicode 14.0 on Python
3.11); HF tokenizers 0.23 reads them from an older table (the ``unicode_categories`` crate)
and lower-cases with a newer one (Rust's). Over all 1.1 million code points the two differ
on 559, all of them characters that one of the tables does not know: 504 added to Unicode
after HF's table (384 non-spacing marks that HF keeps, 104 punctuation characters that HF
does not split on -- e.g. U+2E55..U+2E5D --, 13 format characters that HF keeps, e.g.
U+0890, and 3 others) and 55 code points unassigned in Unicode 14.0 that HF lower-cases.
The tests check every character assigned in Unicode 3.2 whose category has not changed
since (232,504 code points, private use included, every script in common use).

Training a vocabulary (``WordPieceTokenizer.train``, the idea of Schuster & Nakajima 2012
and of BERT). Count the words of the corpus (after steps 1-3); write each as its characters,
the first plain and the rest "##"-prefixed ("word" -> w ##o ##r ##d). The initial
vocabulary is the specials and every symbol that occurs. Then repeat, until the vocabulary
has ``vocab_size`` entries or no pair of adjacent symbols occurs ``min_frequency`` times:
merge the adjacent pair (a, b) of highest score

    score(a, b) = count(ab) / (count(a) count(b))

where count(ab) is the number of times b follows a in the corpus's current segmentation
and count(a), count(b) the numbers of times each symbol occurs (each word weighted by its
frequency). The merged symbol is a + b without b's "##" (a's own prefix stays): "##o" +
"##r" -> "##or". Why this score: with p(x) = count(x) / N the symbol frequencies of a
unigram model, score = p(ab) / (p(a) p(b)) / N, and N is the same for every pair of a step,
so the pair chosen has the largest pointwise mutual information log p(ab) / (p(a) p(b)):
the parts most likely to occur together rather than apart -- the "likelihood" criterion as
Hugging Face documents it. (To first order, the gain in a unigram model's log-likelihood
is count(ab) times that log-ratio; the criterion leaves the count out, so it prefers rare
pairs whose parts seldom occur apart to frequent ones -- frequent short words stay split
into pieces long after rare ones are whole -- and ``min_frequency`` is the guard.)
Ties: the higher count(ab), then the pair whose symbols entered the vocabulary first.
Every merge adds a new entry: the merged string is never one the vocabulary has already.
(Merges apply to every occurrence at once, so two occurrences of the same characters stay
segmented alike for as long as no symbol reaches across either of their ends -- a
neighbour can take an end character, but then that occurrence can never become one
symbol, and a run such as "##a ##a ##a" reaching in from outside pairs either in step with
the other occurrence or across the end. So a string is made, everywhere it can still be
made, in the one step that joins its last two parts, and never again.) Words of more than
``max_input_chars_per_word`` characters, and (with ``limit_alphabet=k``) words with a
character outside the k most frequent ones, are left out of the counts: they can only ever
be [UNK]. Every word the counts keep is then covered by the trained vocabulary.

The counts are kept up to date, not recounted (``PairCounts``): merging a pair changes only
the pairs touching its occurrences, (left, a) -> (left, ab) and (b, right) -> (ab, right),
and the counts of a, b and ab -- hence the scores of the pairs containing those three
symbols. A priority queue (a heap) holds (score, count, pair) entries; an entry that is no
longer a pair's current score and count is stale and skipped when it comes out. The plain
Python version here is the specification (``train_merges_reference``); the numba kernel of
tinylm/kernels/wordpiece.py runs the same algorithm on arrays, gives the same vocabulary,
and is the one used when ``tinylm.backend.use_numba()`` says so.

How this relates to HF's ``WordPieceTrainer``: it does not use this score. It trains BPE
(merge the most *frequent* pair; ``BpeTrainer`` with continuing_subword_prefix "##"), keeps
the alphabet and every merged string as the vocabulary and drops the merges; the WordPiece
model then encodes by longest match, as here. So the two trainers give different
vocabularies from the same text (and HF's ``limit_alphabet`` drops the rare characters from
the words rather than dropping the words), while the encoder gives HF's ids for any
vocabulary, tinylm's or HF's.
"""

from __future__ import annotations

import functools
import heapq
import json
import re
import string
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy

from tinylm.backend import to_numpy, use_numba
from tinylm.data.vocab import Vocabulary

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")   # ids 0..4 when trained here
UNK = "[UNK]"
CONTINUATION = "##"                  # the prefix of a piece that continues a word
MAX_INPUT_CHARS_PER_WORD = 100       # BERT's: a longer word is [UNK] as a whole

# Unicode's White_Space property (PropList.txt), what Rust's char::is_whitespace tests.
WHITESPACE = frozenset(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680,
                                 *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F,
                                 0x3000]))
# The CJK Unified Ideographs blocks and their extensions and compatibility blocks, as BERT's
# _is_chinese_char and HF's BertNormalizer list them (HF: extension E starts at U+2B920).
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
CONTROL_CATEGORIES = ("Cc", "Cf", "Co", "Cs")


# -- the character rules: the specification, one character at a time ------------------------------
def is_whitespace(char: str) -> bool:
    return char in WHITESPACE


def is_control(char: str) -> bool:
    """Deleted by the cleaning step: controls, format characters, private use, surrogates;
    tab, line feed and carriage return are white space instead."""
    return char not in "\t\n\r" and unicodedata.category(char) in CONTROL_CATEGORIES


def is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")



class _Rules(NamedTuple):
    """The rules above as tables over a range of code points, for ``re`` and
    ``str.translate`` (C loops over the text instead of a Python loop)."""
    removed: re.Pattern             # NUL, U+FFFD and the controls: deleted
    whitespace: re.Pattern          # replaced by " "
    cjk: re.Pattern | None          # a space put either side
    nonspacing_marks: dict          # for str.translate: each Mn code point -> None
    word: re.Pattern                # a run of other characters, or one punctuation character


def _char_class(code_points) -> str:
    """A regular-expression character class holding exactly ``code_points`` (ascending),
    written as ranges of \\U escapes."""
    parts, start, last = [], None, None
    for cp in [*code_points, None]:
        if start is not None and cp == last + 1:
            last = cp
            continue
        if start is not None:
            parts.append(f"\\U{start:08x}" + (f"-\\U{last:08x}" if last > start else ""))
        start = last = cp
    return "[" + "".join(parts) + "]"


@functools.cache
def _rules(ascii_only: bool) -> _Rules:
    """The tables of the code points below 128 (for text that ``str.isascii``: the common
    case, whose tables are small and fast) or of all of them (built once per process, in
    about a second: the predicates are asked about each of the 1.1 million code points)."""
    end = 0x80 if ascii_only else sys.maxunicode + 1
    removed, whitespace, punctuation, marks = [], [], [], []
    for cp in range(end):
        char = chr(cp)
        if cp in (0, 0xFFFD) or is_control(char):
            removed.append(cp)
        if is_whitespace(char):
            whitespace.append(cp)
        if is_punctuation(char):
            punctuation.append(cp)
        elif unicodedata.category(char) == "Mn":
            marks.append(cp)
    cjk = None if ascii_only else re.compile(
        "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in CJK_RANGES) + "]")
    space, punct = _char_class(whitespace), _char_class(punctuation)
    return _Rules(re.compile(_char_class(removed)), re.compile(space), cjk,
                  dict.fromkeys(marks), re.compile(f"[^{space[1:-1]}{punct[1:-1]}]+|{punct}"))


def normalize(text: str, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """BERT's normalisation (module docstring, step 2): clean, white space -> " ", spaces
    around CJK ideographs, then (``strip_accents``, default: as ``lowercase``) NFD without
    non-spacing marks, then (``lowercase``) lower case one character at a time."""
    rules = _rules(text.isascii())
    text = rules.removed.sub("", text)
    text = rules.whitespace.sub(" ", text)
    if rules.cjk is not None:
        text = rules.cjk.sub(r" \g<0> ", text)
    if rules.nonspacing_marks and (lowercase if strip_accents is None else strip_accents):
        text = unicodedata.normalize("NFD", text).translate(rules.nonspacing_marks)
    if lowercase:
        # str.lower() maps each character on its own except the capital sigma, which it
        # writes as final sigma at a word's end; mapping it to sigma first removes that case.
        text = text.replace("\u03a3", "\u03c3").lower()
    return text


def pre_tokenize(text: str) -> list[str]:
    """BERT's pre-tokenisation (step 3): the words of ``text``, split on white space and
    around each punctuation character."""
    return _rules(text.isascii()).word.findall(text)


# -- training: the pair counts, kept up to date merge by merge ------------------------------------
def score(pair_count: int, count_a: int, count_b: int) -> float:
    """count(ab) / (count(a) count(b)), in float64 (the kernel computes the same floats)."""
    return float(pair_count) / (float(count_a) * float(count_b))


class PairCounts:
    """The segmentation of every distinct word and the counts the score needs, updated in
    place by ``merge`` (the specification of the kernel's bookkeeping).

    words[w]           the symbol ids of distinct word w, in order
    weights[w]         how often word w occurs in the corpus
    symbols            the symbol strings, id order (merge m makes symbol n_initial + m)
    symbol_count[s]    sum over words of weight * (occurrences of s in the word)
    pair_count[a, b]   sum over words of weight * (positions where b follows a); only
                       pairs with a positive count are kept
    where[a, b]        the words that may contain the pair (a superset: kept lazily)
    pairs_of[s]        the pairs in ``pair_count`` that contain s
    """

    def __init__(self, words, weights, symbols):
        self.words = [list(word) for word in words]
        self.weights = list(weights)
        self.symbols = list(symbols)
        self.symbol_count = [0] * len(self.symbols)
        self.pair_count, self.where, self.pairs_of = {}, defaultdict(set), defaultdict(set)
        self._changed = set()
        for w, (word, weight) in enumerate(zip(self.words, self.weights)):
            for s in word:
                self.symbol_count[s] += weight
            for pair in zip(word, word[1:]):
                self._add(pair, weight, w)

    def score(self, pair) -> float:
        a, b = pair
        return score(self.pair_count[pair], self.symbol_count[a], self.symbol_count[b])

    def _add(self, pair, delta: int, word: int | None = None) -> None:
        count = self.pair_count.get(pair, 0) + delta
        self._changed.add(pair)
        if count == 0:
            del self.pair_count[pair]
            self.where.pop(pair, None)
            for s in pair:
                self.pairs_of[s].discard(pair)
            return
        self.pair_count[pair] = count
        if delta > 0:
            self.where[pair].add(word)
            for s in pair:
                self.pairs_of[s].add(pair)

    def merge(self, a: int, b: int) -> set:
        """Replace every occurrence of a followed by b (left to right in each word) by the
        symbol a + b[2:]; return the pairs whose score may have changed: those whose count
        changed and every remaining pair that contains a, b or the new symbol."""
        c = len(self.symbols)                          # always a new string (see above)
        self.symbols.append(self.symbols[a] + self.symbols[b][len(CONTINUATION):])
        self.symbol_count.append(0)
        self._changed = set()
        for w in sorted(self.where.pop((a, b))):
            word, n = self.words[w], self.weights[w]
            i = 0
            while i < len(word) - 1:
                if word[i] == a and word[i + 1] == b:
                    self._add((a, b), -n)
                    if i > 0:                                  # (left, a) -> (left, ab)
                        self._add((word[i - 1], a), -n)
                        self._add((word[i - 1], c), n, w)
                    if i + 2 < len(word):                      # (b, right) -> (ab, right)
                        self._add((b, word[i + 2]), -n)
                        self._add((c, word[i + 2]), n, w)
                    word[i:i + 2] = [c]
                    self.symbol_count[a] -= n
                    self.symbol_count[b] -= n
                    self.symbol_count[c] += n
                i += 1
        dirty = self._changed | self.pairs_of[a] | self.pairs_of[b] | self.pairs_of[c]
        return {pair for pair in dirty if pair in self.pair_count}


def train_merges_reference(words, weights, symbols, size: int, min_frequency: int) -> list:
    """Merge the pair of highest score until there are ``size`` symbols or no pair occurs
    ``min_frequency`` times; return the symbol strings (the initial ones first, then each
    new one in the order it was made). ``words``: lists of ids into ``symbols``.

    The heap holds (-score, -count, a, b): the smallest tuple is the highest score, ties to
    the higher count, then to the smaller ids. An entry is valid while its score and count
    are the pair's current ones; ``merge`` says which pairs changed, and those get a new
    entry, so the valid entry of largest score is always in the heap.
    """
    state = PairCounts(words, weights, symbols)

    def entry(pair):
        return (-state.score(pair), -state.pair_count[pair], *pair)

    heap = [entry(pair) for pair, n in state.pair_count.items() if n >= min_frequency]
    heapq.heapify(heap)
    while heap and len(state.symbols) < size:
        top = heapq.heappop(heap)
        pair = top[2:]
        if pair not in state.pair_count or top != entry(pair):
            continue                                           # stale entry
        for changed in state.merge(*pair):
            if state.pair_count[changed] >= min_frequency:
                heapq.heappush(heap, entry(changed))
    return state.symbols


def train_merges(words, weights, symbols, size: int, min_frequency: int) -> list:
    """``train_merges_reference``, run by the numba kernel when ``use_numba()`` allows."""
    if not use_numba():
        return train_merges_reference(words, weights, symbols, size, min_frequency)
    from tinylm.kernels.wordpiece import train_merges as kernel

    lengths = numpy.array([len(word) for word in words], dtype=numpy.int64)
    flat = numpy.fromiter((s for word in words for s in word), dtype=numpy.int64,
                          count=int(lengths.sum()))
    word_of = numpy.repeat(numpy.arange(len(words), dtype=numpy.int64), lengths)
    merges = kernel(flat, word_of, numpy.asarray(weights, dtype=numpy.int64), len(symbols),
                    size, min_frequency)
    symbols = list(symbols)
    for a, b in merges.tolist():
        symbols.append(symbols[a] + symbols[b][len(CONTINUATION):])
    return symbols


def initial_alphabet(word_counts: Counter, limit_alphabet: int | None,
                     max_input_chars_per_word: int) -> tuple[list, list, list]:
    """(symbols, words, weights) to start training from: the words that can be covered (at
    most ``max_input_chars_per_word`` characters, every character among the
    ``limit_alphabet`` most frequent ones -- by occurrences, ties to the lower code point),
    in sorted order, each as a list of symbol ids; the symbols are every first character
    (plain) and every later one ("##" + char) of those words, each kind sorted."""
    words = {w: n for w, n in word_counts.items() if len(w) <= max_input_chars_per_word}
    if limit_alphabet is not None:
        chars = Counter()
        for word, n in words.items():
            for char in word:
                chars[char] += n
        kept = set(sorted(chars, key=lambda ch: (-chars[ch], ch))[:limit_alphabet])
        words = {w: n for w, n in words.items() if set(w) <= kept}
    first = sorted({w[0] for w in words})
    later = sorted({CONTINUATION + ch for w in words for ch in w[1:]})
    symbols = first + later
    id_of = {s: i for i, s in enumerate(symbols)}
    ordered = sorted(words)
    ids = [[id_of[w[0]], *(id_of[CONTINUATION + ch] for ch in w[1:])] for w in ordered]
    return symbols, ids, [words[w] for w in ordered]


# -- the tokenizer --------------------------------------------------------------------------------
class WordPieceTokenizer:
    """BERT's tokenizer over a list of ``tokens`` (the vocabulary, id order), with the
    ``specials`` found in raw text and ``unk`` for the words no pieces cover."""

    type_name = "wordpiece"

    def __init__(self, tokens, specials=BERT_SPECIALS, unk: str = UNK, lowercase: bool = True,
                 strip_accents: bool | None = None,
                 max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD):
        tokens, specials = list(tokens), list(specials)
        if unk not in tokens:
            raise ValueError(f"the vocabulary has no unknown token {unk!r}: WordPiece maps "
                             "every word it cannot cover to it. Add it to the tokens (BERT "
                             "has it at id 1 after [PAD]) or name the one it has with unk=.")
        missing = [s for s in specials if s not in tokens]
        if missing:
            raise ValueError(f"the special tokens {missing} are not in the vocabulary; add "
                             "them to the tokens or leave them out of specials=.")
        if max_input_chars_per_word < 1:
            raise ValueError(f"max_input_chars_per_word={max_input_chars_per_word} must be "
                             "at least 1 (BERT uses 100).")
        self.vocab = Vocabulary(tokens, unk=unk)
        self.specials, self.unk = specials, unk
        self.lowercase, self.strip_accents = lowercase, strip_accents
        self.max_input_chars_per_word = max_input_chars_per_word
        self._id_of = {token: i for i, token in enumerate(tokens)}
        # No piece is longer than this many characters of the word: the longest-match search
        # starts there rather than at the word's end (same result, fewer look-ups).
        self._longest = max(len(t.removeprefix(CONTINUATION)) for t in tokens)
        by_length = sorted(specials, key=len, reverse=True)
        self._special_split = (re.compile("(" + "|".join(map(re.escape, by_length)) + ")")
                               if specials else None)
        self._cache = {}                     # word -> its ids (words repeat: encode once)

    # -- training ------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts, vocab_size: int, min_frequency: int = 1,
              limit_alphabet: int | None = None, specials=BERT_SPECIALS, unk: str = UNK,
              lowercase: bool = True, strip_accents: bool | None = None,
              max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD) -> "WordPieceTokenizer":
        """A vocabulary of at most ``vocab_size`` tokens learnt from ``texts`` (a string or
        an iterable of strings, e.g. lines): the specials (ids 0..), the initial alphabet,
        then the merged pieces in the order they were made (module docstring).

        ``min_frequency``: a pair seen fewer times is never merged. The score favours rare
        pairs, so this is what makes frequent words whole: 16,384 pieces trained on the
        pre-training corpus of tinylm/data/pretraining.py cut its words into 2.4 pieces
        on average with 1, 1.05 with 20 (HF's frequency-trained vocabulary: 1.01).
        ``limit_alphabet``: keep only the most frequent characters (module docstring).
        """
        if min_frequency < 1:
            raise ValueError(f"min_frequency={min_frequency} must be at least 1.")
        if limit_alphabet is not None and limit_alphabet < 1:
            raise ValueError(f"limit_alphabet={limit_alphabet} must be at least 1 (or None: "
                             "keep every character).")
        fixed = list(dict.fromkeys([*specials, unk]))
        piece_like = [s for s in fixed if len(pre_tokenize(s)) == 1]
        if piece_like:
            raise ValueError(f"the special tokens {piece_like} read as one word or one "
                             "punctuation character, so training could make the same string "
                             "a piece; write specials as BERT does, e.g. '[SEP]'.")
        splitter = cls(fixed, specials, unk, lowercase, strip_accents, max_input_chars_per_word)
        counts = Counter()
        for text in [texts] if isinstance(texts, str) else texts:
            counts.update(splitter.words(text))
        if not counts:
            raise ValueError("cannot train a WordPiece vocabulary: the text has no words "
                             "(it is empty, white space, control characters or special "
                             "tokens only). Check the lines that were loaded.")
        symbols, words, weights = initial_alphabet(counts, limit_alphabet,
                                                   max_input_chars_per_word)
        if vocab_size < len(fixed) + len(symbols):
            n_chars = len({s.removeprefix(CONTINUATION) for s in symbols})
            raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(fixed)} "
                             f"special tokens plus the {len(symbols)} symbols of the initial "
                             f"alphabet ({n_chars} characters, as first characters and as "
                             f"'##' continuations). Use vocab_size >= "
                             f"{len(fixed) + len(symbols)}, or keep fewer characters with "
                             "limit_alphabet=.")
        if not words:
            raise ValueError(f"cannot train a WordPiece vocabulary: no word is at most "
                             f"max_input_chars_per_word={max_input_chars_per_word} "
                             "characters long and made of the kept alphabet.")
        pieces = train_merges(words, weights, symbols, vocab_size - len(fixed), min_frequency)
        return cls([*fixed, *pieces], specials, unk, lowercase, strip_accents,
                   max_input_chars_per_word)

    # -- encoding ------------------------------------------------------------------------------
    def _segments(self, text: str):
        """(is_special, piece) for the special tokens of ``text`` and the text between them."""
        if self._special_split is None:
            yield False, text
            return
        for i, piece in enumerate(self._special_split.split(text)):
            if piece:
                yield i % 2 == 1, piece        # re.split puts the matches at odd indices

    def words(self, text: str) -> list[str]:
        """The normalised, pre-tokenised words of ``text`` (steps 2-3), specials left out."""
        return [word for is_special, piece in self._segments(text) if not is_special
                for word in pre_tokenize(normalize(piece, self.lowercase, self.strip_accents))]

    def word_pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first (step 4): the pieces of one pre-tokenised word, or
        [unk] when it is longer than ``max_input_chars_per_word`` or cannot be covered."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            prefix = CONTINUATION if start > 0 else ""
            for end in range(min(len(word), start + self._longest), start, -1):
                if prefix + word[start:end] in self._id_of:
                    break
            else:
                return [self.unk]                  # nothing fits here: the whole word is [UNK]
            pieces.append(prefix + word[start:end])
            start = end
        return pieces

    def _word_ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self._cache[word] = [self._id_of[p] for p in self.word_pieces(word)]
        return ids

    def encode(self, text: str) -> numpy.ndarray:
        """text -> ids [n] int64."""
        ids = []
        for is_special, piece in self._segments(text):
            if is_special:
                ids.append(self._id_of[piece])
                continue
            for word in pre_tokenize(normalize(piece, self.lowercase, self.strip_accents)):
                ids += self._word_ids(word)
        return numpy.array(ids, dtype=numpy.int64)

    def split(self, text: str) -> list[str]:
        """The pieces of ``text`` as strings."""
        return [self.vocab.tokens[i] for i in self.encode(text).tolist()]

    def decode(self, ids) -> str:
        """Pieces joined by spaces, a "##" piece glued to the one before it without its
        prefix (HF's WordPiece decoder with cleanup=False); specials are kept."""
        ids = to_numpy(ids).astype(numpy.int64).ravel()
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bad.any():
            position = int(numpy.argmax(bad))
            raise ValueError(f"cannot decode id {int(ids[position])} at position {position}: "
                             f"ids must lie in [0, {self.vocab_size}), this vocabulary's size. "
                             "Decode with the tokenizer that encoded them.")
        words = []
        for i, token in enumerate(self.vocab.tokens[j] for j in ids.tolist()):
            if i > 0 and token.startswith(CONTINUATION):
                words[-1] += token[len(CONTINUATION):]
            else:
                words.append(token)
        return " ".join(words)

    # -- vocabulary and storage ------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_to_id(self, token: str) -> int:
        return self.vocab.token_to_id(token)

    def id_to_token(self, index: int) -> str:
        return self.vocab.id_to_token(index)

    def to_dict(self) -> dict:
        return {"type": self.type_name, "tokens": self.vocab.tokens, "specials": self.specials,
                "unk": self.unk, "lowercase": self.lowercase,
                "strip_accents": self.strip_accents,
                "max_input_chars_per_word": self.max_input_chars_per_word}

    @classmethod
    def from_dict(cls, state: dict) -> "WordPieceTokenizer":
        state = dict(state)
        kind = state.pop("type", None)
        if kind != cls.type_name:
            raise ValueError(f"this is a {kind!r} tokenizer, not {cls.type_name!r}; rebuild it "
                             "with tinylm.data.tokenizers.tokenizer_from_dict.")
        return cls(**state)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1),
                              encoding="utf-8")

    @classmethod
    def load(cls, path) -> "WordPieceTokenizer":
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no tokenizer file at {path}.") from None
        return cls.from_dict(state)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
