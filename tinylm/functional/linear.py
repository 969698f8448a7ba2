"""Linear (affine) layer: y = x W + b.

Shapes: x [..., I], W [I, O], b [O] -> y [..., O]. W is stored input-major so that the code
reads like the maths (PyTorch stores the transpose, [O, I]).

Backward, with dy = dL/dy and all leading axes flattened into N rows:

    dx = dy W^T        [N, O] @ [O, I]
    dW = x^T dy        [I, N] @ [N, O]
    db = sum_n dy_n    [O]

A frozen layer (fine-tuning, chapter 09) needs only dx: ``weight_grads=False`` skips the
dW product, a third of the backward's work.

Chapter 03, section "The linear layer".
"""

from __future__ import annotations

from tinylm.gradcheck import GradcheckCase


def linear_forward(x, W, b=None):
    """x [..., I], W [I, O], b [O] or None -> (y [..., O], cache)."""
    if x.shape[-1] != W.shape[0]:
        raise ValueError(f"linear: input has {x.shape[-1]} features but W expects "
                         f"{W.shape[0]} (W shape {W.shape}); reshape the input or resize W.")
    y = x.reshape(-1, x.shape[-1]) @ W                      # [N, O]: one 2-D matmul (BLAS);
    if b is not None:                                       # a stacked 3-D matmul is ~4x slower
        y += b
    return y.reshape(*x.shape[:-1], W.shape[1]), (x, W, b is not None)


def linear_backward(dy, cache, weight_grads: bool = True):
    """dy [..., O] -> (dx [..., I], dW [I, O], db [O] or None); dW and db are None with
    ``weight_grads=False``."""
    x, W, has_bias = cache
    dy2 = dy.reshape(-1, dy.shape[-1])                      # [N, O]
    dx = (dy2 @ W.T).reshape(x.shape)                       # [..., I]
    if not weight_grads:
        return dx, None, None
    dW = x.reshape(-1, x.shape[-1]).T @ dy2                 # [I, O]
    db = dy2.sum(axis=0) if has_bias else None              # [O]
    return dx, dW, db


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("linear", linear_forward, linear_backward,
                      lambda rng: {"x": rng.standard_normal((4, 3)),
                                   "W": rng.standard_normal((3, 5)),
                                   "b": rng.standard_normal(5)}),
        GradcheckCase("linear[no bias]", linear_forward, linear_backward,
                      lambda rng: {"x": rng.standard_normal((4, 3)),
                                   "W": rng.standard_normal((3, 5)), "b": None}),
        GradcheckCase("linear[3-D input]", linear_forward, linear_backward,
                      lambda rng: {"x": rng.standard_normal((2, 3, 4)),
                                   "W": rng.standard_normal((4, 5)),
                                   "b": rng.standard_normal(5)}),
    ]
