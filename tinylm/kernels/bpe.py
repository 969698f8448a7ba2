"""numba kernels of byte-level BPE: training with incremental pair counts, and encoding by
merge rank. The specification -- the algorithms, the tie rules, and the plain Python
versions these must agree with -- is tinylm/data/bpe.py; tests/test_bpe.py runs both.

Training (``train_merges``), the arrays of the reference's ``PairCounts``:

* positions: the bytes of every distinct chunk back to back, position p holding the symbol
  ``sym[p]`` that starts there; each chunk's symbols are a doubly linked list (``nxt``,
  ``prv``, -1 at the chunk's ends). Merging a at position i with b at j = nxt[i] writes the
  new symbol at i and unlinks j (``sym[j] = -1``), so a pair occurrence is named by its left
  position.
* pairs: an id for each (a, b), found through an open-addressing hash table on the key
  a * 2^32 + b (Fibonacci hashing, linear probing); per pair its weighted count and the
  positions where it may occur, a linked list in ascending position order (a node goes stale
  when its position changes, and is checked before use) -- the reference's ``where``.
* the queue: a binary max-heap of (count, pair) entries ordered as the reference's heapq is
  (the higher count, then the smaller (a, b)). An entry is an upper bound of its pair's count
  (counts of existing pairs only fall); a popped entry whose count is no longer the pair's is
  pushed back with the current count, and one that is exact is the best pair.

Why the occurrence lists stay ascending: the initial ones are written by a scan in position
order; a merge walks its occurrences left to right and writes the pairs it creates, (left, c)
at the left neighbour and (c, right) at the occurrence itself, both ascending with the
occurrence; and every pair that contains the new symbol c is born in that one step. Left to
right is what the reference does (it matters when a == b: "aaa" -> (aa) a).

Bounds: a merge occurrence removes one position and adds at most two pair occurrences, so
N positions give at most 3N pair occurrences and 3N pairs; every array is allocated once.
The loop is serial: each merge depends on the one before.

Encoding (``merge_by_rank``): per chunk, the same linked list and a binary min-heap of
(rank, position) for each adjacent pair that has a rank; pop the smallest (the lowest rank,
then the leftmost), skip it if the pair at that position changed, merge, and push the two
new neighbouring pairs. O(L log L) per chunk of L bytes, where the reference's scan is
O(L^2) -- a run of a million spaces stays fast.
"""

from __future__ import annotations

import numpy

from tinylm.backend import NUMBA_AVAILABLE

