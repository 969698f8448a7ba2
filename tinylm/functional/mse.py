"""Mean squared error: L = (1/N) sum_i (pred_i - target_i)^2, dL/dpred = 2 (pred - target) / N.

Both arguments are differentiable; d/dtarget = -d/dpred. Chapter 03, section "Losses".
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase


def mse_forward(pred, target):
    """pred [...], target [same shape] -> (scalar mean loss, cache)."""
    if pred.shape != target.shape:
        raise ValueError(f"mse: prediction {pred.shape} and target {target.shape} differ in shape.")
    diff = pred - target
    return (diff * diff).mean(), (diff,)


def mse_backward(dloss, cache):
    """dloss: scalar upstream gradient -> (dpred [...], dtarget [...])."""
    (diff,) = cache
    xp = get_array_module(diff)
    dpred = diff * xp.asarray(2.0 * dloss / diff.size, dtype=diff.dtype)   # keeps diff's dtype
    return dpred, -dpred


def gradcheck_cases():
    """This module's entry in ``tinylm gradcheck``: both arguments are checked."""
    return [
        GradcheckCase("mse", mse_forward, mse_backward,
                      lambda rng: {"pred": rng.standard_normal((3, 4)),
                                   "target": rng.standard_normal((3, 4))}),
    ]
