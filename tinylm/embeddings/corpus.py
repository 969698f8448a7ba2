"""The data side of Word2Vec: a corpus as integer arrays, the subsampling probabilities and
the noise distribution. Chapter 05.

A corpus of millions of words is held as one int32 array of word ids plus the offsets where
each sentence starts, so the training kernels (tinylm/kernels/word2vec.py) walk it without
Python objects; building it uses C-level loops only (``str.split``, ``Counter``, ``map``),
none written in Python per token.

Vocabulary: the words seen at least ``min_count`` times, most frequent first, ties in order
of first occurrence. Rarer words are removed from the corpus altogether (as gensim does), so
a window reaches past where they were.

Subsampling (Mikolov et al. 2013, as implemented in word2vec.c and gensim): with
threshold t_c = sample * (total retained words), a word seen c times is kept with

    p_keep(c) = min(1, (sqrt(c / t_c) + 1) * t_c / c)

Writing f = c / total for the word's frequency this is sqrt(t/f) + t/f: the paper's formula
discards with probability 1 - sqrt(t/f), i.e. keeps with sqrt(t/f), and the code adds t/f,
so it keeps a little more, and a word with f <= ~2.6 t is never dropped (the paper's rule
starts dropping at f = t). Default sample = 1e-3 thins only the very frequent words.

Noise distribution: P_n(w) = c_w^0.75 / sum_v c_v^0.75 (the 3/4 power flattens it: rare
words are drawn more often than their frequency), stored as gensim's ``cum_table``, the
cumulative sums scaled to integers in [0, 2^31 - 1]: a draw is a uniform integer x below
the last entry and a binary search for the first entry above x.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy

# gensim's LineSentence / word2vec.c cap: a longer line is cut into sentences of this length
# (a 17-million-word one-line corpus such as text8 then trains as gensim trains it).
MAX_SENTENCE_LENGTH = 10_000
NOISE_POWER = 0.75
CUM_TABLE_DOMAIN = 2 ** 31 - 1


@dataclass
class Corpus:
    """A tokenised corpus: the vocabulary and the kept words as ids, sentence by sentence.

    words            [V] the vocabulary, most frequent first (ties: first occurrence)
    counts           [V] int64, each word's count in the corpus
    ids              [N] int32, the corpus without the words below min_count
    sentence_starts  [S + 1] int64, sentence s is ids[starts[s]:starts[s + 1]] (no empty
                     sentence; windows never cross a boundary)
    total_words      raw word count, the removed words included (the words/s basis)
    """

    words: list
    counts: numpy.ndarray
    ids: numpy.ndarray
    sentence_starts: numpy.ndarray
    total_words: int

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def sentence_count(self) -> int:
        return len(self.sentence_starts) - 1

    @property
    def longest_sentence(self) -> int:
        return int(numpy.diff(self.sentence_starts).max(initial=0))


def _split_sentences(text: str):
    """(tokens [N_raw] list of str, sentence lengths [lines] int64): one sentence per line,
    split on white space, lines longer than MAX_SENTENCE_LENGTH cut into pieces."""
    lines = list(map(str.split, text.splitlines()))
    lengths = numpy.fromiter(map(len, lines), dtype=numpy.int64, count=len(lines))
    tokens = list(chain.from_iterable(lines))
    if lengths.size and lengths.max() > MAX_SENTENCE_LENGTH:
        pieces = -(-lengths // MAX_SENTENCE_LENGTH)                      # ceil, per line
        lengths = numpy.concatenate([
            [MAX_SENTENCE_LENGTH] * (p - 1) + [n - MAX_SENTENCE_LENGTH * (p - 1)]
            for n, p in zip(lengths.tolist(), pieces.tolist())])
    return tokens, lengths


def _vocabulary(tokens: list, min_count: int):
    """(words most frequent first, counts [V] int64) of the words seen >= min_count times."""
    counts = Counter(tokens)
    if not counts:
        raise ValueError("corpus_from_text: the text holds no words (it is empty or white "
                         "space only); pass the corpus text, one sentence per line.")
    first_seen = list(dict.fromkeys(tokens))                            # first-occurrence order
    kept = [w for w in first_seen if counts[w] >= min_count]
    if not kept:
        raise ValueError(f"corpus_from_text: min_count={min_count} leaves no vocabulary: the "
                         f"corpus has {len(counts)} distinct words and the most frequent is "
                         f"seen {max(counts.values())} times. Lower min_count.")
    kept.sort(key=counts.__getitem__, reverse=True)                     # stable: ties stay
    return kept, numpy.array([counts[w] for w in kept], dtype=numpy.int64)


def corpus_from_text(text: str, min_count: int = 5) -> Corpus:
    """The Corpus of ``text``: one sentence per line, words split on white space (the
    sentences gensim sees when fed ``[line.split() for line in text.splitlines()]``)."""
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"corpus_from_text: min_count={min_count!r} must be an integer >= 1.")
    tokens, lengths = _split_sentences(text)
    words, counts = _vocabulary(tokens, min_count)
    index = {w: i for i, w in enumerate(words)}
    all_ids = numpy.fromiter(map(index.get, tokens, [-1] * len(tokens)), dtype=numpy.int64,
                             count=len(tokens))                         # [N_raw], -1: removed
    kept = all_ids >= 0
    kept_before = numpy.concatenate([[0], numpy.cumsum(kept)])          # [N_raw + 1]
    line_starts = numpy.concatenate([[0], numpy.cumsum(lengths)])       # [lines + 1]
    starts = numpy.unique(kept_before[line_starts])                     # drops empty ones
    return Corpus(words=words, counts=counts, ids=all_ids[kept].astype(numpy.int32),
                  sentence_starts=starts.astype(numpy.int64), total_words=len(tokens))


def keep_probabilities(counts, sample: float):
    """p_keep [V] float64 of each word under frequent-word subsampling (module docstring):
    min(1, (sqrt(c / t_c) + 1) * t_c / c) with t_c = sample * sum(counts), exactly as
    word2vec.c and gensim compute it; sample = 0 keeps every word.

    The paper (Mikolov et al. 2013, eq. 5) discards with probability 1 - sqrt(t / f): it
    keeps sqrt(t / f), where this keeps sqrt(t / f) + t / f, a little more."""
    counts = numpy.asarray(counts, dtype=numpy.float64)
    if sample < 0:
        raise ValueError(f"keep_probabilities: sample={sample} must be >= 0 (0 disables).")
    if sample == 0:
        return numpy.ones_like(counts)
    threshold = sample * counts.sum()
    return numpy.minimum(1.0, (numpy.sqrt(counts / threshold) + 1.0) * threshold / counts)


def keep_thresholds(keep_probability):
    """[V] int64: p_keep * 2^32, what the kernel compares a 32-bit random number with
    (a word is dropped when its threshold is below the number; gensim's ``sample_int``)."""
    return numpy.round(numpy.asarray(keep_probability) * 2.0 ** 32).astype(numpy.int64)


def noise_distribution(counts, power: float = NOISE_POWER):
    """P_n [V] float64: counts^power, normalised."""
    weights = numpy.asarray(counts, dtype=numpy.float64) ** power
    return weights / weights.sum()


def cumulative_noise_table(counts, power: float = NOISE_POWER,
                           domain: int = CUM_TABLE_DOMAIN):
    """gensim's ``cum_table`` [V] int64: round(domain * cumulative P_n). Word w is drawn when
    a uniform integer x in [0, table[-1]) falls in [table[w - 1], table[w])."""
    cumulative = numpy.cumsum(noise_distribution(counts, power))
    return numpy.round(cumulative * domain).astype(numpy.int64)
