"""``Embedding``: a table of vectors looked up by token id (chapter 03)."""

from __future__ import annotations

from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.nn import init
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


class Embedding(Module):
    """weight [num_embeddings, dim] ~ N(0, std^2) (std=1 as PyTorch, 0.02 for GPT-2)."""

    def __init__(self, num_embeddings: int, dim: int, std: float = 1.0, rng=None):
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = Parameter(init.normal((num_embeddings, dim), std, rng))

    def forward(self, ids):
        out, self._cache = embedding_forward(ids, self.weight.data)
        return out

    def backward(self, dout):
        """Adds dW into weight.grad (in place: no [V, D] temporary); returns None (token ids
        have no gradient); nothing for a frozen table."""
        if self.weight.requires_grad:
            embedding_backward(dout, self._cache, dW=self.weight.grad)

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.dim})"
