"""Inverted dropout (Srivastava et al. 2014).

Training: keep each unit with probability 1 - p and scale the survivors by 1 / (1 - p),

    u_i ~ U[0, 1),   m_i = [u_i >= p] / (1 - p),   y = x o m,   dx = dy o m

so that E[y] = x and evaluation needs no rescaling (y = x). The draws u come from a seeded
generator passed in by the caller, so runs are reproducible. Chapter 04, "Regularisation".

``dropout_mask`` is the scaled keep-mask m on its own, for callers that apply it inside a
larger step (the attention weights of tinylm/functional/attention.py); ``dropout_forward``
draws u the same way, so for one generator state both give the same m. On CPU the numba
kernel of tinylm/kernels/dropout.py forms m and y in one pass.
"""

from __future__ import annotations

from tinylm.backend import use_numba
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import dropout as dropout_kernel


def check_dropout_p(p: float, who: str = "dropout") -> None:
    """Raise unless 0 <= p < 1 (p = 1 would drop every unit and divide by zero)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{who}: p={p} must lie in [0, 1); p=1 would drop every unit.")


def _scaled_keep_mask(u, p: float):
    """u [...] uniform draws -> m [...] = [u >= p] / (1 - p), in u's dtype."""
    return (u >= p) * u.dtype.type(1.0 / (1.0 - p))


def dropout_mask(shape, p: float, rng, dtype):
    """The scaled keep-mask m [shape] of dtype ``dtype``, drawn from ``rng`` (one uniform
    per entry, as ``dropout_forward`` draws them)."""
    check_dropout_p(p)
    return _scaled_keep_mask(rng.random(shape, dtype=dtype), p)


def dropout_forward(x, p: float, rng, training: bool = True):
    """x [...] -> (y [...], cache m or None). ``rng`` is a NumPy/CuPy Generator on x's
    device; with ``training`` off or p = 0, y is x itself."""
    check_dropout_p(p)
    if not training or p == 0.0:
        return x, None
    u = rng.random(x.shape, dtype=x.dtype)                  # [...] uniform in [0, 1)
    if use_numba(x, u):
        return dropout_kernel.apply_dropout(x, u, p)        # (x o m, m), m written over u
    scaled_mask = _scaled_keep_mask(u, p)                   # [...]
    return x * scaled_mask, scaled_mask


def dropout_backward(dy, cache):
    """dy [...] -> dx = dy o m (dy itself when no mask was drawn)."""
    scaled_mask = cache
    return dy if scaled_mask is None else dy * scaled_mask


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("dropout", dropout_forward, dropout_backward,
                      lambda rng: {"x": rng.standard_normal((4, 6)), "p": 0.3, "seed": 7},
                      seeded=True),
    ]
