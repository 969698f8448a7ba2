"""The post-LN Transformer block of the original Transformer and of BERT (chapter 09).

    a   = dropout(MHA(x))                           [B, T, D]   attn
    x1  = LN_1(x + a)                               [B, T, D]   ln_1 after the residual sum
    m   = dropout(GELU(x1 W_fc + b_fc) W_mo + b_mo)  [B, T, D]   mlp (D -> 4D -> D)
    out = LN_2(x1 + m)                              [B, T, D]   ln_2

"Post-LN": each layer norm sits on the residual stream, after the sum, so every block's
output is normalised (Vaswani et al. 2017; Devlin et al. 2019). The pre-LN block
(tinylm/functional/transformer_block.py) puts it inside the branch instead. The difference
shows in the backward: here the gradient of the stream passes through a layer norm's
Jacobian in every block,

    dz2 = LN_2^T(dout)                 z2 = x1 + m
    dx1 = dz2 + [MLP]^T (dz2)
    dz1 = LN_1^T(dx1)                  z1 = x + a
    dx  = dz1 + [MHA]^T (dz1)

so there is no identity path from the loss to the first block: the gradient of the early
blocks depends on the products of L layer-norm Jacobians, which is why post-LN models need a
learning-rate warm-up to train stably (Xiong et al. 2020), while pre-LN ones barely do.

BERT's MLP uses the exact GELU (``approximate="none"``), GPT-2's the tanh form. The weights
carry ``Block``'s names (tinylm/nn/transformer.py, ``norm_first=False``); Hugging Face's
BERT names map onto them one for one: ``attention.self.{query,key,value}`` are the three
column blocks of ``attn.c_attn``, ``attention.output.dense`` is ``attn.c_proj``,
``attention.output.LayerNorm`` is ``ln_1``, ``intermediate.dense`` is ``mlp.c_fc``,
``output.dense`` is ``mlp.c_proj`` and ``output.LayerNorm`` is ``ln_2``. The dropouts
(attention weights, then the two branches) draw from one generator ``rng`` in that order.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.functional.activations import gelu_backward, gelu_forward
from tinylm.functional.attention import (key_padding_mask, multi_head_attention_backward,
                                         multi_head_attention_forward)
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.transformer_block import block_parameter_shapes
from tinylm.gradcheck import GradcheckCase

BERT_LAYERNORM_EPS = 1e-12


class PostLNAttentionCache(NamedTuple):
    attn: object
    dropout: object
    ln: object


class PostLNMLPCache(NamedTuple):
    c_fc: object
    gelu: object
    c_proj: object
    dropout: object
    ln: object


class PostLNBlockCache(NamedTuple):
    attn: PostLNAttentionCache
    mlp: PostLNMLPCache


def post_ln_attention_forward(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b, ln_w, ln_b,
                              n_head: int, mask=None, causal: bool = False,
                              dropout_p: float = 0.0, rng=None, training: bool = True,
                              eps: float = BERT_LAYERNORM_EPS):
    """x [B, T, D] -> (LN(x + dropout(MHA(x))) [B, T, D], PostLNAttentionCache).

    ``mask`` bool [B, 1, 1, T] (True = a real key) and ``causal`` as in
    ``multi_head_attention_forward``; an encoder (BERT) is bidirectional."""
    a, attn_cache = multi_head_attention_forward(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b,
                                                 n_head, mask, causal, dropout_p, rng,
                                                 training)                     # [B, T, D]
    a, drop_cache = dropout_forward(a, dropout_p, rng, training)
    out, ln_cache = layernorm_forward(x + a, ln_w, ln_b, eps)                 # [B, T, D]
    return out, PostLNAttentionCache(attn_cache, drop_cache, ln_cache)


def post_ln_attention_backward(dout, cache: PostLNAttentionCache):
    """dout [B, T, D] -> (dx, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b, dln_w, dln_b)."""
    dz, dln_w, dln_b = layernorm_backward(dout, cache.ln)                      # [B, T, D]
    da = dropout_backward(dz, cache.dropout)
    dx, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b = multi_head_attention_backward(
        da, cache.attn)
    return dz + dx, dc_attn_w, dc_attn_b, dc_proj_w, dc_proj_b, dln_w, dln_b


def post_ln_mlp_forward(x, c_fc_w, c_fc_b, c_proj_w, c_proj_b, ln_w, ln_b,
                        approximate: str = "none", dropout_p: float = 0.0, rng=None,
                        training: bool = True, eps: float = BERT_LAYERNORM_EPS):
    """x [B, T, D] -> (LN(x + dropout(GELU(x W_fc + b_fc) W_mo + b_mo)) [B, T, D],
    PostLNMLPCache); W_fc [D, 4D], W_mo [4D, D]."""
    u, fc_cache = linear_forward(x, c_fc_w, c_fc_b)                           # [B, T, 4D]
    g, gelu_cache = gelu_forward(u, approximate)                               # [B, T, 4D]
    m, proj_cache = linear_forward(g, c_proj_w, c_proj_b)                     # [B, T, D]
    m, drop_cache = dropout_forward(m, dropout_p, rng, training)
    out, ln_cache = layernorm_forward(x + m, ln_w, ln_b, eps)                 # [B, T, D]
    return out, PostLNMLPCache(fc_cache, gelu_cache, proj_cache, drop_cache, ln_cache)


def post_ln_mlp_backward(dout, cache: PostLNMLPCache):
    """dout [B, T, D] -> (dx, dc_fc_w, dc_fc_b, dc_proj_w, dc_proj_b, dln_w, dln_b)."""
    dz, dln_w, dln_b = layernorm_backward(dout, cache.ln)                      # [B, T, D]
    dm = dropout_backward(dz, cache.dropout)
    dg, dc_proj_w, dc_proj_b = linear_backward(dm, cache.c_proj)               # [B, T, 4D]
    du = gelu_backward(dg, cache.gelu)
    dx, dc_fc_w, dc_fc_b = linear_backward(du, cache.c_fc)                     # [B, T, D]
    return dz + dx, dc_fc_w, dc_fc_b, dc_proj_w, dc_proj_b, dln_w, dln_b


def post_ln_block_forward(x, ln_1_w, ln_1_b, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w,
                          attn_c_proj_b, ln_2_w, ln_2_b, mlp_c_fc_w, mlp_c_fc_b,
                          mlp_c_proj_w, mlp_c_proj_b, n_head: int, mask=None,
                          causal: bool = False, approximate: str = "none",
                          dropout_p: float = 0.0, rng=None, training: bool = True,
                          eps: float = BERT_LAYERNORM_EPS):
    """x [B, T, D] -> (out [B, T, D], PostLNBlockCache); the arguments in the order of the
    pre-LN ``transformer_block_forward`` (the same parameters, the same shapes)."""
    x1, attn_cache = post_ln_attention_forward(
        x, attn_c_attn_w, attn_c_attn_b, attn_c_proj_w, attn_c_proj_b, ln_1_w, ln_1_b,
        n_head, mask, causal, dropout_p, rng, training, eps)                   # [B, T, D]
    out, mlp_cache = post_ln_mlp_forward(x1, mlp_c_fc_w, mlp_c_fc_b, mlp_c_proj_w,
                                         mlp_c_proj_b, ln_2_w, ln_2_b, approximate,
                                         dropout_p, rng, training, eps)        # [B, T, D]
    return out, PostLNBlockCache(attn_cache, mlp_cache)


def post_ln_block_backward(dout, cache: PostLNBlockCache):
    """dout [B, T, D] -> (dx, dln_1_w, dln_1_b, dattn_c_attn_w, dattn_c_attn_b,
    dattn_c_proj_w, dattn_c_proj_b, dln_2_w, dln_2_b, dmlp_c_fc_w, dmlp_c_fc_b,
    dmlp_c_proj_w, dmlp_c_proj_b), in the order of the forward's arguments."""
    dx1, *mlp = post_ln_mlp_backward(dout, cache.mlp)                          # [B, T, D]
    dx, *attn = post_ln_attention_backward(dx1, cache.attn)                    # [B, T, D]
    return (dx, attn[4], attn[5], *attn[:4], mlp[4], mlp[5], *mlp[:4])


