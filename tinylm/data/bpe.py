"""Byte-level BPE（字节对编码, byte pair encoding）: train, encode, decode (chapter 02).

    tok = BPETokenizer.train(text, vocab_size=4096)           # GPT-2's split pattern
    ids = tok.encode("hello world")                           # numpy int64
    tok.decode(ids)                                           # 'hello world'
    tok.save("bpe.json"); load_tokenizer("bpe.json")          # JSON, no pickle

The idea (Sennrich et al. 2016, after Gage's 1994 compression scheme; byte-level as in
GPT-2). Text is UTF-8 bytes, so the 256 byte values are the first 256 tokens and any string
can be written with them -- no unknown token is ever needed. Training repeats one step:
count every adjacent pair of tokens in the corpus, and make the most frequent pair (a, b) a
new token, id 256, 257, ...; then rewrite the corpus with it. The ordered list of these
merges *is* the tokenizer. Encoding a new text replays them: of the adjacent pairs that are
merges, merge the one made earliest (lowest id), leftmost first, until none is left.

A worked example (the one of Wikipedia's "Byte pair encoding", no split pattern). The
corpus "aaabdaaabac" is bytes 97 97 97 98 100 97 97 97 98 97 99:

    step  pair counts (the largest)          merge             corpus after it
    1     aa 4, ab 2, ...                    (97, 97)  -> 256   Z a b d Z a b a c   (Z = aa)
    2     Za 2, ab 2 (tie), ...              (97, 98)  -> 257   Z Y d Z Y a c       (Y = ab)
    3     ZY 2, ...                          (256, 257) -> 258  X d X a c           (X = ZY)
    4     Xd 1, dX 1, Xa 1, ac 1 (ties)      (97, 99)  -> 259   X d X c'

Step 1 also shows how a pair overlapping itself is counted: "aaa" holds two (a, a) pairs,
but merging them left to right gives (aa) a, one merge, as in a corpus rewritten left to
right. Ties (step 2, step 4) go to the smallest pair (a, b), comparing a first, then b:
(97, 98) before (256, 97). This rule is tinylm's own choice -- minbpe takes the pair seen
first in the text, Hugging Face's trainer the smallest pair in *its* ids (bytes ordered by
their printable stand-ins, see tinylm/data/openai_bpe.py) -- and every version here, the
plain one, the incremental one and the numba kernel, follows it.

Chunks (the "regex" BPE of GPT-2 and after). Left alone, BPE would merge across word
boundaries ("dog." and "dog!" and "dog " would each become tokens). So the text is first
cut into chunks by a regular expression -- letters, digits, punctuation and white space
apart, with a leading space kept on the word ("hello world" -> "hello", " world") -- and
pairs are counted, and merges applied, only inside a chunk. ``GPT2_SPLIT_PATTERN`` and
``GPT4_SPLIT_PATTERN`` are tiktoken's, character for character (``\\p{L}`` and the
possessive ``++`` need the ``regex`` module, not ``re``). A chunk that occurs n times is
counted once with weight n: in Tiny Shakespeare 297,833 chunks are 15,057 distinct ones.
Which characters are letters (``\\p{L}``) and digits (``\\p{N}``) comes from the regex
module's Unicode tables, and tiktoken's from those of Rust's regex crate, which are older:
of the 1.1 million code points, 17,480 are letters or digits to the regex module and not to
tiktoken, every one of them unassigned in Python 3.11's Unicode 14.0 (scripts added since,
e.g. the CJK ideographs from U+323B0 on). Text in those characters can be chunked
differently, and encode to other ids than tiktoken's; on every character assigned in
Unicode 14.0 the two agree.

Training without recounting (``PairCounts``). Merging (a, b) into c changes only the pairs
at its occurrences: for an occurrence with neighbours x (left) and y (right),

    count(a, b) -= w,   count(x, a) -= w,   count(x, c) += w,
                        count(b, y) -= w,   count(c, y) += w

(w: the chunk's weight). So each step costs the occurrences of the pair merged, not the
corpus: a map from each pair to the chunks that hold it finds them, and a heap of
(count, pair) entries finds the largest count. A pair's count only ever falls once it
exists (the pairs that grow contain the new token c, and are born in this step), so an
entry is an upper bound of its pair's count; a popped entry whose count is out of date is
pushed back with the current count, and the first exact one is the largest. The plain
Python version (``train_merges_reference``) is the specification; ``train_merges_by_recount``
is the textbook loop it must equal (a recount after every merge: what step 1 above does);
the numba kernel of tinylm/kernels/bpe.py runs the reference's algorithm on arrays and is
used when ``tinylm.backend.use_numba()`` says so. The three give the same merges.

Encoding (``merge_by_rank_reference``): in each chunk, of the adjacent pairs that have a
rank (for a trained tokenizer: the pair is a merge, and its rank is the id it makes), merge
the one of lowest rank, the leftmost if it occurs twice, and repeat. Encoded chunks are
remembered (a cache of chunk -> ids; most chunks of a text repeat), and the unseen ones of a
text go to the kernel in one call.

Special tokens (tiktoken's semantics). ``special_tokens`` maps strings such as
"<|endoftext|>" to ids above the merges. ``encode(text)`` refuses a text that contains one
(ValueError naming it): a special token in data usually means the data is not what you
think it is. ``allowed_special={...}`` or ``"all"`` encodes them as their ids;
``disallowed_special=()`` encodes them as ordinary text; ``encode_ordinary`` ignores them.
Where two special tokens overlap in the text, the longer one is matched.

Decoding joins the tokens' bytes (``decode_bytes``, exact); ``decode`` turns them into a
string with errors="replace" as tiktoken does, since a token sequence may end in the middle
of a character. For every string s that is valid Unicode, decode(encode(s)) == s. A string
holding a lone surrogate (not valid Unicode, so it has no UTF-8) is encoded, as tiktoken
does, with each lone surrogate replaced by U+FFFD.
"""

