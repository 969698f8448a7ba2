"""``Dropout``: inverted dropout, active only in training mode (chapter 04)."""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.nn.module import Module


class Dropout(Module):
    """Drops units with probability p; its generator is seeded, so runs are reproducible."""

    def __init__(self, p: float = 0.0, seed: int = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p={p} must lie in [0, 1).")
        self.p, self.seed = p, seed
        self._rng = None

    def rng_for(self, x):
        """The module's generator, created lazily on the array's device."""
        xp = get_array_module(x)
        if self._rng is None or get_array_module(self._rng.random(1)) is not xp:
            self._rng = xp.random.default_rng(self.seed)
        return self._rng

    def forward(self, x):
        active = self.training and self.p > 0.0
        y, self._cache = dropout_forward(x, self.p, self.rng_for(x) if active else None, active)
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._cache)

    def __repr__(self):
        return f"Dropout(p={self.p})"
