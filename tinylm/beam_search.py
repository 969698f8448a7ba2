"""Beam search: look for the most probable output sequence, not just the best next token.

A decoder (a language model, or the decoder of an encoder-decoder model) gives, for a source
x and a prefix y_<t, the distribution of the next token p(y_t | y_<t, x). A hypothesis
y = (y_1, ..., y_L) has

    log P(y | x) = sum_{t=1..L} log p(y_t | y_<t, x)

Greedy decoding takes y_t = argmax p(y_t | y_<t, x) one step at a time; a token that looks
best now can lead to a poor continuation (chapter 10 shows the decoders of a language model).
Beam search keeps the ``beam_width`` best prefixes at every step instead of one.

Length. log P only falls as y grows (each term is <= 0), so the raw sum prefers short
outputs. The score that ranks finished hypotheses divides it by a length penalty lp:

    score(y) = log P(y | x) / lp(|y|)
    length_penalty=None:       lp(L) = 1                      (the raw log-probability)
    length_penalty="average":  lp(L) = L                      (the mean log-prob per token)
    length_penalty="gnmt":     lp(L) = ((5 + L) / 6) ** alpha (Wu et al. 2016, GNMT)

|y| counts the generated tokens: bos is not counted, the final eos is.

The search (the textbook form, as in Jurafsky & Martin's "Speech and Language Processing"):

1. Every row b of the batch starts with one live hypothesis, the empty prefix (fed as bos).
2. At each step, every live hypothesis h is extended by every token v:
   log P(h v) = log P(h) + log p(v | h, x). Row b keeps the best ``beam_width - F_b``
   extensions, F_b being how many hypotheses of row b have finished. All extensions of a
   row have the same length, so ranking them by log P is ranking them by score.
3. A kept extension that ends in eos is finished: it is set aside, and the row's beam
   narrows by one. The others stay live and are fed to the next step.
4. A row stops when it has ``beam_width`` finished hypotheses (no live ones left), when no
   live hypothesis can still beat its best finished one (below), or at ``max_len`` tokens,
   where its live hypotheses compete, unfinished, with the finished ones.

Stopping early. A live hypothesis h of log-probability l <= 0 can only become y with
log P(y) <= l and |y| <= max_len, so (lp grows with the length, and l <= 0)

    score(y) = log P(y) / lp(|y|) <= l / lp(|y|) <= l / lp(max_len)

A row stops as soon as its best finished score is >= l / lp(max_len) for every live h. The
bound is exact: stopping never changes the answer, it only saves steps. The simpler test
"best live score <= best finished score" is exact only without a penalty (then lp = 1 and
the bound is the same); under "average" or "gnmt" a live hypothesis can still overtake
by growing, since dividing a negative log P by a larger lp raises the score. With
``beam_width=1`` the search is greedy decoding (``greedy_decode``), token for token.

The model enters through two functions, so any model fits:

    log_probs, state = step(tokens, state)   # tokens [N] int (host) -> log_probs [N, V]
    state = reorder(state, indices)          # indices [N'] into the N rows -> N' rows

N is the number of live hypotheses of the whole batch (at most batch_size * beam_width);
the first call gets N = batch_size rows of bos and ``start_state``, which holds one row per
batch row (an encoder's output, a language model's prompt). ``reorder`` keeps the state of
each surviving hypothesis' parent, in order; the default (``reorder_rows``) indexes the
leading axis of every array in a state that is an array, or a tuple, list or dict of them
(nested). ``language_model_step`` adapts a tinylm language model (bos is then ignored: the
prompt is the context).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy

from tinylm.backend import get_array_module, to_numpy
from tinylm.functional.softmax import log_softmax_forward
from tinylm.models.base import LanguageModel

LENGTH_PENALTIES = (None, "average", "gnmt")


@dataclasses.dataclass(frozen=True)
class BeamResult:
    """One hypothesis: ``tokens`` (bos excluded; eos last if ``finished``), its ranking
    ``score`` = log_prob / lp(len(tokens)) and ``log_prob`` = sum_t log p(y_t | y_<t, x)."""

    tokens: tuple
    score: float
    log_prob: float
    finished: bool


@dataclasses.dataclass
class _Live:
    """The live hypotheses of the whole batch, one entry per row of the decoder's state."""

    rows: numpy.ndarray       # [N] int: the batch row of each hypothesis
    log_probs: numpy.ndarray  # [N] float64: log P(prefix | x)
    prefixes: list            # N tuples of token ids (bos excluded)


