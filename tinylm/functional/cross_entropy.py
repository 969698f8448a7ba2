"""Softmax + cross-entropy, fused: the mean negative log-likelihood of the targets.

Shapes: logits z [..., V], targets y [...] int, flattened to z [N, V], y [N].

    L = (1 / |S|) sum_{n in S} loss_n,    S = {n : y_n != ignore_index}

Per row n (rows whose target is ``ignore_index`` score 0):

    m_n    = max_j z_nj                        (subtracted so that exp never overflows)
    p_nj   = exp(z_nj - m_n) / sum_k exp(z_nk - m_n)      = softmax(z_n)_j
    loss_n = m_n + log sum_k exp(z_nk - m_n) - z_{n, y_n} = logsumexp(z_n) - z_{n, y_n}

Backward, given the upstream gradient g_n of each row's loss (g_n = dL / |S| on rows in S,
0 on ignored rows):

    dz_nj = g_n * (p_nj - [j == y_n])

Fusing the two avoids ever forming log(softmax) (which underflows) and gives the famously
simple gradient "probabilities minus one-hot". The forward keeps the probabilities p [N, V]
for the backward: the exponential is the expensive part (a libm call per entry, about 3 ns,
against well under 1 ns for a multiply), so computing it once and storing it beats storing
only logsumexp and recomputing p, at the cost of one [N, V] array, the size of the logits.

Label smoothing (``label_smoothing`` = eps, PyTorch's definition): the target of row n is
the distribution q_n = (1 - eps) onehot(y_n) + eps / V (uniform), and

    loss_n = -sum_j q_nj log p_nj = (1 - eps)(-log p_{n, y_n}) + eps * mean_j(-log p_nj)
           = (1 - eps)(lse_n - z_{n, y_n}) + eps (lse_n - mean_j z_nj)

(lse_n = logsumexp(z_n); ignored rows still score 0 and the mean is still over S). Since
sum_j q_nj = 1 and d lse_n / dz_nj = p_nj, the gradient keeps its shape:

    dz_nj = g_n * (p_nj - q_nj) = g_n * (p_nj - (1 - eps)[j == y_n] - eps / V)

eps = 0 is the plain loss above and takes the same code (and kernels) as before; eps > 0
takes the array-module reference, ``cross_entropy_smoothed_*_reference``.

The row references below run on NumPy and CuPy; on NumPy arrays the numba kernels of
tinylm/kernels/cross_entropy.py compute the same rows. Chapter 03, section "Cross-entropy".
"""

from __future__ import annotations

from tinylm.backend import device_of, get_array_module, use_numba
from tinylm.functional.embedding import check_ids
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import cross_entropy as ce_kernel