def _block_inputs(rng, dropout_p=0.0, **extra):
    D = 6
    params = {name: 0.5 * rng.standard_normal(shape)
              for name, shape in block_parameter_shapes(D).items()}
    for name in ("ln_1_w", "ln_2_w"):
        params[name] = 1 + 0.1 * rng.standard_normal(D)
    ids = rng.integers(1, 5, size=(2, 4))
    ids[1, -2:] = 0                                      # row 1: two padding tokens
    return {"x": rng.standard_normal((2, 4, D)), **params, "n_head": 2,
            "mask": key_padding_mask(ids, 0), "dropout_p": dropout_p, "seed": 3,
            "eps": 1e-5, **extra}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    block = (post_ln_block_forward, post_ln_block_backward)

    attention = [("c_attn_w", "attn_"), ("c_attn_b", "attn_"), ("c_proj_w", "attn_"),
                 ("c_proj_b", "attn_")]

    def attention_inputs(rng):
        inputs = _block_inputs(rng, dropout_p=0.2)
        return {"x": inputs["x"], **{k: inputs[f"attn_{k}"] for k, _ in attention},
                "ln_w": inputs["ln_1_w"], "ln_b": inputs["ln_1_b"], "n_head": 2,
                "mask": inputs["mask"], "dropout_p": 0.2, "seed": 3, "eps": 1e-5}

    def mlp_inputs(rng, approximate):
        inputs = _block_inputs(rng, dropout_p=0.2)
        return {"x": inputs["x"], "c_fc_w": inputs["mlp_c_fc_w"],
                "c_fc_b": inputs["mlp_c_fc_b"], "c_proj_w": inputs["mlp_c_proj_w"],
                "c_proj_b": inputs["mlp_c_proj_b"], "ln_w": inputs["ln_2_w"],
                "ln_b": inputs["ln_2_b"], "approximate": approximate, "dropout_p": 0.2,
                "seed": 3, "eps": 1e-5}
    return [
        GradcheckCase("post_ln_block[padding]", *block, lambda rng: _block_inputs(rng),
                      seeded=True),
        GradcheckCase("post_ln_block[padding, dropout, tanh GELU]", *block,
                      lambda rng: _block_inputs(rng, dropout_p=0.2, approximate="tanh"),
                      seeded=True),
        GradcheckCase("post_ln_block[causal]", *block,
                      lambda rng: _block_inputs(rng, mask=None, causal=True), seeded=True),
        GradcheckCase("post_ln_attention[padding, dropout]", post_ln_attention_forward,
                      post_ln_attention_backward, attention_inputs, seeded=True),
        GradcheckCase("post_ln_mlp[dropout]", post_ln_mlp_forward, post_ln_mlp_backward,
                      lambda rng: mlp_inputs(rng, "none"), seeded=True),
    ]