def length_penalty_of(length: int, length_penalty=None, alpha: float = 0.6) -> float:
    """lp(L): 1 (None), L ("average") or ((5 + L) / 6) ** alpha ("gnmt")."""
    if length_penalty is None:
        return 1.0
    if length_penalty == "average":
        return float(length)
    return ((5.0 + length) / 6.0) ** alpha


def hypothesis_score(log_prob: float, length: int, length_penalty=None,
                     alpha: float = 0.6) -> float:
    """score(y) = log P(y | x) / lp(|y|)."""
    return log_prob / length_penalty_of(length, length_penalty, alpha)


def reorder_rows(state, indices, axis: int = 0):
    """Select rows of a decoder state: ``take(state, indices, axis)`` for every array, through
    tuples, lists and dicts (nested), ``select_rows(indices)`` for an object that has it (a
    KV cache); None stays None. indices [N'] int. The batch axis is
    the leading one (``axis=0``) for most states; recurrent states [layers, B, H] use 1."""
    if state is None:
        return None
    if isinstance(state, dict):
        return {key: reorder_rows(value, indices, axis) for key, value in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(reorder_rows(value, indices, axis) for value in state)
    if hasattr(state, "shape") and hasattr(state, "ndim"):
        xp = get_array_module(state)
        return xp.take(state, xp.asarray(indices), axis=axis)
    if hasattr(state, "select_rows"):                  # GPT's KV caches (tinylm/nn/attention.py)
        return state.select_rows(indices)
    raise TypeError(f"reorder_rows: cannot select rows of a {type(state).__name__}; the "
                    "default reorder handles arrays and tuples, lists and dicts of them. "
                    "Pass reorder=(state, indices) -> state for this state.")


def beam_search(step, start_state, batch_size: int, bos_id: int, eos_id: int,
                beam_width: int = 5, max_len: int = 50, length_penalty="gnmt",
                alpha: float = 0.6, reorder=None) -> list:
    """The best hypothesis of each batch row, as a list of ``batch_size`` BeamResult.

    step(tokens [N], state) -> (log_probs [N, V], state); reorder(state, indices [N'])
    -> state (default ``reorder_rows``). ``max_len`` caps |y| (eos included). The search
    and the stopping rule are described in the module docstring.
    """
    _check_settings(batch_size, beam_width, max_len, length_penalty, alpha, bos_id, eos_id)
    reorder = reorder_rows if reorder is None else reorder
    finished = [[] for _ in range(batch_size)]          # per row: finished BeamResults
    unfinished = [[] for _ in range(batch_size)]        # per row: live at max_len
    live = _Live(numpy.arange(batch_size), numpy.zeros(batch_size), [()] * batch_size)
    state = start_state
    for length in range(1, max_len + 1):
        tokens = numpy.array([p[-1] if p else bos_id for p in live.prefixes], dtype=numpy.int64)
        log_probs, state = step(tokens, state)
        log_probs = _checked_log_probs(log_probs, len(tokens), eos_id, "beam_search")
        parents, next_live = [], _Live(numpy.zeros(0, int), numpy.zeros(0), [])
        for row in range(batch_size):
            here = numpy.flatnonzero(live.rows == row)                     # [n_row]
            if here.size == 0:
                continue
            slots = beam_width - len(finished[row])
            kept = _extend_row(here, live, log_probs[here], slots, eos_id)
            for parent, prefix, log_prob in kept:
                if prefix[-1] == eos_id:
                    finished[row].append(_result(prefix, log_prob, True, length_penalty, alpha))
                else:
                    parents.append(parent)
                    _append(next_live, row, log_prob, prefix)
            _prune_beaten(row, next_live, parents, finished[row], max_len, length_penalty,
                          alpha)
        live = next_live
        if length == max_len or not parents:
            break
        state = reorder(state, numpy.asarray(parents, dtype=numpy.int64))
    for row, log_prob, prefix in zip(live.rows, live.log_probs, live.prefixes):
        unfinished[row].append(_result(prefix, log_prob, False, length_penalty, alpha))
    return [_best(finished[row] + unfinished[row]) for row in range(batch_size)]


def greedy_decode(step, start_state, batch_size: int, bos_id: int, eos_id: int,
                  max_len: int = 50, length_penalty=None, alpha: float = 0.6) -> list:
    """y_t = argmax_v log p(v | y_<t, x) until eos or ``max_len`` tokens; one BeamResult per
    row (score under ``length_penalty``, for comparison with beam_search). Every row is fed
    at every step (a finished row is fed eos, and its output ignored), so no reorder."""
    _check_settings(batch_size, 1, max_len, length_penalty, alpha, bos_id, eos_id)
    tokens = numpy.full(batch_size, bos_id, dtype=numpy.int64)                # [B]
    outputs = [[] for _ in range(batch_size)]
    log_prob_sums = numpy.zeros(batch_size)                                   # [B]
    done = numpy.zeros(batch_size, dtype=bool)                                # [B]
    state = start_state
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        log_probs = _checked_log_probs(log_probs, batch_size, eos_id, "greedy_decode")
        best = log_probs.argmax(axis=-1)                                      # [B]
        for row in numpy.flatnonzero(~done):
            outputs[row].append(int(best[row]))
            log_prob_sums[row] = log_prob_sums[row] + log_probs[row, best[row]]
        done |= best == eos_id
        if done.all():
            break
        tokens = numpy.where(done, eos_id, best).astype(numpy.int64)
    return [_result(tuple(out), lp, bool(out[-1] == eos_id), length_penalty, alpha)
            for out, lp in zip(outputs, log_prob_sums)]


def language_model_step(model, prompt, use_cache: bool = True, batch_axis=None):
    """(step, start_state, reorder) that decode a tinylm LanguageModel after ``prompt`` [B, T].

    The model's incremental interface gives logits; step turns them into log-probabilities
    (log_softmax). The first call ignores its tokens (bos) and runs ``start_decoding`` on
    the prompt; later calls run ``decode_step``. reorder selects rows of the model's state
    with ``reorder_rows`` along ``batch_axis``: 1 for a recurrent (``stateful``) model, whose
    state is [layers, B, H], else 0; GPT's KV caches select their rows themselves
    (``KVCache.select_rows``). Put the model in eval mode first.
    """
    if not use_cache and model.stateful:
        raise ValueError(f"use_cache=False recomputes from the tokens alone, but "
                         f"{type(model).__name__} carries a recurrent state; use the default.")
    start, advance = ((model.start_decoding, model.decode_step) if use_cache else
                      (lambda p: LanguageModel.start_decoding(model, p),
                       lambda ids, st: LanguageModel.decode_step(model, ids, st)))
    axis = (1 if model.stateful and use_cache else 0) if batch_axis is None else batch_axis
    xp = get_array_module(prompt)

    def step(tokens, state):
        started, model_state = state
        if started:
            logits, model_state = advance(xp.asarray(tokens, dtype=prompt.dtype), model_state)
        else:
            logits, model_state = start(model_state)
        log_probs, _ = log_softmax_forward(logits.astype("float64"))         # [N, V]
        return log_probs, (True, model_state)

    def reorder(state, indices):
        started, model_state = state
        return started, reorder_rows(model_state, indices, axis)

    return step, (False, prompt), reorder


# -- the pieces ---------------------------------------------------------------------------
def _extend_row(here, live: _Live, log_probs, slots: int, eos_id: int) -> list:
    """The ``slots`` best one-token extensions of one row's live hypotheses ``here`` [n]
    (log_probs [n, V]), best first: (parent index, prefix, log P) for each; impossible
    extensions (log P = -inf) are never kept. Ties go to the earlier hypothesis and the
    smaller token id, as argmax breaks them."""
    V = log_probs.shape[-1]
    candidates = (live.log_probs[here][:, None] + log_probs).ravel()        # [n * V]
    order = _top_in_order(candidates, slots)
    order = order[candidates[order] > -numpy.inf]
    return [(int(here[i // V]), live.prefixes[here[i // V]] + (int(i % V),),
             float(candidates[i])) for i in order]


def _top_in_order(values, k: int):
    """Indices of the k largest ``values`` [N], largest first, ties in index order: the
    first k of a stable descending sort, without sorting all N. The k-th largest value is
    found by partition (O(N)); only the entries >= it, which include every tie, are sorted."""
    if k >= values.size:
        return numpy.argsort(-values, kind="stable")
    kth = numpy.partition(values, values.size - k)[values.size - k]
    near = numpy.flatnonzero(values >= kth)                                 # ascending
    return near[numpy.argsort(-values[near], kind="stable")][:k]


def _append(live: _Live, row: int, log_prob: float, prefix: tuple) -> None:
    live.rows = numpy.append(live.rows, row)
    live.log_probs = numpy.append(live.log_probs, log_prob)
    live.prefixes.append(prefix)


def _prune_beaten(row, live: _Live, parents: list, finished: list, max_len, length_penalty,
                  alpha) -> None:
    """Drop row ``row``'s live hypotheses when none can beat its best finished one: every
    continuation of a prefix with log P = l scores at most l / lp(max_len)."""
    if not finished:
        return
    mine = live.rows == row                                                 # [N]
    if not mine.any():
        return
    best_finished = max(f.score for f in finished)
    best_possible = live.log_probs[mine].max() / length_penalty_of(max_len, length_penalty,
                                                                   alpha)
    if best_finished >= best_possible:
        keep = ~mine
        live.rows, live.log_probs = live.rows[keep], live.log_probs[keep]
        live.prefixes[:] = [p for p, k in zip(live.prefixes, keep) if k]
        parents[:] = [p for p, k in zip(parents, keep) if k]


def _result(prefix, log_prob, finished, length_penalty, alpha) -> BeamResult:
    score = hypothesis_score(float(log_prob), len(prefix), length_penalty, alpha)
    return BeamResult(tuple(int(t) for t in prefix), score, float(log_prob), finished)


def _best(results: list) -> BeamResult:
    """The highest score; a tie goes to the hypothesis found first (finished before live)."""
    return max(results, key=lambda r: r.score)


def _checked_log_probs(log_probs, rows: int, eos_id: int, owner: str):
    """log_probs [rows, V] from step -> host float64, or a ValueError naming the problem."""
    log_probs = numpy.asarray(to_numpy(log_probs), dtype=numpy.float64)
    if log_probs.ndim != 2 or log_probs.shape[0] != rows:
        raise ValueError(f"{owner}: step returned log_probs of shape {log_probs.shape}, but "
                         f"it was given {rows} tokens; it must return [{rows}, vocab_size], "
                         "one row of next-token log-probabilities per token it was fed.")
    if not 0 <= eos_id < log_probs.shape[1]:
        raise ValueError(f"{owner}: eos_id={eos_id} is not a token of the vocabulary of "
                         f"size {log_probs.shape[1]} that step scores.")
    bad = numpy.isnan(log_probs).any(axis=-1) | (log_probs == numpy.inf).any(axis=-1)
    if bad.any():
        row = int(numpy.argmax(bad))
        raise ValueError(f"{owner}: the log_probs of row {row} hold NaN or +inf; the model's "
                         "weights or the step function are not finite (a diverged run or a "
                         "damaged checkpoint).")
    if (log_probs > 1e-6).any():
        row = int(numpy.argmax((log_probs > 1e-6).any(axis=-1)))
        raise ValueError(f"{owner}: the log_probs of row {row} hold values > 0 (up to "
                         f"{log_probs.max():.3g}), so they are not log-probabilities; step "
                         "must return log_softmax(logits), not the logits.")
    if not (log_probs.max(axis=-1) > -numpy.inf).all():
        row = int(numpy.argmin(log_probs.max(axis=-1) > -numpy.inf))
        raise ValueError(f"{owner}: every token of row {row} has log-probability -inf, so "
                         "the hypothesis has no continuation; step must give some token "
                         "(eos at least) a finite log-probability.")
    return log_probs


def _check_settings(batch_size, beam_width, max_len, length_penalty, alpha, bos_id,
                    eos_id) -> None:
    """Raise ValueError naming the first setting that is invalid."""
    for name, value in (("batch_size", batch_size), ("beam_width", beam_width),
                        ("max_len", max_len)):
        if not (_is_integer(value) and value >= 1):
            raise ValueError(f"{name}={value!r} must be an integer >= 1.")
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
        if not (_is_integer(value) and value >= 0):
            raise ValueError(f"{name}={value!r} must be a token id (an integer >= 0).")
    if length_penalty not in LENGTH_PENALTIES:
        raise ValueError(f"length_penalty={length_penalty!r} must be one of "
                         f"{LENGTH_PENALTIES}: None (raw log P), 'average' (log P / |y|) or "
                         "'gnmt' (log P / ((5 + |y|) / 6) ** alpha).")
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha={alpha!r} must be a finite number >= 0 (GNMT's exponent; "
                         "0 turns the penalty off, Wu et al. use 0.6 to 1).")


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
