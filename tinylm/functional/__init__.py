"""Functional pairs (layer 3): ``foo_forward(...) -> (out, cache)`` and
``foo_backward(dout, cache) -> grads``, one concept per module.

Conventions shared by every pair:

* pure functions, no hidden state; the cache holds exactly what the backward needs;
* the backward returns the gradients of the forward's differentiable array arguments, in
  the order they appear in the forward's signature (a single array when there is one);
* dtype in = dtype out (float64 in gradient checks, float32 in training);
* the array module comes from the arrays (``get_array_module``), never ``numpy`` directly,
  so the same code runs on CuPy.

Chapter 03 derives each backward; ``tinylm.gradcheck`` proves each against finite
differences. Every module ends with ``gradcheck_cases()``, a list of
``tinylm.gradcheck.GradcheckCase`` (the pair plus small float64 inputs): ``tinylm gradcheck``
(tinylm/commands/gradcheck.py) discovers and runs them, and tests/test_functional_gradcheck.py
fails if a ``*_backward`` defined here has no case. A new module adds its pairs and its
cases, nothing else.

Glossary: the symbols of the docstrings' maths and the arguments they are passed as. A
symbol that means two things means one per module (named in brackets). Parameters carry
GPT-2's names, as in tinylm/nn, so one name is one parameter: ``c_attn_w`` is the weight of
``attn.c_attn``, ``mlp_c_proj_b`` the bias of ``mlp.c_proj`` (dots as underscores, weight
and bias as w and b).

Sizes:

    B           batch rows
    T           positions (sequence length); Tq, Tk: queries, keys [attention]
    D           model width, n_embd (also C [layernorm], I / O: in / out features [linear])
    H           heads, ``n_head`` [attention]; hidden size [rnn, lstm, gru, window_projection]
    hd          head width D / H [attention]; d: query/key width [scaled dot-product]
    V           vocabulary size [embedding, cross_entropy, softmax]
    I           input features [rnn, lstm, gru]
    n, R, d     window length, table rows, embedding width [window_projection]
    S           source positions; Dq, Dk, Dv: query, key, value widths; A: the additive
                score's hidden width [encoder_attention]

Arrays:

    x           ``x``: the input of every layer; ids: integer token ids, ``ids``
    y, out      the output; dout, dy: its upstream gradient (first backward argument)
    W, b        ``W``, ``b`` [linear]; W: the table [V, D] [embedding]
    wpe         the learned position table [block_size, D], ``wpe`` [positional]
    PE          the sinusoidal table, ``sinusoidal_encoding(T, D, ...)`` [positional]
    gamma, beta ``gamma``, ``beta`` [layernorm]; the block's ``ln_1_w``, ``ln_1_b``, ...
    W_x, W_h    ``W_x``, ``W_h`` (b, b_x, b_h likewise) [rnn, lstm, gru]
    h, c        hidden and cell state; h0, c0 as ``h0``, ``c0`` [rnn, lstm, gru]
    h           LN_1(x), the attention branch's input [transformer_block]
    C, W_k      embedding table ``C``, block k of ``W`` [window_projection]
    z, p        logits ``logits``/``z``, probabilities [softmax, cross_entropy]
    Q, K, V     queries, keys, values ``q``, ``k``, ``v``; from the packed ``qkv`` [attention]
    W_qkv       ``c_attn_w`` [D, 3D], b_qkv: ``c_attn_b`` [attention]; in the block
                ``attn_c_attn_w``, ``attn_c_attn_b``
    W_o         ``c_proj_w`` [D, D], b_o: ``c_proj_b`` [attention]; in the block
                ``attn_c_proj_w``, ``attn_c_proj_b``
    W_fc, W_mo  ``mlp_c_fc_w`` [D, 4D], ``mlp_c_proj_w`` [4D, D], biases b_fc, b_mo:
                ``mlp_c_fc_b``, ``mlp_c_proj_b`` [transformer_block]
    memory      the encoder's output [B, S, D]; W_q, W_kv: ``crossattention_q_attn_w``,
                ``crossattention_c_attn_w`` [transformer_decoder_block]
    q, K, V     decoder state(s) ``query``, encoder states ``keys``, ``values``; m: the source
                mask ``mask`` / ``src_mask`` [B, S]; e, alpha, c: scores, weights, context;
                W_q, W_k, v (additive), W (general) [encoder_attention]; cross-attention's
                ``w_q``, ``b_q``, ``w_kv``, ``b_kv``, ``w_o``, ``b_o``
    eps         ``label_smoothing`` [cross_entropy]
    S, P, A     scores, attention weights (``cache.att``, ``cache.p``), weights after
                dropout [attention]
    M, m        dropout's scaled keep-mask, ``drop_mask`` / ``dropout_mask(...)`` [dropout,
                attention]; m is a row maximum [softmax]
    p           the dropout probability ``p`` / ``dropout_p`` [dropout, attention]
    u           uniform draws from the generator ``rng`` [dropout]
    E[.]        expectation [dropout]

(The optimizer's moments m and v are tinylm/optim's, not this package's.)
"""

from tinylm.functional.activations import (gelu_backward, gelu_forward, relu_backward,
                                           relu_forward, sigmoid_backward, sigmoid_forward,
                                           tanh_backward, tanh_forward)
from tinylm.functional.attention import (attention_heads_backward, attention_heads_forward,
                                         causal_mask, key_padding_mask, merge_heads,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward,
                                         scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward,
                                         split_heads, split_qkv)
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.dropout import dropout_backward, dropout_forward, dropout_mask
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.encoder_attention import (additive_attention_backward,
                                                 additive_attention_forward,
                                                 cross_attention_backward,
                                                 cross_attention_forward, masked_softmax,
                                                 multiplicative_attention_backward,
                                                 multiplicative_attention_forward, source_mask)
from tinylm.functional.gru import (gru_backward, gru_cell_backward, gru_cell_forward,
                                   gru_forward, gru_recurrence_backward, gru_recurrence_forward)
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.lstm import (lstm_backward, lstm_cell_backward, lstm_cell_forward,
                                    lstm_forward, lstm_recurrence_backward,
                                    lstm_recurrence_forward)
from tinylm.functional.mse import mse_backward, mse_forward
from tinylm.functional.positional import (learned_positional_backward,
                                          learned_positional_forward, sinusoidal_encoding,
                                          sinusoidal_positional_backward,
                                          sinusoidal_positional_forward)
from tinylm.functional.rnn import (rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward,
                                   rnn_recurrence_backward, rnn_recurrence_forward)
from tinylm.functional.softmax import (log_softmax_backward, log_softmax_forward,
                                       softmax_backward, softmax_forward)
from tinylm.functional.transformer_block import (attention_residual_backward,
                                                 attention_residual_forward,
                                                 mlp_residual_backward, mlp_residual_forward,
                                                 transformer_block_backward,
                                                 transformer_block_forward)
from tinylm.functional.transformer_decoder_block import (decoder_block_backward,
                                                         decoder_block_forward)
from tinylm.functional.window_projection import (window_projection_backward,
                                                 window_projection_forward)

__all__ = [name for name in dir() if name.endswith(("_forward", "_backward"))] + [
    "causal_mask", "dropout_mask", "key_padding_mask", "masked_softmax", "merge_heads",
    "sinusoidal_encoding", "source_mask", "split_heads", "split_qkv"]
