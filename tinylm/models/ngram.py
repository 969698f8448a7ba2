"""The n-gram language model: counting, smoothing, and nothing to train (chapter 01).

A language model factorises a sequence by the chain rule,
    P(x_1..x_T) = prod_t P(x_t | x_1..x_{t-1}),
and an n-gram model makes the Markov assumption that only the last N-1 tokens matter:
    P(x_t | x_<t) ~ P(x_t | h),   h = x_{t-N+1}..x_{t-1}.
The maximum-likelihood estimate c(h w) / c(h) gives probability 0 to every n-gram the
training text lacks, so one unseen n-gram makes a whole test text impossible (infinite
loss). Smoothing moves some probability to what was not seen:

* add-k (Lidstone; k = 1 is Laplace):
      P(w | h) = (c(h w) + k) / (c(h) + k V)
* interpolated Kneser-Ney (Chen & Goodman 1998, section 3.5), with absolute discount D:
      P(w | h) = max(c(h w) - D, 0) / c(h)  +  lambda(h) P(w | h'),
      lambda(h) = D N1+(h .) / c(h),
  h' is h without its first token, N1+(h .) = #{w : c(h w) > 0}. The recursion ends at the
  uniform distribution 1/V. Only the highest order uses the raw counts c; every lower order
  uses continuation counts
      c_KN(h w) = N1+(. h w) = #{v : c(v h w) > 0},
  the number of distinct words that precede h w: a lower order is consulted only when the
  longer context was rare, so what matters is in how many contexts w appears, not how often
  ("Francisco" is frequent but follows almost only "San"). With 0 <= D <= 1 every
  P(. | h) sums to one exactly; a context never seen (c(h) = 0) backs off entirely.

Near the start of a window fewer than N-1 tokens are available: position t of ``idx`` then
uses the model of order t+2 (raw counts at that order, continuation counts below), so
``forward`` conditions only on tokens inside the window, as every tinylm model does.

Counting is vectorised (xp.unique, no Python loop over the text): an n-gram is the
integer key rank(prefix) * V + last token, where rank(prefix) is the index of its (n-1)-gram
prefix among the sorted distinct (n-1)-grams, so keys stay below (#tokens) * V for any N.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from tinylm.backend import device_of, get_array_module, to_device, to_numpy
from tinylm.functional.embedding import check_ids
from tinylm.models.base import OUTSIDE_VOCABULARY, LanguageModel, check_positive

SMOOTHINGS = ("kneser_ney", "add_k")


@dataclass
class NGramConfig:
    vocab_size: int
    order: int = 3                   # N: the model conditions on N - 1 previous tokens
    smoothing: str = "kneser_ney"    # "kneser_ney" (interpolated) or "add_k"
    k: float = 1.0                   # add-k pseudo-count (0: maximum likelihood)
    discount: float = 0.75           # Kneser-Ney absolute discount D, 0 <= D <= 1

    def __post_init__(self):
        check_positive(self, "vocab_size", "order")
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"NGramConfig.smoothing={self.smoothing!r} is not one of "
                             f"{SMOOTHINGS}.")
        if self.k < 0:
            raise ValueError(f"NGramConfig.k={self.k} must be >= 0 (the add-k pseudo-count).")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"NGramConfig.discount={self.discount} must lie in [0, 1] (so "
                             "that every Kneser-Ney distribution sums to one).")


class _Level:
    """Every distinct n-gram of one order n, sorted by key = context rank * V + token.

    keys, counts, continuation [G]; offsets [C + 1]: the n-grams whose context is the r-th
    distinct (n-1)-gram are entries offsets[r] .. offsets[r+1] - 1 (C = 1 when n = 1).
    """

    def __init__(self, keys, counts, continuation, num_contexts: int, vocab_size: int):
        xp = get_array_module(keys)
        self.keys, self.counts, self.continuation = keys, counts, continuation
        starts = xp.arange(num_contexts + 1, dtype=xp.int64) * vocab_size
        self.offsets = xp.searchsorted(keys, starts)                       # [C + 1]

    def rank(self, prefix_rank, token, vocab_size: int):
        """Index of the n-gram (prefix, token) among the distinct n-grams, -1 if unseen."""
        xp = get_array_module(self.keys)
        if self.keys.size == 0:
            return xp.full(token.shape, -1, dtype=xp.int64)
        key = prefix_rank * vocab_size + token
        slot = xp.minimum(xp.searchsorted(self.keys, key), self.keys.size - 1)
        found = (prefix_rank >= 0) & (self.keys[slot] == key)
        return xp.where(found, slot, -1)

    def dense(self, context_rank, values, vocab_size: int):
        """context_rank [M] -> [M, V] float64: values (counts or continuation counts) of the
        n-grams that extend each context; rows of unseen contexts (rank -1) are zero."""
        xp = get_array_module(self.keys)
        M = context_rank.size
        table = xp.zeros((M, vocab_size), dtype=xp.float64)
        safe = xp.maximum(context_rank, 0)
        start = xp.where(context_rank >= 0, self.offsets[safe], 0)         # [M]
        length = xp.where(context_rank >= 0, self.offsets[safe + 1], 0) - start
        total = int(length.sum())
        if total == 0:
            return table
        row, first_of_row = _rows_of_entries(length, total)                # [total], [M]
        entry = xp.arange(total) - first_of_row[row] + start[row]
        table[row, self.keys[entry] % vocab_size] = values[entry]
        return table


def _rows_of_entries(length, total: int):
    """length [M] >= 0 summing to ``total`` -> (row [total]: the row each of the rows'
    concatenated entries belongs to, first [M]: where each row's entries begin).

    NumPy would say ``row = repeat(arange(M), length)``; CuPy before v14 refuses a device
    array of repeat counts. Instead mark where each row begins and count the marks: entry j
    belongs to the last row that begins at or before j (an empty row begins where the next
    one does, so it is counted and passed over)."""
    xp = get_array_module(length)
    first = xp.cumsum(length) - length                                     # [M]
    begins = xp.zeros(total + 1, dtype=xp.int64)                           # [total + 1]
    xp.add.at(begins, first, 1)
    return xp.cumsum(begins[:total]) - 1, first


def _table_entry(state: dict, key: str, length: int | None = None):
    """state[key] as a 1-D int64 host array of ``length`` entries >= 0, or raise naming it."""
    value = state[key]
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} is a {type(value).__name__}, "
                         "not an array; the state holds the arrays state_dict() returned.")
    a = to_numpy(value)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} must be a 1-D integer array, "
                         f"got shape {a.shape} and dtype {a.dtype}; the state is damaged.")
    if length is not None and a.size != length:
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} holds {a.size} values but "
                         f"its keys hold {length}; the state is damaged.")
    if a.size and int(a.min()) < 0:
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} holds a negative value "
                         f"{int(a.min())}; counts and keys are >= 0. The state is damaged.")
    return a.astype(get_array_module(a).int64)


def _check_keys(keys, limit: int, key: str) -> None:
    """Keys must increase strictly (they are searched by bisection) and stay below
    (#contexts) * V, or they would name contexts and tokens that do not exist."""
    if keys.size and int(keys.max()) >= limit:
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} holds key {int(keys.max())} "
                         f">= {limit} = contexts x vocab_size; was the state saved for another "
                         "vocab_size?")
    if keys.size > 1 and not bool((keys[1:] > keys[:-1]).all()):
        raise ValueError(f"NGramLM.load_state_dict: entry {key!r} is not strictly increasing; "
                         "the n-gram keys are stored sorted. The state is damaged.")


