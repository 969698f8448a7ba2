"""Embedding lookup: out[n] = W[ids[n]].

Shapes: ids [...] int, W [V, D] -> out [..., D].

Backward: dW[v] = sum_{n : ids[n] = v} dout[n]  -- a scatter-add. A token id that appears
k times contributes k rows; a plain ``dW[ids] += dout`` would keep only one of them, which
is the classic embedding-gradient bug. ``add.at`` sums them all.

The reference runs on NumPy and CuPy; on NumPy arrays the numba kernel of
tinylm/kernels/embedding.py does the scatter-add. Chapter 03, section "Embeddings".
"""

from __future__ import annotations

from tinylm.backend import get_array_module, use_numba
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


def _table(dout, num_embeddings: int, out):
    """The [num_embeddings, D] array to add into: ``out`` itself, or fresh zeros."""
    xp = get_array_module(dout)
    if out is None:
        return xp.zeros((num_embeddings, dout.shape[1]), dtype=dout.dtype)
    if out.shape != (num_embeddings, dout.shape[1]) or out.dtype != dout.dtype:
        raise ValueError(f"embedding backward: out has shape {out.shape} ({out.dtype}); it must "
                         f"be [{num_embeddings}, {dout.shape[1]}] of dtype {dout.dtype}.")
    return out


def embedding_backward_reference(ids, dout, num_embeddings: int, out=None):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (added into ``out`` if given)."""
    xp = get_array_module(dout)
    dW = _table(dout, num_embeddings, out)
    xp.add.at(dW, ids, dout)
    return dW


def scatter_add_rows(ids, dout, num_embeddings: int, out=None):
    """ids [N] int, dout [N, D] -> dW [num_embeddings, D] (numba on NumPy arrays).

    With ``out`` (a [num_embeddings, D] gradient accumulator) the rows are added into it and
    it is returned: a 10,000-word table is then neither allocated nor summed per step.
    """
    if use_numba(ids, dout) and (out is None or out.flags.c_contiguous):
        return embedding_kernel.embedding_backward(ids, dout, _table(dout, num_embeddings, out))
    return embedding_backward_reference(ids, dout, num_embeddings, out)


def embedding_backward(dout, cache, dW=None):
    """dout [..., D] -> dW [V, D]. Given ``dW`` (a gradient accumulator [V, D]), the rows are
    added into it in place and it is returned."""
    ids, V = cache
    D = dout.shape[-1]
    return scatter_add_rows(ids.reshape(-1), dout.reshape(-1, D), V, out=dW)


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py): 10 ids
    drawn from 3 values, so ids repeat and the scatter-add must sum their rows."""
    return [
        GradcheckCase("embedding[repeated ids]", embedding_forward, embedding_backward,
                      lambda rng: {"ids": rng.integers(0, 3, size=(2, 5)),
                                   "W": rng.standard_normal((4, 3))}),
    ]
