"""Softmax + cross-entropy, fused: the mean negative log-likelihood of the targets.

    L = (1 / |S|) sum_{n in S} ( logsumexp(z_n) - z_{n, y_n} ),   S = {n : y_n != ignore_index}

    dL/dz_n = (softmax(z_n) - onehot(y_n)) / |S|     for n in S, and 0 otherwise.

Fusing the two avoids ever forming log(softmax) (which underflows) and gives the famously
simple gradient "probabilities minus one-hot". Chapter 03, section "Cross-entropy".
"""

from __future__ import annotations

from tinylm.backend import get_array_module
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import cross_entropy as ce_kernel


def _check_targets(targets, vocab_size: int, ignore_index: int):
    xp = get_array_module(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class ids, got {targets.dtype}.")
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= vocab_size))
    if bool(bad.any()):
        first = int(targets[xp.argmax(bad)])
        raise ValueError(f"cross_entropy: target id {first} is outside [0, {vocab_size}); "
                         "the model's vocabulary is smaller than the data's.")


def cross_entropy_forward(logits, targets, ignore_index: int = -100):
    """logits [..., V], targets [...] int -> (scalar mean loss, cache)."""
    xp = get_array_module(logits)
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"cross_entropy: logits {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}.")
    V = logits.shape[-1]
    _check_targets(targets, V, ignore_index)
    z = logits.reshape(-1, V)                                      # [N, V]
    y = targets.reshape(-1)                                        # [N]
    row_loss, probs = ce_kernel.cross_entropy_forward(z, y, ignore_index)  # [N], [N, V]
    count = int((y != ignore_index).sum())
    if count == 0:
        raise ValueError("cross_entropy: every target equals ignore_index, so the mean "
                         "loss is undefined; check the padding of the batch.")
    loss = row_loss.sum() / count
    return xp.asarray(loss, dtype=logits.dtype), (probs, y, count, ignore_index, logits.shape)


def cross_entropy_backward(dloss, cache):
    """dloss: scalar upstream gradient (1.0 for a loss) -> dlogits [..., V]."""
    xp = get_array_module(cache[0])
    probs, y, count, ignore_index, shape = cache
    scale = xp.asarray(dloss, dtype=probs.dtype) / count
    row_grad = xp.where(y != ignore_index, scale, 0).astype(probs.dtype)  # [N]
    dz = ce_kernel.cross_entropy_backward(probs, y, row_grad, ignore_index)
    return dz.reshape(shape)


def _padded_targets(rng, batch: int, length: int, vocab_size: int):
    targets = rng.integers(0, vocab_size, size=(batch, length))   # [B, T]
    targets[:, ::3] = -100                                         # padding: ignored
    return targets


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/checks.py)."""
    return [
        GradcheckCase("cross_entropy", cross_entropy_forward, cross_entropy_backward,
                      lambda rng: {"logits": rng.standard_normal((5, 7)),
                                   "targets": rng.integers(0, 7, size=5)}),
        GradcheckCase("cross_entropy[ignore_index, 3-D]", cross_entropy_forward,
                      cross_entropy_backward,
                      lambda rng: {"logits": 2.0 * rng.standard_normal((2, 4, 6)),
                                   "targets": _padded_targets(rng, 2, 4, 6),
                                   "ignore_index": -100}),
    ]
