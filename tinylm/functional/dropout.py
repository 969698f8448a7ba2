"""Inverted dropout (Srivastava et al. 2014).

Training: keep each unit with probability 1 - p and scale the survivors by 1 / (1 - p),

    mask_i ~ Bernoulli(1 - p),   y = x * mask / (1 - p),   dx = dy * mask / (1 - p)

so that E[y] = x and evaluation needs no rescaling (y = x). The mask comes from a seeded
generator passed in by the caller, so runs are reproducible. Chapter 04, "Regularisation".
"""

from __future__ import annotations

from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import dropout as dropout_kernel


def dropout_forward(x, p: float, rng, training: bool = True):
    """x [...] -> (y [...], cache). ``rng`` is a NumPy/CuPy Generator matching x's device."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p={p} must lie in [0, 1); p=1 would drop every unit.")
    if not training or p == 0.0:
        return x, None
    u = rng.random(x.shape, dtype=x.dtype)                  # [...] uniform in [0, 1)
    return dropout_kernel.apply_dropout(x, u, p)            # y = x * m, cache m


def dropout_backward(dy, cache):
    scaled_mask = cache
    return dy if scaled_mask is None else dy * scaled_mask


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/checks.py)."""
    return [
        GradcheckCase("dropout", dropout_forward, dropout_backward,
                      lambda rng: {"x": rng.standard_normal((4, 6)), "p": 0.3, "seed": 7},
                      seeded=True),
    ]
