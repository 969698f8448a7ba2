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

from tinylm.distributed.buckets import rank_slices
from tinylm.distributed.world import sum_over_ranks
from tinylm.evaluate import loss_summary, summed_loss


def evaluate_lm_sharded(world, model, ids, batch_size: int = 32, block_size: int = 64,
                        xp=numpy, max_batches: int = 0) -> dict:
    """evaluate_lm's {"loss", "perplexity", "tokens"}, each rank scoring its share."""
    def own_rows(rows: int, leftover: bool) -> slice:
        return _root_only(world) if leftover else _own_rows(world, rows)

    total, count = summed_loss(model, ids, batch_size, block_size, xp, max_batches, own_rows)
    return loss_summary(*sum_over_ranks(world, [total, count]))


def _own_rows(world, rows: int) -> slice:
    """This rank's rows of a window of ``rows`` rows (some ranks hold none when rows < N)."""
    counts, offsets = rank_slices(rows, world.size)
    return slice(offsets[world.rank], offsets[world.rank] + counts[world.rank])


def _root_only(world) -> slice:
    """The single row of a leftover window: rank 0 scores them all, in order."""
    return slice(0, 1 if world.is_root else 0)
