"""Attention of a decoder over an encoder: Bahdanau, Luong and Transformer cross-attention.

The sequence-to-sequence chapter's attention: a decoder state (the query) weighs the encoder
states of the source sentence. Sizes: B batch rows, S source positions, T decoder steps,
Dq / Dk / Dv query / key / value widths, A the additive attention's hidden width.

Every scoring function gives scores e [B, T, S]; with the source padding mask m [B, S]
(True = real token) the rest is shared:

    e_{t,s} = -inf where m_s is False          (padding is never attended)
    alpha_t = softmax_s(e_t)                   [B, T, S]   weights, each row sums to 1
    c_t     = sum_s alpha_{t,s} V_s            [B, T, Dv]  context; c = alpha V

Scores (q_t [Dq] a decoder state, k_s [Dk] an encoder state):

    additive (Bahdanau)        e_{t,s} = v^T tanh(W_q^T q_t + W_k^T k_s)   W_q [Dq, A],
                                                                           W_k [Dk, A], v [A]
    multiplicative, "general"  e_{t,s} = q_t^T W k_s                       W [Dq, Dk]
    multiplicative, "dot"      e_{t,s} = q_t^T k_s                          (Dq = Dk)

(Luong's scores are not divided by sqrt(d): the original models do not.) The keys and the
values are both the encoder states in those models; they are separate arguments here.

Backward, given dc [B, T, Dv] (one product or row sum per line):

    dV      = alpha^T dc                                  [B, S, Dv]
    dalpha  = dc V^T                                      [B, T, S]
    de      = alpha o (dalpha - rowsum(alpha o dalpha))   softmax Jacobian; 0 where masked

    dot:      dQ = de K,              dK = de^T Q
    general:  G = Q W [B, T, Dk]:     dQ = (de K) W^T,    dW = sum_b Q_b^T (de_b K_b),
              dK = de^T G
    additive: u = Q W_q [B, T, A], w = K W_k [B, S, A], h_{t,s} = tanh(u_t + w_s) [B, T, S, A],
              e = h v, so  dh = de v^T,  dv = sum_{b,t,s} de_{t,s} h_{t,s},
              dpre = dh o (1 - h^2),  du_t = sum_s dpre_{t,s},  dw_s = sum_t dpre_{t,s},
              dQ = du W_q^T,  dW_q = sum_b Q_b^T du_b,  dK = dw W_k^T,  dW_k = sum_b K_b^T dw_b

A query is one decoder step [B, Dq] (the recurrent decoder, one step at a time) or all of
them [B, T, Dq] (teacher forcing: for Luong attention this is one batched matmul; the
additive score forms a [B, T, S, A] array). The outputs then have the query's layout:
context [B, Dv] or [B, T, Dv], weights [B, S] or [B, T, S]. These forwards return
``(context, cache)`` like every pair; the weights, which a decoder reads (plots, coverage),
are ``cache.weights``.

Cross-attention（交叉注意力）, the Transformer decoder's second sublayer: multi-head
attention (tinylm/functional/attention.py) with queries from the decoder x [B, T, D] and
keys and values from the encoder's output, the memory [B, S, D]; no causal mask (every
source position is known), only the source padding mask:

    q  = x W_q + b_q                 [B, T, D]    -> H heads [B, H, T, hd]
    kv = memory W_kv + b_kv          [B, S, 2D]   -> H key heads, then H value heads
    y  = attention(q, k, v, m) merged [B, T, D]   scaled dot-product, per head
    out = y W_o + b_o                [B, T, D]

Its backward is the scaled dot-product backward between the linear layers' backwards; the
gradient of the memory collects every decoder position's use of it.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module
from tinylm.functional.attention import (merge_heads, scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward, split_heads)
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase


# -- the shared part: masked softmax and the weighted sum -----------------------------------

def _as_steps(query):
    """query [B, Dq] or [B, T, Dq] -> ([B, T, Dq], whether it was one step)."""
    if query.ndim == 2:
        return query[:, None, :], True
    if query.ndim == 3:
        return query, False
    raise ValueError(f"encoder attention: query has shape {query.shape}; need [B, Dq] (one "
                     "decoder step) or [B, T, Dq] (all steps).")


def check_source(query, keys, values, mask):
    """Shapes of q [B, T, Dq], keys [B, S, Dk], values [B, S, Dv], mask [B, S] bool or None;
    a row of the mask with no real token is an error (its softmax has nothing to weigh)."""
    if keys.ndim != 3 or values.ndim != 3 or query.shape[0] != keys.shape[0] \
            or values.shape[:2] != keys.shape[:2]:
        raise ValueError(f"encoder attention: query {query.shape}, keys {keys.shape}, values "
                         f"{values.shape} do not fit; need keys [B, S, Dk], values [B, S, Dv] "
                         "and a query with the same B.")
    if mask is None:
        return
    B, S = keys.shape[:2]
    if mask.shape != (B, S):
        raise ValueError(f"encoder attention: source mask has shape {mask.shape}; need [B, S] "
                         f"= {(B, S)} (True = real token), one row per source sentence.")
    if mask.dtype != bool:
        raise ValueError(f"encoder attention: source mask must be bool (True = real token), "
                         f"got {mask.dtype}.")
    empty = ~mask.any(axis=1)                                          # [B]
    if bool(empty.any()):
        row = int(get_array_module(mask).argmax(empty))
        raise ValueError(f"encoder attention: source row {row} has every position masked "
                         "(no real token): its attention weights are undefined; drop the empty "
                         "sentence or check the mask (True = real token).")


def masked_softmax(scores, mask):
    """scores e [B, T, S], mask [B, S] bool or None -> alpha [B, T, S]; exactly 0 where
    masked (every row has a real token, see ``check_source``)."""
    xp = get_array_module(scores)
    if mask is not None:
        scores = xp.where(mask[:, None, :], scores, -xp.inf)           # [B, T, S]
    e = xp.exp(scores - scores.max(axis=-1, keepdims=True))            # exp(-inf) = 0
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_jacobian_product(dalpha, alpha):
    """de = alpha o (dalpha - rowsum(alpha o dalpha)) [B, T, S]."""
    return alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))


def _weigh(alpha, values, one_step):
    """c = alpha V [B, T, Dv]; the step axis dropped again for a one-step query."""
    context = alpha @ values                                           # [B, T, Dv]
    return context[:, 0] if one_step else context


def _context_grads(dcontext, alpha, values, one_step):
    """dc -> (de [B, T, S], dV [B, S, Dv])."""
    dc = dcontext[:, None, :] if one_step else dcontext                # [B, T, Dv]
    dvalues = alpha.swapaxes(-1, -2) @ dc                              # [B, S, Dv]
    dalpha = dc @ values.swapaxes(-1, -2)                              # [B, T, S]
    return _softmax_jacobian_product(dalpha, alpha), dvalues


def _flat_matmul_t(a, b):
    """sum_b a_b^T b_b over the batch and step axes: a [..., I], b [..., O] -> [I, O]."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


