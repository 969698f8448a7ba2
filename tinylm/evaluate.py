"""Evaluating language models: mean cross-entropy and perplexity over a token stream.

For a held-out stream x_1..x_N the model's average negative log-likelihood is

    L = -(1/N) sum_t log p(x_t | x_<t)          (nats per token)

and its perplexity（困惑度） is PPL = exp(L): the size of a uniform vocabulary that would be
exactly as surprised. Bits per character, for char-level models, is L / ln 2.

``evaluate_lm`` walks the stream in consecutive windows (every target scored exactly once),
calls ``model.forward(x, y)`` on each and weights each window's mean loss by its number of
tokens, so every model -- n-gram, MLP, RNN, GPT -- is scored by the same code. Chapter 01.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import to_numpy


def sequential_windows(ids, batch_size: int, block_size: int):
    """Yield (x, y) [B, t] covering the stream ``ids`` once: the stream is cut into B equal
    rows (as PTB evaluation does) and read left to right, t = block_size except at the end."""
    ids = numpy.asarray(ids, dtype=numpy.int64)
    if ids.size < 2:
        raise ValueError(f"cannot evaluate on {ids.size} tokens; need at least 2.")
    batch_size = max(1, min(batch_size, (ids.size - 1) // max(1, block_size)))
    row_len = (ids.size - 1) // batch_size
    x_rows = ids[: batch_size * row_len].reshape(batch_size, row_len)             # [B, L]
    y_rows = ids[1: batch_size * row_len + 1].reshape(batch_size, row_len)        # [B, L]
    for start in range(0, row_len, block_size):
        yield x_rows[:, start:start + block_size], y_rows[:, start:start + block_size]


def evaluate_lm(model, ids, batch_size: int = 32, block_size: int = 64, xp=numpy,
                max_batches: int = 0) -> dict:
    """Mean loss (nats/token), perplexity and token count of ``model`` on the stream ``ids``.

    ``xp`` is the array module the model lives on (numpy or cupy). ``max_batches`` > 0 stops
    early (an estimate, as nanoGPT's estimate_loss); 0 reads the whole stream.
    """
    was_training = model.training
    model.eval()
    model.reset_state()
    total, count = 0.0, 0
    for i, (x, y) in enumerate(sequential_windows(ids, batch_size, block_size)):
        if max_batches and i >= max_batches:
            break
        _, loss = model.forward(xp.asarray(x), xp.asarray(y))
        total += float(to_numpy(loss)) * y.size
        count += y.size
    model.reset_state()
    model.train(was_training)
    mean = total / count
    return {"loss": mean, "perplexity": math.exp(mean), "tokens": count}
