"""GPT: a decoder-only Transformer language model, laid out as GPT-2 / nanoGPT (chapter 07).

    idx [B, T] int
    x = wte[idx] + wpe[0..T-1]                 token + learned position embeddings  [B, T, D]
    x = dropout(x)
    x = Block_L(... Block_1(x))                pre-LN blocks (tinylm/nn/transformer.py)
    x = ln_f(x)                                                                     [B, T, D]
    logits = x wte^T                           tied output head (weight sharing)        [B, T, V]
    loss = mean cross-entropy(logits, targets)

Weight tying: the output head reuses the token embedding table, so wte receives two
gradients, one through the head (dlogits^T x) and one through the lookup (scatter-add).

Initialisation as nanoGPT: every weight matrix and both embeddings ~ N(0, 0.02^2), biases
0, layer norms (1, 0), and the two residual output projections (attn.c_proj, mlp.c_proj)
~ N(0, (0.02 / sqrt(2 L))^2), so that the 2L residual additions do not grow the stream.

Decoding (chapter 10) keeps a KV cache per layer: after the prompt, each new token costs
one position of work instead of a full forward over the context. Learned positions are
absolute, so once the context is longer than ``block_size`` the window slides, every
cached key belongs to a different position, and each step recomputes the last
``block_size`` tokens: exactly what the cache-free default (tinylm/models/base.py) does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinylm.backend import default_rng, derive_seed, get_array_module
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.pooling import pool_backward, pool_forward
from tinylm.functional.positional import (learned_positional_backward,
                                          learned_positional_forward)
from tinylm.models.base import LanguageModel, any_trainable, check_positive, check_probability
from tinylm.nn import init
from tinylm.nn.containers import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.linear import Linear
from tinylm.nn.parameter import Parameter
from tinylm.nn.quantized import QuantizedEmbedding, refuse_backward_if_quantized
from tinylm.nn.transformer import Block

INIT_STD = 0.02


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64       # the longest context (rows of wpe)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0       # embeddings, attention weights and both residual branches
    seed: int = 0              # initial weights and the dropout generators

    def __post_init__(self):
        check_positive(self, "vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        check_probability(self, "dropout")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_embd={self.n_embd} must be divisible by "
                             f"n_head={self.n_head} (each head gets n_embd / n_head channels).")


class GPT(LanguageModel):
    """wte [V, D], wpe [block_size, D], h = L Blocks, ln_f; logits = ln_f(x) wte^T."""

    config_class = GPTConfig

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        rng = default_rng(config.seed)
        V, T, D, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
        self.wte = Parameter(init.normal((V, D), INIT_STD, rng))                  # [V, D]
        self.wpe = Parameter(init.normal((T, D), INIT_STD, rng))                  # [T, D]
        self.drop = Dropout(config.dropout, seed=derive_seed(config.seed, 0))
        self.h = ModuleList([Block(D, config.n_head, config.dropout, rng=rng,
                                   seed=derive_seed(config.seed, 10 * (i + 1)))
                             for i in range(L)])
        self.ln_f = LayerNorm(D)
        self._init_blocks(rng)

    def _init_blocks(self, rng):
        """Every Linear of the blocks, in order: W ~ N(0, 0.02^2), or N(0, (0.02/sqrt(2L))^2)
        for the residual projections c_proj; b = 0. Layer norms keep (1, 0)."""
        proj_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for name, module in self.h.named_modules():
            if isinstance(module, Linear):
                std = proj_std if name.endswith("c_proj") else INIT_STD
                module.reset_parameters(rng, weight_std=std, zero_bias=True)

    @property
    def longest_window(self) -> int:
        return self.config.block_size                    # rows of wpe

    # -- training ---------------------------------------------------------------------------
    def forward(self, idx, targets=None):
        """idx [B, T] -> logits [B, T, V] (and the mean loss if targets [B, T] are given)."""
        self.check_batch(idx, targets)
        x = self.hidden(idx)                                                      # [B, T, D]
        logits = self._tied_head(x)                                               # [B, T, V]
        return logits, self._loss(logits, targets)

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into every parameter's ``grad``."""
        self.backward_from_logits(self._dlogits(dloss))

    def backward_from_logits(self, dlogits):
        """dlogits [B, T, V], the gradient of any loss of the last forward's logits (the
        soft targets of distillation, tinylm/compress/distill.py), into every ``grad``."""
        refuse_backward_if_quantized(self)
        dx, dwte_head, _ = linear_backward(dlogits, self._head_cache,
                                           weight_grads=self.wte.requires_grad)  # dW [D, V]
        if self.wte.requires_grad:
            self.wte.accumulate(dwte_head.T)                                      # tied head
        self.hidden_backward(dx)

    def hidden(self, idx):
        """idx [B, T] -> ln_f of the last block's states [B, T, D] (caches kept)."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"GPT: a sequence of {T} tokens is longer than block_size="
                             f"{self.config.block_size}; crop it to the last "
                             f"{self.config.block_size} tokens.")
        tok = self._token_vectors(idx)                                            # [B, T, D]
        x, self._pos_cache = learned_positional_forward(tok, self.wpe.data)      # [B, T, D]
        x = self.drop.forward(x)
        for block in self.h:
            x = block.forward(x)                                                  # [B, T, D]
        return self.ln_f.forward(x)                                               # [B, T, D]

    def hidden_backward(self, dx) -> None:
        """dx [B, T, D] into every parameter below that needs a gradient; it stops under
        the last block with a trainable parameter (a frozen bottom costs nothing)."""
        dx = self.ln_f.backward(dx)                                               # [B, T, D]
        for i in reversed(range(len(self.h))):
            if not any_trainable([*self.h[:i + 1], self.wte, self.wpe]):
                return
            dx = self.h[i].backward(dx)                                           # [B, T, D]
        if not any_trainable([self.wte, self.wpe]):
            return
        dx = self.drop.backward(dx)
        dtok, dwpe = learned_positional_backward(dx, self._pos_cache)             # [B, T, D]
        self.wpe.accumulate(dwpe)
        if self.wte.requires_grad:
            self.wte.accumulate(embedding_backward(dtok, self._tok_cache))        # lookup

    # -- one vector per text (classification) ------------------------------------------------
    @property
    def feature_size(self) -> int:
        return self.config.n_embd

    def features(self, ids, mask=None, pooling: str = "last"):
        """ids [B, T] right-padded, mask [B, T] bool or None -> [B, D]: the state of each
        text's last real token ("last": causal attention has shown it the whole text) or
        the mean over the real tokens ("mean"); tinylm/functional/pooling.py."""
        if pooling not in ("last", "mean"):
            raise ValueError(f"GPT pools with 'last' or 'mean', not {pooling!r} (its first "
                             "token has seen nothing but itself).")
        self.check_batch(ids)
        p, self._pool_cache = pool_forward(self.hidden(ids), mask, pooling)       # [B, D]
        return p

    def features_backward(self, dp) -> None:
        """dp [B, D] into the model."""
        self.hidden_backward(pool_backward(dp, self._pool_cache))

    def attention_maps(self) -> list:
        """The attention weights [B, H, T, T] of every layer from the last forward pass."""
        return [block.attn.attention_weights for block in self.h]

    # -- decoding with a KV cache -------------------------------------------------------------
    def start_decoding(self, prompt):
        """prompt [B, T] -> (logits of the next token [B, V], state with one KV cache per layer)."""
        idx = self._crop(prompt)
        caches = [block.attn.new_cache(idx.shape[0], self.config.block_size, self.wpe.data)
                  for block in self.h]
        logits = self._forward_cached(idx, caches)                                # [B, T, V]
        return logits[:, -1, :], {"caches": caches, "ids": prompt}

    def decode_step(self, next_ids, state):
        """next_ids [B] -> (logits [B, V], new state). Within block_size the new token is the
        only position computed; beyond it the window slides and is recomputed in full."""
        xp = get_array_module(state["ids"])
        ids = xp.concatenate([state["ids"], next_ids[:, None]], axis=1)          # [B, t+1]
        caches = state["caches"]
        if caches[0].length < self.config.block_size:
            logits = self._forward_cached(next_ids[:, None], caches)              # [B, 1, V]
        else:
            logits, _ = self.forward(self._crop(ids))                             # [B, T, V]
        return logits[:, -1, :], {"caches": caches, "ids": ids}

    def _forward_cached(self, idx, caches):
        """idx [B, t] new tokens at positions caches' length .. + t - 1 -> logits [B, t, V]."""
        tok = self._token_vectors(idx)                                            # [B, t, D]
        x, _ = learned_positional_forward(tok, self.wpe.data, start=caches[0].length)
        for block, cache in zip(self.h, caches):
            x = block.forward_cached(x, cache)                                    # [B, t, D]
        return self._tied_head(self.ln_f.forward(x))                              # [B, t, V]

    # -- the shared table: lookup and head -----------------------------------------------------
    def _token_vectors(self, idx):
        """idx [B, t] -> wte[idx] [B, t, D]; a quantised table (tinylm/compress/quantize.py)
        dequantises the rows it reads."""
        if isinstance(self.wte, QuantizedEmbedding):
            return self.wte.forward(idx)
        tok, self._tok_cache = embedding_forward(idx, self.wte.data)
        return tok

    def _tied_head(self, x):
        """x [B, t, D] -> logits x wte^T [B, t, V], through the same (possibly quantised)
        table as the lookup."""
        if isinstance(self.wte, QuantizedEmbedding):
            return self.wte.attend(x)
        logits, self._head_cache = linear_forward(x, self.wte.data.T)
        return logits
