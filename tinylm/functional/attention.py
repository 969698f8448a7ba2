"""Attention: scaled dot-product attention and multi-head self-attention (chapter 07).

Scaled dot-product attention（缩放点积注意力） of queries Q [Tq, d] over keys K [Tk, d] and
values V [Tk, dv] (any leading batch/head axes):

    S = Q K^T / sqrt(d)                       [Tq, Tk]   scores; note the transpose of K
    S_ij = -inf where the mask forbids j      (causal: j > i + Tk - Tq; padding: key j is pad)
    P = softmax(S) row by row                 [Tq, Tk]   each row sums to 1
    A = dropout(P)                            [Tq, Tk]   (training only)
    O = A V                                   [Tq, dv]

The 1/sqrt(d) keeps the scores' variance near 1 when q and k have unit-variance entries
(q.k is a sum of d products), so the softmax does not saturate as d grows.

Backward, given dO (chapter 07 derives it; each line is one matrix product or a row sum):

    dV = A^T dO                                       [Tk, dv]
    dA = dO V^T,   dP = dropout_backward(dA)          [Tq, Tk]
    dS = P o (dP - rowsum(P o dP))                    [Tq, Tk]   softmax Jacobian, row-wise
    dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d)

A row whose every key is masked has no distribution to normalise; here it gets P = 0 and
so O = 0 (and zero gradients), instead of the NaN that 0/0 would give.

Multi-head self-attention（多头注意力） with a fused QKV projection, x [B, T, D], H heads of
width hd = D / H:

    qkv = x W_qkv + b_qkv                     [B, T, 3D]   one matmul for Q, K and V
    q, k, v = split(qkv) -> [B, H, T, hd]     head h owns columns h*hd .. (h+1)*hd - 1
    y = attention(q, k, v) merged -> [B, T, D]
    out = y W_o + b_o                         [B, T, D]

``attention_heads_*`` is the middle step on the packed qkv; for causal self-attention
without other masks it runs the fused kernel of tinylm/kernels/attention.py (numba on CPU,
the array-module reference elsewhere), otherwise it goes through
``scaled_dot_product_attention_*`` head by head.
"""

from __future__ import annotations

import math

from tinylm.backend import get_array_module
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import attention as attention_kernel


# -- masks ----------------------------------------------------------------------------------

def causal_mask(Tq: int, Tk: int, xp):
    """[Tq, Tk] bool, True where query i may see key j: j <= i + (Tk - Tq).

    With Tq = Tk this is the lower triangle; with Tq < Tk the queries are the *last* Tq
    positions of the sequence (incremental decoding with cached keys)."""
    return xp.tril(xp.ones((Tq, Tk), dtype=bool), k=Tk - Tq)


def key_padding_mask(ids, pad_id: int):
    """ids [B, T] int -> [B, 1, 1, T] bool, True for real tokens (keys that may be attended)."""
    return (ids != pad_id)[:, None, None, :]


# -- scaled dot-product attention -----------------------------------------------------------

def scaled_dot_product_attention_forward(q, k, v, mask=None, causal: bool = False,
                                         dropout_p: float = 0.0, rng=None,
                                         training: bool = True):
    """q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] -> (out [..., Tq, dv], cache).

    ``mask``: bool, broadcastable to [..., Tq, Tk], True = may attend (as PyTorch's
    ``scaled_dot_product_attention``); ``causal`` adds the causal mask on top.
    """
    xp = get_array_module(q)
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit; need "
                         "q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv].")
    Tq, Tk = q.shape[-2], k.shape[-2]
    if causal and Tq > Tk:
        raise ValueError(f"attention: causal attention needs Tq <= Tk, got Tq={Tq}, Tk={Tk}.")
    scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
    scores = (q @ k.swapaxes(-1, -2)) * scale                          # [..., Tq, Tk]
    allowed = causal_mask(Tq, Tk, xp) if causal else None
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    if allowed is None:
        m = scores.max(axis=-1, keepdims=True)                         # [..., Tq, 1]
        e = xp.exp(scores - m)
    else:
        masked = xp.where(allowed, scores, -xp.inf)
        m = masked.max(axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)                             # fully masked rows
        e = xp.where(allowed, xp.exp(masked - m), 0)
    total = e.sum(axis=-1, keepdims=True)                              # [..., Tq, 1]
    p = e / xp.where(total > 0, total, 1)                              # [..., Tq, Tk]
    a, drop_cache = dropout_forward(p, dropout_p, rng, training)      # [..., Tq, Tk]
    out = a @ v                                                        # [..., Tq, dv]
    return out, (q, k, v, p, a, drop_cache, scale)


