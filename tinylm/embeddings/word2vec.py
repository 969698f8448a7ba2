"""Word2Vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling, trained by
plain SGD one prediction at a time. Chapter 05.

Two matrices are learned: input vectors w_in [V, D] (the word vectors one keeps) and output
vectors w_out [V, D] (used only to score a (word, context) pair, sigma(u . v)). The loss of
one prediction and its gradients are derived in tinylm/functional/word2vec.py; the loop over
the corpus is the numba kernel of tinylm/kernels/word2vec.py; the corpus, subsampling and
noise tables come from tinylm/embeddings/corpus.py. This class wires them together the way
gensim's ``Word2Vec`` does:

* initialisation: w_in uniform in [-1 / D, 1 / D) (seeded), w_out zero -- gensim 4's
  ``prep_vectors`` (word2vec.c draws from [-0.5 / D, 0.5 / D); with gensim's wider range
  CBOW's 5-epoch analogy accuracy rose from 0.021-0.026 to 0.023-0.028 over six seeds);
* learning rate: linear from alpha to min_alpha over all the epochs' words;
* each epoch is cut into ~20 blocks of sentences and each block into 4 chunks per worker,
  handed out one at a time to ``workers`` numba threads that train in parallel lock-free
  (Hogwild), as gensim's worker threads take jobs from a queue; one worker trains serially
  and deterministically. ``on_progress`` is called after every block.

Speed is reported as words/s = corpus.total_words / epoch seconds, where total_words counts
the raw corpus, the words below min_count included: the definition used for gensim in the
benchmark (its epochs' raw word count over the training time), so the two compare directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy

from tinylm.backend import NUMBA_AVAILABLE, default_rng
from tinylm.embeddings.corpus import (Corpus, cumulative_noise_table, keep_probabilities,
                                      keep_thresholds)
from tinylm.kernels import word2vec as kernel

if NUMBA_AVAILABLE:
    import numba

ARCHITECTURES = {"skipgram": kernel.SKIPGRAM, "cbow": kernel.CBOW}
BLOCKS_PER_EPOCH = 20
CHUNKS_PER_WORKER = 4            # chunks handed out one by one: a slow thread takes fewer
STATE_NAMES = ("w_in", "w_out")


@dataclass
class Word2VecConfig:
    """Settings of a Word2Vec run; defaults are gensim's (sample, alpha, min_alpha, epochs,
    negative, window, vector_size, min_count)."""

    architecture: str = "skipgram"   # "skipgram" or "cbow"
    vector_size: int = 100           # D
    window: int = 5                  # largest distance to a context word
    min_count: int = 5               # rarer words are removed
    negative: int = 5                # K noise words per prediction
    sample: float = 1e-3             # subsampling threshold (0: off)
    alpha: float = 0.025             # first learning rate
    min_alpha: float = 1e-4          # last learning rate
    epochs: int = 5
    seed: int = 1
    workers: int = 2                 # parallel chunks (threads)

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"Word2VecConfig: architecture={self.architecture!r} must be one "
                             f"of {sorted(ARCHITECTURES)}.")
        for name in ("vector_size", "window", "min_count", "negative", "epochs", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Word2VecConfig: {name}={value!r} must be an integer >= 1.")
        if not self.sample >= 0:
            raise ValueError(f"Word2VecConfig: sample={self.sample!r} must be >= 0 "
                             "(0 disables subsampling; gensim's default is 1e-3).")
        if not 0 < self.min_alpha <= self.alpha:
            raise ValueError(f"Word2VecConfig: need 0 < min_alpha <= alpha, got "
                             f"min_alpha={self.min_alpha!r}, alpha={self.alpha!r}.")


class Word2Vec:
    """A Word2Vec model over a fixed vocabulary (``words``, ``counts`` as in Corpus)."""

    def __init__(self, config: Word2VecConfig, words, counts, dtype=numpy.float32):
        if not NUMBA_AVAILABLE:
            raise RuntimeError("Word2Vec trains with numba kernels; install numba.")
        self.config = config
        self.words = list(words)
        self.counts = numpy.asarray(counts, dtype=numpy.int64)
        if len(self.words) == 0 or self.counts.shape != (len(self.words),):
            raise ValueError(f"Word2Vec: need a non-empty vocabulary and one count per word, "
                             f"got {len(self.words)} words and counts of shape "
                             f"{self.counts.shape}.")
        V, D = len(self.words), config.vector_size
        rng = default_rng(config.seed)
        self.w_in = ((2.0 * rng.random((V, D)) - 1.0) / D).astype(dtype)  # [V, D]
        self.w_out = numpy.zeros((V, D), dtype=dtype)                      # [V, D]
        self._rng = default_rng(config.seed + 1)                          # chunk streams
        self._cum_table = cumulative_noise_table(self.counts)              # [V] int64
        self._keep = keep_thresholds(keep_probabilities(self.counts, config.sample))

    @property
    def _chunks(self) -> int:
        """Chunks per block: 1 (serial, deterministic) or CHUNKS_PER_WORKER per worker."""
        return 1 if self.config.workers == 1 else CHUNKS_PER_WORKER * self.config.workers

    @property
    def vectors(self):
        """The word vectors, w_in [V, D]."""
        return self.w_in

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def _check_corpus(self, corpus: Corpus) -> None:
        if corpus.words != self.words:
            raise ValueError("Word2Vec.train: the corpus's vocabulary differs from the "
                             "model's; build the model from this corpus's words and counts.")
        if corpus.ids.size < 2:
            raise ValueError(f"Word2Vec.train: the corpus keeps {corpus.ids.size} word(s) "
                             f"after min_count={self.config.min_count}; a window needs at "
                             "least 2. Use a larger corpus or a lower min_count.")

    def _blocks(self, corpus: Corpus):
        """Sentence bounds of each block, [chunks + 1] per block, cut by word count."""
        starts, chunks = corpus.sentence_starts, self._chunks
        pieces = BLOCKS_PER_EPOCH * chunks
        targets = numpy.linspace(0, corpus.ids.size, pieces + 1)
        cuts = numpy.searchsorted(starts, targets)                          # [pieces + 1]
        cuts[0], cuts[-1] = 0, len(starts) - 1
        cuts = numpy.maximum.accumulate(cuts)
        return [cuts[b * chunks:(b + 1) * chunks + 1].astype(numpy.int64)
                for b in range(BLOCKS_PER_EPOCH)]

    def train(self, corpus: Corpus, on_progress=None) -> list:
        """Train for config.epochs epochs; returns one dict per epoch: {"epoch", "seconds",
        "words_per_s" (corpus.total_words / seconds), "loss" (mean loss per prediction)}.
        ``on_progress(words_done, words_total, loss)`` runs after each block (~20 times an
        epoch), in raw corpus words, with the running mean loss of the epoch."""
        self._check_corpus(corpus)
        cfg = self.config
        scratch = kernel.Scratch(self._chunks, corpus.longest_sentence, cfg.window,
                                 cfg.negative, cfg.vector_size, self.w_in.dtype)
        threads = numba.get_num_threads()
        numba.set_num_threads(min(cfg.workers, numba.config.NUMBA_NUM_THREADS))
        try:
            return [self._epoch(corpus, epoch, scratch, on_progress)
                    for epoch in range(cfg.epochs)]
        finally:
            numba.set_num_threads(threads)

    def _epoch(self, corpus: Corpus, epoch: int, scratch, on_progress) -> dict:
        """One pass over the corpus, block by block; the epoch's history entry."""
        cfg = self.config
        ids = numpy.ascontiguousarray(corpus.ids, dtype=numpy.int32)              # [N]
        starts = numpy.ascontiguousarray(corpus.sentence_starts, dtype=numpy.int64)
        N, total = int(ids.size), corpus.total_words
        began, loss, made = time.perf_counter(), 0.0, 0
        for bounds in self._blocks(corpus):
            states = self._rng.integers(0, 2 ** 48, size=(self._chunks, 1), dtype=numpy.uint64)
            block_loss, block_made = kernel.train_block(
                ARCHITECTURES[cfg.architecture], self.w_in, self.w_out, ids, starts, bounds,
                self._keep, self._cum_table, cfg.window, cfg.alpha, cfg.min_alpha, epoch * N,
                N * cfg.epochs, states, scratch)
            loss, made = loss + block_loss, made + block_made
            if on_progress is not None:
                done = total * epoch + round(total * int(starts[bounds[-1]]) / N)
                on_progress(done, total * cfg.epochs, loss / max(made, 1))
        seconds = time.perf_counter() - began
        return {"epoch": epoch + 1, "seconds": seconds, "words_per_s": total / seconds,
                "loss": loss / max(made, 1)}

    def state_dict(self) -> dict:
        """{"w_in", "w_out"}: the two [V, D] matrices (copies)."""
        return {"w_in": self.w_in.copy(), "w_out": self.w_out.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Load {"w_in", "w_out"}, checking the names, shapes and dtypes."""
        names = set(state)
        if names != set(STATE_NAMES):
            raise ValueError(f"Word2Vec.load_state_dict: expected arrays {list(STATE_NAMES)}, "
                             f"got {sorted(names)} (missing {sorted(set(STATE_NAMES) - names)},"
                             f" unexpected {sorted(names - set(STATE_NAMES))}).")
        for name in STATE_NAMES:
            mine, theirs = getattr(self, name), state[name]
            if not isinstance(theirs, numpy.ndarray) or theirs.shape != mine.shape \
                    or theirs.dtype != mine.dtype:
                got = (f"{theirs.shape} {theirs.dtype}" if isinstance(theirs, numpy.ndarray)
                       else type(theirs).__name__)
                raise ValueError(f"Word2Vec.load_state_dict: {name} must be a {mine.shape} "
                                 f"{mine.dtype} array (V={self.vocab_size} words, "
                                 f"D={self.config.vector_size}), got {got}.")
        for name in STATE_NAMES:
            getattr(self, name)[...] = state[name]
