"""Positional encodings（位置编码）: telling a permutation-blind attention layer where each
token sits (chapter 07).

Attention treats its input as a set: permuting the tokens permutes the outputs the same
way. Position enters by adding a vector p_t to the embedding of the token at position t.

Sinusoidal (Vaswani et al. 2017), fixed, for position t and channel pair i = 0 .. D/2 - 1:

    PE[t, 2i]   = sin(t / base^(2i / D))
    PE[t, 2i+1] = cos(t / base^(2i / D))          (base = 10000)

Each pair is a rotation at its own frequency, so PE[t + k] is a fixed linear function of
PE[t]: relative offsets are easy to read off. No parameters: the backward is dx = dy.

Learned (GPT-2): a table wpe [block_size, D] trained like any weight,

    y[b, t] = x[b, t] + wpe[start + t]
    dx = dy,    dwpe[start + t] = sum_b dy[b, t]   (other rows get 0)

``start`` is the position of the first token: 0 in training, the number of tokens
already cached when decoding incrementally (chapter 10).
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase


def sinusoidal_encoding(T: int, D: int, xp, dtype, start: int = 0, base: float = 10000.0):
    """PE [T, D] for positions start .. start+T-1 (odd D: the last cosine column is dropped)."""
    pos = xp.arange(start, start + T, dtype=xp.float64)[:, None]               # [T, 1]
    freq = base ** (-xp.arange(0, D, 2, dtype=xp.float64) / D)                 # [ceil(D/2)]
    angle = pos * freq[None, :]                                                # [T, ceil(D/2)]
    pe = xp.empty((T, D), dtype=xp.float64)
    pe[:, 0::2] = xp.sin(angle)
    pe[:, 1::2] = xp.cos(angle[:, :D // 2])
    return pe.astype(dtype)


def sinusoidal_positional_forward(x, start: int = 0, base: float = 10000.0):
    """x [B, T, D] -> (x + PE[start:start+T] [B, T, D], cache)."""
    xp = get_array_module(x)
    _, T, D = x.shape
    return x + sinusoidal_encoding(T, D, xp, x.dtype, start, base), None


def sinusoidal_positional_backward(dy, cache):
    """dy [B, T, D] -> dx [B, T, D] (the encoding is a constant)."""
    return dy


def learned_positional_forward(x, wpe, start: int = 0):
    """x [B, T, D], wpe [block_size, D] -> (x + wpe[start:start+T] [B, T, D], cache)."""
    _, T, D = x.shape
    if wpe.shape[1] != D:
        raise ValueError(f"positional: x has width {D} but wpe is {wpe.shape}.")
    if start + T > wpe.shape[0]:
        raise ValueError(f"positional: positions {start}..{start + T - 1} exceed the "
                         f"{wpe.shape[0]} learned positions (block_size); crop the context "
                         f"to the last {wpe.shape[0]} tokens.")
    return x + wpe[start:start + T], (wpe.shape, start, T)


def learned_positional_backward(dy, cache):
    """dy [B, T, D] -> (dx [B, T, D], dwpe [block_size, D])."""
    xp = get_array_module(dy)
    shape, start, T = cache
    dwpe = xp.zeros(shape, dtype=dy.dtype)                                     # [block, D]
    dwpe[start:start + T] = dy.sum(axis=0)                                     # [T, D]
    return dy, dwpe


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("sinusoidal_positional", sinusoidal_positional_forward,
                      sinusoidal_positional_backward,
                      lambda rng: {"x": rng.standard_normal((2, 4, 6)), "start": 3}),
        GradcheckCase("learned_positional", learned_positional_forward,
                      learned_positional_backward,
                      lambda rng: {"x": rng.standard_normal((2, 4, 6)),
                                   "wpe": rng.standard_normal((7, 6)), "start": 2}),
    ]
