"""Exercise adam (chapter 04, sections 5 and 6): one AdamW update step.

Adam keeps two moving averages per weight, of the gradient and of its square, both starting
at zero (m_0 = v_0 = 0). AdamW adds decoupled weight decay. Step t = 1, 2, ... with the
gradient g, in this order:

    param = param * (1 - lr * weight_decay)          decoupled decay, before the Adam step
    m = beta1 m + (1 - beta1) g                      first moment (momentum)
    v = beta2 v + (1 - beta2) g^2                    second moment (elementwise square)
    m_hat = m / (1 - beta1^t)                        bias correction: m and v start at 0,
    v_hat = v / (1 - beta2^t)                        so early averages are too small
    param = param - lr * m_hat / (sqrt(v_hat) + eps)

eps is added to sqrt(v_hat), outside the square root (as PyTorch). The decay multiplies the
weights directly; it is not added to the gradient (that would be Adam's L2 penalty, which
the division by sqrt(v_hat) weakens for weights with large gradients).

Copy this file, write the body marked TODO (it raises NotImplementedError until then),
and check it with:  tinylm check adam my_adam.py  (it runs several steps next to tinylm's
AdamW and compares the weights and both moments).
"""

import numpy as np


def adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step. param, grad, m, v: arrays of one shape; t: the step number (1 for
    the first step); lr, beta1, beta2, eps, weight_decay: floats.

    Returns (param, m, v) after the step (new arrays, or the same ones updated in place).
    """
    # TODO: the six lines of the module docstring, in its order: the decay,
    # m, v, the two bias corrections, the update.
    raise NotImplementedError("adamw_step")
