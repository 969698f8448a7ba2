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
The two residual branches are pairs of their own, ``attention_residual_*`` and
``mlp_residual_*``, which the encoder-decoder block (transformer_decoder_block.py) reuses.

The encoder of an encoder-decoder is this same block with ``causal=False`` and a
key-padding ``mask`` [B, 1, 1, T]: every token sees every real token of its sentence.

tinylm/nn/transformer.py builds the same block from modules (``Block``); tests check that
the two agree. The arguments carry the names of ``Block``'s parameters, dots as
underscores and weight/bias as w/b (``mlp.c_fc.bias`` -> ``mlp_c_fc_b``). The dropouts
(attention weights, then the two residual branches) draw from one generator ``rng`` in
that order.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.functional.activations import gelu_backward, gelu_forward
from tinylm.functional.attention import (key_padding_mask, multi_head_attention_backward,
                                         multi_head_attention_forward)
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase


class AttentionResidualCache(NamedTuple):
    """The attention branch's caches, in forward order."""
    ln: object
    attn: object
    dropout: object      # mask of the dropout on the branch's output (or None)


class MLPResidualCache(NamedTuple):
    """The MLP branch's caches, in forward order."""
    ln: object
    c_fc: object
    gelu: object
    c_proj: object
    dropout: object      # mask of the dropout on the branch's output (or None)


class BlockCache(NamedTuple):
    """What the block's backward needs: the two residual branches' caches."""
    attn: AttentionResidualCache
    mlp: MLPResidualCache


def attention_residual_forward(x, ln_w, ln_b, c_attn_w, c_attn_b, c_proj_w, c_proj_b,
                               n_head: int, mask=None, causal: bool = True,
                               dropout_p: float = 0.0, rng=None, training: bool = True):
    """x [B, T, D] -> (x + dropout(MHA(LN(x))) [B, T, D], AttentionResidualCache).

    ``mask`` bool [B, 1, 1|T, T] (True = may attend) and ``causal`` as in
    ``multi_head_attention_forward``: a decoder's block is causal, an encoder's is not and
    masks the padding keys instead."""
    h, ln_cache = layernorm_forward(x, ln_w, ln_b)                            # [B, T, D]
    a, attn_cache = multi_head_attention_forward(h, c_attn_w, c_attn_b, c_proj_w, c_proj_b,
                                                 n_head, mask, causal, dropout_p, rng,
                                                 training)                     # [B, T, D]
    a, drop_cache = dropout_forward(a, dropout_p, rng, training)
    return x + a, AttentionResidualCache(ln_cache, attn_cache, drop_cache)


def attention_residual_backward(dout, cache: AttentionResidualCache):
    """dout [B, T, D] -> (dx, dln_w, dln_b, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b)."""
    da = dropout_backward(dout, cache.dropout)                                 # [B, T, D]
    dh, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b = multi_head_attention_backward(
        da, cache.attn)
    dln, dln_w, dln_b = layernorm_backward(dh, cache.ln)
    return dout + dln, dln_w, dln_b, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b


def mlp_residual_forward(x, ln_w, ln_b, c_fc_w, c_fc_b, c_proj_w, c_proj_b,
                         dropout_p: float = 0.0, rng=None, training: bool = True):
    """x [B, T, D] -> (x + dropout(GELU(LN(x) W_fc + b_fc) W_mo + b_mo) [B, T, D],
    MLPResidualCache); W_fc [D, 4D], W_mo [4D, D]."""
    h, ln_cache = layernorm_forward(x, ln_w, ln_b)                            # [B, T, D]
    u, fc_cache = linear_forward(h, c_fc_w, c_fc_b)                           # [B, T, 4D]
    g, gelu_cache = gelu_forward(u, "tanh")                                    # [B, T, 4D]
    m, proj_cache = linear_forward(g, c_proj_w, c_proj_b)                     # [B, T, D]
    m, drop_cache = dropout_forward(m, dropout_p, rng, training)
    return x + m, MLPResidualCache(ln_cache, fc_cache, gelu_cache, proj_cache, drop_cache)


def mlp_residual_backward(dout, cache: MLPResidualCache):
    """dout [B, T, D] -> (dx, dln_w, dln_b, dc_fc_w, dc_fc_b, dc_proj_w, dc_proj_b)."""
    dm = dropout_backward(dout, cache.dropout)                                 # [B, T, D]
    dg, dc_proj_w, dc_proj_b = linear_backward(dm, cache.c_proj)               # [B, T, 4D]
    du = gelu_backward(dg, cache.gelu)                                         # [B, T, 4D]
    dh, dc_fc_w, dc_fc_b = linear_backward(du, cache.c_fc)                     # [B, T, D]
    dln, dln_w, dln_b = layernorm_backward(dh, cache.ln)
    return dout + dln, dln_w, dln_b, dc_fc_w, dc_fc_b, dc_proj_w, dc_proj_b


