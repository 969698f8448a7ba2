"""From one long stream of token ids to batches (x, y) for next-token prediction (chapter 02).

In every batch ``y`` is ``x`` shifted left by one position, so ``y[b, t]`` is the token that
follows ``x[b, t]``: one window of T+1 tokens gives T training examples at once.

* ``split_train_val``: the first (1 - f) of the stream trains, the last f validates
  (nanoGPT's 90/10 split of Tiny Shakespeare).
* ``RandomWindowBatcher``: B windows at uniformly random offsets (nanoGPT's ``get_batch``);
  for models that only see a fixed context (MLP, GPT).
* ``SequentialBatcher``: the stream cut into B long rows, read left to right T steps at a
  time, so batch k+1 continues batch k row by row; for recurrent models that carry their
  hidden state across batches (truncated BPTT, the Zaremba et al. PTB reader).
* ``iterate_eval_windows``: every (input, target) pair of a stream exactly once, for
  evaluation.

Both batchers return a ``Batch`` (x, y, new_epoch) of host NumPy int64 arrays; the training
loop moves them to the device. Both batchers save their position (``state_dict``,
JSON-serialisable) so a resumed run draws the very batches an uninterrupted run would have
drawn.
"""

from __future__ import annotations

import numpy

from typing import NamedTuple

from tinylm.backend import default_rng, rng_from_state, to_numpy


class Batch(NamedTuple):
    """x, y [B, T] token ids (y is x shifted left by one); ``new_epoch`` is True for the
    first batch of each epoch of sequential batching, when a recurrent model resets its
    state (always False for random windows)."""

    x: numpy.ndarray
    y: numpy.ndarray
    new_epoch: bool = False


def _as_ids(ids) -> numpy.ndarray:
    ids = to_numpy(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"expected a 1-D stream of integer token ids, got shape {ids.shape} "
                         f"and dtype {ids.dtype}.")
    return ids.astype(numpy.int64, copy=False)


def _positive(**values) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value} must be a positive integer.")


def split_train_val(ids, val_fraction: float = 0.1, min_length: int = 2):
    """ids [N] -> (train [n], val [N - n]) with n = int(N * (1 - val_fraction)).

    Each part must hold at least ``min_length`` tokens (2: one input and its target).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} must lie strictly between 0 and 1.")
    ids = _as_ids(ids)
    n = int(len(ids) * (1.0 - val_fraction))
    if min(n, len(ids) - n) < min_length:
        raise ValueError(f"splitting {len(ids)} tokens with val_fraction={val_fraction} gives "
                         f"{n} training and {len(ids) - n} validation tokens; each part needs at "
                         f"least {min_length}. Use more text or another val_fraction.")
    return ids[:n], ids[n:]


class RandomWindowBatcher:
    """x, y [B, T]: windows ids[s:s+T] and ids[s+1:s+T+1] at offsets s ~ U{0, ..., N-T-1}."""

    kind = "random"

    def __init__(self, ids, batch_size: int, block_size: int, seed: int = 0):
        _positive(batch_size=batch_size, block_size=block_size)
        self.ids = _as_ids(ids)
        if len(self.ids) < block_size + 1:
            raise ValueError(f"windows of block_size={block_size} need at least {block_size + 1} "
                             f"tokens (the inputs plus one shifted target); the data has "
                             f"{len(self.ids)}. Lower block_size or use more data.")
        self.batch_size, self.block_size = batch_size, block_size
        self.rng = default_rng(seed)

    def next_batch(self):
        starts = self.rng.integers(0, len(self.ids) - self.block_size, size=self.batch_size)
        index = starts[:, None] + numpy.arange(self.block_size)[None, :]      # [B, T]
        return Batch(self.ids[index], self.ids[index + 1])                   # x, y [B, T]

    def _shape(self) -> dict:
        return {"kind": self.kind, "tokens": len(self.ids), "batch_size": self.batch_size,
                "block_size": self.block_size}

    def state_dict(self) -> dict:
        return {**self._shape(), "bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``; a state for other data, or a malformed one, raises
        ValueError naming the entry and changes nothing."""
        _check_shape(self._shape(), state, "bit_generator")
        self.rng = rng_from_state(state["bit_generator"],
                                  "RandomWindowBatcher.load_state_dict: entry 'bit_generator'")


