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
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.dropout import dropout_backward, dropout_forward
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.layernorm import layernorm_backward, layernorm_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.mse import mse_backward, mse_forward
from tinylm.functional.softmax import (log_softmax_backward, log_softmax_forward,
                                       softmax_backward, softmax_forward)

__all__ = [name for name in dir() if name.endswith(("_forward", "_backward"))]