def transformer_block_forward(x, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w,
                              attn_c_proj_b, ln_2_w, ln_2_b, mlp_c_fc_w, mlp_c_fc_b,
                              mlp_c_proj_w, mlp_c_proj_b, n_head: int, mask=None,
                              causal: bool = True, dropout_p: float = 0.0, rng=None,
                              training: bool = True):
    """x [B, T, D] -> (out [B, T, D], BlockCache). Each weight is named after its parameter
    in ``Block`` (``attn.c_attn.weight`` -> ``attn_c_attn_w``): attn_c_attn_w W_qkv [D, 3D],
    attn_c_proj_w W_o [D, D], mlp_c_fc_w W_fc [D, 4D], mlp_c_proj_w W_mo [4D, D]; biases
    and layer-norm weights [width]. ``causal=False`` with a key-padding ``mask``
    [B, 1, 1, T] is the encoder's block (bidirectional attention over the real tokens)."""
    x1, attn_cache = attention_residual_forward(
        x, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w, attn_c_proj_b,
        n_head, mask, causal, dropout_p, rng, training)                        # [B, T, D]
    out, mlp_cache = mlp_residual_forward(x1, ln_2_w, ln_2_b, mlp_c_fc_w, mlp_c_fc_b,
                                          mlp_c_proj_w, mlp_c_proj_b, dropout_p, rng,
                                          training)                            # [B, T, D]
    return out, BlockCache(attn_cache, mlp_cache)


def transformer_block_backward(dout, cache: BlockCache):
    """dout [B, T, D] -> (dx, dln_1_w, dln_1_b, dattn_c_attn_w, dattn_c_attn_b,
    dattn_c_proj_w, dattn_c_proj_b, dln_2_w, dln_2_b, dmlp_c_fc_w, dmlp_c_fc_b,
    dmlp_c_proj_w, dmlp_c_proj_b), in the order of the forward's arguments."""
    dx1, *mlp_grads = mlp_residual_backward(dout, cache.mlp)                   # [B, T, D]
    dx, *attn_grads = attention_residual_backward(dx1, cache.attn)             # [B, T, D]
    return (dx, *attn_grads, *mlp_grads)


def block_parameter_shapes(D: int) -> dict:
    """The shape of every array argument of ``transformer_block_forward`` for width D."""
    return {"ln_1_w": (D,), "ln_1_b": (D,), "attn_c_attn_w": (D, 3 * D),
            "attn_c_attn_b": (3 * D,), "attn_c_proj_w": (D, D), "attn_c_proj_b": (D,),
            "ln_2_w": (D,), "ln_2_b": (D,), "mlp_c_fc_w": (D, 4 * D), "mlp_c_fc_b": (4 * D,),
            "mlp_c_proj_w": (4 * D, D), "mlp_c_proj_b": (D,)}


def _padding_mask(rng, T: int = 4):
    """[2, 1, 1, T] key-padding mask: row 1's last two tokens are padding."""
    ids = rng.integers(1, 5, size=(2, T))
    ids[1, -2:] = 0
    return key_padding_mask(ids, 0)


def _block_inputs(rng, dropout_p=0.0, **extra):
    D = 6
    params = {name: 0.5 * rng.standard_normal(shape)
              for name, shape in block_parameter_shapes(D).items()}
    return {"x": rng.standard_normal((2, 4, D)), **params, "n_head": 2,
            "dropout_p": dropout_p, "seed": 11, **extra}


def _branch_inputs(rng, shapes: dict, D=6, **extra):
    """x [2, 4, D], a layer norm's (ln_w, ln_b) and weights of ``shapes``, dropout 0.2."""
    weights = {name: 0.5 * rng.standard_normal(shape) for name, shape in shapes.items()}
    return {"x": rng.standard_normal((2, 4, D)), "ln_w": 1 + 0.1 * rng.standard_normal(D),
            "ln_b": 0.1 * rng.standard_normal(D), **weights, **extra, "dropout_p": 0.2,
            "seed": 5}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    block, block_b = transformer_block_forward, transformer_block_backward
    attention = {"c_attn_w": (6, 18), "c_attn_b": (18,), "c_proj_w": (6, 6), "c_proj_b": (6,)}
    mlp = {"c_fc_w": (6, 24), "c_fc_b": (24,), "c_proj_w": (24, 6), "c_proj_b": (6,)}
    return [
        GradcheckCase("transformer_block", block, block_b, lambda rng: _block_inputs(rng),
                      seeded=True),
        GradcheckCase("transformer_block[dropout]", block, block_b,
                      lambda rng: _block_inputs(rng, dropout_p=0.2), seeded=True),
        GradcheckCase("transformer_block[bidirectional, padding, dropout]", block, block_b,
                      lambda rng: _block_inputs(rng, dropout_p=0.2, mask=_padding_mask(rng),
                                                causal=False), seeded=True),
        GradcheckCase("attention_residual[bidirectional, padding, dropout]",
                      attention_residual_forward, attention_residual_backward,
                      lambda rng: _branch_inputs(rng, attention, n_head=2,
                                                 mask=_padding_mask(rng), causal=False),
                      seeded=True),
        GradcheckCase("mlp_residual[dropout]", mlp_residual_forward, mlp_residual_backward,
                      lambda rng: _branch_inputs(rng, mlp), seeded=True),
    ]
