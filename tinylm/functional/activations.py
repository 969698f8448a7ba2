"""Element-wise activations and their derivatives.

    sigmoid(x) = 1 / (1 + e^-x)         sigmoid' = s (1 - s)
    tanh(x)                             tanh'    = 1 - t^2
    relu(x)    = max(x, 0)              relu'    = [x > 0]
    gelu(x)    = x Phi(x)               (exact, or the tanh approximation; see
                                         tinylm/kernels/gelu.py for both derivatives)

Each backward reuses the forward's output where that is cheaper (sigmoid, tanh).
Chapter 03, section "Activations".
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import gelu as gelu_kernel
from tinylm.kernels import tanh as tanh_kernel

GELU_APPROXIMATIONS = ("none", "tanh")


def sigmoid_forward(x):
    """Numerically stable logistic function: never exponentiates a large positive number."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))                                   # in (0, 1]
    s = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)
    return s, s


def sigmoid_backward(dout, cache):
    s = cache
    return dout * s * (1.0 - s)


def tanh_forward(x):
    """float32 on CPU: a SIMD rational tanh within 3e-7 (tinylm/kernels/tanh.py)."""
    t = tanh_kernel.tanh(x)
    return t, t


def tanh_backward(dout, cache):
    t = cache
    return dout * (1.0 - t * t)


def relu_forward(x):
    xp = get_array_module(x)
    return xp.maximum(x, 0), x > 0


def relu_backward(dout, cache):
    mask = cache
    return dout * mask


def gelu_forward(x, approximate: str = "none"):
    """GELU; ``approximate='tanh'`` is GPT-2's form, ``'none'`` the exact erf form."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate={approximate!r}; use one of {GELU_APPROXIMATIONS}.")
    return gelu_kernel.gelu_forward(x, approximate), (x, approximate)


def gelu_backward(dout, cache):
    x, approximate = cache
    return gelu_kernel.gelu_backward(dout, x, approximate)


def _away_from_zero(rng, shape):
    """Entries with |x| in [0.1, 2]: relu has no derivative at 0, so keep the check off it."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/checks.py)."""
    return [
        GradcheckCase("sigmoid", sigmoid_forward, sigmoid_backward,
                      lambda rng: {"x": 3.0 * rng.standard_normal((4, 5))}),
        GradcheckCase("tanh", tanh_forward, tanh_backward,
                      lambda rng: {"x": 2.0 * rng.standard_normal((4, 5))}),
        GradcheckCase("relu", relu_forward, relu_backward,
                      lambda rng: {"x": _away_from_zero(rng, (4, 5))}),
        GradcheckCase("gelu[tanh]", gelu_forward, gelu_backward,
                      lambda rng: {"x": 2.0 * rng.standard_normal((3, 7)), "approximate": "tanh"}),
        GradcheckCase("gelu[none]", gelu_forward, gelu_backward,
                      lambda rng: {"x": 2.0 * rng.standard_normal((3, 7)), "approximate": "none"}),
    ]
