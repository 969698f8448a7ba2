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
(tinylm/checks.py) discovers and runs them, and tests/test_functional_gradcheck.py fails if a
``*_backward`` defined here has no case. A new module adds its pairs and its cases, nothing else.
"""

from tinylm.functional.activations import (gelu_backward, gelu_forward, relu_backward,
                                           relu_forward, sigmoid_backward, sigmoid_forward,
                                           tanh_backward, tanh_forward)
from tinylm.functional.attention import (attention_heads_backward, attention_heads_forward,
                                         causal_mask, key_padding_mask,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward,
                                         scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.embedding import embedding_backward, embedding_forward
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
from tinylm.functional.transformer_block import (transformer_block_backward,
                                                 transformer_block_forward)
from tinylm.functional.window_projection import (window_projection_backward,
                                                 window_projection_forward)

__all__ = [name for name in dir() if name.endswith(("_forward", "_backward"))] + [
    "causal_mask", "key_padding_mask", "sinusoidal_encoding"]
