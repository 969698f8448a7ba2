"""Attention: scaled dot-product attention and multi-head self-attention (chapter 07).

Scaled dot-product attention（缩放点积注意力） of queries Q [Tq, d] over keys K [Tk, d] and
values V [Tk, dv] (any leading batch/head axes):

    S = Q K^T / sqrt(d)                       [Tq, Tk]   scores; note the transpose of K
    S_ij = -inf where the mask forbids j      (causal: j > i + Tk - Tq; padding: key j is pad)
    P = softmax(S) row by row                 [Tq, Tk]   each row sums to 1
    A = P o M                                 [Tq, Tk]   M: dropout's scaled keep-mask (training)
    O = A V                                   [Tq, dv]

The 1/sqrt(d) keeps the scores' variance near 1 when q and k have unit-variance entries
(q.k is a sum of d products), so the softmax does not saturate as d grows.

Backward, given dO (chapter 07 derives it; each line is one matrix product or a row sum):

    dV = A^T dO                                       [Tk, dv]
    dA = dO V^T,   dP = dA o M                        [Tq, Tk]
    dS = P o (dP - rowsum(P o dP))                    [Tq, Tk]   softmax Jacobian, row-wise
    dQ = dS K / sqrt(d),   dK = dS^T Q / sqrt(d)

A row whose every key is masked has no distribution to normalise; here it gets P = 0 and
so O = 0 (and zero gradients), instead of the NaN that 0/0 would give.

Multi-head self-attention（多头注意力） with a fused QKV projection, x [B, T, D], H heads of
width hd = D / H (GPT-2's names: c_attn is the QKV projection, c_proj the output one):

    qkv = x W_qkv + b_qkv                     [B, T, 3D]   c_attn: one matmul for Q, K and V
    q, k, v = split_qkv(qkv) -> [B, H, T, hd] head h owns columns h*hd .. (h+1)*hd - 1
    y = attention(q, k, v) merged -> [B, T, D]
    out = y W_o + b_o                         [B, T, D]    c_proj

``attention_heads_*`` is the middle step on the packed qkv. Two masks take the fused path,
run by the accelerated kernels of tinylm/kernels/attention.py when ``use_numba`` says so:
causal self-attention (a decoder; ``causal_attention_forward_reference`` is its
specification, in array-module code) and bidirectional self-attention with at most a
key-padding mask [B, 1, 1, T] (an encoder; ``bidirectional_attention_forward_reference``);
their backward is one (``fused_attention_backward_reference``), since masked positions
have P = 0. Any other mask goes through ``scaled_dot_product_attention_*``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.functional.dropout import check_dropout_p, dropout_mask
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

class SDPACache(NamedTuple):
    """What the backward of scaled dot-product attention needs."""
    q: object            # [..., Tq, d]
    k: object            # [..., Tk, d]
    v: object            # [..., Tk, dv]
    p: object            # P [..., Tq, Tk], the attention weights
    a: object            # A = P o M [..., Tq, Tk] (P itself without dropout)
    drop_mask: object    # M [..., Tq, Tk], or None
    scale: object        # 1 / sqrt(d), in q's dtype


def _softmax_scores(q, k, allowed, scale):
    """P [..., Tq, Tk] = softmax(Q K^T scale) over the keys ``allowed`` (bool or None);
    a row with no allowed key is all zeros."""
    xp = get_array_module(q)
    scores = (q @ k.swapaxes(-1, -2)) * scale                          # [..., Tq, Tk]
    if allowed is None:
        m = scores.max(axis=-1, keepdims=True)                         # [..., Tq, 1]
        e = xp.exp(scores - m)
    else:
        masked = xp.where(allowed, scores, -xp.inf)
        m = masked.max(axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)                             # fully masked rows
        e = xp.where(allowed, xp.exp(masked - m), 0)
    total = e.sum(axis=-1, keepdims=True)                              # [..., Tq, 1]
    return e / xp.where(total > 0, total, 1)                           # [..., Tq, Tk]


def _sdpa_cache(q, k, v, p, drop_mask, scale) -> SDPACache:
    """The cache, with A = P o M (P itself when M is None)."""
    a = p if drop_mask is None else p * drop_mask                      # [..., Tq, Tk]
    return SDPACache(q, k, v, p, a, drop_mask, scale)


def _weigh_values(q, k, v, p, drop_mask, scale):
    """O = (P o M) V [..., Tq, dv], and the cache of the backward."""
    cache = _sdpa_cache(q, k, v, p, drop_mask, scale)
    return cache.a @ v, cache


def scaled_dot_product_attention_forward(q, k, v, mask=None, causal: bool = False,
                                         dropout_p: float = 0.0, rng=None,
                                         training: bool = True):
    """q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] -> (out [..., Tq, dv], SDPACache).

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
    check_dropout_p(dropout_p, "attention")
    allowed = causal_mask(Tq, Tk, xp) if causal else None
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
    p = _softmax_scores(q, k, allowed, scale)                          # [..., Tq, Tk]
    active = training and dropout_p > 0.0
    drop_mask = dropout_mask(p.shape, dropout_p, rng, p.dtype) if active else None
    return _weigh_values(q, k, v, p, drop_mask, scale)                 # [..., Tq, dv]


