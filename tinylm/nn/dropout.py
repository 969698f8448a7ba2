"""``Dropout``: inverted dropout, active only in training mode (chapter 04); ``DropoutRng``:
the seeded generator alone, for modules that apply dropout's mask themselves."""

from __future__ import annotations

from tinylm.backend import array_module_for, get_array_module, rng_from_state
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.nn.module import Module


class DropoutRng(Module):
    """The seeded generator of one dropout site, for a module that applies the mask itself
    (``MultiHeadAttention`` on its attention weights). It is a module so that a checkpoint
    finds its state by name (``get_rng_state``; tinylm/train/loop.py)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self._rng = self._rng_module = None

    def rng_for(self, x):
        """The module's generator, created lazily (and re-created after a device move) on
        the array's device."""
        xp = get_array_module(x)
        if self._rng is None or self._rng_module is not xp:
            self._rng, self._rng_module = xp.random.default_rng(self.seed), xp
        return self._rng

    def get_rng_state(self):
        """The generator's state as plain JSON-able data (None before first use, or on GPU)."""
        if self._rng is None or not hasattr(self._rng, "bit_generator"):
            return None
        return self._rng.bit_generator.state

    def set_rng_state(self, state) -> None:
        """Restore a state from ``get_rng_state`` (exact resume of a training run); a
        malformed state raises ValueError and leaves the generator as it was."""
        if state is None:
            self._rng = None
            return
        rng = rng_from_state(state, f"{type(self).__name__}(seed={self.seed}).set_rng_state")
        self._rng, self._rng_module = rng, array_module_for("cpu")

    def __repr__(self):
        return f"DropoutRng(seed={self.seed})"


class Dropout(DropoutRng):
    """Drops units with probability p; its generator is seeded, so runs are reproducible."""

    def __init__(self, p: float = 0.0, seed: int = 0):
        super().__init__(seed)
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
