"""Embedding lookup: out[n] = W[ids[n]].

Shapes: ids [...] int, W [V, D] -> out [..., D].

Backward: dW[v] = sum_{n : ids[n] = v} dout[n]  -- a scatter-add, because a token that
occurs twice receives two gradient rows (see tinylm/kernels/embedding.py).
Chapter 03, section "Embeddings".
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import embedding as embedding_kernel


def embedding_forward(ids, W):
    """ids [...] int, W [V, D] -> (out [..., D], cache)."""
    xp = get_array_module(W)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got {ids.dtype}.")
    V = W.shape[0]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= V):
        raise ValueError(f"embedding: token ids must lie in [0, {V}); got min {int(ids.min())}, "
                         f"max {int(ids.max())}. Encode with the model's own tokenizer.")
    return xp.take(W, ids, axis=0), (ids, V)


def embedding_backward(dout, cache, dW=None):
    """dout [..., D] -> dW [V, D]. Given ``dW`` (a gradient accumulator [V, D]), the rows are
    added into it in place and it is returned."""
    ids, V = cache
    D = dout.shape[-1]
    return embedding_kernel.embedding_backward(ids.reshape(-1), dout.reshape(-1, D), V, out=dW)


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/checks.py): 10 ids drawn from 3
    values, so ids repeat and the scatter-add must sum their rows."""
    return [
        GradcheckCase("embedding[repeated ids]", embedding_forward, embedding_backward,
                      lambda rng: {"ids": rng.integers(0, 3, size=(2, 5)),
                                   "W": rng.standard_normal((4, 3))}),
    ]
