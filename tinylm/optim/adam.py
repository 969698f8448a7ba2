"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as ``torch.optim``.

Adam keeps exponential moving averages of the gradient and of its square (elementwise),
starting from m_0 = v_0 = 0. At step t = 1, 2, ... with gradient g_t:

    m_t = beta1 m_{t-1} + (1 - beta1) g_t              first moment (momentum)
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2            second moment (per-weight scale)
    m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)         bias correction
    theta_t = theta_{t-1} - eta * m_hat / (sqrt(v_hat) + eps)

Bias correction: unrolling, m_t = (1 - beta1) sum_{k=1..t} beta1^(t-k) g_k, so if the g_k
share a mean E[g] then E[m_t] = (1 - beta1^t) E[g]; dividing by 1 - beta1^t removes the
pull towards the zero initialisation (likewise for v_t). Without it the first steps of
Adam with beta2 = 0.999 are up to ~6x larger than eta (chapter 04 derives and plots this).

Weight decay, two different things:

* ``Adam(weight_decay=lambda)``: the L2 penalty (lambda/2)||theta||^2 is added to the loss,
  i.e. g_t <- g_t + lambda theta_{t-1} before the moments. The decay is then divided by
  sqrt(v_hat) like the rest of the gradient, so weights with large gradients are barely
  decayed.
* ``AdamW(weight_decay=lambda)``: decoupled decay, applied to the weights directly,
  theta <- theta - eta lambda theta  (i.e. theta *= 1 - eta lambda), then the Adam update
  above with the plain gradient. Every weight shrinks at the same relative rate.

In the code, with bias1 = 1 - beta1^t and bias2 = 1 - beta2^t, the last line is written

    theta -= (eta / bias1) m / (sqrt(v) / sqrt(bias2) + eps)

The update runs in place, so a step allocates nothing new: ``adam_update_reference`` makes
array passes (NumPy or CuPy) through one scratch array; on C-contiguous NumPy arrays the
numba kernel of tinylm/kernels/adam.py makes one pass, in the same order of operations.
"""

from __future__ import annotations

import math

from tinylm.backend import get_array_module, use_numba
from tinylm.kernels import adam as adam_kernel
from tinylm.optim.optimizer import Optimizer, _check_nonnegative, check_same_shape


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


def adam_update(p, g, m, v, scratch, lr, beta1, beta2, eps, weight_decay, decoupled: bool,
                t: int) -> None:
    """Update p, m, v in place (numba on contiguous NumPy arrays, else the reference)."""
    check_same_shape("adam_update", p, g=g, m=m, v=v)      # the kernel checks no bounds
    arrays = (p, g, m, v)
    if use_numba(*arrays) and all(a.flags.c_contiguous for a in arrays):
        adam_kernel.adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, t)
        return
    adam_update_reference(p, g, m, v, scratch, lr, beta1, beta2, eps, weight_decay,
                          decoupled, t)


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) with L2 decay."""

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _check_hyperparameters(self, group: dict) -> None:
        super()._check_hyperparameters(group)
        name = type(self).__name__
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas={betas} is invalid; give two numbers in [0, 1), "
                             "e.g. (0.9, 0.999).")
        _check_nonnegative(name, "eps", group["eps"])

    def _state_names(self, group: dict) -> tuple:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, p, state: dict, group: dict, t: int) -> None:
        (beta1, beta2), wd = group["betas"], group["weight_decay"]
        adam_update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], self._scratch(p),
                    group["lr"], beta1, beta2, group["eps"], wd, self.decoupled_weight_decay, t)


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2): Adam with
    decoupled weight decay, theta *= 1 - lr * weight_decay before each Adam step."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
