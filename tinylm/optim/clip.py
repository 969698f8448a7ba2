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

from tinylm.backend import device_of, get_array_module

EPS = 1e-6     # torch's guard against dividing by a zero norm


def _sum_of_squares(params):
    """sum_p sum_i g_{p,i}^2 as a float64 0-d array on the gradients' device."""
    xp = get_array_module(params[0].grad)
    return sum(xp.vdot(p.grad.ravel(), p.grad.ravel()).astype(xp.float64) for p in params)


def global_grad_norm(params) -> float:
    """sqrt of the sum of squares of every gradient entry, over all parameters."""
    params = list(params)
    if not params:
        return 0.0
    return math.sqrt(float(_sum_of_squares(params)))


def clip_grad_norm(params, max_norm: float):
    """Scale all gradients in place so their global norm is at most ``max_norm``; return the
    norm they had before clipping (useful to log): a float on the host; on a GPU a 0-d
    device array, as ``torch.nn.utils.clip_grad_norm_`` returns a tensor, so that clipping
    never waits for the device (``float()`` of it does, when it is wanted)."""
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm: max_norm={max_norm} must be >= 0.")
    params = list(params)
    if params and device_of(params[0].grad) == "gpu":
        return _clip_on_device(params, max_norm)
    total = global_grad_norm(params)
    scale = max_norm / (total + EPS)
    if scale < 1.0 or math.isnan(scale):
        for p in params:
            p.grad *= scale
    return total


def _clip_on_device(params, max_norm: float):
    """The same on a GPU without reading the norm: every gradient is multiplied by
    min(1, scale) (by 1 it is unchanged; a NaN norm makes the scale, and so the gradients,
    NaN, as on the host)."""
    xp = get_array_module(params[0].grad)
    total = xp.sqrt(_sum_of_squares(params))                              # 0-d, float64
    scale = xp.minimum(max_norm / (total + EPS), 1.0)
    for p in params:
        p.grad *= scale.astype(p.grad.dtype)
    return total
