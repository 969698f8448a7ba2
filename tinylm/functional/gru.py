"""Gated recurrent unit (Cho et al. 2014), in PyTorch's variant, one step and a whole
sequence (BPTT).

One step, with x_t [B, I], h_{t-1} [B, H], W_x [I, 3H], W_h [H, 3H], b_x, b_h [3H] and the
three gate blocks side by side in PyTorch's order (r, z, n):

    r_t = s(x_t W_xr + b_xr + h_{t-1} W_hr + b_hr)               reset gate
    z_t = s(x_t W_xz + b_xz + h_{t-1} W_hz + b_hz)               update gate
    n_t = tanh(x_t W_xn + b_xn + r_t * (h_{t-1} W_hn + b_hn))    candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Two conventions to know. (1) The reset gate multiplies h_{t-1} W_hn + b_hn, *after* the
matmul (PyTorch, cuDNN); Cho et al. wrote (r * h_{t-1}) W_hn, *before* it. The two are
different functions, so parity with PyTorch needs this one -- and it is why b_hn cannot be
folded into b_xn, so both bias vectors are kept. (2) z weights the *old* state (PyTorch);
some texts write h_t = z n + (1 - z) h_{t-1}, which just renames z as 1 - z.

Backward for one step, with m = h_{t-1} W_hn + b_hn and dh_t = dL/dh_t (all paths):

    da_n = dh_t * (1 - z) * (1 - n^2)         da_z = dh_t * (h_{t-1} - n) * z (1 - z)
    da_r = da_n * m * r (1 - r)
    d(x W_x + b_x) = [da_r, da_z, da_n],      d(h W_h + b_h) = [da_r, da_z, da_n * r]
    dh_{t-1} = dh_t * z + d(h W_h + b_h) W_h^T

The direct path dh_t * z is the GRU's version of the LSTM's cell: with z near 1 the gradient
passes back unchanged.

Relation to PyTorch (torch.nn.GRU): W_x = weight_ih_l{k}.T, W_h = weight_hh_l{k}.T,
b_x = bias_ih_l{k}, b_h = bias_hh_l{k}. Sequences are time-major [T, B, I]; see
tinylm/functional/rnn.py for the layout, the speed notes and the step functions' arguments;
tinylm/kernels/recurrent.py holds the numba version of the step. Chapter 06.
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


class GRUCellCache(NamedTuple):
    x: object           # [B, I]
    h_prev: object      # [B, H]
    W_x: object         # [I, 3H]
    W_h: object         # [H, 3H]
    gates: object       # [B, 3H]: r, z, n
    hn: object          # [B, H]: m = h_prev W_hn + b_hn


class GRURecurrenceCache(NamedTuple):
    W_h: object         # [H, 3H]
    gates: object       # [T, B, 3H]: r, z, n of every step
    hs: object          # [T + 1, B, H]: hs[0] = h0, hs[t+1] = h_t
    hns: object         # [T, B, H]: m_t = h_{t-1} W_hn + b_hn


# -- one step's gate maths: reference, and the switch to the kernel --------------------------

def gru_step_forward_reference(pre, hg, b_h, h_prev, hn, h):
    """r, z = s(pre + hg + b_h) (first two blocks); m = hg_n + b_hn; n = tanh(pre_n + r m);
    h = (1 - z) n + z h_prev. Writes hn = m and h [B, H] and r, z, n over pre [B, 3H]."""
    xp = get_array_module(pre)
    H = h.shape[1]
    hgb = hg + b_h                                                  # [B, 3H]
    r = gate_sigmoid(pre[:, :H] + hgb[:, :H])
    z = gate_sigmoid(pre[:, H:2 * H] + hgb[:, H:2 * H])
    hn[...] = hgb[:, 2 * H:]
    n = xp.tanh(pre[:, 2 * H:] + r * hn)
    h[...] = (1.0 - z) * n + z * h_prev
    pre[:, :H], pre[:, H:2 * H], pre[:, 2 * H:] = r, z, n


def gru_step_backward_reference(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
    """The step's backward (module docstring) with dh = dh_out + dh_next: writes
    dxg = d(x W_x + b_x), dhg = d(h W_h + b_h) [B, 3H] and dh_next = dh z [B, H], the direct
    part of dL/dh_{t-1} (the caller adds dhg W_h^T)."""
    H = hn.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dh = dh_out + dh_next                                           # [B, H]
    dan = dh * (1.0 - z) * (1.0 - n * n)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dar = dan * hn * r * (1.0 - r)
    dxg[:, :H], dxg[:, H:2 * H], dxg[:, 2 * H:] = dar, daz, dan
    dhg[:, :H], dhg[:, H:2 * H], dhg[:, 2 * H:] = dar, daz, dan * r
    dh_next[...] = dh * z


def gru_step_forward_into(pre, hg, b_h, h_prev, hn, h):
    """pre [B, 3H] (in: x W_x + b_x, out: r, z, n), hg [B, 3H] = h_prev W_h, b_h [3H]
    -> hn = h_prev W_hn + b_hn [B, H], h [B, H] (written in place)."""
    if use_numba(pre, hg, b_h, h_prev, hn, h):
        return recurrent_kernel.gru_step_forward(pre, hg, b_h, h_prev, hn, h)
    gru_step_forward_reference(pre, hg, b_h, h_prev, hn, h)


def gru_step_backward_into(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
    """-> dxg = dL/d(x W_x + b_x), dhg = dL/d(h W_h + b_h) [B, 3H]; dh_next [B, H]
    (in: dL/dh_t from step t+1, out: the direct part dL/dh_{t-1} = dh z)."""
    if use_numba(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
        return recurrent_kernel.gru_step_backward(dh_out, dh_next, gates, h_prev, hn, dxg, dhg)
    gru_step_backward_reference(dh_out, dh_next, gates, h_prev, hn, dxg, dhg)


def gru_cell_forward(x, h_prev, W_x, W_h, b_x, b_h):
    """One step. x [B, I], h_prev [B, H] -> (h [B, H], cache)."""
    check_cell_inputs("gru_cell", x, (h_prev,), W_x, W_h, 3)
    xp = get_array_module(x)
    gates = x @ W_x + b_x                                   # [B, 3H]: x W_x + b_x, then r, z, n
    hn, h = xp.empty_like(h_prev), xp.empty_like(h_prev)    # hn = h_prev W_hn + b_hn
    gru_step_forward_into(gates, h_prev @ W_h, b_h, h_prev, hn, h)
    return h, GRUCellCache(x, h_prev, W_x, W_h, gates, hn)


def gru_cell_backward(dh, cache):
    """dh [B, H] -> (dx, dh_prev, dW_x, dW_h, db_x, db_h)."""
    x, h_prev, W_x, W_h, gates, hn = cache
    xp = get_array_module(x)
    dxg, dhg = xp.empty_like(gates), xp.empty_like(gates)   # [B, 3H]
    dh_prev = xp.zeros_like(h_prev)                         # becomes the direct part dh * z
    gru_step_backward_into(dh, dh_prev, gates, h_prev, hn, dxg, dhg)
    dh_prev += dhg @ W_h.T
    return (dxg @ W_x.T, dh_prev, x.T @ dxg, h_prev.T @ dhg,
            dxg.sum(axis=0), dhg.sum(axis=0))


def gru_forward(x, h0, W_x, W_h, b_x, b_h):
    """A whole sequence. x [T, B, I], h0 [B, H] or None (zeros) -> (hs [T, B, H], cache);
    the final state is hs[-1]."""
    check_sequence_inputs("gru", x, W_x, W_h, 3)
    pre, projection_cache = linear_forward(x, W_x, b_x)     # [T, B, 3H]: all steps, one matmul
    hs, cache = _recurrence_forward(pre, h0, W_h, b_h)
    return hs, SequenceCache(projection_cache, cache)


def gru_backward(dhs, cache):
    """dhs [T, B, H] -> (dx [T, B, I], dh0 [B, H], dW_x, dW_h, db_x, db_h)."""
    projection_cache, recurrence_cache = cache
    dxg, dh0, dW_h, db_h = gru_recurrence_backward(dhs, recurrence_cache)
    dx, dW_x, db_x = linear_backward(dxg, projection_cache)  # sums over all T * B rows
    return dx, dh0, dW_x, dW_h, db_x, db_h


def gru_recurrence_forward(pre, h0, W_h, b_h):
    """The time loop alone, from a given input projection pre = x W_x + b_x [T, B, 3H]
    -> (hs [T, B, H], cache). (tinylm/nn/recurrent.py uses it when the input is a table
    lookup, see there.)"""
    check_recurrence_inputs("gru_recurrence", pre, h0, W_h, 3)
    return _recurrence_forward(pre.copy(), h0, W_h, b_h)


def _recurrence_forward(gates, h0, W_h, b_h):
    """gates [T, B, 3H] holds x W_x + b_x on entry and the gate activations on return."""
    xp = get_array_module(gates)
    T, B, H = gates.shape[0], gates.shape[1], W_h.shape[0]
    hs = xp.empty((T + 1, B, H), dtype=gates.dtype)         # hs[0] = h0, hs[t+1] = h_t
    hns = xp.empty((T, B, H), dtype=gates.dtype)            # h_{t-1} W_hn + b_hn, for the backward
    hs[0] = 0 if h0 is None else h0
    hg = xp.empty((B, 3 * H), dtype=gates.dtype)            # h_{t-1} W_h, reused every step
    with time_loop_blas():                          # BLAS threads: tinylm/kernels/threads.py
        for t in range(T):
            xp.matmul(hs[t], W_h, out=hg)
            gru_step_forward_into(gates[t], hg, b_h, hs[t], hns[t], hs[t + 1])
    return hs[1:], GRURecurrenceCache(W_h, gates, hs, hns)


def gru_recurrence_backward(dhs, cache):
    """dhs [T, B, H] -> (dpre [T, B, 3H], dh0 [B, H], dW_h, db_h)."""
    W_h, gates, hs, hns = cache
    xp = get_array_module(gates)
    dhs = xp.ascontiguousarray(dhs)
    dxg, dhg = xp.empty_like(gates), xp.empty_like(gates)   # [T, B, 3H]
    dh_next = xp.zeros_like(hs[0])                          # dL/dh_t arriving from step t+1
    recurrent = xp.empty_like(dh_next)                      # d(h W_h + b_h) W_h^T, reused
    W_hT = xp.ascontiguousarray(W_h.T)                      # a row-major copy multiplies faster
    with time_loop_blas():
        for t in reversed(range(gates.shape[0])):
            gru_step_backward_into(dhs[t], dh_next, gates[t], hs[t], hns[t], dxg[t], dhg[t])
            xp.matmul(dhg[t], W_hT, out=recurrent)
            dh_next += recurrent
    return dxg, dh_next, recurrent_weight_gradient(hs[:-1], dhg), dhg.sum(axis=(0, 1))


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    biases = ("b_x", "b_h")
    return [GradcheckCase("gru_cell", gru_cell_forward, gru_cell_backward,
                          lambda rng: recurrent_inputs(rng, (3, 4), 3, 3, "h_prev", biases=biases)),
            GradcheckCase("gru", gru_forward, gru_backward,
                          lambda rng: recurrent_inputs(rng, (5, 2, 3), 3, 3, "h0", biases=biases)),
            GradcheckCase("gru_recurrence", gru_recurrence_forward, gru_recurrence_backward,
                          lambda rng: recurrence_inputs(rng, (5, 2), 3, 3, "h0",
                                                        biases=("b_h",)))]
