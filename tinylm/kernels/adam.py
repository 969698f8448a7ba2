"""The Adam / AdamW update of one parameter, in place (tinylm/optim/adam.py derives it).

With gradient g, moments m and v, step t, learning rate eta, betas b1, b2 and decay lambda:

    theta *= 1 - eta lambda          (AdamW: decoupled decay)   or   g += lambda theta (Adam: L2)
    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    theta -= (eta / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)

The reference is a handful of NumPy passes over the parameter (about ten reads and writes
of every element); the numba kernel makes one pass, in the same order of operations and
without fastmath, so both give the same numbers. For a small GPT the update was 5% of a
training step.
"""

from __future__ import annotations

import math

import numpy

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba


def adam_update_reference(p, g, m, v, scratch, lr, beta1, beta2, eps, weight_decay,
                          decoupled: bool, t: int) -> None:
    """Update p, m, v in place; ``scratch`` is a work array shaped like p."""
    xp = get_array_module(p)
    if weight_decay != 0:
        if decoupled:
            p *= 1 - lr * weight_decay                 # AdamW: theta -= eta lambda theta
        else:
            g = g + weight_decay * p                   # Adam: g += lambda theta (L2)
    m *= beta1                                         # m = b1 m + (1 - b1) g
    xp.multiply(g, 1 - beta1, out=scratch)
    m += scratch
    v *= beta2                                         # v = b2 v + (1 - b2) g^2
    xp.multiply(g, g, out=scratch)
    scratch *= 1 - beta2
    v += scratch
    xp.sqrt(v, out=scratch)                            # sqrt(v_hat) + eps
    scratch /= math.sqrt(1 - beta2 ** t)
    scratch += eps
    xp.divide(m, scratch, out=scratch)                 # theta -= (eta / bias1) m / (...)
    scratch *= lr / (1 - beta1 ** t)
    p -= scratch


if NUMBA_AVAILABLE:
    import numba

    @numba.njit(cache=True, error_model="numpy")
    def _adam_update_flat(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                          sqrt_bias2, step_scale):
        decay = 1 - lr * weight_decay
        for i in range(p.size):
            theta, grad = p[i], g[i]
            if decoupled:
                theta = theta * decay                   # decay = 1 when weight_decay = 0
            elif weight_decay != 0:
                grad = grad + weight_decay * theta
            m[i] = m[i] * beta1 + grad * (1 - beta1)
            v[i] = v[i] * beta2 + (grad * grad) * (1 - beta2)
            p[i] = theta - (m[i] / (math.sqrt(v[i]) / sqrt_bias2 + eps)) * step_scale


def adam_update(p, g, m, v, scratch, lr, beta1, beta2, eps, weight_decay, decoupled: bool,
                t: int) -> None:
    """Update p, m, v in place (numba on contiguous NumPy arrays, else the reference)."""
    arrays = (p, g, m, v)
    if use_numba(*arrays) and all(a.flags.c_contiguous for a in arrays):
        dtype = p.dtype.type
        _adam_update_flat(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                          dtype(lr), dtype(beta1), dtype(beta2), dtype(eps),
                          dtype(weight_decay), decoupled,
                          dtype(math.sqrt(1 - beta2 ** t)), dtype(lr / (1 - beta1 ** t)))
        return
    adam_update_reference(p, g, m, v, scratch, lr, beta1, beta2, eps, weight_decay,
                          decoupled, t)
