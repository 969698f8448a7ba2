"""Validation sharded across the ranks and reduced: the one-process number, computed by N
(chapter 11).

``tinylm.evaluate.evaluate_lm`` scores every target of a stream once, in windows [B, t] that
continue each other row by row, then in single-row windows for the R < B targets left over.
Here every rank scores its rows [r B / N, (r + 1) B / N) of each window (a recurrent model
carries each row's state, as in one process), rank 0 alone scores the leftover windows,
and one Allreduce sums the (loss x targets, targets) pairs:

    loss = sum_r sum_windows mean_loss_r(w) * targets_r(w) / sum_r sum_windows targets_r(w)

which is evaluate_lm's mean, summed in another order (equal within float rounding).
"""

from __future__ import annotations

import numpy

from tinylm.backend import to_numpy
from tinylm.data.batching import iterate_eval_windows
from tinylm.distributed.buckets import rank_slices
from tinylm.distributed.world import sum_over_ranks
from tinylm.evaluate import perplexity


def evaluate_lm_sharded(world, model, ids, batch_size: int = 32, block_size: int = 64,
                        xp=numpy, max_batches: int = 0) -> dict:
    """evaluate_lm's {"loss", "perplexity", "tokens"}, each rank scoring its share."""
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
        own = _own_rows(world, x.shape[0]) if x.shape[0] == first else _root_only(world)
        if own.stop > own.start:
            _, loss = model.forward(xp.asarray(x[own]), xp.asarray(y[own]))
            total += float(to_numpy(loss)) * y[own].size
            count += y[own].size
    model.reset_state()
    model.train(was_training)
    total, count = sum_over_ranks(world, [total, count])
    mean = float(total / count)
    return {"loss": mean, "perplexity": perplexity(mean), "tokens": int(count)}


def _own_rows(world, rows: int) -> slice:
    """This rank's rows of a window of ``rows`` rows (some ranks hold none when rows < N)."""
    counts, offsets = rank_slices(rows, world.size)
    return slice(offsets[world.rank], offsets[world.rank] + counts[world.rank])


def _root_only(world) -> slice:
    """The single row of a leftover window: rank 0 scores them all, in order."""
    return slice(0, 1 if world.is_root else 0)
