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

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check softmax_cross_entropy my_softmax_cross_entropy.py
"""

import numpy as np


def softmax_forward(z):
    """z [N, V] -> (p [N, V], cache): each row of p is the softmax of that row of z.

    Subtract each row's maximum before exp. The cache is what softmax_backward needs (p).
    """
    # TODO: subtract each row's max, exponentiate, divide by the row sums.
    # Hint: .max(axis=-1, keepdims=True) keeps the shape [N, 1].
    raise NotImplementedError("softmax_forward")


def softmax_backward(dp, cache):
    """dp [N, V] -> dz [N, V]:  dz_j = p_j (dp_j - sum_k p_k dp_k), row by row."""
    # TODO: dz = p * (dp - the row sums of p * dp).
    raise NotImplementedError("softmax_backward")


def cross_entropy_forward(logits, targets):
    """logits [N, V], targets [N] int -> (loss, cache).

    loss = (1/N) sum_n (logsumexp(logits_n) - logits_{n, targets_n}), a float. Keep the
    probabilities p [N, V] in the cache: the backward is p minus the one-hot targets.
    """
    # TODO: logsumexp of each row (with its max subtracted), minus the
    # target's logit, averaged over the rows; keep the softmax p.
    # Hint: logits[np.arange(N), targets] picks one logit per row.
    raise NotImplementedError("cross_entropy_forward")


def cross_entropy_backward(dloss, cache):
    """dloss (a float) -> dlogits [N, V] = dloss / N * (p - onehot(targets))."""
    # TODO: p minus one-hot(targets), times dloss / N.
    raise NotImplementedError("cross_entropy_backward")
