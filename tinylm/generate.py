"""Decoding: turn a language model's next-token distribution into text (chapter 10).

At each step the model gives logits z [B, V] for the next token. The strategies:

* greedy:        y = argmax_v z_v
* temperature:   p = softmax(z / tau); tau < 1 sharpens, tau > 1 flattens, tau -> 0 is greedy
* top-k:         keep the k largest logits, renormalise, sample
* top-p (nucleus): keep the smallest set of tokens whose probability mass reaches p, sample

Decoding goes through the model's incremental interface (``start_decoding`` /
``decode_step``, see tinylm/models/base.py), so a model with a KV cache (GPT) or a
recurrent state decodes each new token with one position of work instead of recomputing
the whole context. ``use_cache=False`` forces the recomputing default of
``LanguageModel`` -- the specification the cache is tested against, and the baseline of
``tinylm bench gpt --generate``.

Nothing is sampled from garbage: the settings are checked before the first step (each
error names the argument, the value and the fix), and logits holding NaN or +inf (a model
whose weights are not finite) raise instead of being turned into tokens.
"""

from __future__ import annotations

import math
import numbers

import numpy

from tinylm.backend import get_array_module, to_numpy
from tinylm.functional.embedding import check_ids
from tinylm.functional.softmax import softmax_forward
from tinylm.models.base import OUTSIDE_VOCABULARY, LanguageModel


def filter_logits(logits, top_k: int | None = None, top_p: float | None = None):
    """Set the logits outside the top-k / nucleus to -inf. logits [B, V] -> [B, V]."""
    xp = get_array_module(logits)
    V = logits.shape[-1]
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be at least 1.")
        if top_k < V:
            kth = xp.partition(logits, V - top_k, axis=-1)[:, V - top_k][:, None]   # [B, 1]
            logits = xp.where(logits < kth, -xp.inf, logits)
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p={top_p} must lie in (0, 1].")
        order = xp.argsort(-logits, axis=-1)                                   # [B, V]
        sorted_logits = xp.take_along_axis(logits, order, axis=-1)
        probs, _ = softmax_forward(sorted_logits)
        mass_before = xp.cumsum(probs, axis=-1) - probs    # probability of strictly better tokens
        drop_sorted = mass_before >= top_p                 # the best token is never dropped
        drop = xp.zeros_like(drop_sorted)                  # back to vocabulary order (CuPy
        drop[xp.arange(drop.shape[0])[:, None], order] = drop_sorted   # < 14 lacks put_along_axis)
        logits = xp.where(drop, -xp.inf, logits)
    return logits


def check_sampling(temperature=1.0, top_k=None, top_p=None, greedy=False) -> None:
    """Raise ValueError naming the first setting that is invalid or that does not apply."""
    if not _is_real(temperature) or not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature={temperature!r} must be a finite number >= 0 (1 samples "
                         "the model's distribution, 0 is greedy).")
    if top_k is not None and not (_is_integer(top_k) and top_k >= 1):
        raise ValueError(f"top_k={top_k!r} must be an integer >= 1 (or None: keep every "
                         "token).")
    if top_p is not None and not (_is_real(top_p) and 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p={top_p!r} must lie in (0, 1] (or None: keep every token).")
    if greedy and (top_k is not None or top_p is not None or temperature != 1.0):
        raise ValueError(f"greedy=True with top_k={top_k!r}, top_p={top_p!r}, "
                         f"temperature={temperature!r}: greedy decoding takes the most likely "
                         "token; top_k/top_p/temperature do not apply. Leave them at their "
                         "defaults, or sample without greedy.")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_finite_logits(logits) -> None:
    """logits [B, V] float64 on the host: no NaN, no +inf, and a finite best token per row
    (-inf alone is an impossible token, as an n-gram model gives)."""
    bad = numpy.isnan(logits).any(axis=-1) | (logits == numpy.inf).any(axis=-1)
    bad |= ~(logits.max(axis=-1) > -numpy.inf)
    if bad.any():
        row = int(numpy.argmax(bad))
        raise ValueError(f"sample_next: the logits of row {row} are not finite (NaN, +inf, or "
                         "every token -inf), so there is no distribution to sample from; the "
                         "model's weights are not finite (a diverged run or a damaged "
                         "checkpoint). Check the run's training loss, or retrain with a lower "
                         "learning rate.")


def sample_next(logits, rng, temperature: float = 1.0, top_k=None, top_p=None, greedy=False):
    """Choose one token per row. logits [B, V] -> ids [B] (host NumPy int64)."""
    check_sampling(temperature, top_k, top_p, greedy)
    logits = to_numpy(logits).astype("float64")
    _check_finite_logits(logits)
    if greedy or temperature == 0.0:
        return logits.argmax(axis=-1)
    scaled = logits / temperature
    if numpy.isposinf(scaled).any():
        raise ValueError(f"temperature={temperature!r} is so small that logits / temperature "
                         "overflow; use temperature=0 (greedy) instead.")
    probs, _ = softmax_forward(filter_logits(scaled, top_k, top_p))
    cumulative = probs.cumsum(axis=-1)
    u = rng.random((probs.shape[0], 1)) * cumulative[:, -1:]
    return (cumulative < u).sum(axis=-1).clip(max=probs.shape[-1] - 1)


def generate(model, prompt, max_new_tokens: int, rng, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
             stop_ids=(), use_cache: bool = True):
    """Extend ``prompt`` [B, T] (int ids on the model's device) by up to ``max_new_tokens``.

    Returns the new ids only, as a host array [B, n]; generation stops early once every
    row has produced a token from ``stop_ids`` (the stop token is kept). ``use_cache=False``
    recomputes the whole (cropped) context at every step instead of using the model's
    incremental decoder; both give the same tokens.
    """
    check_sampling(temperature, top_k, top_p, greedy)
    if not (_is_integer(max_new_tokens) and max_new_tokens >= 0):
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an integer >= 0 (how many "
                         "tokens to add).")
    if prompt.ndim != 2 or prompt.shape[1] == 0:
        raise ValueError(f"prompt must be [batch, length>=1] token ids, got shape {prompt.shape}.")
    check_ids(prompt, model.vocab_size, "generate", "prompt", "token id", OUTSIDE_VOCABULARY)
    if not use_cache and model.stateful:
        raise ValueError(f"use_cache=False recomputes from the tokens alone, but "
                         f"{type(model).__name__} carries a recurrent state; use the default.")
    xp = get_array_module(prompt)
    was_training = model.training
    model.eval()
    stop = set(int(s) for s in stop_ids)
    done = [False] * prompt.shape[0]
    new_ids = []
    start, step = ((model.start_decoding, model.decode_step) if use_cache else
                   (lambda p: LanguageModel.start_decoding(model, p),
                    lambda ids, st: LanguageModel.decode_step(model, ids, st)))
    logits, state = start(prompt)
    for _ in range(max_new_tokens):
        ids = sample_next(logits, rng, temperature, top_k, top_p, greedy)      # [B]
        new_ids.append(ids)
        done = [d or int(i) in stop for d, i in zip(done, ids)]
        if all(done) or len(new_ids) == max_new_tokens:
            break
        logits, state = step(xp.asarray(ids, dtype=prompt.dtype), state)
    model.train(was_training)
    return numpy.stack(new_ids, axis=1) if new_ids else numpy.zeros((prompt.shape[0], 0), int)