class NGramLM(LanguageModel):
    """Count-based language model of order N; ``fit(ids)`` then ``forward(idx, targets)``."""

    config_class = NGramConfig
    trainable = False

    def __init__(self, config: NGramConfig):
        super().__init__()
        self.config = config
        self.levels = []                   # _Level for orders 1..N, filled by fit()
        self.device = "cpu"                # where the count tables live: "cpu" or "gpu"

    @property
    def context_size(self) -> int:
        return max(self.config.order - 1, 1)

    # -- estimation ----------------------------------------------------------------------------
    def fit(self, ids) -> "NGramLM":
        """Count every n-gram of orders 1..N in the stream ``ids`` [L] (NumPy or CuPy)."""
        xp = get_array_module(ids)
        ids = xp.asarray(ids).ravel()
        if ids.size == 0:
            raise ValueError("fit: the training stream is empty; there is nothing to count.")
        check_ids(ids, self.config.vocab_size, "NGramLM.fit", "the training stream", "token id",
                  OUTSIDE_VOCABULARY)
        ids = ids.astype(xp.int64)
        V, L = self.config.vocab_size, ids.size
        found = []                               # (keys, counts) per order
        continuation = []
        # prefix_rank[s]: rank of the (n-1)-gram that starts at position s (n = 1: the empty one)
        prefix_rank = xp.zeros(L, dtype=xp.int64)
        for n in range(1, self.config.order + 1):
            num = max(L - n + 1, 0)                  # number of n-grams in the stream
            keys = prefix_rank[:num] * V + ids[n - 1:n - 1 + num]            # [num]
            unique, first, rank, counts = xp.unique(keys, return_index=True,
                                                    return_inverse=True, return_counts=True)
            if n > 1:   # N1+(. g) of each (n-1)-gram g = number of distinct n-grams ending in g;
                # the n-gram first seen at s ends in the (n-1)-gram that starts at s + 1
                continuation.append(xp.bincount(prefix_rank[first + 1],
                                                minlength=found[-1][0].size))
            found.append((unique, counts))
            prefix_rank = rank.ravel()
        continuation.append(None)                    # the top order never needs them
        self._set_levels([(k, c, cont) for (k, c), cont in zip(found, continuation)])
        return self

    def _set_levels(self, tables) -> None:
        V = self.config.vocab_size
        self.device = device_of(tables[0][0])
        self.levels = []
        for n, (keys, counts, cont) in enumerate(tables, start=1):
            contexts = 1 if n == 1 else self.levels[-1].keys.size
            self.levels.append(_Level(keys, counts, cont, contexts, V))

    def _require_fitted(self) -> None:
        if len(self.levels) < self.config.order:
            raise RuntimeError("this NGramLM has no counts yet: call model.fit(train_ids) "
                               "(or load_state_dict) before using it.")

    def with_config(self, **changes) -> "NGramLM":
        """A model sharing these counts with another order (<= the fitted one) or smoothing."""
        self._require_fitted()
        config = dataclasses.replace(self.config, **changes)
        if config.order > len(self.levels) or config.vocab_size != self.config.vocab_size:
            raise ValueError(f"with_config: counts exist up to order {len(self.levels)} for "
                             f"vocab_size {self.config.vocab_size}; refit for {config}.")
        model = NGramLM(config)
        model.levels, model.device = self.levels[:config.order], self.device
        return model

    def num_ngrams(self) -> list[int]:
        """Distinct n-grams seen, for n = 1..N."""
        return [int(level.keys.size) for level in self.levels]

    # -- probabilities ---------------------------------------------------------------------------
    def _context_ranks(self, idx):
        """ranks[j] [B, T-j+1]: rank of the j-gram idx[:, s:s+j] (-1 if unseen), j = 1..N-1;
        ranks[0] [B, T] is the empty context, rank 0 everywhere."""
        xp = get_array_module(idx)
        B, T = idx.shape
        ranks = [xp.zeros((B, T), dtype=xp.int64)]
        for j in range(1, self.config.order):
            width = max(T - j + 1, 0)
            ranks.append(self.levels[j - 1].rank(ranks[-1][:, :width], idx[:, j - 1:j - 1 + width],
                                                 self.config.vocab_size))
        return ranks

    def _add_k(self, level, context_rank, out_shape):
        counts = level.dense(context_rank.ravel(), level.counts, self.config.vocab_size)
        k, V = self.config.k, self.config.vocab_size
        denominator = counts.sum(axis=1, keepdims=True) + k * V                  # [M, 1]
        xp = get_array_module(counts)
        probs = xp.where(denominator > 0, (counts + k) / xp.maximum(denominator, 1e-300), 1.0 / V)
        return probs.reshape(out_shape)

    def _kneser_ney(self, level, context_rank, values, lower):
        """One interpolation step: lower [B, t, V] = P(. | h') -> P(. | h)."""
        xp = get_array_module(lower)
        D = self.config.discount
        c = level.dense(context_rank.ravel(), values, self.config.vocab_size)   # [M, V]
        total = c.sum(axis=1, keepdims=True)                                     # c(h)
        types = (c > 0).sum(axis=1, keepdims=True)                               # N1+(h .)
        lower = lower.reshape(c.shape)
        probs = (xp.maximum(c - D, 0.0) + D * types * lower) / xp.maximum(total, 1.0)
        return xp.where(total > 0, probs, lower).reshape(context_rank.shape + (-1,))

    def probabilities(self, idx):
        """idx [B, T] -> P [B, T, V] float64: P[b, t] = P(next | idx[b, :t+1] within the window)."""
        self._require_fitted()
        self.check_batch(idx)
        return self._probabilities(idx)

    def _probabilities(self, idx):
        """``probabilities`` of a checked idx."""
        idx = self._on_tables_device(idx)
        xp = get_array_module(idx)
        B, T = idx.shape
        N, V = self.config.order, self.config.vocab_size
        ranks = self._context_ranks(idx)
        probs = xp.full((B, T, V), 1.0 / V)                       # order 0: uniform
        for n in range(1, N + 1):
            lo = max(n - 2, 0)                   # positions t >= lo see n - 1 tokens of context
            if lo >= T:
                break
            context = ranks[n - 1][:, :T - lo]                            # [B, T - lo]
            raw = T - lo if n == N else (1 if n >= 2 else 0)   # positions whose top order is n
            level = self.levels[n - 1]
            if self.config.smoothing == "add_k":
                if raw:
                    probs[:, lo:lo + raw] = self._add_k(level, context[:, :raw], (B, raw, V))
                continue
            if raw:
                probs[:, lo:lo + raw] = self._kneser_ney(level, context[:, :raw], level.counts,
                                                         probs[:, lo:lo + raw])
            if lo + raw < T:
                probs[:, lo + raw:] = self._kneser_ney(level, context[:, raw:], level.continuation,
                                                       probs[:, lo + raw:])
        return probs

    def forward(self, idx, targets=None):
        """idx [B, T] -> (logits [B, T, V] = log-probabilities, mean NLL of targets or None).

        A target the model gives probability 0 (possible only with add-k, k = 0) makes the
        loss +inf: the maximum-likelihood estimate's zero-count problem.
        """
        self._require_fitted()
        self.check_batch(idx, targets, ignore_index=None)   # no padding: every target scores
        probs = self._probabilities(idx)
        xp = get_array_module(probs)
        logits = xp.full(probs.shape, -xp.inf)
        positive = probs > 0
        logits[positive] = xp.log(probs[positive])
        if targets is None:
            return logits, None
        targets = self._on_tables_device(targets)
        picked = xp.take_along_axis(logits, targets[..., None].astype(xp.int64), axis=-1)
        return logits, -picked.mean()

    def backward(self, dout=None):
        raise NotImplementedError("NGramLM is count-based: fit(ids) estimates it in one pass "
                                  "and it has no parameters, so there is nothing to "
                                  "backpropagate or train. Use model.fit(train_ids).")

    def stream_loss(self, ids, chunk_size: int = 16384) -> float:
        """Mean NLL (nats/token) of ids[1:], each token given all N-1 tokens before it."""
        self._require_fitted()
        ids = self._on_tables_device(ids).ravel()
        if ids.size < 2:
            raise ValueError(f"stream_loss needs at least 2 tokens, got {ids.size}.")
        history = self.config.order - 1
        total = 0.0
        for start in range(0, ids.size - 1, chunk_size):
            stop = min(start + chunk_size, ids.size - 1)
            left = max(start - history, 0)          # extra tokens that only serve as context
            x, y = ids[None, left:stop], ids[None, left + 1:stop + 1]
            logits, _ = self.forward(x)                                  # [1, t, V]
            rows = logits[0, start - left:]                                # predictions to score
            total -= float(get_array_module(rows).take_along_axis(rows, y[0, start - left:, None],
                                                                  axis=-1).sum())
        return total / (ids.size - 1)

    # -- devices and checkpoints -------------------------------------------------------------------
    def _on_tables_device(self, a):
        return to_device(a, self.device)

    def to(self, dtype=None, device: str | None = None):
        """Move the count tables to ``device``; probabilities are always float64."""
        if device is not None and self.levels:
            def move(a):
                return None if a is None else to_device(a, device)
            self._set_levels([(move(lv.keys), move(lv.counts), move(lv.continuation))
                              for lv in self.levels])
        return self

    def state_dict(self) -> dict:
        """The count tables as host arrays (no parameters: a checkpoint holds the counts)."""
        state = {}
        for n, level in enumerate(self.levels, start=1):
            state[f"order{n}.keys"] = to_numpy(level.keys).copy()
            state[f"order{n}.counts"] = to_numpy(level.counts).copy()
            if n < len(self.levels):
                state[f"order{n}.continuation"] = to_numpy(level.continuation).copy()
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore the count tables of ``state_dict()``; every entry is checked first (1-D
        non-negative integers, counts as long as their keys, keys sorted and inside the
        vocabulary), naming the one that is wrong."""
        N = self.config.order
        expected = {f"order{n}.{part}" for n in range(1, N + 1) for part in ("keys", "counts")}
        expected |= {f"order{n}.continuation" for n in range(1, N)}
        if set(state) != expected:
            raise KeyError(f"state dict does not match NGramLM(order={N}): missing "
                           f"{sorted(expected - set(state))}, unexpected "
                           f"{sorted(set(state) - expected)}. Was it saved from another order?")
        tables, contexts = [], 1
        for n in range(1, N + 1):
            keys = _table_entry(state, f"order{n}.keys")
            _check_keys(keys, contexts * self.config.vocab_size, f"order{n}.keys")
            counts = _table_entry(state, f"order{n}.counts", keys.size)
            cont = _table_entry(state, f"order{n}.continuation", keys.size) if n < N else None
            tables.append((keys, counts, cont))
            contexts = keys.size                     # the n-grams are the next order's contexts
        self._set_levels(tables)


def choose_ngram(train_ids, val_ids, vocab_size: int, orders=(1, 2, 3, 4, 5), settings=None):
    """Fit once at the largest order, score every (order, smoothing) on the validation stream.

    ``settings``: dicts of NGramConfig fields, default Kneser-Ney (D = 0.75) and add-k with
    k in {1, 0.1, 0.01}. Returns (best model, rows sorted as given), each row a dict with
    order, smoothing, k, discount, loss (nats/token) and perplexity = exp(loss).
    """
    if settings is None:
        settings = [{"smoothing": "kneser_ney", "discount": 0.75},
                    *({"smoothing": "add_k", "k": k} for k in (1.0, 0.1, 0.01))]
    full = NGramLM(NGramConfig(vocab_size, order=max(orders))).fit(train_ids)
    rows, best = [], None
    for setting in settings:
        for order in orders:
            model = full.with_config(order=order, **setting)
            loss = model.stream_loss(val_ids)
            rows.append({"order": order, "smoothing": model.config.smoothing,
                         "k": model.config.k, "discount": model.config.discount,
                         "loss": loss, "perplexity": math.exp(loss)})
            if best is None or loss < best[0]:
                best = (loss, model)
    return best[1], rows