def scaled_dot_product_attention_backward(dout, cache):
    """dout [..., Tq, dv] -> (dq [..., Tq, d], dk [..., Tk, d], dv [..., Tk, dv])."""
    q, k, v, p, a, drop_cache, scale = cache
    dv = a.swapaxes(-1, -2) @ dout                                     # [..., Tk, dv]
    dp = dropout_backward(dout @ v.swapaxes(-1, -2), drop_cache)       # [..., Tq, Tk]
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True))               # [..., Tq, Tk]
    dq = (ds @ k) * scale                                              # [..., Tq, d]
    dk = (ds.swapaxes(-1, -2) @ q) * scale                             # [..., Tk, d]
    return dq, dk, dv


# -- the heads of multi-head self-attention, on a packed qkv --------------------------------

def split_heads(x, n_head: int):
    """[B, T, H*hd] -> [B, H, T, hd]."""
    B, T, D = x.shape
    return x.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[B, H, T, hd] -> [B, T, H*hd]."""
    B, H, T, hd = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * hd)


def attention_heads_forward(qkv, n_head: int, mask=None, causal: bool = True,
                            dropout_p: float = 0.0, rng=None, training: bool = True):
    """qkv [B, T, 3D] -> (y [B, T, D], cache): every head attends within its own columns.

    Causal attention without another mask takes the fused kernel; its attention weights
    are ``cache[1]`` in both paths ([B, H, T, T], for plots)."""
    B, T, D3 = qkv.shape
    if D3 % 3 or (D3 // 3) % n_head:
        raise ValueError(f"attention: qkv has {D3} columns; need 3 * D with D divisible by "
                         f"n_head={n_head}.")
    active = training and dropout_p > 0.0
    if causal and mask is None:
        drop_mask = _attention_drop_mask(qkv, n_head, dropout_p, rng) if active else None
        y, att = attention_kernel.causal_attention_forward(qkv, n_head, drop_mask)
        return y, ("fused", att, qkv, n_head, drop_mask)
    D = D3 // 3
    q, k, v = (split_heads(qkv[..., i * D:(i + 1) * D], n_head) for i in range(3))
    y, cache = scaled_dot_product_attention_forward(q, k, v, mask, causal, dropout_p, rng,
                                                    training)          # [B, H, T, hd]
    return merge_heads(y), ("general", cache[3], cache, n_head)


def attention_heads_backward(dy, cache):
    """dy [B, T, D] -> dqkv [B, T, 3D]."""
    xp = get_array_module(dy)
    if cache[0] == "fused":
        _, att, qkv, n_head, drop_mask = cache
        return attention_kernel.causal_attention_backward(dy, qkv, att, n_head, drop_mask)
    _, _, sdpa_cache, n_head = cache
    dq, dk, dv = scaled_dot_product_attention_backward(split_heads(dy, n_head), sdpa_cache)
    return xp.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)


def _attention_drop_mask(qkv, n_head: int, p: float, rng):
    """The scaled keep-mask [B, H, T, T] of dropout on the attention weights, drawn exactly
    as ``dropout_forward`` draws it, so both attention paths agree for the same generator."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"attention: dropout_p={p} must lie in [0, 1).")
    B, T = qkv.shape[:2]
    keep = rng.random((B, n_head, T, T), dtype=qkv.dtype) >= p          # [B, H, T, T]
    return keep * qkv.dtype.type(1.0 / (1.0 - p))


# -- multi-head self-attention: projection, heads, projection -------------------------------