GOLDEN = numpy.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: slot = top bits of key * GOLDEN
NO_RANK = -1


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(cache=True)
    def _table_bits(entries):
        """log2 of a power-of-two table size at least twice ``entries`` (load <= 1/2)."""
        bits = 1
        while (1 << bits) < 2 * max(entries, 1):
            bits += 1
        return bits

    @numba.njit(cache=True)
    def _slot(keys, bits, key):
        """The slot of ``key`` in ``keys`` (-1: empty): its own, or the empty one it goes in."""
        mask = keys.shape[0] - 1
        slot = numpy.int64((numpy.uint64(key) * GOLDEN) >> numpy.uint64(64 - bits))
        while keys[slot] >= 0 and keys[slot] != key:
            slot = (slot + 1) & mask
        return slot

    # -- training -------------------------------------------------------------------------------
    @numba.njit(cache=True)
    def _comes_first(i, j, h_count, h_pair, pair_a, pair_b):
        """Max-heap order: the higher count, then the smaller (a, b)."""
        if h_count[i] != h_count[j]:
            return h_count[i] > h_count[j]
        p, q = h_pair[i], h_pair[j]
        if pair_a[p] != pair_a[q]:
            return pair_a[p] < pair_a[q]
        return pair_b[p] < pair_b[q]

    @numba.njit(cache=True)
    def _push_pair(size, count, q, h_count, h_pair, pair_a, pair_b):
        """Add (count, q) to the heap of ``size`` entries; returns the new size."""
        i = size
        h_count[i], h_pair[i] = count, q
        while i > 0:
            parent = (i - 1) // 2
            if not _comes_first(i, parent, h_count, h_pair, pair_a, pair_b):
                break
            h_count[i], h_count[parent] = h_count[parent], h_count[i]
            h_pair[i], h_pair[parent] = h_pair[parent], h_pair[i]
            i = parent
        return size + 1

    @numba.njit(cache=True)
    def _pop_pair(size, h_count, h_pair, pair_a, pair_b):
        """Remove the first entry (read it before calling); returns the new size."""
        size -= 1
        h_count[0], h_pair[0] = h_count[size], h_pair[size]
        i = 0
        while True:
            best, left = i, 2 * i + 1
            for child in (left, left + 1):
                if child < size and _comes_first(child, best, h_count, h_pair, pair_a, pair_b):
                    best = child
            if best == i:
                return size
            h_count[i], h_count[best] = h_count[best], h_count[i]
            h_pair[i], h_pair[best] = h_pair[best], h_pair[i]
            i = best

    @numba.njit(cache=True)
    def _train(sym, word_of, weight, n_merges, first_id):
        n = sym.shape[0]
        sym = sym.copy()
        nxt = numpy.full(n, -1, dtype=numpy.int64)
        prv = numpy.full(n, -1, dtype=numpy.int64)
        for i in range(n - 1):
            if word_of[i + 1] == word_of[i]:
                nxt[i] = i + 1
                prv[i + 1] = i

        bound = 3 * n + 1
        bits = _table_bits(bound)
        keys = numpy.full(1 << bits, -1, dtype=numpy.int64)
        pair_of_slot = numpy.empty(1 << bits, dtype=numpy.int64)
        pair_a = numpy.empty(bound, dtype=numpy.int64)
        pair_b = numpy.empty(bound, dtype=numpy.int64)
        pair_count = numpy.zeros(bound, dtype=numpy.int64)
        occ_head = numpy.full(bound, -1, dtype=numpy.int64)
        occ_tail = numpy.full(bound, -1, dtype=numpy.int64)
        occ_pos = numpy.empty(bound, dtype=numpy.int64)
        occ_next = numpy.empty(bound, dtype=numpy.int64)
        h_count = numpy.empty(bound, dtype=numpy.int64)
        h_pair = numpy.empty(bound, dtype=numpy.int64)
        born = numpy.empty(bound, dtype=numpy.int64)      # the pairs created in this step
        merges = numpy.empty((max(n_merges, 0), 2), dtype=numpy.int64)
        n_pairs = n_occ = heap_size = 0

        # The initial counts: every adjacent pair, occurrences in position order.
        for i in range(n):
            if nxt[i] < 0:
                continue
            a, b = sym[i], sym[nxt[i]]
            slot = _slot(keys, bits, (a << 32) | b)
            if keys[slot] < 0:
                keys[slot], pair_of_slot[slot] = (a << 32) | b, n_pairs
                pair_a[n_pairs], pair_b[n_pairs] = a, b
                n_pairs += 1
            q = pair_of_slot[slot]
            pair_count[q] += weight[word_of[i]]
            occ_pos[n_occ], occ_next[n_occ] = i, -1
            if occ_head[q] < 0:
                occ_head[q] = n_occ
            else:
                occ_next[occ_tail[q]] = n_occ
            occ_tail[q] = n_occ
            n_occ += 1
        for q in range(n_pairs):
            heap_size = _push_pair(heap_size, pair_count[q], q, h_count, h_pair, pair_a, pair_b)

        n_made = 0
        while n_made < n_merges:
            # the best pair: the first heap entry whose count is exact
            best = -1
            while heap_size > 0:
                q, count = h_pair[0], h_count[0]
                heap_size = _pop_pair(heap_size, h_count, h_pair, pair_a, pair_b)
                if count == pair_count[q]:
                    best = q
                    break
                if pair_count[q] > 0:
                    heap_size = _push_pair(heap_size, pair_count[q], q, h_count, h_pair,
                                           pair_a, pair_b)
            if best < 0:
                break
            a, b, c = pair_a[best], pair_b[best], first_id + n_made
            merges[n_made, 0], merges[n_made, 1] = a, b
            n_made += 1

            n_born = 0
            node = occ_head[best]
            while node >= 0:
                i = occ_pos[node]
                node = occ_next[node]
                j = nxt[i]
                if sym[i] != a or j < 0 or sym[j] != b:
                    continue                        # stale, or taken by the occurrence before
                w = weight[word_of[i]]
                left, right = prv[i], nxt[j]
                pair_count[best] -= w
                # (left, a) -> (left, c) at the left neighbour; (b, right) -> (c, right) at i
                for side in range(2):
                    if side == 0:
                        if left < 0:
                            continue
                        old_a, old_b, new_a, new_b, at = sym[left], a, sym[left], c, left
                    else:
                        if right < 0:
                            continue
                        old_a, old_b, new_a, new_b, at = b, sym[right], c, sym[right], i
                    pair_count[pair_of_slot[_slot(keys, bits, (old_a << 32) | old_b)]] -= w
                    slot = _slot(keys, bits, (new_a << 32) | new_b)
                    if keys[slot] < 0:
                        keys[slot], pair_of_slot[slot] = (new_a << 32) | new_b, n_pairs
                        pair_a[n_pairs], pair_b[n_pairs] = new_a, new_b
                        born[n_born] = n_pairs
                        n_born += 1
                        n_pairs += 1
                    q = pair_of_slot[slot]
                    pair_count[q] += w
                    occ_pos[n_occ], occ_next[n_occ] = at, -1
                    if occ_head[q] < 0:
                        occ_head[q] = n_occ
                    else:
                        occ_next[occ_tail[q]] = n_occ
                    occ_tail[q] = n_occ
                    n_occ += 1
                sym[i], sym[j] = c, -1
                nxt[i] = right
                if right >= 0:
                    prv[right] = i
            for k in range(n_born):
                q = born[k]
                if pair_count[q] > 0:
                    heap_size = _push_pair(heap_size, pair_count[q], q, h_count, h_pair,
                                           pair_a, pair_b)
        return merges[:n_made]

    # -- encoding -------------------------------------------------------------------------------
    @numba.njit(cache=True)
    def _build_rank_table(pair_a, pair_b, rank):
        """The hash table (keys, ranks, bits) of pair (a, b) -> rank."""
        bits = _table_bits(pair_a.shape[0])
        keys = numpy.full(1 << bits, -1, dtype=numpy.int64)
        values = numpy.full(1 << bits, NO_RANK, dtype=numpy.int64)
        for k in range(pair_a.shape[0]):
            slot = _slot(keys, bits, (pair_a[k] << 32) | pair_b[k])
            keys[slot], values[slot] = (pair_a[k] << 32) | pair_b[k], rank[k]
        return keys, values, bits

    @numba.njit(cache=True)
    def _rank(keys, values, bits, a, b, limit):
        """The rank of pair (a, b), or NO_RANK when it has none below ``limit``."""
        r = values[_slot(keys, bits, (a << 32) | b)]
        return r if r < limit else NO_RANK

    @numba.njit(cache=True)
    def _heap_less(i, j, h_rank, h_pos):
        return h_rank[i] < h_rank[j] or (h_rank[i] == h_rank[j] and h_pos[i] < h_pos[j])

    @numba.njit(cache=True)
    def _push_position(size, rank, pos, h_rank, h_pos):
        i = size
        h_rank[i], h_pos[i] = rank, pos
        while i > 0:
            parent = (i - 1) // 2
            if not _heap_less(i, parent, h_rank, h_pos):
                break
            h_rank[i], h_rank[parent] = h_rank[parent], h_rank[i]
            h_pos[i], h_pos[parent] = h_pos[parent], h_pos[i]
            i = parent
        return size + 1

    @numba.njit(cache=True)
    def _pop_position(size, h_rank, h_pos):
        size -= 1
        h_rank[0], h_pos[0] = h_rank[size], h_pos[size]
        i = 0
        while True:
            best, left = i, 2 * i + 1
            for child in (left, left + 1):
                if child < size and _heap_less(child, best, h_rank, h_pos):
                    best = child
            if best == i:
                return size
            h_rank[i], h_rank[best] = h_rank[best], h_rank[i]
            h_pos[i], h_pos[best] = h_pos[best], h_pos[i]
            i = best

    @numba.njit(cache=True)
    def _merge_by_rank(ids, offsets, keys, values, bits, limits):
        n, n_chunks = ids.shape[0], offsets.shape[0] - 1
        sym = ids.copy()
        nxt = numpy.empty(n, dtype=numpy.int64)
        prv = numpy.empty(n, dtype=numpy.int64)
        longest = 1
        for c in range(n_chunks):
            longest = max(longest, offsets[c + 1] - offsets[c])
        h_rank = numpy.empty(3 * longest, dtype=numpy.int64)
        h_pos = numpy.empty(3 * longest, dtype=numpy.int64)
        out = numpy.empty(n, dtype=numpy.int64)
        out_offsets = numpy.zeros(n_chunks + 1, dtype=numpy.int64)
        n_out = 0
        for c in range(n_chunks):
            start, end, limit = offsets[c], offsets[c + 1], limits[c]
            size = 0
            for i in range(start, end):
                nxt[i] = i + 1 if i + 1 < end else -1
                prv[i] = i - 1 if i > start else -1
                if i + 1 < end:
                    r = _rank(keys, values, bits, sym[i], sym[i + 1], limit)
                    if r != NO_RANK:
                        size = _push_position(size, r, i, h_rank, h_pos)
            while size > 0:
                r, i = h_rank[0], h_pos[0]
                size = _pop_position(size, h_rank, h_pos)
                j = nxt[i] if sym[i] >= 0 else -1
                if j < 0 or _rank(keys, values, bits, sym[i], sym[j], limit) != r:
                    continue                        # this pair changed since it was pushed
                sym[i], sym[j] = r, -1
                nxt[i] = nxt[j]
                if nxt[i] >= 0:
                    prv[nxt[i]] = i
                    r2 = _rank(keys, values, bits, sym[i], sym[nxt[i]], limit)
                    if r2 != NO_RANK:
                        size = _push_position(size, r2, i, h_rank, h_pos)
                if prv[i] >= 0:
                    r2 = _rank(keys, values, bits, sym[prv[i]], sym[i], limit)
                    if r2 != NO_RANK:
                        size = _push_position(size, r2, prv[i], h_rank, h_pos)
            i = start if end > start else -1
            while i >= 0:
                out[n_out] = sym[i]
                n_out += 1
                i = nxt[i]
            out_offsets[c + 1] = n_out
        return out[:n_out], out_offsets


def train_merges(sym, word_of, weight, n_merges: int, first_id: int):
    """The merges [M, 2] int64 (M <= n_merges), in the order they were made: row m is the pair
    (a, b) that became symbol ``first_id + m``.

    sym [N] int64: the byte (id) at every position of every distinct chunk, the chunks back
    to back; word_of [N] int64: each position's chunk; weight [W] int64: each chunk's count.
    """
    return _train(sym, word_of, weight, n_merges, first_id)


def build_rank_table(pair_a, pair_b, rank):
    """The kernel's hash table of pair (pair_a[k], pair_b[k]) -> rank[k], all [P] int64."""
    return _build_rank_table(pair_a, pair_b, rank)


def merge_by_rank(ids, offsets, table, limits):
    """ids [N] int64 of chunks back to back (chunk c is ids[offsets[c]:offsets[c + 1]]) ->
    (merged ids [N'] int64, their offsets [C + 1] int64). ``table`` is ``build_rank_table``'s;
    limits [C] int64: in chunk c only pairs of rank < limits[c] merge."""
    keys, values, bits = table
    return _merge_by_rank(ids, offsets, keys, values, bits, limits)
