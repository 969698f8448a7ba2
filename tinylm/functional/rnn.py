"""The simple (Elman) recurrent network with tanh, one step and a whole sequence (BPTT).

One step, with x_t [B, I], h_{t-1} [B, H], W_x [I, H], W_h [H, H], b [H]:

    a_t = x_t W_x + h_{t-1} W_h + b,        h_t = tanh(a_t)

Its backward, given dh_t = dL/dh_t (all the paths that reach h_t):

    da_t = dh_t (1 - h_t^2)
    dx_t = da_t W_x^T,   dh_{t-1} = da_t W_h^T,   dW_x = x_t^T da_t,   dW_h = h_{t-1}^T da_t,
    db = sum over rows of da_t

Backpropagation through time (BPTT) is the same rule applied from t = T down to 1, where
h_t feeds both the output (gradient dhs_t from above) and the next step (da_{t+1} W_h^T):

    dh_t = dhs_t + da_{t+1} W_h^T,   and the weight gradients are sums over t.

The sequence starts from a state h0 passed in (zeros when None) and ends at hs[-1], the
state to carry into the next batch; the backward returns dh0 too. Truncated BPTT carries
hs[-1] forward as a plain array and ignores dh0: the gradient stops at the batch boundary.

Because every step multiplies the gradient by W_h^T diag(1 - h_t^2), its size changes
geometrically with the distance back in time: the vanishing (or exploding) gradient.
Chapter 06 derives this and plots it.

Relation to PyTorch (torch.nn.RNN, nonlinearity="tanh"): W_x = weight_ih_l{k}.T,
W_h = weight_hh_l{k}.T, b = bias_ih_l{k} + bias_hh_l{k} (the two biases only ever appear as
a sum, so dL/d(bias_ih) = dL/d(bias_hh) = db).

Sequences are time-major, x [T, B, I], like PyTorch's default and cuDNN: each step's rows
are then one contiguous block, which the per-step matmul and kernel want. The layers in
tinylm/nn/recurrent.py accept batch-first input and transpose. The speed comes from:
x W_x + b for all T steps in one matmul before the loop (the linear pair of
tinylm/functional/linear.py, whose backward also gives dx, dW_x and db over all T * B rows
at once); per step only h W_h (into a preallocated buffer) and one fused step
(``rnn_step_forward_into`` below: the reference in array-module code, or its numba kernel in
tinylm/kernels/recurrent.py); after the loop dW_h as one matmul over all T * B rows.

The step functions (``*_step_forward_into``, ``*_step_backward_into``; no cache, so not
forward/backward pairs) write into arrays the caller allocated once per sequence. ``pre``
holds x_t W_x + b (the input projection), ``hg`` holds h_{t-1} W_h; ``dh_out`` is dL/dh_t
arriving from the layer's output, ``dh_next`` the part arriving from step t+1.

The helpers at the bottom are shared by tinylm/functional/lstm.py and gru.py.
"""

from __future__ import annotations

from typing import NamedTuple

from tinylm.backend import get_array_module, use_numba
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.gradcheck import GradcheckCase
from tinylm.kernels import recurrent as recurrent_kernel
from tinylm.kernels.threads import time_loop_blas


class RNNCellCache(NamedTuple):
    x: object           # [B, I]
    h_prev: object      # [B, H]
    W_x: object         # [I, H]
    W_h: object         # [H, H]
    h: object           # [B, H]


class RNNRecurrenceCache(NamedTuple):
    W_h: object         # [H, H]
    hs: object          # [T + 1, B, H]: hs[0] = h0, hs[t+1] = h_t


class SequenceCache(NamedTuple):
    """A whole sequence's cache (all three cells): the input projection's and the loop's."""
    projection: object  # the cache of linear_forward(x, W_x, b)
    recurrence: object  # the cell's recurrence cache


# -- one step's gate maths: reference, and the switch to the kernel --------------------------

def rnn_step_forward_reference(pre, hg, h):
    """h = tanh(pre + hg), all [B, H] (h written in place)."""
    xp = get_array_module(pre)
    h[...] = xp.tanh(pre + hg)


def rnn_step_backward_reference(dh_out, dh_next, h, dpre):
    """dpre = da = (dh_out + dh_next) (1 - h^2), all [B, H] (dpre written in place)."""
    dpre[...] = (dh_out + dh_next) * (1.0 - h * h)


def rnn_step_forward_into(pre, hg, h):
    """pre, hg [B, H] -> h [B, H] (written in place)."""
    if use_numba(pre, hg, h):
        return recurrent_kernel.rnn_step_forward(pre, hg, h)
    rnn_step_forward_reference(pre, hg, h)


