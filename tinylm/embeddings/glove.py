"""GloVe: global vectors for word representation (Pennington, Socher and Manning, 2014),
trained as the reference C code trains them. Chapter 05, section "GloVe".

Two steps, as in stanfordnlp/GloVe's cooccur and glove programs:

1. count the co-occurrences X of the corpus once (tinylm/embeddings/cooccurrence.py), and
   keep the M nonzero entries with log X_ij and the weights f(X_ij);
2. for each epoch, visit the entries in a fresh seeded random order and move w_i, w~_j, b_i,
   b~_j down the gradient of 1/2 f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with AdaGrad
   (the maths: tinylm/functional/glove.py; the update: tinylm/kernels/glove.py).

The parameters start as glove.c starts them: every vector component and bias uniform in
[-0.5, 0.5) / D, every AdaGrad sum of squares at 1. The word vectors are w + w~ (the paper's
recommendation, glove.c's default output ``-model 2``): w and w~ see the same counts from
two sides (X is symmetric), so their sum averages out some of the noise of each.

The epoch's loss is glove.c's printed cost: the mean over entries of 1/2 f e^2, computed for
each entry just before its update.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy

from tinylm.backend import default_rng, derive_seed
from tinylm.embeddings.cooccurrence import Cooccurrences, count_cooccurrences
from tinylm.functional.glove import glove_weighting
from tinylm.kernels.glove import glove_epoch

DTYPE = numpy.float32      # the tables; tinylm/kernels/glove.py says why not float64
TABLES = ("w", "w_tilde", "b", "b_tilde")
STATE_NAMES = TABLES + tuple(f"gradsq_{name}" for name in TABLES)


@dataclass
class GloVeConfig:
    """The settings of glove.c that matter here, with its defaults (and vector_size 100,
    window 10, as the paper's small-corpus runs; glove.c's own defaults are 50 and 15)."""

    vector_size: int = 100
    window: int = 10
    min_count: int = 5
    x_max: float = 100.0
    alpha: float = 0.75
    learning_rate: float = 0.05
    epochs: int = 25
    seed: int = 1
    workers: int = 2
    distance_weighting: bool = True
    symmetric: bool = True

    def __post_init__(self):
        for name in ("vector_size", "window", "min_count", "epochs", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GloVeConfig.{name}={value!r} must be an integer >= 1.")
        for name in ("x_max", "alpha", "learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"GloVeConfig.{name}={value!r} must be a finite number > 0.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"GloVeConfig.seed={self.seed!r} must be an integer >= 0.")
        for name in ("distance_weighting", "symmetric"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GloVeConfig.{name}={getattr(self, name)!r} must be True or "
                                 "False.")


class GloVe:
    """Word vectors w [V, D], context vectors w~ [V, D], biases b, b~ [V], and their AdaGrad
    sums of squares, for the vocabulary ``words`` (with its corpus ``counts``)."""

    def __init__(self, config: GloVeConfig, words, counts):
        self.config = config
        self.words = list(words)
        self.counts = numpy.asarray(counts, dtype=numpy.int64)
        if self.counts.shape != (len(self.words),):
            raise ValueError(f"GloVe: {len(self.words)} words but counts has shape "
                             f"{self.counts.shape}; pass one count per word (Corpus.counts).")
        if not self.words:
            raise ValueError("GloVe: the vocabulary is empty; lower min_count or use a larger "
                             "corpus.")
        V, D = len(self.words), config.vector_size
        rng = default_rng(config.seed)

        def uniform(*shape):                                  # glove.c: (rand - 0.5) / D
            return ((rng.random(shape) - 0.5) / D).astype(DTYPE)

        self.w, self.w_tilde = uniform(V, D), uniform(V, D)
        self.b, self.b_tilde = uniform(V), uniform(V)
        for name in TABLES:
            setattr(self, f"gradsq_{name}", numpy.ones_like(getattr(self, name)))
        self._shuffle_rng = default_rng(derive_seed(config.seed, 1))   # the epochs' orders
        self.cooccurrence_seconds = 0.0

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def vectors(self) -> numpy.ndarray:
        """The word vectors w + w~, float32 [V, D]."""
        return (self.w + self.w_tilde).astype(numpy.float32)

    def cooccurrences(self, ids, sentence_starts) -> Cooccurrences:
        """The co-occurrence counts of ids [N] (sentences at sentence_starts [S + 1]) with
        this configuration's window, distance weighting and symmetry."""
        c = self.config
        started = time.perf_counter()
        counts = count_cooccurrences(ids, sentence_starts, self.vocab_size, window=c.window,
                                     distance_weighting=c.distance_weighting,
                                     symmetric=c.symmetric)
        self.cooccurrence_seconds = time.perf_counter() - started
        return counts

    def train(self, corpus, on_progress=None) -> list:
        """Count the co-occurrences of ``corpus`` (a tinylm.embeddings.corpus.Corpus, or
        anything with ids, sentence_starts and total_words) and train on them."""
        counts = self.cooccurrences(corpus.ids, corpus.sentence_starts)
        return self.fit(counts, total_words=corpus.total_words, on_progress=on_progress)

    def fit(self, counts: Cooccurrences, total_words: int | None = None,
            on_progress=None) -> list:
        """``config.epochs`` epochs over the entries of X. Returns one dict per epoch:
        epoch, seconds, loss (mean 1/2 f e^2), words_per_s (total_words / seconds; 0 when
        total_words is not given) and entries_per_s. ``on_progress(done, total, loss)`` is
        called after each epoch."""
        if counts.vocab_size != self.vocab_size:
            raise ValueError(f"GloVe.fit: the counts are over {counts.vocab_size} words, the "
                             f"model has {self.vocab_size}; count with this model's vocabulary.")
        if len(counts) == 0:
            raise ValueError("GloVe.fit: no co-occurrences to train on (every sentence shorter "
                             "than two words?).")
        c = self.config
        log_x = numpy.log(counts.values).astype(DTYPE)                          # [M]
        weight = glove_weighting(counts.values, c.x_max, c.alpha).astype(DTYPE)  # [M]
        tables = tuple(getattr(self, name) for name in TABLES)
        gradsq = tuple(getattr(self, f"gradsq_{name}") for name in TABLES)
        M, history = len(counts), []
        for epoch in range(1, c.epochs + 1):
            started = time.perf_counter()
            order = self._shuffle_rng.permutation(M)
            cost = glove_epoch(order, counts.rows, counts.cols, log_x, weight, tables, gradsq,
                               c.learning_rate, threads=c.workers)
            seconds = time.perf_counter() - started
            loss = cost / M
            if not math.isfinite(loss):
                raise FloatingPointError(f"GloVe: the loss of epoch {epoch} is {loss}; the "
                                         "training diverged. Lower learning_rate (now "
                                         f"{c.learning_rate}).")
            history.append({"epoch": epoch, "seconds": seconds, "loss": loss,
                            "words_per_s": (total_words or 0) / seconds,
                            "entries_per_s": M / seconds})
            if on_progress is not None:
                on_progress(epoch, c.epochs, loss)
        return history

    def state_dict(self) -> dict:
        """Copies of the 8 arrays: w, w_tilde, b, b_tilde and their gradsq_ sums of squares
        (kept, so that training can go on where it stopped)."""
        return {name: getattr(self, name).copy() for name in STATE_NAMES}

    def load_state_dict(self, state: dict) -> None:
        """Copy the arrays of ``state_dict()`` in, after checking every name, shape and dtype
        (nothing changes when one is wrong)."""
        missing = [n for n in STATE_NAMES if n not in state]
        unexpected = [n for n in state if n not in STATE_NAMES]
        if missing or unexpected:
            raise KeyError(f"GloVe.load_state_dict: missing arrays {missing}, unexpected "
                           f"arrays {unexpected}; pass what GloVe.state_dict() returned.")
        for name in STATE_NAMES:
            own, value = getattr(self, name), state[name]
            shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
            if shape != own.shape or dtype != own.dtype:
                got = f"{shape} of {dtype}" if dtype is not None else f"a {type(value).__name__}"
                raise ValueError(f"GloVe.load_state_dict: {name} is {got}; this model needs "
                                 f"{own.shape} of {own.dtype} (V={self.vocab_size}, "
                                 f"vector_size={self.config.vector_size}).")
        for name in STATE_NAMES:
            getattr(self, name)[...] = state[name]

    def __repr__(self) -> str:
        return f"GloVe(V={self.vocab_size}, {asdict(self.config)})"
