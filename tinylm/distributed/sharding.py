"""Which rows of the global batch a rank computes, so that N ranks see what one process sees
(chapter 11).

Every rank builds the same batcher from the same seed and draws the *whole* global batch
x, y [B, T] at every step, then keeps rows [r B / N, (r + 1) B / N): drawing B windows is a
few index operations, and it keeps the batcher's state (its position or its generator)
identical on every rank and to the one-process run's, so a checkpoint written by rank 0
resumes with any number of ranks. A recurrent model's carried state is per row, so a rank
that always holds the same rows carries exactly its rows of the one-process state.

Dropout draws its masks the same way (``RowShardGenerator``, tinylm/nn/dropout.py): the mask
of the whole batch from the one-process generator state, then the rank's rows.
"""

from __future__ import annotations

from tinylm.data.batching import Batch
from tinylm.nn.dropout import DropoutRng


def nearest_multiples(n: int, k: int) -> list:
    """The multiples of k nearest to n, below and above (those >= k)."""
    low = n // k * k
    return [m for m in (low, low + k) if m >= k and m != n]


def nearest_divisors(n: int, k: int) -> list:
    """The divisors of n nearest to k, below and above."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    below = [d for d in divisors if d < k]
    above = [d for d in divisors if d > k]
    return below[-1:] + above[:1]


def rows_of_rank(batch_size: int, world) -> slice:
    """Rows [r B / N, (r + 1) B / N) of the global batch for rank r of N ranks.

    B must be a multiple of N, so that every rank computes as many rows and its mean loss
    weighs as much; otherwise a ValueError names the batch sizes and rank counts that
    would work."""
    n = world.size
    if batch_size % n:
        sizes = " or ".join(map(str, nearest_multiples(batch_size, n)))
        ranks = " or ".join(map(str, nearest_divisors(batch_size, n)))
        raise ValueError(f"the global batch_size={batch_size} cannot be shared by {n} ranks: "
                         f"it must be a multiple of the number of ranks. Use --batch-size "
                         f"{sizes}, or run with {ranks} ranks.")
    share = batch_size // n
    return slice(world.rank * share, (world.rank + 1) * share)


class ShardedBatcher:
    """This rank's rows of the batches of ``batcher`` (which every rank draws whole)."""

    def __init__(self, batcher, rows: slice):
        self.batcher, self.rows = batcher, rows

    def next_batch(self) -> Batch:
        whole = self.batcher.next_batch()                                    # x, y [B, T]
        return Batch(whole.x[self.rows], whole.y[self.rows], whole.new_epoch)  # [B / N, T]

    def state_dict(self) -> dict:
        """The whole batcher's state: the same on every rank, and a one-process run's."""
        return self.batcher.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batcher.load_state_dict(state)


def shard_dropout(model, rows: slice, batch_size: int) -> None:
    """Every dropout generator of ``model`` draws for the global batch and keeps ``rows``."""
    for _, module in model.named_modules():
        if isinstance(module, DropoutRng):
            module.shard_rows(rows, batch_size)
