"""Exercise gelu (chapter 03, section 4): the GELU activation in GPT-2's tanh form, forward
and backward.

GELU weighs x by the probability Phi(x) that a standard normal variable is below it:
gelu(x) = x Phi(x). GPT-2 uses a tanh approximation of Phi, elementwise on any shape:

    u = sqrt(2 / pi) * (x + 0.044715 x^3)
    gelu(x) = x * (1 + tanh(u)) / 2

Backward, given dout (the same shape as x), by the product and chain rules:

    du/dx = sqrt(2 / pi) * (1 + 3 * 0.044715 x^2)
    gelu'(x) = (1 + tanh(u)) / 2 + x * (1 - tanh(u)^2) * du/dx / 2
    dx = dout * gelu'(x)

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check gelu my_gelu.py
"""

import numpy as np

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
CUBIC_COEFFICIENT = 0.044715


def gelu_forward(x):
    """x [any shape] -> (y [same shape], cache): y = x (1 + tanh(u)) / 2 with
    u = sqrt(2/pi) (x + 0.044715 x^3). Cache x (and tanh(u), which the backward reuses)."""
    # TODO: t = tanh(u), then y; return y and the cache (x, t).
    raise NotImplementedError("gelu_forward")


def gelu_backward(dout, cache):
    """dout [same shape as x] -> dx = dout * gelu'(x)."""
    # TODO: du/dx, then gelu'(x) from the module docstring, times dout.
    raise NotImplementedError("gelu_backward")
