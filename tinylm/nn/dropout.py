"""``Dropout``: inverted dropout, active only in training mode (chapter 04); ``DropoutRng``:
the seeded generator alone, for modules that apply dropout's mask themselves;
``RowShardGenerator``: a rank's rows of the masks one process would draw for the whole
batch (data parallelism, tinylm/distributed, chapter 11)."""

from __future__ import annotations

from tinylm.backend import default_rng, device_of, get_array_module, rng_from_state, substream
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.nn.module import Module


class DropoutRng(Module):
    """The seeded generator of one dropout site, for a module that applies the mask itself
    (``MultiHeadAttention`` on its attention weights). It is a module so that a checkpoint
    finds its state by name (``get_rng_state``; tinylm/train/loop.py).

    On the host it is one NumPy generator that goes on from mask to mask; its state is
    NumPy's plain dict. A CuPy generator's state lives in device memory, with no public way
    to read or write it (``bit_generator.state()`` returns a pointer), so on a GPU every
    mask has a fresh generator seeded by (seed, number of masks drawn so far) -- PyTorch's
    CUDA generator is likewise a seed and an offset -- and the state is that count:
    ``{"device": "gpu", "seed": s, "draws": k}``, JSON as it stands, and a resumed run
    draws the masks the uninterrupted one would (whatever seed the module it is restored
    into was built with, as a restored host state carries its stream too). The stream
    starts again from the module's seed when the arrays change device.

    ``batch_axis`` is the axis of the masks that runs over the batch's rows (1 for the
    time-major [T, B, H] activations of the recurrent models); after ``shard_rows`` every
    mask is a data-parallel rank's rows of the whole batch's (``RowShardGenerator``).
    """

    def __init__(self, seed: int = 0, batch_axis: int = 0):
        super().__init__()
        self.seed, self.batch_axis = seed, batch_axis
        self._device = self._rng = None   # device of the stream; its host generator
        self._stream_seed, self._draws = seed, 0    # the GPU stream: seed, masks drawn
        self.row_shard = None             # (this rank's rows, the whole batch's row count)

    def shard_rows(self, rows: slice, total_rows: int) -> None:
        """Draw each mask for the whole batch of ``total_rows`` rows and keep ``rows`` (a
        data-parallel rank's share), so that the rank drops what one process would drop."""
        self.row_shard = (rows, total_rows)

    def rng_for(self, x):
        """The generator for the next mask, on the array's device (a rank's rows of the
        whole batch's after ``shard_rows``)."""
        rng = self._generator_for(x)
        if self.row_shard is None:
            return rng
        return RowShardGenerator(rng, *self.row_shard, self.batch_axis)

    def _generator_for(self, x):
        device = device_of(x)
        if device != self._device:
            self._device, self._rng = device, None
            self._stream_seed, self._draws = self.seed, 0
        if device == "cpu":
            if self._rng is None:
                self._rng = default_rng(self.seed)
            return self._rng
        self._draws += 1
        return default_rng(substream(self._stream_seed, self._draws - 1), device)

    def get_rng_state(self):
        """The generator's state as plain JSON-able data (None before first use)."""
        if self._device == "gpu":
            return {"device": "gpu", "seed": self._stream_seed, "draws": self._draws}
        return None if self._rng is None else self._rng.bit_generator.state

    def set_rng_state(self, state) -> None:
        """Restore a state from ``get_rng_state`` (exact resume of a training run); a
        malformed state raises ValueError and leaves the generator as it was."""
        owner = f"{type(self).__name__}(seed={self.seed}).set_rng_state"
        if state is None:
            self._device = self._rng = None
        elif isinstance(state, dict) and state.get("device") == "gpu":
            self._stream_seed, self._draws = _device_stream(state, owner)
            self._device, self._rng = "gpu", None
        else:
            self._rng, self._device = rng_from_state(state, owner), "cpu"

    def __repr__(self):
        return f"DropoutRng(seed={self.seed})"


def _device_stream(state: dict, owner: str) -> tuple[int, int]:
    """(seed, masks drawn) of a saved GPU state, both integers >= 0."""
    seed, draws = state.get("seed"), state.get("draws")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (seed, draws)):
        raise ValueError(f"{owner}: the saved GPU generator state {state} needs a 'seed' and "
                         "a count of 'draws', integers >= 0; restore a state that the same "
                         "tinylm saved.")
    return seed, draws


class RowShardGenerator:
    """A generator that draws as for the whole batch and returns one rank's rows.

    One process with batch B draws u [.., B, ..] for a mask; rank r of a data-parallel run
    holds rows ``rows`` of that batch. It draws the same u [.., B, ..] from the same
    generator state and keeps u[.., rows, ..], so its mask equals the one-process mask on
    its rows, and its generator moves on exactly as the one-process generator does (every
    rank draws B rows: the masks cost N times the draws of a shard).
    """

    def __init__(self, rng, rows: slice, total_rows: int, batch_axis: int = 0):
        self.rng, self.rows, self.total_rows, self.batch_axis = rng, rows, total_rows, batch_axis

    def random(self, shape, dtype=None):
        """u [shape] uniform in [0, 1): the rank's rows of the draws for the whole batch, as a
        C-contiguous array (the dropout kernel writes the mask over it)."""
        shape, axis = tuple(shape), self.batch_axis
        held = self.rows.stop - self.rows.start
        if shape[axis] != held:
            raise ValueError(f"RowShardGenerator: a mask of shape {shape} has {shape[axis]} rows "
                             f"on axis {axis}, but this rank holds {held} of the batch's "
                             f"{self.total_rows}; the dropout site's batch_axis is wrong.")
        whole = shape[:axis] + (self.total_rows,) + shape[axis + 1:]
        u = self.rng.random(whole) if dtype is None else self.rng.random(whole, dtype=dtype)
        return get_array_module(u).ascontiguousarray(u[(slice(None),) * axis + (self.rows,)])


class Dropout(DropoutRng):
    """Drops units with probability p; its generator is seeded, so runs are reproducible."""

    def __init__(self, p: float = 0.0, seed: int = 0, batch_axis: int = 0):
        super().__init__(seed, batch_axis)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p={p} must lie in [0, 1).")
        self.p = p

    def forward(self, x):
        active = self.training and self.p > 0.0
        y, self._cache = dropout_forward(x, self.p, self.rng_for(x) if active else None, active)
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._cache)

    def __repr__(self):
        return f"Dropout(p={self.p})"


class TokenDropout(Dropout):
    """Replaces each input token id by ``fill`` with probability p, in training mode only
    ("word dropout", Gal & Ghahramani 2016; Bowman et al. 2016).

    For a window model this is dropout on whole context positions: the network must predict
    from a context with holes, much as a smoothed n-gram model backs off to shorter
    contexts. Ids are discrete, so there is no backward pass and no rescaling; the caller
    caches the ids it actually used.
    """

    def forward(self, ids, fill: int):
        """ids [...] int -> ids with dropped entries set to ``fill`` (a copy when any drop)."""
        if not (self.training and self.p > 0.0):
            return ids
        xp = get_array_module(ids)
        drop = self.rng_for(ids).random(ids.shape) < self.p                  # [...] bool
        return xp.where(drop, ids.dtype.type(fill), ids)

    def backward(self, dy):
        raise TypeError("TokenDropout acts on integer ids and has no gradient; back-propagate "
                        "into the embedding with the ids it returned instead.")

    def __repr__(self):
        return f"TokenDropout(p={self.p})"
