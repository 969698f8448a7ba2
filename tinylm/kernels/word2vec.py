"""numba kernels of Word2Vec training: the whole cost of skip-gram and CBOW.

The mathematics (the negative-sampling loss and its gradients) and the NumPy references are
in tinylm/functional/word2vec.py; the corpus, the subsampling table and the noise table in
tinylm/embeddings/corpus.py; the trainer that calls these kernels block by block in
tinylm/embeddings/word2vec.py. Word2Vec is trained one prediction at a time with plain
SGD, millions of times: in NumPy the per-call overhead would cost more than the arithmetic,
so the loop over sentences, centre words and context words runs here.

Per sentence (the words of one line, those below min_count already removed):

1. subsampling: word w is kept with probability p_keep[w], compared as integers with a
   32-bit random number (``keep_ints[w] = p_keep[w] * 2^32``, as gensim's ``sample_int``);
   the dropped words leave the sentence before the windows are taken, so a window then
   reaches further (as in word2vec.c and gensim);
2. dynamic window: each kept centre i draws b_i ~ U{0, ..., window - 1} and looks
   window - b_i words either side (nearer words are used more often);
3. negatives: each prediction draws K noise words from the cumulative table (a binary
   search of a 31-bit random number), and a noise word equal to the target is skipped;
4. predictions, one SGD step each, applied at once (``_sentence_loop``):
   * skip-gram: for each centre i and context word j, the input vector is the CONTEXT
     word's, v = w_in[words[j]], and the target the centre word, words[i] -- the roles
     of word2vec.c and gensim's ``w2v_fast_sentence_sg_neg`` (the pair set is symmetric,
     so this predicts the same pairs, but it updates the input vectors of the context as
     it goes, which is what the quality of those libraries rests on);
   * CBOW: h = mean of the context words' input vectors, one prediction of the centre;
     the gradient on h, dL/dh, is added *in full* to every context word's input vector,
     as in word2vec.c and gensim with cbow_mean=1 (the true gradient of the mean would
     give each context word 1/C of it: the libraries' update is C times larger, i.e. the
     input vectors learn at rate C * alpha; this kernel keeps their choice for parity).

One prediction (``_sgns_step``), for an input v [D] (a context vector or h), target o and
noise words k_1..k_K, with s = sigmoid(u_t . v) for each t in {o, k_1..k_K}:

    g_t   = alpha * (label_t - s_t)               label_o = 1, label_k = 0
    work += g_t * u_t                             (-alpha dL/dv, summed over t)
    u_t  += g_t * v                               (-alpha dL/du_t, applied at once)
    then  v's rows += work                        (after all K+1 targets)

which is one SGD step on L = -log sigmoid(u_o.v) - sum_k log sigmoid(-u_k.v) (the
functional references' loss), provided the K+1 targets are distinct rows.

Parallelism: the sentences of a block are cut into chunks (the trainer makes 4 per worker)
that numba's threads take one at a time under ``numba.prange``, each chunk with its own
random stream and scratch buffers, all reading and writing the two shared matrices
without locks ("Hogwild!", Recht et al. 2011, as gensim's worker threads and word2vec.c's
do): two threads rarely touch the same row at the same moment, and when they do one small
update is lost, which SGD shrugs off. With one worker the result is a deterministic
function of the seed.

The sigmoid is exact (one exp per target, of -|x| so it never overflows), not word2vec.c's
table with MAX_EXP = 6, which also silently skips every target with |u.v| >= 6 -- a noise
word the model scores far too high included. The loss, -log s for the target and
-log(1 - s) for a noise word, is softplus(-+f) = max(-+f, 0) + log(1 + e^-|f|), reusing the
exp; it is summed per chunk so the trainer can report a mean loss per prediction
(``math.log(1 + e)``, not ``log1p``: numba's log1p made skip-gram ~15% slower).

Random numbers: the linear congruential generator of word2vec.c and gensim (Java's
``Random``: next = next * 25214903917 + 11 mod 2^48, output the top 32 bits), one state per
chunk, seeded by the trainer.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

SKIPGRAM, CBOW = 0, 1
LCG_MULTIPLIER = 25214903917
LCG_MASK = (1 << 48) - 1


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(**JIT)
    def _next_random(state):
        """Advance the 48-bit LCG held in state[0]; return its top 32 bits (an int64)."""
        out = numba.int64(state[0] >> numba.uint64(16))
        state[0] = (state[0] * numba.uint64(LCG_MULTIPLIER) + numba.uint64(11)) \
            & numba.uint64(LCG_MASK)
        return out

    @numba.njit(**JIT)
    def _draw_noise_word(cum_table, state):
        """A word drawn with probability proportional to count^0.75: the first index whose
        cumulative value exceeds a uniform integer in [0, cum_table[-1]) (binary search)."""
        x = _next_random(state) % cum_table[cum_table.shape[0] - 1]
        lo, hi = 0, cum_table.shape[0]
        while hi > lo:
            mid = (lo + hi) >> 1
            if cum_table[mid] > x:
                hi = mid
            else:
                lo = mid + 1
        return lo

    @numba.njit(**JIT)
    def _sgns_step(w_out, v, target, noise, alpha, work, compute_loss):
        """One SGD step of the negative-sampling loss for input v [D], target row ``target``
        and noise rows ``noise`` [K] of w_out [V, D]: updates w_out's rows, leaves
        -alpha dL/dv in work [D] (for the caller to add to v's rows), returns the loss."""
        D = v.shape[0]
        one = v.dtype.type(1.0)
        for d in range(D):
            work[d] = 0.0
        loss = 0.0
        for k in range(noise.shape[0] + 1):
            if k == 0:
                row, label = target, one
            else:
                row, label = noise[k - 1], one - one
                if row == target:
                    continue
            f = v.dtype.type(0.0)
            for d in range(D):                                   # f = u_t . v
                f += w_out[row, d] * v[d]
            e = math.exp(-abs(f))                                # sigmoid via e^-|f|
            s = 1.0 / (1.0 + e) if f >= 0 else e / (1.0 + e)
            g = v.dtype.type(alpha * (label - s))
            if compute_loss:                                     # softplus(-f), (f)
                loss += max(-f if k == 0 else f, 0.0) + math.log(1.0 + e)
            for d in range(D):
                work[d] += g * w_out[row, d]
                w_out[row, d] += g * v[d]
        return loss

    @numba.njit(**JIT)
    def _add_row(w, row, work):
        for d in range(work.shape[0]):
            w[row, d] += work[d]

    @numba.njit(**JIT)
    def _window_bounds(i, n, window, reduction):
        """[lo, hi) of the positions around centre i: window - reduction either side."""
        reach = window - reduction
        return max(0, i - reach), min(n, i + reach + 1)

    @numba.njit(**JIT)
    def count_predictions(architecture, n, window, reductions):
        """How many predictions a sentence of n kept words makes (rows of noise needed)."""
        total = 0
        for i in range(n):
            lo, hi = _window_bounds(i, n, window, reductions[i])
            context = hi - lo - 1
            if architecture == SKIPGRAM:
                total += context
            elif context > 0:
                total += 1
        return total

    @numba.njit(**JIT)
    def _skipgram_centre(w_in, w_out, words, i, lo, hi, noise, p, alpha, v, work,
                         compute_loss):
        """Every context j of centre i predicts the centre: input w_in[words[j]]."""
        loss = 0.0
        for j in range(lo, hi):
            if j == i:
                continue
            row = words[j]
            for d in range(v.shape[0]):
                v[d] = w_in[row, d]
            loss += _sgns_step(w_out, v, words[i], noise[p], alpha, work, compute_loss)
            _add_row(w_in, row, work)
            p += 1
        return loss, p

    @numba.njit(**JIT)
    def _cbow_centre(w_in, w_out, words, i, lo, hi, noise, p, alpha, v, work,
                     compute_loss):
        """h = mean of the context's input vectors predicts the centre; dL/dh to each."""
        context = hi - lo - 1
        if context == 0:
            return 0.0, p
        inv = v.dtype.type(1.0 / context)
        for d in range(v.shape[0]):
            v[d] = 0.0
        for j in range(lo, hi):
            if j != i:
                for d in range(v.shape[0]):
                    v[d] += w_in[words[j], d]
        for d in range(v.shape[0]):
            v[d] *= inv
        loss = _sgns_step(w_out, v, words[i], noise[p], alpha, work, compute_loss)
        for j in range(lo, hi):
            if j != i:
                _add_row(w_in, words[j], work)
        return loss, p + 1

    @numba.njit(**JIT)
    def _sentence_loop(architecture, w_in, w_out, words, n, window, reductions, noise,
                       alpha, v, work, compute_loss):
        """Train on words[:n] given each centre's window reduction [n] and the noise words
        of each prediction, noise [n_predictions, K], in order. Returns (loss sum,
        predictions)."""
        loss, p = 0.0, 0
        for i in range(n):
            lo, hi = _window_bounds(i, n, window, reductions[i])
            if architecture == SKIPGRAM:
                step_loss, p = _skipgram_centre(w_in, w_out, words, i, lo, hi, noise, p,
                                                alpha, v, work, compute_loss)
            else:
                step_loss, p = _cbow_centre(w_in, w_out, words, i, lo, hi, noise, p,
                                            alpha, v, work, compute_loss)
            loss += step_loss
        return loss, p

    @numba.njit(**JIT)
    def _subsample(ids, start, stop, keep_ints, state, words):
        """Copy the kept words of ids[start:stop] into words; return how many."""
        n = 0
        for t in range(start, stop):
            w = ids[t]
            if keep_ints[w] < _next_random(state):                  # dropped
                continue
            words[n] = w
            n += 1
        return n

    @numba.njit(**JIT)
    def _train_chunk(architecture, w_in, w_out, ids, starts, s_lo, s_hi, keep_ints, cum_table,
                     window, alpha, min_alpha, words_before, words_planned, state, words,
                     reductions, noise, v, work, compute_loss):
        """Sentences s_lo..s_hi-1 with one random stream; the learning rate falls linearly
        from alpha at word 0 of the whole training to min_alpha at words_planned
        (words_before: kept corpus words of the epochs already done). Returns (loss sum,
        predictions)."""
        loss, predictions = 0.0, 0
        K = noise.shape[1]
        for s in range(s_lo, s_hi):
            progress = (words_before + starts[s]) / words_planned
            rate = max(min_alpha, alpha - (alpha - min_alpha) * progress)
            n = _subsample(ids, starts[s], starts[s + 1], keep_ints, state, words)
            for i in range(n):
                reductions[i] = _next_random(state) % window
            needed = count_predictions(architecture, n, window, reductions)
            for p in range(needed):
                for k in range(K):
                    noise[p, k] = _draw_noise_word(cum_table, state)
            sentence_loss, made = _sentence_loop(architecture, w_in, w_out, words, n, window,
                                                 reductions, noise, rate, v, work,
                                                 compute_loss)
            loss += sentence_loss
            predictions += made
        return loss, predictions

    @numba.njit(parallel=True, **JIT)
    def _train_chunks_parallel(architecture, w_in, w_out, ids, starts, bounds, keep_ints,
                               cum_table, window, alpha, min_alpha, words_before,
                               words_planned, states, words, reductions, noise, v, work,
                               losses, predictions, compute_loss):
        # Hogwild: every chunk reads and writes the shared w_in and w_out without locks.
        for c in numba.prange(bounds.shape[0] - 1):
            loss, made = _train_chunk(architecture, w_in, w_out, ids, starts, bounds[c],
                                      bounds[c + 1], keep_ints, cum_table, window, alpha,
                                      min_alpha, words_before, words_planned, states[c],
                                      words[c], reductions[c], noise[c], v[c], work[c],
                                      compute_loss)
            losses[c] = loss
            predictions[c] = made


class Scratch:
    """Per-chunk buffers of the training kernel, allocated once per trainer: kept words and
    window reductions [chunks, L], noise words [chunks, L * 2 * window, K], input vector
    and gradient [chunks, D] (L: the longest sentence)."""

    def __init__(self, chunks: int, longest: int, window: int, negative: int, dim: int,
                 dtype):
        longest = max(1, longest)
        self.words = numpy.zeros((chunks, longest), dtype=numpy.int32)
        self.reductions = numpy.zeros((chunks, longest), dtype=numpy.int64)
        self.noise = numpy.zeros((chunks, longest * 2 * window, negative), dtype=numpy.int32)
        self.v = numpy.zeros((chunks, dim), dtype=dtype)
        self.work = numpy.zeros((chunks, dim), dtype=dtype)
        self.losses = numpy.zeros(chunks, dtype=numpy.float64)
        self.predictions = numpy.zeros(chunks, dtype=numpy.int64)


def train_block(architecture: int, w_in, w_out, ids, starts, bounds, keep_ints, cum_table,
                window: int, alpha: float, min_alpha: float, words_before: int,
                words_planned: int, states, scratch: Scratch, compute_loss: bool = True):
    """Train on the sentences bounds[0]..bounds[-1] (chunk c: bounds[c]..bounds[c+1]-1, with
    its random stream in states[c], states [chunks, 1] uint64), in place on w_in, w_out
    [V, D] (float32 or float64, C-contiguous). One chunk runs in the calling thread,
    several in parallel on numba's threads. Returns (loss sum, predictions) over the block."""
    chunks = bounds.shape[0] - 1
    if chunks == 1:
        loss, made = _train_chunk(architecture, w_in, w_out, ids, starts, bounds[0], bounds[1],
                                  keep_ints, cum_table, window, alpha, min_alpha, words_before,
                                  words_planned, states[0], scratch.words[0],
                                  scratch.reductions[0], scratch.noise[0], scratch.v[0],
                                  scratch.work[0], compute_loss)
        return float(loss), int(made)
    # Chunks are handed to the threads one at a time: a thread slowed down by another
    # process on its core then takes fewer chunks instead of holding up the block.
    previous = numba.set_parallel_chunksize(1)
    try:
        _train_chunks_parallel(architecture, w_in, w_out, ids, starts, bounds, keep_ints,
                               cum_table, window, alpha, min_alpha, words_before, words_planned,
                               states, scratch.words, scratch.reductions, scratch.noise,
                               scratch.v, scratch.work, scratch.losses, scratch.predictions,
                               compute_loss)
    finally:
        numba.set_parallel_chunksize(previous)
    return float(scratch.losses[:chunks].sum()), int(scratch.predictions[:chunks].sum())


def replay_sentence(architecture: int, w_in, w_out, words, window: int, reductions, noise,
                    alpha: float):
    """Train on one sentence with given window reductions [n] and noise words
    [n_predictions, K] (no random numbers): the production ``_sentence_loop``, exposed so
    tests can compare it with a step-by-step replay of the functional references.
    Returns (loss sum, predictions)."""
    words = numpy.ascontiguousarray(words, dtype=numpy.int32)
    reductions = numpy.ascontiguousarray(reductions, dtype=numpy.int64)
    noise = numpy.ascontiguousarray(noise, dtype=numpy.int32)
    v = numpy.zeros(w_in.shape[1], dtype=w_in.dtype)
    work = numpy.zeros_like(v)
    loss, made = _sentence_loop(architecture, w_in, w_out, words, words.shape[0], window,
                                reductions, noise, alpha, v, work, True)
    return float(loss), int(made)


def predictions_of(architecture: int, n: int, window: int, reductions) -> int:
    """How many predictions (rows of noise words) a sentence of n kept words makes."""
    return int(count_predictions(architecture, n, window,
                                 numpy.ascontiguousarray(reductions, dtype=numpy.int64)))


def draw_noise_words(cum_table, seed: int, count: int):
    """``count`` draws of the kernel's noise sampler (for tests of its distribution)."""
    return _draw_many(cum_table, seed_state(seed), count)


def draw_window_reductions(window: int, seed: int, count: int):
    """``count`` draws of the kernel's window reduction b ~ U{0, ..., window - 1}."""
    return _reductions_many(window, seed_state(seed), count)


def seed_state(seed: int):
    """A [1] uint64 LCG state from any non-negative integer (its low 48 bits)."""
    return numpy.array([seed & LCG_MASK], dtype=numpy.uint64)


if NUMBA_AVAILABLE:
    @numba.njit(**JIT)
    def _draw_many(cum_table, state, count):
        out = numpy.empty(count, dtype=numpy.int64)
        for i in range(count):
            out[i] = _draw_noise_word(cum_table, state)
        return out

    @numba.njit(**JIT)
    def _reductions_many(window, state, count):
        out = numpy.empty(count, dtype=numpy.int64)
        for i in range(count):
            out[i] = _next_random(state) % window
        return out
