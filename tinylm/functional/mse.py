"""Mean squared error: L = (1/N) sum_i (pred_i - target_i)^2, dL/dpred = 2 (pred - target) / N.

Both arguments are differentiable; d/dtarget = -d/dpred. Chapter 03, section "Losses".
"""

from __future__ import annotations


def mse_forward(pred, target):
    if pred.shape != target.shape:
        raise ValueError(f"mse: prediction {pred.shape} and target {target.shape} differ in shape.")
    diff = pred - target
    return (diff * diff).mean(), (diff,)


def mse_backward(dloss, cache):
    (diff,) = cache
    dpred = (2.0 / diff.size) * dloss * diff
    return dpred, -dpred
