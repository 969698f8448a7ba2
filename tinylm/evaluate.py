"""Evaluating language models: mean cross-entropy and perplexity over a token stream.

For a held-out stream x_1..x_N the model's average negative log-likelihood is

    L = -(1/N) sum_t log p(x_t | x_<t)          (nats per token)

and its perplexity（困惑度） is PPL = exp(L): the size of a uniform vocabulary that would be
exactly as surprised. Bits per character, for char-level models, is L / ln 2.

``evaluate_lm`` walks the stream in consecutive windows (every target scored exactly once,
see ``tinylm.data.iterate_eval_windows``),
calls ``model.forward(x, y)`` on each and weights each window's mean loss by its number of
tokens, so every model -- n-gram, MLP, RNN, GPT -- is scored by the same code. Chapter 01.

For translation output, ``corpus_bleu`` (from ``tinylm.bleu``) scores hypotheses against
reference translations with corpus BLEU, equal to sacreBLEU's default (13a tokenisation,
exp smoothing).
"""

from __future__ import annotations

import math
import sys

import numpy

from tinylm.backend import to_numpy
from tinylm.bleu import corpus_bleu  # noqa: F401  (re-exported)
from tinylm.data.batching import iterate_eval_windows

_LOG_FLOAT_MAX = math.log(sys.float_info.max)


def evaluate_lm(model, ids, batch_size: int = 32, block_size: int = 64, xp=numpy,
                max_batches: int = 0) -> dict:
    """Mean loss (nats/token), perplexity and token count of ``model`` on the stream ``ids``.

    ``xp`` is the array module the model lives on (numpy or cupy). ``max_batches`` > 0 stops
    early (an estimate, as nanoGPT's estimate_loss); 0 reads the whole stream.
    """
    total, count = summed_loss(model, ids, batch_size, block_size, xp, max_batches)
    return loss_summary(total, count)


def summed_loss(model, ids, batch_size: int, block_size: int, xp=numpy, max_batches: int = 0,
                own_rows=None) -> tuple[float, int]:
    """(sum of the scored targets' losses, their number) over the windows of ``ids``.

    ``own_rows(rows, leftover) -> slice`` picks the rows of each window this process scores
    (a data-parallel rank's share, tinylm/distributed/evaluation.py; ``leftover`` marks the
    single-row windows of the tokens left over); None scores every row."""
    was_training = model.training
    model.eval()
    model.reset_state()
    total, count, first, previous = 0.0, 0, None, None
    for i, (x, y) in enumerate(iterate_eval_windows(ids, batch_size, block_size)):
        if max_batches and i >= max_batches:
            break
        if previous is not None and x.shape[0] != previous:   # the leftover tokens: a new stream
            model.reset_state()
        previous = x.shape[0]
        first = first or x.shape[0]
        if own_rows is not None:
            own = own_rows(x.shape[0], x.shape[0] != first)
            if own.stop <= own.start:
                continue
            x, y = x[own], y[own]
        _, loss = model.forward(xp.asarray(x), xp.asarray(y))
        total += float(to_numpy(loss)) * y.size
        count += y.size
    model.reset_state()
    model.train(was_training)
    return total, count


def loss_summary(total: float, count: int) -> dict:
    """{"loss": mean nats/token, "perplexity", "tokens"} of summed losses."""
    mean = float(total / count)
    return {"loss": mean, "perplexity": perplexity(mean), "tokens": int(count)}


def perplexity(loss: float) -> float:
    """exp(loss); infinite (rather than an OverflowError) for a diverged model's loss above
    log(largest float) ~ 709.8 nats, NaN for a NaN loss."""
    return math.exp(loss) if not loss > _LOG_FLOAT_MAX else math.inf
