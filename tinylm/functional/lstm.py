"""Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et
al. 2000), one step and a whole sequence (BPTT).

One step, with x_t [B, I], h_{t-1}, c_{t-1} [B, H], W_x [I, 4H], W_h [H, 4H], b [4H] and
the four gate blocks side by side in PyTorch's order (i, f, g, o):

    a_t = x_t W_x + h_{t-1} W_h + b = [a_i, a_f, a_g, a_o]
    i_t = s(a_i)      input gate            f_t = s(a_f)      forget gate
    g_t = tanh(a_g)   candidate cell        o_t = s(a_o)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t                            (the cell: a gated sum)
    h_t = o_t * tanh(c_t)

(s is the logistic sigmoid, * the element-wise product.) The cell state c is updated
additively: the old memory is kept in proportion f and new content written in proportion i.
There is no "(1 - f)" term and no extra weight matrix producing h from c.

Backward for one step, given dh_t and dc_t arriving from step t+1 and from the output:

    dc   = dc_t + dh_t * o_t * (1 - tanh(c_t)^2)          (both paths into c_t)
    da_o = dh_t * tanh(c_t) * o_t (1 - o_t)
    da_i = dc * g_t * i_t (1 - i_t)       da_f = dc * c_{t-1} * f_t (1 - f_t)
    da_g = dc * i_t * (1 - g_t^2)
    dc_{t-1} = dc * f_t,   dh_{t-1} = da_t W_h^T,   dx_t = da_t W_x^T,
    dW_x = x_t^T da_t,     dW_h = h_{t-1}^T da_t,   db = sum over rows of da_t

dc_{t-1} = dc * f_t is the point of the LSTM: along the cell the gradient is scaled by the
forget gate only (no weight matrix, no tanh'), so with f near 1 it survives many steps.

Relation to PyTorch (torch.nn.LSTM): same gate order; W_x = weight_ih_l{k}.T,
W_h = weight_hh_l{k}.T, b = bias_ih_l{k} + bias_hh_l{k}. Sequences are time-major
[T, B, I]; see tinylm/functional/rnn.py for the layout, the speed notes and the step
functions' arguments; tinylm/kernels/recurrent.py holds the numba version of the step.
Chapter 06.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.rnn import (SequenceCache, check_cell_inputs, check_recurrence_inputs,
                                   check_sequence_inputs, gate_sigmoid, recurrence_inputs,
                                   recurrent_inputs, recurrent_weight_gradient)
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import recurrent as recurrent_kernel
from tinylm.kernels.threads import time_loop_blas


class LSTMCellCache(NamedTuple):
    x: object           # [B, I]
    h_prev: object      # [B, H]
    c_prev: object      # [B, H]
    W_x: object         # [I, 4H]
    W_h: object         # [H, 4H]
    gates: object       # [B, 4H]: i, f, g, o
    tanh_c: object      # [B, H]


class LSTMRecurrenceCache(NamedTuple):
    W_h: object         # [H, 4H]
    gates: object       # [T, B, 4H]: i, f, g, o of every step
    hs: object          # [T + 1, B, H]: hs[0] = h0, hs[t+1] = h_t
    cs: object          # [T + 1, B, H]: cs[0] = c0, cs[t+1] = c_t
    tanh_cs: object     # [T, B, H]: tanh(c_t)


# -- one step's gate maths: reference, and the switch to the kernel --------------------------

def lstm_step_forward_reference(pre, hg, c_prev, c, tanh_c, h):
    """a = pre + hg; (i, f, g, o) = (s(a_i), s(a_f), tanh(a_g), s(a_o)); c = f c_prev + i g;
    h = o tanh(c). Writes c, tanh_c, h [B, H] and the gates i, f, g, o over pre [B, 4H]."""
    xp = get_array_module(pre)
    H = c.shape[1]
    a = pre + hg                                                    # [B, 4H]
    i, f = gate_sigmoid(a[:, :H]), gate_sigmoid(a[:, H:2 * H])      # [B, H] each
    g, o = xp.tanh(a[:, 2 * H:3 * H]), gate_sigmoid(a[:, 3 * H:])
    c[...] = f * c_prev + i * g
    tanh_c[...] = xp.tanh(c)
    h[...] = o * tanh_c
    pre[:, :H], pre[:, H:2 * H], pre[:, 2 * H:3 * H], pre[:, 3 * H:] = i, f, g, o


def lstm_step_backward_reference(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
    """The step's backward (module docstring) with dh = dh_out + dh_next: writes
    dpre = (da_i, da_f, da_g, da_o) [B, 4H] and dc [B, H] (in: dL/dc_t, out: dL/dc_{t-1})."""
    H = dc.shape[1]
    i, f = gates[:, :H], gates[:, H:2 * H]
    g, o = gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dh = dh_out + dh_next                                           # [B, H]
    dct = dc + dh * o * (1.0 - tanh_c * tanh_c)                     # dL/dc_t, both paths
    dpre[:, :H] = dct * g * i * (1.0 - i)
    dpre[:, H:2 * H] = dct * c_prev * f * (1.0 - f)
    dpre[:, 2 * H:3 * H] = dct * i * (1.0 - g * g)
    dpre[:, 3 * H:] = dh * tanh_c * o * (1.0 - o)
    dc[...] = dct * f


def lstm_step_forward_into(pre, hg, c_prev, c, tanh_c, h):
    """pre [B, 4H] (in: x W_x + b, out: i, f, g, o), hg [B, 4H], c_prev [B, H]
    -> c, tanh_c, h [B, H] (written in place)."""
    if use_numba(pre, hg, c_prev, c, tanh_c, h):
        return recurrent_kernel.lstm_step_forward(pre, hg, c_prev, c, tanh_c, h)
    lstm_step_forward_reference(pre, hg, c_prev, c, tanh_c, h)


def lstm_step_backward_into(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
    """dc [B, H] (in: dL/dc_t from step t+1, out: dL/dc_{t-1}); -> dpre [B, 4H]."""
    if use_numba(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
        return recurrent_kernel.lstm_step_backward(dh_out, dh_next, dc, gates, c_prev, tanh_c,
                                                   dpre)
    lstm_step_backward_reference(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre)


def lstm_cell_forward(x, h_prev, c_prev, W_x, W_h, b):
    """One step. x [B, I], h_prev, c_prev [B, H] -> ((h, c) [B, H] each, cache)."""
    check_cell_inputs("lstm_cell", x, (h_prev, c_prev), W_x, W_h, 4)
    xp = get_array_module(x)
    gates = x @ W_x + b                                     # [B, 4H]: x W_x + b, then i, f, g, o
    c, tanh_c, h = (xp.empty_like(c_prev) for _ in range(3))
    lstm_step_forward_into(gates, h_prev @ W_h, c_prev, c, tanh_c, h)
    return (h, c), LSTMCellCache(x, h_prev, c_prev, W_x, W_h, gates, tanh_c)


def lstm_cell_backward(dout, cache):
    """dout = (dh, dc) [B, H] each (dc may be None) -> (dx, dh_prev, dc_prev, dW_x, dW_h, db)."""
    x, h_prev, c_prev, W_x, W_h, gates, tanh_c = cache
    xp = get_array_module(x)
    dh, dc = dout
    dc_prev = xp.zeros_like(c_prev) if dc is None else dc.astype(c_prev.dtype, copy=True)
    da = xp.empty_like(gates)                               # [B, 4H]
    lstm_step_backward_into(dh, xp.zeros_like(dh), dc_prev, gates, c_prev, tanh_c, da)
    return da @ W_x.T, da @ W_h.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, c0, W_x, W_h, b):
    """A whole sequence. x [T, B, I], h0, c0 [B, H] or None (zeros)
    -> ((hs, cs) [T, B, H] each, cache); the final state is (hs[-1], cs[-1])."""
    check_sequence_inputs("lstm", x, W_x, W_h, 4)
    pre, projection_cache = linear_forward(x, W_x, b)       # [T, B, 4H]: all steps, one matmul
    out, cache = _recurrence_forward(pre, h0, c0, W_h)
    return out, SequenceCache(projection_cache, cache)


def lstm_backward(dout, cache):
    """dout = (dhs, dcs) [T, B, H] each; dcs may be None (only the final state's cell is
    normally used: dcs is zero but for dcs[-1]) -> (dx [T, B, I], dh0, dc0 [B, H], dW_x,
    dW_h, db)."""
    projection_cache, recurrence_cache = cache
    da, dh0, dc0, dW_h = lstm_recurrence_backward(dout, recurrence_cache)
    dx, dW_x, db = linear_backward(da, projection_cache)    # sums over all T * B rows
    return dx, dh0, dc0, dW_x, dW_h, db


def lstm_recurrence_forward(pre, h0, c0, W_h):
    """The time loop alone, from a given input projection pre = x W_x + b [T, B, 4H]
    -> ((hs, cs), cache). (tinylm/nn/recurrent.py uses it when the input is a table
    lookup, see there.)"""
    check_recurrence_inputs("lstm_recurrence", pre, h0, W_h, 4)
    return _recurrence_forward(pre.copy(), h0, c0, W_h)


def _recurrence_forward(gates, h0, c0, W_h):
    """gates [T, B, 4H] holds x W_x + b on entry and the gate activations on return."""
    xp = get_array_module(gates)
    T, B, H = gates.shape[0], gates.shape[1], W_h.shape[0]
    hs = xp.empty((T + 1, B, H), dtype=gates.dtype)         # hs[0] = h0, hs[t+1] = h_t
    cs = xp.empty((T + 1, B, H), dtype=gates.dtype)         # cs[0] = c0, cs[t+1] = c_t
    tanh_cs = xp.empty((T, B, H), dtype=gates.dtype)        # tanh(c_t), kept for the backward
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    hg = xp.empty((B, 4 * H), dtype=gates.dtype)            # h_{t-1} W_h, reused every step
    with time_loop_blas():                          # BLAS threads: tinylm/kernels/threads.py
        for t in range(T):
            xp.matmul(hs[t], W_h, out=hg)
            lstm_step_forward_into(gates[t], hg, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1])
    return (hs[1:], cs[1:]), LSTMRecurrenceCache(W_h, gates, hs, cs, tanh_cs)


def lstm_recurrence_backward(dout, cache):
    """dout = (dhs, dcs) as for lstm_backward -> (dpre [T, B, 4H], dh0, dc0 [B, H], dW_h)."""
    W_h, gates, hs, cs, tanh_cs = cache
    xp = get_array_module(gates)
    dhs, dcs = xp.ascontiguousarray(dout[0]), dout[1]
    da = xp.empty_like(gates)                               # dL/da_t for every step
    dh_next = xp.zeros_like(hs[0])                          # dL/dh_t arriving from step t+1
    dc = xp.zeros_like(cs[0])                               # dL/dc_t arriving from step t+1
    W_hT = xp.ascontiguousarray(W_h.T)                      # a row-major copy multiplies faster
    with time_loop_blas():
        for t in reversed(range(gates.shape[0])):
            if dcs is not None:
                dc += dcs[t]
            lstm_step_backward_into(dhs[t], dh_next, dc, gates[t], cs[t], tanh_cs[t], da[t])
            xp.matmul(da[t], W_hT, out=dh_next)
    return da, dh_next, dc, recurrent_weight_gradient(hs[:-1], da)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py). The
    outputs (h, c) are checked together: the upstream gradient covers both."""
    return [GradcheckCase("lstm_cell", lstm_cell_forward, lstm_cell_backward,
                          lambda rng: recurrent_inputs(rng, (3, 4), 3, 4, "h_prev", "c_prev")),
            GradcheckCase("lstm", lstm_forward, lstm_backward,
                          lambda rng: recurrent_inputs(rng, (5, 2, 3), 3, 4, "h0", "c0")),
            GradcheckCase("lstm_recurrence", lstm_recurrence_forward, lstm_recurrence_backward,
                          lambda rng: recurrence_inputs(rng, (5, 2), 3, 4, "h0", "c0"))]
