"""Exercise gru_cell (chapter 06, section 5): one step of a GRU, PyTorch's variant, forward
and backward.

Shapes: x [B, I], h_prev [B, H], W_x [I, 3H], W_h [H, 3H], b_x, b_h [3H]. The three gate
blocks sit side by side in the columns, in PyTorch's order (r, z, n):

    ax = x W_x + b_x = [ax_r, ax_z, ax_n]          [B, 3H], each block [B, H]
    ah = h_prev W_h + b_h = [ah_r, ah_z, ah_n]
    r = s(ax_r + ah_r)              reset gate
    z = s(ax_z + ah_z)              update gate
    n = tanh(ax_n + r * ah_n)       candidate: r multiplies h_prev W_hn + b_hn, after the matmul
    h = (1 - z) * n + z * h_prev

(s is the logistic sigmoid.) z weights the old state; some texts swap z and 1 - z, and Cho
et al. put r before the matmul, (r * h_prev) W_hn: a different function from PyTorch's.

Backward, given dh [B, H]:

    da_n = dh * (1 - z) * (1 - n^2)                gradient reaching ax_n + r * ah_n
    da_z = dh * (h_prev - n) * z (1 - z)
    da_r = da_n * ah_n * r (1 - r)
    dax = [da_r, da_z, da_n]                       dL/d(ax)  [B, 3H]
    dah = [da_r, da_z, da_n * r]                   dL/d(ah)  [B, 3H]
    dx = dax W_x^T      dW_x = x^T dax       db_x = sum of dax over the rows
    dh_prev = dh * z + dah W_h^T             dW_h = h_prev^T dah    db_h = sum of dah

Check it with:  tinylm check gru_cell this_file.py
"""

import numpy as np


def sigmoid(a):
    """The logistic function 1 / (1 + exp(-a)), written with tanh so that it never
    overflows: s(a) = (1 + tanh(a / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def gru_cell_forward(x, h_prev, W_x, W_h, b_x, b_h):
    """x [B, I], h_prev [B, H], W_x [I, 3H], W_h [H, 3H], b_x, b_h [3H] -> (h [B, H], cache).

    r, z, n from the three [B, H] column blocks of ax = x W_x + b_x and
    ah = h_prev W_h + b_h; h = (1 - z) n + z h_prev. Cache the inputs, r, z, n and ah_n.
    """
    H = h_prev.shape[1]
    ax = x @ W_x + b_x                                   # [B, 3H]
    ah = h_prev @ W_h + b_h                              # [B, 3H]
    r = sigmoid(ax[:, :H] + ah[:, :H])                   # [B, H] each
    z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    ah_n = ah[:, 2 * H:]
    n = np.tanh(ax[:, 2 * H:] + r * ah_n)
    h = (1.0 - z) * n + z * h_prev                       # [B, H]
    return h, (x, h_prev, W_x, W_h, r, z, n, ah_n)


def gru_cell_backward(dh, cache):
    """dh [B, H] -> (dx, dh_prev, dW_x, dW_h, db_x, db_h), each with the shape of its
    forward input."""
    x, h_prev, W_x, W_h, r, z, n, ah_n = cache
    da_n = dh * (1.0 - z) * (1.0 - n ** 2)               # [B, H]
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    da_r = da_n * ah_n * r * (1.0 - r)
    dax = np.concatenate([da_r, da_z, da_n], axis=1)         # [B, 3H]
    dah = np.concatenate([da_r, da_z, da_n * r], axis=1)     # [B, 3H]
    dx = dax @ W_x.T                                     # [B, I]
    dh_prev = dh * z + dah @ W_h.T                       # [B, H]
    dW_x = x.T @ dax                                     # [I, 3H]
    dW_h = h_prev.T @ dah                                # [H, 3H]
    return dx, dh_prev, dW_x, dW_h, dax.sum(axis=0), dah.sum(axis=0)
