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

Copy this file, write the bodies marked TODO (each raises NotImplementedError until
then), and check them with:  tinylm check gru_cell my_gru_cell.py
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
    # TODO: ax and ah, the gates r, z and the candidate n from their
    # column blocks, then h.
    raise NotImplementedError("gru_cell_forward")


def gru_cell_backward(dh, cache):
    """dh [B, H] -> (dx, dh_prev, dW_x, dW_h, db_x, db_h), each with the shape of its
    forward input."""
    # TODO: da_n, da_z, da_r; then dax and dah (they differ in the last
    # block); then the six gradients (dh_prev has two terms).
    raise NotImplementedError("gru_cell_backward")
