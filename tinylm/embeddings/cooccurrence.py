"""Word-word co-occurrence counts, the training set of GloVe. Chapter 05, section "GloVe".

For a corpus of token ids (one sentence after another) and a window of ``window`` words, word
i at position t and word j at position t + d (1 <= d <= window, same sentence) co-occur once,
with weight 1/d (the GloVe paper's distance weighting: a word next door counts 1, one ten
words away 1/10) or 1 (``distance_weighting=False``):

    X_ij = sum over such pairs (t, t + d) with ids[t] = i, ids[t + d] = j of weight(d)

That counts left contexts only (row = the earlier word), glove's ``-symmetric 0``. The
symmetric count (the default, as in glove's cooccur.c) also adds every pair the other way
round, X_ij + X_ji, so X is symmetric and a word pair with itself (i = j) counts twice.
Sentences do not see each other: a window stops at the sentence's ends.

How: no loop over tokens. For each offset d = 1..window the pairs are two shifted slices of
ids, kept where both ends lie in one sentence, and each pair becomes one 64-bit code,

    code = ((i * V + j) << bits) | (d - 1)           (bits: enough for window - 1)

so one plain sort of the codes groups equal pairs (and, inside them, equal distances), with
no second array to carry along; the sums then come from the run boundaries (``reduceat``).
In the symmetric case each pair is stored once as (min, max) and mirrored at the end. Long
corpora are counted in chunks of whole sentences, merged at the end, so memory stays about
16 bytes per pair of one chunk. On PTB (887k words, V = 9,858, window 10: 6.6M pairs, 2.9M
entries) this takes about half a second.

The result is the sparse matrix X in coordinate form (``Cooccurrences``): the entries with
X_ij > 0, sorted by row then column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

DEFAULT_CHUNK_TOKENS = 1_000_000    # a chunk holds about window x this many pair codes


@dataclass
class Cooccurrences:
    """X in COO form: rows, cols int32 [M], values float64 [M] (all > 0), sorted by (row, col)."""

    rows: numpy.ndarray
    cols: numpy.ndarray
    values: numpy.ndarray
    vocab_size: int

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def to_dense(self, max_vocab: int = 5000) -> numpy.ndarray:
        """X as a dense [V, V] float64 array (for small vocabularies: tests and teaching)."""
        V = self.vocab_size
        if V > max_vocab:
            raise ValueError(f"Cooccurrences.to_dense: V={V} would take {V * V * 8 / 2**20:.0f} "
                             f"MiB; raise max_vocab (now {max_vocab}) if that is meant.")
        dense = numpy.zeros((V, V))
        dense[self.rows, self.cols] = self.values
        return dense


def count_cooccurrences(ids, sentence_starts, vocab_size: int, window: int = 10,
                        distance_weighting: bool = True, symmetric: bool = True,
                        chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> Cooccurrences:
    """ids [N] int (values in [0, vocab_size)), sentence_starts [S + 1] int64 (0, ..., N:
    sentence s is ids[starts[s]:starts[s + 1]]) -> the co-occurrence counts X."""
    ids, sentence_starts = _checked_corpus(ids, sentence_starts, vocab_size, window)
    bits = max(1, (window - 1).bit_length())
    if vocab_size * vocab_size >= 1 << (62 - bits):
        raise ValueError(f"count_cooccurrences: V={vocab_size} is too large to pack a pair "
                         f"and a distance into 64 bits (window {window}); raise min_count.")
    parts = [_count_chunk(ids[lo:hi], sentence_starts[a:b + 1] - lo, vocab_size, window, bits,
                          distance_weighting, symmetric)
             for a, b, lo, hi in _chunks(sentence_starts, chunk_tokens)]
    keys, values = _merge(parts)
    if symmetric:
        keys, values = _mirror(keys, values, vocab_size)
    rows, cols = numpy.divmod(keys, vocab_size)
    return Cooccurrences(rows.astype(numpy.int32), cols.astype(numpy.int32), values,
                         int(vocab_size))


def _checked_corpus(ids, sentence_starts, vocab_size: int, window: int):
    """The arrays as int64, after the checks that name what is wrong."""
    if window < 1:
        raise ValueError(f"count_cooccurrences: window={window} must be >= 1 (words each side).")
    ids = numpy.asarray(ids)
    starts = numpy.asarray(sentence_starts)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"count_cooccurrences: ids must be a 1-D integer array, got shape "
                        f"{ids.shape} of {ids.dtype}.")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"count_cooccurrences: ids lie in [{int(ids.min())}, {int(ids.max())}]"
                         f", outside the vocabulary [0, {vocab_size}).")
    if (starts.ndim != 1 or starts.size < 1 or starts[0] != 0 or starts[-1] != ids.size
            or numpy.any(numpy.diff(starts) < 0)):
        raise ValueError("count_cooccurrences: sentence_starts must rise from 0 to len(ids) "
                         f"= {ids.size} (one entry per sentence start, then the end).")
    return ids.astype(numpy.int64), starts.astype(numpy.int64)


def _chunks(starts, chunk_tokens: int):
    """(first sentence, end sentence, first token, end token) of runs of whole sentences
    holding about ``chunk_tokens`` tokens each (one sentence per chunk at the least)."""
    S, a = starts.size - 1, 0
    while a < S:
        b = int(numpy.searchsorted(starts, starts[a] + chunk_tokens, side="right")) - 1
        b = min(max(b, a + 1), S)
        yield a, b, int(starts[a]), int(starts[b])
        a = b


def _count_chunk(ids, starts, V: int, window: int, bits: int, distance_weighting: bool,
                 symmetric: bool):
    """Pair keys i * V + j (sorted, unique) and their summed weights for one chunk."""
    sentence = numpy.repeat(numpy.arange(starts.size - 1), numpy.diff(starts))    # [n]
    codes = []
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]                   # both ends in one sentence
        left, right = ids[:-d][same], ids[d:][same]
        if symmetric:                                          # one code per unordered pair
            left, right = numpy.minimum(left, right), numpy.maximum(left, right)
        codes.append(((left * V + right) << bits) | (d - 1))
    codes = numpy.sort(numpy.concatenate(codes)) if codes else numpy.zeros(0, numpy.int64)
    distance = (codes & ((1 << bits) - 1)) + 1                 # d
    weights = 1.0 / distance if distance_weighting else numpy.ones(codes.size)
    return _sum_runs(codes >> bits, weights)


def _sum_runs(sorted_keys, values):
    """Equal neighbours of sorted_keys merged: (unique keys, summed values)."""
    if sorted_keys.size == 0:
        return sorted_keys, values.astype(numpy.float64)
    first = numpy.flatnonzero(numpy.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return sorted_keys[first], numpy.add.reduceat(values, first)


def _merge(parts):
    """Sum the (keys, values) of several chunks into one sorted, unique list."""
    if len(parts) == 1:
        return parts[0]
    keys = numpy.concatenate([k for k, _ in parts] or [numpy.zeros(0, numpy.int64)])
    values = numpy.concatenate([v for _, v in parts] or [numpy.zeros(0)])
    order = numpy.argsort(keys, kind="stable")
    return _sum_runs(keys[order], values[order])


def _mirror(keys, values, V: int):
    """Upper-triangle counts U (i <= j) -> the symmetric X: X_ij = X_ji = U_ij off the
    diagonal, X_ii = 2 U_ii (both directions of a pair land in one cell); sorted by key."""
    rows, cols = numpy.divmod(keys, V)
    off = rows != cols
    values = numpy.where(off, values, 2.0 * values)
    keys = numpy.concatenate([keys, cols[off] * V + rows[off]])
    values = numpy.concatenate([values, values[off]])
    order = numpy.argsort(keys)
    return keys[order], values[order]
