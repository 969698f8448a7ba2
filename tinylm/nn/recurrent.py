"""Recurrent layers: ``RNN`` (tanh), ``LSTM`` and ``GRU``, multi-layer, with dropout between
layers, around the functional pairs in tinylm/functional/{rnn,lstm,gru}.py (chapter 06).

    y, state = layer.forward(x, state=None)      # x [B, T, I] (batch_first) or [T, B, I]
    dx, dstate = layer.backward(dy, dstate=None)

    y, state = layer.forward_from_ids(ids, E, state=None)   # = forward(E[ids]), faster
    dE, dstate = layer.backward_to_embedding(dy, dstate=None)

The state has PyTorch's shapes: h [L, B, H] for RNN and GRU, a pair (h, c) of [L, B, H] for
LSTM, where L is the number of layers; ``None`` means zeros. ``forward`` returns the state
after the last step, ``backward`` the gradient with respect to the state that came in (so
truncated BPTT can stop there, and tests can check it). Layer l > 0 reads layer l-1's
outputs after dropout (none after the last layer, as in PyTorch).

Parameters of layer l, in tinylm's input-major layout (y = x W + b), and PyTorch's names:

    W_x_l{l} [I, G*H] = weight_ih_l{l}.T      W_h_l{l} [H, G*H] = weight_hh_l{l}.T
    b_x_l{l} [G*H]    = bias_ih_l{l}          b_h_l{l} [G*H]    = bias_hh_l{l}

with G = 1, 4 (i, f, g, o), 3 (r, z, n). In RNN and LSTM the two biases only ever appear as
a sum, so the layer passes b = b_x + b_h to the functional pair and both receive its
gradient db. Keeping two parameters anyway makes training follow PyTorch's exactly: an
optimizer step moves each of them, so the sum moves twice as far as a single bias would,
and each counts in the global gradient norm that clipping uses. (The GRU needs both in its
maths, see tinylm/functional/gru.py.) Initialisation as PyTorch: every weight and bias
~ U(-1/sqrt(H), 1/sqrt(H)).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tinylm.backend import DEFAULT_DTYPE, default_rng, derive_seed, get_array_module
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.gru import (gru_backward, gru_forward, gru_recurrence_backward,
                                   gru_recurrence_forward)
from tinylm.functional.lstm import (lstm_backward, lstm_forward, lstm_recurrence_backward,
                                    lstm_recurrence_forward)
from tinylm.functional.rnn import (rnn_backward, rnn_forward, rnn_recurrence_backward,
                                   rnn_recurrence_forward)
from tinylm.nn.containers import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter


class EmbeddedCache(NamedTuple):
    """Layer 0's cache in ``forward_from_ids``."""
    E: object           # [V, I] the embedding table
    W_x: object         # [I, G*H]
    lookup: object      # the cache of embedding_forward(ids, E W_x + b)
    recurrence: object  # the cell's recurrence cache


