"""Element-wise activations and their derivatives.

    sigmoid(x) = 1 / (1 + e^-x)         sigmoid' = s (1 - s)
    tanh(x)                             tanh'    = 1 - t^2
    relu(x)    = max(x, 0)              relu'    = [x > 0]
    gelu(x)    = x Phi(x)               (exact, or the tanh approximation below)

GELU, exact:   gelu(x)  = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
               gelu'(x) = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

GELU, tanh:    u = sqrt(2/pi) (x + 0.044715 x^3),   gelu(x) = x (1 + tanh u) / 2
               gelu'(x) = (1 + tanh u) / 2 + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2

Each backward reuses the forward's output where that is cheaper (sigmoid, tanh). The
references below run on NumPy and CuPy; on NumPy arrays tanh (float32) and GELU call the
numba kernels of tinylm/kernels/tanh.py and tinylm/kernels/gelu.py, which agree with them.
Chapter 03, section "Activations".
"""

from __future__ import annotations

import math

from tinylm.backend import get_array_module, use_numba
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import gelu as gelu_kernel
from tinylm.kernels import tanh as tanh_kernel
from tinylm.kernels.gelu import INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI, TANH_COEF

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


def tanh_reference(x):
    return get_array_module(x).tanh(x)


def tanh_forward(x):
    """float32 on CPU: a SIMD rational tanh within 3e-7 (tinylm/kernels/tanh.py)."""
    fast = use_numba(x) and x.dtype == get_array_module(x).float32
    t = tanh_kernel.tanh(x) if fast else tanh_reference(x)
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


def _erf(x):
    """erf for NumPy (which has no erf ufunc: math.erf per element) or CuPy (cupyx)."""
    xp = get_array_module(x)
    if xp.__name__ == "numpy":
        return xp.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype)
    from cupyx.scipy.special import erf  # type: ignore
    return erf(x)


def gelu_forward_reference(x, approximate: str):
    """Element-wise GELU of any-shaped x; approximate is 'none' or 'tanh'."""
    xp = get_array_module(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + xp.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x * x * x)))
    return 0.5 * x * (1.0 + _erf(x * INV_SQRT_2))


def gelu_backward_reference(dout, x, approximate: str):
    """dout, x [any shape] -> dx = dout * gelu'(x)."""
    xp = get_array_module(x)
    if approximate == "tanh":
        t = xp.tanh(SQRT_2_OVER_PI * (x + TANH_COEF * x * x * x))
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_COEF * x * x)
        return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + _erf(x * INV_SQRT_2))
    pdf = INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return dout * (cdf + x * pdf)


def gelu_forward(x, approximate: str = "none"):
    """GELU; ``approximate='tanh'`` is GPT-2's form, ``'none'`` the exact erf form."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate={approximate!r}; use one of {GELU_APPROXIMATIONS}.")
    forward = gelu_kernel.gelu_forward if use_numba(x) else gelu_forward_reference
    return forward(x, approximate), (x, approximate)


def gelu_backward(dout, cache):
    x, approximate = cache
    backward = gelu_kernel.gelu_backward if use_numba(dout, x) else gelu_backward_reference
    return backward(dout, x, approximate)


def _away_from_zero(rng, shape):
    """Entries with |x| in [0.1, 2]: relu has no derivative at 0, so keep the check off it."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
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
