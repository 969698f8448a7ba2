"""Exercise lstm_cell (chapter 06, section 4): one step of an LSTM, forward and backward.

Shapes: x [B, I], h_prev, c_prev [B, H], W_x [I, 4H], W_h [H, 4H], b [4H]. The four gate
blocks sit side by side in the columns, in PyTorch's order (i, f, g, o):

    a = x W_x + h_prev W_h + b = [a_i, a_f, a_g, a_o]          [B, 4H], each block [B, H]
    i = s(a_i)   input gate            f = s(a_f)   forget gate
    g = tanh(a_g) candidate cell       o = s(a_o)   output gate
    c = f * c_prev + i * g                                     the new cell state
    h = o * tanh(c)                                            the new hidden state

(s is the logistic sigmoid, * the elementwise product.) There is no "(1 - f)" term: the
old memory is kept in proportion f and new content written in proportion i.

Backward, given dh and dc (the gradients reaching h and c from later on):

    dc_total = dc + dh * o * (1 - tanh(c)^2)       both paths into c
    da_o = dh * tanh(c) * o (1 - o)
    da_i = dc_total * g * i (1 - i)                da_f = dc_total * c_prev * f (1 - f)
    da_g = dc_total * i * (1 - g^2)
    da = [da_i, da_f, da_g, da_o]                  [B, 4H]
    dx = da W_x^T    dh_prev = da W_h^T    dc_prev = dc_total * f
    dW_x = x^T da    dW_h = h_prev^T da    db = sum of da over the rows

dc_prev = dc_total * f is the point of the LSTM: along the cell the gradient is scaled by
the forget gate only, so with f near 1 it survives many steps.

Check it with:  tinylm check lstm_cell this_file.py
"""

import numpy as np


def sigmoid(a):
    """The logistic function 1 / (1 + exp(-a)), written with tanh so that it never
    overflows: s(a) = (1 + tanh(a / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def lstm_cell_forward(x, h_prev, c_prev, W_x, W_h, b):
    """x [B, I], h_prev, c_prev [B, H], W_x [I, 4H], W_h [H, 4H], b [4H]
    -> ((h, c) [B, H] each, cache).

    The gates i, f, g, o are the four [B, H] column blocks of a = x W_x + h_prev W_h + b,
    in that order. Cache what the backward needs (the inputs, the gates, tanh(c)).
    """
    H = h_prev.shape[1]
    a = x @ W_x + h_prev @ W_h + b                       # [B, 4H]
    i = sigmoid(a[:, :H])                                # [B, H] each
    f = sigmoid(a[:, H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g                               # [B, H]
    tanh_c = np.tanh(c)
    h = o * tanh_c                                       # [B, H]
    return (h, c), (x, h_prev, c_prev, W_x, W_h, i, f, g, o, tanh_c)


def lstm_cell_backward(dout, cache):
    """dout = (dh, dc), [B, H] each -> (dx, dh_prev, dc_prev, dW_x, dW_h, db), each with
    the shape of its forward input."""
    dh, dc = dout
    x, h_prev, c_prev, W_x, W_h, i, f, g, o, tanh_c = cache
    dc_total = dc + dh * o * (1.0 - tanh_c ** 2)         # [B, H]
    da_i = dc_total * g * i * (1.0 - i)
    da_f = dc_total * c_prev * f * (1.0 - f)
    da_g = dc_total * i * (1.0 - g ** 2)
    da_o = dh * tanh_c * o * (1.0 - o)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)    # [B, 4H]
    dx = da @ W_x.T                                      # [B, I]
    dh_prev = da @ W_h.T                                 # [B, H]
    dc_prev = dc_total * f                               # [B, H]
    dW_x = x.T @ da                                      # [I, 4H]
    dW_h = h_prev.T @ da                                 # [H, 4H]
    db = da.sum(axis=0)                                  # [4H]
    return dx, dh_prev, dc_prev, dW_x, dW_h, db