class _Recurrent(Module):
    """Shared machinery; subclasses name their functional pair, gate count and biases."""

    gates = 1                   # G: gate blocks in W_x and W_h
    n_states = 1                # arrays in the recurrent state (h; or h and c)
    sum_biases = True           # the functional pair takes one bias b = b_x + b_h
    forward_fn = staticmethod(rnn_forward)
    backward_fn = staticmethod(rnn_backward)
    recurrence_forward_fn = staticmethod(rnn_recurrence_forward)
    recurrence_backward_fn = staticmethod(rnn_recurrence_backward)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, batch_first: bool = True, rng=None, seed: int = 0):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"{type(self).__name__}: num_layers={num_layers} must be >= 1.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout = batch_first, dropout
        rng = default_rng(seed) if rng is None else rng
        bound, G, H = 1.0 / math.sqrt(hidden_size), self.gates, hidden_size

        def uniform(*shape):
            return Parameter(rng.uniform(-bound, bound, size=shape).astype(DEFAULT_DTYPE))

        for l in range(num_layers):
            I = input_size if l == 0 else hidden_size
            setattr(self, f"W_x_l{l}", uniform(I, G * H))
            setattr(self, f"W_h_l{l}", uniform(H, G * H))
            setattr(self, f"b_x_l{l}", uniform(G * H))
            setattr(self, f"b_h_l{l}", uniform(G * H))
        self.between = ModuleList([Dropout(dropout, seed=derive_seed(seed, l), batch_axis=1)
                                   for l in range(num_layers - 1)])      # on [T, B, H]
        self._caches, self._embedded = None, False

    def layer_parameters(self, l: int):
        """[W_x, W_h, b_x, b_h] of layer l."""
        return [getattr(self, f"{name}_l{l}") for name in ("W_x", "W_h", "b_x", "b_h")]

    def _functional_weights(self, l: int):
        """Layer l's arrays in the functional pair's argument order."""
        W_x, W_h, b_x, b_h = (p.data for p in self.layer_parameters(l))
        return (W_x, W_h, b_x + b_h) if self.sum_biases else (W_x, W_h, b_x, b_h)

    def _accumulate(self, l: int, grads) -> None:
        """Add the functional pair's weight gradients to layer l's parameters."""
        if self.sum_biases:                       # d(b_x + b_h) reaches both biases
            grads = (*grads, grads[-1])
        for p, g in zip(self.layer_parameters(l), grads):
            p.accumulate(g)

    # -- the state: public shape <-> one tuple per layer -----------------------------------
    def _split_state(self, state, batch: int):
        if state is None:
            return [(None,) * self.n_states] * self.num_layers
        arrays = (state,) if self.n_states == 1 else tuple(state)
        expected = (self.num_layers, batch, self.hidden_size)
        for a in arrays:
            if len(arrays) != self.n_states or tuple(a.shape) != expected:
                raise ValueError(f"{type(self).__name__}: the state must be "
                                 f"{'h' if self.n_states == 1 else '(h, c)'} of shape "
                                 f"[layers, batch, hidden] = {expected}, got "
                                 f"{[tuple(s.shape) for s in arrays]}.")
        return [tuple(a[l] for a in arrays) for l in range(self.num_layers)]

    def _join_state(self, per_layer):
        xp = get_array_module(per_layer[0][0])
        stacked = tuple(xp.stack([s[k] for s in per_layer]) for k in range(self.n_states))
        return stacked[0] if self.n_states == 1 else stacked

    # -- computation --------------------------------------------------------------------------
    def forward(self, x, state=None):
        """x [B, T, I] (batch_first) or [T, B, I] floats -> (y like x with H features, final
        state)."""
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "[batch, time, features]" if self.batch_first else "[time, batch, features]"
            raise ValueError(f"{type(self).__name__}: input must be {layout} with "
                             f"{self.input_size} features, got shape {x.shape}.")
        return self._run(x.transpose(1, 0, 2) if self.batch_first else x, state, None)

    def forward_from_ids(self, ids, embedding, state=None):
        """ids [B, T] (batch_first) or [T, B] token ids, embedding E [V, I] -> (y, final
        state), equal to forward(E[ids], state) but with layer 0's input projection folded
        into the table (see ``_embedded_forward``). Its backward is ``backward_to_embedding``."""
        return self._run(ids.T if self.batch_first else ids, state, embedding)

    def _run(self, x, state, embedding):
        """x [T, B, I] (or ids [T, B] with an embedding table E) -> (y, final state)."""
        states = self._split_state(state, x.shape[1])
        self._caches, finals, self._embedded = [], [], embedding is not None
        for l in range(self.num_layers):
            if l > 0:
                x = self.between[l - 1].forward(x)
            if l == 0 and embedding is not None:
                out, cache = self._embedded_forward(x, embedding, states[0])
            else:
                out, cache = self.forward_fn(x, *states[l], *self._functional_weights(l))
            sequences = out if self.n_states == 2 else (out,)         # hs (and cs) [T, B, H]
            x = sequences[0]
            finals.append(tuple(seq[-1] for seq in sequences))
            self._caches.append(cache)
        y = x.transpose(1, 0, 2) if self.batch_first else x
        return y, self._join_state(finals)

    def backward(self, dy, dstate=None):
        """After ``forward``. dy like forward's y; dstate: gradient of the final state
        (None = zero) -> (dx like forward's x, gradient of the initial state)."""
        self._check_backward(embedded=False)
        dx, dstate0 = self._backward(dy, dstate)
        return (dx.transpose(1, 0, 2) if self.batch_first else dx), dstate0

    def backward_to_embedding(self, dy, dstate=None):
        """After ``forward_from_ids``. dy, dstate as for ``backward`` -> (dL/dE [V, I],
        gradient of the initial state)."""
        self._check_backward(embedded=True)
        return self._backward(dy, dstate)

    def _check_backward(self, embedded: bool) -> None:
        name = type(self).__name__
        if self._caches is None:
            raise RuntimeError(f"{name}.backward() needs a forward() first.")
        if self._embedded != embedded:
            pairs = ("forward_from_ids", "backward_to_embedding", "forward", "backward")
            fwd, bwd = pairs[:2] if self._embedded else pairs[2:]
            raise RuntimeError(f"{name}: the last forward was {fwd}(); its backward is {bwd}().")

    def _backward(self, dy, dstate):
        """dy [B, T, H] or [T, B, H] -> (dL/d(layer 0's input) time-major, or dL/dE; the
        initial state's gradient); accumulates the parameters' gradients."""
        dy = dy.transpose(1, 0, 2) if self.batch_first else dy          # [T, B, H]
        dstates = self._split_state(dstate, dy.shape[1])
        dstate0 = [None] * self.num_layers
        for l in reversed(range(self.num_layers)):
            backward = self._embedded_backward if l == 0 and self._embedded else self.backward_fn
            grads = backward(self._sequence_gradients(dy, dstates[l]), self._caches[l])
            dy, dstate0[l] = grads[0], grads[1:1 + self.n_states]
            self._accumulate(l, grads[1 + self.n_states:])
            if l > 0:
                dy = self.between[l - 1].backward(dy)
        return dy, self._join_state(dstate0)

    # -- layer 0 reading an embedding table -----------------------------------------------------
    def _embedded_forward(self, ids, E, state):
        """Layer 0 when its input is a table lookup, x_t = E[ids_t]: then

            x_t W_x + b = (E W_x + b)[ids_t],

        so the input projection of all T * B positions is one [V, I] x [I, G*H] matmul and a
        gather, instead of a [T*B, I] x [I, G*H] matmul. In the backward, the gradient of
        the projected table is a scatter-add of dL/d(pre) over the ids (as an embedding's),
        and dL/dE, dL/dW_x and dL/db follow from [V, G*H]-sized products. That pays when the
        vocabulary V is smaller than the batch's T * B tokens (a character-level model)."""
        W_x, W_h, *biases = self._functional_weights(0)
        table = E @ W_x + biases[0]                                   # [V, G*H]
        pre, lookup = embedding_forward(ids, table)                   # [T, B, G*H]
        out, cache = self.recurrence_forward_fn(pre, *state, W_h, *biases[1:])
        return out, EmbeddedCache(E, W_x, lookup, cache)

    def _embedded_backward(self, dout, cache):
        """-> (dL/dE, dL/d(initial state)..., dW_x, dW_h, biases' gradients), in the order of
        the functional pair's backward but with dL/dE in place of dL/dx."""
        dpre, *rest = self.recurrence_backward_fn(dout, cache.recurrence)
        dstates, dW_h, db_h = rest[:self.n_states], rest[self.n_states], rest[self.n_states + 1:]
        dtable = embedding_backward(dpre, cache.lookup)               # [V, G*H]
        return (dtable @ cache.W_x.T, *dstates, cache.E.T @ dtable, dW_h, dtable.sum(axis=0),
                *db_h)

    def _sequence_gradients(self, dhs, dfinal):
        """The functional backward's dout: dhs (and dcs for the LSTM), with the gradient of
        the final state added at the last step."""
        xp = get_array_module(dhs)
        sequences = [dhs] + [None] * (self.n_states - 1)
        for k, d in enumerate(dfinal):
            if d is not None:
                seq = xp.zeros_like(dhs) if sequences[k] is None else sequences[k].copy()
                seq[-1] += d
                sequences[k] = seq
        return sequences[0] if self.n_states == 1 else tuple(sequences)

    def __repr__(self):
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, dropout={self.dropout}, "
                f"batch_first={self.batch_first})")


class RNN(_Recurrent):
    """Elman RNN with tanh: h_t = tanh(x_t W_x + h_{t-1} W_h + b)."""


class LSTM(_Recurrent):
    """LSTM, gates (i, f, g, o): c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."""

    gates, n_states = 4, 2
    forward_fn = staticmethod(lstm_forward)
    backward_fn = staticmethod(lstm_backward)
    recurrence_forward_fn = staticmethod(lstm_recurrence_forward)
    recurrence_backward_fn = staticmethod(lstm_recurrence_backward)


class GRU(_Recurrent):
    """GRU (PyTorch variant), gates (r, z, n): h_t = (1 - z) n + z h_{t-1}."""

    gates = 3
    sum_biases = False
    forward_fn = staticmethod(gru_forward)
    backward_fn = staticmethod(gru_backward)
    recurrence_forward_fn = staticmethod(gru_recurrence_forward)
    recurrence_backward_fn = staticmethod(gru_recurrence_backward)