def rnn_step_backward_into(dh_out, dh_next, h, dpre):
    """-> dpre [B, H] = dL/d(pre-activation) (written in place)."""
    if use_numba(dh_out, dh_next, h, dpre):
        return recurrent_kernel.rnn_step_backward(dh_out, dh_next, h, dpre)
    rnn_step_backward_reference(dh_out, dh_next, h, dpre)


def rnn_cell_forward(x, h_prev, W_x, W_h, b):
    """One step. x [B, I], h_prev [B, H] -> (h [B, H], cache)."""
    check_cell_inputs("rnn_cell", x, (h_prev,), W_x, W_h, 1)
    xp = get_array_module(x)
    pre = x @ W_x + b                                       # [B, H]
    h = xp.empty_like(h_prev)                               # [B, H]
    rnn_step_forward_into(pre, h_prev @ W_h, h)
    return h, RNNCellCache(x, h_prev, W_x, W_h, h)


def rnn_cell_backward(dh, cache):
    """dh [B, H] -> (dx, dh_prev, dW_x, dW_h, db)."""
    x, h_prev, W_x, W_h, h = cache
    xp = get_array_module(dh)
    da = xp.empty_like(h)                                   # [B, H]
    rnn_step_backward_into(dh, xp.zeros_like(dh), h, da)
    return da @ W_x.T, da @ W_h.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, W_x, W_h, b):
    """A whole sequence. x [T, B, I], h0 [B, H] or None (zeros) -> (hs [T, B, H], cache).

    The final state is hs[-1], so its gradient is simply part of dhs[-1]."""
    check_sequence_inputs("rnn", x, W_x, W_h, 1)
    pre, projection_cache = linear_forward(x, W_x, b)       # [T, B, H]: all steps, one matmul
    hs, cache = _recurrence_forward(pre, h0, W_h)
    return hs, SequenceCache(projection_cache, cache)


def rnn_backward(dhs, cache):
    """dhs [T, B, H] -> (dx [T, B, I], dh0 [B, H], dW_x, dW_h, db)."""
    projection_cache, recurrence_cache = cache
    dpre, dh0, dW_h = rnn_recurrence_backward(dhs, recurrence_cache)
    dx, dW_x, db = linear_backward(dpre, projection_cache)  # sums over all T * B rows
    return dx, dh0, dW_x, dW_h, db


def rnn_recurrence_forward(pre, h0, W_h):
    """The time loop alone, from a given input projection pre = x W_x + b [T, B, H]
    -> (hs [T, B, H], cache). (tinylm/nn/recurrent.py uses it when the input is a table
    lookup, see there.)"""
    check_recurrence_inputs("rnn_recurrence", pre, h0, W_h, 1)
    return _recurrence_forward(pre, h0, W_h)


def _recurrence_forward(pre, h0, W_h):
    xp = get_array_module(pre)
    T, B, H = pre.shape
    hs = xp.empty((T + 1, B, H), dtype=pre.dtype)           # hs[0] = h0, hs[t+1] = h_t
    hs[0] = 0 if h0 is None else h0
    hg = xp.empty((B, H), dtype=pre.dtype)                  # h_{t-1} W_h, reused every step
    with time_loop_blas():                          # BLAS threads: tinylm/kernels/threads.py
        for t in range(T):
            xp.matmul(hs[t], W_h, out=hg)
            rnn_step_forward_into(pre[t], hg, hs[t + 1])
    return hs[1:], RNNRecurrenceCache(W_h, hs)


def rnn_recurrence_backward(dhs, cache):
    """dhs [T, B, H] -> (dpre [T, B, H], dh0 [B, H], dW_h)."""
    W_h, hs = cache
    xp = get_array_module(hs)
    dhs = xp.ascontiguousarray(dhs)
    da = xp.empty_like(hs[1:])                              # dL/da_t for every step
    dh_next = xp.zeros_like(hs[0])                          # dL/dh_t arriving from step t+1
    W_hT = xp.ascontiguousarray(W_h.T)                      # a row-major copy multiplies faster
    with time_loop_blas():
        for t in reversed(range(da.shape[0])):
            rnn_step_backward_into(dhs[t], dh_next, hs[t + 1], da[t])
            xp.matmul(da[t], W_hT, out=dh_next)
    return da, dh_next, recurrent_weight_gradient(hs[:-1], da)