def multi_head_attention_forward(x, W_qkv, b_qkv, W_o, b_o, n_head: int, mask=None,
                                 causal: bool = True, dropout_p: float = 0.0, rng=None,
                                 training: bool = True):
    """x [B, T, D], W_qkv [D, 3D], b_qkv [3D], W_o [D, D], b_o [D] -> (out [B, T, D], cache)."""
    qkv, qkv_cache = linear_forward(x, W_qkv, b_qkv)                  # [B, T, 3D]
    y, heads_cache = attention_heads_forward(qkv, n_head, mask, causal, dropout_p, rng,
                                             training)                 # [B, T, D]
    out, out_cache = linear_forward(y, W_o, b_o)                       # [B, T, D]
    return out, (qkv_cache, heads_cache, out_cache)


def multi_head_attention_backward(dout, cache):
    """dout [B, T, D] -> (dx, dW_qkv, db_qkv, dW_o, db_o)."""
    qkv_cache, heads_cache, out_cache = cache
    dy, dW_o, db_o = linear_backward(dout, out_cache)                  # [B, T, D]
    dqkv = attention_heads_backward(dy, heads_cache)                   # [B, T, 3D]
    dx, dW_qkv, db_qkv = linear_backward(dqkv, qkv_cache)              # [B, T, D]
    return dx, dW_qkv, db_qkv, dW_o, db_o


# -- gradient checks ------------------------------------------------------------------------

def _padding(rng, B, T):
    """A key-padding mask [B, 1, 1, T] with the last tokens of row 0 padded."""
    ids = rng.integers(1, 5, size=(B, T))
    ids[0, -2:] = 0
    return key_padding_mask(ids, 0)


def _mha_inputs(rng, B=2, T=5, D=8, **extra):
    return {"x": rng.standard_normal((B, T, D)), "W_qkv": 0.5 * rng.standard_normal((D, 3 * D)),
            "b_qkv": 0.1 * rng.standard_normal(3 * D), "W_o": 0.5 * rng.standard_normal((D, D)),
            "b_o": 0.1 * rng.standard_normal(D), "n_head": 2, **extra}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/checks.py)."""
    def qkv(rng, Tq=4, Tk=4, lead=(2, 3)):
        return {"q": rng.standard_normal((*lead, Tq, 5)), "k": rng.standard_normal((*lead, Tk, 5)),
                "v": rng.standard_normal((*lead, Tk, 3))}

    sdpa, sdpa_b = scaled_dot_product_attention_forward, scaled_dot_product_attention_backward
    heads, heads_b = attention_heads_forward, attention_heads_backward
    mha, mha_b = multi_head_attention_forward, multi_head_attention_backward

    def case(name, forward, backward, make_inputs):
        def with_seed(rng):
            return {"seed": 0, **make_inputs(rng)}
        return GradcheckCase(name, forward, backward, with_seed, seeded=True)
    return [
        case("scaled_dot_product_attention", sdpa, sdpa_b, lambda rng: qkv(rng)),
        case("scaled_dot_product_attention[causal]", sdpa, sdpa_b,
                      lambda rng: {**qkv(rng), "causal": True}),
        case("scaled_dot_product_attention[causal, Tq < Tk]", sdpa, sdpa_b,
                      lambda rng: {**qkv(rng, Tq=2, Tk=5), "causal": True}),
        case("scaled_dot_product_attention[padding mask]", sdpa, sdpa_b,
                      lambda rng: {**qkv(rng, lead=(2, 1)), "mask": _padding(rng, 2, 4)}),
        case("scaled_dot_product_attention[dropout]", sdpa, sdpa_b,
                      lambda rng: {**qkv(rng), "causal": True, "dropout_p": 0.3, "seed": 3}),
        case("attention_heads[causal]", heads, heads_b,
                      lambda rng: {"qkv": rng.standard_normal((2, 5, 12)), "n_head": 2}),
        case("attention_heads[causal, dropout]", heads, heads_b,
                      lambda rng: {"qkv": rng.standard_normal((2, 5, 12)), "n_head": 2,
                                   "dropout_p": 0.3, "seed": 5}),
        case("attention_heads[padding mask]", heads, heads_b,
                      lambda rng: {"qkv": rng.standard_normal((2, 5, 12)), "n_head": 2,
                                   "mask": _padding(rng, 2, 5), "causal": False}),
        case("multi_head_attention", mha, mha_b, lambda rng: _mha_inputs(rng)),
        case("multi_head_attention[padding mask, bidirectional]", mha, mha_b,
                      lambda rng: _mha_inputs(rng, mask=_padding(rng, 2, 5), causal=False)),
    ]
