"""Softmax and log-softmax over the last axis.

    p_i = exp(z_i - m) / sum_j exp(z_j - m)          (m = max_j z_j; subtracting it changes
                                                      nothing mathematically, avoids overflow)
    dz_i = p_i (dp_i - sum_j p_j dp_j)               (Jacobian  diag(p) - p p^T, applied to dp)

    log p_i = z_i - logsumexp(z)
    dz_i = dlp_i - p_i sum_j dlp_j

Chapter 03, section "Softmax".
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase


def softmax_forward(z):
    """z [..., V] -> (p [..., V], cache)."""
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


def softmax_backward(dp, cache):
    p = cache
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True))


def log_softmax_forward(z):
    """z [..., V] -> (log p [..., V], cache)."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    logp = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    return logp, logp


def log_softmax_backward(dlogp, cache):
    xp = get_array_module(dlogp)
    logp = cache
    return dlogp - xp.exp(logp) * dlogp.sum(axis=-1, keepdims=True)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("softmax", softmax_forward, softmax_backward,
                      lambda rng: {"z": 2.0 * rng.standard_normal((2, 3, 5))}),
        GradcheckCase("log_softmax", log_softmax_forward, log_softmax_backward,
                      lambda rng: {"z": 2.0 * rng.standard_normal((2, 3, 5))}),
    ]
