"""Layer normalisation over the last axis (Ba et al. 2016).

    y = gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta      (biased variance, as PyTorch)

Shapes: x [..., C], gamma [C], beta [C] -> y [..., C]. The derivation of
dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = gamma * dy, is in chapter 03 and in
tinylm/kernels/layernorm.py, which holds the loops.
"""

from __future__ import annotations

from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import layernorm as layernorm_kernel


def layernorm_forward(x, gamma, beta, eps: float = 1e-5):
    """x [..., C] -> (y [..., C], cache)."""
    C = x.shape[-1]
    if gamma.shape != (C,) or beta.shape != (C,):
        raise ValueError(f"layernorm: x has {C} features but gamma {gamma.shape} and beta "
                         f"{beta.shape} must both be ({C},).")
    x2 = x.reshape(-1, C)                                            # [N, C]
    y, mean, rstd = layernorm_kernel.layernorm_forward(x2, gamma, beta, eps)
    return y.reshape(x.shape), (x2, mean, rstd, gamma, x.shape)


def layernorm_backward(dy, cache):
    """dy [..., C] -> (dx [..., C], dgamma [C], dbeta [C])."""
    x2, mean, rstd, gamma, shape = cache
    dx, dgamma, dbeta = layernorm_kernel.layernorm_backward(
        dy.reshape(x2.shape), x2, mean, rstd, gamma)
    return dx.reshape(shape), dgamma, dbeta


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/checks.py)."""
    return [
        GradcheckCase("layernorm", layernorm_forward, layernorm_backward,
                      lambda rng: {"x": rng.standard_normal((2, 3, 6)),
                                   "gamma": rng.standard_normal(6),
                                   "beta": rng.standard_normal(6)}),
    ]
