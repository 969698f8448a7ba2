"""Layer normalisation over the last axis (Ba et al. 2016).

Shapes: x [..., C], gamma [C], beta [C] -> y [..., C]; the rows are flattened to x [N, C].

Forward, per row (biased variance, as PyTorch):

    mu = mean(x),  var = mean((x - mu)^2),  rstd = 1 / sqrt(var + eps)
    xhat = (x - mu) * rstd,   y = gamma * xhat + beta

Backward, per row, with g = gamma * dy:

    dbeta  = sum_n dy_n                 dgamma = sum_n dy_n * xhat_n
    dx     = rstd * (g - mean(g) - xhat * mean(g * xhat))

The dx formula comes from differentiating through mu and var: dxhat = g, and
d xhat_c / d x_k = rstd (delta_ck - 1/C - xhat_c xhat_k / C). Chapter 03 derives it.

The reference below is the specification; on NumPy arrays the numba kernel of
tinylm/kernels/layernorm.py computes the same rows in one pass each.
"""

from __future__ import annotations

from tinylm.backend import get_array_module, use_numba
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import layernorm as layernorm_kernel


def layernorm_forward_reference(x, gamma, beta, eps: float):
    """x [N, C], gamma [C], beta [C] -> (y [N, C], mean [N], rstd [N])."""
    xp = get_array_module(x)
    mean = x.mean(axis=1)                                         # [N]
    xc = x - mean[:, None]                                        # [N, C]
    var = (xc * xc).mean(axis=1)                                  # [N]
    rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)             # [N]
    y = xc * rstd[:, None] * gamma + beta                         # [N, C]
    return y, mean, rstd


def layernorm_backward_reference(dy, x, mean, rstd, gamma):
    """dy, x [N, C], mean, rstd [N], gamma [C] -> (dx [N, C], dgamma [C], dbeta [C])."""
    xhat = (x - mean[:, None]) * rstd[:, None]                    # [N, C]
    g = dy * gamma                                                # [N, C]
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True)
                          - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def layernorm_forward(x, gamma, beta, eps: float = 1e-5):
    """x [..., C] -> (y [..., C], cache)."""
    C = x.shape[-1]
    if gamma.shape != (C,) or beta.shape != (C,):
        raise ValueError(f"layernorm: x has {C} features but gamma {gamma.shape} and beta "
                         f"{beta.shape} must both be ({C},).")
    x2 = x.reshape(-1, C)                                            # [N, C]
    rows = (layernorm_kernel.layernorm_forward if use_numba(x2, gamma, beta)
            else layernorm_forward_reference)
    y, mean, rstd = rows(x2, gamma, beta, eps)
    return y.reshape(x.shape), (x2, mean, rstd, gamma, x.shape)


def layernorm_backward(dy, cache):
    """dy [..., C] -> (dx [..., C], dgamma [C], dbeta [C])."""
    x2, mean, rstd, gamma, shape = cache
    dy2 = dy.reshape(x2.shape)                                       # [N, C]
    rows = (layernorm_kernel.layernorm_backward if use_numba(dy2, x2, gamma)
            else layernorm_backward_reference)
    dx, dgamma, dbeta = rows(dy2, x2, mean, rstd, gamma)
    return dx.reshape(shape), dgamma, dbeta


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("layernorm", layernorm_forward, layernorm_backward,
                      lambda rng: {"x": rng.standard_normal((2, 3, 6)),
                                   "gamma": rng.standard_normal(6),
                                   "beta": rng.standard_normal(6)}),
    ]