def _softmax_rows(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] -> (logsumexp [N], z_{n, y_n} [N], valid [N], probs [N, V]),
    with the maximum subtracted before exp (ignored rows pick column 0, masked later)."""
    xp = get_array_module(logits)
    m = logits.max(axis=1, keepdims=True)                                # [N, 1]
    exps = xp.exp(logits - m)                                            # [N, V]
    sums = exps.sum(axis=1, keepdims=True)                               # [N, 1]
    lse = (m + xp.log(sums))[:, 0]                                       # [N]
    valid = targets != ignore_index                                      # [N]
    safe = xp.where(valid, targets, 0)                                   # [N]
    picked = xp.take_along_axis(logits, safe[:, None], axis=1)[:, 0]     # [N]
    return lse, picked, valid, exps / sums


def cross_entropy_forward_reference(logits, targets, ignore_index: int):
    """logits [N, V], targets [N] int -> (row_loss [N], probs [N, V])."""
    xp = get_array_module(logits)
    lse, picked, valid, probs = _softmax_rows(logits, targets, ignore_index)
    row_loss = xp.where(valid, lse - picked, 0).astype(logits.dtype)     # [N]
    return row_loss, probs


def _target_entries(targets, ignore_index: int):
    """(rows [N], columns [N]) of each row's target entry, an ignored row pointing at column
    0: its row_grad is 0, so subtracting it there changes nothing. Selecting the valid rows
    with a boolean mask instead would size its result from the data, which on a GPU waits
    for the device."""
    xp = get_array_module(targets)
    return xp.arange(targets.shape[0]), xp.where(targets != ignore_index, targets, 0)


def cross_entropy_backward_reference(probs, targets, row_grad, ignore_index: int):
    """probs [N, V], row_grad [N] (0 on ignored rows) -> dlogits [N, V]."""
    dlogits = probs * row_grad[:, None]                                  # [N, V]
    rows, safe = _target_entries(targets, ignore_index)
    dlogits[rows, safe] -= row_grad
    return dlogits


def cross_entropy_smoothed_forward_reference(logits, targets, ignore_index: int, eps: float):
    """logits [N, V], targets [N] int, eps in (0, 1] -> (row_loss [N], probs [N, V])."""
    xp = get_array_module(logits)
    lse, picked, valid, probs = _softmax_rows(logits, targets, ignore_index)
    nll = lse - picked                                                   # -log p_{n, y_n}
    uniform = lse - logits.mean(axis=1)                                  # mean_j -log p_nj
    row_loss = xp.where(valid, (1.0 - eps) * nll + eps * uniform, 0)     # [N]
    return row_loss.astype(logits.dtype), probs


def cross_entropy_smoothed_backward_reference(probs, targets, row_grad, ignore_index: int,
                                              eps: float):
    """probs [N, V], row_grad g [N] (0 on ignored rows) -> dlogits = g (p - q) [N, V]."""
    V = probs.shape[1]
    dlogits = (probs - eps / V) * row_grad[:, None]                      # [N, V]
    rows, safe = _target_entries(targets, ignore_index)
    dlogits[rows, safe] -= (1.0 - eps) * row_grad
    return dlogits.astype(probs.dtype)


def _check_label_smoothing(eps):
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {eps!r}.")


def _check_targets(targets, vocab_size: int, ignore_index: int):
    """Integer class ids in [0, V) or ``ignore_index``; the first bad one is named with its
    position (in targets' own shape, e.g. (b, t))."""
    check_ids(targets, vocab_size, "cross_entropy", "targets", "target id",
              "The logits have fewer classes than the data has ids: is the model's "
              "vocabulary smaller than the data's?", ignore_index=ignore_index)


def _row_losses(z, y, ignore_index: int, eps: float):
    """row_loss [N], probs [N, V]: the kernels or reference for eps = 0, else the smoothed."""
    if eps > 0.0:
        return cross_entropy_smoothed_forward_reference(z, y, ignore_index, eps)
    rows = ce_kernel.cross_entropy_forward if use_numba(z, y) else cross_entropy_forward_reference
    return rows(z, y, ignore_index)


def _target_count(y, ignore_index: int, dtype):
    """|S|, the number of targets that score: an int on the host, where a batch with none
    raises; on a GPU a device scalar of ``dtype`` (the logits', so that dividing by it
    rounds as dividing by the int does), since reading it would wait for the device, and
    such a batch's loss is then NaN (0 / 0), as PyTorch's is on CUDA."""
    count = (y != ignore_index).sum()
    if device_of(y) == "gpu":
        return count.astype(dtype)
    if count == 0:
        raise ValueError("cross_entropy: every target equals ignore_index, so the mean "
                         "loss is undefined; check the padding of the batch.")
    return int(count)


def cross_entropy_forward(logits, targets, ignore_index: int = -100,
                          label_smoothing: float = 0.0):
    """logits [..., V], targets [...] int -> (scalar mean loss, cache).

    ``label_smoothing`` eps mixes eps / V of the uniform distribution into every target (as
    ``torch.nn.functional.cross_entropy(..., label_smoothing=eps)``)."""
    xp = get_array_module(logits)
    eps = float(label_smoothing)
    _check_label_smoothing(eps)
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"cross_entropy: logits {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}.")
    V = logits.shape[-1]
    _check_targets(targets, V, ignore_index)
    z = logits.reshape(-1, V)                                      # [N, V]
    y = targets.reshape(-1)                                        # [N]
    row_loss, probs = _row_losses(z, y, ignore_index, eps)         # [N], [N, V]
    count = _target_count(y, ignore_index, logits.dtype)
    loss = row_loss.sum() / count
    return xp.asarray(loss, dtype=logits.dtype), (probs, y, count, ignore_index, logits.shape,
                                                    eps)


def cross_entropy_backward(dloss, cache):
    """dloss: scalar upstream gradient (1.0 for a loss) -> dlogits [..., V]."""
    xp = get_array_module(cache[0])
    probs, y, count, ignore_index, shape, eps = cache
    scale = xp.asarray(dloss, dtype=probs.dtype) / count
    row_grad = xp.where(y != ignore_index, scale, 0).astype(probs.dtype)  # [N]
    if eps > 0.0:
        dz = cross_entropy_smoothed_backward_reference(probs, y, row_grad, ignore_index, eps)
        return dz.reshape(shape)
    rows = (ce_kernel.cross_entropy_backward if use_numba(probs, y)
            else cross_entropy_backward_reference)
    dz = rows(probs, y, row_grad, ignore_index)                           # [N, V]
    return dz.reshape(shape)


def _padded_targets(rng, batch: int, length: int, vocab_size: int):
    targets = rng.integers(0, vocab_size, size=(batch, length))   # [B, T]
    targets[:, ::3] = -100                                         # padding: ignored
    return targets


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [
        GradcheckCase("cross_entropy", cross_entropy_forward, cross_entropy_backward,
                      lambda rng: {"logits": rng.standard_normal((5, 7)),
                                   "targets": rng.integers(0, 7, size=5)}),
        GradcheckCase("cross_entropy[ignore_index, 3-D]", cross_entropy_forward,
                      cross_entropy_backward,
                      lambda rng: {"logits": 2.0 * rng.standard_normal((2, 4, 6)),
                                   "targets": _padded_targets(rng, 2, 4, 6),
                                   "ignore_index": -100}),
        GradcheckCase("cross_entropy[label smoothing, ignore_index]", cross_entropy_forward,
                      cross_entropy_backward,
                      lambda rng: {"logits": 2.0 * rng.standard_normal((2, 4, 6)),
                                   "targets": _padded_targets(rng, 2, 4, 6),
                                   "ignore_index": -100, "label_smoothing": 0.1}),
    ]
