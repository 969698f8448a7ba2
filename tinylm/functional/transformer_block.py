"""The pre-LN Transformer block of GPT-2, as one functional pair (chapter 07).

    h   = LN_1(x)                                   [B, T, D]   ln_1
    x1  = x + dropout(MHA(h))                       [B, T, D]   attn; residual（残差）
    u   = LN_2(x1) W_fc + b_fc                      [B, T, 4D]  ln_2, mlp.c_fc
    out = x1 + dropout(GELU(u) W_mo + b_mo)         [B, T, D]   mlp.c_proj; residual

"Pre-LN": the layer norm sits inside each residual branch, so the residual stream x -> out
is an identity plus corrections, and its gradient reaches the first block undiminished.

Backward: a residual sum passes its gradient to both summands unchanged,

    dx1 = dout + [LN_2 -> MLP]^T (dout)
    dx  = dx1  + [LN_1 -> MHA]^T (dx1)

where [.]^T is the chain of the sub-layers' backward passes in reverse order. Every
sub-layer is an existing pair (layernorm, multi_head_attention, linear, gelu, dropout).

tinylm/nn/transformer.py builds the same block from modules (``Block``); tests check that
the two agree. The arguments carry the names of ``Block``'s parameters, dots as
underscores and weight/bias as w/b (``mlp.c_fc.bias`` -> ``mlp_c_fc_b``). The dropouts
(attention weights, then the two residual branches) draw from one generator ``rng`` in
that order.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.functional.activations import gelu_backward, gelu_forward
from tinylm.functional.attention import (multi_head_attention_backward,
                                         multi_head_attention_forward)
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase


class BlockCache(NamedTuple):
    """What the block's backward needs: each sub-layer's cache, in forward order."""
    ln_1: object
    attn: object
    attn_resid_dropout: object   # mask of the dropout on the attention branch (or None)
    ln_2: object
    mlp_c_fc: object
    mlp_gelu: object
    mlp_c_proj: object
    mlp_dropout: object          # mask of the dropout on the MLP branch (or None)


def transformer_block_forward(x, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w,
                              attn_c_proj_b, ln_2_w, ln_2_b, mlp_c_fc_w, mlp_c_fc_b,
                              mlp_c_proj_w, mlp_c_proj_b, n_head: int, dropout_p: float = 0.0,
                              rng=None, training: bool = True):
    """x [B, T, D] -> (out [B, T, D], BlockCache). Each weight is named after its parameter
    in ``Block`` (``attn.c_attn.weight`` -> ``attn_c_attn_w``): attn_c_attn_w W_qkv [D, 3D],
    attn_c_proj_w W_o [D, D], mlp_c_fc_w W_fc [D, 4D], mlp_c_proj_w W_mo [4D, D]; biases
    and layer-norm weights [width]."""
    h, ln_1_cache = layernorm_forward(x, ln_1_w, ln_1_b)                      # [B, T, D]
    a, attn_cache = multi_head_attention_forward(h, attn_c_attn_w, attn_c_attn_b,
                                                 attn_c_proj_w, attn_c_proj_b, n_head,
                                                 causal=True, dropout_p=dropout_p, rng=rng,
                                                 training=training)            # [B, T, D]
    a, drop_1_cache = dropout_forward(a, dropout_p, rng, training)
    x1 = x + a                                                                 # [B, T, D]
    h2, ln_2_cache = layernorm_forward(x1, ln_2_w, ln_2_b)                    # [B, T, D]
    u, fc_cache = linear_forward(h2, mlp_c_fc_w, mlp_c_fc_b)                  # [B, T, 4D]
    g, gelu_cache = gelu_forward(u, "tanh")                                    # [B, T, 4D]
    m, proj_cache = linear_forward(g, mlp_c_proj_w, mlp_c_proj_b)             # [B, T, D]
    m, drop_2_cache = dropout_forward(m, dropout_p, rng, training)
    out = x1 + m                                                               # [B, T, D]
    return out, BlockCache(ln_1_cache, attn_cache, drop_1_cache, ln_2_cache, fc_cache,
                           gelu_cache, proj_cache, drop_2_cache)


def transformer_block_backward(dout, cache: BlockCache):
    """dout [B, T, D] -> (dx, dln_1_w, dln_1_b, dattn_c_attn_w, dattn_c_attn_b,
    dattn_c_proj_w, dattn_c_proj_b, dln_2_w, dln_2_b, dmlp_c_fc_w, dmlp_c_fc_b,
    dmlp_c_proj_w, dmlp_c_proj_b), in the order of the forward's arguments."""
    dm = dropout_backward(dout, cache.mlp_dropout)                             # [B, T, D]
    dg, dmlp_c_proj_w, dmlp_c_proj_b = linear_backward(dm, cache.mlp_c_proj)   # [B, T, 4D]
    du = gelu_backward(dg, cache.mlp_gelu)                                     # [B, T, 4D]
    dh2, dmlp_c_fc_w, dmlp_c_fc_b = linear_backward(du, cache.mlp_c_fc)        # [B, T, D]
    dln_2, dln_2_w, dln_2_b = layernorm_backward(dh2, cache.ln_2)
    dx1 = dout + dln_2                                                         # both branches
    da = dropout_backward(dx1, cache.attn_resid_dropout)                             # [B, T, D]
    dh, dattn_c_attn_w, dattn_c_attn_b, dattn_c_proj_w, dattn_c_proj_b = \
        multi_head_attention_backward(da, cache.attn)
    dln_1, dln_1_w, dln_1_b = layernorm_backward(dh, cache.ln_1)
    dx = dx1 + dln_1                                                           # [B, T, D]
    return (dx, dln_1_w, dln_1_b, dattn_c_attn_w, dattn_c_attn_b, dattn_c_proj_w,
            dattn_c_proj_b, dln_2_w, dln_2_b, dmlp_c_fc_w, dmlp_c_fc_b, dmlp_c_proj_w,
            dmlp_c_proj_b)


def block_parameter_shapes(D: int) -> dict:
    """The shape of every array argument of ``transformer_block_forward`` for width D."""
    return {"ln_1_w": (D,), "ln_1_b": (D,), "attn_c_attn_w": (D, 3 * D),
            "attn_c_attn_b": (3 * D,), "attn_c_proj_w": (D, D), "attn_c_proj_b": (D,),
            "ln_2_w": (D,), "ln_2_b": (D,), "mlp_c_fc_w": (D, 4 * D), "mlp_c_fc_b": (4 * D,),
            "mlp_c_proj_w": (4 * D, D), "mlp_c_proj_b": (D,)}


def _block_inputs(rng, dropout_p=0.0):
    D = 6
    params = {name: 0.5 * rng.standard_normal(shape)
              for name, shape in block_parameter_shapes(D).items()}
    return {"x": rng.standard_normal((2, 4, D)), **params, "n_head": 2,
            "dropout_p": dropout_p, "seed": 11}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("transformer_block", transformer_block_forward, transformer_block_backward,
                      lambda rng: _block_inputs(rng), seeded=True),
        GradcheckCase("transformer_block[dropout]", transformer_block_forward,
                      transformer_block_backward, lambda rng: _block_inputs(rng, dropout_p=0.2),
                      seeded=True),
    ]
