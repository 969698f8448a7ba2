"""The pre-LN Transformer block as modules: ``MLP`` and ``Block`` (chapter 07).

    x1  = x  + attn(ln_1(x))          attention: tokens exchange information
    out = x1 + mlp(ln_2(x1))          MLP: each token is transformed on its own

A decoder's block is causal (GPT); an encoder's (``causal=False``) lets every token see
every other and takes a key-padding mask instead. The encoder-decoder's decoder block, with
cross-attention between the two, is tinylm/nn/decoder_block.py.

    mlp(h) = dropout(c_proj(GELU_tanh(c_fc(h))))      D -> 4D -> D

The same block as a single functional pair, with its derivation, is
tinylm/functional/transformer_block.py; backward here chains the modules' backward passes
(a residual sum hands its gradient to both branches).
"""

from __future__ import annotations

from tinylm.backend import derive_seed
from tinylm.nn.activation import GELU
from tinylm.nn.attention import KVCache, MultiHeadAttention
from tinylm.nn.dropout import Dropout
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module


class MLP(Module):
    """Position-wise feed-forward network（前馈网络）: Linear D->4D, GELU (tanh), Linear 4D->D."""

    def __init__(self, n_embd: int, dropout: float = 0.0, rng=None, seed: int = 0):
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, rng=rng)          # W [D, 4D]
        self.gelu = GELU("tanh")
        self.c_proj = Linear(4 * n_embd, n_embd, rng=rng)        # W [4D, D]
        self.dropout = Dropout(dropout, seed=seed)

    def forward(self, x):
        """x [B, T, D] -> [B, T, D]."""
        return self.dropout.forward(self.c_proj.forward(self.gelu.forward(self.c_fc.forward(x))))

    def backward(self, dout):
        return self.c_fc.backward(self.gelu.backward(self.c_proj.backward(
            self.dropout.backward(dout))))


class Block(Module):
    """One pre-LN Transformer block: ln_1, attn, ln_2, mlp (GPT-2's names); causal unless
    ``causal=False`` (an encoder's block)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, rng=None,
                 seed: int = 0, causal: bool = True):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout, causal=causal, rng=rng,
                                       seed=seed)
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout, rng=rng, seed=derive_seed(seed, 2))

    def forward(self, x, mask=None):
        """x [B, T, D] -> [B, T, D]; ``mask`` bool [B, 1, 1, T] (True = a real key) or None."""
        x = x + self.attn.forward(self.ln_1.forward(x), mask)                  # [B, T, D]
        return x + self.mlp.forward(self.ln_2.forward(x))                      # [B, T, D]

    def backward(self, dout):
        dx1 = dout + self.ln_2.backward(self.mlp.backward(dout))               # [B, T, D]
        return dx1 + self.ln_1.backward(self.attn.backward(dx1))               # [B, T, D]

    def forward_cached(self, x, cache: KVCache):
        """Inference on new positions x [B, t, D], with the attention's KV cache."""
        x = x + self.attn.forward_cached(self.ln_1.forward(x), cache)
        return x + self.mlp.forward(self.ln_2.forward(x))
