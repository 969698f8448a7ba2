"""Pooling: one vector per sequence from a model's per-token states (chapter 09).

A classifier needs a single feature vector per text, but an encoder gives one per token,
h [B, T, D]. With the padding mask m [B, T] (True = a real token; the texts of a batch are
right-padded to the longest) and n_b = sum_t m_{b,t} real tokens in row b:

    first  (BERT's [CLS])   p_b = h_{b,0}                      [B, D]
    last   (GPT)            p_b = h_{b, n_b - 1}               [B, D]
    mean                    p_b = (1 / n_b) sum_t m_{b,t} h_{b,t}

BERT is trained to gather the sentence into its first position ([CLS]) because
next-sentence prediction reads it there; a causal model (GPT) has only seen the whole text
at its last real token, since every earlier position attends to its past alone. Mean
pooling averages what every token holds and suits both.

Backward: each pooling is linear in h, so dh is dp placed back where it was read:

    first   dh_{b,0} = dp_b, 0 elsewhere
    last    dh_{b, n_b - 1} = dp_b, 0 elsewhere
    mean    dh_{b,t} = m_{b,t} dp_b / n_b
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase

POOLINGS = ("first", "last", "mean")


class PoolCache(NamedTuple):
    how: str
    shape: tuple         # h's shape (B, T, D)
    weights: object      # [B, T, 1]: the weight of each position in p (1 or 1/n_b, 0 = unread)


def _check(h, mask, how):
    if how not in POOLINGS:
        raise ValueError(f"pooling {how!r} is not one of {list(POOLINGS)}.")
    if h.ndim != 3:
        raise ValueError(f"pooling: h must be [B, T, D] states, got shape {tuple(h.shape)}.")
    if mask is None:
        return
    if tuple(mask.shape) != tuple(h.shape[:2]) or mask.dtype != bool:
        raise ValueError(f"pooling: mask must be a bool [B, T] = {tuple(h.shape[:2])} array "
                         f"(True = real token), got {mask.dtype} {tuple(mask.shape)}.")
    if not bool(mask.any(axis=1).all()):
        raise ValueError("pooling: a row of the mask has no real token; every text needs at "
                         "least one token.")


def pool_weights(h, mask, how: str):
    """The weight of each position in the pooled vector, [B, T, 1] (see the docstring)."""
    xp = get_array_module(h)
    B, T, _ = h.shape
    real = xp.ones((B, T), dtype=bool) if mask is None else mask
    if how == "mean":
        w = real / real.sum(axis=1, keepdims=True)                            # [B, T]
    else:
        n = real.sum(axis=1)                                                   # [B]
        read = xp.zeros(B, dtype=xp.int64) if how == "first" else n - 1        # [B]
        w = xp.arange(T)[None, :] == read[:, None]                             # [B, T]
    return w.astype(h.dtype)[:, :, None]


def pool_forward(h, mask=None, how: str = "mean"):
    """h [B, T, D], mask [B, T] bool or None (all real) -> (p [B, D], PoolCache).

    The padding is on the right: a row's real tokens are its first n_b positions."""
    _check(h, mask, how)
    weights = pool_weights(h, mask, how)                                       # [B, T, 1]
    return (weights * h).sum(axis=1), PoolCache(how, tuple(h.shape), weights)


def pool_backward(dp, cache: PoolCache):
    """dp [B, D] -> dh [B, T, D]."""
    return cache.weights * dp[:, None, :]


def _inputs(rng, how, padded=True):
    """h [3, 5, 4]; rows of 5, 2 and 4 real tokens (or no mask)."""
    h = rng.standard_normal((3, 5, 4))
    xp = get_array_module(h)
    mask = xp.arange(5)[None, :] < xp.asarray([5, 2, 4])[:, None] if padded else None
    return {"h": h, "mask": mask, "how": how}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [GradcheckCase(f"pool[{how}{', padding' if padded else ''}]", pool_forward,
                          pool_backward, lambda rng, how=how, padded=padded:
                          _inputs(rng, how, padded))
            for how in POOLINGS for padded in (True, False)]
