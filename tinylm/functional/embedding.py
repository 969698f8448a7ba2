"""Embedding lookup: out[n] = W[ids[n]].

Shapes: ids [...] int, W [V, D] -> out [..., D].

Backward: dW[v] = sum_{n : ids[n] = v} dout[n]  -- a scatter-add. A token id that appears
k times contributes k rows; a plain ``dW[ids] += dout`` would keep only one of them, which
is the classic embedding-gradient bug. ``add.at`` sums them all.

The reference runs on NumPy and CuPy; on NumPy arrays the numba kernel of
tinylm/kernels/embedding.py does the scatter-add. Chapter 03, section "Embeddings".
"""

from __future__ import annotations

import contextlib
import contextvars

from tinylm.backend import device_of, get_array_module, use_numba
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import embedding as embedding_kernel


_CHECKED_ON_HOST = contextvars.ContextVar("tinylm_ids_checked_on_host", default=False)


@contextlib.contextmanager
def ids_checked_on_host():
    """Within this block ``check_ids`` takes device (CuPy) arrays as checked: the caller
    has checked the host arrays they were made from (the training loop checks each batch
    before moving it). On a GPU every check waits for the device to finish the work queued
    so far and copies its answer back; host arrays are still checked, at no such cost."""
    token = _CHECKED_ON_HOST.set(True)
    try:
        yield
    finally:
        _CHECKED_ON_HOST.reset(token)


def checked_on_host(ids) -> bool:
    """Whether a range check of ``ids`` may be skipped: a device array inside
    ``ids_checked_on_host``."""
    return _CHECKED_ON_HOST.get() and device_of(ids) == "gpu"


def check_ids(ids, limit: int, owner: str, name: str, kind: str = "id", fix: str = "",
              ignore_index: int | None = None) -> None:
    """Raise unless ``ids`` is an integer array with every entry in [0, limit) (or equal to
    ``ignore_index``), naming ``owner``, the argument ``name``, the first bad value and its
    position: xp.take and the numba kernels would wrap a negative id round or read past the
    table (CuPy's take wraps too). Costs one min and one max, read together (on a GPU, one
    synchronisation; none inside ``ids_checked_on_host``); the position is searched for only
    when one is bad."""
    if not hasattr(ids, "dtype") or ids.dtype.kind not in "iu":
        got = f"dtype {ids.dtype}" if hasattr(ids, "dtype") else f"a {type(ids).__name__}"
        raise TypeError(f"{owner}: {name} must be an integer array of {kind}s, got {got}; "
                        "pass the ids as the tokenizer returns them (an int64 array).")
    if ids.size == 0 or checked_on_host(ids):
        return
    if bool((ids.min() >= 0) & (ids.max() < limit)):
        return
    xp = get_array_module(ids)
    flat = ids.reshape(-1)                                               # [N]
    bad = (flat < 0) | (flat >= limit)
    if ignore_index is not None:
        bad &= flat != ignore_index
    if not bool(bad.any()):
        return
    first = int(xp.argmax(bad))                                          # a flat index
    position = tuple(int(i) for i in xp.unravel_index(first, ids.shape))
    allowed = "" if ignore_index is None else f" (or {ignore_index}, ignored)"
    raise ValueError(f"{owner}: {name} holds {kind} {int(flat[first])} at position {position}; "
                     f"{kind}s must lie in [0, {limit}){allowed}." + (f" {fix}" if fix else ""))


def embedding_forward(ids, W):
    """ids [...] int, W [V, D] -> (out [..., D], cache)."""
    xp = get_array_module(W)
    V = W.shape[0]
    check_ids(ids, V, "embedding", "ids", "token id",
              f"The table W has {V} rows; encode with the model's own tokenizer.")
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