# -- multiplicative (Luong) attention: "dot" and "general" ----------------------------------

class MultiplicativeCache(NamedTuple):
    query: object        # Q [B, T, Dq]
    keys: object         # K [B, S, Dk]
    values: object       # V [B, S, Dv]
    W: object            # [Dq, Dk], or None ("dot")
    projected: object    # G = Q W [B, T, Dk] (Q itself for "dot")
    alpha: object        # weights [B, T, S]
    one_step: bool

    @property
    def weights(self):
        """The attention weights alpha [B, (T,) S], in the query's layout."""
        return self.alpha[:, 0] if self.one_step else self.alpha


def multiplicative_attention_forward(query, keys, values, W=None, mask=None):
    """Luong attention: e = q^T W k ("general"), or q^T k ("dot", W None).

    query [B, Dq] or [B, T, Dq], keys [B, S, Dk], values [B, S, Dv], W [Dq, Dk] or None,
    mask [B, S] bool or None -> (context [B, (T,) Dv], cache); cache.weights [B, (T,) S]."""
    q, one_step = _as_steps(query)                                     # [B, T, Dq]
    check_source(q, keys, values, mask)
    want = keys.shape[-1] if W is None else W.shape[0]
    if q.shape[-1] != want or (W is not None and W.shape[1] != keys.shape[-1]):
        raise ValueError(f"multiplicative attention: query width {q.shape[-1]}, key width "
                         f"{keys.shape[-1]} and W {None if W is None else W.shape} do not fit; "
                         "need W [Dq, Dk] (or Dq = Dk without W, the dot score).")
    g = q if W is None else q @ W                                      # G [B, T, Dk]
    alpha = masked_softmax(g @ keys.swapaxes(-1, -2), mask)            # [B, T, S]
    context = _weigh(alpha, values, one_step)
    return context, MultiplicativeCache(q, keys, values, W, g, alpha, one_step)


