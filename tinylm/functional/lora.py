"""LoRA（低秩适配, low-rank adaptation; Hu et al. 2021): a frozen linear layer plus a
trainable low-rank update.

    y = x W + b + s (x A) B                 s = alpha / r

Shapes: x [..., I], W [I, O], b [O] (or none), A [I, r], B [r, O] -> y [..., O]. W and b
are the pre-trained layer's (tinylm is input-major, y = x W + b, tinylm/functional/linear.py)
and usually stay frozen; A and B are the adapter, the only tensors fine-tuning trains. Below,
all leading axes of x and dy are flattened into N rows.

Why low rank. Fine-tuning changes a weight matrix by some Delta W [I, O]. LoRA writes the
change as a product, Delta W = s A B, whose rank is at most r: every column of A B is a
combination of the r columns of A. With r << min(I, O) the adapter has r (I + O) trainable
numbers instead of the I O of full fine-tuning -- for GPT-2 small's QKV projection
(I = 768, O = 2304) and r = 8, 24,576 instead of 1,769,472 (1.4 %) -- and the optimizer's
state (AdamW's two moments) shrinks by the same factor. The bet, which the paper measures,
is that the change a downstream task needs has a low "intrinsic rank".

Forward, in the order computed; the [I, O] product A B is never formed:

    u = s (x A)                [N, I] @ [I, r] -> [N, r]
    y = x W + b + u B          [N, I] @ [I, O] + [O] + [N, r] @ [r, O] -> [N, O]

The base costs 2 N I O multiply-adds, the adapter 2 N r (I + O): a few percent for small r.

Backward, with dy = dL/dy [N, O]. Written out, y_no = sum_i x_ni W_io + b_o
+ s sum_k (sum_i x_ni A_ik) B_ko, and every term is linear in each argument:

    dL/dB_ko = sum_n dy_no s (x A)_nk         ->  dB = s (x A)^T dy = u^T dy        [r, O]
    dL/du    = dy B^T =: g                                                          [N, r]
    u = s x A, so
    dL/dA    = s x^T g                        ->  dA = s x^T (dy B^T)               [I, r]
    dL/dx    = dy W^T  (the base)  +  s g A^T ->  dx = dy W^T + s (dy B^T) A^T      [N, I]
    dW = x^T dy [I, O],  db = sum_n dy_n [O]  (the base's, as for a plain linear layer)

A frozen base (``frozen_base=True``, the usual case) needs dx, dA and dB only: dW and db
come back None and dW = x^T dy, a 2 N I O product -- half of the base's backward work -- is
never computed (linear_backward's ``weight_grads=False``).

Initialisation (tinylm/nn/lora.py): B = 0, so s A B = 0 and the adapted model starts as the
pre-trained one exactly. A is random -- Gaussian in the paper, Kaiming-uniform in Hugging
Face PEFT, U(-1/sqrt(I), 1/sqrt(I)), which tinylm uses. Both cannot start at zero: with
A = B = 0 the formulas above give dA = dB = 0, and nothing would ever move. With B = 0 only
dB is non-zero at the first step (dA carries a factor B); A starts learning once B has.

The scale s = alpha / r. With Adam each entry of B moves by about the learning rate per
step whatever the gradient's size; the r columns of x A (each O(1) under the initialisation
above) then add their r coherent contributions in u B, so the change of y per step grows like
r. Dividing by r cancels that: the paper sets alpha once (to the first r it tries) and can
then change r without retuning the learning rate; alpha itself acts like a learning-rate
multiplier for the adapter. (rsLoRA, Kalajdzievski 2023, argues for alpha / sqrt(r) at
large r.)

Merging for inference: y = x (W + s A B) + b, so W' = W + s A B [I, O] computes the same
function as a plain linear layer, with no extra cost per token (the same up to rounding:
a merged tiny GPT's float64 logits differ from the adapted one's by ~1e-15 relative).

Chapter 09, section "LoRA".
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase


class LoRALinearCache(NamedTuple):
    """What the backward of a LoRA linear layer needs."""
    x: object            # [..., I]
    A: object            # [I, r]
    B: object            # [r, O]
    u: object            # s (x A) [N, r]
    scale: object        # s, in x's dtype
    base: tuple          # linear_forward's cache of x W + b
    frozen_base: bool    # True: dW and db are neither computed nor returned


def _check_adapter(W, A, B) -> None:
    """A [I, r] and B [r, O] must fit W [I, O]."""
    if (A.ndim != 2 or B.ndim != 2 or A.shape[0] != W.shape[0] or B.shape[1] != W.shape[1]
            or A.shape[1] != B.shape[0]):
        raise ValueError(f"lora_linear: A {A.shape} and B {B.shape} do not fit W {W.shape}; "
                         f"need A [I, r] and B [r, O] for W [I, O], here I={W.shape[0]}, "
                         f"O={W.shape[1]}.")


def lora_linear_forward(x, W, b, A, B, scale: float, frozen_base: bool = False):
    """x [..., I], W [I, O], b [O] or None, A [I, r], B [r, O], s = ``scale``
    -> (y = x W + b + s (x A) B [..., O], LoRALinearCache)."""
    _check_adapter(W, A, B)
    y, base = linear_forward(x, W, b)                                  # x W + b  [..., O]
    s = x.dtype.type(scale)
    u = (x.reshape(-1, x.shape[-1]) @ A) * s                           # [N, r]
    y += (u @ B).reshape(y.shape)                                      # + s (x A) B
    return y, LoRALinearCache(x, A, B, u, s, base, frozen_base)


def lora_linear_backward(dy, cache: LoRALinearCache):
    """dy [..., O] -> (dx [..., I], dW [I, O], db [O], dA [I, r], dB [r, O]); dW and db are
    None for a frozen base, db also when there is no bias."""
    x, A, B, u, s = cache.x, cache.A, cache.B, cache.u, cache.scale
    dx, dW, db = linear_backward(dy, cache.base, weight_grads=not cache.frozen_base)
    dy2 = dy.reshape(-1, dy.shape[-1])                                 # [N, O]
    g = (dy2 @ B.T) * s                                                # s dy B^T  [N, r]
    dA = x.reshape(-1, x.shape[-1]).T @ g                              # [I, r]
    dB = u.T @ dy2                                                     # [r, O]
    dx += (g @ A.T).reshape(dx.shape)                                  # + s (dy B^T) A^T
    return dx, dW, db, dA, dB


# -- gradient checks ------------------------------------------------------------------------

def _backward_without_db(dy, cache: LoRALinearCache):
    """The backward as the checker pairs it with the floating inputs x, W, A, B of a layer
    without bias (b=None is not one of them): (dx, dW, dA, dB)."""
    dx, dW, _, dA, dB = lora_linear_backward(dy, cache)
    return dx, dW, dA, dB


def _inputs(rng, x_shape, rank, bias=True, frozen_base=False, O=4):
    I = x_shape[-1]
    return {"x": rng.standard_normal(x_shape), "W": rng.standard_normal((I, O)),
            "b": rng.standard_normal(O) if bias else None,
            "A": rng.standard_normal((I, rank)),
            "B": rng.standard_normal((rank, O)),         # not 0: dA = 0 would check nothing
            "scale": 2.0 / rank, "frozen_base": frozen_base}


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    pair = (lora_linear_forward, lora_linear_backward)
    return [
        GradcheckCase("lora_linear[2-D input, rank 1]", *pair,
                      lambda rng: _inputs(rng, (4, 5), rank=1)),
        GradcheckCase("lora_linear[3-D input, rank 3]", *pair,
                      lambda rng: _inputs(rng, (2, 3, 5), rank=3)),
        GradcheckCase("lora_linear[no bias, 3-D input, rank 2]", lora_linear_forward,
                      _backward_without_db,
                      lambda rng: _inputs(rng, (2, 3, 5), rank=2, bias=False)),
        GradcheckCase("lora_linear[frozen base, 3-D input, rank 3]", *pair,
                      lambda rng: _inputs(rng, (2, 3, 5), rank=3, frozen_base=True),
                      wrt=("x", "A", "B")),
    ]
