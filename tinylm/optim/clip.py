"""Gradient clipping by global norm (Pascanu et al. 2013), as
``torch.nn.utils.clip_grad_norm_``.

All gradients are treated as one long vector g. If its Euclidean norm exceeds max_norm,
every gradient is scaled by the same factor, so the direction is kept and only the length
shrinks:

    ||g|| = sqrt( sum_p sum_i g_{p,i}^2 )
    scale = min(1, max_norm / (||g|| + 1e-6))
    g_p <- scale * g_p                       for every parameter p

RNNs need this: the gradient through T time steps contains products of T Jacobians, which
occasionally explode and would throw the weights far away in one step (chapter 04,
"Gradient clipping"; chapter 06 for the RNN side).
"""

from __future__ import annotations

import math

from tinylm.backend import get_array_module

EPS = 1e-6     # torch's guard against dividing by a zero norm


def global_grad_norm(params) -> float:
    """sqrt of the sum of squares of every gradient entry, over all parameters."""
    params = list(params)
    if not params:
        return 0.0
    xp = get_array_module(params[0].grad)
    squares = sum(xp.vdot(p.grad.ravel(), p.grad.ravel()).astype(xp.float64) for p in params)
    return math.sqrt(float(squares))


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``; return the
    norm they had before clipping (useful to log)."""
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm: max_norm={max_norm} must be >= 0.")
    params = list(params)
    total = global_grad_norm(params)
    scale = max_norm / (total + EPS)
    if scale < 1.0 or math.isnan(scale):
        for p in params:
            p.grad *= scale
    return total