def multiplicative_attention_backward(dcontext, cache: MultiplicativeCache):
    """dcontext [B, (T,) Dv] -> (dquery, dkeys, dvalues, dW or None)."""
    q, keys, values, W, g, alpha, one_step = cache
    de, dvalues = _context_grads(dcontext, alpha, values, one_step)  # [B, T, S]
    dkeys = de.swapaxes(-1, -2) @ g                                    # [B, S, Dk]
    dg = de @ keys                                                     # [B, T, Dk]
    dq, dW = (dg, None) if W is None else (dg @ W.T, _flat_matmul_t(q, dg))
    return (dq[:, 0] if one_step else dq), dkeys, dvalues, dW


# -- additive (Bahdanau) attention ----------------------------------------------------------

class AdditiveCache(NamedTuple):
    query: object        # Q [B, T, Dq]
    keys: object         # K [B, S, Dk]
    values: object       # V [B, S, Dv]
    W_q: object          # [Dq, A]
    W_k: object          # [Dk, A]
    v: object            # [A]
    h: object            # tanh(u_t + w_s) [B, T, S, A]
    alpha: object        # weights [B, T, S]
    one_step: bool

    @property
    def weights(self):
        """The attention weights alpha [B, (T,) S], in the query's layout."""
        return self.alpha[:, 0] if self.one_step else self.alpha


def additive_attention_forward(query, keys, values, W_q, W_k, v, mask=None):
    """Bahdanau attention: e_{t,s} = v^T tanh(W_q^T q_t + W_k^T k_s).

    query [B, Dq] or [B, T, Dq], keys [B, S, Dk], values [B, S, Dv], W_q [Dq, A],
    W_k [Dk, A], v [A], mask [B, S] bool or None
    -> (context [B, (T,) Dv], cache); cache.weights [B, (T,) S]."""
    xp = get_array_module(keys)
    q, one_step = _as_steps(query)                                     # [B, T, Dq]
    check_source(q, keys, values, mask)
    A = v.shape[0]
    if W_q.shape != (q.shape[-1], A) or W_k.shape != (keys.shape[-1], A):
        raise ValueError(f"additive attention: W_q {W_q.shape}, W_k {W_k.shape}, v {v.shape} "
                         f"do not fit query width {q.shape[-1]} and key width "
                         f"{keys.shape[-1]}; need W_q [Dq, A], W_k [Dk, A], v [A].")
    u = q @ W_q                                                        # [B, T, A]
    w = keys @ W_k                                                     # [B, S, A]
    h = xp.tanh(u[:, :, None, :] + w[:, None, :, :])                   # [B, T, S, A]
    alpha = masked_softmax(h @ v, mask)                                # [B, T, S]
    context = _weigh(alpha, values, one_step)
    return context, AdditiveCache(q, keys, values, W_q, W_k, v, h, alpha, one_step)


