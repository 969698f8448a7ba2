"""A Bengio-style neural language model (Bengio et al. 2003): an MLP over a fixed window.

For each position t the previous n = ``block_size`` tokens are embedded, concatenated and
passed through one tanh hidden layer to a softmax over the vocabulary:

    e_t = [C(x_{t-n+1}); ...; C(x_t)]          C: embedding table [V+1, d]   e_t: [n d]
    h_t = tanh(e_t W1 + b1)                     W1: [n d, H]                  h_t: [H]
                                                (dropout on h_t while training)
    z_t = h_t W2 + b2 (+ e_t W3)                W2: [H, V]                    z_t: [V]
    p(x_{t+1} | x_{t-n+1..t}) = softmax(z_t)

With ``direct=True`` the embeddings also reach the output through a linear map W3 [n d, V]
(Bengio et al.'s "direct connections", initialised to zero), computed by the same
``window_projection`` pair: a per-position table of logit contributions of each character,
which the hidden units then need not learn.

Positions near the start of a window have fewer than n real predecessors; the missing ones
are filled with an extra "padding" row of the table (id V), learned like any other. With
``token_dropout`` > 0, training also replaces each context token by that padding id with
this probability (``TokenDropout``): the model learns to predict from contexts with holes,
a regulariser in the spirit of an n-gram model's back-off.

The embedding, concatenation and first matmul are one functional pair,
``window_projection`` (tinylm/functional/window_projection.py), which computes exactly
e_t W1 but without forming e_t: see its docstring for why that is ~30x cheaper for a
character vocabulary. Chapter 03 (the network) and chapter 01 (the comparison with n-grams).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.backend import default_rng, derive_seed, get_array_module
from tinylm.functional.activations import tanh_backward, tanh_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.window_projection import (window_projection_backward,
                                                 window_projection_forward)
from tinylm.models.base import LanguageModel, check_positive, check_probability
from tinylm.nn import init
from tinylm.nn.dropout import Dropout, TokenDropout
from tinylm.nn.parameter import Parameter


@dataclass
class MLPConfig:
    vocab_size: int = 65
    block_size: int = 8       # n: how many previous tokens the model sees
    n_embd: int = 32          # d: embedding width per token
    n_hidden: int = 512       # H: hidden units
    embd_std: float = 1.0     # initial embedding scale
    dropout: float = 0.0      # inverted dropout on the hidden layer, in training mode only
    token_dropout: float = 0.0  # probability of replacing a context token by the padding id
    direct: bool = False      # direct connections: logits also get e_t W3
    seed: int = 0             # initial weights; dropout and token dropout use derived seeds

    def __post_init__(self):
        check_positive(self, "vocab_size", "block_size", "n_embd", "n_hidden")
        check_probability(self, "dropout", "token_dropout")


class MLPLM(LanguageModel):
    """Embedding -> concatenate n -> Linear -> tanh -> Linear -> softmax cross-entropy."""

    config_class = MLPConfig
    renamed_keys = {"context": "block_size", "embd": "n_embd", "hidden": "n_hidden"}

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        rng = default_rng(config.seed)
        V, n, d, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.wte = Parameter(init.normal((V + 1, d), config.embd_std, rng))        # [V+1, d]
        self.w_hidden = Parameter(init.uniform_fan_in((n * d, H), n * d, rng))    # [n d, H]
        self.b_hidden = Parameter(init.uniform_fan_in((H,), n * d, rng))          # [H]
        self.w_out = Parameter(init.uniform_fan_in((H, V), H, rng))               # [H, V]
        self.b_out = Parameter(init.uniform_fan_in((V,), H, rng))                 # [V]
        if config.direct:
            self.w_direct = Parameter(init.zeros((n * d, V)))                     # [n d, V]
        self.dropout = Dropout(config.dropout, seed=derive_seed(config.seed, 0))
        self.token_dropout = TokenDropout(config.token_dropout, seed=derive_seed(config.seed, 1))

    def forward(self, idx, targets=None):
        """idx [B, T] -> logits [B, T, V] (and the mean loss if targets [B, T] are given)."""
        self.check_batch(idx, targets)                  # the padding id V is not an input
        xp = get_array_module(self.wte.data)
        B, T = idx.shape
        pad = xp.full((B, self.config.block_size - 1), self.config.vocab_size, dtype=idx.dtype)
        padded = xp.concatenate([pad, idx], axis=1)                        # [B, T+n-1]
        padded = self.token_dropout.forward(padded, self.config.vocab_size)  # training only
        pre, proj_cache = window_projection_forward(                      # [B, T, H]
            padded, self.wte.data, self.w_hidden.data, self.b_hidden.data)
        h, tanh_cache = tanh_forward(pre)                                  # [B, T, H]
        h = self.dropout.forward(h)                                        # [B, T, H]
        logits, out_cache = linear_forward(h, self.w_out.data, self.b_out.data)  # [B, T, V]
        direct_cache = None
        if self.config.direct:
            no_bias = xp.zeros(self.config.vocab_size, dtype=logits.dtype)
            skip, direct_cache = window_projection_forward(                # [B, T, V]
                padded, self.wte.data, self.w_direct.data, no_bias)
            logits += skip
        self._caches = (proj_cache, tanh_cache, out_cache, direct_cache)
        return logits, self._loss(logits, targets)

    def backward(self, dloss=1.0):
        """Back-propagate the last loss; accumulates every parameter's gradient."""
        dlogits = self._dlogits(dloss)                                     # [B, T, V]
        proj_cache, tanh_cache, out_cache, direct_cache = self._caches
        if direct_cache is not None:
            dC_direct, dW3, _ = window_projection_backward(dlogits, direct_cache)
            self.wte.accumulate(dC_direct)
            self.w_direct.accumulate(dW3)
        dh, dW2, db2 = linear_backward(dlogits, out_cache)                 # [B, T, H]
        dh = self.dropout.backward(dh)                                     # [B, T, H]
        dpre = tanh_backward(dh, tanh_cache)                               # [B, T, H]
        dC, dW1, db1 = window_projection_backward(dpre, proj_cache)       # [V+1, d], ...
        self.wte.accumulate(dC)
        self.w_hidden.accumulate(dW1)
        self.b_hidden.accumulate(db1)
        self.w_out.accumulate(dW2)
        self.b_out.accumulate(db2)
