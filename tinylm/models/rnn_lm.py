"""Recurrent language models: embedding -> RNN/LSTM/GRU stack -> linear -> softmax.

    e_t = E[x_t]                                   E: [V, d]      (embedding)
    h_t^(l) = cell(h_t^(l-1), h_{t-1}^(l))         l = 1..L,  h_t^(0) = e_t  (dropout between)
    z_t = h_t^(L) W_out + b_out                    W_out: [H, V]  (or E^T when tied)
    p(x_{t+1} | x_<=t) = softmax(z_t)

This is the model of Zaremba et al. 2014 ("Recurrent neural network regularization"), whose
"small" configuration (2 x 200 LSTM, no dropout) tinylm reproduces on Penn Treebank; with
``dropout`` > 0 it applies dropout to the non-recurrent connections as they do (after the
embedding, between layers, before the output layer). ``tie_weights`` shares E with the output
layer (Press & Wolf 2017; Inan et al. 2017), which needs n_hidden == n_embd.

Training is truncated backpropagation through time: the model is ``stateful``. Each forward
starts from the state the previous forward ended in (zeros after ``reset_state()``) and keeps
its own final state as a plain array for the next call, so no gradient crosses the batch
boundary. With sequential batches (row b of batch k+1 continues row b of batch k) the model
sees an unbroken stream, as in the standard PTB set-up.

When the vocabulary is smaller than the T * B tokens of a batch (character-level models),
the embedding and the first layer's input projection fold into one table,
x_t W_x + b = (E W_x + b)[x_t], computed once per batch (tinylm/nn/recurrent.py); this needs
no dropout on the embedding, so with dropout it is used in evaluation only.

Internally everything is time-major ([T, B, ...]: each step's rows contiguous); logits are
returned as a [B, T, V] view. Chapter 06; layers in tinylm/nn/recurrent.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.backend import default_rng, derive_seed
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.pooling import pool_backward, pool_forward
from tinylm.models.base import LanguageModel, check_positive, check_probability
from tinylm.nn import init
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.parameter import Parameter
from tinylm.nn.quantized import (QuantizedEmbedding, QuantizedLinear,
                                 refuse_backward_if_quantized)
from tinylm.nn.recurrent import GRU, LSTM, RNN


@dataclass
class RecurrentLMConfig:
    vocab_size: int = 65
    n_embd: int = 128          # d: embedding width
    n_hidden: int = 256        # H: hidden units per layer
    n_layer: int = 1           # L: stacked recurrent layers
    dropout: float = 0.0       # on the embedding, between layers and before the output layer
    tie_weights: bool = False  # output weights = embedding table (needs n_hidden == n_embd)
    init_range: float = 0.1    # > 0: every parameter ~ U(-r, r) (Zaremba); 0: PyTorch defaults
    seed: int = 0              # initial weights; the dropout generators use derived seeds

    def __post_init__(self):
        check_positive(self, "vocab_size", "n_embd", "n_hidden", "n_layer")
        check_probability(self, "dropout")
        if self.init_range < 0:
            raise ValueError(f"RecurrentLMConfig.init_range={self.init_range} must be >= 0 "
                             "(0 keeps PyTorch's default initialisation).")
        if self.tie_weights and self.n_hidden != self.n_embd:
            raise ValueError(f"RecurrentLMConfig.tie_weights needs n_hidden == n_embd (got "
                             f"{self.n_hidden} and {self.n_embd}): the output layer reuses the "
                             "[V, d] embedding.")


class RecurrentLM(LanguageModel):
    """Embedding -> recurrent stack -> linear; subclasses choose the cell."""

    config_class = RecurrentLMConfig
    layer_class = LSTM
    stateful = True

    def __init__(self, config: RecurrentLMConfig):
        super().__init__()
        self.config = config
        rng = default_rng(config.seed)
        V, d, H = config.vocab_size, config.n_embd, config.n_hidden
        self.embedding = Embedding(V, d, rng=rng)
        # time-major [T, B, .] activations: the batch's rows are axis 1 of every mask
        self.drop_in = Dropout(config.dropout, seed=derive_seed(config.seed, 1), batch_axis=1)
        self.rnn = self.layer_class(d, H, config.n_layer, dropout=config.dropout,
                                    batch_first=False, rng=rng, seed=derive_seed(config.seed, 2))
        self.drop_out = Dropout(config.dropout, seed=derive_seed(config.seed, 1000),
                                batch_axis=1)
        if not config.tie_weights:
            self.w_out = Parameter(init.uniform_fan_in((H, V), H, rng))            # [H, V]
        self.b_out = Parameter(init.uniform_fan_in((V,), H, rng))                  # [V]
        if config.init_range > 0:
            for p in self.parameters():
                p.assign(rng.uniform(-config.init_range, config.init_range,
                                     size=p.shape).astype(p.dtype))
        self._carry = None                # the state carried to the next forward
        self._head_cache = None

    @property
    def context_size(self):
        return None                      # the state summarises an unbounded context

    def output_weight(self):
        """W_out [H, V]: its own matrix, or the transposed embedding when tied."""
        return self.embedding.weight.data.T if self.config.tie_weights else self.w_out.data

    def reset_state(self) -> None:
        self._carry = None

    # -- computation --------------------------------------------------------------------------
    def _run(self, idx, state):
        """idx [B, T] -> (logits [T, B, V] time-major, final state); caches for backward."""
        if idx.ndim != 2:
            raise ValueError(f"{type(self).__name__}: idx must be [batch, time] token ids, "
                             f"got shape {idx.shape}.")
        T, B = idx.shape[1], idx.shape[0]
        self._folded = (self.config.vocab_size <= T * B and isinstance(self.embedding, Embedding)
                        and not (self.training and self.drop_in.p > 0))
        if self._folded:        # layer 0 looks up (E W_x + b)[ids]: see forward_from_ids
            hs, state = self.rnn.forward_from_ids(idx.T, self.embedding.weight.data, state)
        else:
            x = self.drop_in.forward(self.embedding.forward(idx.T))  # [T, B, d]
            hs, state = self.rnn.forward(x, state)                  # [T, B, H]
        hs = self.drop_out.forward(hs).reshape(T * B, -1)           # [T*B, H]: one big matmul
        return self._output_layer(hs).reshape(T, B, -1), state      # [T, B, V]

    def _output_layer(self, hs):
        """hs [N, H] -> logits hs W_out + b_out [N, V]; a quantised W_out or tied table
        (tinylm/compress/quantize.py) computes its own product."""
        head = self.embedding if self.config.tie_weights else self.w_out
        if isinstance(head, (QuantizedEmbedding, QuantizedLinear)):
            logits = head.attend(hs) if self.config.tie_weights else head.forward(hs)
            logits += self.b_out.data
            return logits
        logits, self._head_cache = linear_forward(hs, self.output_weight(), self.b_out.data)
        return logits

    def forward(self, idx, targets=None):
        """idx [B, T] -> (logits [B, T, V], mean loss or None). Starts from the carried state
        and carries the final one (truncated BPTT); ``reset_state()`` starts afresh."""
        self.check_batch(idx, targets)        # before the carried state moves on
        self._check_carry(idx)
        logits, state = self._run(idx, self._carry)
        self._carry = self._detach(state)
        loss = self._loss(logits, None if targets is None else targets.T)   # time-major
        return logits.transpose(1, 0, 2), loss

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into every parameter's grad (within the window: the
        carried state is a constant)."""
        refuse_backward_if_quantized(self)
        dlogits = self._dlogits(dloss)                              # [T, B, V]
        T, B, V = dlogits.shape
        dhs, dW, db = linear_backward(dlogits.reshape(T * B, V), self._head_cache)  # [T*B, H]
        if self.config.tie_weights:
            self.embedding.weight.accumulate(dW.T)
        else:
            self.w_out.accumulate(dW)
        self.b_out.accumulate(db)
        dhs = self.drop_out.backward(dhs.reshape(T, B, -1))         # [T, B, H]
        if self._folded:                                            # dL/d(initial state) dropped
            dE, _ = self.rnn.backward_to_embedding(dhs)
            self.embedding.weight.accumulate(dE)
        else:
            dx, _ = self.rnn.backward(dhs)
            self.embedding.backward(self.drop_in.backward(dx))

    # -- one vector per text (classification) ------------------------------------------------
    @property
    def feature_size(self) -> int:
        return self.config.n_hidden

    def features(self, ids, mask=None, pooling: str = "last"):
        """ids [B, T] right-padded, mask [B, T] bool or None -> [B, H]: the top layer's state
        at each text's last real token ("last": it has read the whole text) or its mean over
        the real tokens ("mean"). Starts from the zero state; nothing is carried."""
        if pooling not in ("last", "mean"):
            raise ValueError(f"a recurrent model pools with 'last' or 'mean', not {pooling!r}.")
        self.check_batch(ids)
        x = self.drop_in.forward(self.embedding.forward(ids.T))                  # [T, B, d]
        hs, _ = self.rnn.forward(x, None)                                          # [T, B, H]
        hs = self.drop_out.forward(hs).transpose(1, 0, 2)                          # [B, T, H]
        p, self._pool_cache = pool_forward(hs, mask, pooling)                      # [B, H]
        return p

    def features_backward(self, dp) -> None:
        """dp [B, H] into the model."""
        dhs = pool_backward(dp, self._pool_cache).transpose(1, 0, 2)              # [T, B, H]
        dx, _ = self.rnn.backward(self.drop_out.backward(dhs))
        self.embedding.backward(self.drop_in.backward(dx))

    def _check_carry(self, idx):
        if self._carry is None:
            return
        h = self._carry[0] if isinstance(self._carry, tuple) else self._carry
        if h.shape[1] != idx.shape[0] or h.dtype != self.b_out.dtype:
            raise ValueError(f"{type(self).__name__}: the carried state is for batch size "
                             f"{h.shape[1]} ({h.dtype}) but this batch has {idx.shape[0]} rows "
                             f"({self.b_out.dtype}); call model.reset_state() between streams.")

    @staticmethod
    def _detach(state):
        """A copy of the state that no cache refers to (the next window starts from it)."""
        return tuple(s.copy() for s in state) if isinstance(state, tuple) else state.copy()

    # -- decoding: O(1) work per new token through the recurrent state -------------------------
    def start_decoding(self, prompt):
        """prompt [B, T] -> (logits of the next token [B, V], state after the prompt)."""
        logits, state = self._run(prompt, None)
        return logits[-1], state

    def decode_step(self, next_ids, state):
        """next_ids [B] -> (logits [B, V], state after the token)."""
        logits, state = self._run(next_ids[:, None], state)
        return logits[-1], state


class RNNLM(RecurrentLM):
    """Elman (tanh) RNN language model."""

    layer_class = RNN


class LSTMLM(RecurrentLM):
    """LSTM language model (Zaremba et al. 2014)."""

    layer_class = LSTM


class GRULM(RecurrentLM):
    """GRU language model."""

    layer_class = GRU