def additive_attention_backward(dcontext, cache: AdditiveCache):
    """dcontext [B, (T,) Dv] -> (dquery, dkeys, dvalues, dW_q, dW_k, dv)."""
    q, keys, values, W_q, W_k, v, h, alpha, one_step = cache
    de, dvalues = _context_grads(dcontext, alpha, values, one_step)  # [B, T, S]
    dv = _flat_matmul_t(de[..., None], h)[0]                           # [A]
    dpre = de[..., None] * v * (1 - h * h)                             # [B, T, S, A]
    du = dpre.sum(axis=2)                                              # [B, T, A]
    dw = dpre.sum(axis=1)                                              # [B, S, A]
    dq = du @ W_q.T                                                    # [B, T, Dq]
    dkeys = dw @ W_k.T                                                 # [B, S, Dk]
    dW_q, dW_k = _flat_matmul_t(q, du), _flat_matmul_t(keys, dw)       # [Dq, A], [Dk, A]
    return (dq[:, 0] if one_step else dq), dkeys, dvalues, dW_q, dW_k, dv


# -- cross-attention: multi-head, queries from the decoder, keys/values from the memory -----

class CrossAttentionCache(NamedTuple):
    q_proj: object       # linear cache of the query projection
    kv_proj: object      # linear cache of the key/value projection
    sdpa: object         # SDPACache of the heads
    c_proj: object       # linear cache of the output projection
    n_head: int

    @property
    def att(self):
        """The attention weights P [B, H, T, S] (for plots)."""
        return self.sdpa.p


def cross_attention_forward(x, memory, w_q, b_q, w_kv, b_kv, w_o, b_o, n_head: int,
                            src_mask=None, dropout_p: float = 0.0, rng=None,
                            training: bool = True):
    """x [B, T, D], memory [B, S, D], w_q [D, D], b_q [D], w_kv [D, 2D], b_kv [2D],
    w_o [D, D], b_o [D], src_mask [B, S] bool (True = real token) or None
    -> (out [B, T, D], CrossAttentionCache). Biases may be None."""
    B, T, D = x.shape
    if memory.ndim != 3 or memory.shape[0] != B or memory.shape[2] != D or D % n_head:
        raise ValueError(f"cross_attention: x {x.shape} and memory {memory.shape} do not fit "
                         f"n_head={n_head}; need x [B, T, D], memory [B, S, D] with D divisible "
                         "by n_head.")
    check_source(x, memory, memory, src_mask)
    q, q_cache = linear_forward(x, w_q, b_q)                           # [B, T, D]
    kv, kv_cache = linear_forward(memory, w_kv, b_kv)                  # [B, S, 2D]
    heads = split_heads(kv, 2 * n_head)                                # [B, 2H, S, hd]
    k, v = heads[:, :n_head], heads[:, n_head:]                        # [B, H, S, hd] each
    allowed = None if src_mask is None else src_mask[:, None, None, :]  # [B, 1, 1, S]
    y, sdpa_cache = scaled_dot_product_attention_forward(
        split_heads(q, n_head), k, v, allowed, False, dropout_p, rng, training)  # [B, H, T, hd]
    out, o_cache = linear_forward(merge_heads(y), w_o, b_o)            # [B, T, D]
    return out, CrossAttentionCache(q_cache, kv_cache, sdpa_cache, o_cache, n_head)


def cross_attention_backward(dout, cache: CrossAttentionCache):
    """dout [B, T, D] -> (dx, dmemory, dw_q, db_q, dw_kv, db_kv, dw_o, db_o)."""
    xp = get_array_module(dout)
    dy, dw_o, db_o = linear_backward(dout, cache.c_proj)               # [B, T, D]
    dq, dk, dv = scaled_dot_product_attention_backward(split_heads(dy, cache.n_head),
                                                       cache.sdpa)     # [B, H, ., hd]
    dx, dw_q, db_q = linear_backward(merge_heads(dq), cache.q_proj)    # [B, T, D]
    dkv = merge_heads(xp.concatenate([dk, dv], axis=1))                # [B, S, 2D]
    dmemory, dw_kv, db_kv = linear_backward(dkv, cache.kv_proj)        # [B, S, D]
    return dx, dmemory, dw_q, db_q, dw_kv, db_kv, dw_o, db_o