class SequentialBatcher:
    """The stream as B rows of L = N // B tokens (the tail N mod B is dropped), read in
    windows x = rows[:, i:i+T], y = rows[:, i+1:i+T+1], i = 0, T, 2T, ...

    ``next_batch()`` returns a ``Batch`` whose ``new_epoch`` is True for the first batch of
    every epoch (including the very first), when a recurrent model should reset its state.
    ``epoch`` is the epoch the last batch came from; ``steps_per_epoch = (L - 1) // T``.
    """

    kind = "sequential"

    def __init__(self, ids, batch_size: int, num_steps: int):
        _positive(batch_size=batch_size, num_steps=num_steps)
        ids = _as_ids(ids)
        row_length = len(ids) // batch_size
        self.steps_per_epoch = (row_length - 1) // num_steps
        if self.steps_per_epoch < 1:
            raise ValueError(f"{batch_size} rows of {num_steps} steps need at least "
                             f"{batch_size * (num_steps + 1)} tokens; the data has {len(ids)}. "
                             "Lower batch_size or num_steps, or use more data.")
        self.rows = ids[:batch_size * row_length].reshape(batch_size, row_length)   # [B, L]
        self.batch_size, self.num_steps = batch_size, num_steps
        self.epoch, self.step = 0, 0          # the next batch is window `step` of `epoch`

    def next_batch(self):
        if self.step == self.steps_per_epoch:
            self.epoch, self.step = self.epoch + 1, 0
        i = self.step * self.num_steps
        x = self.rows[:, i:i + self.num_steps].copy()                  # [B, T]
        y = self.rows[:, i + 1:i + self.num_steps + 1].copy()          # [B, T]
        new_epoch = self.step == 0
        self.step += 1
        return Batch(x, y, new_epoch)

    def _shape(self) -> dict:
        return {"kind": self.kind, "tokens": int(self.rows.size), "batch_size": self.batch_size,
                "num_steps": self.num_steps}

    def state_dict(self) -> dict:
        return {**self._shape(), "epoch": self.epoch, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()``: epoch >= 0 and 0 <= step <= steps_per_epoch (step ==
        steps_per_epoch: the epoch is over, the next batch starts the next one)."""
        _check_shape(self._shape(), state, "epoch", "step")
        epoch, step = state["epoch"], state["step"]
        for name, value, high in (("epoch", epoch, None), ("step", step, self.steps_per_epoch)):
            if not _is_integer(value) or value < 0 or (high is not None and value > high):
                bound = "an integer >= 0" if high is None else f"an integer in [0, {high}]"
                raise ValueError(f"SequentialBatcher.load_state_dict: entry {name!r} is "
                                 f"{value!r}; it must be {bound} for this data and batch shape.")
        self.epoch, self.step = int(epoch), int(step)


def _is_integer(value) -> bool:
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


def _check_shape(own: dict, state: dict, *fields: str) -> None:
    """The state is a dict with every entry of ``own`` and ``fields``, saved for the same data
    and settings as ``own`` describes."""
    if not isinstance(state, dict):
        raise ValueError(f"the batcher state must be the dict that state_dict() returned, got "
                         f"a {type(state).__name__}.")
    differing = [f"{k} saved {state[k]!r} vs now {v!r}" for k, v in own.items()
                 if k in state and state[k] != v]
    if differing:
        raise ValueError("the batcher state was saved for different data or settings: "
                         + ", ".join(differing)
                         + ". Resume with the same dataset, batch size and block size.")
    missing = [k for k in (*own, *fields) if k not in state]
    if missing:
        raise ValueError(f"the batcher state has no entries {missing}; it was not saved by a "
                         f"{own['kind']} batcher's state_dict().")


def iterate_eval_windows(ids, batch_size: int, block_size: int):
    """Yield (x, y) windows that score every target ids[1:] exactly once.

    The N - 1 (input, target) pairs are laid out as B rows of L = (N - 1) // B consecutive
    pairs (B = min(batch_size, N - 1)) and read T = block_size columns at a time, so each
    window [B, t] continues the previous one row by row (a recurrent model may carry its
    state); the last window of the rows may be shorter (t < T). The R = (N - 1) - B * L < B
    pairs left over follow as windows of a single row [1, t <= T]: a model carrying state
    must reset it when the batch size changes.
    """
    _positive(batch_size=batch_size, block_size=block_size)
    ids = _as_ids(ids)
    pairs = len(ids) - 1
    if pairs < 1:
        raise ValueError(f"evaluation needs at least 2 tokens (an input and its target); "
                         f"got {len(ids)}.")
    rows = min(batch_size, pairs)
    row_length = pairs // rows
    covered = rows * row_length
    x_rows = ids[:covered].reshape(rows, row_length)                      # [B, L]
    y_rows = ids[1:covered + 1].reshape(rows, row_length)                 # [B, L]
    for start in range(0, row_length, block_size):
        yield x_rows[:, start:start + block_size], y_rows[:, start:start + block_size]
    for start in range(covered, pairs, block_size):
        stop = min(start + block_size, pairs)
        yield ids[None, start:stop], ids[None, start + 1:stop + 1]          # [1, t]
