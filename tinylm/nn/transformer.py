"""The Transformer block as modules: ``MLP`` and ``Block`` (chapters 07 and 09).

    pre-LN (GPT-2, the default)           post-LN (``norm_first=False``: the paper, BERT)
    x1  = x  + attn(ln_1(x))              x1  = ln_1(x  + attn(x))
    out = x1 + mlp(ln_2(x1))              out = ln_2(x1 + mlp(x1))

Attention lets tokens exchange information; the MLP transforms each token on its own.

A decoder's block is causal (GPT); an encoder's (``causal=False``) lets every token see
every other and takes a key-padding mask instead. The encoder-decoder's decoder block, with
cross-attention between the two, is tinylm/nn/decoder_block.py.

    mlp(h) = dropout(c_proj(GELU(c_fc(h))))      D -> 4D -> D

GELU is GPT-2's tanh approximation unless ``approximate="none"`` (BERT's exact erf form).
The same blocks as single functional pairs, with their derivations, are
tinylm/functional/transformer_block.py (pre-LN) and tinylm/functional/post_ln_block.py;
backward here chains the modules' backward passes (a residual sum hands its gradient to
both branches).
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
    """Position-wise feed-forward network（前馈网络）: Linear D->4D, GELU, Linear 4D->D."""

    def __init__(self, n_embd: int, dropout: float = 0.0, rng=None, seed: int = 0,
                 approximate: str = "tanh"):
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, rng=rng)          # W [D, 4D]
        self.gelu = GELU(approximate)
        self.c_proj = Linear(4 * n_embd, n_embd, rng=rng)        # W [4D, D]
        self.dropout = Dropout(dropout, seed=seed)

    def forward(self, x):
        """x [B, T, D] -> [B, T, D]."""
        return self.dropout.forward(self.c_proj.forward(self.gelu.forward(self.c_fc.forward(x))))

    def backward(self, dout):
        return self.c_fc.backward(self.gelu.backward(self.c_proj.backward(
            self.dropout.backward(dout))))


class Block(Module):
    """One Transformer block: ln_1, attn, ln_2, mlp (GPT-2's names); pre-LN unless
    ``norm_first=False``; causal unless ``causal=False`` (an encoder's block)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, rng=None,
                 seed: int = 0, causal: bool = True, norm_first: bool = True,
                 approximate: str = "tanh", eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = LayerNorm(n_embd, eps)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout, causal=causal, rng=rng,
                                       seed=seed)
        self.ln_2 = LayerNorm(n_embd, eps)
        self.mlp = MLP(n_embd, dropout, rng=rng, seed=derive_seed(seed, 2),
                       approximate=approximate)

    def forward(self, x, mask=None):
        """x [B, T, D] -> [B, T, D]; ``mask`` bool [B, 1, 1, T] (True = a real key) or None."""
        if self.norm_first:
            x = x + self.attn.forward(self.ln_1.forward(x), mask)              # [B, T, D]
            return x + self.mlp.forward(self.ln_2.forward(x))                  # [B, T, D]
        x = self.ln_1.forward(x + self.attn.forward(x, mask))                  # [B, T, D]
        return self.ln_2.forward(x + self.mlp.forward(x))                      # [B, T, D]

    def backward(self, dout):
        if self.norm_first:
            dx1 = dout + self.ln_2.backward(self.mlp.backward(dout))           # [B, T, D]
            return dx1 + self.ln_1.backward(self.attn.backward(dx1))           # [B, T, D]
        dz2 = self.ln_2.backward(dout)                                         # [B, T, D]
        dz1 = self.ln_1.backward(dz2 + self.mlp.backward(dz2))                 # [B, T, D]
        return dz1 + self.attn.backward(dz1)                                   # [B, T, D]

    def forward_cached(self, x, cache: KVCache):
        """Inference on new positions x [B, t, D], with the attention's KV cache."""
        if self.norm_first:
            x = x + self.attn.forward_cached(self.ln_1.forward(x), cache)
            return x + self.mlp.forward(self.ln_2.forward(x))
        x = self.ln_1.forward(x + self.attn.forward_cached(x, cache))
        return self.ln_2.forward(x + self.mlp.forward(x))