def gradcheck_cases():
    """This module's entries in ``tinylm gradcheck`` (tinylm/commands/gradcheck.py)."""
    return [GradcheckCase("rnn_cell", rnn_cell_forward, rnn_cell_backward,
                          lambda rng: recurrent_inputs(rng, (3, 4), 3, 1, "h_prev")),
            GradcheckCase("rnn", rnn_forward, rnn_backward,
                          lambda rng: recurrent_inputs(rng, (5, 2, 3), 4, 1, "h0")),
            GradcheckCase("rnn_recurrence", rnn_recurrence_forward, rnn_recurrence_backward,
                          lambda rng: recurrence_inputs(rng, (5, 2), 4, 1, "h0"))]


# -- shared by the three cells -------------------------------------------------------------

def check_cell_inputs(name, x, states, W_x, W_h, gates: int):
    """Clear errors for the shapes of one step's arrays."""
    H = W_h.shape[0]
    if W_x.shape[1] != gates * H or W_h.shape != (H, gates * H):
        raise ValueError(f"{name}: W_x {W_x.shape} and W_h {W_h.shape} must be [I, {gates}H] "
                         f"and [H, {gates}H] with the same H (gate blocks side by side).")
    if x.ndim != 2 or x.shape[1] != W_x.shape[0]:
        raise ValueError(f"{name}: x must be [batch, {W_x.shape[0]}], got {x.shape}.")
    for s in states:
        if s.shape != (x.shape[0], H):
            raise ValueError(f"{name}: state must be [batch, hidden] = {(x.shape[0], H)}, "
                             f"got {s.shape}.")


def check_sequence_inputs(name, x, W_x, W_h, gates: int):
    """x must be time-major [T, B, I]; returns (T, B, I)."""
    if x.ndim != 3:
        raise ValueError(f"{name}: x must be time-major [T, B, I], got shape {x.shape}; "
                         "the batch-first layers in tinylm.nn.recurrent transpose for you.")
    check_cell_inputs(name, x[0], (), W_x, W_h, gates)
    return x.shape


def recurrent_inputs(rng, x_shape, H: int, gates: int, *states, biases=("b",)):
    """Small float64 inputs for a gradient check: x, the named states [B, H], W_x, W_h and
    the biases (scaled by 0.5 so the gates are neither saturated nor linear)."""
    B, I = x_shape[-2], x_shape[-1]
    inputs = {"x": rng.standard_normal(x_shape)}
    inputs.update({name: rng.standard_normal((B, H)) for name in states})
    inputs["W_x"] = 0.5 * rng.standard_normal((I, gates * H))
    inputs["W_h"] = 0.5 * rng.standard_normal((H, gates * H))
    inputs.update({name: 0.5 * rng.standard_normal(gates * H) for name in biases})
    return inputs


def check_recurrence_inputs(name, pre, h0, W_h, gates: int):
    """pre must be time-major [T, B, G*H] with W_h [H, G*H] and h0 [B, H] (or None)."""
    H = W_h.shape[0]
    if pre.ndim != 3 or W_h.shape != (H, gates * H) or pre.shape[2] != gates * H:
        raise ValueError(f"{name}: pre must be [T, B, {gates}H] and W_h [H, {gates}H], got "
                         f"{pre.shape} and {W_h.shape}.")
    if h0 is not None and h0.shape != (pre.shape[1], H):
        raise ValueError(f"{name}: state must be [batch, hidden] = {(pre.shape[1], H)}, "
                         f"got {h0.shape}.")


def recurrence_inputs(rng, batch_shape, H: int, gates: int, *states, biases=()):
    """Small float64 inputs for checking a recurrence alone: pre [T, B, G*H], the states,
    W_h and the recurrent biases."""
    inputs = recurrent_inputs(rng, (*batch_shape, 1), H, gates, *states, biases=biases)
    del inputs["x"], inputs["W_x"]
    return {"pre": rng.standard_normal((*batch_shape, gates * H)), **inputs}


def gate_sigmoid(x):
    """The logistic sigmoid of the gates, s(x) = (1 + tanh(x / 2)) / 2 (exact and stable; the
    kernels compute it the same way)."""
    xp = get_array_module(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


def recurrent_weight_gradient(h_prev, dhg):
    """sum_t h_{t-1}^T dL/d(h_{t-1} W_h): h_prev [T, B, H], dhg [T, B, G*H] -> [H, G*H]."""
    T, B, H = h_prev.shape
    return h_prev.reshape(T * B, H).T @ dhg.reshape(T * B, -1)