def scaled_dot_product_attention_backward(dout, cache: SDPACache):
    """dout [..., Tq, dv] -> (dq [..., Tq, d], dk [..., Tk, d], dv [..., Tk, dv])."""
    q, k, v, p, a, drop_mask, scale = cache
    dv = a.swapaxes(-1, -2) @ dout                                     # [..., Tk, dv]
    dp = dout @ v.swapaxes(-1, -2)                                     # dA [..., Tq, Tk]
    if drop_mask is not None:
        dp = dp * drop_mask                                            # dP = dA o M
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True))               # [..., Tq, Tk]
    dq = (ds @ k) * scale                                              # [..., Tq, d]
    dk = (ds.swapaxes(-1, -2) @ q) * scale                             # [..., Tk, d]
    return dq, dk, dv


# -- the heads of multi-head self-attention, on a packed qkv --------------------------------

def split_heads(x, n_head: int):
    """[B, T, H*hd] -> its [B, H, T, hd] view (no copy)."""
    B, T, D = x.shape
    return x.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[B, H, T, hd] -> [B, T, H*hd]."""
    B, H, T, hd = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * hd)


def split_qkv(qkv, n_head: int):
    """qkv [B, T, 3D] -> q, k, v, each a [B, H, T, hd] view: the 3H heads of width hd are
    the H query heads, then the H key heads, then the H value heads."""
    heads = split_heads(qkv, 3 * n_head)                               # [B, 3H, T, hd]
    return heads[:, :n_head], heads[:, n_head:2 * n_head], heads[:, 2 * n_head:]


def merge_qkv(dq, dk, dv):
    """dq, dk, dv [B, H, T, hd] -> dqkv [B, T, 3D], the layout of ``split_qkv``."""
    xp = get_array_module(dq)
    return merge_heads(xp.concatenate([dq, dk, dv], axis=1))           # [B, T, 3D]


def causal_attention_forward_reference(qkv, n_head: int, drop_mask=None):
    """The fused path's specification: qkv [B, T, 3D], drop_mask M [B, H, T, T] or None
    -> (y [B, T, D], P [B, H, T, T])."""
    q, k, v = split_qkv(qkv, n_head)                                   # [B, H, T, hd] each
    T = q.shape[2]
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
    p = _softmax_scores(q, k, causal_mask(T, T, get_array_module(qkv)), scale)  # [B, H, T, T]
    y, _ = _weigh_values(q, k, v, p, drop_mask, scale)                 # [B, H, T, hd]
    return merge_heads(y), p


def bidirectional_attention_forward_reference(qkv, n_head: int, keep=None, drop_mask=None):
    """The fused encoder path's specification: qkv [B, T, 3D], keep [B, T] bool (True = a
    real key) or None, drop_mask M [B, H, T, T] or None -> (y [B, T, D], P [B, H, T, T])."""
    q, k, v = split_qkv(qkv, n_head)                                   # [B, H, T, hd] each
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
    allowed = None if keep is None else keep[:, None, None, :]          # [B, 1, 1, T]
    p = _softmax_scores(q, k, allowed, scale)                          # [B, H, T, T]
    y, _ = _weigh_values(q, k, v, p, drop_mask, scale)                 # [B, H, T, hd]
    return merge_heads(y), p


def fused_attention_backward_reference(dy, qkv, att, n_head: int, drop_mask=None):
    """dy [B, T, D], qkv [B, T, 3D], att P [B, H, T, T] -> dqkv [B, T, 3D]: the backward
    of both fused paths (the mask is in P, which is 0 where a key is masked)."""
    q, k, v = split_qkv(qkv, n_head)                                   # [B, H, T, hd] each
    scale = qkv.dtype.type(1.0 / math.sqrt(q.shape[3]))
    cache = _sdpa_cache(q, k, v, att, drop_mask, scale)
    dq, dk, dv = scaled_dot_product_attention_backward(split_heads(dy, n_head), cache)
    return merge_qkv(dq, dk, dv)


class FusedHeadsCache(NamedTuple):
    """Cache of the fused paths."""
    att: object          # P [B, H, T, T]
    qkv: object          # [B, T, 3D]
    n_head: int
    drop_mask: object    # M [B, H, T, T], or None
    causal: bool = True


class MaskedHeadsCache(NamedTuple):
    """Cache of the path with a caller's mask (scaled dot-product attention per head)."""
    sdpa: SDPACache
    n_head: int

    @property
    def att(self):
        """P [B, H, T, T]."""
        return self.sdpa.p


