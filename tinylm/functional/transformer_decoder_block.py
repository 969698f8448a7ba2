"""The decoder block of the Transformer encoder-decoder (Vaswani et al. 2017), pre-LN, as
one functional pair (chapter 07's block with a third sub-layer between its two).

Shapes: B batch rows, T target positions, S source positions, D = n_embd, H heads.
x [B, T, D] is the decoder's stream, memory [B, S, D] the encoder's output, src_mask
[B, S] bool (True = real source token).

    x1  = x  + dropout(SelfAttn_causal(LN_1(x)))             [B, T, D]   ln_1, attn
    x2  = x1 + dropout(CrossAttn(LN_c(x1), memory, src_mask)) [B, T, D]   ln_cross_attn,
                                                                          crossattention
    out = x2 + dropout(MLP(LN_2(x2)))                         [B, T, D]   ln_2, mlp

    CrossAttn(h, m) = softmax(Q K^T / sqrt(hd), keys of padding masked) V, per head, then W_o
    Q = h W_q + b_q [B, T, D],   [K | V] = m W_kv + b_kv [B, S, 2D]

The self-attention is causal (position t sees targets <= t: teacher forcing must not peek);
the cross-attention is not (every target position sees the whole real source). Names are
GPT-2's cross-attention names (``add_cross_attention``): ``ln_cross_attn``, and in
``crossattention`` ``q_attn`` (W_q [D, D]), ``c_attn`` (W_kv [D, 2D]) and ``c_proj``
(W_o [D, D]); the "LN_1, LN_2, LN_3" of the paper's order are ln_1, ln_cross_attn, ln_2.

Backward: each residual sum hands its gradient to both summands, in reverse order,

    dx2 = dout + [LN_2 -> MLP]^T (dout)
    dx1 = dx2  + [LN_c -> CrossAttn]^T_h (dx2),     dmemory = [CrossAttn]^T_m (dx2)
    dx  = dx1  + [LN_1 -> SelfAttn]^T (dx1)

The memory is a second input: its gradient is the cross-attention's key/value branch,
dmemory = [dK | dV] W_kv^T [B, S, D]; a model sums it over its decoder blocks before the
encoder's backward. The self-attention and MLP branches are transformer_block.py's pairs,
the cross-attention encoder_attention.py's. Dropout draws from one generator ``rng`` in
forward order: self-attention weights, its branch, cross-attention weights, its branch,
the MLP branch.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.encoder_attention import (cross_attention_backward,
                                                 cross_attention_forward, source_mask)
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.transformer_block import (attention_residual_backward,
                                                 attention_residual_forward,
                                                 block_parameter_shapes, mlp_residual_backward,
                                                 mlp_residual_forward)
from tinylm.gradcheck import GradcheckCase


class DecoderBlockCache(NamedTuple):
    """The three residual branches' caches, in forward order."""
    attn: object         # AttentionResidualCache
    ln_cross_attn: object
    crossattention: object   # CrossAttentionCache
    cross_dropout: object    # mask of the dropout on the cross-attention branch (or None)
    mlp: object          # MLPResidualCache


