"""Exercise layernorm (chapter 03, section 6): layer normalisation, forward and backward.

Shapes: x [N, C], gamma [C], beta [C] -> y [N, C]; each row is normalised over its C
features.

Forward, per row (the biased variance, divided by C, as PyTorch):

    mu   = mean_c x_c
    var  = mean_c (x_c - mu)^2
    rstd = 1 / sqrt(var + eps)
    xhat = (x - mu) * rstd              (mean 0, variance ~1)
    y    = gamma * xhat + beta

Backward, given dy [N, C]; with g = gamma * dy (the gradient reaching xhat), per row:

    dbeta  = sum_n dy_n                 (over the rows)
    dgamma = sum_n dy_n * xhat_n
    dx     = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))

The two means come from mu and var depending on every x_c of the row:
d xhat_c / d x_k = rstd (delta_ck - 1/C - xhat_c xhat_k / C).

Check it with:  tinylm check layernorm this_file.py
"""

import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """x [N, C], gamma [C], beta [C] -> (y [N, C], cache).

    y = gamma * xhat + beta with xhat = (x - mu) / sqrt(var + eps), mu and var the mean
    and the biased variance of each row. Cache what the backward needs (xhat, rstd, gamma).
    """
    mu = x.mean(axis=1, keepdims=True)                   # [N, 1]
    centred = x - mu                                     # [N, C]
    var = (centred ** 2).mean(axis=1, keepdims=True)     # [N, 1]
    rstd = 1.0 / np.sqrt(var + eps)                      # [N, 1]
    xhat = centred * rstd                                # [N, C]
    y = gamma * xhat + beta                              # [N, C]
    return y, (xhat, rstd, gamma)


def layernorm_backward(dy, cache):
    """dy [N, C] -> (dx [N, C], dgamma [C], dbeta [C]).

    With g = gamma * dy:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (means over
    each row's C features);  dgamma = sum over rows of dy * xhat;  dbeta = sum of dy.
    """
    xhat, rstd, gamma = cache
    dbeta = dy.sum(axis=0)                               # [C]
    dgamma = (dy * xhat).sum(axis=0)                     # [C]
    g = dy * gamma                                       # [N, C], dL/dxhat
    dx = rstd * (g - g.mean(axis=1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=1, keepdims=True))   # [N, C]
    return dx, dgamma, dbeta