# -- gradient checks ------------------------------------------------------------------------

def source_mask(lengths, S: int, xp):
    """lengths [B] int -> mask [B, S] bool, True on the first lengths[b] positions."""
    return xp.arange(S)[None, :] < xp.asarray(lengths)[:, None]


def _source(rng, B=3, S=5, Dk=4, Dv=3, padded=True):
    keys = rng.standard_normal((B, S, Dk))
    mask = source_mask([S, 2, S - 1][:B], S, get_array_module(keys)) if padded else None
    return {"keys": keys, "values": rng.standard_normal((B, S, Dv)), "mask": mask}


def _luong(rng, steps, general, padded=True):
    shape = (3, 2, 6) if steps else (3, 6)                             # the query
    q = {"query": rng.standard_normal(shape)}
    src = _source(rng, Dk=4 if general else 6, padded=padded)
    W = {"W": 0.5 * rng.standard_normal((6, 4))} if general else {"W": None}
    return {**q, **src, **W}


def _bahdanau(rng, steps, padded=True):
    shape = (3, 2, 6) if steps else (3, 6)
    return {"query": rng.standard_normal(shape), **_source(rng, padded=padded),
            "W_q": 0.5 * rng.standard_normal((6, 7)), "W_k": 0.5 * rng.standard_normal((4, 7)),
            "v": rng.standard_normal(7)}


def _cross(rng, B=2, T=3, S=5, D=8, **extra):
    x = rng.standard_normal((B, T, D))
    return {"x": x, "memory": rng.standard_normal((B, S, D)),
            "w_q": 0.5 * rng.standard_normal((D, D)), "b_q": 0.1 * rng.standard_normal(D),
            "w_kv": 0.5 * rng.standard_normal((D, 2 * D)),
            "b_kv": 0.1 * rng.standard_normal(2 * D),
            "w_o": 0.5 * rng.standard_normal((D, D)), "b_o": 0.1 * rng.standard_normal(D),
            "n_head": 2, "src_mask": source_mask([S, 3][:B], S, get_array_module(x)), **extra}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    mul = (multiplicative_attention_forward, multiplicative_attention_backward)
    add = (additive_attention_forward, additive_attention_backward)
    cross = (cross_attention_forward, cross_attention_backward)

    def seeded(rng):
        return {"seed": 0, **_cross(rng, dropout_p=0.3)}
    return [
        GradcheckCase("multiplicative_attention[dot, padding]", *mul,
                      lambda rng: _luong(rng, False, False)),
        GradcheckCase("multiplicative_attention[general, padding]", *mul,
                      lambda rng: _luong(rng, False, True)),
        GradcheckCase("multiplicative_attention[general, all steps, padding]", *mul,
                      lambda rng: _luong(rng, True, True)),
        GradcheckCase("multiplicative_attention[dot, all steps, no mask]", *mul,
                      lambda rng: _luong(rng, True, False, padded=False)),
        GradcheckCase("additive_attention[padding]", *add, lambda rng: _bahdanau(rng, False)),
        GradcheckCase("additive_attention[all steps, padding]", *add,
                      lambda rng: _bahdanau(rng, True)),
        GradcheckCase("additive_attention[no mask]", *add,
                      lambda rng: _bahdanau(rng, False, padded=False)),
        GradcheckCase("cross_attention[padding]", *cross, lambda rng: _cross(rng)),
        GradcheckCase("cross_attention[no mask]", *cross,
                      lambda rng: _cross(rng, src_mask=None)),
        GradcheckCase("cross_attention[padding, dropout]", *cross, seeded, seeded=True),
    ]
