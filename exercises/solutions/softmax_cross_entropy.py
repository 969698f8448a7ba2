"""Exercise softmax_cross_entropy (chapter 03, section 5): softmax, and cross-entropy fused
with softmax.

Softmax of each row z [V] of logits z [N, V]:

    m = max_j z_j                      (subtracting it changes nothing mathematically,
    p_j = exp(z_j - m) / sum_k exp(z_k - m)       and keeps exp from overflowing)

Its backward applies the Jacobian dp_i/dz_j = p_i ([i == j] - p_j) to dp = dL/dp:

    dz_j = p_j (dp_j - sum_k p_k dp_k)

Cross-entropy of logits z [N, V] against integer targets y [N], averaged over the rows:

    loss = (1/N) sum_n ( logsumexp(z_n) - z_{n, y_n} ),
    logsumexp(z_n) = m_n + log sum_k exp(z_nk - m_n)

Fused with the softmax its gradient is "probabilities minus one-hot", scaled by the
upstream gradient dloss (a float; 1.0 when the loss is the end of the computation):

    dz_nj = dloss / N * (p_nj - [j == y_n])

Computing log(softmax(z)) instead underflows: log of a probability that rounded to 0.

Check it with:  tinylm check softmax_cross_entropy this_file.py
"""

import numpy as np


def softmax_forward(z):
    """z [N, V] -> (p [N, V], cache): each row of p is the softmax of that row of z.

    Subtract each row's maximum before exp. The cache is what softmax_backward needs (p).
    """
    shifted = z - z.max(axis=-1, keepdims=True)          # [N, V], each row's max is 0
    e = np.exp(shifted)                                  # [N, V]
    p = e / e.sum(axis=-1, keepdims=True)                # [N, V], rows sum to 1
    return p, p


def softmax_backward(dp, cache):
    """dp [N, V] -> dz [N, V]:  dz_j = p_j (dp_j - sum_k p_k dp_k), row by row."""
    p = cache
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True))


def cross_entropy_forward(logits, targets):
    """logits [N, V], targets [N] int -> (loss, cache).

    loss = (1/N) sum_n (logsumexp(logits_n) - logits_{n, targets_n}), a float. Keep the
    probabilities p [N, V] in the cache: the backward is p minus the one-hot targets.
    """
    N = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)                            # [N, 1]
    log_sum_exp = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))   # [N]
    target_logits = logits[np.arange(N), targets]                    # [N]
    loss = (log_sum_exp - target_logits).mean()
    probs = np.exp(logits - log_sum_exp[:, None])                    # [N, V], softmax
    return loss, (probs, targets)


def cross_entropy_backward(dloss, cache):
    """dloss (a float) -> dlogits [N, V] = dloss / N * (p - onehot(targets))."""
    probs, targets = cache
    N = probs.shape[0]
    dlogits = probs.copy()                                           # [N, V]
    dlogits[np.arange(N), targets] -= 1.0
    return dlogits * (dloss / N)