from __future__ import annotations

import functools
import heapq
import json
from collections import Counter
from pathlib import Path

import numpy
import regex

from tinylm.backend import to_numpy, use_numba

# tiktoken's pat_str of r50k_base (GPT-2) and of cl100k_base (GPT-3.5/GPT-4), exactly.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""")
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
SPLIT_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN, "none": None}

N_BYTES = 256
CACHE_LIMIT = 1 << 17          # encoded chunks remembered; the cache is emptied beyond this
NO_LIMIT = numpy.iinfo(numpy.int64).max


# -- step 1: the two operations, and training as the textbook writes it ----------------------------
def pair_counts(words, weights) -> Counter:
    """{(a, b): sum over words of weight * (positions where b follows a)}."""
    counts = Counter()
    for word, weight in zip(words, weights):
        for pair in zip(word, word[1:]):
            counts[pair] += weight
    return counts


def merge_pair(word: list, pair: tuple, new_id: int) -> list:
    """``word`` with each occurrence of ``pair``, left to right, replaced by ``new_id``."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def best_pair(counts: dict) -> tuple:
    """The pair of largest count; ties: the smallest (a, b)."""
    return min(counts, key=lambda pair: (-counts[pair], pair))


def train_merges_by_recount(words, weights, n_merges: int, first_id: int = N_BYTES) -> list:
    """The definition: recount every pair, merge the best, repeat (O(merges x corpus))."""
    words, merges = [list(word) for word in words], []
    while len(merges) < n_merges:
        counts = pair_counts(words, weights)
        if not counts:
            break
        pair = best_pair(counts)
        words = [merge_pair(word, pair, first_id + len(merges)) for word in words]
        merges.append(pair)
    return merges


# -- step 2: the same merges, counts kept up to date -----------------------------------------------
class PairCounts:
    """The chunks' current tokens and the weighted pair counts, updated in place by ``merge``.

    words[w]          the token ids of distinct chunk w, in order
    weights[w]        how often chunk w occurs
    pair_count[a, b]  sum over chunks of weight * (positions where b follows a); only pairs
                      with a positive count are kept
    where[a, b]       the chunks that may hold the pair (a superset: kept lazily)
    """

    def __init__(self, words, weights):
        self.words = [list(word) for word in words]
        self.weights = list(weights)
        self.pair_count, self.where = {}, {}
        for w, (word, weight) in enumerate(zip(self.words, self.weights)):
            for pair in zip(word, word[1:]):
                self._add(pair, weight, w)

    def _add(self, pair, delta: int, word: int | None = None) -> None:
        count = self.pair_count.get(pair, 0) + delta
        if count == 0:
            del self.pair_count[pair]
            self.where.pop(pair, None)
            return
        self.pair_count[pair] = count
        if delta > 0:
            self.where.setdefault(pair, set()).add(word)

    def merge(self, pair, new_id: int) -> list:
        """Replace each occurrence of ``pair`` (left to right in each chunk) by ``new_id``;
        return the pairs this created (each contains ``new_id``), with their counts."""
        a, b = pair
        created = set()
        for w in sorted(self.where.pop(pair)):
            word, n = self.words[w], self.weights[w]
            i = 0
            while i < len(word) - 1:
                if word[i] == a and word[i + 1] == b:
                    self._add(pair, -n)
                    if i > 0:                                  # (x, a) -> (x, new)
                        self._add((word[i - 1], a), -n)
                        self._add((word[i - 1], new_id), n, w)
                        created.add((word[i - 1], new_id))
                    if i + 2 < len(word):                      # (b, y) -> (new, y)
                        self._add((b, word[i + 2]), -n)
                        self._add((new_id, word[i + 2]), n, w)
                        created.add((new_id, word[i + 2]))
                    word[i:i + 2] = [new_id]
                i += 1
        return [(p, self.pair_count[p]) for p in created if p in self.pair_count]


def train_merges_reference(words, weights, n_merges: int, first_id: int = N_BYTES) -> list:
    """At most ``n_merges`` merges [(a, b), ...]; merge m makes id ``first_id + m``.

    The heap holds (-count, pair): the smallest entry is the largest count, ties to the
    smallest pair (the module docstring's rule). An entry's count is an upper bound of the
    pair's current one; an outdated entry is pushed back with the current count.
    """
    state = PairCounts(words, weights)
    heap = [(-count, pair) for pair, count in state.pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        negative_count, pair = heapq.heappop(heap)
        count = state.pair_count.get(pair, 0)
        if count != -negative_count:
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        for created, created_count in state.merge(pair, first_id + len(merges)):
            heapq.heappush(heap, (-created_count, created))
        merges.append(pair)
    return merges


def train_merges(words, weights, n_merges: int, first_id: int = N_BYTES) -> list:
    """``train_merges_reference``, run by the numba kernel when ``use_numba()`` allows."""
    if not use_numba():
        return train_merges_reference(words, weights, n_merges, first_id)
    from tinylm.kernels.bpe import train_merges as kernel

    lengths = numpy.array([len(word) for word in words], dtype=numpy.int64)     # [W]
    flat = numpy.fromiter((t for word in words for t in word), dtype=numpy.int64,
                          count=int(lengths.sum()))                              # [N]
    word_of = numpy.repeat(numpy.arange(len(words), dtype=numpy.int64), lengths)  # [N]
    merges = kernel(flat, word_of, numpy.asarray(weights, dtype=numpy.int64), n_merges, first_id)
    return [tuple(pair) for pair in merges.tolist()]


# -- step 3: encoding by merge rank ----------------------------------------------------------------
def merge_by_rank_reference(ids, ranks: dict, limit: int = NO_LIMIT) -> list:
    """One chunk's ids after merging, again and again, the adjacent pair of lowest rank
    (the leftmost among equals); ``ranks``: (a, b) -> the id of the merged token, which is
    also its rank. Pairs of rank >= ``limit`` are left alone."""
    ids = list(ids)
    while len(ids) > 1:
        rank, i = min((ranks.get(pair, NO_LIMIT), i) for i, pair in enumerate(zip(ids, ids[1:])))
        if rank >= limit:
            break
        ids[i:i + 2] = [rank]
    return ids


class RankTable:
    """(a, b) -> rank, for the reference (a dict) and the kernel (its hash table, built on
    first use)."""

    def __init__(self, ranks: dict):
        self.ranks = ranks
        self._kernel_table = None

    def merge_chunks(self, chunks: list, limits=None) -> list:
        """Each chunk's ids (a list of lists of ints) after ``merge_by_rank_reference``."""
        limits = [NO_LIMIT] * len(chunks) if limits is None else limits
        if not use_numba():
            return [merge_by_rank_reference(c, self.ranks, limit)
                    for c, limit in zip(chunks, limits)]
        from tinylm.kernels import bpe as kernels

        if self._kernel_table is None:
            pairs = numpy.array(list(self.ranks), dtype=numpy.int64).reshape(-1, 2)    # [P, 2]
            values = numpy.fromiter(self.ranks.values(), dtype=numpy.int64, count=len(pairs))
            self._kernel_table = kernels.build_rank_table(pairs[:, 0].copy(),
                                                          pairs[:, 1].copy(), values)
        lengths = numpy.array([len(c) for c in chunks], dtype=numpy.int64)         # [C]
        offsets = numpy.concatenate([[0], numpy.cumsum(lengths)]).astype(numpy.int64)
        flat = numpy.fromiter((t for c in chunks for t in c), dtype=numpy.int64,
                              count=int(offsets[-1]))                               # [N]
        merged, bounds = kernels.merge_by_rank(flat, offsets, self._kernel_table,
                                               numpy.asarray(limits, dtype=numpy.int64))
        merged, bounds = merged.tolist(), bounds.tolist()
        return [merged[bounds[k]:bounds[k + 1]] for k in range(len(chunks))]


# -- step 4: the tokenizer -------------------------------------------------------------------------
def compile_pattern(pattern: str | None):
    """The compiled split pattern (None: no split, the whole text is one chunk)."""
    if pattern is None:
        return None
    try:
        return regex.compile(pattern)
    except regex.error as error:
        raise ValueError(f"the split pattern {pattern!r} is not a valid regular expression "
                         f"({error}); use GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN or None."
                         ) from None


@functools.lru_cache(maxsize=64)
def _alternation(tokens: frozenset):
    """A regex matching any of ``tokens`` literally, the longest first where they overlap."""
    ordered = sorted(tokens, key=lambda token: (-len(token), token))
    return regex.compile("|".join(regex.escape(token) for token in ordered))


def valid_unicode(text: str) -> str:
    """``text``, or (when it holds lone surrogates, which have no UTF-8) ``text`` with each
    replaced by U+FFFD -- what tiktoken encodes in that case."""
    if not isinstance(text, str):
        raise TypeError(f"a tokenizer encodes a str, not {type(text).__name__}"
                        + (": decode the bytes first, e.g. data.decode('utf-8')."
                           if isinstance(text, bytes) else "."))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class ByteLevelBPE:
    """What every byte-level BPE tokenizer shares: the tokens' bytes, a rank table, a split
    pattern, special tokens, and encode / decode with tiktoken's special-token rules.

    token_bytes[i]   the bytes of token i (None where no token has that id)
    byte_ids[b]      the id of the one-byte token b (b itself for a tinylm-trained one)
    """

    def _set_tables(self, token_bytes: list, byte_ids, ranks: dict, pattern: str | None,
                    special_tokens: dict, whole_chunk_ids: dict | None) -> None:
        self.pattern = pattern
        self.special_tokens = dict(special_tokens)
        self._split_regex = compile_pattern(pattern)
        self._byte_ids = [int(i) for i in byte_ids]                                # [256]
        self._table = RankTable(ranks)
        size = max([len(token_bytes) - 1, *self.special_tokens.values()]) + 1
        self._bytes_of = list(token_bytes) + [None] * (size - len(token_bytes))
        for token, i in self.special_tokens.items():
            self._bytes_of[i] = token.encode("utf-8")
        self._known = numpy.array([b is not None for b in self._bytes_of])          # [V]
        self._id_of_bytes = whole_chunk_ids        # bytes -> id: a chunk that is one token
        self._cache = {}                                     # chunk -> its ids

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ids in between that name no token stay unused)."""
        return len(self._bytes_of)

    def token_bytes(self, index: int) -> bytes:
        """The bytes of token ``index`` (a special token: its UTF-8)."""
        return self._bytes_of[self._checked_ids([index])[0]]

    # -- encoding ------------------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Forget the encoded chunks (what a benchmark of cold encoding does first)."""
        self._cache.clear()

    def _split(self, text: str) -> list:
        if self._split_regex is None:
            return [text] if text else []
        return self._split_regex.findall(text)

    def _encode_new_chunks(self, chunks) -> None:
        """Encode ``chunks`` (not yet in the cache) and remember them."""
        todo = []
        for chunk in chunks:
            raw = chunk.encode("utf-8")
            whole = self._id_of_bytes.get(raw) if self._id_of_bytes is not None else None
            if whole is not None:
                self._cache[chunk] = [whole]
            else:
                todo.append((chunk, raw))
        if todo:
            byte_ids = self._byte_ids
            merged = self._table.merge_chunks([[byte_ids[b] for b in raw] for _, raw in todo])
            self._cache.update(zip((chunk for chunk, _ in todo), merged))

    def _ordinary_ids(self, text: str) -> list:
        """The ids of ``text`` (valid Unicode) with no special tokens recognised."""
        chunks = self._split(text)
        cache = self._cache
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        self._encode_new_chunks({c for c in chunks if c not in cache})
        ids = []
        extend = ids.extend
        for chunk in chunks:
            extend(cache[chunk])
        return ids

    def encode_ordinary(self, text: str) -> numpy.ndarray:
        """text -> ids [n] int64, special tokens encoded as the ordinary text they are."""
        return numpy.array(self._ordinary_ids(valid_unicode(text)), dtype=numpy.int64)

    def _special_sets(self, allowed_special, disallowed_special) -> tuple[set, set]:
        """tiktoken's rules: "all" allowed is every special token; "all" disallowed is every
        one not allowed."""
        names = set(self.special_tokens)
        sets = []
        for argument, label in ((allowed_special, "allowed_special"),
                                (disallowed_special, "disallowed_special")):
            if isinstance(argument, str) and argument != "all":
                raise ValueError(f"{label}={argument!r}: pass a set of special tokens, e.g. "
                                 f"{label}={{{argument!r}}}, or the string 'all'.")
            chosen = names if argument == "all" else set(argument)
            unknown = chosen - names
            if unknown:
                raise ValueError(f"{label} names {sorted(unknown)}, which are not special "
                                 f"tokens of this tokenizer; its special tokens are "
                                 f"{sorted(names) or 'none'}.")
            sets.append(chosen)
        allowed = sets[0]
        disallowed = names - allowed if disallowed_special == "all" else sets[1]
        return allowed, disallowed

    def encode(self, text: str, allowed_special=frozenset(),
               disallowed_special="all") -> numpy.ndarray:
        """text -> ids [n] int64, special tokens as the module docstring says (tiktoken's
        ``Encoding.encode``): a disallowed one in the text is a ValueError; an allowed one
        is its id; the others are ordinary text."""
        allowed, disallowed = self._special_sets(allowed_special, disallowed_special)
        text = valid_unicode(text)
        if disallowed:
            found = _alternation(frozenset(disallowed)).search(text)
            if found:
                token = found.group()
                raise ValueError(
                    f"the text contains the special token {token!r} (at character "
                    f"{found.start()}), which is disallowed. To encode it as the special token "
                    f"(id {self.special_tokens[token]}), pass allowed_special={{{token!r}}} or "
                    f"allowed_special='all'; to encode it as ordinary text, pass "
                    f"disallowed_special=() (or encode_ordinary).")
        if not allowed:
            return numpy.array(self._ordinary_ids(text), dtype=numpy.int64)
        ids, start = [], 0
        for found in _alternation(frozenset(allowed)).finditer(text):
            ids += self._ordinary_ids(text[start:found.start()])
            ids.append(self.special_tokens[found.group()])
            start = found.end()
        ids += self._ordinary_ids(text[start:])
        return numpy.array(ids, dtype=numpy.int64)

    # -- decoding ------------------------------------------------------------------------------
    def _checked_ids(self, ids) -> list:
        ids = to_numpy(ids).astype(numpy.int64).ravel()
        bad = (ids < 0) | (ids >= self.vocab_size)
        bad[~bad] = ~self._known[ids[~bad]]
        if bad.any():
            position = int(numpy.argmax(bad))
            raise ValueError(f"cannot decode id {int(ids[position])} at position {position}: "
                             f"no token of this tokenizer has it (ids lie in [0, "
                             f"{self.vocab_size}), and not every id in between is a token). "
                             "Decode with the tokenizer that encoded them.")
        return ids.tolist()

    def decode_bytes(self, ids) -> bytes:
        """The tokens' bytes, joined: exactly the UTF-8 of the text that was encoded."""
        table = self._bytes_of
        return b"".join([table[i] for i in self._checked_ids(ids)])

    def decode(self, ids) -> str:
        """``decode_bytes`` as text; bytes that are not valid UTF-8 (a sequence cut inside a
        character) become U+FFFD, as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1),
                              encoding="utf-8")


def _checked_merges(merges) -> list:
    """``merges`` as a list of (a, b) int pairs, each made of tokens that exist before it."""
    checked = []
    for m, merge in enumerate(merges):
        ok = (isinstance(merge, (list, tuple)) and len(merge) == 2
              and all(isinstance(i, int) and not isinstance(i, bool) for i in merge))
        if not ok or not all(0 <= i < N_BYTES + m for i in merge):
            raise ValueError(f"merge {m} is {merge!r}; a merge is a pair [a, b] of token ids "
                             f"made before it (0 <= a, b < {N_BYTES + m}). Is this a tinylm "
                             "BPE tokenizer file?")
        checked.append((merge[0], merge[1]))
    return checked


def _checked_specials(special_tokens, first_free: int) -> dict:
    specials = dict(special_tokens or {})
    ids = list(specials.values())
    for token, i in specials.items():
        if not isinstance(token, str) or not token:
            raise ValueError(f"special token {token!r}: special tokens are non-empty strings.")
        if not isinstance(i, int) or i < first_free:
            raise ValueError(f"special token {token!r} has id {i!r}; the ids of special tokens "
                             f"come after the bytes and the merges (>= {first_free}).")
    if len(set(ids)) != len(ids):
        raise ValueError(f"two special tokens share an id: {specials}.")
    return specials


class BPETokenizer(ByteLevelBPE):
    """A byte-level BPE trained by tinylm: ids 0..255 are the bytes, id 256 + m is merge m,
    then the special tokens. ``pattern`` splits the text into chunks (None: no split)."""

    type_name = "bpe"

    def __init__(self, merges, pattern: str | None = None, special_tokens: dict | None = None):
        self.merges = _checked_merges(merges)
        token_bytes = [bytes([b]) for b in range(N_BYTES)]
        for a, b in self.merges:
            token_bytes.append(token_bytes[a] + token_bytes[b])
        specials = _checked_specials(special_tokens, len(token_bytes))
        ranks = {pair: N_BYTES + m for m, pair in enumerate(self.merges)}
        self._set_tables(token_bytes, range(N_BYTES), ranks, pattern, specials,
                         whole_chunk_ids=None)

    @classmethod
    def train(cls, texts, vocab_size: int, pattern: str | None = GPT2_SPLIT_PATTERN,
              special_tokens=()) -> "BPETokenizer":
        """Learn at most ``vocab_size - 256 - len(special_tokens)`` merges from ``texts`` (a
        string or an iterable of strings); the special tokens take the ids after the merges
        and are cut out of the text before counting. Fewer merges are made when the corpus
        runs out of pairs."""
        special_tokens = list(dict.fromkeys(special_tokens))
        if vocab_size < N_BYTES + len(special_tokens):
            raise ValueError(f"vocab_size={vocab_size} is too small: a byte-level BPE "
                             f"vocabulary holds the {N_BYTES} single bytes"
                             + (f" and the {len(special_tokens)} special tokens"
                                if special_tokens else "")
                             + f", so it needs vocab_size >= {N_BYTES + len(special_tokens)}.")
        counts = chunk_counts(texts, compile_pattern(pattern), special_tokens)
        if not counts:
            raise ValueError("cannot train a BPE tokenizer: the corpus is empty. Check the "
                             "text that was loaded.")
        words = [list(chunk.encode("utf-8")) for chunk in counts]
        merges = train_merges(words, list(counts.values()),
                              vocab_size - N_BYTES - len(special_tokens))
        first_special = N_BYTES + len(merges)
        return cls(merges, pattern,
                   {token: first_special + k for k, token in enumerate(special_tokens)})

    def to_dict(self) -> dict:
        return {"type": self.type_name, "merges": [list(pair) for pair in self.merges],
                "pattern": self.pattern, "special_tokens": self.special_tokens}

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={len(self.special_tokens)})")


def chunk_counts(texts, split_regex, special_tokens=()) -> Counter:
    """{chunk: how often it occurs} over ``texts`` (a string or strings), the special tokens
    cut out first (the text between them is split on its own, as encoding does)."""
    counts = Counter()
    specials = _alternation(frozenset(special_tokens)) if special_tokens else None
    for text in [texts] if isinstance(texts, str) else texts:
        for piece in specials.split(valid_unicode(text)) if specials else [valid_unicode(text)]:
            if split_regex is None:
                counts.update([piece] if piece else [])
            else:
                counts.update(split_regex.findall(piece))
    return counts
