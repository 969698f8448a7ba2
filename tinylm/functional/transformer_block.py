"""The pre-LN Transformer block of GPT-2, as one functional pair (chapter 07).

    h   = LN_1(x)                                   [B, T, D]
    x1  = x + dropout(MHA(h))                       [B, T, D]   residual（残差） around attention
    u   = LN_2(x1) W_fc + b_fc                      [B, T, 4D]
    out = x1 + dropout(GELU(u) W_mo + b_mo)         [B, T, D]   residual around the MLP

"Pre-LN": the layer norm sits inside each residual branch, so the residual stream x -> out
is an identity plus corrections, and its gradient reaches the first block undiminished.

Backward: a residual sum passes its gradient to both summands unchanged,

    dx1 = dout + [LN_2 -> MLP]^T (dout)
    dx  = dx1  + [LN_1 -> MHA]^T (dx1)

where [.]^T is the chain of the sub-layers' backward passes in reverse order. Every
sub-layer is an existing pair (layernorm, multi_head_attention, linear, gelu, dropout).

tinylm/nn/transformer.py builds the same block from modules (``Block``); tests check that
the two agree. The dropouts (attention weights, then the two residual branches) draw from
one generator ``rng`` in that order.
"""

from __future__ import annotations

from tinylm.functional.activations import gelu_backward, gelu_forward
from tinylm.functional.attention import (multi_head_attention_backward,
                                         multi_head_attention_forward)
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase


def transformer_block_forward(x, ln1_w, ln1_b, W_qkv, b_qkv, W_ao, b_ao, ln2_w, ln2_b, W_fc,
                              b_fc, W_mo, b_mo, n_head: int, dropout_p: float = 0.0, rng=None,
                              training: bool = True):
    """x [B, T, D] -> (out [B, T, D], cache). W_qkv [D, 3D], W_ao [D, D] (attention output),
    W_fc [D, 4D], W_mo [4D, D] (MLP output); biases and layer-norm weights [width]."""
    h, ln1_cache = layernorm_forward(x, ln1_w, ln1_b)                          # [B, T, D]
    a, attn_cache = multi_head_attention_forward(h, W_qkv, b_qkv, W_ao, b_ao, n_head,
                                                 causal=True, dropout_p=dropout_p, rng=rng,
                                                 training=training)            # [B, T, D]
    a, drop1_cache = dropout_forward(a, dropout_p, rng, training)
    x1 = x + a                                                                 # [B, T, D]
    h2, ln2_cache = layernorm_forward(x1, ln2_w, ln2_b)                        # [B, T, D]
    u, fc_cache = linear_forward(h2, W_fc, b_fc)                               # [B, T, 4D]
    g, gelu_cache = gelu_forward(u, "tanh")                                    # [B, T, 4D]
    m, mo_cache = linear_forward(g, W_mo, b_mo)                                # [B, T, D]
    m, drop2_cache = dropout_forward(m, dropout_p, rng, training)
    out = x1 + m                                                               # [B, T, D]
    return out, (ln1_cache, attn_cache, drop1_cache, ln2_cache, fc_cache, gelu_cache,
                 mo_cache, drop2_cache)


def transformer_block_backward(dout, cache):
    """dout [B, T, D] -> (dx, dln1_w, dln1_b, dW_qkv, db_qkv, dW_ao, db_ao, dln2_w, dln2_b,
    dW_fc, db_fc, dW_mo, db_mo), in the order of the forward's arguments."""
    (ln1_cache, attn_cache, drop1_cache, ln2_cache, fc_cache, gelu_cache, mo_cache,
     drop2_cache) = cache
    dm = dropout_backward(dout, drop2_cache)                                   # [B, T, D]
    dg, dW_mo, db_mo = linear_backward(dm, mo_cache)                           # [B, T, 4D]
    du = gelu_backward(dg, gelu_cache)                                         # [B, T, 4D]
    dh2, dW_fc, db_fc = linear_backward(du, fc_cache)                          # [B, T, D]
    dln2, dln2_w, dln2_b = layernorm_backward(dh2, ln2_cache)
    dx1 = dout + dln2                                                          # both branches
    da = dropout_backward(dx1, drop1_cache)                                    # [B, T, D]
    dh, dW_qkv, db_qkv, dW_ao, db_ao = multi_head_attention_backward(da, attn_cache)
    dln1, dln1_w, dln1_b = layernorm_backward(dh, ln1_cache)
    dx = dx1 + dln1                                                            # [B, T, D]
    return (dx, dln1_w, dln1_b, dW_qkv, db_qkv, dW_ao, db_ao, dln2_w, dln2_b, dW_fc, db_fc,
            dW_mo, db_mo)


def block_parameter_shapes(D: int) -> dict:
    """The shape of every array argument of ``transformer_block_forward`` for width D."""
    return {"ln1_w": (D,), "ln1_b": (D,), "W_qkv": (D, 3 * D), "b_qkv": (3 * D,),
            "W_ao": (D, D), "b_ao": (D,), "ln2_w": (D,), "ln2_b": (D,), "W_fc": (D, 4 * D),
            "b_fc": (4 * D,), "W_mo": (4 * D, D), "b_mo": (D,)}


def _block_inputs(rng, dropout_p=0.0):
    D = 6
    params = {name: 0.5 * rng.standard_normal(shape)
              for name, shape in block_parameter_shapes(D).items()}
    return {"x": rng.standard_normal((2, 4, D)), **params, "n_head": 2,
            "dropout_p": dropout_p, "seed": 11}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/checks.py)."""
    return [
        GradcheckCase("transformer_block", transformer_block_forward, transformer_block_backward,
                      lambda rng: _block_inputs(rng), seeded=True),
        GradcheckCase("transformer_block[dropout]", transformer_block_forward,
                      transformer_block_backward, lambda rng: _block_inputs(rng, dropout_p=0.2),
                      seeded=True),
    ]
