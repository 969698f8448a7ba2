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

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check layernorm my_layernorm.py
"""

import numpy as np


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """x [N, C], gamma [C], beta [C] -> (y [N, C], cache).

    y = gamma * xhat + beta with xhat = (x - mu) / sqrt(var + eps), mu and var the mean
    and the biased variance of each row. Cache what the backward needs (xhat, rstd, gamma).
    """
    # TODO: mu, var (biased: divide by C) and rstd of each row, then xhat
    # and y. keepdims=True keeps the per-row values [N, 1].
    raise NotImplementedError("layernorm_forward")


def layernorm_backward(dy, cache):
    """dy [N, C] -> (dx [N, C], dgamma [C], dbeta [C]).

    With g = gamma * dy:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (means over
    each row's C features);  dgamma = sum over rows of dy * xhat;  dbeta = sum of dy.
    """
    # TODO: dbeta and dgamma (sums over the rows), then dx with
    # g = gamma * dy and the two per-row means.
    raise NotImplementedError("layernorm_backward")
