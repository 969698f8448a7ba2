"""numba kernel of WordPiece training: the merge loop of tinylm/data/wordpiece.py.

The specification -- the score count(ab) / (count(a) count(b)), the order of the merges and
their ties, the incremental updates of the counts -- is the plain Python of
tinylm/data/wordpiece.py (``PairCounts``, ``train_merges_reference``). This kernel runs the
same algorithm and must give the same vocabulary (the tests compare the two). What differs
is only the bookkeeping, in flat arrays instead of lists, dicts and sets (numba's typed
dicts and lists would add seconds to the compile time, and sorting as many again):

* positions: the characters of every distinct word back to back, position p holding the
  symbol ``sym[p]`` that starts there; word w's symbols are a doubly linked list (``nxt``,
  ``prv``, -1 at the ends). Merging a at position i with b at j = nxt[i] writes the new
  symbol at i and unlinks j, so a symbol always sits at the position of its first
  character and a pair occurrence is named by its left position.
* pairs: an id for each (a, b), found through an open-addressing hash table on
  a * 2^32 + b; per pair its count, and the positions where it may occur (linked nodes in a
  pool; a node goes stale when its position changes, and is checked before use) -- the
  reference's ``where``.
* symbols: count, and the pairs that contain it (linked nodes; a node of a pair whose count
  fell to zero is unlinked when a walk meets it) -- the reference's ``pairs_of``. Merge m
  makes symbol ``n_initial + m``: a merged string is always new (tinylm/data/wordpiece.py
  says why), so the kernel needs no strings at all; the caller writes them from the merges.
  A pair is born in the step that makes its newer symbol and its count only falls after
  that step, so it is listed under its two symbols once, at the end of that step. Its
  occurrences are all written in that step too, in ascending position order (the step
  walks its own occurrences left to right, and the new pair sits at each one's left
  neighbour or at the occurrence itself), and each is put at the head of the list: read
  from the head, a pair's list is in descending order, and needs no sorting.
* the queue: a binary max-heap of (score, count, pair) entries, stale ones skipped when they
  come out, as the reference does with heapq.

One merge step, as in ``PairCounts.merge``: take the pair's occurrences in left-to-right
order (the reference's, which matters when a == b: "aaa" -> (aa) a) and rewrite each that
is still there, writing the count changes

    (a, b) -w    (left, a) -w   (left, ab) +w    (b, right) -w   (ab, right) +w

(w: the word's frequency) to a list that the next pass of the loop applies -- the very first
pass applies the initial counts the same way. The pairs whose count changed, and the live
pairs of a, b and ab (whose symbol counts changed), get new heap entries.

The pair and occurrence pools are allocated once from a bound: a merge removes one
position and adds at most two pair occurrences, so there are at most 3N occurrences and 3N
pair ids; the heap and the list of changes grow as needed. The loop is serial: each merge
depends on the one before, so there is no prange driver as in the other kernels. The
score is an exact IEEE division in both versions; no fastmath here, since 'arcp' (a
reciprocal times instead of a division) would round differently from the reference and
change ties.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE

GOLDEN = numpy.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: slot = top bits of key * GOLDEN


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(cache=True)
    def _grown(array, needed):
        """``array`` if it holds ``needed`` entries, else a copy at least twice as long."""
        if needed <= array.shape[0]:
            return array
        bigger = numpy.empty(max(needed, 2 * array.shape[0]), dtype=array.dtype)
        bigger[:array.shape[0]] = array
        return bigger

    @numba.njit(cache=True)
    def _start_slot(key, bits):
        return numpy.int64((numpy.uint64(key) * GOLDEN) >> numpy.uint64(64 - bits))

    @numba.njit(cache=True)
    def _pair_slot(table, bits, pair_a, pair_b, a, b):
        """The slot of pair (a, b) in ``table`` (pair ids, -1 empty): its own, or the empty
        one where it goes (linear probing)."""
        mask = table.shape[0] - 1
        slot = _start_slot((a << 32) | b, bits)
        while table[slot] >= 0 and (pair_a[table[slot]] != a or pair_b[table[slot]] != b):
            slot = (slot + 1) & mask
        return slot

    @numba.njit(cache=True)
    def _comes_first(i, j, h_score, h_count, h_pair, pair_a, pair_b):
        """Heap order: the higher score, then the higher count, then the smaller ids."""
        if h_score[i] != h_score[j]:
            return h_score[i] > h_score[j]
        if h_count[i] != h_count[j]:
            return h_count[i] > h_count[j]
        p, q = h_pair[i], h_pair[j]
        if pair_a[p] != pair_a[q]:
            return pair_a[p] < pair_a[q]
        return pair_b[p] < pair_b[q]

    @numba.njit(cache=True)
    def _swap(i, j, h_score, h_count, h_pair):
        h_score[i], h_score[j] = h_score[j], h_score[i]
        h_count[i], h_count[j] = h_count[j], h_count[i]
        h_pair[i], h_pair[j] = h_pair[j], h_pair[i]

    @numba.njit(cache=True)
    def _sift_up(i, h_score, h_count, h_pair, pair_a, pair_b):
        while i > 0:
            parent = (i - 1) // 2
            if not _comes_first(i, parent, h_score, h_count, h_pair, pair_a, pair_b):
                return
            _swap(i, parent, h_score, h_count, h_pair)
            i = parent

    @numba.njit(cache=True)
    def _sift_down(i, size, h_score, h_count, h_pair, pair_a, pair_b):
        while True:
            best, left = i, 2 * i + 1
            for child in (left, left + 1):
                if child < size and _comes_first(child, best, h_score, h_count, h_pair,
                                                 pair_a, pair_b):
                    best = child
            if best == i:
                return
            _swap(i, best, h_score, h_count, h_pair)
            i = best

    @numba.njit(cache=True)
    def _score(q, pair_count, pair_a, pair_b, symbol_count):
        """count(ab) / (count(a) count(b)): the reference's ``score``, operation for operation."""
        return float(pair_count[q]) / (float(symbol_count[pair_a[q]])
                                       * float(symbol_count[pair_b[q]]))

    @numba.njit(cache=True)
    def _train(sym, word_of, weight, n_initial, size, min_frequency):
        """Returns merges [M, 2]: the pair (a, b) that made symbol n_initial + m, row m."""
        n = sym.shape[0]
        capacity = max(size, n_initial)
        sym = sym.copy()
        nxt = numpy.full(n, -1, dtype=numpy.int64)
        prv = numpy.full(n, -1, dtype=numpy.int64)
        for i in range(n - 1):
            if word_of[i + 1] == word_of[i]:
                nxt[i] = i + 1
                prv[i + 1] = i
        symbol_count = numpy.zeros(capacity, dtype=numpy.int64)
        for i in range(n):
            symbol_count[sym[i]] += weight[word_of[i]]
        adj_head = numpy.full(capacity, -1, dtype=numpy.int64)
        merges = numpy.empty((capacity - n_initial, 2), dtype=numpy.int64)
        n_sym = n_initial

        # pairs: (a, b), count, the step it was born in, the last step it was dirty in, and
        # the positions where it may occur
        bound = 3 * n + 1
        bits = 1
        while (1 << bits) < 2 * bound:
            bits += 1
        pair_table = numpy.full(1 << bits, -1, dtype=numpy.int64)
        pair_a = numpy.empty(bound, dtype=numpy.int64)
        pair_b = numpy.empty(bound, dtype=numpy.int64)
        pair_count = numpy.empty(bound, dtype=numpy.int64)
        born = numpy.empty(bound, dtype=numpy.int64)
        mark = numpy.empty(bound, dtype=numpy.int64)
        occ_head = numpy.empty(bound, dtype=numpy.int64)
        occ_pos = numpy.empty(bound, dtype=numpy.int64)
        occ_next = numpy.empty(bound, dtype=numpy.int64)
        adj_pair = numpy.empty(2 * bound, dtype=numpy.int64)
        adj_next = numpy.empty(2 * bound, dtype=numpy.int64)
        dirty = numpy.empty(bound, dtype=numpy.int64)
        found = numpy.empty(n, dtype=numpy.int64)
        h_score = numpy.empty(1024, dtype=numpy.float64)
        h_count = numpy.empty(1024, dtype=numpy.int64)
        h_pair = numpy.empty(1024, dtype=numpy.int64)
        n_pairs = n_occ = n_adj = heap_size = 0

        # The count changes to apply: (a, b, delta, position). First the initial counts.
        ch_a = numpy.empty(max(n, 1), dtype=numpy.int64)
        ch_b = numpy.empty_like(ch_a)
        ch_delta = numpy.empty_like(ch_a)
        ch_pos = numpy.empty_like(ch_a)
        n_changes = 0
        for i in range(n):
            if nxt[i] >= 0:
                ch_a[n_changes], ch_b[n_changes] = sym[i], sym[nxt[i]]
                ch_delta[n_changes], ch_pos[n_changes] = weight[word_of[i]], i
                n_changes += 1
        touched = (-1, -1)                  # the old symbols of the last merge, a and b

        step = 0
        while True:
            # 1. apply the count changes; each changed pair is dirty
            n_dirty = 0
            for k in range(n_changes):
                a, b, delta = ch_a[k], ch_b[k], ch_delta[k]
                slot = _pair_slot(pair_table, bits, pair_a, pair_b, a, b)
                if pair_table[slot] < 0:
                    pair_table[slot] = n_pairs
                    pair_a[n_pairs], pair_b[n_pairs], pair_count[n_pairs] = a, b, 0
                    born[n_pairs], mark[n_pairs], occ_head[n_pairs] = step, -1, -1
                    n_pairs += 1
                q = pair_table[slot]
                pair_count[q] += delta
                if mark[q] != step:
                    mark[q] = step
                    dirty[n_dirty] = q
                    n_dirty += 1
                if pair_count[q] == 0:
                    occ_head[q] = -1                # no occurrence is left
                if delta > 0:
                    occ_pos[n_occ], occ_next[n_occ] = ch_pos[k], occ_head[q]
                    occ_head[q] = n_occ
                    n_occ += 1

            # 2. list the pairs born in this step under their two symbols
            for k in range(n_dirty):
                q = dirty[k]
                if born[q] == step and pair_count[q] > 0:
                    for s in (pair_a[q], pair_b[q]):
                        adj_pair[n_adj], adj_next[n_adj] = q, adj_head[s]
                        adj_head[s] = n_adj
                        n_adj += 1

            # 3. the live pairs of a and b (whose counts fell) are dirty too; the pairs of the
            #    new symbol were all born in this step. Unlink the dead ones on the way.
            for s in touched:
                if s < 0:
                    continue
                before, node = -1, adj_head[s]
                while node >= 0:
                    q, after = adj_pair[node], adj_next[node]
                    if pair_count[q] == 0:
                        if before < 0:
                            adj_head[s] = after
                        else:
                            adj_next[before] = after
                    else:
                        if mark[q] != step:
                            mark[q] = step
                            dirty[n_dirty] = q
                            n_dirty += 1
                        before = node
                    node = after

            # 4. a fresh heap entry for each dirty pair frequent enough
            h_score = _grown(h_score, heap_size + n_dirty)
            h_count = _grown(h_count, heap_size + n_dirty)
            h_pair = _grown(h_pair, heap_size + n_dirty)
            for k in range(n_dirty):
                q = dirty[k]
                if pair_count[q] >= min_frequency:
                    h_pair[heap_size], h_count[heap_size] = q, pair_count[q]
                    h_score[heap_size] = _score(q, pair_count, pair_a, pair_b, symbol_count)
                    _sift_up(heap_size, h_score, h_count, h_pair, pair_a, pair_b)
                    heap_size += 1

            # 5. the best valid entry
            if n_sym >= size:
                break
            best = -1
            while heap_size > 0 and best < 0:
                q = h_pair[0]
                if h_count[0] == pair_count[q] and h_score[0] == _score(
                        q, pair_count, pair_a, pair_b, symbol_count):
                    best = q
                heap_size -= 1
                _swap(0, heap_size, h_score, h_count, h_pair)
                _sift_down(0, heap_size, h_score, h_count, h_pair, pair_a, pair_b)
            if best < 0:
                break

            # 6. merge it into symbol c: its occurrences, left to right, still there
            a, b, c = pair_a[best], pair_b[best], n_sym
            merges[c - n_initial, 0], merges[c - n_initial, 1] = a, b
            n_sym += 1
            n_found, node = 0, occ_head[best]
            while node >= 0:
                found[n_found] = occ_pos[node]
                n_found += 1
                node = occ_next[node]
            ch_a = _grown(ch_a, 5 * n_found)
            ch_b = _grown(ch_b, 5 * n_found)
            ch_delta = _grown(ch_delta, 5 * n_found)
            ch_pos = _grown(ch_pos, 5 * n_found)
            n_changes = 0
            for k in range(n_found - 1, -1, -1):    # the list is in descending order
                i = found[k]
                j = nxt[i]
                if sym[i] != a or j < 0 or sym[j] != b:
                    continue                        # stale, or taken by the previous merge
                w = weight[word_of[i]]
                left, right = prv[i], nxt[j]
                ch_a[n_changes], ch_b[n_changes] = a, b
                ch_delta[n_changes], ch_pos[n_changes] = -w, i
                n_changes += 1
                if left >= 0:
                    ch_a[n_changes], ch_b[n_changes] = sym[left], a
                    ch_delta[n_changes], ch_pos[n_changes] = -w, left
                    ch_a[n_changes + 1], ch_b[n_changes + 1] = sym[left], c
                    ch_delta[n_changes + 1], ch_pos[n_changes + 1] = w, left
                    n_changes += 2
                if right >= 0:
                    ch_a[n_changes], ch_b[n_changes] = b, sym[right]
                    ch_delta[n_changes], ch_pos[n_changes] = -w, j
                    ch_a[n_changes + 1], ch_b[n_changes + 1] = c, sym[right]
                    ch_delta[n_changes + 1], ch_pos[n_changes + 1] = w, i
                    n_changes += 2
                sym[i], sym[j] = c, -1
                nxt[i] = right
                if right >= 0:
                    prv[right] = i
                symbol_count[a] -= w
                symbol_count[b] -= w
                symbol_count[c] += w
            touched = (a, b)
            step += 1
        return merges[:n_sym - n_initial]


def train_merges(sym, word_of, weight, n_initial: int, size: int, min_frequency: int):
    """The merges [M, 2] int64, in the order they were made: row m is the pair (a, b) whose
    string a + b[2:] is symbol ``n_initial + m``.

    sym [N]: the initial symbol id at every character of every distinct word, the words back
    to back; word_of [N]: each position's word; weight [W]: each word's frequency; ids below
    ``n_initial`` are the initial alphabet; training stops at ``size`` symbols.
    """
    return _train(sym, word_of, weight, n_initial, size, min_frequency)