def attention_heads_forward(qkv, n_head: int, mask=None, causal: bool = True,
                            dropout_p: float = 0.0, rng=None, training: bool = True):
    """qkv [B, T, 3D] -> (y [B, T, D], cache): every head attends within its own columns.

    Causal attention without another mask, and bidirectional attention with at most a
    key-padding mask, take the fused paths; the attention weights are ``cache.att`` in every
    path ([B, H, T, T], for plots)."""
    B, T, D3 = qkv.shape
    if D3 % 3 or (D3 // 3) % n_head:
        raise ValueError(f"attention: qkv has {D3} columns; need 3 * D with D divisible by "
                         f"n_head={n_head}.")
    keys_only = mask is None or (tuple(mask.shape) == (B, 1, 1, T) and mask.dtype == bool)
    if not ((causal and mask is None) or (not causal and keys_only)):
        q, k, v = split_qkv(qkv, n_head)                               # [B, H, T, hd] each
        y, cache = scaled_dot_product_attention_forward(q, k, v, mask, causal, dropout_p, rng,
                                                        training)      # [B, H, T, hd]
        return merge_heads(y), MaskedHeadsCache(cache, n_head)
    check_dropout_p(dropout_p, "attention")
    active = training and dropout_p > 0.0
    drop_mask = dropout_mask((B, n_head, T, T), dropout_p, rng, qkv.dtype) if active else None
    fast = use_numba(qkv)
    if causal:
        forward = (attention_kernel.causal_attention_forward if fast
                   else causal_attention_forward_reference)
        y, att = forward(qkv, n_head, drop_mask)                       # [B, T, D], P
    else:
        forward = (attention_kernel.bidirectional_attention_forward if fast
                   else bidirectional_attention_forward_reference)
        keep = None if mask is None else mask[:, 0, 0, :]              # [B, T]
        y, att = forward(qkv, n_head, keep, drop_mask)                 # [B, T, D], P
    return y, FusedHeadsCache(att, qkv, n_head, drop_mask, causal)


def attention_heads_backward(dy, cache):
    """dy [B, T, D] -> dqkv [B, T, 3D]."""
    if isinstance(cache, MaskedHeadsCache):
        dq, dk, dv = scaled_dot_product_attention_backward(split_heads(dy, cache.n_head),
                                                           cache.sdpa)
        return merge_qkv(dq, dk, dv)
    att, qkv, n_head, drop_mask, causal = cache
    if not use_numba(dy, qkv, att):
        return fused_attention_backward_reference(dy, qkv, att, n_head, drop_mask)
    backward = (attention_kernel.causal_attention_backward if causal
                else attention_kernel.bidirectional_attention_backward)
    return backward(dy, qkv, att, n_head, drop_mask)


# -- multi-head self-attention: projection, heads, projection -------------------------------

class MHACache(NamedTuple):
    """Cache of multi-head attention: the two projections' and the heads'."""
    c_attn: object       # linear cache of the QKV projection
    heads: object        # FusedHeadsCache or MaskedHeadsCache
    c_proj: object       # linear cache of the output projection


def multi_head_attention_forward(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b, n_head: int,
                                 mask=None, causal: bool = True, dropout_p: float = 0.0,
                                 rng=None, training: bool = True):
    """x [B, T, D], c_attn_w W_qkv [D, 3D], c_attn_b b_qkv [3D], c_proj_w W_o [D, D],
    c_proj_b b_o [D] -> (out [B, T, D], MHACache)."""
    qkv, c_attn_cache = linear_forward(x, c_attn_w, c_attn_b)          # [B, T, 3D]
    y, heads_cache = attention_heads_forward(qkv, n_head, mask, causal, dropout_p, rng,
                                             training)                 # [B, T, D]
    out, c_proj_cache = linear_forward(y, c_proj_w, c_proj_b)          # [B, T, D]
    return out, MHACache(c_attn_cache, heads_cache, c_proj_cache)


def multi_head_attention_backward(dout, cache: MHACache):
    """dout [B, T, D] -> (dx, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b)."""
    dy, dc_proj_w, dc_proj_b = linear_backward(dout, cache.c_proj)     # [B, T, D]
    dqkv = attention_heads_backward(dy, cache.heads)                   # [B, T, 3D]
    dx, dc_attn_w, dc_attn_b = linear_backward(dqkv, cache.c_attn)     # [B, T, D]
    return dx, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b


# -- gradient checks ------------------------------------------------------------------------

def _padding(rng, B, T):
    """A key-padding mask [B, 1, 1, T] with the last tokens of row 0 padded."""
    ids = rng.integers(1, 5, size=(B, T))
    ids[0, -2:] = 0
    return key_padding_mask(ids, 0)


def _mha_inputs(rng, B=2, T=5, D=8, **extra):
    return {"x": rng.standard_normal((B, T, D)),
            "c_attn_w": 0.5 * rng.standard_normal((D, 3 * D)),
            "c_attn_b": 0.1 * rng.standard_normal(3 * D),
            "c_proj_w": 0.5 * rng.standard_normal((D, D)),
            "c_proj_b": 0.1 * rng.standard_normal(D), "n_head": 2, **extra}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
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
        case("attention_heads[bidirectional, padding, dropout]", heads, heads_b,
             lambda rng: {"qkv": rng.standard_normal((2, 5, 12)), "n_head": 2,
                          "mask": _padding(rng, 2, 5), "causal": False, "dropout_p": 0.3,
                          "seed": 6}),
        case("attention_heads[bidirectional, no mask]", heads, heads_b,
             lambda rng: {"qkv": rng.standard_normal((2, 5, 12)), "n_head": 2,
                          "causal": False}),
        case("multi_head_attention", mha, mha_b, lambda rng: _mha_inputs(rng)),
        case("multi_head_attention[padding mask, bidirectional]", mha, mha_b,
             lambda rng: _mha_inputs(rng, mask=_padding(rng, 2, 5), causal=False)),
    ]