def decoder_block_forward(x, memory, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b,
                          attn_c_proj_w, attn_c_proj_b, ln_cross_attn_w, ln_cross_attn_b,
                          crossattention_q_attn_w, crossattention_q_attn_b,
                          crossattention_c_attn_w, crossattention_c_attn_b,
                          crossattention_c_proj_w, crossattention_c_proj_b, ln_2_w, ln_2_b,
                          mlp_c_fc_w, mlp_c_fc_b, mlp_c_proj_w, mlp_c_proj_b, n_head: int,
                          src_mask=None, dropout_p: float = 0.0, rng=None,
                          training: bool = True):
    """x [B, T, D], memory [B, S, D], src_mask [B, S] bool or None -> (out [B, T, D],
    DecoderBlockCache). Weights are named after ``DecoderBlock``'s parameters
    (``crossattention.q_attn.weight`` -> ``crossattention_q_attn_w``)."""
    x1, attn_cache = attention_residual_forward(
        x, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w, attn_c_proj_b,
        n_head, None, True, dropout_p, rng, training)                          # [B, T, D]
    h, ln_cache = layernorm_forward(x1, ln_cross_attn_w, ln_cross_attn_b)      # [B, T, D]
    c, cross_cache = cross_attention_forward(
        h, memory, crossattention_q_attn_w, crossattention_q_attn_b, crossattention_c_attn_w,
        crossattention_c_attn_b, crossattention_c_proj_w, crossattention_c_proj_b, n_head,
        src_mask, dropout_p, rng, training)                                    # [B, T, D]
    c, drop_cache = dropout_forward(c, dropout_p, rng, training)
    out, mlp_cache = mlp_residual_forward(x1 + c, ln_2_w, ln_2_b, mlp_c_fc_w, mlp_c_fc_b,
                                          mlp_c_proj_w, mlp_c_proj_b, dropout_p, rng,
                                          training)                            # [B, T, D]
    return out, DecoderBlockCache(attn_cache, ln_cache, cross_cache, drop_cache, mlp_cache)


def decoder_block_backward(dout, cache: DecoderBlockCache):
    """dout [B, T, D] -> (dx, dmemory, then the gradient of every weight in the order of the
    forward's arguments)."""
    dx2, *mlp_grads = mlp_residual_backward(dout, cache.mlp)                   # [B, T, D]
    dc = dropout_backward(dx2, cache.cross_dropout)
    dh, dmemory, *cross_grads = cross_attention_backward(dc, cache.crossattention)
    dln, dln_c_w, dln_c_b = layernorm_backward(dh, cache.ln_cross_attn)
    dx, *attn_grads = attention_residual_backward(dx2 + dln, cache.attn)       # [B, T, D]
    return (dx, dmemory, *attn_grads, dln_c_w, dln_c_b, *cross_grads, *mlp_grads)


def decoder_block_parameter_shapes(D: int) -> dict:
    """The shape of every weight argument of ``decoder_block_forward`` for width D, in order."""
    block = block_parameter_shapes(D)
    first = {k: v for k, v in block.items() if k.startswith(("ln_1", "attn"))}
    last = {k: v for k, v in block.items() if k.startswith(("ln_2", "mlp"))}
    cross = {"ln_cross_attn_w": (D,), "ln_cross_attn_b": (D,),
             "crossattention_q_attn_w": (D, D), "crossattention_q_attn_b": (D,),
             "crossattention_c_attn_w": (D, 2 * D), "crossattention_c_attn_b": (2 * D,),
             "crossattention_c_proj_w": (D, D), "crossattention_c_proj_b": (D,)}
    return {**first, **cross, **last}


def _decoder_inputs(rng, dropout_p=0.0, padded=True, B=2, T=3, S=4, D=6):
    weights = {name: 0.5 * rng.standard_normal(shape)
               for name, shape in decoder_block_parameter_shapes(D).items()}
    x = rng.standard_normal((B, T, D))
    mask = source_mask([S, S - 2], S, get_array_module(x))            # row 1: 2 pads
    return {"x": x, "memory": rng.standard_normal((B, S, D)), **weights, "n_head": 2,
            "src_mask": mask if padded else None, "dropout_p": dropout_p, "seed": 3}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    block = (decoder_block_forward, decoder_block_backward)
    return [
        GradcheckCase("decoder_block[padding]", *block, lambda rng: _decoder_inputs(rng),
                      seeded=True),
        GradcheckCase("decoder_block[no mask]", *block,
                      lambda rng: _decoder_inputs(rng, padded=False), seeded=True),
        GradcheckCase("decoder_block[padding, dropout]", *block,
                      lambda rng: _decoder_inputs(rng, dropout_p=0.2), seeded=True),
    ]
